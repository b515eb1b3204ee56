"""Tune the push history's kernel width and prior strengths on the tuning seeds (100-104).

Usage: .venv/bin/python benchmarks/tune_push_history.py [--seeds 100 101 102 103 104]
    [--users 20000] [--models]

For each setting of :class:`~growth.campaigns.push.history.HistoryPriors`, per
world: the open model's held-out AUC and log loss, and a schedule-free proxy of
the plan's value: each user's true open probability at the (message, hour) the
model ranks first, as a share of the user's best true probability (summed over
the audience).  The chosen setting is then checked on the truth by
``bench_push_truth.py`` on the reporting seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from growth.campaigns.push import HOURS, push_audience
from growth.campaigns.push.history import HistoryPriors
from growth.campaigns.push.open_model import OpenRateRows
from growth.modeling.features import ConversionFeatures
from growth.world import generate_world, load_scenario

GRID = {
    "bandwidth 1.5, hour 2, activity 3 (default)": HistoryPriors(),
    "bandwidth 1.0": HistoryPriors(bandwidth=1.0),
    "bandwidth 2.5": HistoryPriors(bandwidth=2.5),
    "hour prior 0.5": HistoryPriors(hour=0.5),
    "hour prior 8": HistoryPriors(hour=8.0),
    "activity prior 1": HistoryPriors(activity=1.0),
    "activity prior 10": HistoryPriors(activity=10.0),
}

MODELS = {
    "linear leaves, 3 leaves, lambda 1 (default)": {},
    "constant leaves": {"linear_tree": False},
    "linear leaves, 2 leaves": {"num_leaves": 2},
    "linear leaves, 7 leaves": {"num_leaves": 7},
    "linear leaves, 400 trees at rate 0.05": {"n_estimators": 400, "learning_rate": 0.05},
}


def top_choice_share(world, audience, p: np.ndarray) -> float:
    """Sum of true p at each user's predicted-best (message, hour) over the sum of true maxima."""
    n, m = audience.message_ids.shape
    best = p.reshape(n, -1).argmax(axis=1)
    msg, hour = best // HOURS, best % HOURS
    users = np.repeat(np.arange(n), m * HOURS)
    true = (
        world.open_prob(
            audience.user_ids[users],
            np.repeat(np.where(audience.mask, audience.message_ids, 0).ravel(), HOURS),
            np.tile(np.arange(HOURS), n * m),
            np.zeros(n * m * HOURS, dtype=np.int64),
        ).reshape(n, m, HOURS)
        * audience.mask[:, :, None]
    )
    picked = true[np.arange(n), msg, hour]
    return float(picked.sum() / true.reshape(n, -1).max(axis=1).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--models", action="store_true", help="vary the open model instead")
    args = parser.parse_args()
    grid = (
        {name: (HistoryPriors(), params) for name, params in MODELS.items()}
        if args.models
        else {name: (priors, {}) for name, priors in GRID.items()}
    )
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in grid}
    for seed in args.seeds:
        world = generate_world(load_scenario("default", n_users=args.users, seed=seed))
        features = ConversionFeatures(world.dataset)
        audience = push_audience(features, max_users=20_000, seed=seed)
        for name, (priors, params) in grid.items():
            rows = OpenRateRows(features, priors)
            model, metrics = rows.fit(seed=seed, **params)
            share = top_choice_share(world, audience, rows.predict_hours(model, audience))
            overall = metrics.iloc[0]
            results[name].append((overall["auc"], overall["logloss"], share))
            print(
                f"seed {seed} {name}: AUC {overall['auc']:.4f} log loss "
                f"{overall['logloss']:.4f} top-choice share {100 * share:.2f} %",
                flush=True,
            )
    print("| setting | AUC | log loss | top-choice share % |\n|---|---|---|---|")
    for name, values in results.items():
        auc, ll, share = np.mean(values, axis=0)
        print(f"| {name} | {auc:.4f} | {ll:.4f} | {100 * share:.2f} |")


if __name__ == "__main__":
    main()
