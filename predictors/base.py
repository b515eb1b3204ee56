"""The estimator contract every predictor follows (after scikit-learn).

- ``__init__`` only stores keyword-only configuration.
- ``fit(X, y)`` validates inputs once, learns, and returns ``self``; learned
  state ends in ``_``.
- ``predict_proba(X)`` returns ``(n, 2)`` probabilities (column 1 = converts);
  calling it before ``fit`` raises :class:`NotFittedError`.
- ``save(path)`` / ``load(path)`` store weights plus a JSON config; loading never
  unpickles arbitrary objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit``."""


def check_is_fitted(model: Any, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(X, y) before using it"
        )


def check_xy(X: pd.DataFrame, y: Any) -> np.ndarray:
    """Validate a training frame and binary labels; return labels as int8."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(X):
        raise ValueError(
            f"y must be 1-D with one label per row of X ({len(X)}), got {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("cannot fit on an empty training set")
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y must hold 0/1 labels; row {row} has {labels[row].item()!r}")
    if labels.min() == labels.max():
        raise ValueError("y holds a single class; a conversion model needs both 0 and 1 labels")
    return labels.astype(np.int8)


def check_columns(X: pd.DataFrame, expected: list[str], model_name: str) -> None:
    """Raise a ValueError naming columns missing from (or unexpected in) ``X``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    missing = [c for c in expected if c not in X.columns]
    if missing:
        raise ValueError(
            f"{model_name} was fitted with columns that X lacks: {missing}; "
            "build X with the same feature pipeline used for fit"
        )
