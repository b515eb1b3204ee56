"""Time the operators' app service calls at a large world, in the order the pages need them.

Usage: .venv/bin/python benchmarks/bench_app_services.py
(default scenario, 1M users; each line is one page's first render or one operator action).
"""

import time

from growth import services as svc


def lap(name: str, start: float) -> None:
    print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)


def main(users: int = 1_000_000) -> None:
    t0 = time.perf_counter()
    t = time.perf_counter()
    w = svc.load_world("default", users)
    lap("world (Home first render)", t)
    t = time.perf_counter()
    svc.fit_channel_models(w.dataset)
    lap("channel models (Install first render)", t)
    t = time.perf_counter()
    f = svc.conversion_features(w)
    svc.lifecycle_segments(f)
    lap("features+segments (Coupons/Push first render)", t)
    t = time.perf_counter()
    p = svc.load_predictors(w, svc.store(), features=f)
    lap("predictors: the nightly run's, else trained (Models first render)", t)
    auc = p.metrics.query("segment=='all' and metric=='auc'")["value"].iloc[0]
    print(p.predictor, p.source, "auc", round(float(auc), 4), flush=True)
    t = time.perf_counter()
    svc.calibration_frame(p)
    lap("calibration", t)
    t = time.perf_counter()
    d = svc.score_coupons(p)
    lap("score coupons, all users (first Coupons solve)", t)
    s = svc.CouponSettings(budget=500.0, merchant_budget=50.0, method="lagrangian")
    t = time.perf_counter()
    plan = svc.plan_coupons(d, s)
    lap("plan_coupons", t)
    print(plan.allocation.describe().splitlines()[0], flush=True)
    t = time.perf_counter()
    curve = svc.value_vs_budget(d, s)
    lap("value_vs_budget (6 solves)", t)
    print(curve.to_string(index=False), flush=True)
    t = time.perf_counter()
    svc.coupon_front(d, s, n_points=7)
    lap("coupon_front (7 points, as the nightly job)", t)
    t = time.perf_counter()
    svc.allocation_by_segment(d, plan)
    lap("allocation_by_segment", t)
    lap("TOTAL", t0)


if __name__ == "__main__":
    main()
