"""Benchmark the coupon allocation methods (Lagrangian vs CP-SAT vs HiGHS MIP vs LP bound).

Two instance families, K = 6 options:

* ``world``: shaped like the simulated world: value = small positive conversion
  uplifts growing with the face value, cost = face value x redemption rate;
* ``hard``: knapsack-hard, value strongly correlated with cost (value ~ 0.01 x cost
  + small noise), so value-per-cost ratios are nearly equal.

For each size the HiGHS LP relaxation gives the reference bound; every method
reports objective, gap to that bound, its own certified gap, time and its time
relative to the Lagrangian method.  A last table replays a day of requests
through :class:`optimizers.coupons.OnlineAllocator`.

Usage::

    python benchmarks/bench_coupons.py --sizes 10000 100000 --time-limit 60
    python benchmarks/bench_coupons.py --sizes 1000000 --exact-max 0   # Lagrangian vs LP only

Timings are wall-clock on whatever machine runs it (noisy on shared cores).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from optimizers.coupons import CouponProblem, simulate_day, solve
from optimizers.coupons.solve import solve_highs

FACE = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 10.0])


def world_instance(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Value ~ small probabilities rising with face value; cost = face x redemption."""
    rng = np.random.default_rng(seed)
    redemption = rng.beta(2.0, 3.0, size=(n, FACE.size))  # (n, K)
    cost = FACE * redemption
    base = rng.beta(1.0, 30.0, size=(n, 1))  # user's responsiveness
    value = base * np.log1p(FACE) * rng.uniform(0.5, 1.5, size=(n, FACE.size))  # (n, K)
    return value, cost, 0.25 * float(cost.min(axis=1).sum())


def hard_instance(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Strongly correlated value and cost (the classic hard knapsack family)."""
    rng = np.random.default_rng(seed)
    cost = FACE * rng.uniform(0.3, 1.0, size=(n, FACE.size))
    value = 0.01 * cost + 0.001 * rng.uniform(0.0, 1.0, size=(n, FACE.size))
    return value, cost, 0.5 * float(cost.min(axis=1).sum())


INSTANCES: dict[str, Callable[[int, int], tuple[np.ndarray, np.ndarray, float]]] = {
    "world": world_instance,
    "hard": hard_instance,
}


def _row(kind: str, n: int, method: str, obj: float, lp: float, gap: float, t: float, t_lag: float):
    gap_lp = (lp - obj) / abs(lp) if lp else float("nan")
    return [
        kind,
        f"{n:,}",
        method,
        f"{obj:.6g}",
        f"{100 * gap_lp:.4f}",
        f"{100 * gap:.4f}",
        f"{t:.2f}",
        f"{t / t_lag:.1f}x" if t_lag > 0 else "",
    ]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=list(INSTANCES), choices=list(INSTANCES))
    parser.add_argument("--time-limit", type=float, default=60.0, help="per exact solve (s)")
    parser.add_argument("--exact-max", type=int, default=100_000, help="skip MIPs above n")
    parser.add_argument("--lp-max", type=int, default=1_000_000, help="skip the LP above n")
    parser.add_argument("--online-n", type=int, default=100_000, help="0 to skip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    header = [
        "instance",
        "n",
        "method",
        "objective",
        "gap to LP %",
        "own gap %",
        "time s",
        "vs lagr.",
    ]
    rows: list[list[str]] = []
    for kind in args.kinds:
        for n in args.sizes:
            value, cost, budget = INSTANCES[kind](n, args.seed)
            problem = CouponProblem(value=value, cost=cost, budget=budget)
            t0 = time.perf_counter()
            lag = solve(problem, "lagrangian", seed=args.seed)
            t_lag = time.perf_counter() - t0
            lp_bound, t_lp = float("nan"), float("nan")
            if n <= args.lp_max:
                t0 = time.perf_counter()
                try:
                    lp = solve_highs(problem, relax=True, time_limit_s=args.time_limit)
                    lp_bound = lp.bound
                except RuntimeError:  # LP not solved within the time limit
                    pass
                t_lp = time.perf_counter() - t0
            ref = lp_bound if np.isfinite(lp_bound) else lag.upper_bound
            rows.append(_row(kind, n, "lagrangian", lag.objective, ref, lag.gap, t_lag, t_lag))
            if np.isfinite(lp_bound):
                rows.append(_row(kind, n, "highs LP bound", lp_bound, ref, 0.0, t_lp, t_lag))
            elif n <= args.lp_max:
                rows.append([kind, f"{n:,}", "highs LP", f"not solved in {t_lp:.0f} s"] + [""] * 4)
            if n > args.exact_max:
                rows.append(
                    [kind, f"{n:,}", "cpsat / highs MIP", "skipped (n > --exact-max)"] + [""] * 4
                )
                continue
            for method in ("highs", "cpsat"):
                t0 = time.perf_counter()
                try:
                    res = solve(problem, method, time_limit_s=args.time_limit, seed=args.seed)  # type: ignore[arg-type]
                except RuntimeError as err:  # no plan within the time limit
                    rows.append([kind, f"{n:,}", method, f"no plan: {err}"] + [""] * 4)
                    continue
                label = method + ("" if res.status == "optimal" else f" ({res.status})")
                rows.append(
                    _row(
                        kind, n, label, res.objective, ref, res.gap, time.perf_counter() - t0, t_lag
                    )
                )
    print(markdown(header, rows))

    if args.online_n:
        value, cost, budget = world_instance(args.online_n, args.seed + 1)
        online_rows = []
        for err in (1.0, 0.5, 2.0):
            rep = simulate_day(value, cost, budget, price_error=err, seed=args.seed)
            online_rows.append(
                [
                    f"{args.online_n:,}",
                    f"{err:g}",
                    f"{rep.us_per_request:.2f}",
                    f"{rep.spend_pct:.2f}",
                    f"{rep.value_pct:.2f}",
                ]
            )
        print()
        print(
            markdown(
                [
                    "requests",
                    "nightly price x",
                    "us/request",
                    "spend % of budget",
                    "value % of offline",
                ],
                online_rows,
            )
        )


if __name__ == "__main__":
    main()
