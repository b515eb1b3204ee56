"""Push page: the day's schedule, its hour x industry heatmap, fatigue statistics and the open model's quality."""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.campaigns.push.open_model import METRIC_COLUMNS
from growth.campaigns.push.plan import PushPlan, plan_push


def push_heatmap(plan: PushPlan) -> pd.DataFrame:
    """Pushes per hour (rows 0..23) and industry (columns)."""
    frame = plan.frame()
    table = pd.crosstab(frame["hour"], frame["industry"]).reindex(range(24), fill_value=0)
    table.index.name = "hour"
    return table


def fatigue_stats(plan: PushPlan) -> pd.DataFrame:
    """Users by number of pushes received in the day, with their share of the audience."""
    counts = np.asarray(plan.schedule.pushes_per_user)
    total = max(int(counts.sum()), 1)
    return pd.DataFrame(
        {"pushes": np.arange(len(counts)), "users": counts, "share": counts / total}
    )


def open_model_quality(plan: PushPlan, by: str) -> pd.DataFrame:
    """The open model on held-out pushes, ``by`` ``'segment'`` or ``'hour'`` (plus ``all``).

    Columns: the group, AUC, log loss, calibration error, the observed open rate
    and the mean prediction (their gap is the group's calibration bias), count.
    """
    if by not in ("segment", "hour"):
        raise ValueError(f"by must be 'segment' or 'hour'; got {by!r}")
    m = plan.open_model_metrics
    if m is None:
        return pd.DataFrame(columns=["group", *METRIC_COLUMNS])
    rows = m[m["by"].isin(["all", by])].drop(columns="by").reset_index(drop=True)
    rows = rows.rename(columns={"group": by})
    if by == "hour":
        rows = rows[rows["hour"] != "all"].assign(hour=lambda f: f["hour"].astype(int))
    return rows.reset_index(drop=True)


__all__ = ["fatigue_stats", "open_model_quality", "plan_push", "push_heatmap"]
