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
from sqlalchemy import Table, column, literal_column, make_url, select, table, text
from sqlalchemy.engine import URL

from growth.store import runs as run_rows
from growth.store.engine import make_engine, resolve_url
from growth.store.jsonable import dump_json
from growth.store.locks import RunLease
from growth.store.migrate import current_revision, migrate
from growth.store.models import TABLE_NAMES, Base, RunRow
from growth.store.read import READ_ONLY_SQL, frame, read_only, typed
from growth.store.roles import ANALYST_ROLE_ENV, grant_analyst
from growth.store.runs import StageTiming
from growth.store.views import VIEWS, create_views
from growth.store.writer import RunFailed, RunWriter

_RUNS: Table = RunRow.__table__  # type: ignore[assignment]


class Store:
    """The platform's SQL store: runs, their results, and read-only analyst views.

    ``Store(url=None)`` connects to ``url``, ``$GROWTH_DB_URL`` or the embedded
    SQLite database and migrates it to the newest schema (Alembic; idempotent, rows
    are kept).  ``analyst_role`` (PostgreSQL only, default ``$GROWTH_ANALYST_ROLE``)
    is granted read access to the views and nothing else (see :meth:`grant_analyst`).
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
        """PostgreSQL: let ``role`` read the analyst views and nothing else (see :mod:`growth.store.roles`)."""
        grant_analyst(self.engine, role)

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
        before_commit: Callable[[], None] | None = None,
    ) -> Iterator[RunWriter]:
        """Record one run; results added in the body are written atomically at exit.

        ``kind`` labels the job ('nightly', 'coupons', 'push', 'install', ...);
        ``config`` is stored as JSON; ``operator`` defaults to the OS user and
        ``version`` to :func:`growth.store.runs.code_version`.  If the body raises,
        no result row persists, the run is recorded ``'failed'`` with the error, and
        the exception propagates.  If writing the results fails, the run is recorded
        ``'failed'`` and :class:`RunFailed` is raised.  ``before_commit`` is called
        inside the result transaction, just before the run is marked succeeded.

        With a ``campaign`` (and a ``campaign_date``) the run is idempotent: when it
        succeeds, the earlier succeeded run of the same (kind, campaign_date,
        campaign) is marked ``'superseded'`` in the same transaction (its id lands
        in ``writer.superseded``).  Concurrent runs of one key are the caller's to
        prevent (:meth:`lock`); the database refuses two succeeded runs per key.
        """
        if campaign is not None:
            campaign = run_rows.check_label(campaign, "campaign", 64)
        kind = run_rows.check_label(kind, "kind", 32)
        operator = run_rows.check_label(operator or run_rows.default_operator(), "operator", 128)
        version = run_rows.check_label(version or run_rows.code_version(), "version", 64)
        day = run_rows.as_date(campaign_date)
        config_json = dump_json(config, "config")
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
            run_rows.commit_results(self.engine, writer, started, before_commit)
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
        day = run_rows.as_date(campaign_date)
        if day is None:
            raise ValueError("failing stale runs needs a campaign_date")
        return run_rows.fail_stale_runs(self.engine, kind, day, campaign, reason)

    def record_stages(self, run_id: int, stages: Iterable[StageTiming]) -> int:
        """Store a run's stage timings in ``run_stages`` (replacing any); rows written."""
        return run_rows.record_stages(self.engine, run_id, stages)

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
        day = run_rows.as_date(campaign_date)
        if day is None:
            raise ValueError("a run lock needs a campaign_date")
        return RunLease(
            self.engine,
            run_rows.check_label(kind, "kind", 32),
            day,
            run_rows.check_label(campaign, "campaign", 64),
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
        with read_only(self.engine) as conn:
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
        with read_only(self.engine) as conn:
            return typed(frame(conn.execute(stmt)), name)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only ``SELECT``/``WITH`` statement with bound ``:name`` parameters.

        Values must come through ``params`` (never formatted into ``sql``).  The
        connection is read-only, so a statement that writes fails even if it
        slips past the ``SELECT``/``WITH`` check.
        """
        if not isinstance(sql, str) or not READ_ONLY_SQL.match(sql):
            raise ValueError(
                "query() runs read-only statements starting with SELECT or WITH; got "
                f"{str(sql)[:60]!r}"
            )
        with read_only(self.engine) as conn:
            return frame(conn.execute(text(sql), dict(params or {})))

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict, with ``config`` and ``summary`` parsed from JSON."""
        with read_only(self.engine) as conn:
            row = conn.execute(select(_RUNS).where(_RUNS.c.id == int(run_id))).mappings().first()
        if row is None:
            raise LookupError(f"no run with id {run_id}")
        out = dict(row)
        for key in ("config", "summary"):
            out[key] = json.loads(out[key]) if out[key] is not None else None
        return out
