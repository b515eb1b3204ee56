"""The run store: record each job run and its results atomically, read them back.

A run's life (see :meth:`Store.run`):

1. a ``runs`` row with status ``'running'`` is committed at once, so a crashed
   process still leaves a visible trace;
2. result rows added inside the ``with`` body are validated when added (a bad
   column fails *there*, naming the table, column and row) and buffered;
3. on normal exit every buffered row and the status update to ``'succeeded'``
   are written in ONE transaction; if the body (or the write) raises, nothing of
   the run's results persists and the run row is closed as ``'failed'`` with the
   error text.  A run with a ``campaign`` is idempotent: in that same transaction
   the earlier succeeded run of its (kind, campaign date, campaign) is marked
   ``'superseded'``, so the analyst views show the latest one only.

The schema is managed by Alembic (:mod:`growth.store.migrate`): opening a store
upgrades its database to the head revision, keeping every row.  The database is
the URL given, ``$GROWTH_DB_URL`` or the embedded SQLite file under the data root
(:mod:`growth.store.engine`).

>>> store = Store("sqlite://")
>>> with store.run(kind="push", operator="doc", campaign_date="2026-11-30",
...                campaign="spring") as run:
...     run.summary = {"pushes": 0}
>>> store.get_run(run.id)["status"], run.superseded
('succeeded', [])
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Table, column, literal_column, select, table, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from growth.paths import check_name
from growth.store import runs as run_rows
from growth.store.engine import (
    make_engine,
    redact_secrets,
    redact_url,
    resolve_url,
    sqlite_in_memory,
)
from growth.store.jsonable import dump_json, to_jsonable
from growth.store.locks import RunLease
from growth.store.migrate import current_revision, migrate
from growth.store.models import TABLE_NAMES, Base, RunRow
from growth.store.read import check_query, frame, read_only, several_statements, typed
from growth.store.roles import ANALYST_ROLE_ENV, grant_analyst
from growth.store.runs import StageTiming
from growth.store.views import VIEWS, create_views
from growth.store.writer import RunFailed, RunWriter

_RUNS: Table = RunRow.__table__  # type: ignore[assignment]


class ReadOnlyStore(RuntimeError):
    """A write was asked of a store opened with ``read_only=True``."""


class Store:
    """The platform's SQL store: runs, their results, and read-only analyst views.

    ``Store(url=None)`` connects to ``url``, ``$GROWTH_DB_URL`` or the embedded
    SQLite database and migrates it to the newest schema (Alembic; idempotent, rows
    are kept).  ``analyst_role`` (PostgreSQL only, default ``$GROWTH_ANALYST_ROLE``)
    is granted read access to the views and nothing else (see :meth:`grant_analyst`).

    ``read_only=True`` opens the store for reading only: no migration, no grant, no
    schema check, so a role that may read the views and nothing else (the analyst)
    can use :meth:`runs`, :meth:`read` and :meth:`query`; every write is refused
    (:class:`ReadOnlyStore`) and every connection is read-only.  Reads of a writable
    store go through read-only connections too.
    """

    READABLE: tuple[str, ...] = (*TABLE_NAMES, *VIEWS)
    """Names :meth:`read` accepts: every table and view of the store."""

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        echo: bool = False,
        analyst_role: str | None = None,
        read_only: bool = False,
    ) -> None:
        self.url = resolve_url(url)
        self.read_only = read_only
        self.engine = make_engine(self.url, echo=echo, read_only=read_only)
        self._reader: Engine | None = None
        self._echo = echo
        if read_only:
            return
        self.create_schema()
        role = analyst_role or os.environ.get(ANALYST_ROLE_ENV)
        if role and self.engine.dialect.name == "postgresql":
            self.grant_analyst(role)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"Store({self.display_url!r}{mode})"

    @property
    def display_url(self) -> str:
        """The store's URL as it may be shown: its password hidden."""
        return redact_url(self.url)

    @property
    def reader(self) -> Engine:
        """The engine reads go through: connections that cannot write for their whole life
        (an in-memory SQLite database has one shared connection, made read-only per read)."""
        if self.read_only or sqlite_in_memory(self.url):
            return self.engine
        if self._reader is None:
            self._reader = make_engine(self.url, echo=self._echo, read_only=True)
        return self._reader

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyStore(f"{self!r} was opened read-only: cannot {what}")

    def create_schema(self, *, replace_views: bool = False) -> None:
        """Migrate to the head revision (tables and views); ``replace_views`` re-creates the views."""
        self._writable("migrate the schema")
        migrate(self.engine)
        create_views(self.engine, replace=replace_views)

    @property
    def revision(self) -> str | None:
        """The schema revision the database is at."""
        return current_revision(self.engine)

    def grant_analyst(self, role: str) -> None:
        """PostgreSQL: let ``role`` read the analyst views and nothing else (see :mod:`growth.store.roles`)."""
        self._writable("grant roles")
        grant_analyst(self.engine, role)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()

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
        before_commit: Callable[[], None] | None = None,
        lease: RunLease | None = None,
    ) -> Iterator[RunWriter]:
        """Record one run; results added in the body are written atomically at exit.

        ``kind`` labels the job ('nightly', 'coupons', 'push', 'install', ...);
        ``config`` is stored as JSON; ``operator`` defaults to the OS user and
        ``version`` to :func:`growth.store.runs.code_version`.  If the body raises,
        no result row persists, the run is recorded ``'failed'`` with the error, and
        the exception propagates.  If writing the results fails, the run is recorded
        ``'failed'`` and :class:`RunFailed` is raised.  ``before_commit`` is called
        inside the result transaction, just before the run is marked succeeded.
        ``lease`` (the :meth:`lock` the run was opened under): the results are
        committed only if the lease is still this process's, checked inside the result
        transaction (:meth:`RunLease.verify`); a run that lost it is recorded failed.

        With a ``campaign`` (and a ``campaign_date``) the run is idempotent: when it
        succeeds, the earlier succeeded run of the same (kind, campaign_date,
        campaign) is marked ``'superseded'`` in the same transaction (its id lands
        in ``writer.superseded``).  Concurrent runs of one key are the caller's to
        prevent (:meth:`lock`); the database refuses two succeeded runs per key.
        """
        self._writable("open a run")
        if campaign is not None:
            campaign = check_name(campaign, "campaign")
        kind = check_name(kind, "kind", 32)
        operator = run_rows.check_label(operator or run_rows.default_operator(), "operator", 128)
        version = run_rows.check_label(version or run_rows.code_version(), "version", 64)
        day = run_rows.as_date(campaign_date)
        config_json = dump_json(redact_secrets(to_jsonable(config, "config")), "config")
        started = run_rows.utcnow()
        run_id = run_rows.open_run(
            self.engine,
            started,
            kind=kind,
            campaign_date=day,
            config=config_json,
            code_version=version,
            operator=operator,
            campaign=campaign,
        )
        writer = RunWriter(run_id, kind, day, campaign)
        try:
            yield writer
        except BaseException as exc:
            writer.close()
            run_rows.record_failure(self.engine, writer, started, exc)
            raise
        writer.close()
        try:
            run_rows.commit_results(self.engine, writer, started, before_commit, lease)
        except BaseException as exc:  # incl. KeyboardInterrupt: never leave it 'running'
            run_rows.record_failure(self.engine, writer, started, exc)
            if isinstance(exc, Exception):
                raise RunFailed(run_id, f"results could not be written: {exc}") from exc
            raise

    def fail_stale_runs(
        self, kind: str, campaign_date: date | str, campaign: str, reason: str
    ) -> list[int]:
        """Close every 'running' run of (kind, campaign_date, campaign) as 'failed'.

        Call it only while holding that key's :meth:`lock`: the lock proves no
        live process is writing such a run, so any left 'running' was killed.
        Returns the ids it closed.
        """
        self._writable("fail stale runs")
        day = run_rows.as_date(campaign_date)
        if day is None:
            raise ValueError("failing stale runs needs a campaign_date")
        return run_rows.fail_stale_runs(self.engine, kind, day, campaign, reason)

    def record_stages(
        self, run_id: int, stages: Iterable[StageTiming], *, wait_s: float | None = None
    ) -> int:
        """Store a run's stage timings in ``run_stages`` (replacing any); rows written.
        ``wait_s``: wait at most this long for a locked SQLite database."""
        self._writable("record stage timings")
        return run_rows.record_stages(self.engine, run_id, stages, wait_s=wait_s)

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
        self._writable("take a run lease")
        day = run_rows.as_date(campaign_date)
        if day is None:
            raise ValueError("a run lock needs a campaign_date")
        return RunLease(
            self.engine,
            check_name(kind, "kind", 32),
            day,
            check_name(campaign, "campaign"),
            lease_s=lease_s,
            heartbeat_s=heartbeat_s,
        )

    # -- reading ---------------------------------------------------------------------

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
        with read_only(self.reader) as conn:
            return typed(frame(conn.execute(stmt)), "v_runs")

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
        with read_only(self.reader) as conn:
            return typed(frame(conn.execute(stmt)), name)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run ONE read-only ``SELECT``/``WITH``/``VALUES`` statement with bound ``:name`` parameters.

        Values must come through ``params`` (never formatted into ``sql``).  Whatever
        the text, it runs as one statement (a second one is refused by the driver,
        see :data:`growth.store.read.ONE_STATEMENT_DRIVERS`) on a connection that
        cannot write for its whole life, so neither ``SELECT 1; COMMIT; UPDATE ...``
        nor a writing CTE changes the database.
        """
        reader = self.reader
        check_query(sql, reader)
        try:
            with read_only(reader) as conn:
                return frame(conn.execute(text(sql), dict(params or {})))
        except DBAPIError as exc:
            if several_statements(exc):
                raise ValueError(
                    f"query() runs exactly one statement; {sql[:80]!r} holds several"
                ) from None
            raise

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict, with ``config`` and ``summary`` parsed from JSON."""
        with read_only(self.reader) as conn:
            row = conn.execute(select(_RUNS).where(_RUNS.c.id == int(run_id))).mappings().first()
        if row is None:
            raise LookupError(f"no run with id {run_id}")
        out = dict(row)
        for key in ("config", "summary"):
            out[key] = json.loads(out[key]) if out[key] is not None else None
        return out
