"""Install control page: the channels table, fitted curves, the certified split and its front,
the cheapest budget for targets."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns import install as campaign
from growth.campaigns.install import InstallPlan, fit_channel_models
from growth.campaigns.settings import InstallSettings
from growth.data.dataset import Dataset
from optimizers.install import BudgetPlan, ChannelLimits, ChannelModels, cheapest_budget

LIMIT_COLUMNS = {"min_spend": "min_spend", "max_spend": "max_spend", "max_cpi": "cpi_max"}
"""Columns of the operator's channels table -> the :class:`ChannelLimits` bound they set."""


def channel_table(dataset: Dataset) -> pd.DataFrame:
    """The editable channels table: id, name, kind and (unset) spend bounds and CPI cap."""
    if dataset.channels is None:
        raise ValueError("this dataset has no channels table; install control needs one")
    ch = dataset.channels
    return pd.DataFrame(
        {
            "channel_id": ch["channel_id"].astype(int).to_numpy(),
            "name": ch["name"].astype(str).to_numpy(),
            "kind": ch["kind"].astype(str).to_numpy() if "kind" in ch else "",
            "min_spend": 0.0,
            "max_spend": np.nan,
            "max_cpi": np.nan,
        }
    )


def response_curves(
    models: ChannelModels,
    names: Mapping[Hashable, str],
    max_spend: float,
    *,
    n_points: int = 25,
    level: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """Fitted installs-vs-spend curve of every channel with its ``level`` interval.

    Long frame: channel, spend, installs, installs_lo, installs_hi (from
    :meth:`ChannelModels.forecast`, seeded Monte Carlo over the fit uncertainty).
    """
    if not math.isfinite(max_spend) or max_spend <= 0:
        raise ValueError(f"max_spend must be a positive number, got {max_spend}")
    frames = []
    for spend in np.linspace(max_spend / n_points, max_spend, n_points):
        fc = models.forecast(
            dict.fromkeys(models.channels, float(spend)), level=level, n_samples=300, seed=seed
        ).drop(index="total")
        frames.append(
            pd.DataFrame(
                {
                    "channel": [names.get(c, str(c)) for c in fc.index],
                    "spend": float(spend),
                    "installs": fc["installs"].to_numpy(),
                    "installs_lo": fc["installs_lo"].to_numpy(),
                    "installs_hi": fc["installs_hi"].to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def limits_from_table(
    table: pd.DataFrame | None, targets: Mapping[str, float] | None = None
) -> ChannelLimits:
    """The operator's channels table (``min_spend``, ``max_spend``, ``max_cpi`` per row, empty
    = no bound) as the optimizer's :class:`ChannelLimits`; errors name the row and column."""
    if table is None:
        return ChannelLimits(targets=dict(targets or {}))
    missing = [c for c in ("channel_id", *LIMIT_COLUMNS) if c not in table]
    if missing:
        raise ValueError(f"channels table lacks column(s) {missing}")
    bounds: dict[str, dict[int, float]] = {b: {} for b in LIMIT_COLUMNS.values()}
    for pos, row in enumerate(table.to_dict(orient="records")):
        cid = int(row["channel_id"])
        for column, bound in LIMIT_COLUMNS.items():
            value = _optional_float(row[column])
            if value is None:
                continue
            if value < 0 or (bound == "cpi_max" and value == 0):
                raise ValueError(
                    f"channels table row {pos} (channel {cid}): {column} must be "
                    f"{'> 0' if bound == 'cpi_max' else '>= 0'}, got {value}"
                )
            bounds[bound][cid] = value
        lo, hi = bounds["min_spend"].get(cid), bounds["max_spend"].get(cid)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(
                f"channels table row {pos} (channel {cid}): min_spend {lo} > max_spend {hi}"
            )
    bounds["min_spend"] = {k: v for k, v in bounds["min_spend"].items() if v > 0}
    return ChannelLimits(
        **{name: values or None for name, values in bounds.items()}, targets=dict(targets or {})
    )


def _optional_float(raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    value = float(raw)
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def clean_targets(targets: Mapping[str, float | None]) -> dict[str, float]:
    """Positive targets only (0 or empty means 'no target'); names must be funnel metrics."""
    out = {}
    for name, raw in targets.items():
        if name not in ("installs", "logins", "retained"):
            raise ValueError(f"unknown target {name!r}; use installs, logins or retained")
        value = _optional_float(raw)
        if value is not None and value < 0:
            raise ValueError(f"target {name} must be >= 0, got {value}")
        if value:
            out[name] = value
    return out


def plan_install(
    models: ChannelModels,
    names: Mapping[int, str],
    settings: InstallSettings,
    *,
    table: pd.DataFrame | None = None,
    targets: Mapping[str, float | None] | None = None,
    seed: int = 0,
) -> InstallPlan:
    """:func:`growth.campaigns.install.plan_install` under the operator's table and targets.

    An infeasible request is not an error: the plan carries the conflicts and the
    smallest sufficient budget (and an empty front) for the app to explain.
    """
    limits = limits_from_table(table, clean_targets(targets or {}))
    return campaign.plan_install(models, names, settings, limits=limits, seed=seed)


def cheapest_install_budget(
    models: ChannelModels,
    targets: Mapping[str, float | None],
    *,
    table: pd.DataFrame | None = None,
) -> BudgetPlan:
    """The least total daily spend meeting ``targets`` under the table's bounds."""
    goals = clean_targets(targets)
    if not goals:
        raise ValueError("give at least one positive target (installs, logins or retained)")
    return cheapest_budget(models, goals, limits=limits_from_table(table))


__all__ = [
    "InstallPlan",
    "channel_table",
    "cheapest_install_budget",
    "clean_targets",
    "fit_channel_models",
    "limits_from_table",
    "plan_install",
    "response_curves",
]
