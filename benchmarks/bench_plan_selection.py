"""Do the budgets hold on the truth for the users the plan picks? Buffer rules re-planned
on cached nightly decisions.

Usage: .venv/bin/python benchmarks/bench_plan_selection.py [--users 20000] [--seeds 100 .. 109]
    [--cache /tmp/plan_selection] [--rules population selection conf0.97 ...]

Per world seed of the default scenario (budgets scaled by users as in
``bench_budget_buffer.py``): the nightly's coupon stages run once (push and install off) and
what re-planning needs is cached (``--cache``, one pickle per seed; a cached seed is not run
again): the chosen model's decision, its spend calibration, its holdout log, the truth
(:func:`~growth.campaigns.coupons.truth.true_coupon_decision`) and the nightly's oracle
value.  Each rule then re-plans the same decision:

- ``population``: the buffer with the holdout's per option x segment spend bias alone;
- ``selection``: plus the holdout rows where the plan buys (``SpendEvidence``);
- ``conf<p>``: ``population`` at ``spend_confidence`` p (a bigger buffer, no evidence).

Per rule and budget: seeds whose expected true spend exceeds the budget and the worst (%),
the share of the 20 play-outs per seed whose demand exceeds it, and the plan's honoured
incremental conversions as % of the nightly's buffered oracle.  ``--decompose`` prints, per
seed and budget, the truth's ratio of the plan's holders' spend to its prediction, split
into the groups' (option x segment) ratio on every user and the holders' beyond it, beside
what the holdout's rows where the plan buys say.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from growth.campaigns.coupons import plan_coupons, play_out, true_coupon_decision
from growth.campaigns.coupons.buffer import spend_bias
from growth.campaigns.coupons.playout import Arrivals
from growth.campaigns.coupons.selection import SpendEvidence
from growth.campaigns.coupons.value import holdout_logs
from growth.campaigns.settings import CouponSettings
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.store import Store
from growth.world import generate_world, load_scenario


def cached_seed(seed: int, users: int, cache: Path) -> dict:
    """The nightly's coupon decision and what re-planning it needs (cached per seed)."""
    path = cache / f"seed{seed}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    scale = users / load_scenario("default").n_users
    coupons = {"budget": 20_000 * scale, "merchant_budget": 2_000 * scale}
    config = NightlyConfig(
        scenario="default", n_users=users, seed=seed,
        coupons={**coupons, "spend_confidence": 0.95},
        push={"enabled": False}, install={"enabled": False},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        result = run_nightly(config, store=Store(f"sqlite:///{tmp}/b.db"))
    chosen = result.choice.chosen
    world = generate_world(load_scenario("default", n_users=users, seed=seed))
    data = {
        "seed": seed,
        "coupons": coupons,
        "decision": chosen.decision,
        "calibration": chosen.models.calibration,
        "logs": holdout_logs(chosen.models),
        "truth": true_coupon_decision(world),
        "oracle_value": result.truth.plans.loc["oracle", "incremental_conversions"],
    }
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


def replan(data: dict, rule: str):
    """The cached decision planned under ``rule`` (module docstring)."""
    confidence = float(rule[4:]) if rule.startswith("conf") else 0.95
    settings = CouponSettings(**data["coupons"], spend_confidence=confidence)
    evidence = None
    if rule == "selection":
        evidence = SpendEvidence.from_log(data["decision"], data["logs"][0])
    return plan_coupons(
        data["decision"], settings, calibration=data["calibration"], evidence=evidence
    )


def score(data: dict, plan, arrivals: Arrivals) -> dict:
    """The plan on the truth: value as % of the oracle, per budget true spend and play-outs."""
    truth = data["truth"]
    rows = np.flatnonzero(plan.choice >= 0)
    k = plan.choice[rows]
    out = play_out(truth, plan.choice, plan.campaign.budgets, arrivals)
    row = {"value_pct": 100.0 * out.value.mean() / data["oracle_value"]}
    for g, b in enumerate(plan.campaign.budgets):
        spend = truth.cost[rows, k][np.isin(k, b.options)].sum()
        row[f"{b.name}:true_pct"] = 100.0 * (spend / b.amount - 1.0)
        row[f"{b.name}:draws_over"] = float((out.demand[:, g] > b.amount + 1e-9).mean())
    return row


def decompose(data: dict, plan) -> list[dict]:
    """Per budget: the truth's holders' ratio, its groups' part, the holders' beyond it, and
    the holdout's rows where the plan buys (redemptions observed / predicted over the
    option's level)."""
    decision, truth = data["decision"], data["truth"]
    codes = spend_bias(decision, None).codes
    rows = np.flatnonzero(plan.choice >= 0)
    k = plan.choice[rows]
    groups = k * (codes.max() + 1) + codes[rows]
    flat = np.arange(decision.cost.shape[1])[None, :] * (codes.max() + 1) + codes[:, None]
    ratio = np.bincount(flat.ravel(), truth.cost.ravel()) / np.maximum(
        np.bincount(flat.ravel(), decision.cost.ravel()), 1e-12
    )
    observed, predicted, level = SpendEvidence.from_log(decision, data["logs"][0]).plan_rows(
        plan.choice, decision.cost.shape[1]
    )
    out = []
    for b in plan.campaign.budgets:
        mine = np.isin(k, b.options)
        m = decision.cost[rows, k][mine]
        held = truth.cost[rows, k][mine].sum() / m.sum()
        group = (m * ratio[groups[mine]]).sum() / m.sum()
        o, e = observed[b.options].sum(), (predicted * level)[b.options].sum()
        out.append({"seed": data["seed"], "budget": b.name, "holders": held - 1.0,
                    "groups": group - 1.0, "beyond": held / group - 1.0,
                    "holdout_plan_rows": o / e - 1.0 if e > 0 else np.nan,
                    "redemptions": o})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 110)))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/plan_selection"))
    parser.add_argument("--rules", nargs="+", default=["population", "selection"])
    parser.add_argument("--decompose", action="store_true")
    args = parser.parse_args()
    rows, parts = [], []
    for seed in args.seeds:
        data = cached_seed(seed, args.users, args.cache)
        arrivals = Arrivals.sample(data["truth"].n_users, range(20))
        for rule in args.rules:
            plan = replan(data, rule)
            rows.append({"seed": seed, "rule": rule, **score(data, plan, arrivals)})
            if args.decompose and rule == args.rules[0]:
                parts += decompose(data, plan)
    frame = pd.DataFrame(rows)
    by = frame.groupby("rule", sort=False)
    table = {"value_pct": by["value_pct"].mean()}
    for column in frame.columns:
        name = column.split(":")[0]
        if column.endswith(":true_pct"):
            table[f"{name} seeds over"] = by[column].apply(lambda s: int((s > 0).sum()))
            table[f"{name} worst %"] = by[column].max()
        elif column.endswith(":draws_over"):
            table[f"{name} play-outs over"] = by[column].mean()
    print(f"seeds {args.seeds}, {args.users:,} users")
    print(pd.DataFrame(table).T.round(3).to_string())
    if parts:
        print(pd.DataFrame(parts).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
