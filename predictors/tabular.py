"""Turn a frame described by a :class:`~predictors.features.FeatureSpec` into a numeric table.

Tree models (LightGBM) and plain MLPs consume this: numeric fields pass through
(NaN kept: LightGBM treats it as missing), categorical fields become integer
codes (declared categorical to LightGBM), multi fields become per-token shares
plus a length column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictors.features import FeatureSpec, multi_hot_counts


def tabular_columns(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """Output column names and the subset that is categorical."""
    names: list[str] = []
    categorical: list[str] = []
    for f in spec.fields:
        if f.kind == "numeric":
            names.append(f.name)
        elif f.kind == "categorical":
            names.append(f.name)
            categorical.append(f.name)
        else:
            names.extend(f"{f.name}__{t}" for t in range(f.n_tokens))
            names.append(f"{f.name}__len")
    return names, categorical


def encode_tabular(spec: FeatureSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Encode ``frame`` with a fitted spec; rows keep the frame's order.

    Returns a float32 frame (categorical codes as int32) whose columns are
    ``tabular_columns(spec)[0]``.
    """
    if not spec.fitted:
        raise ValueError("the FeatureSpec is not fitted; call spec.fit(train_frame) first")
    spec.check_columns(frame)
    parts: dict[str, np.ndarray] = {}
    for f in spec.fields:
        col = frame[f.name]
        if f.kind == "numeric":
            parts[f.name] = pd.to_numeric(col, errors="raise").to_numpy(dtype=np.float32)
        elif f.kind == "categorical":
            parts[f.name] = spec.encode_categorical(f, col).astype(np.int32)
        else:
            counts = multi_hot_counts(col, f.n_tokens)  # (rows, n_tokens)
            length = counts.sum(axis=1)
            shares = counts / np.maximum(length, 1.0)[:, None]
            for t in range(f.n_tokens):
                parts[f"{f.name}__{t}"] = shares[:, t]
            parts[f"{f.name}__len"] = length.astype(np.float32)
    return pd.DataFrame(parts, index=frame.index)
