"""A plan estimate says how many events it saw: ``plan_estimates`` gains ``n_events``.

A spend estimate whose holdout rows never redeemed the plan's coupon had an interval of
zero width; it now reaches the bound the unseen redemptions allow, and ``n_events``
(NULL for the contrasts ``value`` and ``gmv``, and for rows written before this revision)
lets the reader see why.

Revision ID: 0006_estimate_events
Revises: 0005_metric_samples
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_estimate_events"
down_revision: str | None = "0005_metric_samples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plan_estimates") as batch:
        batch.add_column(sa.Column("n_events", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plan_estimates") as batch:
        batch.drop_column("n_events")
