"""The conversion model cross-fitted over the holdout's users, or averaged over seeds.

Usage: PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diag_cross_fit.py
    [--folds 2] [--same-rows] BENCH [BENCH's arguments ...]

Runs the benchmark script ``BENCH`` (``benchmarks/bench_truth_scoring.py`` or
``benchmarks/bench_budget_buffer.py``) with every conversion candidate of the nightly fitted
``--folds`` times instead of once, each fit on the older rows *and* the holdout's rows outside
one fold of its users (``growth.modeling.training.holdout_folds``, a user's rows in one fold).
Each fold's rows are predicted by the fit that did not see them, so the calibration, the
buffer and the chooser still read out-of-sample probabilities of the whole holdout, while
every fit learns from most of the holdout's rows (on the small scenario: nearly all of new
users' rows, which the chronological holdout takes). The plan reads the fits' mean.

``--same-rows``: the fits all learn from the older rows only (seeds differ): the seed
ensemble alone, to tell its share of any gain from the extra rows'.

A measurement, not a product path: it replaces ``training._fit_conversion`` in this process.
"""

from __future__ import annotations

import argparse
import runpy
import sys

import numpy as np

import growth.modeling.training as training
from growth.modeling.selection import FittedCandidate
from predictors.registry import get_predictor


class _MeanRows:
    """Grouped-scorer rows whose scores are the mean of several models' rows."""

    def __init__(self, parts: list) -> None:
        self.parts = parts

    def predict(self) -> np.ndarray:
        return np.mean([part.predict() for part in self.parts], axis=0)

    def predict_variants(self, rows: np.ndarray, replaced) -> np.ndarray:
        return np.mean([part.predict_variants(rows, replaced) for part in self.parts], axis=0)


class _MeanScorer:
    def __init__(self, scorers: list) -> None:
        self.scorers = scorers

    def rows(self, entity_index: np.ndarray, context) -> _MeanRows:
        return _MeanRows([scorer.rows(entity_index, context) for scorer in self.scorers])


class MeanModel:
    """Several fitted conversion models answering as their mean probability."""

    def __init__(self, models: list) -> None:
        self.models = models

    def predict_proba(self, X) -> np.ndarray:
        return np.mean([model.predict_proba(X) for model in self.models], axis=0)

    def grouped_scorer(self, *args, **kwargs) -> _MeanScorer:
        return _MeanScorer([model.grouped_scorer(*args, **kwargs) for model in self.models])

    def __getattr__(self, name: str):
        if name == "models":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.models[0], name)


def fitter(folds: int, same_rows: bool):
    """A stand-in for ``training._fit_conversion`` fitting each candidate ``folds`` times."""

    def fit(name, features, rows, *, seed, progress) -> FittedCandidate:
        frame, holdout = rows.frame, rows.holdout
        held = np.flatnonzero(holdout)
        p = np.zeros(len(held))
        models = []
        for k, fold in enumerate(training.holdout_folds(frame, holdout, folds, seed=seed + 991)):
            model = get_predictor(name)(features.spec, seed=seed + k, verbose=progress)
            train = rows.training(model)
            if not same_rows:
                train = np.union1d(train, np.flatnonzero(holdout & ~fold))
            model.fit(frame.rows(train), frame.y[train])
            scored = np.ones(len(held), dtype=bool) if same_rows else fold[held]
            p[scored] += model.predict_proba(frame.rows(held[scored]))[:, 1]
            models.append(model)
        if same_rows:
            p /= len(models)
        model = MeanModel(models)
        return training.judged_candidate(name, model, features, rows, p, len(train), seed=seed)

    return fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--same-rows", action="store_true")
    parser.add_argument("bench", help="the benchmark script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    training._fit_conversion = fitter(args.folds, args.same_rows)
    sys.argv = [args.bench, *args.args]
    runpy.run_path(args.bench, run_name="__main__")


if __name__ == "__main__":
    main()
