"""Tests for growth.data.movielens: domain cut, lifecycle rules, no leakage, and the real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.harness import movielens_split
from growth.data.history import features_as_of
from growth.data.io import read_dataset, write_dataset
from growth.data.movielens import MovieLensData, load_movielens
from growth.data.validation import DataValidationError

DAY = 86_400
T0 = 1_000_000_000  # unix seconds of day 0 in the mini files
SPLIT = pd.Timestamp(T0 + 100 * DAY, unit="s")

_ITEMS = [  # item_id, title, year, genres
    (1, "Laughs", "1995", "Comedy"),
    (2, "Tears", "1975", "Drama Romance"),
    (3, "Dramedy", "unknown", "Comedy Drama"),  # both genres: goes to the target
    (4, "Explosions", "1990", "Action"),  # neither domain: dropped
    (5, "Serious", "1950", "Drama"),
    (6, "Heist", "1980", "Crime Thriller"),  # unrated; only completes the genre list
]
_USERS = [  # user_id, age, gender, occupation, zip
    (1, 24, "M", "student", "12345"),
    (2, 40, "F", "writer", "T8H1N"),
    (3, 60, "M", "retired", "90210"),
    (4, 17, "F", "student", "55555"),
    (5, 30, "M", "doctor", "00000"),
]
_RATINGS = [  # user_id, item_id, rating, day
    (1, 2, 5, 0),
    (1, 1, 4, 90),  # last target rating 10 days before the split: active
    (1, 3, 2, 120),
    (2, 1, 3, 1),  # last target rating 99 days before the split: lost
    (2, 5, 4, 2),
    (3, 5, 2, 10),
    (3, 1, 5, 110),  # first target rating after the split: cold start
    (4, 4, 5, 5),  # only a dropped movie: potential, no source
    (5, 2, 1, 50),
    (5, 5, 4, 60),
    (5, 1, 1, 105),
    (5, 3, 5, 120),
]


def write_mini(folder: Path, ratings=_RATINGS, users=_USERS, items=_ITEMS) -> Path:
    """Write tiny RecBole atomic files with typed headers."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        + "".join("\t".join(map(str, row)) + "\n" for row in items)
    )
    (folder / "ml-100k.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        + "".join("\t".join(map(str, row)) + "\n" for row in users)
    )
    (folder / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        + "".join(f"{u}\t{i}\t{r}\t{T0 + d * DAY}\n" for u, i, r, d in ratings)
    )
    return folder


@pytest.fixture
def mini(tmp_path) -> MovieLensData:
    return load_movielens(
        write_mini(tmp_path / "ml"), split_time=SPLIT, share_genres=("Romance",), seq_len=3
    )


def _by_user(ml: MovieLensData) -> pd.DataFrame:
    return ml.dataset.users.set_index("user_id")


def test_domains_and_categories(mini):
    """Target genre wins, other genres are dropped, category is the first non-domain genre."""
    items = mini.dataset.items.set_index("item_id")
    assert list(mini.genre_tokens) == ["Action", "Comedy", "Crime", "Drama", "Romance", "Thriller"]
    assert list(mini.genre_tokens.values()) == list(range(6))
    assert items["domain"].to_dict() == {1: "target", 2: "source", 3: "target", 5: "source"}
    assert items["category"].to_dict() == {1: 1, 2: 4, 3: 3, 5: 3}
    assert items["price_level"].to_dict()[1] == 4 and items["price_level"].to_dict()[5] == 0


def test_lifecycle_rules_and_cold_start(mini):
    """active / lost / new (cold start) / potential follow the documented rules."""
    users = _by_user(mini)
    assert users["lifecycle"].to_dict() == {
        1: "active",
        2: "lost",
        3: "new",
        4: "potential",
        5: "new",
    }
    assert users["has_source"].to_dict() == {1: True, 2: True, 3: True, 4: False, 5: True}
    np.testing.assert_array_equal(mini.cold_start_user_ids, [3, 5])
    assert mini.split_time == SPLIT


def test_demographics(mini):
    """Region from the first zip digit, MovieLens age bands, gender kept."""
    users = _by_user(mini)
    assert users["region"].to_dict() == {1: "zip1", 2: "intl", 3: "zip9", 4: "zip5", 5: "zip0"}
    assert users["age_band"].to_dict() == {1: "18-24", 2: "35-44", 3: "56+", 4: "<18", 5: "25-34"}
    assert users["gender"].to_dict() == {1: "M", 2: "F", 3: "M", 4: "F", 5: "M"}


def test_features_use_only_the_train_period(mini):
    """History features count, average and sequence only ratings before the split."""
    users = _by_user(mini)
    assert users.loc[1, "tgt_n_ratings"] == 1 and users.loc[1, "tgt_mean_rating"] == 4
    assert users.loc[1, "tgt_click_seq"] == "1"
    assert users.loc[1, "tgt_days_since_visit"] == pytest.approx(10.0)
    assert users.loc[5, "src_recent_seq"] == "4|3"  # oldest first
    assert users.loc[5, "src_genre_share_romance"] == 0.5
    assert users.loc[5, "src_pos_rate"] == 0.5
    assert users.loc[3, "tgt_n_ratings"] == 0 and np.isnan(users.loc[3, "tgt_mean_rating"])
    assert users.loc[3, "tgt_click_seq"] == ""
    assert np.isnan(users.loc[4, "src_mean_rating"])


def test_changing_the_test_period_leaves_features_unchanged(tmp_path):
    """Editing ratings after the split changes no src_/tgt_ feature (no leakage)."""
    changed = [
        (u, i, 6 - r if d >= 100 else r, d + 7 if d >= 100 else d) for u, i, r, d in _RATINGS
    ] + [(2, 3, 5, 140), (1, 5, 1, 101)]
    a = load_movielens(write_mini(tmp_path / "a"), split_time=SPLIT)
    b = load_movielens(write_mini(tmp_path / "b", ratings=changed), split_time=SPLIT)
    features = [c for c in a.dataset.users if c.startswith(("src_", "tgt_"))]
    pd.testing.assert_frame_equal(a.dataset.users[features], b.dataset.users[features])


# Two more comedies; user 1 rates both in the same second, before the split.
_LEAK_ITEMS = [*_ITEMS, (7, "Farce", "1999", "Comedy"), (8, "Spoof", "1985", "Comedy")]
_LEAK_RATINGS = [*_RATINGS, (1, 7, 5, 95), (1, 8, 1, 95)]


def _model_rows(folder: Path) -> pd.DataFrame:
    """What the models see (the benchmark's train and test rows of both domains), by (user, item)."""
    options = {"split_time": SPLIT, "share_genres": ("Romance",), "seq_len": 3}
    split = movielens_split(folder, **options)
    log = load_movielens(folder, **options).dataset.exposures
    train, target = log["timestamp"] < SPLIT, log["domain"] == "target"
    parts = (train & target, train & ~target, ~train & target, ~train & ~target)
    keys = [log.loc[rows, ["user_id", "item_id"]] for rows in parts]
    rows = pd.concat([split.X_train, split.X_test], ignore_index=True)
    return rows.set_index(pd.MultiIndex.from_frame(pd.concat(keys, ignore_index=True)))


def _user_fields(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[[c for c in rows if c.startswith(("src_", "tgt_")) or c == "lifecycle"]]


def test_a_rows_own_label_never_reaches_its_features(tmp_path):
    """Flipping one training row's rating (and so its label) changes none of that row's user
    fields, nor those of the rating given in the same second; the user's later rows see it."""
    a = _model_rows(write_mini(tmp_path / "a", _LEAK_RATINGS, items=_LEAK_ITEMS))
    # a target row tied with (1, 7) and seen by the test row (1, 3); a source row seen by (1, 1)
    for flipped, tied, later in [((1, 8), [(1, 7)], (1, 3)), ((1, 2), [], (1, 1))]:
        ratings = [(u, i, 6 - r if (u, i) == flipped else r, d) for u, i, r, d in _LEAK_RATINGS]
        b = _model_rows(write_mini(tmp_path / f"b{flipped}", ratings, items=_LEAK_ITEMS))
        same = [flipped, *tied]
        pd.testing.assert_frame_equal(_user_fields(a.loc[same]), _user_fields(b.loc[same]))
        assert not _user_fields(a.loc[[later]]).equals(_user_fields(b.loc[[later]]))


def test_later_ratings_never_reach_a_rows_features(tmp_path):
    """Changing every rating after day 90 and adding one changes no earlier row's fields."""
    ratings = [(u, i, 6 - r if d > 90 else r, d) for u, i, r, d in _LEAK_RATINGS]
    a = _model_rows(write_mini(tmp_path / "a", _LEAK_RATINGS, items=_LEAK_ITEMS))
    b = _model_rows(write_mini(tmp_path / "b", [*ratings, (1, 5, 1, 97)], items=_LEAK_ITEMS))
    earlier = [(1, 2), (1, 1), (2, 1), (2, 5), (3, 5), (5, 2), (5, 5)]  # days 0-90
    pd.testing.assert_frame_equal(_user_fields(a.loc[earlier]), _user_fields(b.loc[earlier]))


def test_a_rows_features_are_the_users_past_at_that_instant(tmp_path):
    """User 1's rows: the first comedy is 'new' with no target past; the two rated together
    on day 95 both see only day 90 (ties never see each other)."""
    rows = _model_rows(write_mini(tmp_path / "ml", _LEAK_RATINGS, items=_LEAK_ITEMS))
    first = rows.loc[(1, 1)]
    assert first["lifecycle"] == "new" and first["tgt_n_ratings"] == 0
    assert first["tgt_click_seq"] == "" and first["src_n_ratings"] == 1
    for item in (7, 8):
        row = rows.loc[(1, item)]
        assert (row["tgt_n_ratings"], row["tgt_mean_rating"], row["tgt_pos_rate"]) == (1, 4, 1)
        assert row["tgt_click_seq"] == "1" and row["lifecycle"] == "active"
        assert row["tgt_days_since_visit"] == pytest.approx(5.0)
    assert rows.loc[(1, 2), "src_n_ratings"] == 0 and not rows.loc[(1, 2), "has_source"]


def test_source_and_target_rows_carry_their_domain_and_scene(mini):
    """Exposures carry the sample columns: source (Drama) and target (Comedy) samples."""
    log = mini.dataset.exposures
    assert (log["scene"] == log["domain"].map({"source": "Drama", "target": "Comedy"})).all()
    assert len(mini.exposure_features) == len(log)
    assert mini.exposure_features.index.equals(log.index)


def test_test_rows_read_the_split_snapshot(mini):
    """A rating at or after the split sees the users table's fields (its snapshot at the split)."""
    log, feats = mini.dataset.exposures, mini.exposure_features
    later = (log["timestamp"] >= SPLIT) & (log["domain"] == "target")
    snapshot = _by_user(mini).loc[log.loc[later, "user_id"], feats.columns]
    pd.testing.assert_frame_equal(
        feats.loc[later].reset_index(drop=True), snapshot.reset_index(drop=True)
    )


def test_history_features_without_any_history():
    """An empty log or an unseen user gives NaN statistics, zero counts and an empty sequence."""
    log = pd.DataFrame(
        {
            "user_id": [1],
            "timestamp": pd.to_datetime([T0], unit="s"),
            "rating": [5.0],
            "label": [1],
            "category": [3],
        }
    )
    when = pd.to_datetime([T0 + DAY, T0 + DAY], unit="s").to_numpy()
    for history in (log, log.iloc[:0]):
        out = features_as_of(history, np.array([2, 2]), when, prefix="x_", seq_name="s", seq_len=2)
        assert (out["x_n_ratings"] == 0).all() and out["x_mean_rating"].isna().all()
        assert (out["x_s"] == "").all() and out["x_days_since_visit"].isna().all()
    out = features_as_of(log, np.array([1]), when[:1], prefix="x_", seq_name="s", seq_len=2)
    assert out.loc[0, "x_s"] == "3" and out.loc[0, "x_days_since_visit"] == pytest.approx(1.0)


def test_exposures_candidates_and_coupons(mini):
    """Every kept rating is an exposure; candidates are the next target movies in order."""
    ds = mini.dataset
    assert len(ds.exposures) == 11  # the Action rating is dropped
    assert set(ds.exposures["treatment"]) == {"none"}
    assert ds.coupons[["option_id", "type"]].values.tolist() == [["none", "none"]]
    assert ds.exposures["timestamp"].is_monotonic_increasing
    row = ds.exposures.loc[(ds.exposures.user_id == 1) & (ds.exposures.item_id == 2)].iloc[0]
    assert row["domain"] == "source" and row["label"] == 1
    assert row["timestamp"] == pd.Timestamp(T0, unit="s")
    assert ds.candidates.values.tolist() == [[1, 3, 0], [3, 1, 0], [5, 1, 0], [5, 3, 1]]
    train, test = mini.split_exposures()
    assert len(train) == 7 and len(test) == 4
    assert (test["timestamp"] >= SPLIT).all() and (train["timestamp"] < SPLIT).all()


def test_summary_counts(mini):
    """The summary counts exposures and label rates per domain and lifecycle."""
    summary = mini.exposure_counts()
    assert summary.loc[("domain", "target"), "exposures"] == 6
    assert summary.loc[("domain", "source"), "exposures"] == 5
    assert summary.loc[("lifecycle", "new"), "users"] == 2
    assert summary.loc[("lifecycle", "new"), "train_exposures"] == 0
    assert summary.loc[("domain", "source"), "label_rate"] == pytest.approx(3 / 5)


def test_test_fraction_sets_the_split(tmp_path):
    """Without split_time, about test_fraction of the ratings fall after the split."""
    ml = load_movielens(write_mini(tmp_path / "ml"), test_fraction=0.25)
    train, test = ml.split_exposures()
    assert len(test) == 3 and len(train) == 8  # 11 kept ratings, the latest 25%


def test_missing_file_is_named(tmp_path):
    """A missing atomic file is reported by path."""
    folder = write_mini(tmp_path / "ml")
    (folder / "ml-100k.user").unlink()
    with pytest.raises(DataValidationError) as info:
        load_movielens(folder)
    assert info.value.file == str(folder / "ml-100k.user")


def test_missing_column_is_named(tmp_path):
    """A file without a needed column names the file and the column."""
    folder = write_mini(tmp_path / "ml")
    path = folder / "ml-100k.inter"
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join("\t".join(line.split("\t")[:2] + line.split("\t")[3:]) for line in lines) + "\n"
    )
    with pytest.raises(DataValidationError) as info:
        load_movielens(folder)
    assert (info.value.file, info.value.column) == (str(path), "rating")


def test_bad_value_names_row(tmp_path):
    """A malformed rating names the file, column and data row."""
    ratings = list(_RATINGS)
    ratings[4] = (2, 5, "four", 2)
    folder = write_mini(tmp_path / "ml", ratings=ratings)
    with pytest.raises(DataValidationError) as info:
        load_movielens(folder)
    assert (info.value.column, info.value.row) == ("rating", 4)
    assert "'four'" in str(info.value)


def test_unknown_user_in_ratings(tmp_path):
    """A rating by a user missing from the user file names the row."""
    folder = write_mini(tmp_path / "ml", ratings=[*_RATINGS, (42, 1, 3, 3)])
    with pytest.raises(DataValidationError) as info:
        load_movielens(folder)
    err = info.value
    assert (err.file, err.column, err.row) == (str(folder / "ml-100k.inter"), "user_id", 12)
    assert "42" in str(err)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_genres": ("Cartoon",)}, "unknown genre"),
        ({"source_genres": ("Comedy",)}, "source domain would be empty"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"source_genres": "Drama"}, "tuple of genre names"),
        ({"seq_len": 0}, "seq_len"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    """Bad arguments raise ValueError naming the parameter."""
    folder = write_mini(tmp_path / "ml")
    with pytest.raises(ValueError, match=message):
        load_movielens(folder, **kwargs)


# ---------------------------------------------------------------------------------------
# the real MovieLens-100k files
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k(movielens_dir) -> MovieLensData:
    return load_movielens(movielens_dir)


@pytest.mark.movielens
def test_real_files_give_a_valid_two_domain_dataset(ml100k, movielens_dir):
    """All 943 users; every Drama/Comedy rating becomes an exposure; label = rating >= 4."""
    ds = ml100k.dataset
    raw = pd.read_csv(movielens_dir / "ml-100k.inter", sep="\t")
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    genres = pd.read_csv(movielens_dir / "ml-100k.item", sep="\t", usecols=[0, 3])
    genres.columns = ["item_id", "cls"]
    kept = genres.loc[genres["cls"].str.contains("Drama|Comedy"), "item_id"]
    expected = raw.loc[raw["item_id"].isin(kept)]
    assert len(ds.users) == 943 and len(ds.exposures) == len(expected)
    assert ds.exposures["label"].sum() == (expected["rating"] >= 4).sum()
    comedy = set(genres.loc[genres["cls"].str.contains("Comedy"), "item_id"])
    assert set(ds.items.loc[ds.items["domain"] == "target", "item_id"]) == comedy


@pytest.mark.movielens
def test_real_split_has_no_leakage(ml100k):
    """Features equal what the train period alone gives; cold-start users have no target past."""
    ds = ml100k.dataset
    train, test = ml100k.split_exposures()
    assert 0.18 < len(test) / len(ds.exposures) < 0.22
    users = ds.users.set_index("user_id")
    tgt_train = train.loc[train["domain"] == "target"].groupby("user_id").size()
    counts = tgt_train.reindex(users.index, fill_value=0).astype(float)
    pd.testing.assert_series_equal(users["tgt_n_ratings"], counts, check_names=False)
    assert (users["tgt_days_since_visit"].dropna() >= 0).all()
    cold = ml100k.cold_start_user_ids
    assert len(cold) > 0 and not np.isin(cold, tgt_train.index).any()
    assert np.isin(cold, test.loc[test["domain"] == "target", "user_id"]).all()
    candidates = ds.candidates.merge(train, on=["user_id", "item_id"], how="left")
    assert candidates["domain"].isna().all()  # no candidate was already rated before the split


@pytest.mark.movielens
def test_real_exposure_features_are_each_users_past(ml100k):
    """On 300 sampled exposures the user fields equal a direct count of the user's ratings
    strictly before the row (before the split for test rows)."""
    log, feats = ml100k.dataset.exposures, ml100k.exposure_features
    category = ml100k.dataset.items.set_index("item_id")["category"]
    by_user = dict(tuple(log.groupby("user_id")))
    for k in np.random.default_rng(0).choice(len(log), 300, replace=False):
        row, got = log.iloc[k], feats.iloc[k]
        user = by_user[row["user_id"]]
        past = user.loc[user["timestamp"] < min(row["timestamp"], ml100k.split_time)]
        tgt = past.loc[past["domain"] == "target"]
        assert got["tgt_n_ratings"] == len(tgt) and got["src_n_ratings"] == len(past) - len(tgt)
        if len(tgt):
            assert got["tgt_pos_rate"] == pytest.approx(tgt["label"].mean())
            gap = min(row["timestamp"], ml100k.split_time) - tgt["timestamp"].max()
            assert got["lifecycle"] == ("lost" if gap > pd.Timedelta(days=45) else "active")
        else:
            assert got["lifecycle"] == ("new" if row["domain"] == "target" else "potential")
        seq = "|".join(str(c) for c in category[tgt["item_id"]].to_numpy()[-10:])
        assert got["tgt_click_seq"] == seq


@pytest.mark.movielens
def test_real_dataset_round_trips_through_csv(ml100k, tmp_path):
    """The adapted dataset is in the platform format: it round-trips through growth.data.io."""
    folder = write_dataset(ml100k.dataset, tmp_path, format="csv")
    again = read_dataset(folder, plannable=False)  # no coupons: a benchmark, not a campaign
    for name, frame in ml100k.dataset.tables().items():
        pd.testing.assert_frame_equal(frame, again.tables()[name], check_exact=True, obj=name)
