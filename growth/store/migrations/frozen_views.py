"""View SQL frozen per schema revision, for the migrations that create or restore it.

A migration must keep describing the schema of its revision even after
:mod:`growth.store.views` moves on, so each revision's view bodies live here.
``VIEWS_V3`` is the head: a test checks it equals :data:`growth.store.views.VIEWS`.
"""

from __future__ import annotations

VIEWS_V1: dict[str, str] = {
    "v_runs": """
SELECT r.id AS run_id, r.kind, r.campaign_date, r.status,
       r.started_at, r.finished_at, r.duration_s,
       r.code_version, r.operator, r.error, r.config, r.summary
FROM runs r
""",
    "v_coupon_by_segment_type": """
SELECT a.run_id, r.campaign_date, a.segment, a.coupon_type,
       COUNT(DISTINCT a.user_id) AS users,
       SUM(a.expected_cost) AS spend,
       SUM(a.expected_value) AS expected_incremental_conversions,
       SUM(a.expected_gmv) AS expected_gmv,
       SUM(a.expected_cost) / NULLIF(SUM(a.expected_value), 0)
           AS cost_per_incremental_conversion
FROM coupon_allocations a
JOIN runs r ON r.id = a.run_id
WHERE r.status = 'succeeded'
GROUP BY a.run_id, r.campaign_date, a.segment, a.coupon_type
""",
    "v_push_by_hour_industry": """
SELECT p.run_id, r.campaign_date, p.hour, p.industry,
       COUNT(*) AS pushes,
       COUNT(DISTINCT p.user_id) AS users,
       SUM(p.expected_open) AS expected_opens,
       AVG(p.expected_open) AS expected_open_rate
FROM push_schedules p
JOIN runs r ON r.id = p.run_id
WHERE r.status = 'succeeded'
GROUP BY p.run_id, r.campaign_date, p.hour, p.industry
""",
    "v_channel_plans": """
SELECT c.run_id, r.campaign_date, c.plan, c.channel_id, c.channel_name,
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
WHERE r.status = 'succeeded'
GROUP BY c.run_id, r.campaign_date, c.plan, c.channel_id, c.channel_name
""",
    "v_pareto_points": """
SELECT p.run_id, r.kind, r.campaign_date, p.front, p.point_id,
       p.spend, p.installs, p.logins, p.retained, p.conversions, p.gmv, p.chosen
FROM pareto_points p
JOIN runs r ON r.id = p.run_id
WHERE r.status = 'succeeded'
""",
    "v_model_metrics": """
SELECT m.run_id, r.campaign_date, m.model, m.dataset, m.segment, m.metric,
       AVG(m.value) AS value,
       MIN(m.value) AS min_value,
       MAX(m.value) AS max_value,
       COUNT(m.value) AS n_values
FROM model_metrics m
JOIN runs r ON r.id = m.run_id
WHERE r.status = 'succeeded'
GROUP BY m.run_id, r.campaign_date, m.model, m.dataset, m.segment, m.metric
""",
}
"""Views of revision 0001 (initial schema)."""

VIEWS_V2: dict[str, str] = {
    "v_runs": """
SELECT r.id AS run_id, r.kind, r.campaign_date, r.campaign, r.status,
       r.started_at, r.finished_at, r.duration_s,
       r.code_version, r.operator, r.error, r.config, r.summary, r.superseded_by
FROM runs r
""",
    "v_coupon_by_segment_type": """
SELECT a.run_id, r.campaign_date, r.campaign, a.segment, a.coupon_type,
       COUNT(DISTINCT a.user_id) AS users,
       SUM(a.expected_cost) AS spend,
       SUM(a.expected_value) AS expected_incremental_conversions,
       SUM(a.expected_gmv) AS expected_gmv,
       SUM(a.expected_cost) / NULLIF(SUM(a.expected_value), 0)
           AS cost_per_incremental_conversion
FROM coupon_allocations a
JOIN runs r ON r.id = a.run_id
WHERE r.status = 'succeeded'
GROUP BY a.run_id, r.campaign_date, r.campaign, a.segment, a.coupon_type
""",
    "v_push_by_hour_industry": """
SELECT p.run_id, r.campaign_date, r.campaign, p.hour, p.industry,
       COUNT(*) AS pushes,
       COUNT(DISTINCT p.user_id) AS users,
       SUM(p.expected_open) AS expected_opens,
       AVG(p.expected_open) AS expected_open_rate
FROM push_schedules p
JOIN runs r ON r.id = p.run_id
WHERE r.status = 'succeeded'
GROUP BY p.run_id, r.campaign_date, r.campaign, p.hour, p.industry
""",
    "v_channel_plans": """
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
WHERE r.status = 'succeeded'
GROUP BY c.run_id, r.campaign_date, r.campaign, c.plan, c.channel_id, c.channel_name
""",
    "v_pareto_points": """
SELECT p.run_id, r.kind, r.campaign_date, r.campaign, p.front, p.point_id,
       p.spend, p.installs, p.logins, p.retained, p.conversions, p.gmv, p.chosen
FROM pareto_points p
JOIN runs r ON r.id = p.run_id
WHERE r.status = 'succeeded'
""",
    "v_model_metrics": """
SELECT m.run_id, r.campaign_date, r.campaign, m.model, m.dataset, m.segment, m.metric,
       AVG(m.value) AS value,
       MIN(m.value) AS min_value,
       MAX(m.value) AS max_value,
       COUNT(m.value) AS n_values
FROM model_metrics m
JOIN runs r ON r.id = m.run_id
WHERE r.status = 'succeeded'
GROUP BY m.run_id, r.campaign_date, r.campaign, m.model, m.dataset, m.segment, m.metric
""",
}
"""Views of revision 0002 (campaign, superseded runs)."""

V_MODEL_METRICS_V3 = """
SELECT m.run_id, r.campaign_date, r.campaign, m.model, m.dataset, m.domain, m.scene,
       m.segment, m.metric,
       AVG(m.value) AS value,
       MIN(m.value) AS min_value,
       MAX(m.value) AS max_value,
       COUNT(m.value) AS n_values
FROM model_metrics m
JOIN runs r ON r.id = m.run_id
WHERE r.status = 'succeeded'
GROUP BY m.run_id, r.campaign_date, r.campaign, m.model, m.dataset, m.domain, m.scene,
         m.segment, m.metric
"""

VIEWS_V3: dict[str, str] = {**VIEWS_V2, "v_model_metrics": V_MODEL_METRICS_V3}
"""Views of revision 0005 (model metrics per domain and scene)."""
