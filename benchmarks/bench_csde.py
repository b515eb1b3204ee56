"""CSDE's two similarity losses, and its domain attention by lifecycle segment and activity.

1. Fits CSDE with the L2 distance and with the adversarial discriminator on the
   same world splits (user-level holdout) and prints AUC / log loss by segment
   (mean±std over seeds): which similarity works better here.
2. For the first seed's L2 model, prints the mean attention weight of each
   domain embedding (target, source, csde) on the test rows with source history,
   by lifecycle segment
   and by how many clicks the user has in the shop: the generated embedding
   should weigh more where the shop knows less.

Usage::

    python benchmarks/bench_csde.py                          # 40k users, seeds 0 1 2
    python benchmarks/bench_csde.py --n-users 10000 --seeds 0
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy/torch start their thread pools

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch

from benchmarks.harness import ModelVariant, format_table, run_benchmark, world_split
from predictors.models.csde import CSDEModel

CLICK_BUCKETS = (-1, 0, 5, 11, 1_000)  # clicks in the shop: none, 1-5, 6-11, 12+
CLICK_LABELS = ("no clicks", "1-5 clicks", "6-11 clicks", "12+ clicks")


def attention_table(model: CSDEModel, X: pd.DataFrame, segment: np.ndarray) -> pd.DataFrame:
    """Mean attention weight per domain by lifecycle segment and by shop clicks, plus rows.

    Only rows with source history (where the generated embedding exists), so each
    row of the table sums to 1.
    """
    weights = model.attention_weights(X)
    keep = (weights["source"] > 0).to_numpy()
    weights, X, segment = weights.loc[keep], X.loc[keep], segment[keep]
    clicks = X["tgt_click_seq"].fillna("").astype(str).map(lambda s: s.count("|") + 1 if s else 0)
    activity = pd.cut(clicks, CLICK_BUCKETS, labels=CLICK_LABELS)
    parts = []
    for name, key in (("segment", segment), ("shop clicks", activity.to_numpy())):
        grouped = weights.groupby(key, observed=True)
        table = grouped.mean().round(3)
        table["rows"] = grouped.size()
        table.index = [f"{name}: {k}" for k in table.index]
        parts.append(table)
    return pd.concat(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-users", type=int, default=40_000, help="world size")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pd.set_option("display.width", 400)
    pd.set_option("display.max_columns", 50)

    start = time.perf_counter()
    splits: dict[int, object] = {}

    def split_of(seed: int):
        return splits.setdefault(seed, world_split(args.n_users, seed=seed))

    variants = [
        ModelVariant("csde (l2)", "csde", None, {"similarity": "l2"}),
        ModelVariant("csde (adversarial)", "csde", None, {"similarity": "adversarial"}),
    ]
    result = run_benchmark(
        {"world": split_of},
        variants=variants,
        seeds=args.seeds,
        log=lambda line: print(line, flush=True),
    )
    print(f"\n== world ({args.n_users:,} users): mean±std over seeds {args.seeds} ==")
    print(format_table(result, "world", by="segment").to_string())

    seed = args.seeds[0]
    split = split_of(seed)
    model = CSDEModel(split.spec, similarity="l2", seed=seed).fit(split.X_train, split.y_train)
    print(f"\n== CSDE (l2) attention weights on the test rows, seed {seed} ==")
    print(attention_table(model, split.X_test, split.segment_test).to_string())
    print(f"\ntotal {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
