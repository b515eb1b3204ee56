"""MovieLens-100k as a two-domain growth dataset (a real-data benchmark for the predictors).

The adapter reads the RecBole atomic files ``ml-100k.inter``, ``ml-100k.user`` and
``ml-100k.item`` (tab-separated, typed headers such as ``user_id:token``; the item
``class:token_seq`` column holds space-separated genres) and builds a
:class:`~growth.data.dataset.Dataset` in the documented format:

* **domains** - a movie with a *target* genre (default Comedy) is a target item; else a
  movie with a *source* genre (default Drama) is a source item; other movies are dropped.
* **exposures** - every rating of a kept movie, ``label = rating >= positive_rating``,
  ``treatment = 'none'`` (MovieLens has no coupons; the catalogue holds only the control),
  ``domain`` and ``scene`` (the sample columns: one scene per domain, named by its genres,
  e.g. ``"Comedy"``/``"Drama"``), so the source genre's ratings are labelled source samples.
* **chronological split** - ``split_time`` is the ``1 - test_fraction`` quantile of the
  rating times; candidates are the test period's items.
* **point-in-time user features** - a row's user fields (``src_*``, ``tgt_*``,
  ``lifecycle``, ``has_source``) use only the user's ratings strictly before
  ``min(row time, split_time)`` (:mod:`growth.data.history`): never the row's own label,
  never a later rating; ratings in the same second as the row are all excluded (the log
  has no order within a second).  They are :attr:`MovieLensData.exposure_features`, one
  row per exposure; the users table is the same at ``split_time`` (the scoring snapshot).
* **users** - ``region`` from the first zip digit, ``age_band``, ``gender``, target-side
  ``lifecycle`` at an instant: no earlier target rating -> ``new`` when the user is rating
  target movies then (for the users table: after the split, a cold-start user), else
  ``potential``; a last target rating more than ``lost_after_days`` earlier -> ``lost``;
  else ``active``.  ``has_source`` = any earlier source rating.
* **items** - ``category`` is a genre token (the movie's first genre other than its domain's
  defining genres); ``price_level`` buckets the release year (old films are cheap).

Tokens in ``category`` and in ``src_recent_seq``/``tgt_click_seq`` share one vocabulary:
the sorted genre names of the item file, ``MovieLensData.genre_tokens``.

Example::

    >>> ml = load_movielens("data/cache/ml-100k")  # doctest: +SKIP
    >>> train, test = ml.split_exposures()  # doctest: +SKIP
    >>> ml.cold_start_user_ids[:3]  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from growth.data.dataset import Dataset
from growth.data.history import features_as_of
from growth.data.recbole import check_known, read_atomic
from growth.data.schema import NO_COUPON, Column, Lifecycle, TableSchema
from growth.data.validation import DataValidationError, validate_dataset

__all__ = ["MovieLensConfig", "MovieLensData", "load_movielens"]

_PREFIX = "ml-100k"
_SECONDS_PER_DAY = 86_400.0

# Raw file layouts: the columns the adapter needs (others, e.g. occupation, are ignored).
_INTER = TableSchema(
    name="ml-100k.inter",
    columns=(
        Column("user_id", "int", min=0),
        Column("item_id", "int", min=0),
        Column("rating", "float", min=0.0, max=5.0),
        Column("timestamp", "int", min=0, doc="unix seconds"),
    ),
)
_USER = TableSchema(
    name="ml-100k.user",
    columns=(
        Column("user_id", "int", min=0, unique=True),
        Column("age", "int", min=0, max=130),
        Column("gender", "str", choices=("F", "M")),
        Column("zip_code", "str"),
    ),
)
_ITEM = TableSchema(
    name="ml-100k.item",
    columns=(
        Column("item_id", "int", min=0, unique=True),
        Column("class", "str", doc="space-separated genres"),
    ),
    optional_columns=(Column("release_year", "str"),),
)

# Age bands as in MovieLens-1M; upper bounds are exclusive.
_AGE_EDGES = (0, 18, 25, 35, 45, 50, 56, 200)
_AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
# Release-year buckets -> price_level 0 (oldest, cheapest) .. 4 (newest).
_YEAR_EDGES = (1970, 1980, 1990, 1995)


@dataclass(frozen=True)
class MovieLensConfig:
    """How MovieLens is cut into two domains and featurised.

    Attributes:
        source_genres: genres whose movies form the source domain.
        target_genres: genres whose movies form the target domain (wins over source).
        test_fraction: share of ratings (latest first) after ``split_time``, in (0, 1).
        split_time: explicit split instant; overrides ``test_fraction`` when given.
        positive_rating: ratings at or above this are label 1.
        share_genres: genres whose share of a user's source ratings become
            ``src_genre_share_<genre>`` features.
        seq_len: length of ``src_recent_seq``/``tgt_click_seq`` (most recent tokens).
        n_candidates: test-period target movies per user in ``candidates``.
        lost_after_days: a user whose last target rating is older than this at the
            split is ``lost``.
    """

    source_genres: tuple[str, ...] = ("Drama",)
    target_genres: tuple[str, ...] = ("Comedy",)
    test_fraction: float = 0.2
    split_time: pd.Timestamp | None = None
    positive_rating: float = 4.0
    share_genres: tuple[str, ...] = ("Romance", "Thriller", "Action", "Crime")
    seq_len: int = 10
    n_candidates: int = 10
    lost_after_days: float = 45.0

    def check(self, genres: tuple[str, ...]) -> None:
        """Raise ``ValueError`` naming the parameter at fault (``genres``: known genres)."""
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        for name in ("source_genres", "target_genres", "share_genres"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} must be a tuple of genre names, got the string {value!r}")
            unknown = [g for g in value if g not in genres]
            if unknown:
                raise ValueError(
                    f"{name}: unknown genre(s) {unknown}; known genres: {list(genres)}"
                )
        if not self.source_genres or not self.target_genres:
            raise ValueError("source_genres and target_genres must each name at least one genre")
        if set(self.source_genres) <= set(self.target_genres):
            raise ValueError(
                f"source_genres {list(self.source_genres)} are all in target_genres "
                f"{list(self.target_genres)}: the source domain would be empty (a movie with a "
                "target genre goes to the target); pick different genres"
            )
        if self.seq_len < 1 or self.n_candidates < 0:
            raise ValueError(
                f"seq_len must be >= 1 and n_candidates >= 0, got {self.seq_len} and "
                f"{self.n_candidates}"
            )
        if not self.lost_after_days > 0:
            raise ValueError(f"lost_after_days must be > 0, got {self.lost_after_days}")


@dataclass(frozen=True)
class MovieLensData:
    """The adapted dataset and its chronological split.

    Attributes:
        dataset: the validated two-domain dataset.
        split_time: ratings at or after this instant are the test period; all user
            features were computed from ratings strictly before it.
        cold_start_user_ids: sorted ids of target-side cold-start users (no target
            rating before the split, at least one after it; lifecycle ``new``).
        genre_tokens: genre name -> integer token used in ``category`` and ``*_seq``.
        exposure_features: one row per exposure (same index as ``dataset.exposures``): the
            users table's ``lifecycle``, ``has_source``, ``src_*`` and ``tgt_*`` columns as of
            that exposure (see the module notes); training rows must read these, not the users
            table, which is the snapshot at the split.
        config: the configuration used.
    """

    dataset: Dataset
    split_time: pd.Timestamp
    cold_start_user_ids: np.ndarray
    genre_tokens: dict[str, int]
    exposure_features: pd.DataFrame
    config: MovieLensConfig = field(default_factory=MovieLensConfig)

    def split_exposures(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Exposures before and at/after ``split_time`` (train, test)."""
        exposures = self.dataset.exposures
        before = (exposures["timestamp"] < self.split_time).to_numpy()
        return (
            exposures.loc[before].reset_index(drop=True),
            exposures.loc[~before].reset_index(drop=True),
        )

    def exposure_counts(self) -> pd.DataFrame:
        """Exposure counts and label rates per domain and per (target-domain) lifecycle.

        Returns a frame indexed by ``(group, value)`` - ``("domain", "source")``,
        ``("lifecycle", "new")`` … - with columns ``users``, ``exposures``,
        ``train_exposures``, ``test_exposures`` and ``label_rate``; lifecycle rows count
        target-domain exposures only.
        """
        exposures = self.dataset.exposures
        test = exposures["timestamp"] >= self.split_time
        lifecycle = exposures["user_id"].map(self.dataset.users.set_index("user_id")["lifecycle"])
        rows: dict[tuple[str, str], dict[str, float]] = {}

        def add(group: str, value: str, mask: pd.Series, users: int) -> None:
            rows[(group, value)] = {
                "users": users,
                "exposures": int(mask.sum()),
                "train_exposures": int((mask & ~test).sum()),
                "test_exposures": int((mask & test).sum()),
                "label_rate": float(exposures.loc[mask, "label"].mean()) if mask.any() else np.nan,
            }

        for domain in ("source", "target"):
            mask = exposures["domain"] == domain
            add("domain", domain, mask, int(exposures.loc[mask, "user_id"].nunique()))
        user_counts = self.dataset.users["lifecycle"].value_counts()
        for stage in Lifecycle:
            mask = (exposures["domain"] == "target") & (lifecycle == stage.value)
            add("lifecycle", stage.value, mask, int(user_counts.get(stage.value, 0)))
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=["group", "value"])
        return frame


# ---------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------


def _feature_name(genre: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", genre.lower()).strip("_")


def _user_features(
    ratings: pd.DataFrame,
    user_ids: np.ndarray,
    times: np.ndarray,
    joining: np.ndarray,
    onehot: pd.DataFrame,
    cfg: MovieLensConfig,
) -> pd.DataFrame:
    """``lifecycle``, ``has_source`` and the ``src_*``/``tgt_*`` features of each
    ``(user_ids[k], times[k])`` from the user's ratings strictly before ``times[k]``.

    ``joining[k]`` tells ``new`` from ``potential`` for a user without target history:
    whether the user is rating target movies at that instant (a cold-start user).
    """
    src_log = ratings.loc[ratings["domain"] == "source"]
    shares = onehot[list(cfg.share_genres)].rename(columns=_feature_name)
    genres = shares.reindex(src_log["item_id"].to_numpy()).reset_index(drop=True)
    src = features_as_of(
        src_log,
        user_ids,
        times,
        prefix="src_",
        seq_name="recent_seq",
        seq_len=cfg.seq_len,
        genres=genres if cfg.share_genres else None,
    )
    tgt = features_as_of(
        ratings.loc[ratings["domain"] == "target"],
        user_ids,
        times,
        prefix="tgt_",
        seq_name="click_seq",
        seq_len=cfg.seq_len,
    )
    lifecycle = np.where(
        tgt["tgt_n_ratings"] == 0,
        np.where(joining, Lifecycle.NEW.value, Lifecycle.POTENTIAL.value),
        np.where(
            tgt["tgt_days_since_visit"] > cfg.lost_after_days,
            Lifecycle.LOST.value,
            Lifecycle.ACTIVE.value,
        ),
    )
    head = pd.DataFrame({"lifecycle": lifecycle, "has_source": (src["src_n_ratings"] > 0)})
    shop, pay = np.log1p(tgt["tgt_n_ratings"]), np.log1p(src["src_n_ratings"])
    activity = {"tgt_log_impressions": shop, "src_log_impressions": pay.where(head["has_source"])}
    return pd.concat([head, src, tgt, pd.DataFrame(activity)], axis=1)  # ACTIVITY_COLUMNS, as of


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------


def load_movielens(path: str | Path, **options: Any) -> MovieLensData:
    """Read MovieLens-100k from ``path`` and return the two-domain dataset and its split.

    Args:
        path: folder holding ``ml-100k.inter``, ``ml-100k.user`` and ``ml-100k.item``.
        options: fields of :class:`MovieLensConfig` (``split_time`` may be a string).

    Raises:
        DataValidationError: a file or column is missing or a value is malformed
            (naming the file, column and row).
        ValueError: an option is out of range, unknown, or names an unknown genre.

    Example::

        >>> ml = load_movielens("data/cache/ml-100k")  # doctest: +SKIP
        >>> ml.dataset.exposures.groupby("domain")["label"].mean()  # doctest: +SKIP
    """
    cfg = _config(options)
    folder = Path(path)
    files = {ext: folder / f"{_PREFIX}.{ext}" for ext in ("inter", "user", "item")}
    inter = read_atomic(files["inter"], _INTER)
    users_raw = read_atomic(files["user"], _USER)
    items_raw = read_atomic(files["item"], _ITEM)
    check_known(inter, "user_id", users_raw["user_id"], files["inter"], files["user"])
    check_known(inter, "item_id", items_raw["item_id"], files["inter"], files["item"])
    items, onehot, tokens = _items(items_raw, cfg)
    ratings = _ratings(inter, items, cfg)
    if len(ratings) == 0:
        raise DataValidationError("no ratings of source or target movies", file=str(files["inter"]))
    split = _split_time(ratings, cfg)
    dataset = validate_dataset(
        Dataset(
            users=_users(users_raw, ratings, split, onehot, cfg),
            items=items,
            coupons=_control_only_coupons(),
            candidates=_candidates(ratings.loc[ratings["timestamp"] >= split], cfg),
            exposures=_exposures(ratings, cfg),
            name="movielens-100k",
        )
    )
    cold = np.sort(
        dataset.users.loc[dataset.users["lifecycle"] == Lifecycle.NEW.value, "user_id"].to_numpy()
    )
    return MovieLensData(
        dataset=dataset,
        split_time=pd.Timestamp(split),
        cold_start_user_ids=cold.astype(np.int64),
        genre_tokens=tokens,
        exposure_features=_exposure_features(ratings, split, onehot, cfg),
        config=cfg,
    )


def _config(options: dict[str, Any]) -> MovieLensConfig:
    """:class:`MovieLensConfig` from keyword options, naming an unknown one."""
    unknown = sorted(set(options) - {f.name for f in fields(MovieLensConfig)})
    if unknown:
        raise TypeError(
            f"unknown MovieLens option(s) {unknown}; "
            f"valid ones are {[f.name for f in fields(MovieLensConfig)]}"
        )
    values = dict(options)
    for name in ("source_genres", "target_genres", "share_genres"):
        if name in values and not isinstance(values[name], str):
            values[name] = tuple(values[name])  # a string is refused by MovieLensConfig.check
    if values.get("split_time") is not None:
        values["split_time"] = pd.Timestamp(values["split_time"])
    return MovieLensConfig(**values)


def _items(
    items_raw: pd.DataFrame, cfg: MovieLensConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Kept movies (domain, category token, price level), the genre one-hot and the tokens."""
    genre_lists = items_raw["class"].str.split()
    genres = tuple(sorted({g for gs in genre_lists for g in gs}))
    cfg.check(genres)
    tokens = {g: i for i, g in enumerate(genres)}
    exploded = genre_lists.explode().dropna()
    onehot = (
        pd.crosstab(items_raw["item_id"].to_numpy()[exploded.index], exploded.to_numpy())
        .reindex(index=items_raw["item_id"], columns=list(genres), fill_value=0)
        .astype(bool)
    )
    is_target = onehot[list(cfg.target_genres)].any(axis=1).to_numpy()
    is_source = onehot[list(cfg.source_genres)].any(axis=1).to_numpy() & ~is_target
    domain = np.where(is_target, "target", np.where(is_source, "source", ""))

    def category(genres_of_item: list[str], item_domain: str) -> int:
        defining = cfg.target_genres if item_domain == "target" else cfg.source_genres
        others = [g for g in genres_of_item if g not in defining]
        return tokens[(others or genres_of_item)[0]]

    keep = domain != ""
    items = pd.DataFrame(
        {
            "item_id": items_raw["item_id"].to_numpy()[keep],
            "domain": domain[keep],
            "category": [
                category(g, d) for g, d in zip(genre_lists[keep], domain[keep], strict=True)
            ],
        }
    )
    if "release_year" in items_raw:
        year = pd.to_numeric(items_raw["release_year"], errors="coerce")
        year = year.fillna(year.median())  # a few files hold 'unknown' years
        items["price_level"] = np.searchsorted(_YEAR_EDGES, year.to_numpy()[keep], side="right")
    return items, onehot, tokens


def _ratings(inter: pd.DataFrame, items: pd.DataFrame, cfg: MovieLensConfig) -> pd.DataFrame:
    """Ratings of kept movies with domain, category and label, in time order."""
    item_domain = pd.Series(items["domain"].to_numpy(), index=items["item_id"])
    item_category = pd.Series(items["category"].to_numpy(), index=items["item_id"])
    ratings = inter.loc[inter["item_id"].isin(items["item_id"])].copy()
    ratings["domain"] = ratings["item_id"].map(item_domain)
    ratings["category"] = ratings["item_id"].map(item_category)
    ratings["label"] = (ratings["rating"] >= cfg.positive_rating).astype(np.int64)
    ratings["timestamp"] = pd.to_datetime(ratings["timestamp"], unit="s").astype("datetime64[ns]")
    ratings = ratings.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    return ratings.reset_index(drop=True)


def _split_time(ratings: pd.DataFrame, cfg: MovieLensConfig) -> pd.Timestamp:
    """``cfg.split_time``, else the ``1 - test_fraction`` quantile of the rating times."""
    if cfg.split_time is not None:
        return cfg.split_time
    times = ratings["timestamp"].to_numpy()
    return pd.Timestamp(times[min(len(times) - 1, int((1.0 - cfg.test_fraction) * len(times)))])


def _users(
    users_raw: pd.DataFrame,
    ratings: pd.DataFrame,
    split: pd.Timestamp,
    onehot: pd.DataFrame,
    cfg: MovieLensConfig,
) -> pd.DataFrame:
    """Demographics, and lifecycle and per-domain features as of ``split`` (the scoring
    snapshot: ``new`` marks users who rate target movies only after the split)."""
    user_ids = users_raw["user_id"].to_numpy()
    zip_first = users_raw["zip_code"].str.strip().str[:1]
    region = np.where(zip_first.str.isdigit().fillna(False), "zip" + zip_first.fillna(""), "intl")
    age_band = pd.cut(
        users_raw["age"], bins=list(_AGE_EDGES), right=False, labels=list(_AGE_LABELS)
    ).astype(str)
    later = ratings.loc[(ratings["timestamp"] >= split) & (ratings["domain"] == "target")]
    at_split = np.full(len(user_ids), np.datetime64(split, "ns"))
    joining = np.isin(user_ids, later["user_id"].unique())
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "region": region,
            "age_band": age_band.to_numpy(),
            "gender": users_raw["gender"].to_numpy(),
        }
    )
    history = _user_features(ratings, user_ids, at_split, joining, onehot, cfg)
    return pd.concat([users, history], axis=1)


def _candidates(test: pd.DataFrame, cfg: MovieLensConfig) -> pd.DataFrame:
    """Each user's next ``n_candidates`` target movies of the test period, by time."""
    upcoming = test.loc[test["domain"] == "target"].drop_duplicates(["user_id", "item_id"])
    upcoming = upcoming.groupby("user_id", sort=True).head(cfg.n_candidates)
    return pd.DataFrame(
        {
            "user_id": upcoming["user_id"].to_numpy(),
            "item_id": upcoming["item_id"].to_numpy(),
            "rank": upcoming.groupby("user_id").cumcount().to_numpy(),
        }
    ).sort_values(["user_id", "rank"], kind="stable", ignore_index=True)


def _exposures(ratings: pd.DataFrame, cfg: MovieLensConfig) -> pd.DataFrame:
    """Every kept rating as an untreated exposure in its domain's scene (no coupons here)."""
    is_target = (ratings["domain"] == "target").to_numpy()
    scene = "+".join  # one scene per domain, named by its genres, e.g. "Comedy"
    return pd.DataFrame(
        {
            "user_id": ratings["user_id"].to_numpy(),
            "item_id": ratings["item_id"].to_numpy(),
            "domain": ratings["domain"].to_numpy(),
            "scene": np.where(is_target, scene(cfg.target_genres), scene(cfg.source_genres)),
            "timestamp": ratings["timestamp"].to_numpy(),
            "treatment": NO_COUPON,
            "label": ratings["label"].to_numpy(),
        }
    )


def _exposure_features(
    ratings: pd.DataFrame, split: pd.Timestamp, onehot: pd.DataFrame, cfg: MovieLensConfig
) -> pd.DataFrame:
    """The user's features as of each rating: from ratings strictly before
    ``min(timestamp, split)``; ``new`` for a target rating without target history."""
    as_of = np.minimum(ratings["timestamp"].to_numpy("datetime64[ns]"), np.datetime64(split, "ns"))
    is_target = (ratings["domain"] == "target").to_numpy()
    return _user_features(ratings, ratings["user_id"].to_numpy(), as_of, is_target, onehot, cfg)


def _control_only_coupons() -> pd.DataFrame:
    """The coupon catalogue of a dataset without coupons: the control option alone."""
    return pd.DataFrame(
        {
            "option_id": [NO_COUPON],
            "type": ["none"],
            "face_value": [0.0],
            "threshold": [0.0],
            "merchant_id": [np.nan],
        }
    )
