"""Which holdout criterion picks the model whose coupon plan is truly better, on worlds not used to design it.

Usage: nice -n 5 .venv/bin/python benchmarks/bench_chooser.py [--seeds 1 .. 10]
    [--variations] [--users 20000] [--budget 4000] [--merchant-budget 400]
    [--cache benchmarks/.chooser_cache.json]

For each world (the default scenario at ``--users`` users, each seed; with
``--variations`` also has_source_rate 0.5 and a lifecycle mix with more new users,
seeds 1-3 each) the nightly's ``auto`` trains CSDE and LightGBM once; each model's
calibrated decision is planned under the same budgets (the per-user budget of the
demo's 20,000 per 100,000 users); each plan is played out on the truth
(:func:`~growth.campaigns.coupons.playout.play_out`, 20 arrival orders, same
budgets) and estimated off-policy on the holdout
(:mod:`growth.campaigns.coupons.value`).  The truly better plan is the one with
more honoured incremental conversions.  Each criterion picks a model: holdout log
loss (lower), AUC, Qini (higher), the old rule (Qini, 2 se paired folds), and the
plan value (:func:`~growth.campaigns.coupons.choice.choose_plan`).  The table: how
often each picks the truly better plan, and the value lost when it does not (mean
over the worlds, and worst, in % of the better plan).  Coverage: how often each
estimator's 95 % interval covers the plan's true expected value (every redemption
paid: the quantity it estimates) and its true expected platform spend.

Each world's figures are cached in ``--cache`` (JSON, keyed by world) so a run can be
resumed; delete the file to recompute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from growth.campaigns.coupons import Arrivals, play_out, true_coupon_decision
from growth.campaigns.coupons.choice import CHOICE_Z, plan_candidates, score_candidates
from growth.campaigns.settings import CouponSettings
from growth.jobs.config import NightlyConfig
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import train_models
from growth.world import WorldConfig, generate_world, load_scenario

CRITERIA = ("logloss", "auc", "qini", "qini_2se", "plan_value")
Z_SHOWN = (CHOICE_Z, 0.0, 1.0)
"""The rule's threshold as shipped, and two others for comparison (from the same cache)."""
VARIATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "source50": {"has_source_rate": 0.5},
    "newheavy": {"lifecycle_shares": {"potential": 0.2, "new": 0.4, "active": 0.3, "lost": 0.1}},
}
console = Console()


def world_config(variation: str, seed: int, users: int) -> WorldConfig:
    base = load_scenario("default", n_users=users, seed=seed)
    return WorldConfig(**{**base.model_dump(), **VARIATIONS[variation]})


def score_world(variation: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train once, plan each model, play out and estimate each plan; what each criterion picks."""
    world = generate_world(world_config(variation, seed, args.users))
    features = ConversionFeatures(world.dataset)
    options = NightlyConfig(seed=seed).training_options()
    models = train_models(features, **options, seed=seed)
    settings = CouponSettings(budget=args.budget, merchant_budget=args.merchant_budget)
    decisions = score_candidates(features, models, torch_threads=1)
    choice = plan_candidates(models, decisions, settings)
    cands = choice.candidates
    truth = true_coupon_decision(world)
    arrivals = Arrivals.sample(truth.n_users, range(20))
    out: dict[str, Any] = {"world": f"{variation}/{seed}", "models": {}}
    for c in cands:
        played = play_out(truth, c.plan.choice, c.plan.campaign.budgets, arrivals)
        evaluated = truth.evaluate(c.plan.choice)
        metric = c.models.metrics.query("segment == 'all' and model == @c.name")
        out["models"][c.name] = {
            "played_value": float(played.value.mean()),
            "true_value": evaluated["incremental_conversions"],
            "true_spend": true_spend(truth, c.plan),
            "metrics": dict(zip(metric["metric"], metric["value"].astype(float), strict=True)),
            "estimates": c.value.frame.to_dict(orient="records"),
        }
    out["picks"] = picks(out["models"], choice.chosen.name, models.predictor)
    (pair, diff), *_ = choice.differences.items()
    out["difference"] = diff.summary()
    out["difference_of"] = pair.split(" - ")
    return out


def true_spend(truth, plan) -> dict[str, float]:
    """The plan's true expected spend per budget group (every redemption paid)."""
    given = plan.choice >= 0
    option = plan.choice[given]
    cost = truth.cost[np.flatnonzero(given), option]
    return {b.name: float(cost[np.isin(option, b.options)].sum()) for b in plan.campaign.budgets}


def picks(models: dict[str, Any], plan_value: str, qini_2se: str) -> dict[str, str]:
    """The model each criterion picks."""
    m = {name: v["metrics"] for name, v in models.items()}
    return {
        "logloss": min(m, key=lambda n: m[n]["logloss"]),
        "auc": max(m, key=lambda n: m[n]["auc"]),
        "qini": max(m, key=lambda n: m[n]["qini"]),
        "qini_2se": qini_2se,
        "plan_value": plan_value,
    }


def difference(r: dict[str, Any]) -> tuple[str, str, float, float]:
    """(a, b, value, se): the paired DR estimate of a's plan value minus b's."""
    names = list(r["models"])
    a, b = r.get("difference_of") or [
        next(n for n in names if n != r["picks"]["qini_2se"]),
        r["picks"]["qini_2se"],
    ]
    d = r["difference"]
    return a, b, d["value"], d["se"]


def rule(r: dict[str, Any], z: float) -> str:
    """The chooser's rule at ``z``: the higher estimated plan value by more than ``z`` se,
    else auto's default, the previous rule's pick (:func:`growth.campaigns.coupons.choice.choose_plan`)."""
    a, b, value, se = difference(r)
    if value > z * se:
        return a
    if -value > z * se:
        return b
    return r["picks"]["qini_2se"]


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: per criterion, hits of the truly better plan and value lost when wrong."""
    lines = [
        "| criterion | picks the truly better plan | value lost when wrong, mean | worst |",
        "|---|---|---|---|",
    ]
    for r in results:
        r["picks"] |= {f"plan_value_z{z:g}": rule(r, z) for z in Z_SHOWN}
    for crit in [*CRITERIA[:-1], *(f"plan_value_z{z:g}" for z in Z_SHOWN)]:
        hits, lost = 0, []
        for r in results:
            value = {n: v["played_value"] for n, v in r["models"].items()}
            best = max(value, key=value.get)
            pick = r["picks"][crit]
            hits += pick == best
            lost.append(100.0 * (value[best] - value[pick]) / max(value[best], 1e-9))
        wrong = [x for x in lost if x > 0]
        mean = f"{np.mean(wrong):.2f} %" if wrong else "-"
        lines.append(f"| {crit} | {hits} / {len(results)} | {mean} | {max(lost):.2f} % |")
    return "\n".join(lines)


def coverage(results: list[dict[str, Any]]) -> str:
    """Markdown: how often each estimator's interval covers the true value and platform spend."""
    lines = [
        "| estimator | value covered | mean abs error | spend covered (every budget) |",
        "|---|---|---|---|",
    ]
    for est in ("ips", "snips", "dr"):
        cov, err, spend = [], [], []
        for r in results:
            for v in r["models"].values():
                rows = {(e["quantity"], e["estimator"]): e for e in v["estimates"]}
                e = rows[("value", est)]
                cov.append(e["lower"] <= v["true_value"] <= e["upper"])
                err.append(abs(e["estimate"] - v["true_value"]))
                for name, true in v["true_spend"].items():
                    s = rows[(f"spend:{name}", est)]
                    spend.append(s["lower"] <= true <= s["upper"])
        lines.append(
            f"| {est} | {sum(cov)} / {len(cov)} | {np.mean(err):.1f} | {sum(spend)} / {len(spend)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--variations", action="store_true")
    parser.add_argument("--variation-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=4_000.0)
    parser.add_argument("--merchant-budget", type=float, default=400.0)
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.chooser_cache.json"))
    args = parser.parse_args()
    worlds = [("default", s) for s in args.seeds]
    if args.variations:
        worlds += [(v, s) for v in VARIATIONS if v != "default" for s in args.variation_seeds]
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    results = []
    for variation, seed in worlds:
        key = f"{variation}/{seed}/{args.users}/{args.budget}/{args.merchant_budget}"
        if key not in cache:
            with console.status(f"world {variation} seed {seed}: train, plan, play out"):
                cache[key] = score_world(variation, seed, args)
            args.cache.write_text(json.dumps(cache))
        r = cache[key]
        results.append(r)
        vals = ", ".join(f"{n} {v['played_value']:.1f}" for n, v in r["models"].items())
        console.print(f"{r['world']}: played-out value {vals}; picks {r['picks']}")
    console.print(table(results), markup=False)
    console.print(coverage(results), markup=False)


if __name__ == "__main__":
    main()
