"""Bring-your-own experiment: the analysed experiment's arms, values and plan.

* ``experiment_arms``: per arm, log counts, costs, uplift on the test rows with its
  interval, predicted uplift and what the plan gives it;
* ``experiment_values``: each policy's off-policy value and spend by estimator, with
  intervals, on the validation and test rows;
* ``experiment_allocations``: the plan's arm per user.

Revision ID: 0004_experiments
Revises: 0003_plan_estimates
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_experiments"
down_revision: str | None = "0003_plan_estimates"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("experiment_arms", "experiment_values", "experiment_allocations")


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


def _floats(*names: str, nullable: bool = False) -> list[sa.Column]:
    return [sa.Column(n, sa.Float(), nullable=nullable) for n in names]


def upgrade() -> None:
    _result_table(
        "experiment_arms",
        sa.Column("arm", sa.String(128), nullable=False),
        sa.Column(
            "control",
            sa.Boolean(create_constraint=True, name=op.f("ck_experiment_arms_control")),
            nullable=False,
        ),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        *_floats("cost_per_conversion", "cost_per_treatment"),
        *_floats("budget", nullable=True),
        *_floats("uplift", "uplift_lo", "uplift_hi", "predicted_uplift"),
        sa.Column("planned_users", sa.Integer(), nullable=False),
        *_floats("planned_cost"),
    )
    _result_table(
        "experiment_values",
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("estimator", sa.String(16), nullable=False),
        *_floats("budget"),
        sa.Column("rows", sa.Integer(), nullable=False),
        *_floats(
            "value",
            "value_lo",
            "value_hi",
            "spend",
            "spend_lo",
            "spend_hi",
            "uplift",
            "uplift_lo",
            "uplift_hi",
            "true_value",
            nullable=True,
        ),
    )
    _result_table(
        "experiment_allocations",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("arm", sa.String(128), nullable=False),
        *_floats("expected_uplift", "expected_cost", "conversion_prob"),
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
