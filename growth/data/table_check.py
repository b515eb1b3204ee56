"""Check one table against a :class:`~growth.data.schema.TableSchema`, naming the column and row at fault.

This is the one row-validation engine of the platform: dataset files
(:mod:`growth.data.validation`) and the SQL store's result rows
(:mod:`growth.store.rows`) both go through :func:`validate_table`, so every bad value
is reported the same way, as a :class:`DataValidationError` such as::

    exposures.parquet: column 'label', row 17: value 2 is above the maximum 1

Validation also *coerces* safe conversions (an integer column stored as float
without fractions, datetime strings read from CSV, ``0/1`` booleans) and returns
frames with a fixed dtype per kind, so a dataset read from CSV equals the same
dataset read from parquet:

=========  ==========================================================================
kind       dtype after validation
=========  ==========================================================================
int        ``int64``; a *nullable* int column holding missing values is ``float64``
           (integral values, NaN for missing), as pandas itself would store it
float      ``float64``
bool       ``bool``
str        pandas ``str`` (NaN for missing, where the column is nullable)
datetime   ``datetime64[ns]`` (time-zone aware values are converted to naive UTC)
multi      pandas ``str`` of ``|``-separated integer tokens ``0..MAX_TOKEN``, ``""`` = empty
=========  ==========================================================================

Row numbers in messages are 0-based positions in the table (the data row of a file,
not counting a CSV header).  Columns the schema does not know pass through unchanged
(a ``closed`` schema refuses them), except the open-ended domain feature columns of
``users`` (``src_*``/``tgt_*``), which must be numeric (converted to ``float64``,
NaN = missing) or multi-valued.

>>> import pandas as pd
>>> from growth.data.schema import Column, TableSchema
>>> scores = TableSchema("scores", (Column("user_id", "int", min=0), Column("p", "float", max=1.0)))
>>> validate_table(pd.DataFrame({"user_id": [1.0, 2.0], "p": ["0.5", "0.25"]}), scores).dtypes.tolist()
[dtype('int64'), dtype('float64')]
>>> validate_table(pd.DataFrame({"user_id": [1, 2], "p": [0.5, 1.5]}), scores, file="scores.csv")
Traceback (most recent call last):
...
growth.data.table_check.DataValidationError: scores.csv: column 'p', row 1: value 1.5 is above the maximum 1
"""

from __future__ import annotations

import datetime
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from growth.data.schema import (
    MAX_FEATURE,
    MAX_TOKEN,
    MULTI_SEPARATOR,
    MULTI_SUFFIXES,
    Column,
    TableSchema,
)

__all__ = ["DataValidationError", "first_row", "show", "validate_table"]

# A multi-valued cell: "" or non-negative integer tokens joined by the separator.
_MULTI_PATTERN = r"(?:\d+(?:{sep}\d+)*)?".format(sep="\\" + MULTI_SEPARATOR)
# A token longer than MAX_TOKEN's digits may be too large: such cells are parsed.
_MAX_DIGITS = str(MAX_TOKEN)
_LONG_TOKEN = rf"\d{{{len(_MAX_DIGITS)},}}"
_INT64_LIMIT = 2.0**63  # a float at or beyond this (in size) is no int64
_FIRST_TIME, _LAST_TIME = pd.Timestamp("1677-09-22", tz="UTC"), pd.Timestamp("2262-04-11", tz="UTC")
_TRUE_STRINGS = frozenset({"true", "1", "t", "yes"})
_FALSE_STRINGS = frozenset({"false", "0", "f", "no"})


class DataValidationError(ValueError):
    """A table breaks its schema.

    ``file`` is the file path (or the table name when the data did not come from a
    file), ``column`` the column at fault (``None`` for table-level problems) and
    ``row`` the 0-based row position (``None`` when no single row is at fault).
    ``str(error)`` names all three, e.g.
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
        where = []
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        place = ", ".join(where) + ": " if where else ""
        return f"{self.file or '<table>'}: {place}{self.reason}"


def _rebuild_error(
    message: str, file: str | None, column: str | None, row: int | None
) -> DataValidationError:
    """Unpickle a :class:`DataValidationError` (keyword-only constructor)."""
    return DataValidationError(message, file=file, column=column, row=row)


def first_row(mask: np.ndarray | pd.Series) -> int | None:
    """Position of the first True in a boolean mask, or None."""
    arr = np.asarray(mask, dtype=bool)
    if not arr.any():
        return None
    return int(np.argmax(arr))


def show(value: Any) -> str:
    """A value as it should appear in an error message (text quoted, 2.0 shown as 2)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


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
    return first_row(bad & present)


def _is_flag(value: Any) -> bool:
    """A typed boolean cell: True/False or the numbers 0/1 (never text)."""
    return not isinstance(value, str) and value in (True, False, 0, 1)


class _Checker:
    """Validates and coerces one table, remembering where errors must point."""

    def __init__(self, schema: TableSchema, file: str) -> None:
        self.schema = schema
        self.file = file

    def fail(self, message: str, column: str | None = None, row: int | None = None) -> NoReturn:
        raise DataValidationError(message, file=self.file, column=column, row=row)

    # -- kinds -------------------------------------------------------------------------

    def to_numeric(self, series: pd.Series, col: str, kind: str) -> pd.Series:
        """Any numeric-looking series to float64/int64; text is parsed, bools are 0/1 (untyped)."""
        first = 0 if len(series) else None
        if pd.api.types.is_bool_dtype(series.dtype):
            if self.schema.typed:
                self.fail(f"booleans given for a numeric column ({kind} expected)", col, first)
            return series.astype(np.int64)
        if pd.api.types.is_numeric_dtype(series.dtype):
            return series.astype(np.float64) if kind == "float" else series
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            self.fail(f"expected {kind} values, found datetimes", col, first)
        missing = series.isna().to_numpy()
        blank: np.ndarray | int = 0
        text = series
        if _is_string_dtype(series) and not self.schema.typed:  # a file's "" is a missing value
            text = series.astype("str").str.strip()
            blank = np.asarray(text.eq(""), dtype=bool)
        parsed = pd.to_numeric(text.where(~missing), errors="coerce")
        bad = parsed.isna().to_numpy() & ~missing & ~np.asarray(blank, dtype=bool)
        row = first_row(bad)
        if row is not None:
            self.fail(f"value {show(series.iloc[row])} is not a number ({kind} expected)", col, row)
        return parsed.astype(np.float64)

    def coerce_int(self, series: pd.Series, column: Column) -> pd.Series:
        values = self.to_numeric(series, column.name, "int")
        if pd.api.types.is_unsigned_integer_dtype(values.dtype) and values.max() >= _INT64_LIMIT:
            values = values.astype(np.float64)  # beyond int64: refused below
        if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
            values.dtype, pd.api.extensions.ExtensionDtype
        ):
            return values.astype(np.int64)
        floats = values.astype(np.float64)
        arr = floats.to_numpy()
        finite = np.isfinite(arr)
        bad = ~np.isnan(arr) & (~finite | (np.floor(np.where(finite, arr, 0.0)) != arr))
        row = first_row(bad)
        if row is not None:
            self.fail(f"value {show(series.iloc[row])} is not an integer", column.name, row)
        row = first_row(np.abs(np.where(finite, arr, 0.0)) >= _INT64_LIMIT)
        if row is not None:
            self.fail(f"value {show(series.iloc[row])} does not fit int64", column.name, row)
        if np.isnan(arr).any():
            return floats  # nullable int with missing values: float64 with NaN
        return floats.astype(np.int64)

    def coerce_float(self, series: pd.Series, column: Column) -> pd.Series:
        return self.finite(self.to_numeric(series, column.name, "float"), column.name)

    def finite(self, values: pd.Series, name: str, limit: float = np.inf) -> pd.Series:
        """``values`` as float64, refusing infinities and sizes beyond ``limit`` (NaN: missing)."""
        values = values.astype(np.float64)
        arr = values.to_numpy()
        row = first_row(np.isinf(arr))
        if row is not None:
            self.fail(f"value {show(values.iloc[row])} is not finite", name, row)
        row = first_row(np.abs(np.nan_to_num(arr)) > limit)
        if row is not None:
            self.fail(f"value {show(values.iloc[row])} is larger than {limit:g} in size", name, row)
        return values

    def coerce_bool(self, series: pd.Series, column: Column) -> pd.Series:
        if pd.api.types.is_bool_dtype(series.dtype) and not series.isna().any():
            return series.astype(bool)
        missing = series.isna().to_numpy()
        row = first_row(missing)
        if row is not None:
            self.fail("missing value in a bool column", column.name, row)
        if pd.api.types.is_numeric_dtype(series.dtype):
            arr = series.to_numpy(dtype=np.float64)
            is_true, ok = arr == 1.0, (arr == 0.0) | (arr == 1.0)
        elif self.schema.typed:  # Python objects: booleans and 0/1 only, never text
            values = series.to_numpy(dtype=object)
            ok = np.fromiter(map(_is_flag, values), dtype=bool, count=len(values))
            is_true = ok & np.fromiter(map(bool, values), dtype=bool, count=len(values))
        else:
            lowered = series.astype("str").str.strip().str.lower()
            is_true = lowered.isin(_TRUE_STRINGS).to_numpy()
            ok = is_true | lowered.isin(_FALSE_STRINGS).to_numpy()
        row = first_row(~ok)
        if row is not None:
            self.fail(
                f"value {show(series.iloc[row])} is not a bool (expected 0/1 or true/false)",
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
                f"value {show(series.iloc[row])} of type {type(series.iloc[row]).__name__} "
                "is not text",
                column.name,
                row,
            )
        return series.astype("str")

    def coerce_datetime(self, series: pd.Series, column: Column) -> pd.Series:
        dtype = series.dtype
        missing = series.isna().to_numpy()
        if isinstance(dtype, pd.DatetimeTZDtype):
            parsed = series.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(dtype):
            parsed = series.dt.tz_localize("UTC")
        elif missing.all():
            return pd.Series(pd.NaT, index=series.index, name=series.name, dtype="datetime64[ns]")
        elif not _is_string_dtype(series):
            self.fail(
                f"expected datetimes (or ISO-8601 text), found dtype {dtype}",
                column.name,
                0 if len(series) else None,
            )
        else:
            if _non_string_position(series, missing) is not None:  # objects: text or datetimes
                values = series.to_numpy(dtype=object)
                bad = np.fromiter(
                    (not isinstance(v, (str, datetime.date, np.datetime64)) for v in values),
                    dtype=bool,
                    count=len(values),
                )
                row = first_row(bad & ~missing)
                if row is not None:
                    self.fail(f"value {show(series.iloc[row])} is not a datetime", column.name, row)
            parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=True)
        inside = (parsed >= _FIRST_TIME) & (parsed <= _LAST_TIME)  # what datetime64[ns] holds
        row = first_row(~inside.to_numpy(dtype=bool, na_value=False) & ~missing)
        if row is not None:
            self.fail(
                f"value {show(series.iloc[row])} is not an ISO-8601 datetime in 1677-2262",
                column.name,
                row,
            )
        return parsed.dt.tz_localize(None).astype("datetime64[ns]")

    def coerce_multi(self, series: pd.Series, name: str) -> pd.Series:
        missing = series.isna().to_numpy()
        row = first_row(missing)
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
                self.fail(f"value {show(series.iloc[row])} is not text", name, row)
            values = series.astype("str")
        ok = values.str.fullmatch(_MULTI_PATTERN).to_numpy(dtype=bool, na_value=False)
        row = first_row(~ok)
        if row is not None:
            self.fail(
                f"value {show(values.iloc[row])} is not a list of non-negative integer tokens "
                f"separated by '{MULTI_SEPARATOR}' (\"\" for empty)",
                name,
                row,
            )
        for row in np.flatnonzero(values.str.contains(_LONG_TOKEN).to_numpy(dtype=bool)):
            digits = [t.lstrip("0") for t in values.iloc[row].split(MULTI_SEPARATOR)]
            big = [t for t in digits if len(t) > len(_MAX_DIGITS) or int(t or 0) > MAX_TOKEN]
            if big:
                self.fail(f"token {big[0][:30]} is above the maximum {MAX_TOKEN}", name, int(row))
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
            row = first_row(missing)
            if row is not None:
                self.fail(
                    "missing value (NaN/empty) in a column that does not allow it "
                    f"({int(missing.sum())} missing in all)",
                    name,
                    row,
                )
        if column.kind in ("int", "float"):
            self.check_bounds(series, column)
        if column.max_length is not None:
            row = first_row(series.str.len().to_numpy(dtype=np.float64) > column.max_length)
            if row is not None:
                self.fail(
                    f"value {show(series.iloc[row])} is longer than {column.max_length} characters",
                    name,
                    row,
                )
        if column.choices is not None:
            row = first_row(~series.isin(column.choices).to_numpy() & ~missing)
            if row is not None:
                self.fail(
                    f"value {show(series.iloc[row])} is not one of {list(column.choices)}",
                    name,
                    row,
                )
        if column.unique:
            row = first_row(series.duplicated(keep="first").to_numpy() & ~missing)
            if row is not None:
                value = series.iloc[row]
                earlier = first_row((series == value).to_numpy())
                self.fail(
                    f"duplicate value {show(value)} (also in row {earlier}); values must be unique",
                    name,
                    row,
                )

    def check_bounds(self, series: pd.Series, column: Column) -> None:
        """Numeric values within ``column.min``/``column.max`` (inclusive; NaN is not checked)."""
        if column.min is None and column.max is None:
            return
        arr = series.to_numpy(dtype=np.float64)
        for bound, outside, label in (
            (column.min, np.less, "below the minimum"),
            (column.max, np.greater, "above the maximum"),
        ):
            if bound is None:
                continue
            row = first_row(outside(arr, bound))
            if row is not None:
                self.fail(
                    f"value {show(series.iloc[row])} is {label} {show(bound)}", column.name, row
                )

    # -- table -------------------------------------------------------------------------

    def check_feature(self, series: pd.Series, name: str) -> pd.Series:
        if name.endswith(MULTI_SUFFIXES):
            return self.coerce_multi(series, name)
        if _is_string_dtype(series) or pd.api.types.is_numeric_dtype(series.dtype):
            return self.finite(self.to_numeric(series, name, "float"), name, MAX_FEATURE)
        self.fail(
            f"domain feature columns must be numeric, or multi-valued with a name ending in "
            f"{' or '.join(MULTI_SUFFIXES)}; found dtype {series.dtype}",
            name,
            0 if len(series) else None,
        )

    def check_columns(self, names: list[str]) -> None:
        """No column twice, none unknown to a closed schema, every required one present."""
        dup = pd.Index(names).duplicated()
        if dup.any():
            self.fail("column appears more than once", names[int(np.argmax(dup))])
        if self.schema.closed:
            known = [c.name for c in (*self.schema.columns, *self.schema.optional_columns)]
            unknown = [n for n in names if n not in known]
            if unknown:
                self.fail(
                    f"unknown column(s) {unknown}; the table's columns are {known}", unknown[0]
                )
        missing = [c for c in self.schema.column_names if c not in names]
        if missing:
            self.fail(f"missing required column(s) {missing}; found columns {names}", missing[0])

    def run(self, df: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(df, pd.DataFrame):
            self.fail(f"expected a pandas DataFrame, got {type(df).__name__}")
        names = [str(c) for c in df.columns]
        self.check_columns(names)
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
