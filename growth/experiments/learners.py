"""Uplift per arm: T-learners over the registry's predictors, and the X- and DR-learners.

Every learner answers the same question: ``mu(X)``, the (n, K) expected outcome of
each user under each arm (arm 0 the control), so that ``mu[:, k] - mu[:, 0]`` is the
uplift of arm ``k``.  They differ in how they get there:

* ``t_<predictor>`` (e.g. ``t_lightgbm``, ``t_mlp``): one registered conversion
  predictor (:mod:`predictors.registry`) per arm, fitted on that arm's rows; a
  binary outcome only.  ``t``: the same with LightGBM regressors, for any outcome.
* ``x`` (Kunzel et al. 2019): per arm ``k``, the imputed effects
  ``Y - mu_0(X)`` on arm ``k``'s rows and ``mu_k(X) - Y`` on the control's are each
  regressed on ``X``; the two fits are blended with weight ``e_k / (e_0 + e_k)``
  on the control side (``e``: the arms' mean propensities).
* ``dr`` (Kennedy 2023): the doubly robust pseudo-outcome
  ``mu_k - mu_0 + [A = k](Y - mu_k) / e - [A = 0](Y - mu_0) / e`` (``e``: the row's
  logged propensity), with ``mu`` cross-fitted on two folds, regressed on ``X``.

``x`` and ``dr`` return ``mu_0(X) + tau_k(X)`` for arm ``k``.  Regressors are
LightGBM (``lightgbm.LGBMRegressor``) on the tabular encoding of the features
(:func:`predictors.tabular.encode_tabular`), seeded and single-threaded.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"x": rng.normal(size=2000), "tier": rng.choice(["a", "b"], 2000)})
>>> arm = rng.integers(0, 2, 2000)
>>> y = (rng.random(2000) < 0.2 + 0.2 * arm * (X["x"] > 0)).astype(float)
>>> data = LearnerData.build(X, arm, y, np.full(2000, 0.5), n_arms=2, categorical=["tier"])
>>> mu = fit_learner("dr", data, seed=0).predict(X)
>>> mu.shape, bool((mu[:, 1] - mu[:, 0])[X["x"] > 0].mean() > 0.1)
((2000, 2), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from predictors.features import FeatureSpec
from predictors.registry import get_predictor, predictor_names
from predictors.tabular import encode_tabular

LEARNERS: tuple[str, ...] = ("x", "dr", "t_lightgbm")
"""The learners tried by default on a conversion outcome (``t`` replaces ``t_lightgbm``
for another outcome), the incumbent of the choice first
(:func:`growth.experiments.analysis.choose_learner`): the X-learner's plans were the best
on average over the simulated worlds' exported logs of seeds 1-10 (``benchmarks/README.md``,
"Bring your own experiment")."""

REGRESSOR_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "n_jobs": 1,
    "verbose": -1,
}
"""LightGBM settings of every regression stage (seeded per call)."""


def learner_names(binary: bool = True) -> list[str]:
    """Every learner name: ``t``, ``x``, ``dr`` and, for a binary outcome, ``t_<predictor>``."""
    names = ["t", "x", "dr"]
    if binary:
        names += [f"t_{n}" for n in predictor_names("conversion")]
    return names


@dataclass(frozen=True)
class LearnerData:
    """Training rows: raw features ``X``, their encoding ``table`` (by the fitted ``spec``),
    each row's ``arm`` (0 = control), ``y``, logged ``propensity``; ``n_arms`` arms."""

    X: pd.DataFrame
    table: pd.DataFrame
    spec: FeatureSpec
    arm: np.ndarray
    y: np.ndarray
    propensity: np.ndarray
    n_arms: int

    @classmethod
    def build(
        cls,
        X: pd.DataFrame,
        arm: np.ndarray,
        y: np.ndarray,
        propensity: np.ndarray,
        *,
        n_arms: int,
        categorical: Sequence[str] = (),
        spec: FeatureSpec | None = None,
    ) -> LearnerData:
        """Encode ``X`` (with ``spec``, else one inferred and fitted on ``X``)."""
        if spec is None:
            spec = feature_spec(X, categorical)
        X = X.reset_index(drop=True)
        return cls(
            X,
            encode_tabular(spec, X),
            spec,
            np.asarray(arm),
            np.asarray(y, float),
            np.asarray(propensity, float),
            n_arms,
        )

    @property
    def binary(self) -> bool:
        return bool(np.isin(self.y, (0.0, 1.0)).all())

    def rows(self, mask: np.ndarray) -> LearnerData:
        """The rows where ``mask`` holds (same spec)."""
        return LearnerData(
            self.X[mask].reset_index(drop=True),
            self.table[mask].reset_index(drop=True),
            self.spec,
            self.arm[mask],
            self.y[mask],
            self.propensity[mask],
            self.n_arms,
        )


def feature_spec(X: pd.DataFrame, categorical: Sequence[str] = ()) -> FeatureSpec:
    """Every column of ``X`` a feature (text or ``categorical`` ones categorical), fitted on ``X``."""
    domains = dict.fromkeys((str(c) for c in X.columns), "target")
    return FeatureSpec.infer(X, domains, categorical=categorical).fit(X)


@dataclass(frozen=True)
class FittedLearner:
    """A fitted learner: ``predict(X)`` is the (n, n_arms) expected outcome per arm."""

    name: str
    spec: FeatureSpec
    _predict: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        X = X.reset_index(drop=True)
        return self._predict(X, encode_tabular(self.spec, X))


def _regressor(
    table: pd.DataFrame, y: np.ndarray, seed: int, spec: FeatureSpec
) -> lgb.LGBMRegressor:
    categorical = [f.name for f in spec.fields if f.kind == "categorical"]
    model = lgb.LGBMRegressor(random_state=seed, **REGRESSOR_PARAMS)
    return model.fit(table, y, categorical_feature=categorical or "auto")


def _arm_regressors(data: LearnerData, seed: int) -> list[lgb.LGBMRegressor]:
    """One outcome regressor per arm, each on its own arm's rows."""
    return [
        _regressor(data.table[data.arm == k], data.y[data.arm == k], seed + k, data.spec)
        for k in range(data.n_arms)
    ]


def _stack(models: Sequence[Any], table: pd.DataFrame) -> np.ndarray:
    return np.column_stack([m.predict(table) for m in models])


def _fit_t(data: LearnerData, seed: int) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    models = _arm_regressors(data, seed)
    return lambda X, table: _stack(models, table)


def _fit_t_predictor(name: str, data: LearnerData, seed: int) -> Callable[..., np.ndarray]:
    if not data.binary:
        raise ValueError(f"learner 't_{name}' needs a 0/1 outcome; use 't' for this outcome")
    cls = get_predictor(name)
    models = [
        cls(data.spec, seed=seed + k).fit(data.X[data.arm == k], data.y[data.arm == k].astype(int))
        for k in range(data.n_arms)
    ]
    return lambda X, table: np.column_stack([m.predict_proba(X)[:, 1] for m in models])


def _fit_x(data: LearnerData, seed: int) -> Callable[..., np.ndarray]:
    mu = _arm_regressors(data, seed)
    base = data.table[data.arm == 0]
    e = np.array([data.propensity[data.arm == k].mean() for k in range(data.n_arms)])
    stages = []
    for k in range(1, data.n_arms):
        treated = data.table[data.arm == k]
        d1 = data.y[data.arm == k] - mu[0].predict(treated)  # effect imputed on arm k's rows
        d0 = mu[k].predict(base) - data.y[data.arm == 0]  # ... and on the control's rows
        g = e[k] / (e[0] + e[k])  # weight of the control-side fit
        stages.append(
            (
                _regressor(treated, d1, seed + 100 + k, data.spec),
                _regressor(base, d0, seed + 200 + k, data.spec),
                g,
            )
        )

    def predict(X: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
        mu0 = mu[0].predict(table)
        taus = [g * m0.predict(table) + (1 - g) * m1.predict(table) for m1, m0, g in stages]
        return np.column_stack([mu0, *(mu0 + t for t in taus)])

    return predict


def _fit_dr(data: LearnerData, seed: int) -> Callable[..., np.ndarray]:
    n = len(data.y)
    fold = np.random.default_rng(seed).permutation(n) % 2
    mu_hat = np.empty((n, data.n_arms))
    for f in (0, 1):  # cross-fitting: each row's mu from the other fold's models
        models = _arm_regressors(data.rows(fold != f), seed + 10 * f)
        mu_hat[fold == f] = _stack(models, data.table[fold == f])
    rows = np.arange(n)
    residual = (data.y - mu_hat[rows, data.arm]) / data.propensity
    stages = []
    for k in range(1, data.n_arms):
        pseudo = (
            mu_hat[:, k]
            - mu_hat[:, 0]
            + np.where(data.arm == k, residual, 0.0)
            - np.where(data.arm == 0, residual, 0.0)
        )
        stages.append(_regressor(data.table, pseudo, seed + 300 + k, data.spec))
    mu0 = _regressor(data.table[data.arm == 0], data.y[data.arm == 0], seed, data.spec)

    def predict(X: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
        base = mu0.predict(table)
        return np.column_stack([base, *(base + m.predict(table) for m in stages)])

    return predict


def fit_learner(name: str, data: LearnerData, *, seed: int = 0) -> FittedLearner:
    """Fit the learner called ``name`` (see :func:`learner_names`) on ``data``."""
    if name == "t":
        fitted = _fit_t(data, seed)
    elif name == "x":
        fitted = _fit_x(data, seed)
    elif name == "dr":
        fitted = _fit_dr(data, seed)
    elif name.startswith("t_") and name[2:] in predictor_names("conversion"):
        fitted = _fit_t_predictor(name[2:], data, seed)
    else:
        raise ValueError(f"unknown learner {name!r}; learners: {learner_names()}")
    return FittedLearner(name, data.spec, fitted)
