"""Which holdout criterion picks the model whose coupon plan is truly better, on worlds not used to design it.

Usage: nice -n 5 .venv/bin/python benchmarks/bench_chooser.py [--worlds small:1-10 default:1-5]
    [--users 20000] [--budget 4000] [--merchant-budget 400]
    [--cache benchmarks/.chooser_cache.json]

``--worlds``: ``variation:seeds`` (``1-10`` or ``1,3,5``), run in the order given.  The
variations: ``default`` (the default scenario at ``--users`` users and ``--budget`` /
``--merchant-budget``, the per-user budget of the demo's 20,000 per 100,000 users),
``source50`` (has_source_rate 0.5) and ``newheavy`` (a lifecycle mix with more new
users) at the same size and budgets, and ``small`` (the small scenario at its own
3,000 users, platform budget 500, merchants 2,000 each: ``bench_truth_scoring.py``'s).
For each world the nightly's ``auto`` trains CSDE and LightGBM once; each model's
calibrated decision is planned under the same budgets; each plan is played out on the truth
(:func:`~growth.campaigns.coupons.playout.play_out`, 20 arrival orders, same
budgets) and estimated off-policy on the holdout
(:mod:`growth.campaigns.coupons.value`).  The truly better plan is the one with
more honoured incremental conversions.  Each criterion picks a model: holdout log
loss (lower), AUC, Qini (higher), the old rule (Qini, 2 se paired folds), and the
plan value (:func:`~growth.campaigns.coupons.choice.choose_plan`), also at other
thresholds and on the paired IPS and SNIPS differences (from the same cache).  The
tables, per variation and over every world: how often each picks the truly better
plan, and the value lost when it does not (mean over the worlds it misses, and worst,
in % of the better plan); then each world's figures.  Coverage: how often each
estimator's 95 % interval covers the plan's true expected value (every redemption
paid: the quantity it estimates) and its true expected spend per budget group.

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
from growth.campaigns.coupons.uplift import with_uplift_scale
from growth.campaigns.coupons.value import value_differences
from growth.campaigns.settings import CouponSettings
from growth.jobs.config import NightlyConfig
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import train_models
from growth.world import WorldConfig, generate_world, load_scenario

CRITERIA = ("logloss", "auc", "qini", "qini_2se", "plan_value")
Z_SHOWN = tuple(dict.fromkeys((CHOICE_Z, 0.0, 1.0, 2.0, 3.0)))
"""The rule's threshold as shipped, and others for comparison (from the same cache)."""
OTHER_ESTIMATORS = ("ips", "snips")
"""The rule at :data:`CHOICE_Z` on the paired difference by these estimators, for comparison."""
VARIATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "source50": {"has_source_rate": 0.5},
    "newheavy": {"lifecycle_shares": {"potential": 0.2, "new": 0.4, "active": 0.3, "lost": 0.1}},
    "small": {},
}
"""Overrides of the scenario's world config per variation."""
OWN_SIZE = {
    "small": {"scenario": "small", "users": None, "budget": 500.0, "merchant_budget": 2_000.0}
}
"""Variations at their scenario's own size and budgets (``None``: the scenario's ``n_users``)."""
console = Console(width=200)


def world_spec(variation: str, args: argparse.Namespace) -> dict[str, Any]:
    """The scenario, users and budgets of a variation's worlds."""
    default = {
        "scenario": "default",
        "users": args.users,
        "budget": args.budget,
        "merchant_budget": args.merchant_budget,
    }
    return OWN_SIZE.get(variation, default)


def world_config(
    variation: str, seed: int, users: int | None, scenario: str = "default"
) -> WorldConfig:
    base = load_scenario(scenario, n_users=users, seed=seed)
    return WorldConfig(**{**base.model_dump(), **VARIATIONS[variation]})


def score_world(variation: str, seed: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Train once, plan each model, play out and estimate each plan; what each criterion picks."""
    world = generate_world(world_config(variation, seed, spec["users"], spec["scenario"]))
    features = ConversionFeatures(world.dataset)
    config = NightlyConfig(seed=seed)
    models = train_models(features, **config.training_options(), seed=seed)
    models = with_uplift_scale(models, apply=config.stretch_effects)
    settings = CouponSettings(budget=spec["budget"], merchant_budget=spec["merchant_budget"])
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
            "in_sample": c.in_sample.frame.to_dict(orient="records"),
        }
    out["picks"] = picks(out["models"], choice.chosen.name, models.predictor)
    (pair, diff), *_ = choice.differences.items()
    out["difference"] = diff.summary()
    out["difference_of"] = pair.split(" - ")
    a, b = (next(c for c in cands if c.name == n) for n in out["difference_of"])
    every = value_differences((a.plan, b.plan), (a.log, b.log))
    out["differences"] = {name: e.summary() for name, e in every.items()}
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


def difference(r: dict[str, Any], estimator: str = "dr") -> tuple[str, str, float, float]:
    """(a, b, value, se): the paired estimate of a's plan value minus b's (DR: the chooser's)."""
    names = list(r["models"])
    a, b = r.get("difference_of") or [
        next(n for n in names if n != r["picks"]["qini_2se"]),
        r["picks"]["qini_2se"],
    ]
    d = r["difference"] if estimator == "dr" else r["differences"][estimator]
    return a, b, d["value"], d["se"]


def rule(r: dict[str, Any], z: float, estimator: str = "dr") -> str:
    """The chooser's rule at ``z``: the higher estimated plan value by more than ``z`` se,
    else auto's default, the previous rule's pick (:func:`growth.campaigns.coupons.choice.choose_plan`)."""
    a, b, value, se = difference(r, estimator)
    if value > z * se:
        return a
    if -value > z * se:
        return b
    return r["picks"]["qini_2se"]


def criteria(results: list[dict[str, Any]]) -> list[str]:
    """The criteria scored, after adding each rule variant's pick to every world's picks."""
    for r in results:
        r["picks"] |= {f"plan_value_z{z:g}": rule(r, z) for z in Z_SHOWN}
        if "differences" in r:
            r["picks"] |= {f"plan_value_{e}": rule(r, CHOICE_Z, e) for e in OTHER_ESTIMATORS}
    others = [
        f"plan_value_{e}" for e in OTHER_ESTIMATORS if all("differences" in r for r in results)
    ]
    return [*CRITERIA[:-1], *(f"plan_value_z{z:g}" for z in Z_SHOWN), *others]


def score(results: list[dict[str, Any]], crit: str) -> tuple[int, list[float]]:
    """How often ``crit`` picks the truly better plan, and the % of its value lost per world."""
    hits, lost = 0, []
    for r in results:
        value = {n: v["played_value"] for n, v in r["models"].items()}
        best = max(value, key=value.get)
        pick = r["picks"][crit]
        hits += pick == best
        lost.append(100.0 * (value[best] - value[pick]) / max(value[best], 1e-9))
    return hits, lost


def lost_cells(lost: list[float]) -> str:
    """Mean value lost over the worlds missed, and the worst, as table cells."""
    wrong = [x for x in lost if x > 0]
    mean = f"{np.mean(wrong):.2f} %" if wrong else "-"
    return f"{mean} | {max(lost):.2f} %"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: per criterion, hits of the truly better plan and value lost when wrong."""
    lines = [
        "| criterion | picks the truly better plan | value lost when wrong, mean | worst |",
        "|---|---|---|---|",
    ]
    for crit in criteria(results):
        hits, lost = score(results, crit)
        lines.append(f"| {crit} | {hits} / {len(results)} | {lost_cells(lost)} |")
    return "\n".join(lines)


def variations_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: per criterion, hits per variation and over every world; value lost overall."""
    every = [r for rs in results.values() for r in rs]
    head = " | ".join(f"{v} ({len(rs)})" for v, rs in results.items())
    lines = [
        f"| criterion | {head} | all ({len(every)}) | value lost when wrong, mean | worst |",
        "|---|" + "---|" * (len(results) + 3),
    ]
    for crit in criteria(every):
        cells = " | ".join(str(score(rs, crit)[0]) for rs in results.values())
        hits, lost = score(every, crit)
        lines.append(f"| {crit} | {cells} | {hits} | {lost_cells(lost)} |")
    return "\n".join(lines)


def worlds_table(results: list[dict[str, Any]]) -> str:
    """Markdown: per world, each plan's played-out value, the better, the difference and picks."""
    lines = [
        "| world | CSDE plan (truth) | LightGBM plan (truth) | truly better "
        "| DR difference (se) | log loss picks | Qini picks | auto's default "
        f"| chooser (z = {CHOICE_Z:g}) picks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        value = {n: v["played_value"] for n, v in r["models"].items()}
        a, b, diff, se = difference(r)
        p = r["picks"]
        lines.append(
            f"| {r['world']} | {value.get('csde', float('nan')):.1f} "
            f"| {value.get('lightgbm', float('nan')):.1f} | {max(value, key=value.get)} "
            f"| {a} - {b}: {diff:+.1f} ({se:.1f}) | {p['logloss']} | {p['qini']} "
            f"| {p['qini_2se']} | {rule(r, CHOICE_Z)} |"
        )
    return "\n".join(lines)


def coverage(results: list[dict[str, Any]]) -> str:
    """Markdown: per estimator, cross-fitted (the plan's own estimates) and in-sample (the
    rows that calibrated the plan value it), each where the cache has it (:data:`ESTIMATES`):
    how often the interval covers the true value and every budget's true spend, the mean
    absolute error and the mean of (estimate - truth) / se, which is 0 for an honest one."""
    lines = [
        "| estimator | estimates | value covered | mean abs error | mean z | "
        "spend covered (every budget) |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ESTIMATES:
        for est in ("ips", "snips", "dr"):
            cov, err, z, spend = [], [], [], []
            for v, rows in plan_estimates(results, kind):
                e = rows[("value", est)]
                cov.append(e["lower"] <= v["true_value"] <= e["upper"])
                err.append(abs(e["estimate"] - v["true_value"]))
                z.append((e["estimate"] - v["true_value"]) / max(e["se"], 1e-12))
                for name, true in v["true_spend"].items():
                    s = rows[(f"spend:{name}", est)]
                    spend.append(s["lower"] <= true <= s["upper"])
            if cov:
                lines.append(
                    f"| {est} | {kind} | {sum(cov)} / {len(cov)} | {np.mean(err):.1f} "
                    f"| {np.mean(z):+.2f} | {sum(spend)} / {len(spend)} |"
                )
    return "\n".join(lines)


def spend_table(results: list[dict[str, Any]], estimator: str = "dr") -> str:
    """Markdown: per budget and kind of estimate, the median of estimate / true spend, the
    mean of (estimate - truth) / se (plans with a zero se left out) and the coverage."""
    lines = [
        "| budget | estimates | median estimate / truth | mean z | covered |",
        "|---|---|---|---|---|",
    ]
    budgets = sorted({b for r in results for v in r["models"].values() for b in v["true_spend"]})
    for budget in budgets:
        for kind in ESTIMATES:
            ratio, z, cov = [], [], []
            for v, rows in plan_estimates(results, kind):
                if budget not in v["true_spend"]:
                    continue
                e, true = rows[(f"spend:{budget}", estimator)], v["true_spend"][budget]
                ratio.append(e["estimate"] / true if true > 0 else np.nan)
                z += [(e["estimate"] - true) / e["se"]] if e["se"] > 0 else []
                cov.append(e["lower"] <= true <= e["upper"])
            if cov:
                lines.append(
                    f"| {budget} | {kind} | {np.nanmedian(ratio):.2f} | {np.mean(z):+.2f} | "
                    f"{sum(cov)} / {len(cov)} |"
                )
    return "\n".join(lines)


ESTIMATES = {
    "cross-fitted": lambda v: v["estimates"] if "in_sample" in v else None,
    "in-sample": lambda v: v.get("in_sample", v["estimates"]),
}
"""A cached plan's estimates of each kind (None: none); caches from before the cross-fit
hold the in-sample estimates alone, under ``estimates``."""


def plan_estimates(results: list[dict[str, Any]], kind: str):
    """(plan record, its ``kind`` estimates by (quantity, estimator)) of every cached plan
    that has them (:data:`ESTIMATES`)."""
    for r in results:
        for v in r["models"].values():
            records = ESTIMATES[kind](v)
            if records is not None:
                yield v, {(e["quantity"], e["estimator"]): e for e in records}


def parse_worlds(items: list[str]) -> list[tuple[str, int]]:
    """``variation:1-10`` / ``variation:1,3`` items as (variation, seed) pairs, in order."""
    worlds = []
    for item in items:
        variation, _, seeds = item.partition(":")
        if variation not in VARIATIONS or not seeds:
            raise SystemExit(
                f"--worlds {item!r}: want VARIATION:SEEDS, VARIATION one of {list(VARIATIONS)}"
            )
        for part in seeds.split(","):
            lo, _, hi = part.partition("-")
            worlds += [(variation, s) for s in range(int(lo), int(hi or lo) + 1)]
    return worlds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", default=["default:1-10"])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=4_000.0)
    parser.add_argument("--merchant-budget", type=float, default=400.0)
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.chooser_cache.json"))
    args = parser.parse_args()
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    results: dict[str, list[dict[str, Any]]] = {}
    for variation, seed in parse_worlds(args.worlds):
        spec = world_spec(variation, args)
        key = f"{variation}/{seed}/{spec['users']}/{spec['budget']}/{spec['merchant_budget']}"
        if key not in cache:
            with console.status(f"world {variation} seed {seed}: train, plan, play out"):
                cache[key] = score_world(variation, seed, spec)
            args.cache.write_text(json.dumps(cache))
        r = cache[key]
        results.setdefault(variation, []).append(r)
        vals = ", ".join(f"{n} {v['played_value']:.1f}" for n, v in r["models"].items())
        console.print(f"{r['world']}: played-out value {vals}; picks {r['picks']}")
    every = [r for rs in results.values() for r in rs]
    for variation, rs in [*results.items(), ("all", every)]:
        print(f"\n{variation}: {len(rs)} worlds\n" + table(rs))
    print(variations_table(results))
    print(worlds_table(every))
    print(coverage(every))
    print(spend_table(every))


if __name__ == "__main__":
    main()
