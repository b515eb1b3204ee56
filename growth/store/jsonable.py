"""Plain JSON for what a run stores as text (its config and summary).

>>> import numpy as np
>>> to_jsonable({"gap": np.float64("nan"), "users": np.int64(3), "duals": np.array([0.5])})
{'gap': None, 'users': 3, 'duals': [0.5]}
>>> dump_json({"budget": np.float32(1.5)}, "config")
'{"budget": 1.5}'
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(value: Any, path: str = "value") -> Any:
    """Convert ``value`` to plain JSON types (numpy/pandas scalars and arrays included).

    NaN, infinities, ``pd.NA`` and ``NaT`` become ``None`` (strict JSON has no
    NaN, and PostgreSQL's ``json`` type rejects it).  Datetimes become ISO
    strings, enums their value, dataclasses and pydantic models dicts.  Anything
    else raises ``TypeError`` naming the path of the offending entry.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Enum):
        return to_jsonable(value.value, path)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, np.datetime64 | np.timedelta64 | Path):
        return str(value)
    if isinstance(value, Mapping):
        return _mapping(value, path)
    if isinstance(value, np.ndarray | pd.Series | pd.Index):
        return to_jsonable(value.tolist(), path)
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"), path)
    if isinstance(value, set | frozenset):
        items = [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return to_jsonable(value.item(), path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), path)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic v2 models
        return to_jsonable(model_dump(mode="json"), path)
    raise TypeError(f"{path}: value of type {type(value).__name__} is not JSON-serialisable")


def _mapping(value: Mapping[Any, Any], path: str) -> dict[str, Any]:
    """A mapping with str keys (ints, bools and enums are written as text)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str | int | np.integer | bool | Enum):
            raise TypeError(f"{path}: key {key!r} of type {type(key).__name__} is not a str/int")
        name = str(key.value if isinstance(key, Enum) else key)
        out[name] = to_jsonable(item, f"{path}[{name!r}]")
    return out


def dump_json(value: Mapping[str, Any] | None, what: str) -> str:
    """``value`` (``None``: ``{}``) as strict JSON text; ``what`` names it in errors."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping (dict), got {type(value).__name__}")
    return json.dumps(to_jsonable(value, what), allow_nan=False)
