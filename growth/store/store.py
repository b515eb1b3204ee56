"""The run store: record each job run and its results atomically, read them back.

A run's life (see :meth:`Store.run`):

1. a ``runs`` row with status ``'running'`` is committed at once, so a crashed
   process still leaves a visible trace;
2. result rows added inside the ``with`` body are validated when added (a bad
   column fails *there*, naming the table and column) and buffered;
3. on normal exit every buffered row and the status update to ``'succeeded'``
   are written in ONE transaction; if the body (or the write) raises, nothing of
   the run's results persists and the run row is closed as ``'failed'`` with the
   error text.  A run with a ``campaign`` is idempotent: in that same transaction
   the earlier succeeded run of its (kind, campaign date, campaign) is marked
   ``'superseded'``, so the analyst views show the latest one only.

The schema is managed by Alembic (``growth/store/migrations``): opening a store
upgrades its database to the head revision, keeping every row.  A database made
before migrations existed (tables, no ``alembic_version``) is stamped at the
initial revision first.

The database is ``$GROWTH_DB_URL`` or ``sqlite:///data/growth.db`` (relative to
the working directory); any SQLAlchemy URL works.
"""

from __future__ import annotations

import dataclasses
import getpass
import importlib.metadata
import itertools
import json
import math
import os
import re
import subprocess
import traceback
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    Connection,
    CursorResult,
    Engine,
    Float,
    Integer,
    String,
    Table,
    column,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    literal_column,
    make_url,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from growth.paths import default_db_url
from growth.store.locks import RunLease, StageTiming
from growth.store.models import RESULT_TABLES, TABLE_NAMES, Base, Run, RunStage
from growth.store.views import VIEWS, create_views

ENV_VAR = "GROWTH_DB_URL"
ANALYST_ROLE_ENV = "GROWTH_ANALYST_ROLE"
INSERT_CHUNK_ROWS = 100_000
"""Rows per ``executemany`` call: bounds the Python objects alive during a write."""

_MAX_ERROR_CHARS = 20_000
_RUNS: Table = Run.__table__  # type: ignore[assignment]
_STAGES: Table = RunStage.__table__  # type: ignore[assignment]
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
INITIAL_REVISION = "0001"
PAUSE_ENV = "GROWTH_TEST_PAUSE_STAGE"
"""Test hook: a stage name (or ``commit``) at which a process writes
``$GROWTH_TEST_PAUSE_FILE`` and sleeps, so tests can kill it at a known point."""


class RunFailed(RuntimeError):
    """A run's results could not be written; the run is recorded as failed."""

    def __init__(self, run_id: int, message: str) -> None:
        super().__init__(f"run {run_id}: {message}")
        self.run_id = run_id


# --------------------------------------------------------------------------- helpers


def code_version() -> str:
    """Version of the code that is running: git short sha (``+'-dirty'``) or package version.

    Git is asked about the checkout that contains this package (not the working
    directory), so an installed copy never reports an unrelated repository.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if Path(top).resolve() == root:
            sha = _git(root, "rev-parse", "--short", "HEAD")
            dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
            return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return importlib.metadata.version("growth-platform")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return out.stdout.strip()


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
    if isinstance(value, np.datetime64 | np.timedelta64):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str | int | np.integer | bool | Enum):
                raise TypeError(
                    f"{path}: key {key!r} of type {type(key).__name__} is not a str/int"
                )
            name = str(key.value if isinstance(key, Enum) else key)
            out[name] = to_jsonable(item, f"{path}[{name!r}]")
        return out
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


def _dump_json(value: Mapping[str, Any] | None, what: str) -> str:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping (dict), got {type(value).__name__}")
    return json.dumps(to_jsonable(value, what), allow_nan=False)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    """Error text for ``runs.error``: the one-line message, then the traceback."""
    tb = "".join(traceback.format_exception(exc)).strip()
    message = f"{type(exc).__name__}: {exc}\n\n{tb}"
    if len(message) <= _MAX_ERROR_CHARS:
        return message
    return message[: _MAX_ERROR_CHARS - 12] + "\n[truncated]"


def _default_operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _as_date(value: date | str | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"campaign_date {value!r} is not an ISO date (YYYY-MM-DD)") from exc
    raise TypeError(f"campaign_date must be a date, got {type(value).__name__}")


def _check_label(value: Any, name: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise ValueError(f"{name} {value!r} is longer than {max_len} characters")
    return value


# ------------------------------------------------------------------ row validation

ColumnKind = Literal["int", "float", "str", "bool"]


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """What a result column accepts, read from the SQLAlchemy column and its ``info``."""

    name: str
    kind: ColumnKind
    nullable: bool
    default: Any = None
    has_default: bool = False
    length: int | None = None
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None

    @property
    def required(self) -> bool:
        return not self.nullable and not self.has_default


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


def column_specs(tbl: Table) -> dict[str, ColumnSpec]:
    """Specs of the columns a caller provides (all but ``id`` and ``run_id``)."""
    specs = {}
    for col in tbl.columns:
        if col.name in ("id", "run_id"):
            continue
        default = col.default.arg if col.default is not None else None  # type: ignore[attr-defined]
        specs[col.name] = ColumnSpec(
            name=col.name,
            kind=_kind_of(col.type),
            nullable=bool(col.nullable),
            default=default,
            has_default=col.default is not None,
            length=getattr(col.type, "length", None),
            choices=col.info.get("choices"),
            min=col.info.get("min"),
            max=col.info.get("max"),
        )
    return specs


RESULT_SPECS: dict[str, dict[str, ColumnSpec]] = {
    name: column_specs(tbl) for name, tbl in RESULT_TABLES.items()
}
"""Accepted columns of every result table, by table name."""


def _show(value: Any) -> str:
    """repr of a cell for error messages, numpy scalars shown as plain Python."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first(mask: np.ndarray | pd.Series) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _coerce_column(table_name: str, spec: ColumnSpec, s: pd.Series) -> pd.Series:
    """Validate one column and return it in a canonical dtype; errors name table, column, row."""
    where = f"{table_name}.{spec.name}"
    missing = s.isna().to_numpy()
    if missing.any() and not spec.nullable:
        pos = _first(missing)
        raise ValueError(
            f"{where}: {int(missing.sum())} missing value(s), first at row {pos}; "
            "the column does not accept NULL/NaN"
        )
    present = ~missing
    if spec.kind in ("int", "float"):
        if pd.api.types.is_bool_dtype(s):
            raise ValueError(f"{where}: booleans given for a numeric column")
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna().to_numpy() & present
        if bad.any():
            pos = _first(bad)
            raise ValueError(f"{where}: row {pos} value {_show(s.iloc[pos])} is not a number")
        if pd.api.types.is_integer_dtype(num) and not missing.any():
            out = num.astype("int64") if spec.kind == "int" else num.astype("float64")
            values = out.to_numpy(dtype="float64")
        else:
            values = num.to_numpy(dtype="float64", na_value=np.nan)
            finite = np.isfinite(values)
            if (present & ~finite).any():
                pos = _first(present & ~finite)
                raise ValueError(f"{where}: row {pos} value {_show(s.iloc[pos])} is not finite")
            if spec.kind == "int":
                fractional = present & (values != np.round(values))
                if fractional.any():
                    pos = _first(fractional)
                    raise ValueError(
                        f"{where}: row {pos} value {_show(s.iloc[pos])} is not an integer"
                    )
                out = (
                    pd.Series(values, dtype="float64").astype("Int64")
                    if missing.any()
                    else pd.Series(values.astype("int64"))
                )
            else:
                out = pd.Series(values, dtype="float64")
        for bound, outside, label in (
            (spec.min, np.less, "below the minimum"),
            (spec.max, np.greater, "above the maximum"),
        ):
            if bound is None:
                continue
            with np.errstate(invalid="ignore"):
                violated = present & outside(values, bound)
            if violated.any():
                pos = _first(violated)
                raise ValueError(
                    f"{where}: row {pos} value {_show(s.iloc[pos])} is {label} {bound}"
                )
        return out.reset_index(drop=True)
    if spec.kind == "bool":
        if pd.api.types.is_bool_dtype(s) and not missing.any():
            return s.astype(bool).reset_index(drop=True)
        ok = s.map(lambda v: v is None or v in (True, False, 0, 1)).to_numpy(dtype=bool) | missing
        if not ok.all():
            pos = _first(~ok)
            raise ValueError(f"{where}: row {pos} value {_show(s.iloc[pos])} is not a boolean")
        return s.map(lambda v: None if v is None or v is pd.NA else bool(v)).reset_index(drop=True)
    # str
    if pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        s = s.where(missing, s.astype(str))
    out = s.astype(object).where(present, None).reset_index(drop=True)
    strings = out[present]
    if spec.length is not None and len(strings):
        too_long = (strings.str.len() > spec.length).to_numpy()
        if too_long.any():
            pos = int(strings.index[_first(too_long)])
            raise ValueError(
                f"{where}: row {pos} value {_show(out.iloc[pos])} is longer than {spec.length} characters"
            )
    if spec.choices is not None and len(strings):
        unknown = ~strings.isin(spec.choices).to_numpy()
        if unknown.any():
            pos = int(strings.index[_first(unknown)])
            raise ValueError(
                f"{where}: row {pos} value {_show(out.iloc[pos])} is not one of {list(spec.choices)}"
            )
    return out


def normalise_rows(
    table_name: str, rows: pd.DataFrame | Iterable[Mapping[str, Any]]
) -> pd.DataFrame:
    """Validate rows for a result table; return a frame with exactly its columns, coerced.

    Raises ``ValueError`` naming the table and the unknown, missing or invalid
    column (and the 0-based row at fault) before anything is written.
    """
    if table_name not in RESULT_SPECS:
        raise ValueError(
            f"unknown result table {table_name!r}; expected one of {list(RESULT_SPECS)}"
        )
    specs = RESULT_SPECS[table_name]
    if isinstance(rows, pd.DataFrame):
        frame = rows
    elif isinstance(rows, Mapping | str | bytes):
        raise TypeError(
            f"{table_name}: pass a pandas DataFrame or a list of dicts (one per row), "
            f"not a {type(rows).__name__}"
        )
    else:
        records = list(rows)
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise TypeError(f"{table_name}: row {i} is a {type(rec).__name__}, not a dict")
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{table_name}: duplicate column(s) {dupes}")
    reserved = [n for n in names if n in ("id", "run_id")]
    if reserved:
        raise ValueError(
            f"{table_name}: column(s) {reserved} are set by the store; drop them from the rows"
        )
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(
            f"{table_name}: unknown column(s) {unknown}; the table's columns are {list(specs)}"
        )
    if frame.empty and not len(frame.columns):
        return pd.DataFrame({name: pd.Series(dtype=object) for name in specs})
    missing = [s.name for s in specs.values() if s.required and s.name not in names]
    if missing:
        raise ValueError(f"{table_name}: missing required column(s) {missing}; got columns {names}")
    frame = frame.set_axis(names, axis=1)
    out: dict[str, pd.Series] = {}
    for name, spec in specs.items():
        if name in frame.columns:
            out[name] = _coerce_column(table_name, spec, frame[name])
        else:
            fill = spec.default if spec.has_default else None
            out[name] = pd.Series([fill] * len(frame), dtype=object)
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


# ------------------------------------------------------------------------ run writer


class RunWriter:
    """Collects one run's result rows and summary; :meth:`Store.run` writes them at exit.

    Rows are validated when added (see :func:`normalise_rows`), so a bad column
    fails at the line that added it, before anything is written.
    """

    def __init__(
        self, run_id: int, kind: str, campaign_date: date | None, campaign: str | None = None
    ) -> None:
        self.id = run_id
        self.kind = kind
        self.campaign_date = campaign_date
        self.campaign = campaign
        self.superseded: list[int] = []
        self._frames: dict[str, list[pd.DataFrame]] = {name: [] for name in RESULT_TABLES}
        self._summary: dict[str, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"RunWriter(id={self.id}, kind={self.kind!r}, rows={self.row_counts()})"

    @property
    def summary(self) -> dict[str, Any]:
        """JSON summary stored with the run (dict; numpy scalars are converted)."""
        return self._summary

    @summary.setter
    def summary(self, value: Mapping[str, Any]) -> None:
        if not isinstance(value, Mapping):
            raise TypeError(f"run summary must be a mapping (dict), got {type(value).__name__}")
        self._summary = to_jsonable(value, "summary")

    def row_counts(self) -> dict[str, int]:
        """Rows buffered so far per result table."""
        return {name: sum(len(f) for f in frames) for name, frames in self._frames.items()}

    def add(self, table_name: str, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Validate and buffer rows for ``table_name``; returns the number of rows added."""
        if self._closed:
            raise RuntimeError(f"run {self.id} is closed; add rows inside its `with` block")
        frame = normalise_rows(table_name, rows)
        if len(frame):
            self._frames[table_name].append(frame)
        return len(frame)

    def add_model_metrics(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Rows of ``model_metrics``: model, dataset, segment, metric, value[, seed]."""
        return self.add("model_metrics", rows)

    def add_coupon_allocations(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Rows of ``coupon_allocations``: user_id, segment, option_id, coupon_type,
        face_value, expected_value, expected_cost[, expected_gmv]."""
        return self.add("coupon_allocations", rows)

    def add_push_schedule(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Rows of ``push_schedules``: user_id, message_id, industry, hour, expected_open."""
        return self.add("push_schedules", rows)

    def add_channel_plan(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Rows of ``channel_plans``: plan, channel_id, channel_name, spend, installs,
        logins, retained[, installs_lo, installs_hi]."""
        return self.add("channel_plans", rows)

    def add_pareto_points(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Rows of ``pareto_points``: front, point_id[, spend, installs, logins, retained,
        conversions, gmv, chosen]."""
        return self.add("pareto_points", rows)

    def _tables(self) -> Iterator[tuple[Table, pd.DataFrame]]:
        for name, frames in self._frames.items():
            if frames:
                yield RESULT_TABLES[name], pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- store


def resolve_url(url: str | URL | None = None) -> str:
    """``url``, else ``$GROWTH_DB_URL``, else the embedded SQLite database (:func:`growth.paths.default_db_url`)."""
    if url is None:
        url = os.environ.get(ENV_VAR) or default_db_url()
    return url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer), fewer fsyncs, enforced foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Engine for ``url``; SQLite gets its folder created, a busy timeout and pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
    if in_memory:  # one shared connection, or every checkout would see an empty database
        kwargs = {"connect_args": {"check_same_thread": False}, "poolclass": StaticPool}
    engine = create_engine(parsed, echo=echo, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_READ_ONLY_SQL = re.compile(
    r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*(select|with|values)\b", re.I | re.S
)
_TEMPORAL = {"campaign_date": "date", "started_at": "utc", "finished_at": "utc"}


def _frame(result: CursorResult[Any]) -> pd.DataFrame:
    """A frame of an untyped (text / ``*``) select.

    Rows come from the DBAPI cursor as plain tuples: such a select has no result
    processors to apply, and pandas builds a frame from tuples ~10x faster than
    from SQLAlchemy ``Row`` objects (1M rows: ~1.5 s instead of ~15 s).
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


def _typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Give a store table's or view's columns their types.

    SQLite returns dates and times as text and booleans as 0/1, and a column
    whose values are all NULL comes back as ``None`` objects; this fixes all three
    (dates -> datetime64, timestamps -> UTC datetime64, floats -> float64 with
    NaN, nullable ints -> ``Int64``).
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


def pause_for_test(stage: str) -> None:
    """Test hook: if ``$GROWTH_TEST_PAUSE_STAGE`` names ``stage``, announce and sleep.

    The process writes ``$GROWTH_TEST_PAUSE_FILE`` (if set) and sleeps up to
    ``$GROWTH_TEST_PAUSE_S`` seconds (default 60), so a test can SIGKILL it at a
    known point.  Does nothing when the variable is unset (production).
    """
    if os.environ.get(PAUSE_ENV) != stage:
        return
    marker = os.environ.get("GROWTH_TEST_PAUSE_FILE")
    if marker:
        Path(marker).write_text(f"{os.getpid()} {stage}\n")
    import time as _time

    _time.sleep(float(os.environ.get("GROWTH_TEST_PAUSE_S", "60")))


def alembic_config(url: str | None = None, connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config for the store's migrations, built in code (no ini file needed).

    ``connection`` (if given) is migrated as is; else ``url`` (else
    ``$GROWTH_DB_URL``) is opened by the migration environment.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolation: a literal % in a URL (password) is written %%
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(bind: Engine | Connection) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_revision(conn)
    return MigrationContext.configure(bind).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision`` (default head) and return where it is now.

    A database created before migrations existed (a ``runs`` table, no
    ``alembic_version``) is first stamped at the initial revision, so it is
    upgraded in place without losing rows.  On PostgreSQL a transaction-scoped
    advisory lock serialises concurrent migrators; on SQLite a migrator that loses
    the race finds the schema already at the target and carries on.
    """
    target = head_revision() if revision == "head" else revision
    with engine.connect() as conn:
        if current_revision(conn) == target:
            return target
        if conn.in_transaction():
            conn.rollback()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            tables = set(inspect(conn).get_table_names())
            cfg = alembic_config(connection=conn)
            if "runs" in tables and "alembic_version" not in tables:
                alembic_command.stamp(cfg, INITIAL_REVISION)
            alembic_command.upgrade(cfg, revision)
            if conn.in_transaction():
                conn.commit()
    except Exception:
        if current_revision(engine) != target:
            raise
    return current_revision(engine)


_MIGRATION_LOCK = 0x67726F77  # 'grow': advisory lock key of the store's migrations
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Store:
    """The platform's SQL store: runs, their results, and read-only analyst views.

    ``Store(url=None)`` connects to ``url``, ``$GROWTH_DB_URL`` or
    ``sqlite:///data/growth.db`` and migrates the database to the newest schema
    (Alembic; idempotent, rows are kept).  ``analyst_role`` (PostgreSQL only,
    default ``$GROWTH_ANALYST_ROLE``) is granted read access to the views and
    nothing else (see :meth:`grant_analyst`).

    Example::

        store = Store("sqlite:///data/growth.db")
        with store.run(kind="coupons", config={"budget": 1e4}, operator="ana") as run:
            run.add_coupon_allocations(plan_frame)
            run.summary = {"objective": obj, "gap": gap}
        store.runs(limit=5)
    """

    READABLE: tuple[str, ...] = (*TABLE_NAMES, *VIEWS)
    """Names :meth:`read` accepts: every table and view of the store."""

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        echo: bool = False,
        analyst_role: str | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.engine = make_engine(self.url, echo=echo)
        self.create_schema()
        role = analyst_role or os.environ.get(ANALYST_ROLE_ENV)
        if role and self.engine.dialect.name == "postgresql":
            self.grant_analyst(role)

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

    def create_schema(self, *, replace_views: bool = False) -> None:
        """Migrate to the head revision (tables and views); ``replace_views`` re-creates the views."""
        migrate(self.engine)
        create_views(self.engine, replace=replace_views)

    @property
    def revision(self) -> str | None:
        """The schema revision the database is at."""
        return current_revision(self.engine)

    def grant_analyst(self, role: str) -> None:
        """PostgreSQL: let ``role`` read the analyst views and nothing else.

        Revokes every privilege ``role`` holds on the store's tables and views,
        then grants ``USAGE`` on the schema and ``SELECT`` on each view.  A view
        runs with its owner's rights, so the role reads results through the views
        but cannot read a base table or write anything.  Re-run after a migration
        that re-creates views (the store does so when ``analyst_role`` is set).
        Role and view names are identifiers, which SQL cannot bind as parameters:
        the role is checked against ``[a-z_][a-z0-9_]*`` and quoted.
        """
        if self.engine.dialect.name != "postgresql":
            raise ValueError(
                f"analyst roles need PostgreSQL; this store is {self.engine.dialect.name}"
            )
        if not isinstance(role, str) or not _IDENTIFIER.match(role):
            raise ValueError(f"analyst role {role!r} must match [a-z_][a-z0-9_]* (max 63 chars)")
        quote = self.engine.dialect.identifier_preparer.quote_identifier
        with self.engine.begin() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
            ).first()
            if exists is None:
                raise ValueError(f"analyst role {role!r} does not exist on the server")
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            names = [*TABLE_NAMES, "alembic_version", *VIEWS]
            objects = ", ".join(quote(n) for n in names)
            conn.exec_driver_sql(f"REVOKE ALL ON {objects} FROM {quote(role)}")
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {quote(role)}")
            views = ", ".join(quote(n) for n in VIEWS)
            conn.exec_driver_sql(f"GRANT SELECT ON {views} TO {quote(role)}")

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------

    @contextmanager
    def run(
        self,
        kind: str,
        config: Mapping[str, Any] | None = None,
        operator: str | None = None,
        campaign_date: date | str | None = None,
        *,
        campaign: str | None = None,
        version: str | None = None,
    ) -> Iterator[RunWriter]:
        """Record one run; results added in the body are written atomically at exit.

        ``kind`` labels the job ('nightly', 'coupons', 'push', 'install', ...);
        ``config`` is stored as JSON; ``operator`` defaults to the OS user and
        ``version`` to :func:`code_version`.  If the body raises, no result row
        persists, the run is recorded ``'failed'`` with the error, and the
        exception propagates.  If writing the results fails, the run is recorded
        ``'failed'`` and :class:`RunFailed` is raised.

        With a ``campaign`` (and a ``campaign_date``) the run is idempotent: when it
        succeeds, the earlier succeeded run of the same (kind, campaign_date,
        campaign) is marked ``'superseded'`` in the same transaction (its id lands
        in ``writer.superseded``).  Concurrent runs of one key are the caller's to
        prevent (:meth:`lock`); the database refuses two succeeded runs per key.
        """
        if campaign is not None:
            campaign = _check_label(campaign, "campaign", 64)
        kind = _check_label(kind, "kind", 32)
        operator = _check_label(operator or _default_operator(), "operator", 128)
        version = _check_label(version or code_version(), "version", 64)
        day = _as_date(campaign_date)
        config_json = _dump_json(config, "config")
        started = _utcnow()
        with self.engine.begin() as conn:
            res = conn.execute(
                insert(_RUNS).values(
                    kind=kind,
                    campaign_date=day,
                    status="running",
                    started_at=started,
                    config=config_json,
                    code_version=version,
                    operator=operator,
                    campaign=campaign,
                )
            )
            run_id = int(res.inserted_primary_key[0])
        writer = RunWriter(run_id, kind, day, campaign)
        try:
            yield writer
        except BaseException as exc:
            writer._closed = True
            self._record_failure(writer, started, exc)
            raise
        writer._closed = True
        try:
            self._write_results(writer, started)
        except BaseException as exc:  # incl. KeyboardInterrupt: never leave it 'running'
            self._record_failure(writer, started, exc)
            if isinstance(exc, Exception):
                raise RunFailed(run_id, f"results could not be written: {exc}") from exc
            raise

    def _write_results(self, writer: RunWriter, started: datetime) -> None:
        """ONE transaction: every buffered row, then the run marked 'succeeded'."""
        summary_json = _dump_json(writer.summary, "summary")
        with self.engine.begin() as conn:
            for tbl, frame in writer._tables():
                insert_frame(conn, tbl, frame, writer.id)
            if writer.campaign is not None and writer.campaign_date is not None:
                writer.superseded = self._supersede(conn, writer)
            pause_for_test("commit")
            finished = _utcnow()
            res = conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == writer.id, _RUNS.c.status == "running")
                .values(
                    status="succeeded",
                    finished_at=finished,
                    duration_s=(finished - started).total_seconds(),
                    summary=summary_json,
                )
            )
            if res.rowcount != 1:
                raise RunFailed(writer.id, "run row is missing or no longer 'running'")

    @staticmethod
    def _supersede(conn: Connection, writer: RunWriter) -> list[int]:
        """Mark the earlier succeeded run(s) of the writer's key 'superseded'; their ids."""
        key = (
            (_RUNS.c.kind == writer.kind)
            & (_RUNS.c.campaign_date == writer.campaign_date)
            & (_RUNS.c.campaign == writer.campaign)
            & (_RUNS.c.status == "succeeded")
            & (_RUNS.c.id != writer.id)
        )
        old = [int(i) for i in conn.execute(select(_RUNS.c.id).where(key)).scalars()]
        if old:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id.in_(old))
                .values(status="superseded", superseded_by=writer.id)
            )
        return old

    def fail_stale_runs(
        self, kind: str, campaign_date: date | str, campaign: str, reason: str
    ) -> list[int]:
        """Close every 'running' run of (kind, campaign_date, campaign) as 'failed'.

        Call it only while holding that key's :meth:`lock`: the lock proves no
        live process is writing such a run, so any left 'running' was killed.
        Returns the ids it closed.
        """
        day = _as_date(campaign_date)
        key = (
            (_RUNS.c.kind == kind)
            & (_RUNS.c.campaign_date == day)
            & (_RUNS.c.campaign == campaign)
            & (_RUNS.c.status == "running")
        )
        now = _utcnow()
        with self.engine.begin() as conn:
            stale = [int(i) for i in conn.execute(select(_RUNS.c.id).where(key)).scalars()]
            if stale:
                conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id.in_(stale), _RUNS.c.status == "running")
                    .values(status="failed", finished_at=now, error=reason[:_MAX_ERROR_CHARS])
                )
        return stale

    def record_stages(self, run_id: int, stages: Iterable[StageTiming]) -> int:
        """Store a run's stage timings in ``run_stages`` (replacing any); rows written."""
        rows = [
            {
                "run_id": int(run_id),
                "seq": i,
                "stage": _check_label(st.stage, "stage", 32),
                "started_at": st.started_at,
                "duration_s": float(st.duration_s),
                "status": st.status,
            }
            for i, st in enumerate(stages)
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(_STAGES).where(_STAGES.c.run_id == int(run_id)))
            if rows:
                conn.execute(insert(_STAGES), rows)
        return len(rows)

    def lock(
        self,
        kind: str,
        campaign_date: date | str,
        campaign: str,
        *,
        lease_s: float = 120.0,
        heartbeat_s: float | None = None,
    ) -> RunLease:
        """An exclusive lease on (kind, campaign_date, campaign); use it as a context manager.

        Raises :class:`RunInProgress` (naming the holder) when a live process
        holds it.  See :class:`growth.store.locks.RunLease`.
        """
        day = _as_date(campaign_date)
        if day is None:
            raise ValueError("a run lock needs a campaign_date")
        return RunLease(
            self.engine,
            _check_label(kind, "kind", 32),
            day,
            _check_label(campaign, "campaign", 64),
            lease_s=lease_s,
            heartbeat_s=heartbeat_s,
        )

    def _record_failure(self, writer: RunWriter, started: datetime, exc: BaseException) -> None:
        """Close the run as 'failed' in its own transaction; never masks ``exc``."""
        try:
            summary_json: str | None = _dump_json(writer.summary, "summary")
        except (TypeError, ValueError):
            summary_json = None
        finished = _utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id == writer.id)
                    .values(
                        status="failed",
                        finished_at=finished,
                        duration_s=(finished - started).total_seconds(),
                        error=_describe(exc),
                        summary=summary_json,
                    )
                )
        except Exception as db_exc:  # the original error matters more; keep both visible
            exc.add_note(f"also: could not record run {writer.id} as failed: {db_exc!r}")

    # -- reading ---------------------------------------------------------------------

    @contextmanager
    def _read_only(self) -> Iterator[Connection]:
        """A connection that cannot change the database (SQLite query_only / PG READ ONLY)."""
        backend = self.engine.dialect.name
        with self.engine.connect() as conn:
            if backend == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            elif backend == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                yield conn
            finally:
                conn.rollback()
                if backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
                    conn.commit()

    def runs(self, limit: int = 50) -> pd.DataFrame:
        """Run history from ``v_runs``, newest first (at most ``limit`` rows)."""
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        stmt = (
            select(literal_column("*"))
            .select_from(table("v_runs"))
            .order_by(column("run_id").desc())
            .limit(int(limit))
        )
        with self._read_only() as conn:
            return _typed(_frame(conn.execute(stmt)), "v_runs")

    def read(self, name: str, run_id: int | None = None) -> pd.DataFrame:
        """All rows of a store table or view (only names in :attr:`READABLE`), optionally one run's."""
        if name not in self.READABLE:
            raise ValueError(
                f"cannot read {name!r}: not a table or view of the store; "
                f"readable names are {list(self.READABLE)}"
            )
        key = "id" if name == "runs" else "run_id"
        if name in VIEWS:
            order = VIEWS[name].order_by
        else:
            order = tuple(c.name for c in Base.metadata.tables[name].primary_key.columns)
        stmt = select(literal_column("*")).select_from(table(name))
        if run_id is not None:
            if isinstance(run_id, bool) or not isinstance(run_id, int | np.integer):
                raise ValueError(f"run_id must be an integer, got {run_id!r}")
            if name == "run_locks":
                raise ValueError("run_locks has no run_id filter; read it whole")
            stmt = stmt.where(column(key) == int(run_id))
        stmt = stmt.order_by(*(column(c) for c in order))
        with self._read_only() as conn:
            return _typed(_frame(conn.execute(stmt)), name)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only ``SELECT``/``WITH`` statement with bound ``:name`` parameters.

        Values must come through ``params`` (never formatted into ``sql``).  The
        connection is read-only, so a statement that writes fails even if it
        slips past the ``SELECT``/``WITH`` check.
        """
        if not isinstance(sql, str) or not _READ_ONLY_SQL.match(sql):
            raise ValueError(
                "query() runs read-only statements starting with SELECT or WITH; got "
                f"{str(sql)[:60]!r}"
            )
        with self._read_only() as conn:
            return _frame(conn.execute(text(sql), dict(params or {})))

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict, with ``config`` and ``summary`` parsed from JSON."""
        with self._read_only() as conn:
            row = conn.execute(select(_RUNS).where(_RUNS.c.id == int(run_id))).mappings().first()
        if row is None:
            raise LookupError(f"no run with id {run_id}")
        out = dict(row)
        for key in ("config", "summary"):
            out[key] = json.loads(out[key]) if out[key] is not None else None
        return out
