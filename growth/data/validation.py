"""Check a whole dataset against :mod:`growth.data.schema`, naming the file, column and row at fault.

Every reader of the platform's data format goes through :func:`validate_dataset`: each
table passes :func:`~growth.data.table_check.validate_table` (the one row-validation
engine, which also coerces dtypes), then the rules that span tables are checked: keys
that reference another table, the coupon catalogue's control option and coupon kinds,
the acquisition funnel.  A bad file is rejected at the boundary with a message such as::

    exposures.parquet: column 'label', row 17: value 2 is above the maximum 1

rather than surfacing later as a shape error inside a predictor.

Example::

    >>> import pandas as pd
    >>> from growth.data.schema import EXPOSURES
    >>> frame = pd.DataFrame({"user_id": [1], "item_id": [2], "domain": ["target"],
    ...     "timestamp": ["2024-01-01"], "treatment": ["none"], "label": [2]})
    >>> validate_table(frame, EXPOSURES, file="exposures.csv")
    Traceback (most recent call last):
    ...
    growth.data.table_check.DataValidationError: exposures.csv: column 'label', row 0: value 2 is above the maximum 1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from growth.data.dataset import Dataset, decision_scene, exposure_scenes
from growth.data.schema import NO_COUPON, TABLES, Column, CouponType
from growth.data.table_check import DataValidationError, first_row, show, validate_table

__all__ = [
    "DataValidationError",
    "check_plannable",
    "validate_dataset",
    "validate_table",
]


def _check_reference(
    tables: Mapping[str, pd.DataFrame],
    table: str,
    column: Column,
    files: Mapping[str, str],
) -> None:
    assert column.references is not None
    ref_table, ref_column = column.references.split(".", 1)
    file = files.get(table, table)
    values = tables[table][column.name]
    if ref_table not in tables:
        raise DataValidationError(
            f"refers to {column.references}, but the dataset has no {ref_table!r} table",
            file=file,
            column=column.name,
        )
    known = tables[ref_table][ref_column]
    unknown = ~values.isin(known).to_numpy() & ~values.isna().to_numpy()
    row = first_row(unknown)
    if row is not None:
        raise DataValidationError(
            f"unknown {ref_column} {show(values.iloc[row])}: not found in "
            f"{files.get(ref_table, ref_table)} column {ref_column!r}",
            file=file,
            column=column.name,
            row=row,
        )


def _check_coupons(coupons: pd.DataFrame, file: str) -> None:
    is_none = (coupons["option_id"] == NO_COUPON).to_numpy()
    row = first_row(is_none)
    if row is None:
        raise DataValidationError(
            f"the control option {NO_COUPON!r} (type {CouponType.NONE.value!r}) is missing",
            file=file,
            column="option_id",
        )
    if coupons["type"].iloc[row] != CouponType.NONE.value:
        raise DataValidationError(
            f"option {NO_COUPON!r} must have type {CouponType.NONE.value!r}, "
            f"not {show(coupons['type'].iloc[row])}",
            file=file,
            column="type",
            row=row,
        )
    kinds = coupons["type"].to_numpy()
    threshold = coupons["threshold"].to_numpy(dtype=np.float64)
    row = first_row((kinds == CouponType.FULL_REDUCTION.value) & ~(threshold > 0.0))
    if row is not None:
        raise DataValidationError(
            f"full_reduction coupon {show(coupons['option_id'].iloc[row])} needs a threshold "
            f"> 0, got {show(threshold[row])}",
            file=file,
            column="threshold",
            row=row,
        )
    merchant = coupons["merchant_id"].isna().to_numpy()
    row = first_row((kinds == CouponType.MERCHANT.value) & merchant)
    if row is not None:
        raise DataValidationError(
            f"merchant coupon {show(coupons['option_id'].iloc[row])} needs a merchant_id",
            file=file,
            column="merchant_id",
            row=row,
        )


def _check_channel_history(history: pd.DataFrame, file: str) -> None:
    for smaller, larger in (("logins", "installs"), ("retained", "logins")):
        a = history[smaller].to_numpy()
        b = history[larger].to_numpy()
        row = first_row(a > b)
        if row is not None:
            raise DataValidationError(
                f"{smaller} {show(a[row])} exceeds {larger} {show(b[row])} "
                f"(the funnel must narrow: retained <= logins <= installs)",
                file=file,
                column=smaller,
                row=row,
            )


def validate_dataset(ds: Dataset, *, files: Mapping[str, str] | None = None) -> Dataset:
    """Validate every table of ``ds`` and the rules that span tables; return the coerced dataset.

    Checks, in order: each required table is present; each present table passes
    :func:`validate_table`; every ``references`` column only holds known keys; the
    coupon catalogue has the control option ``'none'`` of type ``'none'``, every
    ``full_reduction`` coupon has ``threshold > 0`` and every ``merchant`` coupon a
    ``merchant_id``; in ``channel_history``, ``retained <= logins <= installs``.

    Args:
        ds: the dataset.
        files: table name -> file path, used in error messages (``read_dataset`` passes
            the files it read); tables not listed are named by their table name.

    Raises:
        DataValidationError: naming the file, column and row of the first problem.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"expected a growth.data.dataset.Dataset, got {type(ds).__name__}")
    files = dict(files or {})
    present = ds.tables()
    for name, schema in TABLES.items():
        if schema.required and name not in present:
            raise DataValidationError(
                f"required table {name!r} is missing", file=files.get(name, name)
            )
    checked: dict[str, pd.DataFrame] = {}
    for name, frame in present.items():
        checked[name] = validate_table(frame, TABLES[name], file=files.get(name, name))
    for name in checked:
        for column in (*TABLES[name].columns, *TABLES[name].optional_columns):
            if column.references is not None and column.name in checked[name].columns:
                _check_reference(checked, name, column, files)
    _check_coupons(checked["coupons"], files.get("coupons", "coupons"))
    if "channel_history" in checked:
        _check_channel_history(
            checked["channel_history"], files.get("channel_history", "channel_history")
        )
    return replace(ds, **checked)


def check_plannable(ds: Dataset, *, files: Mapping[str, str] | None = None) -> None:
    """Refuse a valid dataset from which the nightly job could plan nothing, naming the table.

    A coupon plan needs users with candidate items (a ``candidates`` row) and a
    randomised trial to learn from: target-domain exposures of the decision scene (the
    most frequent target scene, :func:`~growth.data.dataset.decision_scene`), some under
    a coupon and some under the control ``'none'``, with conversions and non-conversions
    among them.
    Without them the job would train on nothing and plan nothing, and an empty plan
    must never look like a plan.

    Raises:
        DataValidationError: naming the file (and column) and why nothing can be planned.
    """
    files = dict(files or {})
    for name in ("users", "items", "candidates", "exposures"):
        if ds.tables()[name].empty:
            raise DataValidationError(
                "the table has no rows: the nightly job would have nothing to plan",
                file=files.get(name, name),
            )
    file = files.get("exposures", "exposures")
    scene = decision_scene(ds.exposures)
    if scene is None:
        raise DataValidationError(
            "no exposure of the target domain: there is no trial to learn a coupon's effect from",
            file=file,
            column="domain",
        )
    target = ds.exposures[
        ((ds.exposures["domain"] == "target") & (exposure_scenes(ds.exposures) == scene)).to_numpy()
    ]
    untreated = (target["treatment"] == NO_COUPON).to_numpy()
    for lacking, what in ((untreated.all(), "under a coupon"), ((~untreated).all(), "untreated")):
        if lacking:
            raise DataValidationError(
                f"no target-domain exposure of the decision scene {scene!r} is {what} (treatment {NO_COUPON!r} is the control): "
                "a coupon's effect cannot be learned without both",
                file=file,
                column="treatment",
            )
    labels = target["label"].to_numpy()
    if labels.min() == labels.max():
        raise DataValidationError(
            f"every target-domain exposure has label {int(labels[0])} in the decision scene "
            f"{scene!r}: "
            "a conversion model needs both conversions and non-conversions",
            file=file,
            column="label",
        )
