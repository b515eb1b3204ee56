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

log = logging.getLogger(__name__)

PREDICTORS = {"lightgbm": LightGBMModel}
"""Conversion models the nightly job can use, by name."""


@dataclass
class TrainedModels:
    """The fitted models and their holdout metrics (long frame: segment, metric, value)."""

    conversion: LightGBMModel
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

    The basket model is fitted on converted exposures with an order value.
    """
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; choose one of {sorted(PREDICTORS)}")
    frame = features.exposure_frame()
    holdout = chronological_split(frame, holdout_fraction)
    train = ~holdout
    model = PREDICTORS[predictor](seed=seed).fit(
        frame.X.loc[train], frame.y[train], categorical=features.categorical
    )
    p = model.predict_proba(frame.X.loc[holdout])[:, 1]
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
