"""Write a :class:`~growth.data.dataset.Dataset` to a folder and read it back, validated.

A dataset folder holds one file per present table, ``<table>.parquet`` or
``<table>.csv``, plus ``manifest.json``::

    {"name": "world-7", "format": "parquet", "schema_version": 1,
     "tables": {"users": 1000, "items": 400, ...},
     "files": {"users": "users.parquet", ...}}

Writing validates first, so an invalid dataset never lands on disk.  Reading uses the
manifest when there is one (its format, its table list, and its row counts as a check
against truncated files) and otherwise looks for ``<table>.parquet`` / ``<table>.csv``.
Every table read is validated with :func:`growth.data.validation.validate_dataset`, with
error messages naming the file, and by default also with
:func:`~growth.data.validation.check_plannable` (the nightly job could plan from it).
Files are opened before they are judged: anything but a regular file (a FIFO, a
device, a folder) is refused by name rather than read (a FIFO would block forever),
and a CSV header naming a column twice is refused (pandas would rename it ``a.1``).  A dataset written as CSV reads back equal to the one
written as parquet: CSV columns are parsed per the schema (text columns keep ``""``
and a literal ``"NA"``; multi-valued ``_tags``/``_seq`` columns are never NaN; floats
use pandas' round-trip float parsing).

Example
-------
>>> import tempfile
>>> from growth.world import WorldConfig, generate_world
>>> ds = generate_world(WorldConfig(n_users=300, seed=7)).dataset
>>> folder = write_dataset(ds, tempfile.mkdtemp(), format="csv")
>>> again = read_dataset(folder)
>>> len(again.users), sorted(again.tables()) == sorted(ds.tables())
(300, True)
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pandas as pd
from pyarrow import ArrowException

from growth.data.dataset import Dataset
from growth.data.schema import MULTI_SUFFIXES, TABLES, TableSchema
from growth.data.validation import DataValidationError, check_plannable, validate_dataset

__all__ = ["MANIFEST_NAME", "SCHEMA_VERSION", "read_dataset", "read_table", "write_dataset"]

SCHEMA_VERSION = 1
"""Version of the on-disk format written to ``manifest.json``; bump on incompatible changes."""

MANIFEST_NAME = "manifest.json"
Format = Literal["parquet", "csv"]
_FORMATS: tuple[str, ...] = ("parquet", "csv")
# Text that means "missing" in a numeric/datetime CSV column (pandas writes NaN as "").
_NA_TEXT = ["", "NaN", "nan", "NA", "N/A", "NULL", "null", "None", "NaT"]


def write_dataset(ds: Dataset, folder: str | Path, *, format: Format = "parquet") -> Path:
    """Validate ``ds`` and write it to ``folder`` (created if needed); return the folder.

    Args:
        ds: the dataset; it is validated with :func:`validate_dataset` first.
        folder: destination folder.  Existing table files of the same names are replaced.
        format: ``"parquet"`` (default; typed, compact) or ``"csv"`` (human-readable).

    Returns:
        The folder as a :class:`~pathlib.Path`.
    """
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {list(_FORMATS)}, got {format!r}")
    checked = validate_dataset(ds)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    for name, frame in checked.tables().items():
        path = out / f"{name}.{format}"
        if format == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        files[name] = path.name
        rows[name] = len(frame)
    manifest: dict[str, Any] = {
        "name": checked.name,
        "format": format,
        "schema_version": SCHEMA_VERSION,
        "tables": rows,
        "files": files,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _open(path: Path) -> BinaryIO:
    """``path`` opened for reading; a DataValidationError names it unless it is a regular file.

    The file is opened without blocking and judged by the opened handle, so a FIFO
    (which would wait for a writer forever) or a device is refused, never read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DataValidationError(f"cannot open: {exc.strerror}", file=str(path)) from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, device or socket"
        raise DataValidationError(f"is {kind}, not a regular file", file=str(path))
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST_NAME
    if not path.exists() and not path.is_symlink():
        return None
    with _open(path) as handle:
        data = handle.read()
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataValidationError(f"not valid JSON ({exc})", file=str(path)) from exc
    if not isinstance(manifest, dict):
        raise DataValidationError("expected a JSON object", file=str(path))
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DataValidationError(
            f"schema_version {version!r} is not supported (this code reads {SCHEMA_VERSION})",
            file=str(path),
            column="schema_version",
        )
    fmt = manifest.get("format")
    if fmt not in _FORMATS:
        raise DataValidationError(
            f"format {fmt!r} is not one of {list(_FORMATS)}", file=str(path), column="format"
        )
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not set(tables) <= set(TABLES):
        raise DataValidationError(
            f"'tables' must map table names {list(TABLES)} to row counts, got {tables!r}",
            file=str(path),
            column="tables",
        )
    return manifest


def _csv_header(handle: BinaryIO, path: Path) -> list[str]:
    """The column names of a CSV file (the handle is rewound); duplicates are refused."""
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    try:
        header = next(csv.reader(text), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataValidationError(f"cannot read the CSV header: {exc}", file=str(path)) from exc
    finally:
        text.detach()
    handle.seek(0)
    if not header:
        raise DataValidationError("the file is empty: no header row", file=str(path))
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataValidationError(
                "column appears more than once in the header", file=str(path), column=name
            )
        seen.add(name)
    return header


def _csv_options(
    header: list[str], schema: TableSchema, *, floats_as_text: bool = False
) -> dict[str, Any]:
    """Per-column dtype and NA handling so CSV reads back exactly what was written.

    ``floats_as_text`` reads float columns as text, for the validation engine to parse
    and to name the cell that is not a number.
    """
    dtype: dict[str, Any] = {}
    na_values: dict[str, list[str]] = {}
    for name in header:
        try:
            column = schema.column(name)
            kind, nullable = column.kind, column.nullable
        except KeyError:
            if schema.feature_prefixes and name.startswith(schema.feature_prefixes):
                kind, nullable = ("multi" if name.endswith(MULTI_SUFFIXES) else "float"), True
            else:
                kind, nullable = "unknown", True
        if kind == "multi":
            dtype[name] = str  # "" is the empty list, never NaN; "7" stays text
        elif kind == "str":
            dtype[name] = str
            if nullable:
                na_values[name] = [""]
        elif kind == "float":
            dtype[name] = str if floats_as_text else float
            na_values[name] = _NA_TEXT
        else:  # int (may hold NaN when nullable), bool, datetime, unknown: parse, then validate
            na_values[name] = _NA_TEXT
    return {
        "dtype": dtype,
        "na_values": na_values,
        "keep_default_na": False,
    }


def _read_table(path: Path, schema: TableSchema, fmt: str) -> pd.DataFrame:
    with _open(path) as handle:
        try:
            if fmt == "parquet":
                return pd.read_parquet(handle)
            header = _csv_header(handle, path)
            try:
                return pd.read_csv(handle, encoding="utf-8", **_csv_options(header, schema))
            except ValueError:  # a float column holding text: validation will name the cell
                handle.seek(0)
                options = _csv_options(header, schema, floats_as_text=True)
                return pd.read_csv(handle, encoding="utf-8", **options)
        except DataValidationError:
            raise
        except (ValueError, OSError, ArrowException) as exc:
            raise DataValidationError(f"cannot read {fmt} table: {exc}", file=str(path)) from exc


def read_table(path: str | Path, schema: TableSchema) -> pd.DataFrame:
    """Read one ``.parquet`` or ``.csv`` table file as the dataset reader does (not validated).

    Only regular files are opened, a CSV header naming a column twice is refused, and
    CSV columns the schema names are parsed per their kind; errors name the file.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    if fmt not in _FORMATS:
        raise DataValidationError(f"expected a .parquet or .csv file, got {fmt!r}", file=str(path))
    return _read_table(path, schema, fmt)


def read_dataset(folder: str | Path, *, plannable: bool = True) -> Dataset:
    """Read the dataset in ``folder`` and validate it; errors name the file at fault.

    The format comes from ``manifest.json`` when present, else from which of
    ``users.parquet`` / ``users.csv`` exists.  A missing required table raises a
    :class:`DataValidationError` naming the expected file.  ``plannable`` (default)
    also requires what the nightly job needs to plan from the data
    (:func:`~growth.data.validation.check_plannable`); ``False`` checks the format
    only (a predictor benchmark such as MovieLens, which has no coupons).
    """
    root = Path(folder)
    try:
        is_folder = stat.S_ISDIR(root.stat().st_mode)
    except FileNotFoundError:
        raise DataValidationError("dataset folder does not exist", file=str(root)) from None
    except OSError as exc:
        raise DataValidationError(f"cannot open: {exc.strerror}", file=str(root)) from None
    if not is_folder:
        raise DataValidationError("dataset folder is not a folder", file=str(root))
    manifest = _read_manifest(root)
    if manifest is not None:
        fmt = manifest["format"]
        names = [n for n in TABLES if n in manifest["tables"]]
        missing = [n for n, s in TABLES.items() if s.required and n not in names]
        if missing:
            raise DataValidationError(
                f"required table(s) {missing} are not listed in 'tables'",
                file=str(root / MANIFEST_NAME),
                column="tables",
            )
    else:
        found = [f for f in _FORMATS if (root / f"users.{f}").exists()]
        if len(found) > 1:
            raise DataValidationError(
                f"both users.parquet and users.csv exist and there is no {MANIFEST_NAME} "
                "to say which format to read",
                file=str(root),
            )
        fmt = found[0] if found else "parquet"
        names = [n for n, s in TABLES.items() if s.required or (root / f"{n}.{fmt}").exists()]
    frames: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    for name in names:
        path = root / f"{name}.{fmt}"
        if not path.exists() and not path.is_symlink():
            raise DataValidationError(f"required table {name!r} is missing", file=str(path))
        frames[name] = _read_table(path, TABLES[name], fmt)
        files[name] = str(path)
        if manifest is not None and len(frames[name]) != manifest["tables"][name]:
            raise DataValidationError(
                f"has {len(frames[name])} rows but {MANIFEST_NAME} says "
                f"{manifest['tables'][name]} (truncated or replaced file?)",
                file=str(path),
            )
    name = manifest.get("name", root.name) if manifest is not None else root.name
    dataset = validate_dataset(Dataset(**frames, name=str(name)), files=files)
    if plannable:
        check_plannable(dataset, files=files)
    return dataset
