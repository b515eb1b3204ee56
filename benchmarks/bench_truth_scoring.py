"""The coupon plan's % of the oracle, old scoring (every redemption paid) beside honest scoring.

Usage: .venv/bin/python benchmarks/bench_truth_scoring.py [--scenario small] [--seeds 1 2 3 4]
    [--budget 500] [--predictor auto] [--holdout-fraction F] [--holdout-min-rows N]

Runs the nightly job's coupon stages (push and install off) on each world seed into a
throw-away SQLite file and prints, per seed: the plan's incremental conversions as the
truth stage now plays them out (mean and sd over 20 arrival orders), % of the oracle at
the same budgets, the old figure (every redemption paid, the budgets ignored), random
targeting and the best single option at the same budgets, and each budget group's
demand and paid spend on the truth; then a markdown table of every plan's incremental
conversions played out, % of the oracle overall and on new users (lifecycle 'new').
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.store import Store


def score_seed(
    scenario: str, seed: int, budget: float, predictor: str, db: Path, **training: Any
) -> dict:
    """One nightly run's honest and old figures for the coupon plan (``training``: more
    :class:`NightlyConfig` training settings, e.g. ``holdout_min_rows``)."""
    config = NightlyConfig(
        scenario=scenario,
        seed=seed,
        predictor=predictor,
        coupons={"budget": budget},
        push={"enabled": False},
        install={"enabled": False},
        **training,
    )
    result = run_nightly(config, store=Store(f"sqlite:///{db}"))
    plans, spend = result.truth.plans, result.truth.spend
    old = plans["all_paid_conversions"] / plans.loc["oracle", "all_paid_conversions"]
    mine = spend.query("plan == 'platform'")
    return {
        "seed": seed,
        "predictor": result.predictor,
        "pct": plans.loc["platform", "pct_of_oracle"],
        "pct_sd": plans.loc["platform", "pct_of_oracle_sd"],
        "old_pct": 100 * old["platform"],
        "random_pct": plans.loc["random", "pct_of_oracle"],
        "single_pct": plans.loc["best_single", "pct_of_oracle"],
        "single": result.truth.best_single_option,
        "lost": plans.loc["platform", "redemptions_lost"],
        "conversions": {
            p: plans.loc[p, "incremental_conversions"]
            for p in ("platform", "random", "best_single", "oracle")
        },
        "new_pct": result.truth.by_segment.loc["platform", "new"],
        "spend": {r.budget_group: (r.demand, r.paid, r.budget, r.held) for r in mine.itertuples()},
    }


def add_holdout_arguments(parser: argparse.ArgumentParser) -> None:
    """``--holdout-fraction`` and ``--holdout-min-rows``: the nightly's holdout, when not its
    default (:class:`NightlyConfig`)."""
    parser.add_argument("--holdout-fraction", type=float, help="default: the nightly's")
    parser.add_argument("--holdout-min-rows", type=int, help="default: the nightly's")


def holdout_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`NightlyConfig` holdout settings the command line gave."""
    given = {"holdout_fraction": args.holdout_fraction, "holdout_min_rows": args.holdout_min_rows}
    return {k: v for k, v in given.items() if v is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="data/scenarios/small.toml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--budget", type=float, default=500.0)
    parser.add_argument("--predictor", default="auto")
    add_holdout_arguments(parser)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = score_seed(
                args.scenario, seed, args.budget, args.predictor, Path(tmp) / "b.db",
                **holdout_settings(args),
            )  # fmt: skip
            rows.append(row)
            groups = "; ".join(
                f"{g} demand {d:,.1f} paid {p:,.1f} of {b:,.0f} (held {h:.0%})"
                for g, (d, p, b, h) in row["spend"].items()
            )
            print(
                f"seed {seed} ({row['predictor']}): plan {row['pct']:.1f} % of oracle "
                f"(sd {row['pct_sd']:.1f}; old {row['old_pct']:.1f} %), random "
                f"{row['random_pct']:.1f} %, best single ({row['single']}) "
                f"{row['single_pct']:.1f} %, redemptions lost {row['lost']:.1f}; {groups}",
                flush=True,
            )
    for key in ("pct", "old_pct", "random_pct", "single_pct", "new_pct"):
        values = np.array([r[key] for r in rows])
        print(f"mean {key}: {values.mean():.1f} % (min {values.min():.1f}, max {values.max():.1f})")
    print(markdown_table(rows))


def markdown_table(rows: list[dict]) -> str:
    """Per seed and mean: incremental conversions of each plan played out, % of the oracle
    overall and on new users, and whether the plan beat both baselines."""
    plans = ("platform", "random", "best_single", "oracle")
    lines = [
        "| seed | model | plan | random | best single | oracle | % of oracle | new users "
        "| random % | best single % | plan > both |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        conv = " | ".join(f"{r['conversions'][p]:.1f}" for p in plans)
        beats = r["pct"] > max(r["random_pct"], r["single_pct"])
        lines.append(
            f"| {r['seed']} | {r['predictor']} | {conv} | {r['pct']:.1f} | {r['new_pct']:.1f} "
            f"| {r['random_pct']:.1f} | {r['single_pct']:.1f} | {'yes' if beats else 'no'} |"
        )
    mean = {p: np.mean([r["conversions"][p] for r in rows]) for p in plans}
    avg = {k: np.mean([r[k] for r in rows]) for k in ("pct", "new_pct", "random_pct", "single_pct")}
    wins = sum(r["pct"] > max(r["random_pct"], r["single_pct"]) for r in rows)
    lines.append(
        f"| mean | | {' | '.join(f'{mean[p]:.1f}' for p in plans)} | {avg['pct']:.1f} "
        f"| {avg['new_pct']:.1f} | {avg['random_pct']:.1f} | {avg['single_pct']:.1f} "
        f"| {wins} of {len(rows)} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
