"""Basket-size model: how large an order will be, to price threshold coupons.

A full-reduction coupon ("spend X, get Y off") is only redeemed when the basket
reaches X.  This model regresses the log order value of converted exposures on
the row's features (LightGBM, L2 loss) and turns the residual spread into
``P(basket >= threshold)`` under a log-normal error.  Categorical codes enter as
ordered numbers (the model does not declare them categorical to LightGBM).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import norm

from predictors.base import check_is_fitted, check_regression_target
from predictors.lgbm.base import LightGBMConfig, LightGBMEstimator

MIN_ORDERS = 20
"""Rows with a positive order value the model needs to fit."""


class BasketSizeConfig(LightGBMConfig):
    """Hyper-parameters of :class:`BasketSizeModel`."""

    n_estimators: int = Field(200, ge=1)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(20, ge=1)
    feature_fraction: float = Field(1.0, gt=0, le=1)
    early_stopping_rounds: int = Field(20, ge=1)
    validation_fraction: float = Field(0.2, gt=0, lt=0.5)


class BasketSizeModel(LightGBMEstimator):
    """LightGBM regression of ``log(order_value)`` with a log-normal residual ``sigma_``.

    Example:

    >>> from predictors.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"tgt_power": rng.normal(size=300)})
    >>> value = np.exp(3.0 + 0.5 * X["tgt_power"].to_numpy() + rng.normal(0, 0.2, 300))
    >>> model = BasketSizeModel(FeatureSpec.infer(X, {"tgt_": "target"}), n_estimators=30).fit(X, value)
    >>> model.prob_at_least(X.head(2), np.array([0.0, 1e6])).round(3).tolist()
    [1.0, 0.0]
    """

    name = "basket_size"
    task = "regressor"
    Config = BasketSizeConfig
    objective = "regression"
    declare_categorical = False
    extra_state = ("sigma_",)
    tiny_params: ClassVar[dict[str, Any]] = {"n_estimators": 40}

    def __init__(self, feature_spec, **params: Any) -> None:
        super().__init__(feature_spec, **params)
        self.sigma_: float | None = None

    def fit(self, X: pd.DataFrame, order_value: Any) -> BasketSizeModel:
        """Fit on the rows with a positive, finite order value (others are ignored)."""
        cfg = self._validated_config()
        value = check_regression_target(X, order_value)
        keep = np.isfinite(value) & (value > 0)
        if keep.sum() < MIN_ORDERS:
            raise ValueError(
                f"only {int(keep.sum())} rows have a positive order value; the basket model "
                f"needs at least {MIN_ORDERS} converted exposures with order_value"
            )
        table, target = self._encode_for_fit(X.loc[keep]), np.log(value[keep])
        valid, train = self._split(len(table), cfg.validation_fraction, cfg.seed, at_least_one=True)
        self._train(cfg, (table.iloc[train], target[train]), (table.iloc[valid], target[valid]))
        fitted = self._predict_block(table.iloc[valid].to_numpy(np.float32))
        self.sigma_ = float(max(np.std(target[valid] - fitted), 1e-3))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted ``log(order_value)`` per row, ``(n,)``."""
        return self._predict_block(self._encoded(X))

    def prob_at_least(self, X: pd.DataFrame, threshold: np.ndarray) -> np.ndarray:
        """``P(basket >= threshold)`` per row; 1 where the threshold is 0."""
        return self.reach_probability(self.predict(X), threshold)

    def reach_probability(self, log_basket: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """``P(basket >= threshold)`` from predicted log baskets (broadcasts)."""
        check_is_fitted(self, "sigma_")
        threshold = np.asarray(threshold, dtype=np.float64)
        mu = np.asarray(log_basket, dtype=np.float64)
        with np.errstate(divide="ignore"):
            z = (mu - np.log(np.maximum(threshold, 1e-12))) / self.sigma_
        return np.where(threshold > 0, norm.cdf(z), 1.0)

    def expected_basket(self, log_basket: np.ndarray) -> np.ndarray:
        """Mean order value ``exp(mu + sigma^2 / 2)`` of the log-normal from predicted log baskets."""
        check_is_fitted(self, "sigma_")
        return np.exp(np.asarray(log_basket) + 0.5 * self.sigma_**2)
