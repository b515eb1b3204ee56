"""SQL store of runs and their results, with read-only views for analysts.

>>> from growth.store import Store
>>> store = Store("sqlite://")  # in memory; default: $GROWTH_DB_URL or sqlite:///data/growth.db
>>> with store.run(kind="coupons", config={"budget": 100.0}, operator="doc") as run:
...     _ = run.add_channel_plan([{"plan": "max_retained", "channel_id": 1,
...         "channel_name": "app_store", "spend": 50.0, "installs": 100.0,
...         "logins": 80.0, "retained": 40.0}])
>>> store.read("v_channel_plans")["cost_per_install"].tolist()
[0.5]
"""

from growth.store.locks import RunInProgress, RunLease, StageTiming, process_alive
from growth.store.models import (
    METRIC_SEGMENTS,
    RESULT_TABLES,
    RUN_STATUSES,
    TABLE_NAMES,
    Base,
    ChannelPlan,
    CouponAllocation,
    ModelMetric,
    ParetoPoint,
    PushSchedule,
    Run,
    RunLock,
    RunStage,
)
from growth.store.store import (
    ENV_VAR,
    RunFailed,
    RunWriter,
    Store,
    alembic_config,
    code_version,
    current_revision,
    head_revision,
    migrate,
    normalise_rows,
    to_jsonable,
)
from growth.store.views import EXAMPLE_QUERIES, VIEW_NAMES, VIEWS, create_views

__all__ = [
    "ENV_VAR",
    "EXAMPLE_QUERIES",
    "METRIC_SEGMENTS",
    "RESULT_TABLES",
    "RUN_STATUSES",
    "TABLE_NAMES",
    "VIEWS",
    "VIEW_NAMES",
    "Base",
    "ChannelPlan",
    "CouponAllocation",
    "ModelMetric",
    "ParetoPoint",
    "PushSchedule",
    "Run",
    "RunFailed",
    "RunInProgress",
    "RunLease",
    "RunLock",
    "RunStage",
    "RunWriter",
    "StageTiming",
    "Store",
    "alembic_config",
    "code_version",
    "create_views",
    "current_revision",
    "head_revision",
    "migrate",
    "normalise_rows",
    "process_alive",
    "to_jsonable",
]
