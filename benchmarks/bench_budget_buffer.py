"""How often coupon spend exceeds its budgets on the truth, with and without the buffer.

Usage: .venv/bin/python benchmarks/bench_budget_buffer.py [--users 20000] [--seeds 1 .. 10]
    [--confidence 0.95] [--holdout-fraction F] [--holdout-min-rows N]

Per world seed of the default scenario at ``--users`` users (every budget scaled by
users / the scenario's users, so a 20,000-user world has a fifth of the demo's budgets):
the nightly job's coupon stages (push and install off) with ``spend_confidence`` =
``--confidence``, then the same predicted decision planned without the buffer
(``spend_confidence`` = None).  Both plans and their oracles are played out on the truth
(20 arrival seeds each, :mod:`growth.campaigns.coupons.truth`).  Per budget:

- ``seeds_over``: share of world seeds whose plan's *expected* spend on the truth (the true
  redemption probabilities times face values) exceeds the budget, and ``worst_pct``, the
  largest excess (%; negative: the most of the budget any seed left unspent);
- ``draws_over``: share of play-outs (seed x arrival order) whose demand (every redemption
  paid) exceeds it, and ``worst_draw_pct``;
- the platform plan's honoured incremental conversions with and without the buffer, as %
  of the buffered oracle (the nightly's oracle), and the share given up for the buffer;
- the on-demand path (:func:`growth.campaigns.coupons.online.serve_day`): the buffered
  plan's requests answered at its dual prices on the truth, paced to its effective budgets
  and unpaced, per budget the paid share of the budget and the value as % of the buffered
  oracle.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_truth_scoring import add_holdout_arguments, holdout_settings
from growth.campaigns.coupons import plan_coupons, score_against_truth, true_coupon_decision
from growth.campaigns.coupons.online import serve_day
from growth.campaigns.settings import CouponSettings
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.store import Store
from growth.world import generate_world, load_scenario


def _true_spend(truth, plan) -> dict[str, float]:
    """The plan's expected spend per budget under the true redemption probabilities."""
    rows = np.flatnonzero(plan.choice >= 0)
    k = plan.choice[rows]
    cost = truth.cost[rows, k]
    return {b.name: float(cost[np.isin(k, b.options)].sum()) for b in plan.campaign.budgets}


def _budget_rows(rule: str, plan_name: str, plan, score, truth) -> list[dict]:
    spend = score.spend[score.spend["plan"] == plan_name].set_index("budget_group")
    expected = _true_spend(truth, plan) if plan is not None else {}
    out = []
    for name, r in spend.iterrows():
        row = {"rule": rule, "plan": plan_name, "budget": name, "amount": r["budget"]}
        row |= {"draws_over": 1.0 - r["held"], "worst_draw_pct": r["worst_excess_pct"]}
        if name in expected:
            row["true_pct"] = 100.0 * (expected[name] / r["budget"] - 1.0)
        out.append(row)
    return out


def run_seed(
    seed: int, users: int, confidence: float, db: Path, **training: Any
) -> tuple[list, dict, list]:
    """One world seed: budget rows, the plans' conversions, the on-demand days
    (``training``: more :class:`NightlyConfig` training settings)."""
    scale = users / load_scenario("default").n_users
    coupons = {"budget": 20_000 * scale, "merchant_budget": 2_000 * scale}
    config = NightlyConfig(
        scenario="default", n_users=users, seed=seed,
        coupons={**coupons, "spend_confidence": confidence},
        push={"enabled": False}, install={"enabled": False}, **training,
    )  # fmt: skip
    result = run_nightly(config, store=Store(f"sqlite:///{db}"))
    world = generate_world(load_scenario("default", n_users=users, seed=seed))
    truth = true_coupon_decision(world)
    bare = plan_coupons(
        result.plan.campaign.decision, CouponSettings(**coupons, spend_confidence=None)
    )
    bare_score = score_against_truth(world, bare)
    rows = _budget_rows("buffer", "platform", result.plan, result.truth, truth)
    rows += _budget_rows("buffer", "oracle", None, result.truth, truth)
    rows += _budget_rows("none", "platform", bare, bare_score, truth)
    oracle = result.truth.plans.loc["oracle", "incremental_conversions"]
    value = {
        "seed": seed,
        "oracle": oracle,
        "buffer": result.truth.plans.loc["platform", "incremental_conversions"],
        "none": bare_score.plans.loc["platform", "incremental_conversions"],
    }
    days = []
    for pace in (True, False):
        day = serve_day(result.plan, truth, seed=seed, pace=pace)
        for g, name in enumerate(day.budgets):
            days.append(
                {"pace": pace, "budget": name, "paid_pct": 100.0 * day.paid[g] / day.caps[g],
                 "value_pct": 100.0 * day.value / oracle, "last_offer": day.last_offer}
            )  # fmt: skip
    return rows, value, days


def report(rows: list, values: list, days: list) -> None:
    """Print the exceedance table, the value given up and the on-demand days."""
    frame = pd.DataFrame(rows)
    table = frame.groupby(["rule", "plan", "budget"], sort=False).agg(
        seeds_over=("true_pct", lambda s: float((s > 0).mean()) if s.notna().any() else np.nan),
        worst_pct=("true_pct", "max"),
        draws_over=("draws_over", "mean"),
        worst_draw_pct=("worst_draw_pct", "max"),
    )
    print(table.round(3).to_string())
    v = pd.DataFrame(values)
    pct = {rule: 100.0 * v[rule] / v["oracle"] for rule in ("buffer", "none")}
    given = 100.0 * (1.0 - v["buffer"].sum() / v["none"].sum())
    print(
        f"platform plan, % of the buffered oracle: with buffer {pct['buffer'].mean():.1f} "
        f"(sd {pct['buffer'].std():.1f}), without {pct['none'].mean():.1f} "
        f"(sd {pct['none'].std():.1f}); value given up for the buffer {given:.1f} %"
    )
    d = pd.DataFrame(days).groupby(["pace", "budget"], sort=False)
    print(d.agg(paid_pct_mean=("paid_pct", "mean"), paid_pct_max=("paid_pct", "max"),
                value_pct=("value_pct", "mean"), last_offer=("last_offer", "mean"))
          .round(2).to_string())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--save", type=Path, help="write the per-seed rows here (JSON)")
    parser.add_argument("--load", type=Path, help="only print the report of saved rows")
    add_holdout_arguments(parser)
    args = parser.parse_args()
    if args.load:
        report(**json.loads(args.load.read_text()))
        return
    rows, values, days = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            r, v, d = run_seed(
                seed, args.users, args.confidence, Path(tmp) / f"b{seed}.db",
                **holdout_settings(args),
            )  # fmt: skip
            rows, values, days = [*rows, *r], [*values, v], [*days, *d]
            mine = pd.DataFrame(r)
            print(f"seed {seed}: " + ", ".join(
                f"{x.rule}/{x.plan}/{x.budget} true {x.true_pct:+.1f} % draws over "
                f"{x.draws_over:.0%}" for x in mine.itertuples() if x.plan == "platform"
            ), flush=True)  # fmt: skip
            if args.save:
                args.save.write_text(json.dumps({"rows": rows, "values": values, "days": days}))
    print(f"seeds {args.seeds}, {args.users:,} users, spend_confidence {args.confidence}")
    report(rows, values, days)


if __name__ == "__main__":
    main()
