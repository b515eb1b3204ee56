"""Install control in the nightly job: fit channel curves, split the budget, trace the front.

Curves are fitted from ``channel_history`` (Hill curves with uncertainty, login
and next-day retention rates); the budget split maximises the configured
objective (``retained`` by default) with a certificate; the Pareto front
between installs and next-day retained users shows the operator what trading
one for the other costs.  On a simulated world the split is also scored on the
true curves against the oracle split (optimised on the true curves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.campaigns.settings import InstallSettings
from growth.data.dataset import Dataset
from optimizers.install import (
    ChannelModels,
    HillCurve,
    InstallPlan,
    ParetoFront,
    fit_channels,
    optimize_installs,
    pareto_front,
)

FRONT = "installs_vs_retained"


@dataclass
class InstallOutcome:
    """The certified budget split, the installs-versus-retained front and the split's forecast."""

    models: ChannelModels
    plan: InstallPlan
    front: ParetoFront
    forecast: pd.DataFrame  # per channel + 'total': point forecast and intervals
    channel_names: dict[int, str]
    settings: InstallSettings

    def channel_plan_frame(self) -> pd.DataFrame:
        """Store rows: the optimal split (with install intervals) and every Pareto point's split."""
        rows = []
        fc = self.forecast
        for channel in self.plan.spend.index:
            rows.append(
                {
                    "plan": f"max_{self.plan.objective_name}",
                    "channel_id": int(channel),
                    "channel_name": self.channel_names[int(channel)],
                    "spend": float(self.plan.spend[channel]),
                    "installs": float(self.plan.installs[channel]),
                    "logins": float(self.plan.logins[channel]),
                    "retained": float(self.plan.retained[channel]),
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
        target = self.plan.totals
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


def plan_install(dataset: Dataset, settings: InstallSettings, *, seed: int = 0) -> InstallOutcome:
    """Fit the channels' curves from history and optimise the budget split."""
    if dataset.channel_history is None or dataset.channels is None:
        raise ValueError("install control needs the channels and channel_history tables")
    models = fit_channels(dataset.channel_history)
    plan = optimize_installs(models, settings.budget, objective=settings.objective)
    if plan.status == "infeasible":
        raise ValueError(f"install control is infeasible: {plan.message}")
    front = pareto_front(
        models, settings.budget, ("installs", "retained"), n_points=settings.pareto_points
    )
    forecast = models.forecast(plan.spend.to_dict(), seed=seed)
    names = dict(
        zip(
            dataset.channels["channel_id"].astype(int),
            dataset.channels["name"].astype(str),
            strict=True,
        )
    )
    return InstallOutcome(models, plan, front, forecast, names, settings)


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


def score_against_truth(world, outcome: InstallOutcome) -> pd.DataFrame:
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
        "platform": outcome.plan.spend.reindex(ids).fillna(0.0).to_numpy(),
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
