"""Benchmark MAML on cold-start user segments of the simulated world.

Tasks are user segments ``region x age_band x lifecycle``.  Per seed, a world is
generated and ``--cold-cells`` of the ``region x age_band`` cells are held out
entirely: their segments are the cold ones.  Every method trains on the warm
rows only.  In each cold segment (rows in timestamp order) the first
``max(--shots)`` rows are the labelled pool: the support set of a ``k``-shot
run is its first ``k`` rows; the query set is every later row (the same for
every ``k``, so columns are comparable).  Segments with fewer than
``--min-query`` query rows or a single query class are skipped.

Methods (rows of the table):

* ``pooled``: the plain MLP (same network) trained on all warm rows, no adaptation.
* ``pooled+finetune``: that MLP fine-tuned on the support set (all weights,
  ``--ft-steps`` full-batch Adam steps at ``--ft-lr``).
* ``segment-only``: the same MLP trained from scratch on the support set alone
  (``--seg-epochs`` epochs; a one-class support set gives a constant score).
* ``maml-init``: the MAML meta-initialisation, no adaptation.
* ``maml`` / ``maml-2nd``: the meta-initialisation adapted to the support set
  (:meth:`MAMLModel.adapt`), first- and second-order meta-training.

Cell value: AUC on the query rows of each cold segment, averaged over the
segments, then mean +- std over seeds.  Meta-training time per seed is printed
for first and second order.

Run:  .venv/bin/python benchmarks/bench_maml.py --orders first second   # 3 seeds, ~4 min, 1 thread
      .venv/bin/python benchmarks/bench_maml.py --seeds 0                    # quick look
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from growth.modeling.features import ConversionFeatures
from growth.world import WorldConfig, generate_world
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.models.maml import MAMLModel
from predictors.models.mlp import MLPModel

SEGMENT_COLUMNS = ("region", "age_band", "lifecycle")
CELL_COLUMNS = ("region", "age_band")


@dataclass
class ColdSegment:
    """One held-out segment: its labelled pool (support candidates) and query rows."""

    name: str
    X_pool: pd.DataFrame
    y_pool: np.ndarray
    X_query: pd.DataFrame
    y_query: np.ndarray


def split_world(
    n_users: int, seed: int, n_cold_cells: int, max_shot: int, min_query: int
) -> tuple[FeatureSpec, pd.DataFrame, np.ndarray, list[ColdSegment]]:
    """Warm training rows and the cold segments of one generated world."""
    world = generate_world(WorldConfig(n_users=n_users, seed=seed))
    features = ConversionFeatures(world.dataset)
    exposures = features.exposure_frame()
    X, y = exposures.X, exposures.y
    cell = X[list(CELL_COLUMNS)].astype(str).agg("|".join, axis=1).to_numpy()
    cells = np.unique(cell)
    rng = np.random.default_rng(seed)
    cold_cells = rng.choice(cells, size=n_cold_cells, replace=False)
    cold = np.isin(cell, cold_cells)
    segment = X[list(SEGMENT_COLUMNS)].astype(str).agg("|".join, axis=1).to_numpy()
    segments = []
    for name in sorted(np.unique(segment[cold])):
        rows = np.flatnonzero(segment == name)  # already in timestamp order
        pool, query = rows[:max_shot], rows[max_shot:]
        if len(query) < min_query or np.unique(y[query]).size < 2:
            continue
        segments.append(
            ColdSegment(
                name=name,
                X_pool=X.iloc[pool].reset_index(drop=True),
                y_pool=y[pool],
                X_query=X.iloc[query].reset_index(drop=True),
                y_query=y[query],
            )
        )
    warm = ~cold
    return features.spec, X[warm].reset_index(drop=True), y[warm], segments


def finetune(model: MLPModel, X: pd.DataFrame, y: np.ndarray, steps: int, lr: float) -> MLPModel:
    """A copy of ``model`` after ``steps`` full-batch Adam steps on all weights."""
    tuned = copy.deepcopy(model)
    module = tuned.module_
    batch = tuned.encoder_.encode(X)
    target = torch.from_numpy(y.astype(np.float32))
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(module(batch), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    module.eval()
    return tuned


def segment_only(
    spec: FeatureSpec, X: pd.DataFrame, y: np.ndarray, hidden: tuple[int, ...], epochs: int
) -> np.ndarray | None:
    """Scores of an MLP trained on the support set alone; None when it has one class."""
    if np.unique(y).size < 2:
        return None
    return MLPModel(
        spec,
        hidden=hidden,
        epochs=epochs,
        batch_size=16,
        validation_fraction=0.0,
        seed=0,
    ).fit(X, y)


def auc(y: np.ndarray, p: np.ndarray | None) -> float:
    return 0.5 if p is None else binary_metrics(y, p)["auc"]


def run_seed(args: argparse.Namespace, seed: int) -> tuple[dict[tuple[str, int], float], dict]:
    """Mean-over-cold-segments AUC per (method, shots) for one seed, plus timings."""
    max_shot = max(args.shots)
    spec, X, y, cold = split_world(args.n_users, seed, args.cold_cells, max_shot, args.min_query)
    hidden = tuple(args.hidden)
    common = {"hidden": hidden, "epochs": args.epochs, "seed": seed}
    info: dict[str, float] = {"warm_rows": len(X), "cold_segments": len(cold)}

    start = time.perf_counter()
    pooled = MLPModel(spec, dropout=0.0, **common).fit(X, y)
    info["pooled_s"] = time.perf_counter() - start
    metas = {}
    for order in args.orders:
        start = time.perf_counter()
        metas[order] = MAMLModel(
            spec,
            segment_columns=SEGMENT_COLUMNS,
            order=order,
            inner_steps=args.inner_steps,
            inner_lr=args.inner_lr,
            support_size=args.support_size,
            **common,
        ).fit(X, y)
        info[f"maml_{order}_s"] = time.perf_counter() - start
        info[f"maml_{order}_epochs"] = len(metas[order].history_)

    scores: dict[tuple[str, int], list[float]] = {}

    def record(method: str, k: int, value: float) -> None:
        scores.setdefault((method, k), []).append(value)

    for seg in cold:
        base = pooled.predict_proba(seg.X_query)[:, 1]
        inits = {o: m.predict_proba(seg.X_query)[:, 1] for o, m in metas.items()}
        for k in args.shots:
            Xs, ys = seg.X_pool.iloc[:k], seg.y_pool[:k]
            record("pooled", k, auc(seg.y_query, base))
            tuned = finetune(pooled, Xs, ys, args.ft_steps, args.ft_lr)
            record("pooled+finetune", k, auc(seg.y_query, tuned.predict_proba(seg.X_query)[:, 1]))
            alone = segment_only(spec, Xs, ys, hidden, args.seg_epochs)
            p_alone = None if alone is None else alone.predict_proba(seg.X_query)[:, 1]
            record("segment-only", k, auc(seg.y_query, p_alone))
            for order, meta in metas.items():
                label = "maml" if order == "first" else "maml-2nd"
                record(f"{label}-init", k, auc(seg.y_query, inits[order]))
                adapted = meta.adapt(Xs, ys, steps=args.adapt_steps)
                record(label, k, auc(seg.y_query, adapted.predict_proba(seg.X_query)[:, 1]))
    return {key: float(np.mean(v)) for key, v in scores.items()}, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-users", type=int, default=6_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shots", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--cold-cells", type=int, default=6, help="held-out region x age cells")
    parser.add_argument("--min-query", type=int, default=100)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--orders", nargs="+", choices=["first", "second"], default=["first"])
    parser.add_argument("--inner-steps", type=int, default=3)
    parser.add_argument("--inner-lr", type=float, default=0.1)
    parser.add_argument("--support-size", type=int, default=32)
    parser.add_argument("--adapt-steps", type=int, default=None, help="default: inner steps")
    parser.add_argument("--ft-steps", type=int, default=20)
    parser.add_argument("--ft-lr", type=float, default=1e-3)
    parser.add_argument("--seg-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    per_seed = []
    for seed in args.seeds:
        start = time.perf_counter()
        result, info = run_seed(args, seed)
        per_seed.append(result)
        timing = ", ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
        )
        print(f"seed {seed}: {time.perf_counter() - start:.0f}s ({timing})", flush=True)

    methods = list(dict.fromkeys(m for m, _ in per_seed[0]))
    header = f"{'method':<18}" + "".join(f"{f'AUC@{k}':>18}" for k in args.shots)
    print(f"\nmean AUC over cold segments, mean +- std over seeds {args.seeds}")
    print(header)
    print("-" * len(header))
    for method in methods:
        cells = []
        for k in args.shots:
            values = np.array([r[(method, k)] for r in per_seed])
            cells.append(f"{values.mean():.4f} +- {values.std():.4f}")
        print(f"{method:<18}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
