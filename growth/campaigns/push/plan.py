"""Push campaign: learn open probabilities from the push log, schedule a day, score it.

The open model is LightGBM on the user's features, the message's industry and
the recommender's relevance, the hour, and how many pushes the user already
received that day.  For the schedule it is evaluated with no prior push; the
fatigue decay the optimizer applies to later pushes is the model's own average
ratio ``p(prior = 1) / p(prior = 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.push.audience import PushAudience, push_audience
from growth.campaigns.push.open_model import OpenRateRows
from growth.campaigns.settings import PushSettings
from growth.modeling.features import ConversionFeatures
from optimizers.push import PushProblem, PushSchedule, schedule_push


@dataclass
class PushPlan:
    """The day's certified schedule for an audience, with the settings and seed it was planned under."""

    audience: PushAudience
    schedule: PushSchedule
    decay: float
    open_model_auc: float
    settings: PushSettings
    seed: int
    open_model_metrics: pd.DataFrame | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run: the certificate, pushes, audience, open model."""
        return {
            **self.schedule.certificate_dict(),
            "pushes": len(self.schedule.pushes),
            "audience": len(self.audience.user_ids),
            "open_model_auc": self.open_model_auc,
            "fatigue_decay": self.decay,
            "open_model": self.open_model_summary(),
        }

    def open_model_summary(self) -> dict[str, Any]:
        """The open model's held-out metrics: ``all``, ``by_segment`` and ``by_hour`` records."""
        m = self.open_model_metrics
        if m is None:
            return {}
        keep = [c for c in m.columns if c != "by"]
        records = {by: m.loc[m["by"] == by, keep].to_dict("records") for by in m["by"].unique()}
        return {
            "all": records.get("all", [{}])[0],
            "by_segment": records.get("segment", []),
            "by_hour": records.get("hour", []),
        }

    def frame(self) -> pd.DataFrame:
        """The schedule as store rows: user_id, message_id, industry, hour, expected_open."""
        p = self.schedule.pushes
        users, slots = p["user"].to_numpy(), p["message"].to_numpy()
        return pd.DataFrame(
            {
                "user_id": self.audience.user_ids[users],
                "message_id": self.audience.message_ids[users, slots],
                "industry": self.audience.industry[users, slots],
                "hour": p["hour"].to_numpy(),
                "expected_open": p["value"].to_numpy(),
            }
        )


def push_problem(
    audience: PushAudience, open_prob: np.ndarray, decay: float, settings: PushSettings
) -> PushProblem:
    """The day's scheduling problem: ``open_prob`` (users, messages, hours) under the settings' limits.

    Every industry with a candidate gets the settings' minimum share of pushes;
    the hourly capacity is ``capacity_share`` of the audience.
    """
    industries = sorted(set(audience.industry[audience.mask].tolist()))
    share = {ind: settings.industry_min_share for ind in industries}
    if settings.industry_min_share * len(industries) > 1:
        raise ValueError(
            f"push.industry_min_share={settings.industry_min_share} for each of "
            f"{len(industries)} industries sums above 1; lower it"
        )
    industry = np.where(audience.mask, audience.industry, industries[0] if industries else "")
    return PushProblem(
        open_prob,
        industry,
        fatigue_cap=settings.fatigue_cap,
        min_gap=settings.min_gap,
        capacity=np.floor(settings.capacity_share * len(audience.user_ids)),
        industry_share=share,
        decay=decay,
        candidate_mask=audience.mask,
    )


def plan_push(features: ConversionFeatures, settings: PushSettings, *, seed: int) -> PushPlan:
    """Fit the open model, build the day's problem for the audience and solve it."""
    rows = OpenRateRows(features)
    model, metrics = rows.fit(seed=seed)
    audience = push_audience(features, max_users=settings.max_users, seed=seed)
    problem = push_problem(audience, rows.predict_hours(model, audience), model.decay_, settings)
    schedule = schedule_push(
        problem,
        time_limit_s=settings.time_limit_s,
        max_iter=settings.iterations,
        repair_every=settings.repair_every,
        seed=seed,
    )
    return PushPlan(
        audience=audience,
        schedule=schedule,
        decay=model.decay_,
        open_model_auc=float(metrics["auc"].iloc[0]),
        settings=settings,
        seed=seed,
        open_model_metrics=metrics,
    )
