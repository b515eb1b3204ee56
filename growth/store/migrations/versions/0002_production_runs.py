"""Production runs: campaign key, superseded runs, stage timings, run locks.

* ``runs.campaign`` and ``runs.superseded_by``; status ``'superseded'``;
* a partial unique index: one succeeded run per (kind, campaign_date, campaign);
* ``run_stages`` (per-stage wall time of a run) and ``run_locks`` (exclusive
  lease on a (kind, campaign_date, campaign) while a run is in progress);
* the views re-created with the ``campaign`` column.

SQLite cannot alter a CHECK constraint, so ``runs`` is re-created in batch mode
from a frozen copy of its revision-0001 definition (rows are copied; foreign keys
are off during migrations, see ``env.py``).  Views are dropped first because
SQLite validates views when a table is renamed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from growth.store.migrations.frozen_views import VIEWS_V1, VIEWS_V2

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

UTC_TS = sa.DateTime(timezone=True)
OLD_STATUS = "status IN ('running', 'succeeded', 'failed')"
NEW_STATUS = "status IN ('running', 'succeeded', 'failed', 'superseded')"
ONE_SUCCEEDED = "status = 'succeeded'"


def _runs_v1() -> sa.Table:
    """``runs`` as revision 0001 created it (batch mode copies from this, not reflection)."""
    meta = sa.MetaData()
    return sa.Table(
        "runs",
        meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("campaign_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTC_TS, nullable=False),
        sa.Column("finished_at", UTC_TS, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.CheckConstraint(OLD_STATUS, name="ck_runs_status"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.Index("ix_runs_campaign_date", "campaign_date"),
        sa.Index("ix_runs_kind_started_at", "kind", "started_at"),
    )


def _drop_views(names: dict[str, str]) -> None:
    for name in reversed(names):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def _create_views(views: dict[str, str]) -> None:
    for name, select in views.items():
        op.execute(f"CREATE VIEW {name} AS\n{select.strip()}")


def upgrade() -> None:
    _drop_views(VIEWS_V1)
    with op.batch_alter_table("runs", copy_from=_runs_v1(), recreate="auto") as batch:
        batch.add_column(sa.Column("campaign", sa.String(64), nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_status"), NEW_STATUS)
    op.create_index(
        "uq_runs_one_succeeded",
        "runs",
        ["kind", "campaign_date", "campaign"],
        unique=True,
        sqlite_where=sa.text(ONE_SUCCEEDED),
        postgresql_where=sa.text(ONE_SUCCEEDED),
    )
    op.create_table(
        "run_stages",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("started_at", UTC_TS, nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_stages_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_stages")),
    )
    op.create_table(
        "run_locks",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("campaign_date", sa.Date(), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", UTC_TS, nullable=False),
        sa.Column("heartbeat_at", UTC_TS, nullable=False),
        sa.Column("expires_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("kind", "campaign_date", "campaign", name=op.f("pk_run_locks")),
    )
    _create_views(VIEWS_V2)


def downgrade() -> None:
    """Back to 0001; superseded runs become 'failed' (0001 knows no such status)."""
    _drop_views(VIEWS_V2)
    op.drop_table("run_locks")
    op.drop_table("run_stages")
    op.drop_index("uq_runs_one_succeeded", table_name="runs")
    runs = sa.table(
        "runs",
        sa.column("status", sa.String),
        sa.column("error", sa.Text),
        sa.column("superseded_by", sa.Integer),
    )
    op.execute(
        runs.update()
        .where(runs.c.status == "superseded")
        .values(status="failed", error="superseded by a later run (schema downgraded)")
    )
    new_runs = _runs_v1()
    new_runs.append_column(sa.Column("campaign", sa.String(64), nullable=True))
    new_runs.append_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
    for constraint in list(new_runs.constraints):
        if isinstance(constraint, sa.CheckConstraint):
            constraint.sqltext = sa.text(NEW_STATUS)
    with op.batch_alter_table("runs", copy_from=new_runs, recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_status"), OLD_STATUS)
        batch.drop_column("superseded_by")
        batch.drop_column("campaign")
    _create_views(VIEWS_V1)
