"""Experiment page and ``growth experiment``: read a randomised campaign log, analyse it, save it.

An experiment comes from a folder (:func:`load_experiment`), from uploaded files
(:func:`experiment_from_files`: written to a temporary folder and read exactly as
a folder is, so the same checks and messages apply) or from the app's simulated
world (:func:`world_experiment`, its randomised exposure log).  :func:`analyse`
runs :func:`growth.experiments.analyse_experiment`; :func:`save_experiment` stores
the report as one run (kind ``experiment``) in one transaction.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from growth.experiments import (
    LEARNERS,
    Experiment,
    ExperimentReport,
    ExperimentSettings,
    analyse_experiment,
    read_experiment,
    validate_experiment,
)
from growth.experiments import world_experiment as export_world
from growth.services.runs import save_run
from growth.store import Store
from growth.world import World

__all__ = [
    "LEARNERS",
    "ExperimentSettings",
    "analyse",
    "comparison",
    "comparison_text",
    "experiment_config",
    "experiment_from_files",
    "experiment_tables",
    "load_experiment",
    "save_experiment",
    "world_experiment",
]


def load_experiment(folder: str | Path) -> Experiment:
    """The validated experiment in ``folder`` (``log`` and ``arms``, CSV or parquet)."""
    return read_experiment(folder)


def experiment_from_files(files: Mapping[str, bytes]) -> Experiment:
    """An experiment from uploaded files: file name (``log.csv``, ``arms.parquet``, ...) -> bytes."""
    with tempfile.TemporaryDirectory(prefix="experiment-") as tmp:
        for name, data in files.items():
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
        return read_experiment(tmp)


def world_experiment(world: World) -> tuple[Experiment, object]:
    """The simulated world's randomised log as an experiment, and its truth (rows x arms)."""
    exported = export_world(world)
    exp = validate_experiment(exported.log, exported.arms, name=f"world-{world.config.seed}")
    return exp, exported.truth


def analyse(
    exp: Experiment,
    settings: ExperimentSettings,
    *,
    truth: object = None,
    stage: Callable[[str], None] | None = None,
) -> ExperimentReport:
    """Learn uplift per arm, choose a learner, plan under the budgets, value it off-policy."""
    return analyse_experiment(exp, settings, truth=truth, stage=stage)  # type: ignore[arg-type]


def experiment_tables(report: ExperimentReport) -> dict[str, pd.DataFrame]:
    """The report's rows by result table."""
    return {
        "experiment_arms": report.arms,
        "experiment_values": report.values,
        "experiment_allocations": report.allocations,
    }


def experiment_config(report: ExperimentReport) -> dict:
    """What the run was asked: the settings and the experiment's files."""
    s = report.settings
    return {
        "experiment": report.summary.get("experiment"),
        "files": report.summary.get("files"),
        "budget": s.budget,
        "outcome": s.outcome,
        "learners": list(s.learners),
        "split": list(s.split),
        "seed": s.seed,
        "level": s.level,
        "method": s.method,
    }


def save_experiment(db: Store, report: ExperimentReport, operator: str) -> int:
    """Store the report as one ``experiment`` run (rows and summary in one transaction)."""
    return save_run(
        db,
        "experiment",
        operator,
        experiment_config(report),
        tables=experiment_tables(report),
        summary=report.summary,
    )


def comparison(report: ExperimentReport) -> pd.DataFrame:
    """The plan against the baselines on the test rows, DR: value and uplift per user, spend."""
    v = report.values
    test = v[(v["split"] == "test") & (v["estimator"] == "dr")]
    cols = ["policy", "value", "value_lo", "value_hi", "uplift", "uplift_lo", "uplift_hi"]
    cols += ["spend", "spend_lo", "spend_hi", "true_value"]
    return test[cols].reset_index(drop=True)


def _spans(frame: pd.DataFrame, name: str, digits: int) -> pd.Series:
    """``value [lo, hi]`` text of column ``name`` and its ``_lo``/``_hi`` columns."""
    return frame.apply(
        lambda r: (
            f"{r[name]:.{digits}f} [{r[name + '_lo']:.{digits}f}, {r[name + '_hi']:.{digits}f}]"
        ),
        axis=1,
    )


def comparison_text(report: ExperimentReport) -> dict[str, pd.DataFrame]:
    """The comparison and the arms as short tables, each estimate with its interval in one cell."""
    table = comparison(report)
    policies = pd.DataFrame({"policy": table["policy"], "value/user": _spans(table, "value", 4)})
    policies["uplift/user"] = _spans(table, "uplift", 4)
    policies["spend"] = _spans(table, "spend", 0)
    if table["true_value"].notna().any():
        policies["true value"] = table["true_value"].round(4)
    arms = report.arms.assign(uplift=_spans(report.arms, "uplift", 4))
    cols = ["arm", "rows", "conversions", "uplift", "predicted_uplift", "planned_users"]
    return {"policies": policies, "arms": arms[[*cols, "planned_cost"]].round(4)}
