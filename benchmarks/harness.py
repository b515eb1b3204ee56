"""Evaluation harness of the conversion predictors: datasets -> splits -> every model -> metrics.

Every model sees the same split of a dataset (the same training rows, the same test rows)
and is scored with the same metrics (:func:`predictors.metrics.metrics_by`: AUC, log loss,
calibration error) on all test rows and by :data:`GROUPINGS`: the row's domain, its scene,
its lifecycle segment and its item's popularity bin (the last two on target rows; source
rows form one group ``source`` there), repeated over seeds so that each number comes with a
spread.

Both datasets are labelled samples of two domains: every row carries the sample columns
``domain`` and ``scene`` (:mod:`predictors.torch.samples`), ``y`` is its label in its own
domain and scene, and every model trains on the rows of both domains (a model that does not
read the sample columns pools them; ``self_train`` keeps the target rows, ``source_only``
the source rows).  The test rows are held-out rows of both domains and every scene.

- **world** (:func:`world_split`): the simulated world's whole exposure log (the source
  domain's offers and every target scene, one of them cold), *user-level* holdout: a seeded
  ``test_fraction`` of users and all their rows in every domain and scene form the test set,
  so new, lost and potential users appear there.  Seed ``s`` generates world ``s``.
- **movielens** (:func:`movielens_split`): MovieLens-100k with Comedy as target and Drama
  as source domain (one scene each); train = ratings before ``split_time``, test = ratings
  after it.  Target-side cold-start users (``new``) have no target rating before the
  split.  Each row's user fields are point-in-time (the user's ratings strictly before the
  row; before the split for test rows).

Popularity bins (:func:`popularity_bins`): an item's *logged* popularity is its number of
training rows; the target test rows are cut into :data:`POPULARITY_BINS` bins of about
equal size by it, ``p1`` the least popular (cold items; an item never logged counts 0).

A :class:`ModelVariant` may train on a seeded share of the training rows (``train_share``:
the data-share curve) or fit one model per target scene on that scene's rows
(``per_scene``: the one-model-per-scene comparison of the multi-scene models); those of
:data:`TARGET_ONLY_MODELS` (LightGBM) also run on target features only.  Training
throughput is the number of rows passed through the mini-batch updates (``train_step``) per
second of ``fit`` (models trained in mini-batches, critic steps included in the time), or
training rows per second of the whole ``fit`` (models without them, such as LightGBM).

Example::

    result = run_benchmark({"world": lambda s: world_split(2_000, seed=s)}, seeds=(0, 1, 2))
    print(format_table(result, "world", by="scene"))
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.tables import format_table, gains, store_benchmark, summarize
from growth.data.movielens import MovieLensData, load_movielens
from growth.modeling.features import ConversionFeatures
from growth.world import WorldConfig, generate_world
from predictors.features import FeatureSpec
from predictors.metrics import metrics_by
from predictors.registry import get_predictor, predictor_names

TARGET_ONLY_DOMAINS = ("user", "target", "item", "treatment")
GROUPINGS = ("domain", "scene", "segment", "popularity")
"""The test-row groupings every metric is also reported by (beside all rows)."""
SOURCE_GROUP = "source"
"""The one ``segment`` / ``popularity`` group of the source rows (those groupings are the target's)."""
POPULARITY_BINS = 4
TARGET_ONLY_MODELS = ("lightgbm",)
"""Models that also run on target features only (a second row of the table)."""
CONVERSION_MODELS: dict[str, type] = {n: get_predictor(n) for n in predictor_names("conversion")}
"""The registered conversion models by name: the benchmark's default models."""

__all__ = [
    "TARGET_ONLY_DOMAINS",
    "BenchmarkResult",
    "BenchmarkSplit",
    "ModelVariant",
    "default_variants",
    "fit_predict",
    "format_table",
    "gains",
    "movielens_split",
    "popularity_bins",
    "popularity_ranges",
    "run_benchmark",
    "store_benchmark",
    "summarize",
    "world_split",
]


@dataclass(frozen=True)
class BenchmarkSplit:
    """One dataset cut into the rows every model trains and is tested on.

    ``spec`` is the unfitted raw spec of the frames (domains source, target, user, item,
    treatment); both frames carry the sample columns ``domain`` and ``scene``.  ``groups``
    has one row per test row: its :data:`GROUPINGS` labels, its ``user`` and ``item``
    (positions in the dataset's tables) and ``item_count``, its item's number of training
    rows; ``train_keys`` the ``user`` and ``item`` of each training row.
    """

    dataset: str
    spec: FeatureSpec
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    groups: pd.DataFrame
    train_keys: pd.DataFrame

    def __post_init__(self) -> None:
        for part, X, y in (
            ("train", self.X_train, self.y_train),
            ("test", self.X_test, self.y_test),
        ):
            if len(X) != len(y):
                raise ValueError(
                    f"{self.dataset}: X_{part} has {len(X)} rows but y_{part} {len(y)}"
                )
        if len(self.groups) != len(self.y_test) or len(self.train_keys) != len(self.y_train):
            raise ValueError(
                f"{self.dataset}: groups / train_keys need one row per test / train row"
            )

    @property
    def segment_test(self) -> np.ndarray:
        """The test rows' lifecycle segments (``source`` for source rows)."""
        return self.groups["segment"].to_numpy()


def popularity_bins(count: np.ndarray, n_bins: int = POPULARITY_BINS) -> np.ndarray:
    """Labels ``p1`` (least popular) .. ``pK`` of rows whose item has ``count`` logged rows:
    cut at the quantiles of ``count`` over these rows, so the bins hold about equal numbers
    of rows (fewer bins when ties leave fewer distinct cut points)."""
    count = np.asarray(count)
    if len(count) == 0:
        return np.array([], dtype=object)
    edges = np.unique(np.quantile(count, np.linspace(0, 1, n_bins + 1)[1:-1]))
    _, bins = np.unique(np.searchsorted(edges, count, side="right"), return_inverse=True)
    return np.array([f"p{b + 1}" for b in bins], dtype=object)  # empty bins dropped


def popularity_ranges(groups: pd.DataFrame) -> pd.DataFrame:
    """Per popularity bin of a split's target test rows: the least and most logged rows of
    its items and its number of test rows."""
    target = groups[groups["domain"] == "target"]
    stats = target.groupby("popularity")["item_count"].agg(["min", "max", "size"])
    return stats.rename(columns={"size": "test_rows"}).astype(np.int64).reset_index()


def _split(
    dataset: str,
    spec: FeatureSpec,
    X: pd.DataFrame,
    y: np.ndarray,
    segment: np.ndarray,
    user_pos: np.ndarray,
    item_pos: np.ndarray,
    test: np.ndarray,
) -> BenchmarkSplit:
    """Rows ``test`` form the test set, the rest the training set; the test rows' groups."""
    counts = np.bincount(item_pos[~test], minlength=int(item_pos.max()) + 1)
    X_test = X.loc[test].reset_index(drop=True)
    target = (X_test["domain"] == "target").to_numpy()
    item_count = counts[item_pos[test]]
    popularity = np.full(len(X_test), SOURCE_GROUP, dtype=object)
    popularity[target] = popularity_bins(item_count[target])
    groups = pd.DataFrame(
        {
            "domain": X_test["domain"].astype(str).to_numpy(),
            "scene": X_test["scene"].astype(str).to_numpy(),
            "segment": np.where(target, np.asarray(segment)[test], SOURCE_GROUP),
            "popularity": popularity,
            "user": user_pos[test],
            "item": item_pos[test],
            "item_count": item_count,
        }
    )
    return BenchmarkSplit(
        dataset=dataset,
        spec=spec,
        X_train=X.loc[~test].reset_index(drop=True),
        y_train=np.asarray(y)[~test],
        X_test=X_test,
        y_test=np.asarray(y)[test],
        groups=groups,
        train_keys=pd.DataFrame({"user": user_pos[~test], "item": item_pos[~test]}),
    )


def world_split(
    n_users: int = 30_000, *, seed: int = 0, test_fraction: float = 0.3
) -> BenchmarkSplit:
    """Simulated world ``seed``: every domain's and scene's labelled rows, with a seeded
    user-level holdout of ``test_fraction`` of users."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    world = generate_world(WorldConfig(n_users=n_users, seed=seed))
    features = ConversionFeatures(world.dataset)
    after_all = world.dataset.exposures["timestamp"].to_numpy().max() + np.timedelta64(1, "s")
    frame = features.exposure_frame().concat(features.transfer_frame(after_all))
    test_user = np.random.default_rng(seed).random(len(features.user_ids)) < test_fraction
    test = test_user[frame.user_pos]
    keys = frame.user_pos, frame.item_pos
    return _split("world", features.spec, frame.X, frame.y, frame.segment, *keys, test)


def movielens_split(path: str | Path, **options: Any) -> BenchmarkSplit:
    """MovieLens-100k, target = Comedy, source = Drama; chronological split at ``split_time``.

    Train: the ratings of both domains before ``split_time`` (target rows, then source
    rows); test: those after it (likewise).  Every row's user fields are the user's as of
    that rating (ratings strictly before it, or before the split for test rows:
    :attr:`MovieLensData.exposure_features`), so no row sees its own label or a later
    rating; the segment of a test row is its user's lifecycle as of the split (``new`` =
    cold start).  ``options`` go to :func:`growth.data.movielens.load_movielens`.
    """
    ml = load_movielens(path, **options)
    features = ConversionFeatures(ml.dataset)
    parts = [_movielens_samples(ml, features, d) for d in ("target", "source")]
    cut = np.datetime64(ml.split_time.tz_localize(None) if ml.split_time.tz else ml.split_time)
    order = np.argsort(np.concatenate([[p[2] >= cut] for p in parts], axis=None), kind="stable")
    X = pd.concat([p[0] for p in parts], ignore_index=True).iloc[order].reset_index(drop=True)
    y, t, users, items = (np.concatenate([p[k] for p in parts])[order] for k in (1, 2, 3, 4))
    segment = X["lifecycle"].to_numpy()
    return _split("movielens", features.spec, X, y, segment, users, items, t >= cut)


def _movielens_samples(
    ml: MovieLensData, features: ConversionFeatures, domain: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Model rows, labels, times, user and item positions of ``domain``'s exposures in log order,
    with the user fields as of each exposure and the sample columns ``domain``/``scene``."""
    log = ml.dataset.exposures
    mine = (log["domain"] == domain).to_numpy()
    frame = features.exposure_frame(domain=domain)  # its one scene (every scene: source)
    if not (
        np.array_equal(frame.timestamp, log["timestamp"].to_numpy()[mine])
        and np.array_equal(features.user_ids[frame.user_pos], log["user_id"].to_numpy()[mine])
    ):
        raise ValueError("the MovieLens exposure log is not in time order")
    X = frame.X
    as_of = ml.exposure_features.loc[mine]
    for column in as_of.columns:
        X[column] = as_of[column].to_numpy()
    X["domain"] = domain
    X["scene"] = log["scene"].to_numpy()[mine]
    return X, frame.y, frame.timestamp, frame.user_pos, frame.item_pos


@dataclass(frozen=True)
class ModelVariant:
    """A row of the benchmark table: registered model ``model`` on the fields of ``domains``,
    trained on a seeded ``train_share`` of the training rows, one model per target scene
    when ``per_scene`` (each on its scene's rows; it scores that scene's test rows, the
    default scene's model scores the rest)."""

    label: str
    model: str
    domains: tuple[str, ...] | None = None  # None: every domain of the split's spec
    params: Mapping[str, Any] = field(default_factory=dict)
    train_share: float = 1.0
    per_scene: bool = False


def default_variants(
    registry: Mapping[str, type] = CONVERSION_MODELS,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ModelVariant]:
    """Every model on all domains, by name; those of :data:`TARGET_ONLY_MODELS` also on
    target features only (listed first).

    ``params`` maps a registry name to constructor overrides (e.g. ``{"mlp": {"epochs": 3}}``).
    """
    params = params or {}
    variants = []
    for name in sorted(registry):
        extra = dict(params.get(name, {}))
        if name in TARGET_ONLY_MODELS:
            variants.append(ModelVariant("lightgbm_target", name, TARGET_ONLY_DOMAINS, extra))
            variants.append(ModelVariant("lightgbm_target_source", name, None, extra))
        else:
            variants.append(ModelVariant(name, name, None, extra))
    return variants


@dataclass(frozen=True)
class FitResult:
    """Test-set probabilities of one fitted variant and its training throughput."""

    p_test: np.ndarray
    fit_seconds: float
    samples_per_s: float
    n_train: int


def restrict(spec: FeatureSpec, domains: Sequence[str] | None) -> FeatureSpec:
    """``spec`` limited to the fields of ``domains`` (all when None); errors name unknown domains."""
    if domains is None:
        return spec
    unknown = sorted(set(domains) - set(spec.domains))
    if unknown:
        raise ValueError(f"domains {unknown} are not in the spec; it has {list(spec.domains)}")
    return spec.select(lambda f: f.domain in domains)


def _timed_fit(model: Any, X: pd.DataFrame, y: np.ndarray) -> tuple[float, int]:
    """Fit ``model``; its fit seconds and the rows it passed through its mini-batch updates
    (``train_step``; 0: it has none, -1: it has one but trains in its own loop)."""
    seen = 0
    plain_step = getattr(model, "train_step", None)  # models trained in mini-batches have one

    def counting_step(module, optimizer, cfg, rows, epoch):  # rows through one update
        nonlocal seen
        seen += len(rows[1])
        return plain_step(module, optimizer, cfg, rows, epoch)

    if plain_step is not None:
        model.train_step = counting_step
    start = time.perf_counter()
    try:
        model.fit(X, y)
    finally:
        if plain_step is not None:
            del model.train_step
    return time.perf_counter() - start, seen if seen or plain_step is None else -1


def fit_predict(
    variant: ModelVariant,
    split: BenchmarkSplit,
    seed: int,
    registry: Mapping[str, type] = CONVERSION_MODELS,
) -> FitResult:
    """Fit ``variant`` on ``split``'s training rows (its share of them; per scene when it
    says so); score the test set."""
    if variant.model not in registry:
        raise ValueError(f"unknown model {variant.model!r}; registered: {sorted(registry)}")
    if not 0.0 < variant.train_share <= 1.0:
        raise ValueError(
            f"{variant.label}: train_share must be in (0, 1], got {variant.train_share}"
        )
    spec = restrict(split.spec, variant.domains)
    keep = np.random.default_rng(seed).random(len(split.y_train)) < variant.train_share
    X, y = split.X_train.loc[keep].reset_index(drop=True), split.y_train[keep]
    parts: list[tuple[np.ndarray, np.ndarray]] = [
        (np.ones(len(X), bool), np.ones(len(split.y_test), bool))
    ]
    if variant.per_scene:
        target = (X["domain"] == "target").to_numpy()
        scenes = X.loc[target, "scene"].value_counts().index  # the default scene first
        test_scene = split.X_test["scene"].to_numpy()
        rest = ~np.isin(test_scene, scenes)
        parts = [
            (target & (X["scene"] == s).to_numpy(), (test_scene == s) | (rest if i == 0 else False))
            for i, s in enumerate(scenes)
        ]
    p, seconds, seen = np.full(len(split.y_test), np.nan), 0.0, 0
    for train_rows, test_rows in parts:
        model = registry[variant.model](spec, **{"seed": seed, **variant.params})
        took, rows = _timed_fit(model, X.loc[train_rows], y[train_rows])
        seconds += took
        seen = -1 if rows < 0 or seen < 0 else seen + (rows or int(train_rows.sum()))
        if test_rows.any():
            p[test_rows] = model.predict_proba(split.X_test.loc[test_rows])[:, 1]
    # rows through the mini-batch updates per second (a model without them: training rows
    # per second of fit); a model with its own training loop (no train_step): NaN
    rate = seen / seconds if seen >= 0 else float("nan")
    return FitResult(p, seconds, rate, len(X))


@dataclass
class BenchmarkResult:
    """Long frames: ``metrics`` (dataset, model, seed, by, group, metric, value: ``by`` is
    ``all`` or one of :data:`GROUPINGS`) and ``throughput`` (dataset, model, seed,
    fit_seconds, samples_per_s, n_train); ``failures`` lists ``(dataset, model, seed,
    error)`` of variants that raised; ``scene_domain`` maps each scene seen to its domain."""

    metrics: pd.DataFrame
    throughput: pd.DataFrame
    failures: list[tuple[str, str, int, str]]
    scene_domain: dict[str, str] = field(default_factory=dict)
    popularity: list[pd.DataFrame] = field(default_factory=list)


METRIC_COLUMNS = ["dataset", "model", "seed", "by", "group", "metric", "value"]
THROUGHPUT_COLUMNS = ["dataset", "model", "seed", "fit_seconds", "samples_per_s", "n_train"]


def run_benchmark(
    datasets: Mapping[str, Callable[[int], BenchmarkSplit]],
    *,
    variants: Sequence[ModelVariant] | None = None,
    seeds: Iterable[int] = (0, 1, 2),
    registry: Mapping[str, type] = CONVERSION_MODELS,
    skip_errors: bool = True,
    log: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Fit every variant on every dataset for every seed; collect metrics and throughput.

    ``datasets`` maps a name to a function ``seed -> BenchmarkSplit``.  With
    ``skip_errors`` a variant that raises is recorded in ``failures`` (and
    logged) and the run goes on; otherwise the error propagates.
    """
    variants = list(variants) if variants is not None else default_variants(registry)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    result = BenchmarkResult(pd.DataFrame(columns=METRIC_COLUMNS), pd.DataFrame(), [])
    metric_parts, rows = [], []
    for dataset, make_split in datasets.items():
        for seed in seeds:
            split = make_split(seed)
            result.scene_domain.update(
                zip(split.groups["scene"], split.groups["domain"], strict=True)
            )
            ranges = popularity_ranges(split.groups).assign(dataset=dataset, seed=seed)
            result.popularity.append(ranges)
            groups = {g: split.groups[g].to_numpy() for g in GROUPINGS}
            for variant in variants:
                try:
                    fit = fit_predict(variant, split, seed, registry)
                except Exception as err:
                    if not skip_errors:
                        raise
                    result.failures.append(
                        (dataset, variant.label, seed, f"{type(err).__name__}: {err}")
                    )
                    if log is not None:
                        log(f"skipped {variant.label} on {dataset} (seed {seed}): {err}")
                        log(traceback.format_exc(limit=3))
                    continue
                m = metrics_by(split.y_test, fit.p_test, groups)
                metric_parts.append(m.assign(dataset=dataset, model=variant.label, seed=seed))
                rows.append(
                    [dataset, variant.label, seed, fit.fit_seconds, fit.samples_per_s, fit.n_train]
                )
                if log is not None:
                    auc = m.query("by == 'domain' and metric == 'auc'").set_index("group")["value"]
                    log(
                        f"{dataset:<10} seed {seed} {variant.label:<26} AUC target "
                        f"{auc.get('target', np.nan):.4f} source {auc.get('source', np.nan):.4f} "
                        f"fit {fit.fit_seconds:6.1f}s {fit.samples_per_s:10.0f} samples/s"
                    )
    if metric_parts:
        result.metrics = pd.concat(metric_parts, ignore_index=True)[METRIC_COLUMNS]
    result.throughput = pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS)
    return result
