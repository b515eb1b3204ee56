"""Result rows on their way into SQL: validated by the data engine, then bulk-inserted.

Each result table's validation schema is derived once from its SQLAlchemy columns
(kind from the column type, ``nullable``, ``VARCHAR`` length, and the ``choices``/
``min``/``max`` of the column's ``info``), so the rules live next to the columns they
govern and the rows go through the one row-validation engine,
:func:`growth.data.table_check.validate_table`.  A bad row fails when it is added,
with the engine's message naming table, column and row:

>>> normalise_rows("push_schedules", [{"user_id": 1, "message_id": 2,
...     "industry": "food", "hour": 24, "expected_open": 0.5}])
Traceback (most recent call last):
...
growth.data.table_check.DataValidationError: push_schedules: column 'hour', row 0: value 24 is above the maximum 23
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Boolean, Connection, Float, Integer, String, Table, insert
from sqlalchemy import Column as SqlColumn

from growth.data.schema import Column, ColumnKind, TableSchema
from growth.data.table_check import DataValidationError, validate_table
from growth.store.models import RESULT_TABLES

INSERT_CHUNK_ROWS = 100_000
"""Rows per ``executemany`` call: bounds the Python objects alive during a write."""

RESERVED = ("id", "run_id")
"""Columns of every result table that the store sets itself."""

Rows = pd.DataFrame | Iterable[Mapping[str, Any]]
"""Result rows as a caller gives them: a DataFrame or an iterable of dicts (one per row)."""


def _kind_of(col_type: Any) -> ColumnKind:
    if isinstance(col_type, Boolean):
        return "bool"
    if isinstance(col_type, Integer):
        return "int"
    if isinstance(col_type, Float):
        return "float"
    if isinstance(col_type, String):
        return "str"
    raise TypeError(f"unsupported column type {col_type!r}")


def _column(col: SqlColumn[Any]) -> Column:
    return Column(
        col.name,
        _kind_of(col.type),
        nullable=bool(col.nullable),
        min=col.info.get("min"),
        max=col.info.get("max"),
        choices=col.info.get("choices"),
        max_length=getattr(col.type, "length", None),
    )


def result_schema(tbl: Table) -> TableSchema:
    """The validation schema of a result table: what a caller provides (all but ``id``, ``run_id``).

    Columns that are neither nullable nor defaulted are required; the schema is
    ``closed`` (no unknown columns) and ``typed`` (rows come from Python, not text).
    """
    given = [col for col in tbl.columns if col.name not in RESERVED]
    required = tuple(_column(c) for c in given if not c.nullable and c.default is None)
    optional = tuple(_column(c) for c in given if c.nullable or c.default is not None)
    return TableSchema(tbl.name, required, optional_columns=optional, closed=True, typed=True)


RESULT_SCHEMAS: dict[str, TableSchema] = {
    name: result_schema(tbl) for name, tbl in RESULT_TABLES.items()
}
"""Validation schema of every result table, by table name."""


def _as_frame(table_name: str, rows: Rows) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, Mapping | str | bytes):
        raise TypeError(
            f"{table_name}: pass a pandas DataFrame or a list of dicts (one per row), "
            f"not a {type(rows).__name__}"
        )
    records = list(rows)
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise TypeError(f"{table_name}: row {i} is a {type(rec).__name__}, not a dict")
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def normalise_rows(table_name: str, rows: Rows) -> pd.DataFrame:
    """Validate rows for a result table; return a frame with exactly its columns, ready to insert.

    Raises :class:`~growth.data.table_check.DataValidationError` naming the table and
    the reserved, unknown, missing or invalid column (and the 0-based row at fault)
    before anything is written.  Absent optional columns are filled with their
    default (or NULL); an int column holding NULLs comes back as pandas ``Int64``.
    """
    if table_name not in RESULT_SCHEMAS:
        raise ValueError(
            f"unknown result table {table_name!r}; expected one of {list(RESULT_SCHEMAS)}"
        )
    tbl = RESULT_TABLES[table_name]
    frame = _as_frame(table_name, rows)
    names = [c.name for c in tbl.columns if c.name not in RESERVED]
    if frame.empty and not len(frame.columns):
        return pd.DataFrame({name: pd.Series(dtype=object) for name in names})
    reserved = [str(c) for c in frame.columns if str(c) in RESERVED]
    if reserved:
        raise DataValidationError(
            "set by the store; drop it from the rows", file=table_name, column=reserved[0]
        )
    checked = validate_table(frame, RESULT_SCHEMAS[table_name])
    out: dict[str, pd.Series] = {}
    for name in names:
        col = tbl.columns[name]
        if name not in checked.columns:
            fill = col.default.arg if col.default is not None else None  # type: ignore[attr-defined]
            out[name] = pd.Series([fill] * len(checked), dtype=object)
        elif isinstance(col.type, Integer) and pd.api.types.is_float_dtype(checked[name].dtype):
            out[name] = checked[name].astype("Int64")  # NULLs: the driver gets ints and None
        else:
            out[name] = checked[name]
    return pd.DataFrame(out)


def _py_column(s: pd.Series) -> list[Any]:
    """Plain Python values for the DB driver: NaN/NA become ``None``, numpy scalars unwrap."""
    if pd.api.types.is_float_dtype(s.dtype):
        arr = s.to_numpy(dtype="float64")
        nan = np.isnan(arr)
        return np.where(nan, None, arr).tolist() if nan.any() else arr.tolist()
    if (pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)) and not (
        pd.api.types.is_extension_array_dtype(s.dtype)
    ):
        return s.to_numpy().tolist()
    obj = s.astype(object)
    return obj.where(s.notna(), None).tolist()


def _chunk_columns(
    frame: pd.DataFrame, run_id: int, chunk: int
) -> Iterator[tuple[list[str], list[Iterable[Any]]]]:
    """Column names (``run_id`` first) and per-column Python values, ``chunk`` rows at a time."""
    names = ["run_id", *(str(c) for c in frame.columns)]
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        columns: list[Iterable[Any]] = [itertools.repeat(run_id, len(part))]
        columns += [_py_column(part[c]) for c in part.columns]
        yield names, columns


def insert_frame(conn: Connection, tbl: Table, frame: pd.DataFrame, run_id: int) -> None:
    """Bulk-insert ``frame`` (already normalised) into ``tbl`` with ``run_id`` on every row.

    On SQLite the compiled ``INSERT`` goes straight to the driver's
    ``executemany`` with row tuples, skipping per-row parameter processing (the
    values are already plain Python); other backends get Core ``insert()``
    executemany with dicts, which their dialects batch (e.g. insertmanyvalues).
    """
    for names, columns in _chunk_columns(frame, run_id, INSERT_CHUNK_ROWS):
        if conn.dialect.name == "sqlite":
            compiled = insert(tbl).compile(dialect=conn.dialect, column_keys=names)
            order = [names.index(key) for key in compiled.positiontup or ()]
            rows = list(zip(*(columns[i] for i in order), strict=True))
            conn.exec_driver_sql(compiled.string, rows)
        else:
            records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
            conn.execute(insert(tbl), records)
