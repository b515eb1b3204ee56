"""SQLAlchemy models of what the platform records: runs and their result rows.

Table names are a public contract (analysts and the app query them); columns may
be extended.  Every result table has a surrogate ``id``, a ``run_id`` foreign key
to :class:`RunRow` and an index on ``run_id``.  The DDL is portable: it is created
on SQLite by :class:`growth.store.Store` and is written so that PostgreSQL (and
Alembic, which reads ``Base.metadata`` and its naming convention) can use it as is.

Column ``info`` carries the extra checks applied when rows are added (``choices``,
``min``, ``max``; :func:`growth.store.rows.result_schema` turns each table into the
data engine's schema), so the rules live next to the columns they govern.  The ORM
classes end in ``Row`` (``CouponAllocationRow``): the plain names belong to the
optimizers' results.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from growth.data.schema import DOMAINS, LIFECYCLES, MAX_SCENE_LENGTH

RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "superseded")
"""Lifecycle of a run row: inserted 'running', closed 'succeeded' or 'failed'; a
succeeded run becomes 'superseded' when a later run for the same (kind, campaign
date, campaign) succeeds (its rows are kept for audit, hidden from the views)."""

RUN_STATUS_CHECK = "status IN ('running', 'succeeded', 'failed', 'superseded')"
"""The ``runs.status`` CHECK constraint (also spelled out by the migrations)."""

ONE_SUCCEEDED_WHERE = "status = 'succeeded'"
"""Predicate of the partial unique index that allows one succeeded run per
(kind, campaign_date, campaign); NULL dates or campaigns are never equal, so runs
without a campaign are not constrained."""

METRIC_SEGMENTS: tuple[str, ...] = ("all", *LIFECYCLES)
"""Segments a model metric may be reported for: all users or one lifecycle."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later Alembic migrations can refer to them."""

# 64-bit surrogate keys on PostgreSQL; SQLite autoincrements only INTEGER PRIMARY KEY.
_BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no timezone support, so the
    value is stored as naive UTC and UTC is re-attached on the way out.  Naive
    datetimes are refused on the way in: their timezone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the store; ``Base.metadata`` holds every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunRow(Base):
    """One execution of a job (nightly, coupons, push, install, ...).

    ``config`` and ``summary`` are JSON text (portable; PostgreSQL can cast them
    to ``jsonb``).  ``duration_s`` is written when the run closes, so views need
    no backend-specific date arithmetic.
    """

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(RUN_STATUS_CHECK, name="status"),
        Index("ix_runs_kind_started_at", "kind", "started_at"),
        Index(
            "uq_runs_one_succeeded",
            "kind",
            "campaign_date",
            "campaign",
            unique=True,
            sqlite_where=text(ONE_SUCCEEDED_WHERE),
            postgresql_where=text(ONE_SUCCEEDED_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    campaign_date: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    config: Mapped[str] = mapped_column(Text, default="{}")
    code_version: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    campaign: Mapped[str | None] = mapped_column(String(64))
    superseded_by: Mapped[int | None] = mapped_column(Integer)


class RunStageRow(Base):
    """Wall time of one stage of a run, in execution order (written when the run closes)."""

    __tablename__ = "run_stages"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_s: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))


class RunLockRow(Base):
    """Exclusive lease on a (job, campaign date, campaign): one row per run in progress.

    Inserted in its own transaction before a run starts (the primary key makes a
    second insert fail), refreshed by a heartbeat, deleted when the run ends.  A
    row whose process is dead or whose lease expired is stale and may be taken
    over.  Portable: plain rows, so it works alike on SQLite and PostgreSQL.
    """

    __tablename__ = "run_locks"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_date: Mapped[date] = mapped_column(Date, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ResultRowMixin:
    """Mixin: surrogate key plus the indexed foreign key to the owning run."""

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True, sort_order=-2)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True, sort_order=-1
    )


class ModelMetricRow(ResultRowMixin, Base):
    """One evaluation number: a model's metric on a dataset, domain, scene and segment
    (and seed).  ``scene`` is ``""`` where the dataset names none (rows written before
    revision 0005)."""

    __tablename__ = "model_metrics"

    model: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(
        String(16), default="target", server_default="target", info={"choices": DOMAINS}
    )
    scene: Mapped[str] = mapped_column(String(MAX_SCENE_LENGTH), default="", server_default="")
    segment: Mapped[str] = mapped_column(String(16), info={"choices": METRIC_SEGMENTS})
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)  # NULL when undefined (e.g. AUC, one class)
    seed: Mapped[int | None] = mapped_column(Integer)


class CouponAllocationRow(ResultRowMixin, Base):
    """The coupon option chosen for one user, with its predicted effect and cost.

    ``expected_value`` is the expected *incremental* conversions (uplift over no
    coupon); ``expected_cost`` is what the platform pays in expectation.
    """

    __tablename__ = "coupon_allocations"

    user_id: Mapped[int] = mapped_column(BigInteger, info={"min": 0})
    segment: Mapped[str] = mapped_column(String(16))
    option_id: Mapped[str] = mapped_column(String(64))
    coupon_type: Mapped[str] = mapped_column(String(32))
    face_value: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    expected_value: Mapped[float] = mapped_column(Float)
    expected_cost: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    expected_gmv: Mapped[float | None] = mapped_column(Float)


class PushScheduleRow(ResultRowMixin, Base):
    """One scheduled push: which message a user gets, at which hour of the day."""

    __tablename__ = "push_schedules"
    __table_args__ = (CheckConstraint("hour BETWEEN 0 AND 23", name="hour"),)

    user_id: Mapped[int] = mapped_column(BigInteger, info={"min": 0})
    message_id: Mapped[int] = mapped_column(BigInteger)
    industry: Mapped[str] = mapped_column(String(64))
    hour: Mapped[int] = mapped_column(Integer, info={"min": 0, "max": 23})
    expected_open: Mapped[float] = mapped_column(Float, info={"min": 0.0, "max": 1.0})


class ChannelPlanRow(ResultRowMixin, Base):
    """Spend on one acquisition channel in one named plan, with the funnel it buys.

    ``installs_lo``/``installs_hi`` bound the installs when the plan was solved
    robustly or with an interval forecast.
    """

    __tablename__ = "channel_plans"

    plan: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[int] = mapped_column(Integer)
    channel_name: Mapped[str] = mapped_column(String(128))
    spend: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    installs: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    logins: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    retained: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    installs_lo: Mapped[float | None] = mapped_column(Float)
    installs_hi: Mapped[float | None] = mapped_column(Float)


class ParetoPointRow(ResultRowMixin, Base):
    """One point of a trade-off front; metrics that do not apply to a front are NULL."""

    __tablename__ = "pareto_points"

    front: Mapped[str] = mapped_column(String(64))
    point_id: Mapped[int] = mapped_column(Integer)
    spend: Mapped[float | None] = mapped_column(Float)
    installs: Mapped[float | None] = mapped_column(Float)
    logins: Mapped[float | None] = mapped_column(Float)
    retained: Mapped[float | None] = mapped_column(Float)
    conversions: Mapped[float | None] = mapped_column(Float)
    gmv: Mapped[float | None] = mapped_column(Float)
    chosen: Mapped[bool] = mapped_column(
        Boolean(create_constraint=True, name="chosen"), default=False
    )


class ExperimentArmRow(ResultRowMixin, Base):
    """One arm of an analysed experiment: its log counts, costs, uplift on the test rows
    (DR, with its interval), the mean predicted uplift and what the plan gives it."""

    __tablename__ = "experiment_arms"

    arm: Mapped[str] = mapped_column(String(128))
    control: Mapped[bool] = mapped_column(Boolean(create_constraint=True, name="control"))
    rows: Mapped[int] = mapped_column(Integer, info={"min": 0})
    conversions: Mapped[int] = mapped_column(Integer, info={"min": 0})
    cost_per_conversion: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    cost_per_treatment: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    budget: Mapped[float | None] = mapped_column(Float, info={"min": 0.0})
    uplift: Mapped[float] = mapped_column(Float)
    uplift_lo: Mapped[float] = mapped_column(Float)
    uplift_hi: Mapped[float] = mapped_column(Float)
    predicted_uplift: Mapped[float] = mapped_column(Float)
    planned_users: Mapped[int] = mapped_column(Integer, info={"min": 0})
    planned_cost: Mapped[float] = mapped_column(Float, info={"min": 0.0})


class ExperimentValueRow(ResultRowMixin, Base):
    """A policy's off-policy value per user and spend (for all the log's users) on one split,
    by one estimator, with intervals; ``uplift`` (over the control for everyone) for DR;
    ``true_value`` only on simulated logs."""

    __tablename__ = "experiment_values"

    policy: Mapped[str] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(16), info={"choices": ("validation", "test")})
    estimator: Mapped[str] = mapped_column(String(16), info={"choices": ("ips", "snips", "dr")})
    budget: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    rows: Mapped[int] = mapped_column(Integer, info={"min": 0})
    value: Mapped[float | None] = mapped_column(Float)
    value_lo: Mapped[float | None] = mapped_column(Float)
    value_hi: Mapped[float | None] = mapped_column(Float)
    spend: Mapped[float | None] = mapped_column(Float)
    spend_lo: Mapped[float | None] = mapped_column(Float)
    spend_hi: Mapped[float | None] = mapped_column(Float)
    uplift: Mapped[float | None] = mapped_column(Float)
    uplift_lo: Mapped[float | None] = mapped_column(Float)
    uplift_hi: Mapped[float | None] = mapped_column(Float)
    true_value: Mapped[float | None] = mapped_column(Float)


class ExperimentAllocationRow(ResultRowMixin, Base):
    """The arm the experiment's plan gives one user, with its predicted uplift and cost."""

    __tablename__ = "experiment_allocations"

    user_id: Mapped[str] = mapped_column(String(128))
    arm: Mapped[str] = mapped_column(String(128))
    expected_uplift: Mapped[float] = mapped_column(Float)
    expected_cost: Mapped[float] = mapped_column(Float, info={"min": 0.0})
    conversion_prob: Mapped[float] = mapped_column(Float, info={"min": 0.0, "max": 1.0})


class PlanEstimateRow(ResultRowMixin, Base):
    """One off-policy estimate of a plan's value or spend, with its confidence interval.

    ``plan`` names the plan (``coupons``); ``quantity`` is ``value`` (incremental
    conversions), ``gmv`` (incremental order value) or ``spend:<budget>``;
    ``estimator`` is ``ips``, ``snips`` or ``dr``; ``n_rows``/``n_users`` the
    holdout rows and users it was estimated from; ``n_events`` (spend only, NULL for a
    contrast) the redemptions among the rows given the plan's arm: at 0 the interval is
    the bound the unseen redemptions allow (:mod:`predictors.off_policy`).
    """

    __tablename__ = "plan_estimates"

    plan: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[str] = mapped_column(String(96))
    estimator: Mapped[str] = mapped_column(String(16), info={"choices": ("ips", "snips", "dr")})
    estimate: Mapped[float] = mapped_column(Float)
    lower: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    n_rows: Mapped[int] = mapped_column(Integer, info={"min": 0})
    n_users: Mapped[int] = mapped_column(Integer, info={"min": 0})
    n_events: Mapped[int | None] = mapped_column(Integer, info={"min": 0})


RESULT_MODELS: tuple[type[Any], ...] = (
    ModelMetricRow,
    CouponAllocationRow,
    PushScheduleRow,
    ChannelPlanRow,
    ParetoPointRow,
    ExperimentArmRow,
    ExperimentValueRow,
    ExperimentAllocationRow,
    PlanEstimateRow,
)
"""Tables a :class:`growth.store.RunWriter` fills, in write order."""

RESULT_TABLES: dict[str, Table] = {m.__tablename__: m.__table__ for m in RESULT_MODELS}
"""Result tables by name."""

TABLE_NAMES: tuple[str, ...] = ("runs", *RESULT_TABLES, "run_stages", "run_locks")
"""Every table of the store."""
