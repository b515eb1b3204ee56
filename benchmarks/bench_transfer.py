"""The transfer models on labelled rows of both domains, and CSDE-cycle's target-feature ablation.

1. ``sampled`` (:func:`predictors.examples.sampled_frame`: labelled source rows plus three
   target scenes sharing one logit): every model trains on the same rows (a seeded 70 %
   of them) and is scored on the held-out *target* rows (AUC, log loss, mean±std over the
   seeds).  Peers: ``dcnv2`` on the target rows only and on all rows read as one domain
   (pooling), ``csde`` without and with the ``domain`` column, and WE-CAN's comparisons
   ``self_train``, ``finetune``, ``dann``, ``wasserstein_transfer``.
   Default hyper-parameters of every model (none tuned here).
2. ``ablation``: CSDE-cycle on the simulated world (user-level holdout), scored on the
   test rows of active users with source history with their real target fields, with
   them removed and with them generated (:func:`predictors.metrics.target_feature_ablation`;
   the source paper reported 0.6494 / 0.6056 / 0.6293 AUC).

Usage::

    python benchmarks/bench_transfer.py                       # seeds 1 2 3, both parts
    python benchmarks/bench_transfer.py --part sampled --rows 3000 --source-share 0.8
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
from rich.console import Console

from benchmarks.harness import world_split
from predictors.examples import DOMAINS, sampled_frame
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics, target_feature_ablation
from predictors.registry import get_predictor

# name -> (registered model, rows it trains on: "all" | "target", keep the domain column)
VARIANTS = {
    "dcnv2 (target rows only)": ("dcnv2", "target", False),
    "dcnv2 (all rows, one domain)": ("dcnv2", "all", False),
    "csde (no domain column)": ("csde", "all", False),
    "csde (source head)": ("csde", "all", True),
    "self_train": ("self_train", "all", True),
    "finetune": ("finetune", "all", True),
    "dann": ("dann", "all", True),
    "wasserstein_transfer": ("wasserstein_transfer", "all", True),
    "wecan": ("wecan", "all", True),
    "cdanet": ("cdanet", "all", True),
}


def sampled_part(rows: int, share: float, seeds: list[int], console: Console) -> pd.DataFrame:
    """AUC / log loss on held-out target rows per variant and seed, plus fit seconds."""
    records = []
    for seed in seeds:
        X, y, _ = sampled_frame(rows, seed=seed, source_share=share)
        test = np.random.default_rng(seed).random(len(X)) < 0.3
        target = (X["domain"] == "target").to_numpy()
        X_test, y_test = X.loc[test & target], y[test & target]
        for label, (name, train_rows, keep_domain) in VARIANTS.items():
            keep = ~test & (target if train_rows == "target" else True)
            X_train = X.loc[keep] if keep_domain else X.loc[keep].drop(columns="domain")
            start = time.perf_counter()
            model = get_predictor(name)(FeatureSpec.infer(X, DOMAINS), seed=seed)
            model.fit(X_train.drop(columns="scene"), y[keep])
            seconds = time.perf_counter() - start
            p = model.predict_proba(X_test.drop(columns=["domain", "scene"]))[:, 1]
            m = binary_metrics(y_test, p)
            records.append({"model": label, "seed": seed, **m, "fit_s": seconds})
            console.log(f"seed {seed} {label}: AUC {m['auc']:.4f} ({seconds:.1f} s)")
    return pd.DataFrame(records)


def ablation_part(n_users: int, seeds: list[int], console: Console) -> pd.DataFrame:
    """CSDE-cycle's AUC with real / removed / generated target fields, per seed."""
    tables = []
    for seed in seeds:
        split = world_split(n_users, seed=seed)
        model = get_predictor("csde_cycle")(split.spec, seed=seed).fit(split.X_train, split.y_train)
        has_source = split.X_test["has_source"].astype(str).eq("True").to_numpy()
        rows = (split.segment_test == "active") & has_source
        table = target_feature_ablation(model, split.X_test.loc[rows], split.y_test[rows])
        tables.append(table[["auc", "logloss", "n"]].assign(seed=seed))
        console.log(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in table["auc"].items()))
    return pd.concat(tables).reset_index()


def mean_std(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    grouped = frame.drop(columns="seed").groupby(by, sort=False)
    return pd.concat([grouped.mean().round(4), grouped.std().round(4).add_suffix("_sd")], axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("sampled", "ablation", "both"), default="both")
    parser.add_argument("--rows", type=int, default=6_000, help="rows of each sampled frame")
    parser.add_argument("--source-share", type=float, default=0.3, help="share of source rows")
    parser.add_argument("--n-users", type=int, default=5_000, help="users of each world")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console(stderr=True)
    if args.part in ("sampled", "both"):
        table = mean_std(sampled_part(args.rows, args.source_share, args.seeds, console), "model")
        print(f"sampled_frame({args.rows}, source_share={args.source_share}), seeds {args.seeds}")
        print(table[["auc", "auc_sd", "logloss", "logloss_sd", "fit_s"]].to_string())
    if args.part in ("ablation", "both"):
        table = mean_std(ablation_part(args.n_users, args.seeds, console), "target_features")
        print(f"csde_cycle, world {args.n_users} users, seeds {args.seeds}: active test users")
        print(table[["auc", "auc_sd", "logloss", "n"]].to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
