"""Alembic environment of the store: runs the migrations in ``versions/``.

Used two ways:

* programmatically by :class:`growth.store.Store` (``alembic.command.upgrade``
  with a connection passed in ``config.attributes["connection"]``);
* from the command line, ``alembic upgrade head`` at the repository root
  (``alembic.ini``), on ``$GROWTH_DB_URL`` or ``sqlite:///data/growth.db``.

On SQLite, foreign keys are switched off while migrating: a batch migration
re-creates a table, and dropping the old copy with foreign keys enforced would
cascade-delete the rows that reference it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from growth.store.models import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        if connection.in_transaction():
            connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():
            connection.commit()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            if connection.in_transaction():
                connection.commit()


def run_migrations_offline() -> None:
    """Emit the migration SQL (``alembic upgrade head --sql``) without a database."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the connection the caller passed, else one to the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    from growth.store.engine import make_engine, resolve_url

    engine = make_engine(resolve_url(config.get_main_option("sqlalchemy.url") or None))
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
