"""Reading the store: read-only connections and typed frames of its tables and views.

SQLite returns dates and times as text and booleans as 0/1, and a column whose
values are all NULL comes back as ``None`` objects; :func:`typed` gives each store
table's or view's columns their types whatever the backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Connection, CursorResult, Engine, Float, Integer, func, select
from sqlalchemy.exc import DBAPIError

from growth.store.engine import sqlite_in_memory
from growth.store.models import Base, ModelMetricRow, RunRow
from growth.store.views import VIEWS

READ_ONLY_SQL = re.compile(
    r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*(select|with|values)\b", re.I | re.S
)
"""What :meth:`growth.store.Store.query` accepts: a statement starting SELECT, WITH or VALUES."""

ONE_STATEMENT_DRIVERS = {("sqlite", "pysqlite"), ("postgresql", "psycopg")}
"""Drivers that run exactly one statement per call on a read-only engine: Python's
sqlite3 refuses a second statement; psycopg prepares every statement of a read-only
engine (:func:`growth.store.engine.make_engine`), and PostgreSQL refuses to prepare
more than one.  Other drivers may send several statements through the simple query
protocol, where ``COMMIT`` would end the read-only transaction."""

_SEVERAL = ("one statement at a time", "multiple commands into a prepared statement")
"""How the drivers above refuse a second statement."""

_TEMPORAL = {"campaign_date": "date", "started_at": "utc", "finished_at": "utc"}


def check_query(sql: object, engine: Engine) -> str:
    """``sql`` if :meth:`growth.store.Store.query` may run it on ``engine``, else ValueError."""
    if not isinstance(sql, str) or not READ_ONLY_SQL.match(sql):
        raise ValueError(
            "query() runs one read-only statement starting with SELECT, WITH or VALUES; got "
            f"{str(sql)[:60]!r}"
        )
    driver = (engine.dialect.name, engine.dialect.driver)
    if driver not in ONE_STATEMENT_DRIVERS:
        raise ValueError(
            f"query() needs a driver that runs one statement per call ({sorted(ONE_STATEMENT_DRIVERS)}), "
            f"not {driver[0]}+{driver[1]}: use postgresql+psycopg:// URLs"
        )
    return sql


def several_statements(exc: DBAPIError) -> bool:
    """Whether the driver refused ``exc``'s statement for holding more than one."""
    return any(marker in str(exc.orig) for marker in _SEVERAL)


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection that cannot change the database (SQLite query_only / PG READ ONLY).

    ``engine`` is a read-only engine (its connections are read-only for their life)
    or an in-memory SQLite database's one shared connection, made read-only here
    for the duration and writable again after.
    """
    backend = engine.dialect.name
    shared = backend == "sqlite" and sqlite_in_memory(engine.url)
    with engine.connect() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        elif backend == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield conn
        finally:
            conn.rollback()
            if shared:
                conn.exec_driver_sql("PRAGMA query_only = OFF")
                conn.commit()


def frame(result: CursorResult[Any]) -> pd.DataFrame:
    """A frame of an untyped (text / ``*``) select.

    Rows come from the DBAPI cursor as plain tuples: such a select has no result
    processors to apply, and pandas builds a frame from tuples much faster than
    from SQLAlchemy ``Row`` objects.
    """
    keys = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame.from_records(rows, columns=keys)


def _column_types(name: str) -> tuple[set[str], set[str], set[str]]:
    """Float, nullable-int and bool columns of a store table or view, by name."""
    if name in VIEWS:
        return set(VIEWS[name].floats), set(), {"chosen"} if name == "v_pareto_points" else set()
    columns = Base.metadata.tables[name].columns
    floats = {c.name for c in columns if isinstance(c.type, Float)}
    ints = {c.name for c in columns if c.nullable and isinstance(c.type, Integer)}
    bools = {c.name for c in columns if isinstance(c.type, Boolean)}
    return floats, ints, bools


def typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Give a store table's or view's columns their types (in place; returns ``frame``).

    Dates -> datetime64, timestamps -> UTC datetime64, floats -> float64 with NaN,
    nullable ints -> ``Int64``, bools -> bool (when no value is NULL).
    """
    floats, ints, bools = _column_types(name)
    for col in frame.columns:
        if col in _TEMPORAL:
            frame[col] = pd.to_datetime(frame[col], utc=_TEMPORAL[col] == "utc", format="ISO8601")
        elif col in floats:
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype("float64")
        elif col in ints:
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype("Int64")
        elif col in bools and frame[col].notna().all():
            frame[col] = frame[col].astype(bool)
    return frame


BENCHMARK_KIND = "benchmark"
"""The ``kind`` of the runs ``benchmarks/bench_predictors.py --store`` writes."""


def newest_benchmark_metrics(engine: Engine) -> tuple[int | None, pd.DataFrame]:
    """The newest succeeded benchmark run that measured at least two models: its id and
    its ``model_metrics`` rows (typed); ``(None, empty frame)`` when there is none."""
    metrics = ModelMetricRow.__table__
    runs = RunRow.__table__
    newest = (
        select(runs.c.id)
        .join(metrics, metrics.c.run_id == runs.c.id)
        .where(runs.c.kind == BENCHMARK_KIND, runs.c.status == "succeeded")
        .group_by(runs.c.id)
        .having(func.count(func.distinct(metrics.c.model)) >= 2)
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    with read_only(engine) as conn:
        run_id = conn.execute(newest).scalar()
        rows = conn.execute(select(metrics).where(metrics.c.run_id == run_id))
        return run_id, typed(
            pd.DataFrame(rows.mappings().all(), columns=list(rows.keys())), "model_metrics"
        )
