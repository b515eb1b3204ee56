"""Read-only SQL views analysts query, and example queries over them.

Every view is plain SQL-92 (joins, ``GROUP BY``, ``SUM``/``COUNT``/``AVG``,
``NULLIF``), so the same DDL runs on SQLite and PostgreSQL.  Result views only
show rows of runs whose status is ``'succeeded'``; ``v_runs`` shows every run.

Idempotent re-runs: when a run for a (kind, campaign date, campaign) succeeds,
the earlier succeeded run for that key is marked ``'superseded'`` in the same
transaction (a partial unique index allows one succeeded run per key), so the
result views show exactly the latest succeeded run of each campaign and day;
superseded runs stay in ``v_runs`` (with ``superseded_by``) for audit.

The views are created by the Alembic migrations (``growth/store/migrations``),
which freeze each revision's SQL; the head revision's copy must equal ``VIEWS``.
Durations come from ``runs.duration_s`` (written when a run closes) because date
arithmetic is not portable between backends.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, text


@dataclass(frozen=True)
class View:
    """A named view: its ``SELECT`` body, the columns that order a ``read()``, and
    its float columns (so an all-NULL float column still reads back as NaN floats)."""

    name: str
    select: str
    order_by: tuple[str, ...]
    floats: tuple[str, ...] = ()
    doc: str = ""

    def create_sql(self) -> str:
        """``CREATE VIEW`` DDL for this view (the name is a constant, never user input)."""
        return f"CREATE VIEW {self.name} AS\n{self.select.strip()}"


_SUCCEEDED = "r.status = 'succeeded'"

V_RUNS = View(
    name="v_runs",
    doc="Run history, one row per run, with its duration in seconds.",
    select="""
SELECT r.id AS run_id, r.kind, r.campaign_date, r.campaign, r.status,
       r.started_at, r.finished_at, r.duration_s,
       r.code_version, r.operator, r.error, r.config, r.summary, r.superseded_by
FROM runs r
""",
    order_by=("run_id",),
    floats=("duration_s",),
)

V_COUPON_BY_SEGMENT_TYPE = View(
    name="v_coupon_by_segment_type",
    doc="Coupon plan per run, segment and coupon type: users, spend, incremental conversions, GMV.",
    select=f"""
SELECT a.run_id, r.campaign_date, r.campaign, a.segment, a.coupon_type,
       COUNT(DISTINCT a.user_id) AS users,
       SUM(a.expected_cost) AS spend,
       SUM(a.expected_value) AS expected_incremental_conversions,
       SUM(a.expected_gmv) AS expected_gmv,
       SUM(a.expected_cost) / NULLIF(SUM(a.expected_value), 0)
           AS cost_per_incremental_conversion
FROM coupon_allocations a
JOIN runs r ON r.id = a.run_id
WHERE {_SUCCEEDED}
GROUP BY a.run_id, r.campaign_date, r.campaign, a.segment, a.coupon_type
""",
    order_by=("run_id", "segment", "coupon_type"),
    floats=(
        "spend",
        "expected_incremental_conversions",
        "expected_gmv",
        "cost_per_incremental_conversion",
    ),
)

V_PUSH_BY_HOUR_INDUSTRY = View(
    name="v_push_by_hour_industry",
    doc="Push schedule per run, hour and industry: pushes, users reached, expected opens.",
    select=f"""
SELECT p.run_id, r.campaign_date, r.campaign, p.hour, p.industry,
       COUNT(*) AS pushes,
       COUNT(DISTINCT p.user_id) AS users,
       SUM(p.expected_open) AS expected_opens,
       AVG(p.expected_open) AS expected_open_rate
FROM push_schedules p
JOIN runs r ON r.id = p.run_id
WHERE {_SUCCEEDED}
GROUP BY p.run_id, r.campaign_date, r.campaign, p.hour, p.industry
""",
    order_by=("run_id", "hour", "industry"),
    floats=("expected_opens", "expected_open_rate"),
)

V_CHANNEL_PLANS = View(
    name="v_channel_plans",
    doc="Channel plans per run, plan and channel: spend, funnel, cost per install/retained user.",
    select=f"""
SELECT c.run_id, r.campaign_date, r.campaign, c.plan, c.channel_id, c.channel_name,
       SUM(c.spend) AS spend,
       SUM(c.installs) AS installs,
       SUM(c.logins) AS logins,
       SUM(c.retained) AS retained,
       SUM(c.installs_lo) AS installs_lo,
       SUM(c.installs_hi) AS installs_hi,
       SUM(c.spend) / NULLIF(SUM(c.installs), 0) AS cost_per_install,
       SUM(c.spend) / NULLIF(SUM(c.retained), 0) AS cost_per_retained
FROM channel_plans c
JOIN runs r ON r.id = c.run_id
WHERE {_SUCCEEDED}
GROUP BY c.run_id, r.campaign_date, r.campaign, c.plan, c.channel_id, c.channel_name
""",
    order_by=("run_id", "plan", "channel_id"),
    floats=(
        "spend",
        "installs",
        "logins",
        "retained",
        "installs_lo",
        "installs_hi",
        "cost_per_install",
        "cost_per_retained",
    ),
)

V_PARETO_POINTS = View(
    name="v_pareto_points",
    doc="Points of every trade-off front, with the run's kind and date; 'chosen' marks the plan used.",
    select=f"""
SELECT p.run_id, r.kind, r.campaign_date, r.campaign, p.front, p.point_id,
       p.spend, p.installs, p.logins, p.retained, p.conversions, p.gmv, p.chosen
FROM pareto_points p
JOIN runs r ON r.id = p.run_id
WHERE {_SUCCEEDED}
""",
    order_by=("run_id", "front", "point_id"),
    floats=("spend", "installs", "logins", "retained", "conversions", "gmv"),
)

V_MODEL_METRICS = View(
    name="v_model_metrics",
    doc=(
        "Model metrics per run, model, dataset, domain, scene, segment and metric: mean "
        "over seeds ('value'), min, max and the number of non-null values."
    ),
    select=f"""
SELECT m.run_id, r.campaign_date, r.campaign, m.model, m.dataset, m.domain, m.scene,
       m.segment, m.metric,
       AVG(m.value) AS value,
       MIN(m.value) AS min_value,
       MAX(m.value) AS max_value,
       COUNT(m.value) AS n_values
FROM model_metrics m
JOIN runs r ON r.id = m.run_id
WHERE {_SUCCEEDED}
GROUP BY m.run_id, r.campaign_date, r.campaign, m.model, m.dataset, m.domain, m.scene,
         m.segment, m.metric
""",
    order_by=("run_id", "model", "dataset", "domain", "scene", "segment", "metric"),
    floats=("value", "min_value", "max_value"),
)

VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        V_RUNS,
        V_COUPON_BY_SEGMENT_TYPE,
        V_PUSH_BY_HOUR_INDUSTRY,
        V_CHANNEL_PLANS,
        V_PARETO_POINTS,
        V_MODEL_METRICS,
    )
}
"""Every analyst view by name."""

VIEW_NAMES: tuple[str, ...] = tuple(VIEWS)


def create_views(bind: Engine | Connection, *, replace: bool = False) -> list[str]:
    """Create the views that are missing (all of them, dropping first, if ``replace``).

    Idempotent; ``DROP VIEW IF EXISTS`` and ``CREATE VIEW`` are valid on both
    SQLite and PostgreSQL.  Returns the names of the views created.
    """
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return create_views(conn, replace=replace)
    existing = set(inspect(bind).get_view_names())
    created = []
    for view in VIEWS.values():
        if view.name in existing and not replace:
            continue
        if view.name in existing:
            bind.execute(text(f"DROP VIEW IF EXISTS {view.name}"))
        bind.execute(text(view.create_sql()))
        created.append(view.name)
    return created


# Example analyst queries (README-ready).  Values are bound parameters
# (``:run_id``, ``:model``, ``:metric``), never formatted into the SQL; run them with
# ``Store.query(sql, params)`` or any SQL client that binds parameters.
EXAMPLE_QUERIES: dict[str, str] = {
    # Latest coupon plan: where the money goes and what one incremental conversion costs.
    "coupon_plan_latest_run": """
SELECT segment, coupon_type, users, spend,
       expected_incremental_conversions, cost_per_incremental_conversion
FROM v_coupon_by_segment_type
WHERE run_id = (SELECT MAX(run_id) FROM v_coupon_by_segment_type)
ORDER BY spend DESC, segment, coupon_type
""".strip(),
    # Best sending hour of each industry in one run (params: run_id).
    "push_best_hour_per_industry": """
SELECT industry, hour, pushes, expected_opens, expected_open_rate
FROM (
    SELECT industry, hour, pushes, expected_opens, expected_open_rate,
           ROW_NUMBER() OVER (PARTITION BY industry ORDER BY expected_opens DESC, hour)
               AS rank_in_industry
    FROM v_push_by_hour_industry
    WHERE run_id = :run_id
) ranked
WHERE rank_in_industry = 1
ORDER BY industry
""".strip(),
    # A model's metric over time, per segment, across succeeded runs (params: model, metric).
    "model_metric_history": """
SELECT m.campaign_date, m.run_id, m.segment, m.value, m.n_values, v.code_version
FROM v_model_metrics m
JOIN v_runs v ON v.run_id = m.run_id
WHERE m.model = :model AND m.metric = :metric
ORDER BY m.campaign_date, m.run_id, m.segment
""".strip(),
}
