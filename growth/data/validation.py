"""Check tables and datasets against :mod:`growth.data.schema`, naming the file, column and row at fault.

Every reader of the platform's data format goes through :func:`validate_table` (one
table) or :func:`validate_dataset` (all tables plus the rules that span tables), so a
bad file is rejected at the boundary with a message such as::

    exposures.parquet: column 'label', row 17: value 2 is above the maximum 1

rather than surfacing later as a shape error inside a predictor.  Validation also
*coerces* safe conversions (an integer column stored as float without fractions,
datetime strings read from CSV, ``0/1`` booleans) and returns frames with a fixed dtype
per kind, so a dataset read from CSV equals the same dataset read from parquet:

=========  ==========================================================================
kind       dtype after validation
=========  ==========================================================================
int        ``int64``; a *nullable* int column holding missing values is ``float64``
           (integral values, NaN for missing), as pandas itself would store it
float      ``float64``
bool       ``bool``
str        pandas ``str`` (NaN for missing, where the column is nullable)
datetime   ``datetime64[ns]`` (time-zone aware values are converted to naive UTC)
multi      pandas ``str`` of ``|``-separated non-negative integer tokens, ``""`` = empty
=========  ==========================================================================

Row numbers in messages are 0-based positions in the table (the data row of the file,
not counting a CSV header).  Columns that the schema does not know are passed through
unchanged, except in ``users``, where any ``src_*``/``tgt_*`` column is a domain feature
and must be numeric (converted to ``float64``, NaN = missing) or multi-valued.

Example::

    >>> import pandas as pd
    >>> from growth.data.schema import EXPOSURES
    >>> frame = pd.DataFrame({"user_id": [1], "item_id": [2], "domain": ["target"],
    ...     "timestamp": ["2024-01-01"], "treatment": ["none"], "label": [2]})
    >>> validate_table(frame, EXPOSURES, file="exposures.csv")
    Traceback (most recent call last):
    ...
    growth.data.validation.DataValidationError: exposures.csv: column 'label', row 0: value 2 is above the maximum 1
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from growth.data.dataset import Dataset
from growth.data.schema import (
    MULTI_SEPARATOR,
    MULTI_SUFFIXES,
    NO_COUPON,
    TABLES,
    Column,
    CouponType,
    TableSchema,
)

__all__ = [
    "DataValidationError",
    "validate_dataset",
    "validate_table",
]

# A multi-valued cell: "" or non-negative integer tokens joined by the separator.
_MULTI_PATTERN = r"(?:\d+(?:{sep}\d+)*)?".format(sep="\\" + MULTI_SEPARATOR)
_TRUE_STRINGS = frozenset({"true", "1", "t", "yes"})
_FALSE_STRINGS = frozenset({"false", "0", "f", "no"})


class DataValidationError(ValueError):
    """A table breaks the documented format.

    ``file`` is the file path (or the table name when the data did not come from a
    file), ``column`` the column at fault (``None`` for table-level problems) and
    ``row`` the 0-based row position in the file (``None`` when no single row is at
    fault).  ``str(error)`` names all three, e.g.
    ``exposures.parquet: column 'label', row 17: value 2 is above the maximum 1``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        self.file = file
        self.column = column
        self.row = row
        self.reason = message
        super().__init__(self._format())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.reason, self.file, self.column, self.row))

    def _format(self) -> str:
        where = [self.file or "<table>"]
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        return (
            f"{where[0]}: "
            + (", ".join(where[1:]) + ": " if len(where) > 1 else "")
            + (self.reason)
        )


def _rebuild_error(
    message: str, file: str | None, column: str | None, row: int | None
) -> DataValidationError:
    """Unpickle a :class:`DataValidationError` (keyword-only constructor)."""
    return DataValidationError(message, file=file, column=column, row=row)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _first(mask: np.ndarray | pd.Series) -> int | None:
    """Position of the first True in a boolean mask, or None."""
    arr = np.asarray(mask, dtype=bool)
    if not arr.any():
        return None
    return int(np.argmax(arr))


def _show(value: Any) -> str:
    """A value as it should appear in an error message."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_multi_name(name: str) -> bool:
    return name.endswith(MULTI_SUFFIXES)


def _is_string_dtype(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) or series.dtype == object


def _non_string_position(series: pd.Series, missing: np.ndarray) -> int | None:
    """First row holding something other than a str (missing values excluded)."""
    if isinstance(series.dtype, pd.StringDtype):
        return None
    values = series.to_numpy(dtype=object)
    present = ~missing
    if pd.api.types.infer_dtype(values[present], skipna=False) in ("string", "empty"):
        return None
    bad = np.fromiter((not isinstance(v, str) for v in values), dtype=bool, count=len(values))
    return _first(bad & present)


class _Checker:
    """Validates and coerces one table, remembering where errors must point."""

    def __init__(self, schema: TableSchema, file: str) -> None:
        self.schema = schema
        self.file = file

    def fail(self, message: str, column: str | None = None, row: int | None = None) -> NoReturn:
        raise DataValidationError(message, file=self.file, column=column, row=row)

    # -- kinds -------------------------------------------------------------------------

    def to_numeric(self, series: pd.Series, col: str, kind: str) -> pd.Series:
        """Any numeric-looking series to float64/int64; strings are parsed, bools kept as 0/1."""
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype(np.int64)
        if pd.api.types.is_numeric_dtype(series.dtype):
            return series.astype(np.float64) if kind == "float" else series
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            self.fail(f"expected {kind} values, found datetimes", col, 0 if len(series) else None)
        missing = series.isna().to_numpy()
        stripped = series.astype("str").str.strip() if _is_string_dtype(series) else series
        parsed = pd.to_numeric(stripped.where(~missing), errors="coerce")
        empty = np.asarray(stripped.eq(""), dtype=bool) if _is_string_dtype(series) else 0
        bad = parsed.isna().to_numpy() & ~missing & ~np.asarray(empty, dtype=bool)
        row = _first(bad)
        if row is not None:
            self.fail(
                f"value {_show(series.iloc[row])} is not a number ({kind} expected)", col, row
            )
        return parsed.astype(np.float64)

    def coerce_int(self, series: pd.Series, column: Column) -> pd.Series:
        values = self.to_numeric(series, column.name, "int")
        if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
            values.dtype, pd.api.extensions.ExtensionDtype
        ):
            return values.astype(np.int64)
        floats = values.astype(np.float64)
        arr = floats.to_numpy()
        finite = np.isfinite(arr)
        bad = ~np.isnan(arr) & (~finite | (np.floor(np.where(finite, arr, 0.0)) != arr))
        row = _first(bad)
        if row is not None:
            self.fail(f"value {_show(series.iloc[row])} is not an integer", column.name, row)
        if np.isnan(arr).any():
            return floats  # nullable int with missing values: float64 with NaN
        return floats.astype(np.int64)

    def coerce_float(self, series: pd.Series, column: Column) -> pd.Series:
        values = self.to_numeric(series, column.name, "float").astype(np.float64)
        row = _first(np.isinf(values.to_numpy()))
        if row is not None:
            self.fail(f"value {_show(values.iloc[row])} is not finite", column.name, row)
        return values

    def coerce_bool(self, series: pd.Series, column: Column) -> pd.Series:
        if pd.api.types.is_bool_dtype(series.dtype) and not series.isna().any():
            return series.astype(bool)
        missing = series.isna().to_numpy()
        row = _first(missing)
        if row is not None:
            self.fail("missing value in a bool column", column.name, row)
        if pd.api.types.is_numeric_dtype(series.dtype):
            arr = series.to_numpy(dtype=np.float64)
            row = _first((arr != 0.0) & (arr != 1.0))
            if row is not None:
                self.fail(
                    f"value {_show(series.iloc[row])} is not a bool (expected 0/1 or true/false)",
                    column.name,
                    row,
                )
            return pd.Series(arr == 1.0, index=series.index, name=series.name)
        lowered = series.astype("str").str.strip().str.lower()
        is_true = lowered.isin(_TRUE_STRINGS).to_numpy()
        is_false = lowered.isin(_FALSE_STRINGS).to_numpy()
        row = _first(~(is_true | is_false))
        if row is not None:
            self.fail(
                f"value {_show(series.iloc[row])} is not a bool (expected 0/1 or true/false)",
                column.name,
                row,
            )
        return pd.Series(is_true, index=series.index, name=series.name)

    def coerce_str(self, series: pd.Series, column: Column) -> pd.Series:
        missing = series.isna().to_numpy()
        if (
            missing.all()
            or pd.api.types.is_integer_dtype(series.dtype)
            or pd.api.types.is_bool_dtype(series.dtype)
        ):
            return series.astype("str")
        if not _is_string_dtype(series):
            self.fail(
                f"expected text values, found dtype {series.dtype}",
                column.name,
                0 if len(series) else None,
            )
        row = _non_string_position(series, missing)
        if row is not None:
            self.fail(
                f"value {_show(series.iloc[row])} of type {type(series.iloc[row]).__name__} "
                "is not text",
                column.name,
                row,
            )
        return series.astype("str")

    def coerce_datetime(self, series: pd.Series, column: Column) -> pd.Series:
        dtype = series.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            return series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        if pd.api.types.is_datetime64_dtype(dtype):
            return series.astype("datetime64[ns]")
        if series.isna().all():
            return pd.Series(pd.NaT, index=series.index, name=series.name, dtype="datetime64[ns]")
        if not _is_string_dtype(series):
            self.fail(
                f"expected datetimes (or ISO-8601 text), found dtype {dtype}",
                column.name,
                0 if len(series) else None,
            )
        missing = series.isna().to_numpy()
        if _non_string_position(series, missing) is not None:  # objects: text or datetimes only
            values = series.to_numpy(dtype=object)
            bad = np.fromiter(
                (not isinstance(v, (str, datetime.date, np.datetime64)) for v in values),
                dtype=bool,
                count=len(values),
            )
            row = _first(bad & ~missing)
            if row is not None:
                self.fail(f"value {_show(series.iloc[row])} is not a datetime", column.name, row)
        parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=True)
        row = _first(parsed.isna().to_numpy() & ~missing)
        if row is not None:
            self.fail(
                f"value {_show(series.iloc[row])} is not an ISO-8601 datetime", column.name, row
            )
        return parsed.dt.tz_localize(None).astype("datetime64[ns]")

    def coerce_multi(self, series: pd.Series, name: str) -> pd.Series:
        missing = series.isna().to_numpy()
        row = _first(missing)
        if row is not None:
            self.fail(
                'missing value in a multi-valued column (use "" for an empty list)', name, row
            )
        if pd.api.types.is_integer_dtype(series.dtype):
            values = series.astype("str")  # single-token cells read back as numbers
        else:
            if not _is_string_dtype(series):
                self.fail(
                    f"expected '{MULTI_SEPARATOR}'-separated integer tokens, "
                    f"found dtype {series.dtype}",
                    name,
                    0 if len(series) else None,
                )
            row = _non_string_position(series, missing)
            if row is not None:
                self.fail(f"value {_show(series.iloc[row])} is not text", name, row)
            values = series.astype("str")
        ok = values.str.fullmatch(_MULTI_PATTERN).to_numpy(dtype=bool, na_value=False)
        row = _first(~ok)
        if row is not None:
            self.fail(
                f"value {_show(values.iloc[row])} is not a list of non-negative integer tokens "
                f"separated by '{MULTI_SEPARATOR}' (\"\" for empty)",
                name,
                row,
            )
        return values

    def coerce(self, series: pd.Series, column: Column) -> pd.Series:
        if column.kind == "int":
            return self.coerce_int(series, column)
        if column.kind == "float":
            return self.coerce_float(series, column)
        if column.kind == "bool":
            return self.coerce_bool(series, column)
        if column.kind == "str":
            return self.coerce_str(series, column)
        if column.kind == "datetime":
            return self.coerce_datetime(series, column)
        if column.kind == "multi":
            return self.coerce_multi(series, column.name)
        raise ValueError(f"schema {self.schema.name!r}: unknown kind {column.kind!r}")

    # -- value rules -------------------------------------------------------------------

    def check_values(self, series: pd.Series, column: Column) -> None:
        name = column.name
        missing = series.isna().to_numpy()
        if not column.nullable:
            row = _first(missing)
            if row is not None:
                self.fail("missing value (NaN/empty) in a column that does not allow it", name, row)
        if column.kind in ("int", "float") and (column.min is not None or column.max is not None):
            arr = series.to_numpy(dtype=np.float64)
            if column.min is not None:
                row = _first(arr < column.min)
                if row is not None:
                    self.fail(
                        f"value {_show(series.iloc[row])} is below the minimum {_show(column.min)}",
                        name,
                        row,
                    )
            if column.max is not None:
                row = _first(arr > column.max)
                if row is not None:
                    self.fail(
                        f"value {_show(series.iloc[row])} is above the maximum {_show(column.max)}",
                        name,
                        row,
                    )
        if column.choices is not None:
            bad = ~series.isin(column.choices).to_numpy() & ~missing
            row = _first(bad)
            if row is not None:
                self.fail(
                    f"value {_show(series.iloc[row])} is not one of {list(column.choices)}",
                    name,
                    row,
                )
        if column.unique:
            dup = series.duplicated(keep="first").to_numpy() & ~missing
            row = _first(dup)
            if row is not None:
                value = series.iloc[row]
                earlier = _first((series == value).to_numpy())
                self.fail(
                    f"duplicate value {_show(value)} (also in row {earlier}); values must be unique",
                    name,
                    row,
                )

    # -- table -------------------------------------------------------------------------

    def check_feature(self, series: pd.Series, name: str) -> pd.Series:
        if _is_multi_name(name):
            return self.coerce_multi(series, name)
        if _is_string_dtype(series) or pd.api.types.is_numeric_dtype(series.dtype):
            values = self.to_numeric(series, name, "float").astype(np.float64)
            row = _first(np.isinf(values.to_numpy()))
            if row is not None:
                self.fail(f"value {_show(values.iloc[row])} is not finite", name, row)
            return values
        self.fail(
            f"domain feature columns must be numeric, or multi-valued with a name ending in "
            f"{' or '.join(MULTI_SUFFIXES)}; found dtype {series.dtype}",
            name,
            0 if len(series) else None,
        )

    def run(self, df: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(df, pd.DataFrame):
            self.fail(f"expected a pandas DataFrame, got {type(df).__name__}")
        names = [str(c) for c in df.columns]
        dup = pd.Index(names).duplicated()
        if dup.any():
            self.fail("column appears more than once", names[int(np.argmax(dup))])
        missing = [c for c in self.schema.column_names if c not in names]
        if missing:
            self.fail(
                f"missing required column(s) {missing}; found columns {names}",
                missing[0],
            )
        out = df.reset_index(drop=True).copy()
        out.columns = names
        for name in names:
            try:
                column = self.schema.column(name)
            except KeyError:
                column = None
            if column is not None:
                out[name] = self.coerce(out[name], column)
                self.check_values(out[name], column)
            elif self.schema.feature_prefixes and name.startswith(self.schema.feature_prefixes):
                out[name] = self.check_feature(out[name], name)
        return out


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------


def validate_table(
    df: pd.DataFrame, schema: TableSchema, *, file: str | None = None
) -> pd.DataFrame:
    """Check one table against ``schema`` and return it with coerced dtypes.

    Args:
        df: the table; its index is ignored (rows are numbered by position).
        schema: the table's :class:`~growth.data.schema.TableSchema`.
        file: name used in error messages (a file path); defaults to the table name.

    Returns:
        A new frame with a fresh ``RangeIndex`` and the dtypes listed in the module
        docstring.  Unknown columns are passed through unchanged.

    Raises:
        DataValidationError: naming the file, column and (where one row is at fault)
            the row of the first problem found.
    """
    return _Checker(schema, file or schema.name).run(df)


def _check_reference(
    tables: Mapping[str, pd.DataFrame],
    table: str,
    column: Column,
    files: Mapping[str, str],
) -> None:
    assert column.references is not None
    ref_table, ref_column = column.references.split(".", 1)
    file = files.get(table, table)
    values = tables[table][column.name]
    if ref_table not in tables:
        raise DataValidationError(
            f"refers to {column.references}, but the dataset has no {ref_table!r} table",
            file=file,
            column=column.name,
        )
    known = tables[ref_table][ref_column]
    unknown = ~values.isin(known).to_numpy() & ~values.isna().to_numpy()
    row = _first(unknown)
    if row is not None:
        raise DataValidationError(
            f"unknown {ref_column} {_show(values.iloc[row])}: not found in "
            f"{files.get(ref_table, ref_table)} column {ref_column!r}",
            file=file,
            column=column.name,
            row=row,
        )


def _check_coupons(coupons: pd.DataFrame, file: str) -> None:
    is_none = (coupons["option_id"] == NO_COUPON).to_numpy()
    row = _first(is_none)
    if row is None:
        raise DataValidationError(
            f"the control option {NO_COUPON!r} (type {CouponType.NONE.value!r}) is missing",
            file=file,
            column="option_id",
        )
    if coupons["type"].iloc[row] != CouponType.NONE.value:
        raise DataValidationError(
            f"option {NO_COUPON!r} must have type {CouponType.NONE.value!r}, "
            f"not {_show(coupons['type'].iloc[row])}",
            file=file,
            column="type",
            row=row,
        )
    kinds = coupons["type"].to_numpy()
    threshold = coupons["threshold"].to_numpy(dtype=np.float64)
    row = _first((kinds == CouponType.FULL_REDUCTION.value) & ~(threshold > 0.0))
    if row is not None:
        raise DataValidationError(
            f"full_reduction coupon {_show(coupons['option_id'].iloc[row])} needs a threshold "
            f"> 0, got {_show(threshold[row])}",
            file=file,
            column="threshold",
            row=row,
        )
    merchant = coupons["merchant_id"].isna().to_numpy()
    row = _first((kinds == CouponType.MERCHANT.value) & merchant)
    if row is not None:
        raise DataValidationError(
            f"merchant coupon {_show(coupons['option_id'].iloc[row])} needs a merchant_id",
            file=file,
            column="merchant_id",
            row=row,
        )


def _check_channel_history(history: pd.DataFrame, file: str) -> None:
    for smaller, larger in (("logins", "installs"), ("retained", "logins")):
        a = history[smaller].to_numpy()
        b = history[larger].to_numpy()
        row = _first(a > b)
        if row is not None:
            raise DataValidationError(
                f"{smaller} {_show(a[row])} exceeds {larger} {_show(b[row])} "
                f"(the funnel must narrow: retained <= logins <= installs)",
                file=file,
                column=smaller,
                row=row,
            )


def validate_dataset(ds: Dataset, *, files: Mapping[str, str] | None = None) -> Dataset:
    """Validate every table of ``ds`` and the rules that span tables; return the coerced dataset.

    Checks, in order: each required table is present; each present table passes
    :func:`validate_table`; every ``references`` column only holds known keys; the
    coupon catalogue has the control option ``'none'`` of type ``'none'``, every
    ``full_reduction`` coupon has ``threshold > 0`` and every ``merchant`` coupon a
    ``merchant_id``; in ``channel_history``, ``retained <= logins <= installs``.

    Args:
        ds: the dataset.
        files: table name -> file path, used in error messages (``read_dataset`` passes
            the files it read); tables not listed are named by their table name.

    Raises:
        DataValidationError: naming the file, column and row of the first problem.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"expected a growth.data.dataset.Dataset, got {type(ds).__name__}")
    files = dict(files or {})
    present = ds.tables()
    for name, schema in TABLES.items():
        if schema.required and name not in present:
            raise DataValidationError(
                f"required table {name!r} is missing", file=files.get(name, name)
            )
    checked: dict[str, pd.DataFrame] = {}
    for name, frame in present.items():
        checked[name] = validate_table(frame, TABLES[name], file=files.get(name, name))
    for name in checked:
        for column in (*TABLES[name].columns, *TABLES[name].optional_columns):
            if column.references is not None and column.name in checked[name].columns:
                _check_reference(checked, name, column, files)
    _check_coupons(checked["coupons"], files.get("coupons", "coupons"))
    if "channel_history" in checked:
        _check_channel_history(
            checked["channel_history"], files.get("channel_history", "channel_history")
        )
    return replace(ds, **checked)
