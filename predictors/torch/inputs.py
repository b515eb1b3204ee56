"""Raw frame -> tensors, one entry per field of a :class:`~predictors.features.FeatureSpec`.

A :class:`FrameEncoder` is fitted once on the training frame (vocabularies via
the spec, plus the mean/std of every numeric field) and then turns any frame
with the spec's columns into a :data:`Batch`: a flat ``dict[str, Tensor]`` whose
rows align with the frame's rows.  Layout, for a field named ``f``:

============  ===========================  ====================================
kind          key                          tensor
============  ===========================  ====================================
numeric       ``f``                        float32 ``(n,)``, standardised, 0 where missing
numeric       ``missing_key(f)``           bool ``(n,)``, True where the value was NaN
categorical   ``f``                        int64 ``(n,)``, 0 = unknown/missing
multi         ``f``                        int64 ``(n, L)``, token id + 1, 0 = padding
============  ===========================  ====================================

``L`` is the longest row of the frame, capped at ``max_tokens`` (longer rows keep
their *last* tokens: sequences are oldest first).  Token ids outside
``0..n_tokens-1`` become padding.  Every step is vectorised (no per-row Python
loop): 500k rows encode in about a second per multi field.

Example::

    enc = FrameEncoder.fit(spec, train_frame)
    batch = enc.encode(frame)           # dict[str, Tensor]
    rows = take(batch, torch.arange(8))  # the first 8 rows
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from predictors.features import MULTI_SEPARATOR, FeatureSpec, Field

Batch = dict[str, torch.Tensor]
MISSING_SUFFIX = ":missing"
NUMERIC_CLIP = 10.0  # standardised values are clipped to +-10 so outliers cannot blow up training


def missing_key(name: str) -> str:
    """Key of the missing-value mask of numeric field ``name`` in a :data:`Batch`."""
    return f"{name}{MISSING_SUFFIX}"


def batch_size_of(batch: Mapping[str, torch.Tensor]) -> int:
    """Number of rows in ``batch``."""
    return len(next(iter(batch.values())))


def take(batch: Mapping[str, torch.Tensor], index: torch.Tensor | slice) -> Batch:
    """Rows ``index`` of every tensor in ``batch`` (a slice gives views, no copy)."""
    return {key: value[index] for key, value in batch.items()}


@dataclass(frozen=True)
class NumericStats:
    """Mean and standard deviation of one numeric field over its non-missing values."""

    mean: float
    std: float


@dataclass(frozen=True)
class FrameEncoder:
    """A fitted spec plus numeric statistics: turns raw frames into a :data:`Batch`.

    ``max_tokens`` caps the padded length of multi fields.
    """

    spec: FeatureSpec
    numeric: Mapping[str, NumericStats] = field(default_factory=dict)
    max_tokens: int = 32

    @classmethod
    def fit(cls, spec: FeatureSpec, frame: pd.DataFrame, *, max_tokens: int = 32) -> FrameEncoder:
        """Fit the spec's vocabularies (unless already fitted) and numeric statistics on ``frame``."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        spec.check_columns(frame)
        fitted = spec if spec.fitted else spec.fit(frame)
        stats = {}
        for f in fitted.fields:
            if f.kind == "numeric":
                values = numeric_values(f, frame[f.name])
                present = values[~np.isnan(values)].astype(np.float64)
                mean = float(present.mean()) if present.size else 0.0
                std = float(present.std()) if present.size else 1.0
                stats[f.name] = NumericStats(mean=mean, std=std if std > 1e-12 else 1.0)
        return cls(spec=fitted, numeric=stats, max_tokens=max_tokens)

    def encode(self, frame: pd.DataFrame) -> Batch:
        """Tensors for every field of ``frame`` (see the module docstring for the layout)."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(frame).__name__}")
        self.spec.check_columns(frame)
        batch: Batch = {}
        for f in self.spec.fields:
            col = frame[f.name]
            if f.kind == "numeric":
                values = numeric_values(f, col)
                missing = np.isnan(values)
                stats = self.numeric[f.name]
                scaled = np.clip((values - stats.mean) / stats.std, -NUMERIC_CLIP, NUMERIC_CLIP)
                scaled[missing] = 0.0
                batch[f.name] = torch.from_numpy(scaled.astype(np.float32))
                batch[missing_key(f.name)] = torch.from_numpy(missing)
            elif f.kind == "categorical":
                codes = self.spec.encode_categorical(f, col)
                batch[f.name] = torch.from_numpy(np.require(codes, requirements="W"))
            else:
                batch[f.name] = torch.from_numpy(encode_multi(f, col, self.max_tokens))
        return batch

    def to_dict(self) -> dict:
        """JSON-safe description (the spec via ``spec.to_dict()``), used when saving a model."""
        return {
            "spec": self.spec.to_dict(),
            "numeric": {k: {"mean": s.mean, "std": s.std} for k, s in self.numeric.items()},
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FrameEncoder:
        spec = FeatureSpec.from_dict(data["spec"])
        numeric = {
            k: NumericStats(float(v["mean"]), float(v["std"])) for k, v in data["numeric"].items()
        }
        missing = [f.name for f in spec.fields if f.kind == "numeric" and f.name not in numeric]
        if missing:
            raise ValueError(f"encoder description lacks statistics of numeric fields {missing}")
        return cls(spec=spec, numeric=numeric, max_tokens=int(data["max_tokens"]))


def numeric_values(f: Field, column: pd.Series) -> np.ndarray:
    """Float64 values of a numeric column (NaN = missing); a clear error for text."""
    try:
        return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError) as err:
        raise ValueError(f"numeric field {f.name!r} holds non-numeric values: {err}") from err


def encode_multi(f: Field, column: pd.Series, max_tokens: int) -> np.ndarray:
    """Padded token ids ``(rows, L)`` of a ``|``-separated column: id + 1, 0 = padding.

    ``L = min(max_tokens, longest row)`` (at least 1); rows longer than ``L`` keep
    their last ``L`` tokens.  Empty strings and NaN give all-padding rows; tokens
    that are negative or ``>= f.n_tokens`` become padding (their slot is kept).
    """
    text = column.fillna("").astype(str).to_numpy()
    n = len(text)
    nonempty = np.fromiter((len(t) > 0 for t in text), dtype=bool, count=n)
    if not nonempty.any():
        return np.zeros((n, 1), dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    counts[nonempty] = np.char.count(text[nonempty].astype(str), MULTI_SEPARATOR) + 1
    parts = MULTI_SEPARATOR.join(text[nonempty]).split(MULTI_SEPARATOR)
    rows = np.repeat(np.arange(n), counts)
    try:
        tokens = np.asarray(parts, dtype=np.int64)
    except ValueError:
        tokens, rows = _parse_tokens_slowly(f, parts, rows)
    lengths = np.bincount(rows, minlength=n)
    width = int(min(max_tokens, max(int(lengths.max()), 1)))
    # position of each token inside its row, then shift so the last `width` tokens stay
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(len(tokens)) - np.repeat(starts, lengths)
    pos -= np.repeat(np.maximum(lengths - width, 0), lengths)
    keep = pos >= 0
    ids = np.where((tokens >= 0) & (tokens < f.n_tokens), tokens + 1, 0)
    out = np.zeros((n, width), dtype=np.int64)
    out[rows[keep], pos[keep]] = ids[keep]
    return out


def _parse_tokens_slowly(
    f: Field, parts: list[str], rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Token parsing that drops empty tokens (``"1||2"``, trailing ``|``) and names bad ones."""
    stripped = pd.Series(parts, dtype="string").str.strip()
    empty = (stripped == "").to_numpy()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & ~empty | (~np.isnan(values) & (values != np.round(values)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"multi field {f.name!r}: row {int(rows[i])} holds token {parts[i]!r}; "
            f"tokens must be integers separated by {MULTI_SEPARATOR!r}"
        )
    return values[~empty].astype(np.int64), rows[~empty]
