"""Which database the store opens, the SQLAlchemy engines it opens it with, and its secrets.

The database is the URL given, else ``$GROWTH_DB_URL``, else the embedded SQLite file
under the data root (:func:`growth.paths.default_db_url`); any SQLAlchemy URL works.
A URL's password never leaves this module in clear: :func:`redact_url` is the URL as
it may be shown, and :func:`redact` hides every password the process has opened a
database with in any text (console lines, log records, stored errors and configs).

>>> import os
>>> os.environ.pop(ENV_VAR, None) and None
>>> resolve_url("sqlite://")
'sqlite://'
>>> make_engine(resolve_url("sqlite://")).dialect.name
'sqlite'
>>> url = parse_url("postgresql+psycopg://app:s3cret-pw@db:5432/growth")
>>> redact_url(url)
'postgresql+psycopg://app:***@db:5432/growth'
>>> redact("could not connect with password s3cret-pw")
'could not connect with password ***'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from growth.paths import default_db_url

ENV_VAR = "GROWTH_DB_URL"
"""Environment variable naming the store's database URL."""

MASK = "***"
_SECRET_KEYS = ("password", "passwd", "pwd", "sslpassword")
"""URL query parameters (and ``key=value`` text) that carry a password."""
_CREDENTIALS = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s'\"]*:)[^@\s'\"]+(?=@)", re.I)
_KEY_VALUE = re.compile(rf"(?P<head>\b(?:{'|'.join(_SECRET_KEYS)})\s*[=:]\s*)[^\s&'\",;]+", re.I)
_MIN_SECRET = 4
"""Passwords shorter than this are hidden inside URLs and ``password=`` text only: hiding
them anywhere else would mask ordinary words."""
_secrets: set[str] = set()


class BadStoreURL(ValueError):
    """The store URL (``--db`` / ``$GROWTH_DB_URL``) is not a usable database URL."""


def resolve_url(url: str | URL | None = None) -> str:
    """``url``, else ``$GROWTH_DB_URL``, else the embedded SQLite database (:func:`growth.paths.default_db_url`)."""
    if url is None:
        url = os.environ.get(ENV_VAR) or default_db_url()
    return url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)


def parse_url(url: str) -> URL:
    """``url`` parsed; :class:`BadStoreURL` (naming it, password hidden) if it is not one.

    Its password is remembered, so :func:`redact` hides it from then on.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise BadStoreURL(
            f"database URL {redact_url(url)!r} (--db or ${ENV_VAR}) is not a SQLAlchemy URL "
            f"({redact(str(exc))}); e.g. sqlite:///data/growth.db or "
            "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB"
        ) from None
    for secret in (parsed.password, *(parsed.query.get(k) for k in _SECRET_KEYS)):
        if isinstance(secret, str) and secret:
            _secrets.add(secret)
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL as it may be shown: password (also a ``?password=`` parameter) as ``***``."""
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    return redact(text)


def redact(text: str) -> str:
    """``text`` with every database password hidden: URL credentials, ``password=...``
    pairs, and each password this process parsed (:func:`parse_url`) wherever it appears."""
    text = _CREDENTIALS.sub(lambda m: m["head"] + MASK, str(text))
    text = _KEY_VALUE.sub(lambda m: m["head"] + MASK, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    return text


def redact_secrets(value: Any) -> Any:
    """``value`` (plain JSON types) with :func:`redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_secrets(item) for item in value]
    return value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer), fewer fsyncs, enforced foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    """A reader's connection cannot write for as long as it lives (and changes nothing
    about the file, not even its journal mode)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


CLEANUP_WAIT_S = 5.0
"""How long a clean-up write (a failed run's stage timings, a lease's heartbeat or
release) waits for a locked SQLite database before giving up: after a run failed on a
locked database, each of them would otherwise wait the whole busy timeout again."""


@contextmanager
def begin_within(engine: Engine, seconds: float) -> Iterator[Connection]:
    """``engine.begin()``, except that on SQLite it waits at most ``seconds`` for another
    writer's lock (instead of the engine's busy timeout) before raising
    ``OperationalError: database is locked``; other backends are unchanged."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
        if raw is None:
            with conn.begin():
                yield conn
            return
        before = raw.execute("PRAGMA busy_timeout").fetchone()[0]
        raw.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")
        try:
            with conn.begin():
                yield conn
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(before)}")


def sqlite_in_memory(url: str | URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (one shared connection)."""
    parsed = make_url(url) if isinstance(url, str) else url
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database
    )


def make_engine(url: str, *, echo: bool = False, read_only: bool = False) -> Engine:
    """Engine for ``url``; SQLite gets its folder created, a busy timeout and pragmas.

    ``read_only``: every connection is read-only for its whole life (SQLite
    ``query_only``; PostgreSQL ``default_transaction_read_only``, and with psycopg
    every statement is prepared, so one call runs one statement), and a SQLite file
    that does not exist is an error instead of a new empty database.
    """
    parsed = parse_url(url)
    try:
        backend = parsed.get_backend_name()
        if backend == "postgresql":
            return _postgres_engine(parsed, echo=echo, read_only=read_only)
        if backend != "sqlite":
            return create_engine(parsed, echo=echo, pool_pre_ping=True)
        return _sqlite_engine(parsed, echo=echo, read_only=read_only)
    except (ArgumentError, ImportError) as exc:  # unknown dialect, driver not installed
        raise BadStoreURL(f"database URL {redact_url(url)!r}: {redact(str(exc))}") from None


def _postgres_engine(parsed: URL, *, echo: bool, read_only: bool) -> Engine:
    if not read_only:
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    options = " ".join(
        filter(None, [parsed.query.get("options"), "-c default_transaction_read_only=on"])
    )
    connect_args: dict[str, Any] = {"options": options}
    if parsed.get_driver_name() == "psycopg":
        connect_args["prepare_threshold"] = 0  # extended protocol: one statement per call
    return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)


SQLITE_HEADER = b"SQLite format 3\x00"


def _is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` starts with SQLite's header (an empty file is no store either)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return True  # unreadable: let SQLite say why, as for any database


def _sqlite_engine(parsed: URL, *, echo: bool, read_only: bool) -> Engine:
    database = parsed.database or ""
    in_memory = sqlite_in_memory(parsed)
    if not in_memory and not database.startswith("file:"):
        path = Path(database).expanduser()
        if read_only and not path.is_file():
            raise FileNotFoundError(f"no store database at {path} (run growth nightly first)")
        if read_only and not _is_sqlite_file(path):  # SQLite would open it and answer SELECT 1
            raise BadStoreURL(f"{path} is not a SQLite database (its header says otherwise)")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {}}
    if "timeout" not in parsed.query:  # ?timeout=SECONDS in the URL sets the busy timeout
        kwargs["connect_args"]["timeout"] = 30
    if in_memory:  # one shared connection, or every checkout would see an empty database
        kwargs = {"connect_args": {"check_same_thread": False}, "poolclass": StaticPool}
    engine = create_engine(parsed, echo=echo, **kwargs)
    reader = read_only and not in_memory
    event.listen(engine, "connect", _sqlite_query_only if reader else _sqlite_pragmas)
    return engine
