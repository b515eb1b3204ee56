"""Runs page and every page's Save button: store an operator's solve as a run, read a run's plan back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from growth.store import Store

RUN_KINDS = ("coupons", "push", "install", "experiment")

PLAN_TABLES = (
    "coupon_allocations",
    "push_schedules",
    "channel_plans",
    "pareto_points",
    "experiment_arms",
    "experiment_values",
    "experiment_allocations",
    "plan_estimates",
)


def save_run(
    db: Store,
    kind: str,
    operator: str,
    config: Mapping[str, Any],
    *,
    tables: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
) -> int:
    """Store an operator's solve as a run (one transaction) and return its id.

    ``tables`` maps a result table (one of :data:`PLAN_TABLES`) to its rows.
    """
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind must be one of {RUN_KINDS}, got {kind!r}")
    if not operator or not operator.strip():
        raise ValueError("operator name is empty; type your name to save the run")
    unknown = sorted(set(tables) - set(PLAN_TABLES))
    if unknown:
        raise ValueError(f"unknown result table(s) {unknown}; expected some of {PLAN_TABLES}")
    with db.run(kind=kind, config=dict(config), operator=operator.strip()) as run:
        for name, frame in tables.items():
            if frame is not None and len(frame):
                run.add(name, frame)
        run.summary = dict(summary)
    return run.id


def run_plan(db: Store, run_id: int) -> dict[str, pd.DataFrame]:
    """Every non-empty result table of one run, by table name."""
    db.get_run(run_id)  # raises LookupError naming a missing run
    out = {}
    for name in PLAN_TABLES:
        frame = db.read(name, run_id=run_id)
        if len(frame):
            out[name] = frame
    return out


def to_csv(frame: pd.DataFrame) -> bytes:
    """A frame as UTF-8 CSV bytes (for downloads)."""
    return frame.to_csv(index=False).encode("utf-8")
