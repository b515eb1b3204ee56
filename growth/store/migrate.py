"""The store's schema migrations: Alembic, configured in code, run when a store opens.

Opening a store upgrades its database to the head revision, keeping every row.  A
database made before migrations existed (tables, no ``alembic_version``) is stamped at
the initial revision first.

>>> from growth.store.engine import make_engine
>>> engine = make_engine("sqlite://")
>>> current_revision(engine) is None
True
>>> migrate(engine) == head_revision() == current_revision(engine)
True
"""

from __future__ import annotations

from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
INITIAL_REVISION = "0001"
_MIGRATION_LOCK = 0x67726F77  # 'grow': advisory lock key of the store's migrations


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
