"""The push schedule on the truth: % of the oracle, and where the rest is lost.

Usage: .venv/bin/python benchmarks/bench_push_truth.py [--scenario default] [--users 20000]
    [--seeds 1 2 ... 10] [--draws 500] [--no-ceiling] (skip the ceiling and population rows)

Per world seed: the platform's plan (open model fitted on the push log, the day
scheduled under the default push settings) and the oracle (the same audience and
settings, scheduled on the world's true open probabilities) are scored on the
truth (expected opens with the true fatigue).  Beside them, to decompose the gap:

* ``ceiling``: a schedule on the posterior mean open probability of each user
  given the logged pushes and the moments of their logged app activity (exposures), under the world's own prior of hour profiles
  (``--draws`` profiles drawn from it) and with the true relevance and activity:
  what the log can reveal at best (a schedule's expected value is linear in the
  probabilities, so no learning method beats it in expectation); it reads the
  world's hidden generator, so it is a measurement, never a feature;
* ``population hours``: the same with the prior alone (the log's pushes
  ignored): the value of knowing nothing of a user's active hours but
  everything else;
* the plan's certificate gap on its own predictions (the solver's share).

The script uses only APIs that also exist before the history features, so the
"before" column is the same script run on the older tree (see benchmarks/README.md),
under the same deterministic solver limits (:func:`push_settings`).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from growth.campaigns.push import (
    plan_push,
    push_audience,
    push_problem,
    score_against_truth,
    true_push_value,
)
from growth.campaigns.settings import PushSettings
from growth.modeling.features import ConversionFeatures
from growth.world import generate_world, load_scenario
from growth.world._sampling import sigmoid
from growth.world.push import OPEN_ACTIVITY, OPEN_HOUR, OPEN_INTERCEPT, OPEN_RELEVANCE
from growth.world.users import _hour_profiles
from optimizers.push import schedule_push


def _true_logit_parts(world, audience):
    """(n, m) relevance-and-activity logit and (n, 24) true log hour profile of the audience."""
    users = world.users
    uid = audience.user_ids
    base = (
        OPEN_INTERCEPT
        + OPEN_RELEVANCE * audience.relevance.astype(np.float64)
        + OPEN_ACTIVITY * users.activity[uid][:, None]
    )
    return base, np.log(24.0 * users.hour_profile[uid].astype(np.float64))


def _schedule_value(world, audience, p, settings, seed) -> float:
    """True expected opens of the schedule solved on ``p`` (true decay)."""
    problem = push_problem(audience, p, world.config.fatigue_decay, settings)
    # settings.iterations is newer than the "before" tree this script also runs on
    limits = {"max_iter": settings.iterations} if hasattr(settings, "iterations") else {}
    schedule = schedule_push(problem, time_limit_s=settings.time_limit_s, seed=seed, **limits)
    return true_push_value(world, audience, schedule.pushes)


def ceiling(world, audience, settings, seed, draws: int, *, learn: bool = True) -> float:
    """Value of the schedule on each user's posterior mean open probability given the log.

    ``learn=False`` keeps the prior (every user's hours unknown): population hours.
    """
    base, _ = _true_logit_parts(world, audience)
    profiles = np.log(24.0 * _hour_profiles(np.random.default_rng(10_000 + seed), draws))
    log = world.dataset.push_log
    log = log[log["user_id"].isin(audience.user_ids)]
    row = np.searchsorted(audience.user_ids, log["user_id"].to_numpy())
    uid, msg = log["user_id"].to_numpy(), log["message_id"].to_numpy()
    logit0 = (
        OPEN_INTERCEPT
        + OPEN_RELEVANCE * world.push.relevance(uid, msg)
        + OPEN_ACTIVITY * world.users.activity[uid]
    )
    fatigue = world.config.fatigue_decay ** log["prior_pushes_today"].to_numpy()
    y, hour = log["opened"].to_numpy(), log["hour"].to_numpy()
    loglik = np.zeros((len(audience.user_ids), draws))
    for k0 in range(0, draws, 50):
        p = (
            sigmoid(logit0[:, None] + OPEN_HOUR * profiles[k0 : k0 + 50][:, hour].T)
            * fatigue[:, None]
        )
        np.add.at(loglik[:, k0 : k0 + 50], row, np.where(y[:, None] == 1, np.log(p), np.log1p(-p)))
    # the app activity log: each impression's hour is a draw from the user's profile
    ex = world.dataset.exposures
    ex = ex[ex["user_id"].isin(audience.user_ids)]
    erow = np.searchsorted(audience.user_ids, ex["user_id"].to_numpy())
    ehour = pd.to_datetime(ex["timestamp"]).dt.hour.to_numpy()
    np.add.at(loglik, erow, profiles[:, ehour].T - np.log(24.0))
    w = np.exp(loglik - loglik.max(axis=1, keepdims=True)) if learn else np.ones_like(loglik)
    w /= w.sum(axis=1, keepdims=True)
    post = np.zeros((*base.shape, 24))
    for k in range(draws):
        post += w[:, k, None, None] * sigmoid(base[:, :, None] + OPEN_HOUR * profiles[k])
    return _schedule_value(world, audience, post * audience.mask[:, :, None], settings, seed)


def push_settings() -> PushSettings:
    """The default settings; on the older tree (no ``iterations`` setting, a 60 s limit) the
    same deterministic limits: 200 subgradient iterations, a time limit that does not bind."""
    if "iterations" in PushSettings.model_fields:
        return PushSettings()
    import functools

    import optimizers.push.solve as solve

    solve.DecompositionConfig = functools.partial(solve.DecompositionConfig, max_iter=200)
    return PushSettings(time_limit_s=600.0)


def score_seed(scenario: str, users: int, seed: int, draws: int, with_ceiling: bool) -> dict:
    """One world: the plan, the oracle and the decomposition rows."""
    t0 = time.perf_counter()
    world = generate_world(load_scenario(scenario, n_users=users, seed=seed))
    features = ConversionFeatures(world.dataset)
    settings = push_settings()
    plan = plan_push(features, settings, seed=seed)
    truth = score_against_truth(world, plan)
    audience = push_audience(features, max_users=settings.max_users, seed=seed)
    out = {
        "seed": seed,
        "plan": truth["platform"],
        "oracle": truth["oracle"],
        "auc": plan.open_model_auc,
        "solver_gap": plan.schedule.gap,
        "iterations": plan.schedule.info.get("iterations", -1),
        "population_hours": np.nan,
        "ceiling": np.nan,
    }
    if with_ceiling:
        out["population_hours"] = ceiling(world, audience, settings, seed, draws, learn=False)
        out["ceiling"] = ceiling(world, audience, settings, seed, draws)
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--no-ceiling", action="store_true")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        r = score_seed(args.scenario, args.users, seed, args.draws, not args.no_ceiling)
        rows.append(r)
        pct = {k: 100 * r[k] / r["oracle"] for k in ("plan", "population_hours", "ceiling")}
        print(
            f"seed {seed}: plan {r['plan']:,.1f} of oracle {r['oracle']:,.1f} "
            f"({pct['plan']:.1f} %); population hours {pct['population_hours']:.1f} %; "
            f"ceiling {pct['ceiling']:.1f} %; open AUC {r['auc']:.3f}; solver gap "
            f"{100 * r['solver_gap']:.2f} % ({r['iterations']} it); {r['seconds']:.0f} s",
            flush=True,
        )
    print("| | mean | min | max |\n|---|---|---|---|")
    for key in ("plan", "population_hours", "ceiling"):
        v = np.array([100 * r[key] / r["oracle"] for r in rows])
        print(f"| {key} % of oracle | {v.mean():.1f} | {v.min():.1f} | {v.max():.1f} |")
    for key, scale in (("auc", 1.0), ("solver_gap", 100.0)):
        v = np.array([scale * r[key] for r in rows])
        print(f"| {key} | {v.mean():.3f} | {v.min():.3f} | {v.max():.3f} |")


if __name__ == "__main__":
    main()
