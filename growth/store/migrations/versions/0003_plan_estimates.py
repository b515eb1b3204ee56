"""Off-policy estimates of a run's plans: ``plan_estimates``.

One row per plan, quantity (``value``, ``gmv``, ``spend:<budget>``) and estimator
(``ips``, ``snips``, ``dr``): the estimate and its confidence interval on the
randomised holdout, written with the run (issue 13, section 4).

Revision ID: 0003_plan_estimates
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_plan_estimates"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = "plan_estimates"


def upgrade() -> None:
    op.create_table(
        NAME,
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("quantity", sa.String(96), nullable=False),
        sa.Column("estimator", sa.String(16), nullable=False),
        sa.Column("estimate", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("n_users", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f(f"fk_{NAME}_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{NAME}")),
    )
    op.create_index(op.f(f"ix_{NAME}_run_id"), NAME, ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{NAME}_run_id"), table_name=NAME)
    op.drop_table(NAME)
