"""The ``runs`` row's life in SQL, and what it records about who ran which code.

A run row is inserted ``'running'`` and committed at once (a crashed process still
leaves a trace); it is closed ``'succeeded'`` in the same transaction that writes its
results (:func:`commit_results`), or ``'failed'`` with the error text
(:func:`record_failure`).  A succeeded run with a campaign supersedes the earlier
succeeded run of its (kind, campaign date, campaign) in that transaction.

>>> check_label("nightly", "kind", 32)
'nightly'
>>> as_date("2026-11-30")
datetime.date(2026, 11, 30)
"""

from __future__ import annotations

import getpass
import importlib.metadata
import subprocess
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import OperationalError

from growth.store.engine import begin_within, redact
from growth.store.jsonable import dump_json
from growth.store.locks import RunLease
from growth.store.models import RunRow, RunStageRow
from growth.store.rows import insert_frame
from growth.store.writer import RunFailed, RunWriter

MAX_ERROR_CHARS = 20_000
FAILURE_RETRY_S = 30.0
"""How long a run's failure is retried on a locked database before giving up."""
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional overrides: they make a label read differently from what it holds."""
_RUNS: Table = RunRow.__table__  # type: ignore[assignment]
_STAGES: Table = RunStageRow.__table__  # type: ignore[assignment]


# --------------------------------------------------------------------- what a run records


@dataclass(frozen=True)
class StageTiming:
    """Wall time of one stage of a run (``status``: 'succeeded' or 'failed')."""

    stage: str
    started_at: datetime
    duration_s: float
    status: str = "succeeded"

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ValueError(f"stage {self.stage!r}: started_at must be timezone-aware")
        if not self.duration_s >= 0:
            raise ValueError(f"stage {self.stage!r}: duration_s {self.duration_s!r} is negative")
        if self.status not in ("succeeded", "failed"):
            raise ValueError(
                f"stage {self.stage!r}: status {self.status!r} is not succeeded/failed"
            )


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


def default_operator() -> str:
    """The OS user running the process (``'unknown'`` when it cannot be told)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def as_date(value: date | str | None) -> date | None:
    """A campaign date from a date, a datetime or ISO text (``None`` stays ``None``)."""
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


def check_label(value: Any, name: str, max_len: int) -> str:
    """A non-empty free-text label (operator, code version, ...) that fits its column and
    holds no control or format character (it is shown on terminals and in the app).

    Names that become parts of paths (campaign, kind) follow the stricter
    :func:`growth.paths.check_name`.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise ValueError(f"{name} {value!r} is longer than {max_len} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI for ch in value):
        raise ValueError(f"{name} {value!r} holds a control character")
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    """Error text for ``runs.error``: the one-line message, then the traceback (passwords
    hidden, :func:`growth.store.engine.redact`)."""
    tb = "".join(traceback.format_exception(exc)).strip()
    message = redact(f"{type(exc).__name__}: {exc}\n\n{tb}")
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return message[: MAX_ERROR_CHARS - 12] + "\n[truncated]"


# ------------------------------------------------------------------------ the run row


def open_run(engine: Engine, started: datetime, **values: Any) -> int:
    """Insert a ``'running'`` run row (committed at once) and return its id."""
    with engine.begin() as conn:
        res = conn.execute(insert(_RUNS).values(status="running", started_at=started, **values))
        return int(res.inserted_primary_key[0])


def commit_results(
    engine: Engine,
    writer: RunWriter,
    started: datetime,
    before_commit: Callable[[], None] | None = None,
    lease: RunLease | None = None,
) -> None:
    """ONE transaction: every buffered row, the superseding, then the run marked 'succeeded'.

    ``before_commit`` runs inside the transaction, after the rows are written and
    before the status changes (tests use it to kill a process at that point).
    ``lease``: the transaction commits only while the lease is still ours
    (:meth:`growth.store.locks.RunLease.verify`).
    """
    summary_json = dump_json(writer.summary, "summary")
    with engine.begin() as conn:
        for tbl, frame in writer.tables():
            insert_frame(conn, tbl, frame, writer.id)
        if writer.campaign is not None and writer.campaign_date is not None:
            writer.superseded = supersede(conn, writer)
        if before_commit is not None:
            before_commit()
        if lease is not None:
            lease.verify(conn)
        finished = utcnow()
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


def supersede(conn: Connection, writer: RunWriter) -> list[int]:
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


def record_failure(
    engine: Engine, writer: RunWriter, started: datetime, exc: BaseException
) -> None:
    """Close the run as 'failed' in its own transaction; never masks ``exc``.

    A locked database (the reason the results could not be written, often) is
    retried for up to :data:`FAILURE_RETRY_S` seconds, so the run is recorded failed
    as soon as the lock goes rather than left 'running' until the next run.
    """
    try:
        summary_json: str | None = dump_json(writer.summary, "summary")
    except (TypeError, ValueError):
        summary_json = None
    finished = utcnow()
    values = {
        "status": "failed",
        "finished_at": finished,
        "duration_s": (finished - started).total_seconds(),
        "error": describe(exc),
        "summary": summary_json,
    }
    deadline = time.monotonic() + FAILURE_RETRY_S
    pause = 0.05
    while True:
        try:  # no attempt waits past the deadline (SQLite's busy timeout alone would)
            with begin_within(engine, max(deadline - time.monotonic(), 0.0)) as conn:
                conn.execute(update(_RUNS).where(_RUNS.c.id == writer.id).values(**values))
            return
        except OperationalError as db_exc:
            if time.monotonic() + pause > deadline:
                _also(exc, writer, db_exc)
                return
            time.sleep(pause)
            pause = min(2 * pause, 1.0)
        except Exception as db_exc:  # the original error matters more; keep both visible
            _also(exc, writer, db_exc)
            return


def _also(exc: BaseException, writer: RunWriter, db_exc: Exception) -> None:
    exc.add_note(f"also: could not record run {writer.id} as failed: {redact(repr(db_exc))}")


def fail_stale_runs(engine: Engine, kind: str, day: date, campaign: str, reason: str) -> list[int]:
    """Close every 'running' run of (kind, day, campaign) as 'failed'; the ids it closed."""
    key = (
        (_RUNS.c.kind == kind)
        & (_RUNS.c.campaign_date == day)
        & (_RUNS.c.campaign == campaign)
        & (_RUNS.c.status == "running")
    )
    with engine.begin() as conn:
        stale = [int(i) for i in conn.execute(select(_RUNS.c.id).where(key)).scalars()]
        if stale:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id.in_(stale), _RUNS.c.status == "running")
                .values(status="failed", finished_at=utcnow(), error=reason[:MAX_ERROR_CHARS])
            )
    return stale


def record_stages(
    engine: Engine, run_id: int, stages: Iterable[StageTiming], *, wait_s: float | None = None
) -> int:
    """Store a run's stage timings in ``run_stages`` (replacing any); rows written.

    ``wait_s``: wait at most this long for a locked SQLite database (default: the
    engine's busy timeout)."""
    rows = [
        {
            "run_id": int(run_id),
            "seq": i,
            "stage": check_label(st.stage, "stage", 32),
            "started_at": st.started_at,
            "duration_s": float(st.duration_s),
            "status": st.status,
        }
        for i, st in enumerate(stages)
    ]
    transaction = engine.begin() if wait_s is None else begin_within(engine, wait_s)
    with transaction as conn:
        conn.execute(delete(_STAGES).where(_STAGES.c.run_id == int(run_id)))
        if rows:
            conn.execute(insert(_STAGES), rows)
    return len(rows)
