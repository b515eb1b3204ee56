"""Install control: fit channel curves, split the budget, trace the front, score on the truth.

Curves are fitted from ``channel_history`` (Hill curves with uncertainty, login
and next-day retention rates); the budget split maximises the configured
objective (``retained`` by default) with a certificate; the Pareto front
between installs and next-day retained users shows the operator what trading
one for the other costs.  On a simulated world the split is also scored on the
true curves against the oracle split (optimised on the true curves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.settings import InstallSettings
from growth.data.dataset import Dataset
from optimizers.install import (
    BudgetSplit,
    ChannelLimits,
    ChannelModels,
    HillCurve,
    ParetoFront,
    fit_channels,
    optimize_installs,
    pareto_front,
)

FRONT = "installs_vs_retained"


@dataclass
class InstallPlan:
    """An install-control plan: the certified budget split, the installs-versus-retained
    front and the split's forecast, under the operator's limits.

    An infeasible request is a plan too (``feasible`` is False): the split
    carries the conflicting constraints and the smallest sufficient budget, the
    front is empty, so the app can explain it.
    """

    models: ChannelModels
    split: BudgetSplit
    front: ParetoFront
    forecast: pd.DataFrame  # per channel + 'total': point forecast and intervals
    channel_names: dict[int, str]
    settings: InstallSettings
    limits: ChannelLimits = field(default_factory=ChannelLimits)

    @property
    def feasible(self) -> bool:
        return self.split.status != "infeasible"

    def split_frame(self) -> pd.DataFrame:
        """The chosen split per channel (with install intervals when feasible)."""
        frame = self.split.to_frame()
        frame.insert(0, "channel", [self.channel_names[int(c)] for c in frame.index])
        if self.feasible:
            frame["installs_lo"] = self.forecast.loc[frame.index, "installs_lo"].to_numpy()
            frame["installs_hi"] = self.forecast.loc[frame.index, "installs_hi"].to_numpy()
        return frame

    def front_frame(self) -> pd.DataFrame:
        """Pareto points: spend, installs, logins, retained and certificate, one row each."""
        frame = self.front.to_frame()
        frame.insert(0, "point_id", np.arange(len(frame)))
        return frame

    def point_split(self, point_id: int) -> pd.DataFrame:
        """The channel split of Pareto point ``point_id``."""
        points = self.front.points
        if not 0 <= point_id < len(points):
            raise ValueError(f"point_id must be in [0, {len(points) - 1}], got {point_id}")
        frame = points[point_id].to_frame()
        frame.insert(0, "channel", [self.channel_names[int(c)] for c in frame.index])
        return frame

    def conflicts(self) -> pd.DataFrame:
        """Violated constraints of an infeasible request and their shortfall."""
        return pd.DataFrame(
            [(c.name, c.shortfall) for c in self.split.conflicts],
            columns=["constraint", "shortfall"],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run: certificate, totals, targets, conflicts."""
        s = self.split
        return {
            **s.certificate_dict(),
            "objective_name": s.objective_name,
            "budget_dual": s.budget_dual,
            "totals": s.totals,
            "pareto_points": len(self.front),
            "targets": dict(self.limits.targets),
            "conflicts": [{"name": c.name, "shortfall": c.shortfall} for c in s.conflicts],
            "min_budget": s.min_budget,
        }

    def channel_plan_frame(self) -> pd.DataFrame:
        """Store rows: the optimal split (with install intervals) and every Pareto point's split."""
        rows = []
        fc = self.forecast
        for channel in self.split.spend.index:
            rows.append(
                {
                    "plan": f"max_{self.split.objective_name}",
                    "channel_id": int(channel),
                    "channel_name": self.channel_names[int(channel)],
                    "spend": float(self.split.spend[channel]),
                    "installs": float(self.split.installs[channel]),
                    "logins": float(self.split.logins[channel]),
                    "retained": float(self.split.retained[channel]),
                    "installs_lo": float(fc.loc[channel, "installs_lo"]),
                    "installs_hi": float(fc.loc[channel, "installs_hi"]),
                }
            )
        for i, point in enumerate(self.front.points):
            for channel in point.spend.index:
                rows.append(
                    {
                        "plan": f"pareto_{i}",
                        "channel_id": int(channel),
                        "channel_name": self.channel_names[int(channel)],
                        "spend": float(point.spend[channel]),
                        "installs": float(point.installs[channel]),
                        "logins": float(point.logins[channel]),
                        "retained": float(point.retained[channel]),
                    }
                )
        return pd.DataFrame(rows)

    def pareto_frame(self) -> pd.DataFrame:
        """Store rows: one per Pareto point; ``chosen`` marks the point nearest the optimal plan."""
        values = self.front.to_frame()
        target = self.split.totals
        distance = (values["installs"] - target["installs"]).abs() / max(
            target["installs"], 1e-9
        ) + (values["retained"] - target["retained"]).abs() / max(target["retained"], 1e-9)
        return pd.DataFrame(
            {
                "front": FRONT,
                "point_id": np.arange(len(values)),
                "spend": values["spend"],
                "installs": values["installs"],
                "logins": values["logins"],
                "retained": values["retained"],
                "chosen": np.arange(len(values)) == int(distance.to_numpy().argmin()),
            }
        )

    def store_tables(self) -> dict[str, pd.DataFrame]:
        """The plan's store rows by result table (nothing for an infeasible request)."""
        if not self.feasible:
            return {}
        return {"channel_plans": self.channel_plan_frame(), "pareto_points": self.pareto_frame()}


def channel_names(dataset: Dataset) -> dict[int, str]:
    """Channel id -> name from the dataset's ``channels`` table."""
    if dataset.channels is None:
        raise ValueError("install control needs the channels table")
    ch = dataset.channels
    return dict(zip(ch["channel_id"].astype(int), ch["name"].astype(str), strict=True))


def fit_channel_models(dataset: Dataset) -> ChannelModels:
    """Hill response curves with intervals, fitted from ``channel_history``."""
    if dataset.channel_history is None:
        raise ValueError("install control needs the channel_history table")
    return fit_channels(dataset.channel_history)


def plan_install(
    models: ChannelModels,
    names: Mapping[int, str],
    settings: InstallSettings,
    *,
    limits: ChannelLimits | None = None,
    seed: int = 0,
) -> InstallPlan:
    """Split the budget for the settings' objective under ``limits``; trace the front.

    The front (installs versus retained users) is traced under the same limits;
    an infeasible request returns a plan with ``feasible`` False and no front.
    """
    limits = limits or ChannelLimits()
    split = optimize_installs(models, settings.budget, objective=settings.objective, limits=limits)
    if split.status == "infeasible":
        front = ParetoFront.empty(("installs", "retained"))
        forecast = pd.DataFrame()
    else:
        front = pareto_front(
            models,
            settings.budget,
            ("installs", "retained"),
            n_points=settings.pareto_points,
            limits=limits,
        )
        forecast = models.forecast(split.spend.to_dict(), seed=seed)
    names = {int(k): str(v) for k, v in names.items()}
    return InstallPlan(models, split, front, forecast, names, settings, limits)


def true_channel_models(world) -> ChannelModels:
    """The world's true curves and rates as :class:`ChannelModels` (channel ids 0..C-1)."""
    t = world.channel_truth
    ids = world.dataset.channels["channel_id"].astype(int).tolist()
    curves = {c: HillCurve(t.vmax[i], t.k[i], t.alpha[i]) for i, c in enumerate(ids)}
    return ChannelModels.from_curves(
        curves,
        login_rate={c: float(t.login_rate[i]) for i, c in enumerate(ids)},
        retention_rate={c: float(t.retention[i]) for i, c in enumerate(ids)},
    )


def score_against_truth(world, outcome: InstallPlan) -> pd.DataFrame:
    """The fitted plan, an equal split and the oracle plan, all on the true curves.

    The oracle splits the same budget for the same objective on the world's true
    curves and rates.
    """
    settings = outcome.settings
    ids = world.dataset.channels["channel_id"].astype(int).tolist()
    truth = world.channel_truth
    oracle = optimize_installs(
        true_channel_models(world), settings.budget, objective=settings.objective
    )
    splits = {
        "platform": outcome.split.spend.reindex(ids).fillna(0.0).to_numpy(),
        "equal_split": np.full(len(ids), settings.budget / len(ids)),
        "oracle": oracle.spend.reindex(ids).fillna(0.0).to_numpy(),
    }
    rows = {}
    for name, spend in splits.items():
        funnel = truth.expected(spend)
        rows[name] = {"spend": float(spend.sum()), **{k: float(v.sum()) for k, v in funnel.items()}}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "plan"
    return frame
