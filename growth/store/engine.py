"""Which database the store opens, and the SQLAlchemy engine it opens it with.

The database is the URL given, else ``$GROWTH_DB_URL``, else the embedded SQLite file
under the data root (:func:`growth.paths.default_db_url`); any SQLAlchemy URL works.

>>> import os
>>> os.environ.pop(ENV_VAR, None) and None
>>> resolve_url("sqlite://")
'sqlite://'
>>> make_engine(resolve_url("sqlite://")).dialect.name
'sqlite'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from growth.paths import default_db_url

ENV_VAR = "GROWTH_DB_URL"
"""Environment variable naming the store's database URL."""


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
