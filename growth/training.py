"""Train and evaluate the conversion predictors on a dataset's exposure log."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.features import ConversionFeatures, ExposureFrame
from predictors.basket import BasketSizeModel
from predictors.lgbm import LightGBMModel
from predictors.metrics import segment_metrics
from predictors.models import REGISTRY
from predictors.torch.base import TorchEstimator

log = logging.getLogger(__name__)

PREDICTORS = {"lightgbm": LightGBMModel}
"""Tabular conversion models the nightly job can use, by name; torch models come from REGISTRY."""


def available_predictors() -> list[str]:
    """Every predictor name ``train_models`` accepts: the tabular ones and the torch REGISTRY."""
    torch_models = {n for n, c in REGISTRY.items() if issubclass(c, TorchEstimator)}
    return sorted(set(PREDICTORS) | torch_models)


def uses_raw_frame(model: object) -> bool:
    """True for models that read :meth:`ConversionFeatures.raw_frame` rows (the torch models)."""
    return isinstance(model, TorchEstimator)


@dataclass
class TrainedModels:
    """The fitted models and their holdout metrics (long frame: segment, metric, value)."""

    conversion: LightGBMModel | TorchEstimator
    basket: BasketSizeModel
    metrics: pd.DataFrame
    n_train: int
    n_holdout: int


def chronological_split(frame: ExposureFrame, holdout_fraction: float) -> np.ndarray:
    """Boolean mask of the holdout: the latest ``holdout_fraction`` of rows by timestamp."""
    n = len(frame.y)
    cut = int(np.floor((1.0 - holdout_fraction) * n))
    holdout = np.zeros(n, dtype=bool)
    holdout[cut:] = True  # frame rows are already in timestamp order
    return holdout


def train_models(
    features: ConversionFeatures,
    *,
    predictor: str = "lightgbm",
    holdout_fraction: float = 0.2,
    seed: int = 0,
) -> TrainedModels:
    """Fit the conversion model on the older exposures, evaluate on the newest ones by segment.

    ``predictor`` names a tabular model of :data:`PREDICTORS` (fitted on the
    tabular frame) or a torch model of ``predictors.models.REGISTRY`` (fitted on
    the raw frame described by ``features.raw_spec()``).  The basket model is
    fitted on converted exposures with an order value.
    """
    if predictor not in available_predictors():
        raise ValueError(f"unknown predictor {predictor!r}; choose one of {available_predictors()}")
    frame = features.exposure_frame()
    holdout = chronological_split(frame, holdout_fraction)
    train = ~holdout
    if predictor in PREDICTORS:
        model = PREDICTORS[predictor](seed=seed).fit(
            frame.X.loc[train], frame.y[train], categorical=features.categorical
        )
        X_holdout = frame.X.loc[holdout]
    else:
        raw = features.exposure_frame(raw=True)  # the same rows in the same order
        model = REGISTRY[predictor](features.raw_spec(), seed=seed)
        model.fit(raw.X.loc[train], raw.y[train])
        X_holdout = raw.X.loc[holdout]
    p = model.predict_proba(X_holdout)[:, 1]
    metrics = segment_metrics(frame.y[holdout], p, frame.segment[holdout])
    metrics.insert(0, "model", predictor)
    auc = metrics.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
    log.info("%s: holdout AUC %.4f on %d rows", predictor, auc, int(holdout.sum()))
    basket = BasketSizeModel(seed=seed).fit(frame.X.loc[train], frame.order_value[train])
    return TrainedModels(
        conversion=model,
        basket=basket,
        metrics=metrics,
        n_train=int(train.sum()),
        n_holdout=int(holdout.sum()),
    )
