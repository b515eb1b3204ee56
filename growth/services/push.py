"""Push page: the day's schedule, its hour x industry heatmap and fatigue statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


__all__ = ["fatigue_stats", "plan_push", "push_heatmap"]
