"""Read and validate an experiment folder (see :mod:`growth.experiments.schema`).

:func:`read_experiment` finds ``log`` and ``arms`` (``.parquet`` or ``.csv``) in a
folder and :func:`validate_experiment` checks them with the platform's one
validation engine (:func:`~growth.data.table_check.validate_table`) plus the
cross-table rules, so a bad file fails with its file, column and row named::

    exp/log.csv: column 'arm', row 4: arm 'rp_9' is not in arms.csv (arms: ['none', 'rp_3'])

>>> import pandas as pd
>>> log = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "arm": ["none", "rp", "none", "rp"],
...                     "conversion": [0, 1, 1, 0], "age": [30.0, 41.0, 25.0, 52.0]})
>>> arms = pd.DataFrame({"arm": ["none", "rp"], "control": [True, False],
...                      "cost_per_conversion": [0.0, 3.0], "propensity": [0.5, 0.5]})
>>> exp = validate_experiment(log, arms, min_arm_rows=1)
>>> exp.arm_ids, exp.arm_index.tolist(), exp.numeric
(('none', 'rp'), [0, 1, 0, 1], ('age',))
>>> validate_experiment(log.assign(propensity=[0.5, 0.0, 0.5, 0.5]), arms, min_arm_rows=1)
Traceback (most recent call last):
...
growth.data.table_check.DataValidationError: log: column 'propensity', row 1: value 0 is not in (0, 1]: every row needs a positive probability of the arm it received
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from growth.data.io import read_table
from growth.data.schema import MAX_FEATURE, Column, TableSchema
from growth.data.table_check import DataValidationError, first_row, show, validate_table
from growth.experiments.schema import ARMS, LOG, RESERVED, TABLES

MIN_ARM_ROWS = 20
"""Fewest log rows an arm needs (each arm's outcome model learns from its own rows)."""
PROPENSITY_SUM_TOLERANCE = 1e-6
"""How far the arms table's design propensities may sum from 1."""


@dataclass(frozen=True)
class Experiment:
    """A validated randomised campaign log.

    ``arm_ids`` puts the control first (index 0), then the other arms in arms-table
    order; ``arm_index`` is each log row's arm as an index into ``arm_ids``;
    ``propensity`` each row's probability of its arm; ``cost_per_conversion``,
    ``cost_per_treatment`` and ``budget`` are per arm in ``arm_ids`` order (costs 0
    and budget ``inf`` where the table leaves them empty).
    """

    name: str
    log: pd.DataFrame
    arms: pd.DataFrame
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    arm_ids: tuple[str, ...]
    arm_index: np.ndarray
    propensity: np.ndarray
    cost_per_conversion: np.ndarray
    cost_per_treatment: np.ndarray
    budget: np.ndarray
    files: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> pd.DataFrame:
        """The feature columns of the log (numeric, then categorical)."""
        return self.log[[*self.numeric, *self.categorical]]

    @property
    def n_arms(self) -> int:
        return len(self.arm_ids)

    def outcome(self, name: str) -> np.ndarray:
        """One outcome column as float64; a ValueError names the columns there are."""
        if name not in ("conversion", "revenue", "visits") or name not in self.log:
            have = [c for c in ("conversion", "revenue", "visits") if c in self.log]
            raise ValueError(f"outcome {name!r} is not in the log; its outcomes are {have}")
        return self.log[name].to_numpy(dtype=np.float64)


def _feature_schema(log: pd.DataFrame, file: str) -> TableSchema:
    """LOG plus one nullable column per feature: numeric dtypes as floats, text as str."""
    extra = []
    for name in (str(c) for c in log.columns):
        if name in RESERVED:
            continue
        series = log[name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            raise DataValidationError(
                "datetime columns cannot be features; give a number (e.g. days since) or text",
                file=file,
                column=name,
            )
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series):
            extra.append(Column(name, "float", nullable=True, min=-MAX_FEATURE, max=MAX_FEATURE))
        else:
            extra.append(Column(name, "str", nullable=True))
    if not extra:
        raise DataValidationError(
            f"no feature columns: every column but {sorted(RESERVED)} is a feature", file=file
        )
    return TableSchema(LOG.name, LOG.columns, optional_columns=(*LOG.optional_columns, *extra))


def _check_arms(arms: pd.DataFrame, file: str) -> pd.DataFrame:
    """One control arm that costs nothing, at least two arms, design propensities summing to 1."""
    control = arms["control"].to_numpy(dtype=bool)
    if control.sum() != 1:
        row = None if not control.any() else int(np.flatnonzero(control)[1])
        raise DataValidationError(
            f"exactly one arm must be the control, found {int(control.sum())}",
            file=file,
            column="control",
            row=row,
        )
    if len(arms) < 2:
        raise DataValidationError("an experiment needs the control and at least one arm", file=file)
    for col in ("cost_per_conversion", "cost_per_treatment", "budget", "propensity"):
        if col not in arms:
            arms[col] = np.nan
    for col in ("cost_per_conversion", "cost_per_treatment"):
        arms[col] = arms[col].fillna(0.0)
        row = first_row(control & (arms[col].to_numpy() > 0))
        if row is not None:
            raise DataValidationError(
                "the control arm costs nothing (it is what a user gets without a treatment)",
                file=file,
                column=col,
                row=row,
            )
    design = arms["propensity"].to_numpy(dtype=np.float64)
    given = ~np.isnan(design)
    if given.any():
        row = first_row(~given | (design == 0))
        if row is not None:
            raise DataValidationError(
                f"value {show(arms['propensity'].iloc[row])} is not in (0, 1]: give every arm's "
                "design propensity, or none (then the log's propensity column)",
                file=file,
                column="propensity",
                row=row,
            )
        if abs(design.sum() - 1.0) > PROPENSITY_SUM_TOLERANCE:
            raise DataValidationError(
                f"design propensities sum to {design.sum():.6g}, not 1",
                file=file,
                column="propensity",
            )
    return arms


def _row_propensity(
    log: pd.DataFrame, arms: pd.DataFrame, arm_row: np.ndarray, files: dict[str, str]
) -> np.ndarray:
    """Each row's propensity: the log's column, else the arms table's design constant."""
    if "propensity" in log:
        p = log["propensity"].to_numpy(dtype=np.float64)
        row = first_row(p <= 0)
        if row is not None:
            raise DataValidationError(
                f"value {show(p[row])} is not in (0, 1]: every row needs a positive probability "
                "of the arm it received",
                file=files["log"],
                column="propensity",
                row=row,
            )
        return p
    design = arms["propensity"].to_numpy(dtype=np.float64)
    if np.isnan(design).any():
        raise DataValidationError(
            f"no propensity: give a 'propensity' column in {files['log']} (per row) or in "
            f"{files['arms']} (the design's constant per arm)",
            file=files["log"],
            column="propensity",
        )
    return design[arm_row]


def _check_arm_rows(
    arms: pd.DataFrame, arm_row: np.ndarray, conversion: np.ndarray, file: str, min_rows: int
) -> None:
    """Every arm has ``min_rows`` log rows with both outcomes (its model learns from them)."""
    for row, arm in enumerate(arms["arm"]):
        mine = arm_row == row
        n, conv = int(mine.sum()), int(conversion[mine].sum())
        if n < min_rows or conv == 0 or conv == n:
            raise DataValidationError(
                f"arm {arm!r} has {n} log rows and {conv} conversions; each arm needs at least "
                f"{min_rows} rows, with and without a conversion",
                file=file,
                column="arm",
                row=row,
            )


def validate_experiment(
    log: pd.DataFrame,
    arms: pd.DataFrame,
    *,
    name: str = "experiment",
    files: dict[str, str] | None = None,
    min_arm_rows: int = MIN_ARM_ROWS,
) -> Experiment:
    """Check ``log`` and ``arms`` (each against its schema, then together) into an
    :class:`Experiment`; a :class:`DataValidationError` names the file, column and row."""
    files = {**{n: n for n in TABLES}, **(files or {})}
    arms = _check_arms(validate_table(arms, ARMS, file=files["arms"]), files["arms"])
    log = validate_table(log, _feature_schema(log, files["log"]), file=files["log"])
    known = arms["arm"].tolist()
    row = first_row(~log["arm"].isin(known).to_numpy())
    if row is not None:
        raise DataValidationError(
            f"arm {show(log['arm'].iloc[row])} is not in {files['arms']} (arms: {known})",
            file=files["log"],
            column="arm",
            row=row,
        )
    arm_row = pd.Index(known).get_indexer(log["arm"])
    propensity = _row_propensity(log, arms, arm_row, files)
    conversion = log["conversion"].to_numpy()
    _check_arm_rows(arms, arm_row, conversion, files["arms"], min_arm_rows)
    control = int(np.flatnonzero(arms["control"].to_numpy(dtype=bool))[0])
    order = [control, *(i for i in range(len(arms)) if i != control)]  # control first
    position = np.empty(len(arms), dtype=np.int64)
    position[order] = np.arange(len(arms))
    ordered = arms.iloc[order].reset_index(drop=True)
    features = [str(c) for c in log.columns if c not in RESERVED]
    return Experiment(
        name=name,
        log=log,
        arms=ordered,
        numeric=tuple(c for c in features if log[c].dtype == np.float64),
        categorical=tuple(c for c in features if log[c].dtype != np.float64),
        arm_ids=tuple(ordered["arm"].astype(str)),
        arm_index=position[arm_row],
        propensity=propensity,
        cost_per_conversion=ordered["cost_per_conversion"].to_numpy(dtype=np.float64),
        cost_per_treatment=ordered["cost_per_treatment"].to_numpy(dtype=np.float64),
        budget=ordered["budget"].fillna(np.inf).to_numpy(dtype=np.float64),
        files=files,
    )


def _table_file(folder: Path, name: str) -> Path:
    """``<name>.parquet`` or ``<name>.csv`` in ``folder``: exactly one must be there."""
    found = [folder / f"{name}.{fmt}" for fmt in ("parquet", "csv")]
    present = [p for p in found if p.exists() or p.is_symlink()]
    if not present:
        raise DataValidationError(
            f"missing table {name!r}: expected {found[0].name} or {found[1].name}",
            file=str(folder / f"{name}.csv"),
        )
    if len(present) > 1:
        raise DataValidationError(
            f"both {found[0].name} and {found[1].name} are here; keep one", file=str(present[0])
        )
    return present[0]


def read_experiment(folder: str | Path, *, min_arm_rows: int = MIN_ARM_ROWS) -> Experiment:
    """Read and validate the experiment in ``folder`` (``log`` and ``arms``, parquet or CSV)."""
    root = Path(folder)
    try:
        if not stat.S_ISDIR(root.stat().st_mode):
            raise DataValidationError("experiment folder is not a folder", file=str(root))
    except FileNotFoundError:
        raise DataValidationError("experiment folder does not exist", file=str(root)) from None
    paths = {name: _table_file(root, name) for name in TABLES}
    frames = {name: read_table(path, TABLES[name]) for name, path in paths.items()}
    return validate_experiment(
        frames["log"],
        frames["arms"],
        name=root.resolve().name,
        files={name: str(path) for name, path in paths.items()},
        min_arm_rows=min_arm_rows,
    )


def write_experiment(
    log: pd.DataFrame, arms: pd.DataFrame, folder: str | Path, *, format: str = "csv"
) -> Path:
    """Write ``log`` and ``arms`` into ``folder`` in the experiment format (after validating)."""
    validate_experiment(log, arms, min_arm_rows=1)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("log", log), ("arms", arms)):
        path = out / f"{name}.{format}"
        if format == "parquet":
            frame.to_parquet(path, index=False)
        elif format == "csv":
            frame.to_csv(path, index=False)
        else:
            raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
    return out
