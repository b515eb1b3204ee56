"""SQL store of runs and their results, with read-only views for analysts.

One idea per module: ``engine`` (which database, the SQLAlchemy engine), ``migrate``
(Alembic), ``models`` (the tables, ORM classes named ``...Row``), ``rows`` (result
rows validated by the data engine, bulk insert), ``jsonable`` (config/summary JSON),
``writer`` (:class:`RunWriter`, one open run), ``runs`` (the run row's life in SQL),
``locks`` (run leases), ``read`` (read-only, typed frames), ``views`` (analyst
views), ``roles`` (PostgreSQL analyst grants) and ``store`` (:class:`Store`, which
ties them together).

>>> from growth.store import Store
>>> store = Store("sqlite://")  # in memory; default: $GROWTH_DB_URL or sqlite:///data/growth.db
>>> with store.run(kind="coupons", config={"budget": 100.0}, operator="doc") as run:
...     _ = run.add_channel_plan([{"plan": "max_retained", "channel_id": 1,
...         "channel_name": "app_store", "spend": 50.0, "installs": 100.0,
...         "logins": 80.0, "retained": 40.0}])
>>> store.read("v_channel_plans")["cost_per_install"].tolist()
[0.5]
"""

from growth.store.engine import (
    ENV_VAR,
    BadStoreURL,
    make_engine,
    redact,
    redact_url,
    resolve_url,
)
from growth.store.jsonable import to_jsonable
from growth.store.locks import LeaseLost, RunInProgress, RunLease, process_alive
from growth.store.migrate import alembic_config, current_revision, head_revision, migrate
from growth.store.models import (
    METRIC_SEGMENTS,
    RESULT_TABLES,
    RUN_STATUSES,
    TABLE_NAMES,
    Base,
    ChannelPlanRow,
    CouponAllocationRow,
    ModelMetricRow,
    ParetoPointRow,
    PushScheduleRow,
    RunLockRow,
    RunRow,
    RunStageRow,
)
from growth.store.read import newest_benchmark_metrics
from growth.store.rows import RESULT_SCHEMAS, normalise_rows
from growth.store.runs import StageTiming, code_version
from growth.store.store import ReadOnlyStore, Store
from growth.store.views import EXAMPLE_QUERIES, VIEW_NAMES, VIEWS, create_views
from growth.store.writer import RunFailed, RunWriter

__all__ = [
    "ENV_VAR",
    "EXAMPLE_QUERIES",
    "METRIC_SEGMENTS",
    "RESULT_SCHEMAS",
    "RESULT_TABLES",
    "RUN_STATUSES",
    "TABLE_NAMES",
    "VIEWS",
    "VIEW_NAMES",
    "BadStoreURL",
    "Base",
    "ChannelPlanRow",
    "CouponAllocationRow",
    "LeaseLost",
    "ModelMetricRow",
    "ParetoPointRow",
    "PushScheduleRow",
    "ReadOnlyStore",
    "RunFailed",
    "RunInProgress",
    "RunLease",
    "RunLockRow",
    "RunRow",
    "RunStageRow",
    "RunWriter",
    "StageTiming",
    "Store",
    "alembic_config",
    "code_version",
    "create_views",
    "current_revision",
    "head_revision",
    "make_engine",
    "migrate",
    "newest_benchmark_metrics",
    "normalise_rows",
    "process_alive",
    "redact",
    "redact_url",
    "resolve_url",
    "to_jsonable",
]
