"""The estimator contract every predictor follows (after scikit-learn).

- ``Model(feature_spec, **params)``: the :class:`~predictors.features.FeatureSpec`
  of the raw frames the model reads comes first, then keyword-only
  hyper-parameters.  Each model declares them once, as the fields of its
  pydantic ``Config``; :class:`Estimator` derives the constructor's signature
  from it and only stores the values given (defaults for the rest).
- ``fit(X, y)`` validates the parameters (``Config``) and the inputs, encodes the
  raw frame ``X`` itself, learns, and returns ``self``; learned state ends in ``_``
  and nothing else changes.
- Classifiers: ``predict_proba(X)`` returns ``(n, 2)`` probabilities (column 1 =
  the event); regressors: ``predict(X)`` returns ``(n,)``.  Either before ``fit``
  raises :class:`NotFittedError`.
- ``grouped_scorer(entities, varying)``: scores many rows that share an entity
  (a user) and differ in a few context columns (a coupon option), encoding the
  entities once (see :mod:`predictors.scoring`).
- ``save(path)`` / ``load(path)`` store weights plus a JSON config; loading never
  unpickles arbitrary objects.

Example: a model's constructor is its ``Config``:

>>> import inspect
>>> from pydantic import BaseModel, ConfigDict
>>> class Config(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     depth: int = 3
...     seed: int = 0
>>> class Toy(Estimator):
...     Config = Config
>>> inspect.signature(Toy)
<Signature (feature_spec, *, depth: int = 3, seed: int = 0)>
>>> Toy(FeatureSpec(fields=()), seed=5).get_params()
{'depth': 3, 'seed': 5}
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from predictors.features import FeatureSpec


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit``."""


def check_is_fitted(model: Any, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(X, y) before using it"
        )


class Estimator:
    """Base of every predictor: a feature spec plus the keyword parameters of ``Config``.

    Subclasses set ``name`` (the registry key), ``task`` and ``Config``; the
    constructor signature ``(feature_spec, *, <Config fields>)`` is derived from
    ``Config`` for every subclass, so ``inspect.signature``, :meth:`get_params`
    and save/load agree with it by construction.  ``tiny_params`` make a model
    small enough for the contract tests.
    """

    name: ClassVar[str] = ""
    task: ClassVar[Literal["classifier", "regressor"]] = "classifier"
    Config: ClassVar[type[BaseModel]]
    tiny_params: ClassVar[dict[str, Any]] = {}
    trains_on_sample: ClassVar[bool] = False
    """Whether a job caps this model's training rows (``max_train_rows``): True for models
    whose training cost per row is high (the torch models)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "Config"):
            cls.__signature__ = _signature(cls.Config)

    def __init__(self, feature_spec: FeatureSpec, **params: Any) -> None:
        if not isinstance(feature_spec, FeatureSpec):
            raise TypeError(
                f"{type(self).__name__} takes a FeatureSpec as first argument, "
                f"got {type(feature_spec).__name__}"
            )
        fields = self.Config.model_fields
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameters {unknown}; "
                f"valid ones are {sorted(fields)}"
            )
        self.feature_spec = feature_spec
        for key, info in fields.items():
            setattr(
                self,
                key,
                params[key] if key in params else info.get_default(call_default_factory=True),
            )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor keyword arguments (not the feature spec)."""
        return {key: getattr(self, key) for key in self.Config.model_fields}

    @classmethod
    def _saved_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters read back from JSON, typed by ``Config`` again (lists become tuples)."""
        return cls.Config(**params).model_dump()

    def _validated_config(self) -> Any:
        """The parameters checked against ``Config`` (called when ``fit`` starts)."""
        try:
            return self.Config(**self.get_params())
        except ValidationError as err:
            raise ValueError(f"invalid {type(self).__name__} parameters:\n{err}") from err

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _signature(config: type[BaseModel]) -> inspect.Signature:
    """``(feature_spec, *, <one keyword-only parameter per field of config>)``."""
    params = [
        inspect.Parameter("feature_spec", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(
                key,
                inspect.Parameter.KEYWORD_ONLY,
                default=info.get_default(call_default_factory=True),
                annotation=info.annotation,
            )
            for key, info in config.model_fields.items()
        ),
    ]
    return inspect.Signature(params)


def constructor_params(cls: type) -> dict[str, Any]:
    """Keyword-only constructor arguments of ``cls`` and their defaults."""
    sig = inspect.signature(cls)
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


def check_xy(X: pd.DataFrame, y: Any) -> np.ndarray:
    """Validate a training frame and binary labels; return labels as int8."""
    labels = _check_target(X, y)
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y must hold 0/1 labels; row {row} has {labels[row].item()!r}")
    if labels.min() == labels.max():
        raise ValueError("y holds a single class; a conversion model needs both 0 and 1 labels")
    return labels.astype(np.int8)


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """Validate ``sample_weight`` (None, or ``n`` finite values >= 0 with a positive sum);
    return it as float32, the dtype the torch models train in."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have one value per row of X ({n}), got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"sample_weight must be finite and >= 0; row {row} has {w[row]}")
    if w.sum() <= 0:
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    return w.astype(np.float32)


def check_regression_target(X: pd.DataFrame, y: Any) -> np.ndarray:
    """Validate a training frame and real-valued targets (NaN allowed); return float64."""
    return _check_target(X, y).astype(np.float64)


def _check_target(X: pd.DataFrame, y: Any) -> np.ndarray:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(X):
        raise ValueError(
            f"y must be 1-D with one label per row of X ({len(X)}), got {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("cannot fit on an empty training set")
    return labels


def check_columns(X: pd.DataFrame, expected: list[str], model_name: str) -> None:
    """Raise a ValueError naming columns missing from ``X``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    missing = [c for c in expected if c not in X.columns]
    if missing:
        raise ValueError(
            f"{model_name} was fitted with columns that X lacks: {missing}; "
            "build X with the same feature pipeline used for fit"
        )
