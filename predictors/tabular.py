"""Turn a frame described by a :class:`~predictors.features.FeatureSpec` into a numeric table.

Tree models (LightGBM) consume this: numeric fields pass through (NaN kept:
LightGBM treats it as missing), categorical fields become whole-number codes
(declared categorical to LightGBM), multi fields become per-token shares (one
column per token of the field's vocabulary, named by the token, plus ``__oov`` for
the tokens beyond a cut vocabulary) and a length column.  Every column is float32.

A categorical field whose column is already numeric (item category ids, coupon
type codes) keeps its values as codes and NaN as missing: mapping a missing
value to a code of its own would change the trees LightGBM grows.  Text and
boolean categories get vocabulary codes (0 = unknown or missing, so a present
value is never code 0, which LightGBM bins apart from the others).

Example:

>>> from predictors.features import FeatureSpec
>>> frame = pd.DataFrame({"tier": ["gold", "silver"], "item": [3.0, None], "my_tags": ["0|1", ""]})
>>> domains = {"tier": "user", "item": "item", "my_tags": "user"}
>>> spec = FeatureSpec.infer(frame, domains, categorical=["item"]).fit(frame)
>>> encode_tabular(spec, frame)
   tier  item  my_tags__0  my_tags__1  my_tags__len
0   1.0   3.0         0.5         0.5           2.0
1   2.0   NaN         0.0         0.0           0.0
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictors.features import FeatureSpec, Field, multi_hot_counts


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
            names.extend(_share_names(f))
            names.append(f"{f.name}__len")
    return names, categorical


def encode_tabular(spec: FeatureSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Encode ``frame`` with a fitted spec; rows keep the frame's order.

    Returns a float32 frame whose columns are ``tabular_columns(spec)[0]``.
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
            parts[f.name] = categorical_codes(spec, f, col)
        else:
            counts = multi_hot_counts(f, col)  # (rows, n_tokens + oov)
            length = counts.sum(axis=1)
            shares = counts / np.maximum(length, 1.0)[:, None]
            for j, name in enumerate(_share_names(f)):
                parts[name] = shares[:, j]
            parts[f"{f.name}__len"] = length.astype(np.float32)
    return pd.DataFrame(parts, index=frame.index)


def _share_names(f: Field) -> list[str]:
    """Columns of a multi field's token shares: one per known token, then ``__oov``."""
    return [f"{f.name}__{t}" for t in f.tokens] + ([f"{f.name}__oov"] if f.oov else [])


def categorical_codes(spec: FeatureSpec, f: Field, column: pd.Series) -> np.ndarray:
    """float32 codes of a categorical column: numbers as they are, text and booleans via the
    vocabulary.

    Numeric codes must be whole numbers >= 0 (NaN = missing), as LightGBM requires.
    """
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        codes = column.to_numpy(dtype=np.float32, na_value=np.nan)
        present = codes[~np.isnan(codes)]
        if ((present < 0) | (present != np.round(present))).any():
            raise ValueError(
                f"categorical field {f.name!r} holds numbers that are not whole codes >= 0; "
                "pass its values as text to have them mapped to codes"
            )
        return codes
    return spec.encode_categorical(f, column).astype(np.float32)
