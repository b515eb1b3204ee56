"""Where the small world's coupon plan loses value: the budget side or the effects' levels.

Usage: PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diag_small_world.py
    [--scenario small] [--budget 500] [--seeds 100 101 ...]

Per world seed: the nightly's coupon stages (push and install off, ``auto``), then the chosen
model's decision re-planned with an *ideal buffer* (budgets moved until the plan's true
expected spend meets the oracle's effective budgets, :func:`diag_coupon_effects.ideal_buffer`)
as predicted and with each option's predicted effect (value side) multiplied by the truth's
ratio, true over predicted incremental conversions, taken per lifecycle segment (every
option alike), per option (every segment alike) and per option x segment.  Each plan is
scored as the truth stage scores the nightly's (% of the oracle, played out).  Also printed:
per segment, the share of its logged rows in the randomised holdout (the log's newest
``holdout_fraction`` of rows), and its 'none' conversion, true over predicted, on the
decision's users.

The gap from "nightly" to "ideal buffer" is what the budget side costs; from "ideal buffer" to
a ratio's column, what knowing that level of the effects would bring.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from diag_coupon_effects import ideal_buffer

from growth.campaigns.coupons import plan_coupons, score_against_truth, true_coupon_decision
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.store import Store
from growth.world import generate_world, load_scenario


def scaled_effects(pred, truth, by_segment: bool, by_option: bool):
    """``pred`` with each option's effect over 'none' times the truth's ratio in its cell."""
    conv = pred.conversion.copy()
    cells = np.unique(pred.segment) if by_segment else [None]
    for s in cells:
        m = np.ones(pred.n_users, dtype=bool) if s is None else pred.segment == s
        options = [[k] for k in range(pred.value.shape[1])] if by_option else [slice(None)]
        for k in options:
            made = pred.value[m][:, k].sum()
            ratio = truth.value[m][:, k].sum() / made if abs(made) > 1e-12 else 1.0
            conv[np.ix_(m, np.arange(1, conv.shape[1])[k])] = (
                pred.conversion[m, :1] + ratio * pred.value[m][:, k]
            )
    return dataclasses.replace(pred, conversion=conv)


def run_seed(scenario: str, seed: int, budget: float, db: Path) -> dict[str, float]:
    config = NightlyConfig(
        scenario=scenario, seed=seed, coupons={"budget": budget},
        push={"enabled": False}, install={"enabled": False},
    )  # fmt: skip
    result = run_nightly(config, store=Store(f"sqlite:///{db}"))
    chosen = result.choice.chosen
    pred, settings, models = chosen.decision, chosen.plan.campaign.settings, chosen.models
    world = generate_world(load_scenario(scenario, seed=seed))
    truth = true_coupon_decision(world)
    target = {n: r.effective_budget for n, r in plan_coupons(truth, settings).risk.items()}
    segment = np.asarray(models.frame.segment).astype(str)
    shares = ", ".join(
        f"{s} {100 * models.holdout[segment == s].mean():.0f} % of {int((segment == s).sum())}"
        for s in np.unique(segment)
    )
    levels = ", ".join(
        f"{s} {truth.conversion[m, 0].sum() / pred.conversion[m, 0].sum():.2f}"
        for s in np.unique(pred.segment)
        for m in [pred.segment == s]
    )
    print(f"seed {seed} ({chosen.name}): rows in the holdout: {shares}; 'none' true/pred: {levels}")
    plans = {
        "nightly": chosen.plan,
        "ideal buffer": ideal_buffer(pred, settings, truth, target),
        **{
            name: ideal_buffer(scaled_effects(pred, truth, *cell), settings, truth, target)
            for name, cell in (
                ("x segment", (True, False)),
                ("x option", (False, True)),
                ("x option x segment", (True, True)),
            )
        },
    }
    pct = {name: score_against_truth(world, plan).pct_of_oracle() for name, plan in plans.items()}
    print(f"seed {seed} " + " | ".join(f"{n} {p:.1f}" for n, p in pct.items()))
    return pct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="small")
    parser.add_argument("--budget", type=float, default=500.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 110)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_seed(args.scenario, s, args.budget, Path(tmp) / f"d{s}.db") for s in args.seeds]
    means = {name: np.mean([row[name] for row in rows]) for name in rows[0]}
    print("mean " + " | ".join(f"{n} {m:.1f}" for n, m in means.items()))


if __name__ == "__main__":
    main()
