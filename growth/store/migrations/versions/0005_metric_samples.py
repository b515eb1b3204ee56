"""Model metrics per domain and scene: ``model_metrics`` gains ``domain`` and ``scene``.

Rows written before this revision were the shop's (target) holdout of its one scene, so
they get ``domain = 'target'`` and ``scene = ''`` (unnamed); ``v_model_metrics`` is
re-created grouping by both.

Revision ID: 0005_metric_samples
Revises: 0004_experiments
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from growth.store.migrations.frozen_views import VIEWS_V2, VIEWS_V3

revision: str = "0005_metric_samples"
down_revision: str | None = "0004_experiments"
branch_labels = None
depends_on = None


def _create_views(views: dict[str, str]) -> None:
    for name, select in views.items():
        op.execute(f"CREATE VIEW {name} AS\n{select.strip()}")


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_model_metrics")
    with op.batch_alter_table("model_metrics") as batch:
        batch.add_column(
            sa.Column("domain", sa.String(16), nullable=False, server_default="target")
        )
        batch.add_column(sa.Column("scene", sa.String(32), nullable=False, server_default=""))
    _create_views({"v_model_metrics": VIEWS_V3["v_model_metrics"]})


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_model_metrics")
    with op.batch_alter_table("model_metrics") as batch:
        batch.drop_column("scene")
        batch.drop_column("domain")
    _create_views({"v_model_metrics": VIEWS_V2["v_model_metrics"]})
