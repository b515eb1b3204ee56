"""Tests for growth.data.io: datasets round-trip through parquet and CSV, and bad folders are named."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growth.data.dataset import Dataset
from growth.data.io import MANIFEST_NAME, SCHEMA_VERSION, read_dataset, write_dataset
from growth.data.schema import MAX_FEATURE
from growth.data.validation import DataValidationError, validate_dataset


def tiny_dataset() -> Dataset:
    """A valid dataset with awkward values: NaN, "" multi cells, 'NA' text, ns timestamps."""
    users = pd.DataFrame(
        {
            "user_id": [10, 11, 12],
            "region": ["NA", "", "eu"],  # text that CSV readers like to turn into NaN
            "age_band": ["18-24", "25-34", "35-44"],
            "gender": ["F", "M", "U"],
            "lifecycle": ["new", "active", "potential"],
            "has_source": [True, False, True],
            "src_score": [0.1 + 0.2, np.nan, 1e-300],
            "src_n": [1, 2, 3],
            "tgt_cat_tags": ["", "7", "1|2|3"],
            "tgt_click_seq": ["5", "5", "5"],  # single tokens: must stay text
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [1, 2],
            "domain": ["source", "target"],
            "category": [0, 7],
            "price_level": [1, 2],
            "merchant_id": [np.nan, 4.0],
        }
    )
    coupons = pd.DataFrame(
        {
            "option_id": ["none", "10"],  # a numeric-looking option id stays text
            "type": ["none", "red_packet"],
            "face_value": [0.0, 10.0],
            "threshold": [0.0, 0.0],
            "merchant_id": [np.nan, np.nan],
        }
    )
    candidates = pd.DataFrame({"user_id": [10, 10], "item_id": [2, 1], "rank": [0, 1]})
    exposures = pd.DataFrame(
        {
            "user_id": [10, 11, 12],
            "item_id": [1, 2, 2],
            "domain": ["source", "target", "target"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-01 12:00:00.123456789", "2024-02-29 23:59:59"],
                format="ISO8601",
            ),
            "treatment": ["none", "10", "none"],
            "label": [0, 1, 0],
            "order_value": [np.nan, 12.34, np.nan],
        }
    )
    return Dataset(
        users=users,
        items=items,
        coupons=coupons,
        candidates=candidates,
        exposures=exposures,
        name="tiny",
    )


def assert_same_dataset(a: Dataset, b: Dataset) -> None:
    assert a.name == b.name
    assert list(a.tables()) == list(b.tables())
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name], check_exact=True, obj=name)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip_is_identical(tmp_path, fmt):
    """Writing and reading back gives identical validated frames in both formats."""
    ds = tiny_dataset()
    folder = write_dataset(ds, tmp_path / "ds", format=fmt)
    again = read_dataset(folder)
    assert_same_dataset(validate_dataset(ds), again)
    assert again.users["region"].tolist() == ["NA", "", "eu"]
    assert again.users["tgt_click_seq"].tolist() == ["5", "5", "5"]
    assert again.coupons["option_id"].tolist() == ["none", "10"]
    assert again.exposures["timestamp"].iloc[1] == pd.Timestamp("2024-01-01 12:00:00.123456789")


def test_csv_and_parquet_agree(tmp_path):
    """The same dataset read from CSV equals the one read from parquet."""
    ds = tiny_dataset()
    a = read_dataset(write_dataset(ds, tmp_path / "p", format="parquet"))
    b = read_dataset(write_dataset(ds, tmp_path / "c", format="csv"))
    assert_same_dataset(a, b)


def test_manifest_contents(tmp_path):
    """The manifest records name, format, schema version, row counts and files."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["name"] == "tiny" and manifest["format"] == "csv"
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["tables"] == {
        "users": 3,
        "items": 2,
        "coupons": 2,
        "candidates": 2,
        "exposures": 3,
    }
    assert manifest["files"]["users"] == "users.csv"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST_NAME, *manifest["files"].values()]
    )


def test_optional_tables_round_trip(tmp_path):
    """Optional tables (channels, history) are written and read back when present."""
    ds = tiny_dataset()
    ds.channels = pd.DataFrame({"channel_id": [3], "name": ["store"], "kind": ["app_store"]})
    ds.channel_history = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01"]),
            "channel_id": [3],
            "spend": [12.5],
            "installs": [4],
            "logins": [3],
            "retained": [1],
        }
    )
    for fmt in ("csv", "parquet"):
        again = read_dataset(write_dataset(ds, tmp_path / fmt, format=fmt))
        assert_same_dataset(validate_dataset(ds), again)


def test_invalid_dataset_is_not_written(tmp_path):
    """write_dataset validates first and leaves nothing behind on failure."""
    ds = tiny_dataset()
    ds.exposures.loc[1, "label"] = 3
    with pytest.raises(DataValidationError, match="label"):
        write_dataset(ds, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_required_table_names_expected_file(tmp_path):
    """A missing required table file is reported by its expected path."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="parquet")
    (folder / "coupons.parquet").unlink()
    with pytest.raises(DataValidationError) as info:
        read_dataset(folder)
    assert info.value.file == str(folder / "coupons.parquet")
    (folder / MANIFEST_NAME).unlink()
    with pytest.raises(DataValidationError, match=r"coupons\.parquet"):
        read_dataset(folder)


def test_bad_cell_in_csv_names_file_column_and_row(tmp_path):
    """An edited CSV with a bad value names the file, column and data row."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    path = folder / "exposures.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(",0,", ",2,")  # data row 2: label 0 -> 2
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as info:
        read_dataset(folder)
    err = info.value
    assert (err.file, err.column, err.row) == (str(path), "label", 2)
    assert str(err).startswith(f"{path}: column 'label', row 2:")


def test_unknown_reference_in_file_names_the_file(tmp_path):
    """A candidate for an unknown user names the candidates file and row."""
    ds = tiny_dataset()
    folder = write_dataset(ds, tmp_path, format="parquet")
    bad = ds.candidates.assign(user_id=[10, 77])
    bad.to_parquet(folder / "candidates.parquet", index=False)
    with pytest.raises(DataValidationError) as info:
        read_dataset(folder)
    assert info.value.file == str(folder / "candidates.parquet")
    assert (info.value.column, info.value.row) == ("user_id", 1)
    assert "77" in str(info.value)


def test_truncated_file_is_detected(tmp_path):
    """A table whose row count differs from the manifest is rejected."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    path = folder / "exposures.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataValidationError, match=r"rows but manifest\.json says 3"):
        read_dataset(folder)


def test_manifest_problems_are_named(tmp_path):
    """A corrupt or future-version manifest is rejected naming manifest.json."""
    folder = write_dataset(tiny_dataset(), tmp_path)
    manifest_path = folder / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(DataValidationError, match="schema_version") as info:
        read_dataset(folder)
    assert info.value.file == str(manifest_path)
    manifest_path.write_text("{not json")
    with pytest.raises(DataValidationError, match="not valid JSON"):
        read_dataset(folder)


def test_without_manifest_format_is_detected(tmp_path):
    """Without a manifest the format is taken from the files present."""
    ds = tiny_dataset()
    folder = write_dataset(ds, tmp_path, format="csv")
    (folder / MANIFEST_NAME).unlink()
    again = read_dataset(folder)
    assert again.name == Path(folder).name
    pd.testing.assert_frame_equal(again.users, validate_dataset(ds).users)


def test_bad_arguments(tmp_path):
    """Unknown formats and missing folders raise clear errors."""
    with pytest.raises(ValueError, match="format must be one of"):
        write_dataset(tiny_dataset(), tmp_path, format="xlsx")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------
# property test: random valid datasets round-trip through both formats
# ---------------------------------------------------------------------------------------

_tokens = st.lists(st.integers(0, 10**6), max_size=4).map(lambda t: "|".join(map(str, t)))
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=6)


@st.composite
def datasets(draw) -> Dataset:
    """Random valid datasets with text, NaN features, multi cells and timestamps."""
    n = draw(st.integers(1, 8))
    user_ids = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=True))
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "region": draw(st.lists(_text, min_size=n, max_size=n)),
            "age_band": draw(st.lists(_text, min_size=n, max_size=n)),
            "gender": draw(st.lists(st.sampled_from("FMU"), min_size=n, max_size=n)),
            "lifecycle": draw(
                st.lists(
                    st.sampled_from(["potential", "new", "active", "lost"]), min_size=n, max_size=n
                )
            ),
            "has_source": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
            "src_x": draw(
                st.lists(
                    st.one_of(st.none(), st.floats(-MAX_FEATURE, MAX_FEATURE)),
                    min_size=n,
                    max_size=n,
                )
            ),
            "tgt_hist_seq": draw(st.lists(_tokens, min_size=n, max_size=n)),
        }
    ).astype({"src_x": float})
    items = pd.DataFrame({"item_id": [0, 1], "domain": ["source", "target"], "category": [0, 1]})
    coupons = pd.DataFrame(
        {
            "option_id": ["none", "c"],
            "type": ["none", "full_reduction"],
            "face_value": [0.0, draw(st.floats(0, 1e4))],
            "threshold": [0.0, draw(st.floats(0.01, 1e4))],
            "merchant_id": [np.nan, np.nan],
        }
    )
    m = draw(st.integers(0, 10))
    seconds = draw(st.lists(st.integers(0, 4 * 10**9), min_size=m, max_size=m))
    exposures = pd.DataFrame(
        {
            "user_id": draw(st.lists(st.sampled_from(user_ids), min_size=m, max_size=m)),
            "item_id": draw(st.lists(st.sampled_from([0, 1]), min_size=m, max_size=m)),
            "domain": draw(st.lists(st.sampled_from(["source", "target"]), min_size=m, max_size=m)),
            "timestamp": pd.to_datetime(seconds, unit="s"),
            "treatment": draw(st.lists(st.sampled_from(["none", "c"]), min_size=m, max_size=m)),
            "label": draw(st.lists(st.integers(0, 1), min_size=m, max_size=m)),
        }
    )
    candidates = pd.DataFrame({"user_id": user_ids[:1], "item_id": [1], "rank": [0]})
    return Dataset(users, items, coupons, candidates, exposures, name="random")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(datasets(), st.sampled_from(["csv", "parquet"]))
def test_any_valid_dataset_round_trips(tmp_path, ds, fmt):
    """Any valid random dataset validates and reads back identical from CSV and parquet."""
    folder = write_dataset(ds, tmp_path / fmt, format=fmt)
    assert_same_dataset(validate_dataset(ds), read_dataset(folder, plannable=False))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_empty_tables_round_trip(tmp_path, fmt):
    """Empty candidate and exposure tables keep their dtypes through both formats (read for
    their format: the nightly job refuses them, see test_validation)."""
    ds = tiny_dataset()
    ds.candidates = ds.candidates.iloc[:0]
    ds.exposures = ds.exposures.iloc[:0]
    folder = write_dataset(ds, tmp_path, format=fmt)
    assert_same_dataset(validate_dataset(ds), read_dataset(folder, plannable=False))
    with pytest.raises(DataValidationError, match="no rows") as info:
        read_dataset(folder)
    assert info.value.file == str(folder / f"candidates.{fmt}")


# ---------------------------------------------------------------------------------------
# files that are not what they seem
# ---------------------------------------------------------------------------------------


def test_duplicate_csv_header_is_refused(tmp_path):
    """A header naming a column twice was renamed by pandas ('label.1'); now it is named."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    path = folder / "exposures.csv"
    text = path.read_text().replace("label", "domain", 1)
    path.write_text(text)
    with pytest.raises(DataValidationError) as info:
        read_dataset(folder)
    assert (info.value.file, info.value.column) == (str(path), "domain")
    assert "more than once" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("name", ["users.csv", MANIFEST_NAME])
def test_a_fifo_is_refused_not_read(tmp_path, name):
    """A FIFO as a table file (or manifest) blocked the reader forever; now it is refused."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    (folder / name).unlink()
    os.mkfifo(folder / name)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_dataset(folder)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=20)
    if reader.is_alive():  # unblock the reader: open and close the write end
        os.close(os.open(folder / name, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=5)
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], DataValidationError)
    assert outcome[0].file == str(folder / name) and "not a regular file" in str(outcome[0])


def test_a_folder_as_table_file_is_refused(tmp_path):
    """A folder named like a table file is refused by name."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="parquet")
    (folder / "items.parquet").unlink()
    (folder / "items.parquet").mkdir()
    with pytest.raises(DataValidationError, match="is a folder, not a regular file") as info:
        read_dataset(folder)
    assert info.value.file == str(folder / "items.parquet")
    with pytest.raises(DataValidationError, match="is not a folder"):
        read_dataset(folder / MANIFEST_NAME)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"user_id,region\n" + b"10,eu\n" * 3000 + b"11,\xff\xfe\n", "cannot read csv table"),
        (b"\xff\xfeu\x00s\x00", "cannot read the CSV header"),
        (b"", "the file is empty"),
    ],
)
def test_undecodable_or_empty_csv_is_named(tmp_path, content, reason):
    """Bytes that are not UTF-8, or no header at all, are refused naming the file."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    (folder / "users.csv").write_bytes(content)
    with pytest.raises(DataValidationError, match=reason) as info:
        read_dataset(folder)
    assert info.value.file == str(folder / "users.csv")
    (folder / MANIFEST_NAME).write_bytes(b'{"name": "\xff"}')
    with pytest.raises(DataValidationError, match="not valid JSON"):
        read_dataset(folder)


def test_text_in_a_float_column_of_a_csv_names_column_and_row(tmp_path):
    """'abc' as a price in a CSV stopped pandas' float parser with no column or row named."""
    folder = write_dataset(tiny_dataset(), tmp_path, format="csv")
    path = folder / "coupons.csv"
    path.write_text(path.read_text().replace(",10.0,", ",abc,"))
    with pytest.raises(DataValidationError) as info:
        read_dataset(folder)
    assert (info.value.file, info.value.column, info.value.row) == (str(path), "face_value", 1)
    assert "'abc' is not a number" in str(info.value)
    with pytest.raises(DataValidationError, match="File name too long"):
        read_dataset(tmp_path / ("x" * 300))
