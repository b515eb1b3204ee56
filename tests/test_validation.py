"""Tests for growth.data.validation: every rule names the file, column and row at fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growth.data.dataset import Dataset
from growth.data.schema import CANDIDATES, CHANNEL_HISTORY, COUPONS, EXPOSURES, ITEMS, USERS
from growth.data.validation import (
    DataValidationError,
    check_plannable,
    validate_dataset,
    validate_table,
)


def small_dataset(n_users: int = 4, n_exposures: int = 6, seed: int = 0) -> Dataset:
    """A small valid dataset with every table, built by hand (no world generator)."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users) + 100,
            "region": ["north", "south"] * (n_users // 2) + ["north"] * (n_users % 2),
            "age_band": "25-34",
            "gender": rng.choice(["F", "M", "U"], n_users),
            "lifecycle": rng.choice(["potential", "new", "active", "lost"], n_users),
            "has_source": rng.random(n_users) < 0.5,
            "src_spend": rng.random(n_users),
            "src_cat_tags": ["1|2", "", "3", "4|4|5"][:n_users] + [""] * max(0, n_users - 4),
            "tgt_click_seq": [""] * n_users,
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [0, 1, 2],
            "domain": ["source", "target", "target"],
            "category": [3, 1, 2],
            "price": [9.5, 20.0, 35.0],
            "merchant_id": [np.nan, 7, 8],
        }
    )
    coupons = pd.DataFrame(
        {
            "option_id": ["none", "rp5", "fr10", "m3"],
            "type": ["none", "red_packet", "full_reduction", "merchant"],
            "face_value": [0.0, 5.0, 10.0, 3.0],
            "threshold": [0.0, 0.0, 50.0, 0.0],
            "merchant_id": [np.nan, np.nan, np.nan, 7],
        }
    )
    candidates = pd.DataFrame(
        {
            "user_id": users.user_id.repeat(2).to_numpy(),
            "item_id": [1, 2] * n_users,
            "rank": [0, 1] * n_users,
        }
    )
    exposures = pd.DataFrame(
        {
            "user_id": rng.choice(users.user_id, n_exposures),
            "item_id": rng.choice([0, 1, 2], n_exposures),
            "domain": "target",
            "timestamp": pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(n_exposures), "h"),
            "treatment": rng.choice(coupons.option_id, n_exposures),
            "label": rng.integers(0, 2, n_exposures),
        }
    )
    channels = pd.DataFrame(
        {"channel_id": [0, 1], "name": ["store", "ads"], "kind": ["app_store", "ad_network"]}
    )
    history = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
            "channel_id": [0, 1, 0],
            "spend": [100.0, 50.0, 80.0],
            "installs": [10, 5, 8],
            "logins": [8, 5, 6],
            "retained": [4, 2, 3],
        }
    )
    return Dataset(
        users=users,
        items=items,
        coupons=coupons,
        candidates=candidates,
        exposures=exposures,
        channels=channels,
        channel_history=history,
        name="small",
    )


def _error(fn, *args, **kwargs) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        fn(*args, **kwargs)
    return info.value


def test_valid_dataset_passes_with_documented_dtypes():
    """A valid dataset validates and comes back with one fixed dtype per kind."""
    ds = validate_dataset(small_dataset())
    assert ds.users["user_id"].dtype == np.int64
    assert ds.users["has_source"].dtype == bool
    assert ds.users["src_spend"].dtype == np.float64
    assert isinstance(ds.users["src_cat_tags"].dtype, pd.StringDtype)
    assert ds.exposures["timestamp"].dtype == "datetime64[ns]"
    assert ds.items["merchant_id"].dtype == np.float64  # nullable int holding NaN
    assert ds.coupons["merchant_id"].iloc[3] == 7
    assert ds.name == "small"


def test_error_message_names_file_column_and_row():
    """The message has the documented 'file: column, row: reason' shape and attributes."""
    frame = small_dataset().exposures
    frame.loc[4, "label"] = 2
    err = _error(validate_table, frame, EXPOSURES, file="exposures.parquet")
    assert str(err) == "exposures.parquet: column 'label', row 4: value 2 is above the maximum 1"
    assert (err.file, err.column, err.row) == ("exposures.parquet", "label", 4)


def test_default_file_is_table_name():
    """Without a file, errors are named by the table name."""
    frame = small_dataset().exposures
    frame.loc[1, "label"] = -1
    err = _error(validate_table, frame, EXPOSURES)
    assert err.file == "exposures" and str(err).startswith("exposures: column 'label', row 1:")


def test_missing_column_lists_missing_and_found():
    """A missing required column is named, with the columns actually found."""
    frame = small_dataset().users.drop(columns=["gender"])
    err = _error(validate_table, frame, USERS, file="users.csv")
    assert err.file == "users.csv" and err.column == "gender" and err.row is None
    assert "['gender']" in str(err) and "found columns" in str(err) and "'region'" in str(err)


def test_wrong_type_reports_first_offending_row():
    """A non-numeric value in an int column names the row it sits in."""
    frame = small_dataset().items.astype({"category": object})
    frame.loc[2, "category"] = "shoes"
    err = _error(validate_table, frame, ITEMS, file="items.csv")
    assert (err.file, err.column, err.row) == ("items.csv", "category", 2)
    assert "'shoes'" in str(err)


def test_fractional_value_in_int_column_is_rejected():
    """An int column stored as float must have no fractions; the row is named."""
    frame = small_dataset().items.astype({"category": float})
    frame.loc[1, "category"] = 1.5
    err = _error(validate_table, frame, ITEMS, file="items.parquet")
    assert (err.column, err.row) == ("category", 1) and "not an integer" in str(err)


def test_safe_conversions_are_coerced():
    """Ints stored as floats, datetime strings, 0/1 booleans and numeric text become proper dtypes."""
    ds = small_dataset()
    users = ds.users.astype({"user_id": float, "has_source": int, "src_spend": str})
    out = validate_table(users, USERS)
    assert out["user_id"].dtype == np.int64 and out["has_source"].dtype == bool
    assert out["src_spend"].dtype == np.float64
    np.testing.assert_allclose(out["src_spend"], ds.users["src_spend"], rtol=1e-15)
    exposures = ds.exposures.assign(timestamp=ds.exposures.timestamp.astype(str))
    expected = ds.exposures["timestamp"].astype("datetime64[ns]")
    assert validate_table(exposures, EXPOSURES)["timestamp"].equals(expected)


def test_bad_datetime_names_row():
    """Text that is not an ISO-8601 datetime is reported with its row."""
    frame = small_dataset().exposures.astype({"timestamp": str})
    frame.loc[3, "timestamp"] = "yesterday"
    err = _error(validate_table, frame, EXPOSURES, file="exposures.csv")
    assert (err.column, err.row) == ("timestamp", 3) and "'yesterday'" in str(err)


def test_nan_where_not_allowed():
    """NaN in a non-nullable column is caught and its row named."""
    frame = small_dataset().coupons
    frame.loc[2, "face_value"] = np.nan
    err = _error(validate_table, frame, COUPONS, file="coupons.csv")
    assert (err.file, err.column, err.row) == ("coupons.csv", "face_value", 2)
    assert "missing value" in str(err)


def test_nan_allowed_in_nullable_and_numeric_features():
    """Nullable columns and numeric src_/tgt_ features accept NaN."""
    ds = small_dataset()
    ds.users.loc[0, "src_spend"] = np.nan
    out = validate_dataset(ds)
    assert np.isnan(out.users["src_spend"].iloc[0])


def test_negative_spend_in_channel_history():
    """A negative spend violates the minimum and names the row."""
    frame = small_dataset().channel_history
    frame.loc[1, "spend"] = -5.0
    err = _error(validate_table, frame, CHANNEL_HISTORY, file="channel_history.parquet")
    assert (err.file, err.column, err.row) == ("channel_history.parquet", "spend", 1)
    assert "below the minimum 0" in str(err)


def test_choices_are_enforced():
    """A value outside the column's choices is named with the allowed values."""
    frame = small_dataset().users
    frame.loc[3, "lifecycle"] = "churned"
    err = _error(validate_table, frame, USERS, file="users.parquet")
    assert (err.column, err.row) == ("lifecycle", 3) and "'churned'" in str(err)
    assert "'potential'" in str(err)


def test_duplicate_id_names_value_and_both_rows():
    """A duplicated unique key names the value and both rows."""
    frame = small_dataset().users
    frame.loc[3, "user_id"] = 101
    err = _error(validate_table, frame, USERS, file="users.csv")
    assert (err.column, err.row) == ("user_id", 3)
    assert "duplicate value 101" in str(err) and "row 1" in str(err)


def test_bad_multi_token():
    """A multi-valued cell with a non-integer token is rejected with its row."""
    frame = small_dataset().users
    frame.loc[2, "src_cat_tags"] = "3|x"
    err = _error(validate_table, frame, USERS, file="users.csv")
    assert (err.file, err.column, err.row) == ("users.csv", "src_cat_tags", 2)
    assert "'3|x'" in str(err)


@pytest.mark.parametrize("bad", ["-1", "1||2", "|1", "1|", "1 2", "1.5"])
def test_multi_token_grammar(bad):
    """Negative, empty, padded or fractional tokens are not valid multi values."""
    frame = small_dataset().users
    frame.loc[1, "tgt_click_seq"] = bad
    err = _error(validate_table, frame, USERS)
    assert (err.column, err.row) == ("tgt_click_seq", 1)


def test_multi_nan_is_rejected():
    """A multi-valued column must use '' for empty, never NaN."""
    frame = small_dataset().users
    frame.loc[0, "tgt_click_seq"] = np.nan
    err = _error(validate_table, frame, USERS)
    assert (err.column, err.row) == ("tgt_click_seq", 0) and '""' in str(err)


def test_text_feature_is_rejected():
    """A src_/tgt_ feature must be numeric or multi-valued, not free text."""
    frame = small_dataset().users.assign(tgt_city=["a", "b", "c", "d"])
    err = _error(validate_table, frame, USERS, file="users.csv")
    assert (err.column, err.row) == ("tgt_city", 0) and "'a'" in str(err)


def test_unknown_user_in_exposures():
    """An exposure of an unknown user names the file, column, row and the unknown id."""
    ds = small_dataset()
    ds.exposures.loc[5, "user_id"] = 999
    err = _error(validate_dataset, ds, files={"exposures": "d/exposures.parquet"})
    assert (err.file, err.column, err.row) == ("d/exposures.parquet", "user_id", 5)
    assert "unknown user_id 999" in str(err)


def test_unknown_treatment_in_exposures():
    """Treatments must be options of the coupon catalogue."""
    ds = small_dataset()
    ds.exposures["treatment"] = ds.exposures["treatment"].astype(object)
    ds.exposures.loc[2, "treatment"] = "bogus"
    err = _error(validate_dataset, ds)
    assert (err.file, err.column, err.row) == ("exposures", "treatment", 2)


def test_reference_to_absent_optional_table():
    """channel_history without channels cannot be checked and is rejected."""
    ds = small_dataset()
    ds.channels = None
    err = _error(validate_dataset, ds)
    assert err.column == "channel_id" and "no 'channels' table" in str(err)


def test_required_table_missing():
    """A dataset without a required table is rejected naming the table."""
    ds = small_dataset()
    ds.candidates = None
    err = _error(validate_dataset, ds, files={"candidates": "x/candidates.csv"})
    assert err.file == "x/candidates.csv" and "required table 'candidates'" in str(err)


def test_coupons_need_control_option():
    """The coupon catalogue must contain option 'none' of type 'none'."""
    ds = small_dataset()
    ds.coupons = ds.coupons.iloc[1:]
    ds.exposures["treatment"] = "rp5"
    err = _error(validate_dataset, ds)
    assert err.column == "option_id" and "'none'" in str(err)
    ds = small_dataset()
    ds.coupons.loc[0, "type"] = "red_packet"
    err = _error(validate_dataset, ds)
    assert (err.column, err.row) == ("type", 0)


def test_full_reduction_needs_threshold():
    """A full-reduction coupon with threshold 0 is rejected with its row."""
    ds = small_dataset()
    ds.coupons.loc[2, "threshold"] = 0.0
    err = _error(validate_dataset, ds, files={"coupons": "coupons.csv"})
    assert (err.file, err.column, err.row) == ("coupons.csv", "threshold", 2)
    assert "'fr10'" in str(err)


def test_merchant_coupon_needs_merchant():
    """A merchant coupon without merchant_id is rejected with its row."""
    ds = small_dataset()
    ds.coupons.loc[3, "merchant_id"] = np.nan
    err = _error(validate_dataset, ds)
    assert (err.column, err.row) == ("merchant_id", 3)


@pytest.mark.parametrize(("column", "value"), [("logins", 11), ("retained", 9)])
def test_channel_funnel_must_narrow(column, value):
    """logins <= installs and retained <= logins, naming the row at fault."""
    ds = small_dataset()
    ds.channel_history.loc[0, column] = value
    err = _error(validate_dataset, ds, files={"channel_history": "ch.csv"})
    assert (err.file, err.column, err.row) == ("ch.csv", column, 0)


def test_index_is_ignored_and_rows_are_positions():
    """Rows are numbered by position, whatever the frame's index."""
    frame = small_dataset().exposures
    frame.index = frame.index * 10 + 7
    frame.iloc[2, frame.columns.get_loc("label")] = 5
    err = _error(validate_table, frame, EXPOSURES)
    assert err.row == 2
    assert validate_table(small_dataset().exposures.set_axis(range(5, 11)), EXPOSURES).index.equals(
        pd.RangeIndex(6)
    )


def test_error_survives_pickling():
    """Errors keep file, column and row when pickled (e.g. across worker processes)."""
    import pickle

    err = DataValidationError("bad", file="f.csv", column="c", row=3)
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.column, again.row, str(again)) == ("f.csv", "c", 3, str(err))


@pytest.mark.slow
def test_large_exposure_table_validates():
    """A valid 5M-row exposure table passes the vectorised checks (speed: see benchmarks)."""
    n = 5_000_000
    rng = np.random.default_rng(1)
    ds = small_dataset()
    ds.users = pd.concat([ds.users] * 1, ignore_index=True)
    ds.exposures = pd.DataFrame(
        {
            "user_id": rng.choice(ds.users.user_id.to_numpy(), n),
            "item_id": rng.integers(0, 3, n),
            "domain": pd.Series(rng.choice(["source", "target"], n), dtype="str"),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
            "treatment": pd.Series(rng.choice(["none", "rp5"], n), dtype="str"),
            "label": rng.integers(0, 2, n),
        }
    )
    validated = validate_dataset(ds)
    assert len(validated.exposures) == n


# ---------------------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------------------


@st.composite
def exposure_tables(draw) -> pd.DataFrame:
    """Random valid exposure tables (without references to check)."""
    n = draw(st.integers(1, 30))
    ints = st.integers(0, 10**6)
    return pd.DataFrame(
        {
            "user_id": draw(st.lists(ints, min_size=n, max_size=n)),
            "item_id": draw(st.lists(ints, min_size=n, max_size=n)),
            "domain": draw(st.lists(st.sampled_from(["source", "target"]), min_size=n, max_size=n)),
            "timestamp": pd.to_datetime(
                draw(st.lists(st.integers(0, 2 * 10**9), min_size=n, max_size=n)), unit="s"
            ),
            "treatment": draw(st.lists(st.text(min_size=1, max_size=5), min_size=n, max_size=n)),
            "label": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
            "order_value": draw(
                st.lists(
                    st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
                    min_size=n,
                    max_size=n,
                )
            ),
        }
    ).astype({"order_value": float})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exposure_tables())
def test_any_valid_table_passes_unchanged(frame):
    """Any valid random table validates, keeping every value."""
    out = validate_table(frame, EXPOSURES)
    assert len(out) == len(frame)
    assert out["user_id"].tolist() == frame["user_id"].tolist()
    assert out["treatment"].tolist() == frame["treatment"].tolist()
    assert out["timestamp"].equals(frame["timestamp"].astype("datetime64[ns]"))
    np.testing.assert_array_equal(out["order_value"].to_numpy(), frame["order_value"].to_numpy())


_CORRUPTIONS = {
    "user_id": "u-3",
    "item_id": 2.5,
    "domain": "sideways",
    "timestamp": "not a time",
    "label": 7,
    "order_value": -1.0,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exposure_tables(), st.sampled_from(sorted(_CORRUPTIONS)), st.data())
def test_any_single_corrupted_cell_is_caught(frame, column, data):
    """Corrupting any one cell is caught, and the error points at that column and row."""
    row = data.draw(st.integers(0, len(frame) - 1))
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = _CORRUPTIONS[column]
    err = _error(validate_table, frame, EXPOSURES, file="exposures.csv")
    assert (err.file, err.column, err.row) == ("exposures.csv", column, row)
    assert f"column '{column}', row {row}:" in str(err)


def test_python_objects_are_accepted_where_safe():
    """datetime objects, pandas nullable Int64 and Python bools are coerced, not rejected."""
    import datetime

    frame = small_dataset().exposures.iloc[:2].copy()
    frame["timestamp"] = pd.Series(
        [datetime.datetime(2024, 1, 1), "2024-01-02T03:00"], dtype=object
    )
    frame["label"] = [True, False]
    out = validate_table(frame, EXPOSURES)
    assert out["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-02 03:00"),
    ]
    assert out["label"].dtype == np.int64 and out["label"].tolist() == [1, 0]
    coupons = small_dataset().coupons.astype({"merchant_id": "Int64"})
    assert validate_table(coupons, COUPONS)["merchant_id"].dtype == np.float64
    frame.loc[1, "timestamp"] = 5
    assert _error(validate_table, frame, EXPOSURES).row == 1


def test_empty_table_and_unknown_columns():
    """An empty table validates to the documented dtypes; unknown columns pass through."""
    out = validate_table(pd.DataFrame({"user_id": [], "item_id": [], "rank": []}), CANDIDATES)
    assert out.dtypes.tolist() == [np.int64, np.int64, np.int64]
    items = small_dataset().items.assign(note=["a", "b", "c"])
    assert validate_table(items, ITEMS)["note"].tolist() == ["a", "b", "c"]


# ---------------------------------------------------------------------------------------
# values the models and solvers can carry, and data they can plan from
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "schema", "column", "value", "reason"),
    [
        ("items", ITEMS, "price", 1e308, "above the maximum 1000000000"),
        ("coupons", COUPONS, "face_value", 1e12, "above the maximum 1000000000"),
        ("channel_history", CHANNEL_HISTORY, "spend", 1e300, "above the maximum 1000000000"),
        ("channel_history", CHANNEL_HISTORY, "installs", 10**15, "above the maximum"),
        ("users", USERS, "src_spend", 1e308, "larger than 1e+30 in size"),
        ("users", USERS, "src_spend", -3e38, "larger than 1e+30 in size"),
        ("items", ITEMS, "category", 2**24, "above the maximum 16777215"),
    ],
)
def test_values_beyond_what_models_and_solvers_carry_are_refused(
    table, schema, column, value, reason
):
    """Money above 1e9, features beyond float32's safe range, huge codes: named, not overflowed."""
    frame = getattr(small_dataset(), table)
    frame[column] = frame[column].astype(type(value))
    frame.loc[1, column] = value
    err = _error(validate_table, frame, schema, file=f"{table}.csv")
    assert (err.file, err.column, err.row) == (f"{table}.csv", column, 1)
    assert reason in str(err)


def test_order_value_near_float_max_is_refused():
    """An order value of 1e308 overflowed float32 to inf and changed the plan; now it is named."""
    frame = small_dataset().exposures.assign(order_value=np.nan)
    frame.loc[2, "order_value"] = 1.7e308
    err = _error(validate_table, frame, EXPOSURES, file="exposures.csv")
    assert (err.column, err.row) == ("order_value", 2) and "above the maximum" in str(err)


@pytest.mark.parametrize("value", [2.0**63, -1e19, 1e300])
def test_integers_beyond_int64_are_refused(value):
    """An id that no int64 holds is named (astype(int64) used to wrap it silently)."""
    frame = small_dataset().users.astype({"user_id": float})
    frame.loc[2, "user_id"] = value
    err = _error(validate_table, frame, USERS, file="users.csv")
    assert (err.column, err.row) == ("user_id", 2) and "does not fit int64" in str(err)
    text = small_dataset().users.astype({"user_id": object})
    text.loc[3, "user_id"] = "18446744073709551615"  # read as uint64
    assert _error(validate_table, text.astype({"user_id": np.uint64}), USERS).row == 3


@pytest.mark.parametrize("token", ["16777216", "99999999999999999999", "9" * 5000])
def test_tokens_above_the_maximum_are_refused(token):
    """A token beyond MAX_TOKEN (float32-exact) is named; beyond int64 it used to crash later."""
    frame = small_dataset().users
    frame.loc[2, "src_cat_tags"] = f"3|{token}|4"
    err = _error(validate_table, frame, USERS, file="users.csv")
    assert (err.column, err.row) == ("src_cat_tags", 2)
    assert "above the maximum 16777215" in str(err)
    frame.loc[2, "src_cat_tags"] = "3|0016777215|4"  # leading zeros: the largest token
    assert validate_table(frame, USERS)["src_cat_tags"].iloc[2] == "3|0016777215|4"


def _plannable_error(ds: Dataset) -> DataValidationError:
    validated = validate_dataset(ds)  # the format is fine
    return _error(check_plannable, validated, files={"exposures": "e.csv", "candidates": "c.csv"})


def test_empty_candidates_cannot_be_planned():
    """A header-only candidates table validated and the job planned nothing; now refused."""
    ds = small_dataset()
    ds.candidates = ds.candidates.iloc[:0]
    err = _plannable_error(ds)
    assert err.file == "c.csv" and "no rows" in str(err)


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        (lambda e: e.assign(treatment="none"), "treatment", "under a coupon"),
        (lambda e: e.assign(treatment="rp5"), "treatment", "untreated"),
        (lambda e: e.assign(domain="source"), "domain", "no exposure of the target domain"),
        (lambda e: e.assign(label=0), "label", "every target-domain exposure has label 0"),
    ],
)
def test_degenerate_exposure_logs_cannot_be_planned(change, column, reason):
    """No control, no treated rows, no target rows or one label: refused naming the column."""
    ds = small_dataset()
    ds.exposures = change(ds.exposures)
    err = _plannable_error(ds)
    assert (err.file, err.column) == ("e.csv", column) and reason in str(err)
    check_plannable(validate_dataset(small_dataset()))  # the small dataset can be planned


def test_logged_propensity_is_checked_like_every_column():
    """An exposure log may carry each row's propensity; one outside (0, 1] names its row."""
    frame = small_dataset().exposures
    frame["propensity"] = 0.25
    assert validate_table(frame, EXPOSURES)["propensity"].dtype == np.float64
    frame.loc[3, "propensity"] = 0.0
    err = _error(validate_table, frame, EXPOSURES, file="exposures.csv")
    assert (err.file, err.column, err.row) == ("exposures.csv", "propensity", 3)


def test_the_scene_column_is_optional_and_checked_like_every_column():
    """``exposures.scene`` may be absent (each row is then in its domain's one scene, named
    after the domain); present, a missing or over-long scene names its file, column and row."""
    from growth.data.dataset import decision_scene, exposure_scenes

    frame = small_dataset().exposures
    validate_table(frame, EXPOSURES)  # no scene column: still valid
    assert (exposure_scenes(frame) == frame["domain"]).all()
    frame["scene"] = np.where(frame["domain"] == "target", "home_feed", "offers")
    assert validate_table(frame, EXPOSURES)["scene"].tolist() == frame["scene"].tolist()
    assert decision_scene(frame) == "home_feed"
    for bad in (None, "x" * 33):
        wrong = frame.astype({"scene": object})
        wrong.loc[2, "scene"] = bad
        err = _error(validate_table, wrong, EXPOSURES, file="exposures.csv")
        assert (err.file, err.column, err.row) == ("exposures.csv", "scene", 2)


def test_a_dataset_is_planned_for_its_most_frequent_target_scene():
    """check_plannable reads the decision scene's rows: a scene without a control is refused
    when it is the most frequent, and names it."""
    ds = small_dataset(n_exposures=6)
    ds.exposures["scene"] = "feed"
    ds.exposures.loc[ds.exposures["domain"] == "target", "treatment"] = "rp5"
    err = _plannable_error(ds)
    assert err.column == "treatment" and "'feed'" in str(err) and "untreated" in str(err)
