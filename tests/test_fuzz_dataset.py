"""Fuzzing the dataset reader: whatever is done to a valid dataset folder, ``read_dataset``
returns a dataset the platform can carry or raises a DataValidationError naming a file of
the folder (and the column and row where one is at fault); never another exception, never
a hang.

Each example writes a small valid world (CSV or parquet) and corrupts it once: one cell
set to a hostile value, a column dropped, doubled or renamed, a table emptied, rows
doubled, keys pointed nowhere, a file removed, replaced by garbage bytes, truncated,
turned into a folder or a FIFO, or the manifest broken.  A dataset that reads back is
checked for what the models and solvers need: bounded money, float32-safe features,
tokens within ``MAX_TOKEN``, and features that build.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growth.data.dataset import Dataset
from growth.data.io import MANIFEST_NAME, read_dataset, write_dataset
from growth.data.schema import (
    MAX_COUNT,
    MAX_FEATURE,
    MAX_MONEY,
    MAX_TOKEN,
    MULTI_SEPARATOR,
    MULTI_SUFFIXES,
    TABLES,
)
from growth.data.validation import DataValidationError, check_plannable, validate_dataset
from growth.modeling.features import ConversionFeatures
from growth.world import WorldConfig, generate_world

FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
HANG_S = 30  # an example that takes longer is a hang (a FIFO read blocks forever)

HOSTILE_TEXT = [
    "",
    " ",
    "abc",
    "NaN",
    "nan",
    "NA",
    "NULL",
    "None",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "3.5e38",
    "1e400",
    "-1",
    "1.5",
    "0x10",
    "1_000",
    "9" * 25,
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "16777216",
    "1||2",
    "|",
    "1|",
    "1|-2",
    "true",
    "yes",
    "2024-13-45",
    "9999-12-31T23:59:59",
    "0001-01-01",
    "2262-04-12",
    "[/x]",
    "[bold red]boom",
    "\x1b[2J\x1b[31mred",
    "\u202eevil",
    "a,b",
    'quote"inside',
    "line\nbreak",
    "\x00",
    "١٢٣",
    "x" * 5000,
]
HOSTILE_TYPED = [np.nan, np.inf, -np.inf, 1e308, -1e308, 3.5e38, 2**63 - 1, -(2**63), -1, 0.5, True]


@dataclass(frozen=True)
class Corruption:
    """One thing done to a valid dataset folder: ``kind`` on ``table``'s ``column``, ``row``."""

    kind: str
    table: str
    column: str = ""
    row: int = 0
    value: object = None
    fmt: str = "csv"

    def cell_level(self) -> bool:
        return self.kind == "cell"


@pytest.fixture(scope="module")
def world() -> Dataset:
    """A small valid world with every table (users, items, ..., channel history)."""
    cfg = WorldConfig(
        n_users=30,
        seed=5,
        n_items=40,
        n_categories=5,
        n_tags=6,
        n_merchants=3,
        n_push_messages=12,
        n_industries=2,
        n_channels=2,
        history_days=90,
    )
    return validate_dataset(generate_world(cfg).dataset)


class Hang(BaseException):
    """A read that never ends (a BaseException: no ``except OSError`` may swallow it)."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body runs longer than ``seconds``."""

    def _hang(signum: int, frame: object) -> None:
        raise Hang(f"read_dataset still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


KINDS = (
    "cell",
    "drop_column",
    "dup_column",
    "rename_column",
    "extra_column",
    "empty_table",
    "dup_rows",
    "dangling_key",
    "missing_file",
    "garbage",
    "truncate",
    "non_utf8",
    "folder",
    "fifo",
    "manifest",
    "manifest_counts",
)


@st.composite
def corruptions(draw, tables: dict[str, pd.DataFrame], kind: str) -> Corruption:
    """A random corruption ``kind`` of one table (or of the manifest) of ``tables``."""
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    table = draw(st.sampled_from(sorted(tables)))
    frame = tables[table]
    column = draw(st.sampled_from(list(frame.columns)))
    row = draw(st.integers(0, max(len(frame) - 1, 0)))
    pool = HOSTILE_TEXT if fmt == "csv" else HOSTILE_TEXT + HOSTILE_TYPED
    value: object = None
    if kind in ("cell", "extra_column"):
        value = draw(st.sampled_from(pool))
    elif kind == "garbage":
        value = draw(st.binary(min_size=0, max_size=64))
    elif kind == "truncate":
        value = draw(st.floats(0.0, 0.99))
    elif kind == "manifest":
        value = draw(
            st.sampled_from(
                [b"", b"{", b"[]", b'{"schema_version": 1}', b"\xff\xfe", b'{"format": "xml"}']
            )
        )
    return Corruption(kind, table, column, row, value, fmt)


def _rewrite(path: Path, frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
        return
    try:
        frame.to_parquet(path, index=False)
    except Exception:  # mixed types pyarrow cannot store: store the column as text
        frame.astype(str).to_parquet(path, index=False)


def _set_cell(frame: pd.DataFrame, c: Corruption) -> pd.DataFrame:
    out = frame.copy()
    values = out[c.column].to_numpy(dtype=object, copy=True)
    values[c.row] = c.value  # any object, lists included
    out[c.column] = pd.Series(values, index=out.index, dtype=object)
    return out


def corrupt(folder: Path, tables: dict[str, pd.DataFrame], c: Corruption) -> None:
    """Apply ``c`` to the dataset written in ``folder``."""
    path = folder / f"{c.table}.{c.fmt}"
    frame = tables[c.table]
    manifest_path = folder / MANIFEST_NAME
    if c.kind in ("missing_file", "folder", "fifo"):
        path.unlink()
        if c.kind == "folder":
            path.mkdir()
        elif c.kind == "fifo":
            os.mkfifo(path)
        return
    if c.kind in ("garbage", "truncate", "non_utf8"):
        data = path.read_bytes()
        if c.kind == "garbage":
            data = bytes(c.value)  # type: ignore[arg-type]
        elif c.kind == "truncate":
            data = data[: int(len(data) * float(c.value))]  # type: ignore[arg-type]
        else:
            middle = len(data) // 2
            data = data[:middle] + b"\xff\xfe\xc3(" + data[middle:]
        path.write_bytes(data)
        return
    if c.kind == "manifest":
        manifest_path.write_bytes(bytes(c.value))  # type: ignore[arg-type]
        return
    if c.kind == "manifest_counts":
        manifest = json.loads(manifest_path.read_text())
        manifest["tables"][c.table] = manifest["tables"][c.table] + 1
        manifest_path.write_text(json.dumps(manifest))
        return
    if c.kind == "dup_column" and c.fmt == "csv":
        lines = path.read_text().splitlines()
        header = lines[0].split(",")
        other = header.index(c.column) - 1
        header[other] = c.column  # two columns of the same name
        path.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
        return
    new = {
        "cell": lambda: _set_cell(frame, c),
        "drop_column": lambda: frame.drop(columns=c.column),
        "dup_column": lambda: pd.concat([frame, frame[[c.column]]], axis=1),
        "rename_column": lambda: frame.rename(columns={c.column: c.column + "_x"}),
        "extra_column": lambda: frame.assign(**{f"tgt_extra{c.row % 2 * '_tags'}": c.value}),
        "empty_table": lambda: frame.iloc[:0],
        "dup_rows": lambda: pd.concat([frame, frame.iloc[: c.row + 1]], ignore_index=True),
        "dangling_key": lambda: _set_cell(
            frame, Corruption("cell", c.table, c.column, c.row, 987654321)
        ),
    }[c.kind]()
    try:
        _rewrite(path, new, c.fmt)
    except ValueError:  # pyarrow refuses duplicate column names: write them as CSV text
        path.write_bytes(b"dup,dup\n1,2\n")
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"][c.table] = len(new)
    manifest_path.write_text(json.dumps(manifest))


def assert_carryable(ds: Dataset) -> None:
    """A dataset that reads back is one the models and solvers can carry."""
    money = {
        ("items", "price"),
        ("coupons", "face_value"),
        ("coupons", "threshold"),
        ("exposures", "order_value"),
        ("channel_history", "spend"),
    }
    for name, frame in ds.tables().items():
        schema = TABLES[name]
        known = {c.name for c in (*schema.columns, *schema.optional_columns)}
        for column in frame.columns:
            if column not in known and not column.startswith(schema.feature_prefixes or ("~",)):
                continue  # passes through, read by no model
            values = frame[column]
            if column.endswith(MULTI_SUFFIXES):
                tokens = [int(t) for cell in values for t in str(cell).split(MULTI_SEPARATOR) if t]
                assert max(tokens, default=0) <= MAX_TOKEN, (name, column)
            elif pd.api.types.is_float_dtype(values.dtype):
                present = values.dropna().to_numpy()
                limit = MAX_MONEY if (name, column) in money else MAX_FEATURE
                assert (np.abs(present) <= limit).all(), (name, column)
                assert np.isfinite(present.astype(np.float32)).all(), (name, column)
            elif pd.api.types.is_integer_dtype(values.dtype) and column in ("installs", "rank"):
                assert (values <= MAX_COUNT).all(), (name, column)
    features = ConversionFeatures(ds)
    frame = features.exposure_frame()
    assert np.isfinite(features.user_table.to_numpy(np.float64, na_value=0.0)).all()
    assert len(frame.rows(slice(0, 5))) == min(5, len(frame.y))


def assert_names_the_fault(err: DataValidationError, folder: Path, c: Corruption) -> None:
    """The error names a file of the folder; a corrupted cell's error names a column."""
    assert err.file is not None, err
    assert err.file == str(folder) or err.file.startswith(str(folder) + os.sep), err
    assert str(err).startswith(err.file), err
    own_file = err.file == str(folder / f"{c.table}.{c.fmt}")
    if c.cell_level() and own_file and not err.reason.startswith("cannot read"):
        assert err.column is not None, err


def read_outcome(folder: Path, c: Corruption) -> None:
    """The only outcomes: a carryable dataset, or a DataValidationError naming the fault."""
    with deadline(HANG_S):
        try:
            ds = read_dataset(folder)
        except DataValidationError as err:
            assert_names_the_fault(err, folder, c)
            return
    assert_carryable(ds)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_any_corruption_is_refused_by_name_or_read_safely(world, tmp_path_factory, kind, data):
    """Whatever one corruption does to a CSV or parquet folder, the reader stays in bounds."""
    tables = world.tables()
    c = data.draw(corruptions(tables, kind))
    folder = write_dataset(world, tmp_path_factory.mktemp("fuzz"), format=c.fmt)
    corrupt(folder, tables, c)
    read_outcome(folder, c)


PYTHON_OBJECTS = [
    [1, 2],
    {"a": 1},
    b"bytes",
    complex(1, 2),
    pd.NA,
    pd.NaT,
    np.datetime64("NaT"),
    pd.Timestamp("2024-01-01"),
    object(),
    2**70,
    -(2**70),
    float("nan"),
    "x" * 100_000,
]


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_any_python_object_in_a_frame_is_refused_by_name_or_carried(world, data):
    """Frames handed over in memory (not from files): any object in any cell is caught."""
    tables = world.tables()
    table = data.draw(st.sampled_from(sorted(tables)))
    frame = tables[table]
    column = data.draw(st.sampled_from(list(frame.columns)))
    row = data.draw(st.integers(0, len(frame) - 1))
    value = data.draw(st.sampled_from(PYTHON_OBJECTS + HOSTILE_TEXT + HOSTILE_TYPED))
    changed = {**tables, table: _set_cell(frame, Corruption("cell", table, column, row, value))}
    ds = Dataset(**changed, name="fuzz")
    files = {n: f"{n}.parquet" for n in TABLES}
    try:
        validated = validate_dataset(ds, files=files)
        check_plannable(validated, files=files)
    except DataValidationError as err:
        assert err.file is not None and str(err).startswith(err.file)
        if err.file == f"{table}.parquet" and "rows" not in err.reason:
            assert err.column is not None, err
        return
    assert_carryable(validated)
