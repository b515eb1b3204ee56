"""Reading RecBole atomic files, the format MovieLens-100k is distributed in here.

An atomic file is tab-separated with typed headers (``user_id:token``, ``rating:float``);
the type suffixes are dropped and the columns a reader needs are validated like any table
of the dataset format, so errors name the file, column and row.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from growth.data.schema import TableSchema
from growth.data.validation import DataValidationError, validate_table


def read_atomic(path: Path, schema: TableSchema) -> pd.DataFrame:
    """Read a RecBole atomic file, strip the ``:type`` header suffixes, validate columns."""
    if not path.is_file():
        raise DataValidationError(
            "file not found (fetch MovieLens-100k with shared/data/fetch-movielens-100k)",
            file=str(path),
        )
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    wanted = [c.name for c in (*schema.columns, *schema.optional_columns) if c.name in frame]
    return validate_table(frame[wanted], schema, file=str(path))


def check_known(
    frame: pd.DataFrame, column: str, known: pd.Series, file: Path, other: Path
) -> None:
    """Raise naming the first row of ``frame[column]`` whose key is not in ``known`` (``other``)."""
    unknown = ~frame[column].isin(known).to_numpy()
    if unknown.any():
        row = int(np.argmax(unknown))
        raise DataValidationError(
            f"unknown {column} {frame[column].iloc[row]}: not in {other}",
            file=str(file),
            column=column,
            row=row,
        )
