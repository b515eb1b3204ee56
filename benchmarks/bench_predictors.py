"""Benchmark every registered conversion predictor on the simulated world and MovieLens-100k.

Rows: LightGBM on target features only and on target + source features, then
every other registered conversion model (``benchmarks.harness.CONVERSION_MODELS``;
a model that raises is skipped with a printed note).  Tables: AUC and log loss (mean±std
over seeds) per domain, per scene, per lifecycle segment and per item-popularity bin, and
training samples/s.  Splits (labelled rows of both domains and every scene) are described
in :mod:`benchmarks.harness`.

``--claims`` adds the rows the sources' own comparisons need and prints them: WE-CAN's
ordering (self-train < fine-tune < DANN < Wasserstein transfer < WE-CAN) and the gains over
self-train by popularity bin; CDAnet against MMOE on ``--shares`` of the training rows;
PLE and STAR against one self-train model per scene on the cold (smallest) target scene.

Throughput is measured single-threaded (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``): the target machine has 2 shared cores and
oversubscription ruins the numbers.

Usage::

    python benchmarks/bench_predictors.py                       # 30k-user world + MovieLens, 3 seeds
    python benchmarks/bench_predictors.py --n-users 5000 --seeds 0 --models mlp dcnv2
    python benchmarks/bench_predictors.py --store sqlite:///data/growth.db   # also write metrics
    python benchmarks/bench_predictors.py --n-users 5000 --claims --out /tmp/bench  # + CSVs

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

from benchmarks.claims import (
    WECAN_ORDER,
    claim_variants,
    cold_scene_table,
    ordering_table,
    share_table,
)
from benchmarks.harness import (
    CONVERSION_MODELS,
    GROUPINGS,
    BenchmarkResult,
    BenchmarkSplit,
    default_variants,
    format_table,
    gains,
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
    parser.add_argument(
        "--epochs-of", nargs="+", default=[], metavar="NAME=N", help="one model's epochs"
    )
    parser.add_argument("--claims", action="store_true", help="the sources' comparisons too")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the metrics CSVs")
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
    params = _epochs(parser, registry, args.epochs, args.epochs_of)
    variants = default_variants(registry, params=params)
    if args.claims:
        variants += claim_variants(registry, params, args.shares)

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
        variants=variants,
        seeds=args.seeds,
        registry=registry,
        log=lambda line: print(line, flush=True),
    )
    pd.set_option("display.width", 400)
    pd.set_option("display.max_columns", 50)
    for dataset in datasets:
        if (result.metrics["dataset"] == dataset).any():
            _print_tables(result, dataset, args.seeds, args.claims, args.shares)
    for dataset, model, seed, error in result.failures:
        print(f"note: {model} failed on {dataset} (seed {seed}): {error}")
    print(f"\ntotal {time.perf_counter() - start:.0f}s")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        result.metrics.to_csv(args.out / "metrics.csv", index=False)
        result.throughput.to_csv(args.out / "throughput.csv", index=False)
        print(f"metrics and throughput written to {args.out}")
    if args.store:
        from growth.store import Store

        run_id = store_benchmark(
            result, Store(args.store), vars(args) | {"movielens_dir": str(args.movielens_dir)}
        )
        print(f"metrics written to {args.store} (run {run_id})")
    return 0


def _epochs(
    parser: argparse.ArgumentParser,
    registry: dict[str, type],
    epochs: int | None,
    epochs_of: list[str],
) -> dict[str, dict[str, int]]:
    """Constructor overrides: ``epochs`` for every torch model, then ``NAME=N`` for one."""
    params = {
        name: {"epochs": epochs}
        for name, cls in registry.items()
        if epochs is not None and "epochs" in constructor_params(cls)
    }
    for item in epochs_of:
        name, _, n = item.partition("=")
        if name not in registry or not n.isdigit():
            parser.error(f"--epochs-of takes NAME=N with a registered NAME, got {item!r}")
        params[name] = {"epochs": int(n)}
    return params


def _print_tables(
    result: BenchmarkResult, dataset: str, seeds: list[int], claims: bool, shares: list[float]
) -> None:
    """The dataset's tables by every grouping, then (``claims``) the sources' comparisons."""
    for by in GROUPINGS:
        print(f"\n== {dataset} by {by}: mean±std over seeds {seeds} ==")
        print(format_table(result, dataset, by=by).to_string())
    ranges = pd.concat(result.popularity).query("dataset == @dataset")
    print(f"\n== {dataset}: logged training rows of the items in each popularity bin ==")
    print(ranges.groupby("popularity")[["min", "max", "test_rows"]].mean().round(1).to_string())
    if not claims:
        return
    table, verdict = ordering_table(result, dataset)
    print(f"\n== {dataset}: WE-CAN's ordering (target AUC) ==\n{table.to_string()}\n{verdict}")
    try:
        print(f"\n== {dataset}: AUC gain over self_train by popularity bin (p1 = cold) ==")
        print(gains(result, dataset, by="popularity", base="self_train",
                    models=[*WECAN_ORDER[1:], "cdanet", "lightgbm_target_source"]).to_string())  # fmt: skip
        print(f"\n== {dataset}: CDAnet vs MMOE by share of training rows ==")
        print(share_table(result, dataset, shares).to_string())
        scene, table = cold_scene_table(result, dataset)
        print(f"\n== {dataset}: cold scene {scene!r}, PLE/STAR vs one model per scene ==")
        print(table.to_string())
    except (ValueError, KeyError) as err:
        print(f"note: a comparison on {dataset} is missing its rows: {err}")


if __name__ == "__main__":
    sys.exit(main())
