"""How often coupon spend exceeds its budgets, with and without the chance-constrained buffer.

Usage: .venv/bin/python benchmarks/bench_budget_buffer.py [--users 20000] [--seeds 1 .. 10]
    [--confidence 0.95]

Runs the nightly job's coupon stages (push and install off) on each world seed of the
default scenario at ``--users`` users, every budget scaled by users / 200,000, with
``spend_confidence`` = ``--confidence``; then plans the same predicted decision without
the buffer (``spend_confidence`` = None) and plays both out on the truth (20 arrival
seeds each).  Per seed and budget group: the share of arrival seeds whose demand stayed
within the budget, the worst excess; the platform plan's incremental conversions and
% of the oracle (each held to its own rule).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from growth.campaigns.coupons import plan_coupons, score_against_truth
from growth.campaigns.settings import CouponSettings
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.store import Store
from growth.world import generate_world, load_scenario

FULL_USERS = 200_000


def _rows(tag: str, score) -> list[dict]:
    spend = score.spend
    out = []
    for plan in ("platform", "oracle"):
        conv = score.plans.loc[plan, "incremental_conversions"]
        for r in spend[spend["plan"] == plan].itertuples():
            out.append(
                {
                    "rule": tag, "plan": plan, "group": r.budget_group, "held": r.held,
                    "worst": r.worst_excess_pct, "conv": conv,
                    "pct": score.plans.loc[plan, "pct_of_oracle"],
                }
            )  # fmt: skip
    return out


def run_seed(seed: int, users: int, confidence: float, db: Path) -> list[dict]:
    scale = users / FULL_USERS
    coupons = {"budget": 20_000 * scale, "merchant_budget": 2_000 * scale}
    config = NightlyConfig(
        scenario="default", n_users=users, seed=seed,
        coupons={**coupons, "spend_confidence": confidence},
        push={"enabled": False}, install={"enabled": False},
    )  # fmt: skip
    result = run_nightly(config, store=Store(f"sqlite:///{db}"))
    world = generate_world(load_scenario("default", n_users=users, seed=seed))
    bare = plan_coupons(
        result.plan.campaign.decision, CouponSettings(**coupons, spend_confidence=None)
    )
    return _rows("buffer", result.truth) + _rows("none", score_against_truth(world, bare))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            mine = run_seed(seed, args.users, args.confidence, Path(tmp) / f"b{seed}.db")
            rows += mine
            for r in mine:
                print(f"seed {seed} {r['rule']:6} {r['plan']:8} {r['group']:12} held "
                      f"{r['held']:.0%} worst {r['worst']:+.1f} % conv {r['conv']:.1f} "
                      f"({r['pct']:.1f} % of its oracle)", flush=True)  # fmt: skip
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["exceeded"] = 1.0 - frame["held"]
    table = frame.groupby(["rule", "plan", "group"]).agg(
        exceed_share=("exceeded", "mean"), worst_excess_pct=("worst", "max")
    )
    print(table.to_string())
    conv = frame.groupby(["rule", "plan"])[["conv", "pct"]].mean()
    print(conv.to_string())
    given = 1.0 - conv.loc[("buffer", "platform"), "conv"] / conv.loc[("none", "platform"), "conv"]
    print(f"value given up by the platform's buffer: {100 * given:.1f} % of its conversions")
    print(f"seeds: {args.seeds}, users {args.users:,}; "
          f"mean held share {np.mean(frame['held']):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
