"""Train and evaluate the conversion predictors on a dataset's exposure log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from growth.modeling.features import ConversionFeatures, ExposureFrame
from growth.modeling.sampling import chronological_split, sample_rows
from growth.modeling.selection import (
    FALLBACK_PREDICTOR,
    PREDICTORS,
    SELECTION_METRIC,
    FittedCandidate,
    available_predictors,
    candidate_predictors,
    choose_model,
    holdout_qini,
)
from predictors.basket import BasketSizeModel
from predictors.lgbm import LightGBMModel
from predictors.metrics import segment_metrics
from predictors.models import REGISTRY
from predictors.torch.base import TorchEstimator

log = logging.getLogger(__name__)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave torch's setting).

    On 2 shared cores one thread is the safe choice: with other processes busy,
    2 threads spin-wait at every op and CSDE trained 6-10x slower (1-2k vs 13k
    samples/s measured); the previous setting is restored afterwards.  Keep
    LightGBM outside the block: torch sets OpenMP's thread count, which
    LightGBM shares (it trained on one core under it).
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def uses_raw_frame(model: object) -> bool:
    """True for models that read :meth:`ConversionFeatures.raw_frame` rows (the torch models)."""
    return isinstance(model, TorchEstimator)


@dataclass
class TrainedModels:
    """The fitted models and their holdout metrics (long frame: model, segment, metric, value).

    ``metrics`` has rows for every model trained (``auto`` trains two); the
    ``conversion`` model is the one named ``predictor``.
    """

    predictor: str  # the conversion model's name (``auto`` resolved)
    conversion: LightGBMModel | TorchEstimator
    basket: BasketSizeModel
    metrics: pd.DataFrame
    n_train: int  # rows the conversion model learnt from
    n_holdout: int


def _fit_conversion(
    name: str,
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    *,
    max_train_rows: int | None,
    threads: int | None,
    seed: int,
) -> FittedCandidate:
    """Fit predictor ``name`` on the rows outside ``holdout``, evaluate it by segment on it.

    A torch model reads :meth:`ConversionFeatures.raw_frame` rows, built only for
    its training sample and the holdout (not the whole log), under ``threads``.
    """
    train = ~holdout
    tabular = name in PREDICTORS
    build = features.frame if tabular else features.raw_frame
    threads = None if tabular else threads  # LightGBM shares OpenMP's thread count: leave it

    def rows_of(rows: np.ndarray) -> pd.DataFrame:
        return build(frame.user_pos[rows], frame.item_pos[rows], frame.option_pos[rows])

    with torch_threads(threads):
        if tabular:
            model = PREDICTORS[name](seed=seed).fit(
                frame.X.loc[train], frame.y[train], categorical=features.categorical
            )
            n_train = int(train.sum())
            p = model.predict_proba(frame.X.loc[holdout])[:, 1]
        else:
            rows = sample_rows(np.flatnonzero(train), max_train_rows, seed=seed)
            n_train = len(rows)
            model = REGISTRY[name](features.raw_spec(), seed=seed)
            log.info(
                "%s: training on %d of %d rows with %d torch threads",
                name,
                n_train,
                int(train.sum()),
                torch.get_num_threads(),
            )
            model.fit(rows_of(rows), frame.y[rows])
            p = model.predict_proba(rows_of(np.flatnonzero(holdout)))[:, 1]
        metrics = segment_metrics(frame.y[holdout], p, frame.segment[holdout])
        qini = holdout_qini(
            lambda u, i, k: model.predict_proba(build(u, i, k))[:, 1],
            features,
            frame,
            holdout,
            seed=seed,
        )
    metrics.loc[len(metrics)] = {"segment": "all", "metric": "qini", "value": qini.value}
    metrics.insert(0, "model", name)
    auc = metrics.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
    log.info("%s: holdout AUC %.4f, Qini %.6f on %d rows", name, auc, qini.value, holdout.sum())
    return FittedCandidate(name, model, metrics, n_train, qini)


def train_models(
    features: ConversionFeatures,
    *,
    predictor: str = FALLBACK_PREDICTOR,
    holdout_fraction: float = 0.2,
    max_train_rows: int | None = None,
    torch_threads: int | None = None,
    seed: int = 0,
) -> TrainedModels:
    """Fit the conversion model on the older exposures, evaluate on the newest ones by segment.

    ``predictor`` names a tabular model of :data:`PREDICTORS` (fitted on the
    tabular frame), a torch model of ``predictors.models.REGISTRY`` (fitted on
    the raw frame described by ``features.raw_spec()``) or ``auto`` (see
    :func:`candidate_predictors`: with several candidates :func:`choose_model`
    picks by holdout :data:`SELECTION_METRIC`).  ``max_train_rows`` caps a torch model's
    training rows at a seeded sample of the older exposures (LightGBM and the
    basket model use them all); the holdout is always the whole newest
    ``holdout_fraction``.  ``torch_threads`` sets torch's threads while a torch
    model trains and predicts (None: leave them).  The basket model is fitted
    on converted exposures with an order value.
    """
    if predictor not in available_predictors():
        raise ValueError(f"unknown predictor {predictor!r}; choose one of {available_predictors()}")
    frame = features.exposure_frame()
    holdout = chronological_split(frame, holdout_fraction)
    fitted = [
        _fit_conversion(
            name,
            features,
            frame,
            holdout,
            max_train_rows=max_train_rows,
            threads=torch_threads,
            seed=seed,
        )
        for name in candidate_predictors(predictor, features)
    ]
    best, why = choose_model(fitted)
    if len(fitted) > 1:
        log.info("auto: %s chosen by holdout %s (%s)", best.name, SELECTION_METRIC, why)
    train = ~holdout
    basket = BasketSizeModel(seed=seed).fit(frame.X.loc[train], frame.order_value[train])
    return TrainedModels(
        predictor=best.name,
        conversion=best.model,
        basket=basket,
        metrics=pd.concat([f.metrics for f in fitted], ignore_index=True),
        n_train=best.n_train,
        n_holdout=int(holdout.sum()),
    )
