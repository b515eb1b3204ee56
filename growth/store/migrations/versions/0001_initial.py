"""Initial schema: runs, the five result tables and the analyst views.

The schema as the store created it before migrations existed (``create_all``),
so a database made by that code is stamped at this revision and upgraded in
place.  Table and view definitions are frozen here on purpose: later revisions
change them, this one must keep describing revision 0001.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from growth.store.migrations.frozen_views import VIEWS_V1

revision: str = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TS = sa.DateTime(timezone=True)

RESULT_TABLES = (
    "model_metrics",
    "coupon_allocations",
    "push_schedules",
    "channel_plans",
    "pareto_points",
)


def _result_table(name: str, *columns: sa.Column | sa.CheckConstraint) -> None:
    """A result table: surrogate key, ``run_id`` -> runs (cascade), its columns, an index."""
    op.create_table(
        name,
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f(f"fk_{name}_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_run_id"), name, ["run_id"])


def upgrade() -> None:
    op.create_table(
        "runs",
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
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_campaign_date"), "runs", ["campaign_date"])
    op.create_index("ix_runs_kind_started_at", "runs", ["kind", "started_at"])
    _result_table(
        "model_metrics",
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
    )
    _result_table(
        "coupon_allocations",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("segment", sa.String(16), nullable=False),
        sa.Column("option_id", sa.String(64), nullable=False),
        sa.Column("coupon_type", sa.String(32), nullable=False),
        sa.Column("face_value", sa.Float(), nullable=False),
        sa.Column("expected_value", sa.Float(), nullable=False),
        sa.Column("expected_cost", sa.Float(), nullable=False),
        sa.Column("expected_gmv", sa.Float(), nullable=True),
    )
    _result_table(
        "push_schedules",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("industry", sa.String(64), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("expected_open", sa.Float(), nullable=False),
        sa.CheckConstraint("hour BETWEEN 0 AND 23", name=op.f("ck_push_schedules_hour")),
    )
    _result_table(
        "channel_plans",
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("channel_name", sa.String(128), nullable=False),
        sa.Column("spend", sa.Float(), nullable=False),
        sa.Column("installs", sa.Float(), nullable=False),
        sa.Column("logins", sa.Float(), nullable=False),
        sa.Column("retained", sa.Float(), nullable=False),
        sa.Column("installs_lo", sa.Float(), nullable=True),
        sa.Column("installs_hi", sa.Float(), nullable=True),
    )
    _result_table(
        "pareto_points",
        sa.Column("front", sa.String(64), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("spend", sa.Float(), nullable=True),
        sa.Column("installs", sa.Float(), nullable=True),
        sa.Column("logins", sa.Float(), nullable=True),
        sa.Column("retained", sa.Float(), nullable=True),
        sa.Column("conversions", sa.Float(), nullable=True),
        sa.Column("gmv", sa.Float(), nullable=True),
        sa.Column(
            "chosen",
            sa.Boolean(create_constraint=True, name=op.f("ck_pareto_points_chosen")),
            nullable=False,
        ),
    )
    for name, select in VIEWS_V1.items():
        op.execute(f"CREATE VIEW {name} AS\n{select.strip()}")


def downgrade() -> None:
    for name in reversed(VIEWS_V1):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for name in reversed(RESULT_TABLES):
        op.drop_table(name)
    op.drop_table("runs")
