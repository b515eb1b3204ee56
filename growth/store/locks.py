"""Exclusive run leases that work alike on SQLite and PostgreSQL.

A lease is one row of ``run_locks`` keyed by (kind, campaign_date, campaign).
Acquiring it is an ``INSERT`` in its own, immediately committed transaction:
the primary key makes a second insert fail on every backend, so two processes
can never both hold it.  While held, a daemon thread refreshes ``heartbeat_at``
and pushes ``expires_at`` forward.  A lease left behind by a killed process is
*stale* and taken over by the next run when

* its holder ran on this host and the process is gone (pid check), or
* its heartbeat stopped for longer than the lease (``expires_at`` is past),
  which covers holders on other hosts and hung processes.

Why not PostgreSQL advisory locks: they exist only there, and a session lock is
tied to one pooled connection; rows behave the same on both backends and leave
an inspectable trace (who holds what, since when).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from growth.store.engine import CLEANUP_WAIT_S, begin_within
from growth.store.models import RunLockRow

log = logging.getLogger(__name__)

_LOCKS: Table = RunLockRow.__table__  # type: ignore[assignment]


class LeaseLost(RuntimeError):
    """This process no longer holds its lease (another process took it over, or its row
    vanished): its run must not commit."""


class RunInProgress(RuntimeError):
    """Another live process holds the lease on this (kind, campaign_date, campaign)."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def _now() -> datetime:
    return datetime.now(UTC)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # state is the field after the parenthesised command name
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class RunLease:
    """An exclusive lease on one (kind, campaign_date, campaign); a context manager.

    ``with store.lock("nightly", day, "default") as lease:`` acquires it (raising
    :class:`RunInProgress` when a live holder has it), heartbeats every
    ``heartbeat_s`` seconds (default a quarter of ``lease_s``) and releases it on
    exit.  ``lease.took_over`` describes the stale lease it replaced, if any.

    A holder that loses the lease (its row taken over or gone) learns it three ways:
    the heartbeat sets ``lost`` and calls ``on_lost`` (the job stops its main thread
    there), :meth:`check` raises :class:`LeaseLost` (the job calls it between stages),
    and :meth:`verify` raises it inside the result transaction, so the run's results
    are never committed by a process that no longer holds its lease.
    """

    def __init__(
        self,
        engine: Engine,
        kind: str,
        campaign_date: date,
        campaign: str,
        *,
        lease_s: float = 120.0,
        heartbeat_s: float | None = None,
    ) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be positive, got {lease_s!r}")
        self.engine = engine
        self.kind = kind
        self.campaign_date = campaign_date
        self.campaign = campaign
        self.lease_s = float(lease_s)
        self.heartbeat_s = float(heartbeat_s) if heartbeat_s is not None else self.lease_s / 4
        if not 0 < self.heartbeat_s < self.lease_s:
            raise ValueError(
                f"heartbeat_s must be in (0, lease_s={self.lease_s}), got {self.heartbeat_s!r}"
            )
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.took_over: dict[str, Any] | None = None
        self.held = False
        self.lost = False
        self.lost_reason = ""
        self.on_lost: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"RunLease({self.kind!r}, {self.campaign_date.isoformat()}, {self.campaign!r}, "
            f"held={self.held})"
        )

    @property
    def _key(self) -> Any:
        return (
            (_LOCKS.c.kind == self.kind)
            & (_LOCKS.c.campaign_date == self.campaign_date)
            & (_LOCKS.c.campaign == self.campaign)
        )

    def describe(self) -> str:
        return f"{self.kind} run for {self.campaign_date.isoformat()} campaign {self.campaign!r}"

    # -- acquire / release ----------------------------------------------------------

    def acquire(self) -> RunLease:
        """Take the lease, replacing a stale one; :class:`RunInProgress` if it is live."""
        if self.held:
            raise RuntimeError(f"{self!r} is already held")
        for _ in range(5):
            now = _now()
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(_LOCKS).values(
                            kind=self.kind,
                            campaign_date=self.campaign_date,
                            campaign=self.campaign,
                            token=self.token,
                            host=self.host,
                            pid=self.pid,
                            acquired_at=now,
                            heartbeat_at=now,
                            expires_at=now + timedelta(seconds=self.lease_s),
                        )
                    )
            except IntegrityError:
                holder = self._holder()
                if holder is None:  # released between our insert and our read
                    continue
                reason = self._stale_reason(holder)
                if reason is None:
                    raise RunInProgress(
                        f"refused: another {self.describe()} is in progress "
                        f"(pid {holder['pid']} on {holder['host']}, run {holder['run_id']}, "
                        f"since {holder['acquired_at'].isoformat(timespec='seconds')}, "
                        f"lease until {holder['expires_at'].isoformat(timespec='seconds')})",
                        holder,
                    ) from None
                if self._break(holder):
                    self.took_over = {**holder, "reason": reason}
                    log.warning("stale lease on %s taken over: %s", self.describe(), reason)
                continue
            self.held = True
            self._start_heartbeat()
            return self
        raise RunInProgress(f"refused: could not acquire the lease on {self.describe()}", {})

    def release(self) -> None:
        """Stop the heartbeat and delete the lease row (only if it is still ours).

        A database that refuses the delete (locked) does not mask the caller's own
        outcome: the row then expires after ``lease_s`` and is taken over as stale.
        """
        self._stop.set()
        if self._thread is not None:  # a beat waits at most CLEANUP_WAIT_S for the database
            self._thread.join(timeout=CLEANUP_WAIT_S + 1)
            self._thread = None
        if not self.held:
            return
        self.held = False
        try:
            with begin_within(self.engine, CLEANUP_WAIT_S) as conn:
                conn.execute(delete(_LOCKS).where(self._key, _LOCKS.c.token == self.token))
        except OperationalError as exc:
            log.warning("could not release the lease on %s: %r", self.describe(), exc)

    def check(self) -> None:
        """Raise :class:`LeaseLost` if the heartbeat found the lease lost."""
        if self.lost:
            raise LeaseLost(self.lost_reason)

    def verify(self, conn: Connection) -> None:
        """Inside a transaction: raise :class:`LeaseLost` unless the lease row is still ours.

        PostgreSQL locks the row until the transaction ends (no takeover in between);
        SQLite needs nothing more, its writing transaction excludes every other writer.
        """
        stmt = select(_LOCKS).where(self._key)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None or row["token"] != self.token:
            self._lose(dict(row) if row is not None else None)
            raise LeaseLost(self.lost_reason)

    def set_run_id(self, run_id: int) -> None:
        """Record which run holds the lease (shown to refused processes)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_LOCKS)
                .where(self._key, _LOCKS.c.token == self.token)
                .values(run_id=int(run_id))
            )

    def __enter__(self) -> RunLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- internals ------------------------------------------------------------------

    def _holder(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_LOCKS).where(self._key)).mappings().first()
        return dict(row) if row is not None else None

    def _stale_reason(self, holder: dict[str, Any]) -> str | None:
        """Why the holder's lease is stale, or ``None`` if it is live."""
        if holder["host"] == self.host and not process_alive(int(holder["pid"])):
            return f"process {holder['pid']} on {holder['host']} is gone"
        if holder["expires_at"] < _now():
            return (
                f"lease of pid {holder['pid']} on {holder['host']} expired at "
                f"{holder['expires_at'].isoformat(timespec='seconds')} (no heartbeat)"
            )
        return None

    def _break(self, holder: dict[str, Any]) -> bool:
        """Delete the stale lease if it is still the one we judged (compare-and-delete)."""
        with self.engine.begin() as conn:
            res = conn.execute(
                delete(_LOCKS).where(
                    self._key,
                    _LOCKS.c.token == holder["token"],
                    _LOCKS.c.heartbeat_at == holder["heartbeat_at"],
                )
            )
        return res.rowcount == 1

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.campaign_date}-{self.campaign}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            now = _now()
            try:  # a locked database costs one beat, never more than the beat's period
                with begin_within(self.engine, min(CLEANUP_WAIT_S, self.heartbeat_s)) as conn:
                    res = conn.execute(
                        update(_LOCKS)
                        .where(self._key, _LOCKS.c.token == self.token)
                        .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.lease_s))
                    )
            except Exception as exc:  # a busy database must not kill the run; retry next beat
                log.warning("lease heartbeat on %s failed: %r", self.describe(), exc)
                continue
            if res.rowcount != 1 and not self._stop.is_set():  # released meanwhile: not lost
                self._lose(self._holder_or_none())
                if self.on_lost is not None:
                    self.on_lost()
                return

    def _holder_or_none(self) -> dict[str, Any] | None:
        try:
            return self._holder()
        except Exception:  # the reason is a nicety; losing the lease is what matters
            return None

    def _lose(self, holder: dict[str, Any] | None) -> None:
        """Mark the lease lost, saying who has it now."""
        if holder is None:
            how = "its row vanished"
        else:
            how = f"pid {holder['pid']} on {holder['host']} took it over"
        self.lost = True
        self.lost_reason = f"lost the lease on {self.describe()}: {how}"
        log.error(self.lost_reason)
