"""Scoring a coupon decision's rows: CSDE with a base row's variants grouped, beside the same
model scoring every row whole, in one process.

Usage: .venv/bin/python benchmarks/bench_scoring.py [--users 20000] [--seed 1] [--threads 1]

Trains CSDE on the world's exposure log (a few epochs: the speed does not depend on how well
it learnt), then scores every candidate (user, item) under every coupon option three ways:
- ``grouped``: the grouped scorer as the nightly calls it (variants marked, the user side
  and the head's non-treatment columns once per (user, item));
- ``rows``: the same scorer with every row scored whole (the path before grouping);
- ``frame``: the joined raw rows through ``predict_proba`` (the reference).
Prints rows per second, the ratios and the largest difference between the scores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from growth.modeling.features import ConversionFeatures
from growth.world import generate_world, load_scenario
from predictors.models.csde import CSDEModel
from predictors.scoring import FrameScorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    world = generate_world(load_scenario("default", n_users=args.users, seed=args.seed))
    features = ConversionFeatures(world.dataset)
    frame = features.exposure_frame()
    model = CSDEModel(features.spec, seed=args.seed, epochs=2, stage1_epochs=1)
    model.fit(frame.X, frame.y)

    cand = features.dataset.candidates
    user = features.user_positions(cand["user_id"].to_numpy())
    item = features.item_positions(cand["item_id"].to_numpy())
    k1, m = len(features.option_ids), len(user)
    option = np.repeat(np.arange(k1), m)
    variant_of = np.tile(np.arange(m), k1)
    base = features.context_frame(item, np.zeros(m, np.int64))
    options = features.context_frame(np.tile(item, k1), option, options_only=True)
    scorer = model.grouped_scorer(features.user_frame, features.option_columns)

    def grouped() -> np.ndarray:
        return scorer.rows(user, base).predict_variants(variant_of, options)

    def rows() -> np.ndarray:
        context = base.iloc[variant_of].reset_index(drop=True)
        for column in options.columns:
            context[column] = options[column].to_numpy()
        return scorer.score(user[variant_of], model.complete_frame(context))

    def whole_frame() -> np.ndarray:
        rows = FrameScorer(model, features.user_frame).rows(user, base)
        return rows.predict_variants(variant_of, options)

    timings, scores = {}, {}
    for name, run in (("grouped", grouped), ("rows", rows), ("frame", whole_frame)):
        start = time.perf_counter()
        scores[name] = run()
        timings[name] = time.perf_counter() - start
    n = len(variant_of)
    print(
        f"{args.users:,} users, {m:,} (user, item) rows x {k1} options = {n:,} rows, "
        f"{args.threads} torch thread(s)"
    )
    for name, seconds in timings.items():
        print(
            f"{name:8s} {seconds:7.2f} s  {n / seconds:12,.0f} rows/s  "
            f"x{timings[name] / timings['grouped']:.2f} the grouped time"
        )
    for name in ("rows", "frame"):
        print(f"largest |grouped - {name}|: {np.abs(scores['grouped'] - scores[name]).max():.2e}")


if __name__ == "__main__":
    main()
