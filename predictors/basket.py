"""Basket-size model: how large an order will be, to price threshold coupons.

A full-reduction coupon ("spend X, get Y off") is only redeemed when the basket
reaches X.  This model regresses the log order value of converted exposures on
user and item features (LightGBM, L2 loss) and turns the residual spread into
``P(basket >= threshold)`` under a log-normal error.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import norm

from predictors.base import check_columns, check_is_fitted


class BasketSizeModel:
    """LightGBM regression of ``log(order_value)`` with a log-normal residual."""

    name = "basket_lightgbm"

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        validation_fraction: float = 0.2,
        n_jobs: int = 0,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.seed = seed
        self.booster_: lgb.Booster | None = None
        self.sigma_: float | None = None
        self.feature_names_in_: list[str] | None = None

    def fit(self, X: pd.DataFrame, order_value: np.ndarray) -> BasketSizeModel:
        """Fit on rows with a positive, finite order value (others are ignored)."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        value = np.asarray(order_value, dtype=np.float64)
        if value.shape != (len(X),):
            raise ValueError(f"order_value must have one entry per row of X ({len(X)})")
        keep = np.isfinite(value) & (value > 0)
        if keep.sum() < 20:
            raise ValueError(
                f"only {int(keep.sum())} rows have a positive order value; "
                "the basket model needs at least 20 converted exposures with order_value"
            )
        Xk, yk = X.loc[keep], np.log(value[keep])
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(Xk))
        n_valid = max(1, int(self.validation_fraction * len(Xk)))
        valid, train = order[:n_valid], order[n_valid:]
        params = {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "num_threads": self.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        dtrain = lgb.Dataset(Xk.iloc[train], yk[train])
        dvalid = lgb.Dataset(Xk.iloc[valid], yk[valid], reference=dtrain)
        self.booster_ = lgb.train(
            params,
            dtrain,
            num_boost_round=self.n_estimators,
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(20, verbose=False)],
        )
        residual = yk[valid] - self.booster_.predict(Xk.iloc[valid])
        self.sigma_ = float(max(np.std(residual), 1e-3))
        self.feature_names_in_ = list(X.columns)
        return self

    def predict_log_basket(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "booster_")
        check_columns(X, self.feature_names_in_, type(self).__name__)
        return np.asarray(self.booster_.predict(X[self.feature_names_in_]))

    def prob_at_least(self, X: pd.DataFrame, threshold: np.ndarray) -> np.ndarray:
        """``P(basket >= threshold)`` per row; 1 where the threshold is 0."""
        return self.reach_probability(self.predict_log_basket(X), threshold)

    def reach_probability(self, log_basket: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """``P(basket >= threshold)`` from predicted log baskets (broadcasts)."""
        check_is_fitted(self, "sigma_")
        threshold = np.asarray(threshold, dtype=np.float64)
        mu = np.asarray(log_basket, dtype=np.float64)
        with np.errstate(divide="ignore"):
            z = (mu - np.log(np.maximum(threshold, 1e-12))) / self.sigma_
        return np.where(threshold > 0, norm.cdf(z), 1.0)
