"""LightGBM conversion model: the tabular baseline every deep model is compared with."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from predictors.base import check_xy
from predictors.lgbm.base import LightGBMConfig, LightGBMEstimator


class LightGBMModel(LightGBMEstimator):
    """Binary gradient-boosted trees on the tabular encoding of the spec's raw frame.

    Example:

    >>> from predictors.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"tgt_power": rng.normal(size=400), "tgt_tier": rng.choice(["a", "b"], 400)})
    >>> y = (X["tgt_power"] + rng.normal(size=400) > 0).astype(int)
    >>> spec = FeatureSpec.infer(X, {"tgt_": "target"})
    >>> model = LightGBMModel(spec, n_estimators=20, min_child_samples=10, seed=1).fit(X, y)
    >>> model.predict_proba(X).shape
    (400, 2)
    """

    name = "lightgbm"
    Config = LightGBMConfig

    def fit(self, X: pd.DataFrame, y: Any) -> LightGBMModel:
        """Fit on raw frame ``X`` and 0/1 labels ``y``, early-stopping on a seeded
        ``validation_fraction`` of the rows; return ``self``."""
        cfg = self._validated_config()
        labels = check_xy(X, y)
        table = self._encode_for_fit(X)
        valid_idx, train_idx = self._split(len(X), cfg.validation_fraction, cfg.seed)
        valid = (table.iloc[valid_idx], labels[valid_idx]) if len(valid_idx) else None
        self._train(cfg, (table.iloc[train_idx], labels[train_idx]), valid)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities ``(n, 2)``; column 1 is the event's probability."""
        p = self._predict_block(self._encoded(X))
        return np.column_stack([1.0 - p, p])
