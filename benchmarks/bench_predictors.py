"""Benchmark every registered conversion predictor on the simulated world and MovieLens-100k.

Rows: LightGBM on target features only and on target + source features, then
every other registered conversion model (``benchmarks.harness.CONVERSION_MODELS``;
a model that raises is skipped with a printed note).  Columns: AUC, log loss and calibration error
overall and by lifecycle segment (mean±std over seeds), and training
samples/s.  Splits and the auxiliary rows of the multi-task / fine-tune
models are described in :mod:`benchmarks.harness`.

Throughput is measured single-threaded (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``): the target machine has 2 shared cores and
oversubscription ruins the numbers.

Usage::

    python benchmarks/bench_predictors.py                       # 30k-user world + MovieLens, 3 seeds
    python benchmarks/bench_predictors.py --n-users 5000 --seeds 0 --models mlp dcnv2
    python benchmarks/bench_predictors.py --store sqlite:///data/growth.db   # also write metrics

MovieLens files come from ``data/cache/ml-100k`` (fetch them with
``../shared/data/fetch-movielens-100k data/cache/ml-100k``); without them the
MovieLens dataset is skipped with a note.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy/torch/lightgbm start their thread pools

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.harness import (
    CONVERSION_MODELS,
    BenchmarkSplit,
    default_variants,
    format_table,
    movielens_split,
    run_benchmark,
    store_benchmark,
    world_split,
)
from predictors.base import constructor_params

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-users", type=int, default=30_000, help="world size")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["world", "movielens"])
    parser.add_argument("--models", nargs="+", default=None, help="registry names (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override torch models' epochs")
    parser.add_argument("--movielens-dir", type=Path, default=ROOT / "data/cache/ml-100k")
    parser.add_argument("--store", default=None, help="SQL store URL to record a 'benchmark' run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    unknown = sorted(set(args.models or ()) - set(CONVERSION_MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; registered: {sorted(CONVERSION_MODELS)}")
    registry = {
        k: v for k, v in CONVERSION_MODELS.items() if args.models is None or k in args.models
    }
    params = {}
    if args.epochs is not None:
        params = {
            name: {"epochs": args.epochs}
            for name, cls in registry.items()
            if "epochs" in constructor_params(cls)
        }

    datasets = {}
    for name in args.datasets:
        if name == "world":
            datasets["world"] = lambda seed: world_split(args.n_users, seed=seed)
        elif name == "movielens":
            if not (args.movielens_dir / "ml-100k.inter").is_file():
                print(f"note: MovieLens skipped, no files in {args.movielens_dir}")
                continue
            cached: dict[str, BenchmarkSplit] = {}
            datasets["movielens"] = lambda seed, c=cached: c.setdefault(
                "split", movielens_split(args.movielens_dir)
            )
        else:
            parser.error(f"unknown dataset {name!r}; choose world or movielens")

    start = time.perf_counter()
    result = run_benchmark(
        datasets,
        variants=default_variants(registry, params=params),
        seeds=args.seeds,
        registry=registry,
        log=lambda line: print(line, flush=True),
    )
    pd.set_option("display.width", 400)
    pd.set_option("display.max_columns", 50)
    for dataset in datasets:
        if (result.metrics["dataset"] == dataset).any():
            print(f"\n== {dataset}: mean±std over seeds {args.seeds} ==")
            print(format_table(result, dataset).to_string())
    for dataset, model, seed, error in result.failures:
        print(f"note: {model} failed on {dataset} (seed {seed}): {error}")
    print(f"\ntotal {time.perf_counter() - start:.0f}s")
    if args.store:
        from growth.store import Store

        run_id = store_benchmark(
            result, Store(args.store), vars(args) | {"movielens_dir": str(args.movielens_dir)}
        )
        print(f"metrics written to {args.store} (run {run_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
