"""PostgreSQL analyst roles: read the analyst views and nothing else."""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

from growth.store.models import TABLE_NAMES
from growth.store.views import VIEWS

ANALYST_ROLE_ENV = "GROWTH_ANALYST_ROLE"
"""Environment variable naming the role a store grants read access to when it opens."""

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_analyst(engine: Engine, role: str) -> None:
    """PostgreSQL: let ``role`` read the analyst views and nothing else.

    Revokes every privilege ``role`` holds on the store's tables and views,
    then grants ``USAGE`` on the schema and ``SELECT`` on each view.  A view
    runs with its owner's rights, so the role reads results through the views
    but cannot read a base table or write anything.  Re-run after a migration
    that re-creates views (the store does so when ``analyst_role`` is set).
    Role and view names are identifiers, which SQL cannot bind as parameters:
    the role is checked against ``[a-z_][a-z0-9_]*`` and quoted.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError(f"analyst roles need PostgreSQL; this store is {engine.dialect.name}")
    if not isinstance(role, str) or not _IDENTIFIER.match(role):
        raise ValueError(f"analyst role {role!r} must match [a-z_][a-z0-9_]* (max 63 chars)")
    quote = engine.dialect.identifier_preparer.quote_identifier
    with engine.begin() as conn:
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
