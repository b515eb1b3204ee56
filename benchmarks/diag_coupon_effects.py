"""Where the coupon plan's value goes, and the per-segment stretch of the platform's effects.

Usage: PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diag_coupon_effects.py
    [--users 20000] [--seeds 100 101 ...]

Per world seed of the default scenario (budgets scaled to the users as in
``bench_budget_buffer.py``, ``spend_confidence`` the nightly's 0.99, the stretch off): the
nightly's coupon stages, then the chosen model's decision re-planned

- with an *ideal buffer* (budgets moved until the plan's true expected spend meets the
  oracle's effective budgets), as predicted and with the truth's levels put in: per option x
  segment (value and cost), value only, and the truth's per-segment effect ratio;
- with the nightly's own buffer, its value side stretched per segment by the slopes of
  :mod:`growth.campaigns.coupons.uplift` fitted on the whole log: every option, and the
  platform's options only (the ``stretch_effects`` rule).

Prints the slopes beside the truth's ratio and, per plan, % of the buffered oracle and each
budget's expected true spend against it (%).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from growth.campaigns.coupons import plan_coupons, score_against_truth, true_coupon_decision
from growth.campaigns.coupons.plan import CouponCampaign
from growth.campaigns.coupons.uplift import fit_uplift_scale, platform_options
from growth.campaigns.coupons.value import model_holdout_logs
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.modeling.recalibration import GroupCalibrator
from growth.store import Store
from growth.world import generate_world, load_scenario


def true_spend(truth, plan) -> dict[str, float]:
    rows = np.flatnonzero(plan.choice >= 0)
    k = plan.choice[rows]
    cost = truth.cost[rows, k]
    return {b.name: float(cost[np.isin(k, b.options)].sum()) for b in plan.campaign.budgets}


def ideal_buffer(decision, settings, truth, target: dict[str, float]):
    """The plan whose true expected spend meets ``target`` per budget (ten proportional moves)."""
    effective = dict(target)
    for _ in range(10):
        plan = CouponCampaign(decision, settings, effective=effective).plan()
        spent = true_spend(truth, plan)
        effective = {
            n: float(np.clip(e * target[n] / max(spent[n], 1e-9), 0.3 * target[n], 3 * target[n]))
            for n, e in effective.items()
        }
    return plan


def with_levels(pred, truth, *, cost: bool):
    """``pred`` with each option x segment's mean effect (and redemption) set to the truth's."""
    conv, red = pred.conversion.copy(), pred.redemption.copy()
    for s in np.unique(pred.segment):
        m = pred.segment == s
        conv[m, 0] *= truth.conversion[m, 0].mean() / pred.conversion[m, 0].mean()
        for k in range(pred.value.shape[1]):
            mean = pred.value[m, k].mean()
            scale = truth.value[m, k].mean() / mean if abs(mean) > 1e-12 else 1.0
            conv[m, k + 1] = conv[m, 0] + pred.value[m, k] * scale
            if cost:
                red[m, k + 1] *= truth.redemption[m, k + 1].mean() / max(
                    red[m, k + 1].mean(), 1e-12
                )
    return dataclasses.replace(pred, conversion=conv, redemption=red)


def stretched(pred, factors: dict[str, float], order: np.ndarray, options: np.ndarray):
    """``pred`` with ``options``' effects stretched per segment (the product's rule)."""
    cal = GroupCalibrator(uplift_scale=factors, uplift_options=tuple(int(o) for o in options))
    return dataclasses.replace(
        pred,
        conversion=cal.stretch_uplift(pred.conversion, pred.segment, order, 0),
        gmv=cal.stretch_uplift(pred.gmv, pred.segment, order, 0),
    )


def run_seed(seed: int, users: int, db: Path) -> None:
    scale = users / load_scenario("default").n_users
    coupons = {"budget": 20_000 * scale, "merchant_budget": 2_000 * scale}
    config = NightlyConfig(
        scenario="default", n_users=users, seed=seed, coupons=coupons,
        push={"enabled": False}, install={"enabled": False}, stretch_effects=False,
    )  # fmt: skip
    chosen = run_nightly(config, store=Store(f"sqlite:///{db}")).choice.chosen
    models, pred, settings = chosen.models, chosen.decision, chosen.plan.campaign.settings
    world = generate_world(load_scenario("default", n_users=users, seed=seed))
    truth = true_coupon_decision(world)
    every = np.ones(len(models.frame.y), dtype=bool)
    (log,) = model_holdout_logs(
        models.frame, models.conversion, models.basket,
        [(every, models.calibrator, models.reach_calibrator)],
    )  # fmt: skip
    ids = list(models.frame.features.option_ids)
    order = np.array([ids.index(o) for o in pred.option_ids])
    ours = platform_options(models)
    every_fit = {f.segment: f for f in fit_uplift_scale(log)}
    our_fit = {f.segment: f.factor for f in fit_uplift_scale(log, ours)}
    for s, f in every_fit.items():
        m = pred.segment == s
        ratio = truth.value[m].sum() / pred.value[m].sum()
        print(f"seed {seed} {s:9s} slope {f.beta:5.2f} +- {f.se:4.2f} truth's ratio {ratio:6.2f}")
    target = {n: r.effective_budget for n, r in plan_coupons(truth, settings).risk.items()}
    every_factor = {s: f.factor for s, f in every_fit.items()}
    plans = {
        "plan": chosen.plan,
        "ideal buffer": ideal_buffer(pred, settings, truth, target),
        "+ true levels": ideal_buffer(with_levels(pred, truth, cost=True), settings, truth, target),
        "+ true value levels": ideal_buffer(with_levels(pred, truth, cost=False), settings, truth, target),
        "stretch, every option": plan_coupons(
            stretched(pred, every_factor, order, np.arange(1, len(ids))), settings,
            calibration=models.calibration,
        ),
        "stretch, platform's": plan_coupons(
            stretched(pred, our_fit, order, ours), settings, calibration=models.calibration
        ),
    }  # fmt: skip
    for name, plan in plans.items():
        score = score_against_truth(world, plan)
        spent = true_spend(truth, plan)
        budgets = ", ".join(
            f"{b.name} {100 * (spent[b.name] / b.amount - 1):+.1f} %" for b in plan.campaign.budgets
        )
        print(f"seed {seed} {name:22s} {score.pct_of_oracle():5.1f} % of the oracle ({budgets})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 110)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run_seed(seed, args.users, Path(tmp) / f"d{seed}.db")


if __name__ == "__main__":
    main()
