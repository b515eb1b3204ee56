"""Evaluation harness of the conversion predictors: datasets -> splits -> every model -> metrics.

Every model sees the same split of a dataset and is scored with the same
metrics (:func:`predictors.metrics.segment_metrics`: AUC, log loss, calibration
error, overall and by lifecycle segment), repeated over seeds so that each
number comes with a spread.

Datasets (a :class:`BenchmarkSplit` each):

- **world** (:func:`world_split`): the simulated world, *user-level* holdout: a
  seeded ``test_fraction`` of users and all their exposures form the test set,
  so new, lost and potential users appear there (a chronological cut would
  leave no lost user in the test window).  Seed ``s`` generates world ``s``.
- **movielens** (:func:`movielens_split`): MovieLens-100k with Comedy as target
  and Drama as source domain; train = target ratings before ``split_time``,
  test = target ratings after it.  Target-side cold-start users (``new``) have
  no target rating before the split, so they are held out by construction.
  Each row's user fields are point-in-time (the user's ratings strictly before
  the row; before the split for test rows), and rows carry the sample columns
  ``domain`` and ``scene``.

Auxiliary rows (for the multi-task and fine-tune models, those whose
constructor has ``aux_column``): MovieLens uses its source-domain (Drama)
ratings before the split, labelled source samples (``domain="source"``).  The
world logs only target exposures, so its auxiliary task is conversion seen
through the *source-only view*: copies of the
training rows with every target-domain field blanked, labelled with the same
conversion.  That is exactly the input a new user presents, so the auxiliary
task teaches the shared layers to predict from source features alone.  The
auxiliary rows reach the model with ``sample_weight`` 0 (they train the
auxiliary head / the pretraining phase, never the main head).

Every registered conversion model reads the same raw frames and its
feature spec; those of :data:`TARGET_ONLY_MODELS` (LightGBM) run twice: on
target features only (domains user, target, item, treatment) and on target +
source features.  Training throughput is the number of rows passed through the
training loss per second of ``fit`` (models trained in mini-batches), or
training rows per second of the whole ``fit`` (models without a loss hook,
such as LightGBM).

Example::

    result = run_benchmark({"world": lambda s: world_split(2_000, seed=s)}, seeds=(0, 1, 2))
    print(format_table(result, "world"))
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

from growth.data.movielens import MovieLensData, load_movielens
from growth.modeling.features import ConversionFeatures
from growth.world import WorldConfig, generate_world
from predictors.base import constructor_params
from predictors.features import FeatureSpec
from predictors.metrics import segment_metrics
from predictors.registry import get_predictor, predictor_names

AUX_COLUMN = "aux_label"
TARGET_ONLY_DOMAINS = ("user", "target", "item", "treatment")
SEGMENT_ORDER = ("all", "active", "new", "lost", "potential")
TABLE_METRICS = ("auc", "logloss", "ece")
TARGET_ONLY_MODELS = ("lightgbm",)
"""Models that also run on target features only (a second row of the table)."""
CONVERSION_MODELS: dict[str, type] = {n: get_predictor(n) for n in predictor_names("conversion")}
"""The registered conversion models by name: the benchmark's default models."""


@dataclass(frozen=True)
class BenchmarkSplit:
    """One dataset cut into the rows every model trains and is tested on.

    ``spec`` is the unfitted raw spec of the frames (domains source, target,
    user, item, treatment); ``X_aux``/``y_aux`` are the auxiliary rows and
    ``aux_note`` says what they are.
    """

    dataset: str
    spec: FeatureSpec
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    segment_test: np.ndarray
    X_aux: pd.DataFrame
    y_aux: np.ndarray
    aux_note: str

    def __post_init__(self) -> None:
        for part, X, y in (
            ("train", self.X_train, self.y_train),
            ("test", self.X_test, self.y_test),
            ("aux", self.X_aux, self.y_aux),
        ):
            if len(X) != len(y):
                raise ValueError(
                    f"{self.dataset}: X_{part} has {len(X)} rows but y_{part} {len(y)}"
                )
        if len(self.segment_test) != len(self.y_test):
            raise ValueError(f"{self.dataset}: segment_test must have one entry per test row")


def blank_domain(X: pd.DataFrame, spec: FeatureSpec, domain: str) -> pd.DataFrame:
    """Copy of ``X`` with every field of ``domain`` missing (NaN numeric, ``""`` multi, None categorical)."""
    out = X.copy()
    for f in spec.of_domain(domain):
        if f.kind == "numeric":
            out[f.name] = np.nan
        elif f.kind == "multi":
            out[f.name] = ""
        else:
            out[f.name] = None
    return out


def world_split(
    n_users: int = 30_000, *, seed: int = 0, test_fraction: float = 0.3
) -> BenchmarkSplit:
    """Simulated world ``seed`` with a seeded user-level holdout of ``test_fraction`` of users."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    world = generate_world(WorldConfig(n_users=n_users, seed=seed))
    features = ConversionFeatures(world.dataset)
    frame = features.exposure_frame()
    test_user = np.random.default_rng(seed).random(len(features.user_ids)) < test_fraction
    test = test_user[frame.user_pos]
    spec = features.spec
    X_train = frame.X.loc[~test].reset_index(drop=True)
    y_train = frame.y[~test]
    return BenchmarkSplit(
        dataset="world",
        spec=spec,
        X_train=X_train,
        y_train=y_train,
        X_test=frame.X.loc[test].reset_index(drop=True),
        y_test=frame.y[test],
        segment_test=frame.segment[test],
        X_aux=blank_domain(X_train, spec, "target"),
        y_aux=y_train.copy(),
        aux_note="training rows with target fields blanked (source-only view), same label",
    )


def movielens_split(path: str | Path, **options: Any) -> BenchmarkSplit:
    """MovieLens-100k, target = Comedy, source = Drama; chronological split at ``split_time``.

    Every row's user fields are the user's as of that rating (ratings strictly before it, or
    before the split for test rows: :attr:`MovieLensData.exposure_features`), so no row sees
    its own label or a later rating.  Rows carry the sample columns ``domain`` and ``scene``:
    train and test rows are the target's, the auxiliary rows are the source's labelled
    samples (``y_aux`` is their own label).  ``options`` go to
    :func:`growth.data.movielens.load_movielens` (e.g. ``target_genres``).
    """
    ml = load_movielens(path, **options)
    features = ConversionFeatures(ml.dataset)
    target, y_target, t_target = _movielens_samples(ml, features, "target")
    source, y_source, t_source = _movielens_samples(ml, features, "source")
    cut = np.datetime64(ml.split_time.tz_localize(None) if ml.split_time.tz else ml.split_time)
    train = t_target < cut
    aux = t_source < cut
    X_test = target.loc[~train].reset_index(drop=True)
    return BenchmarkSplit(
        dataset="movielens",
        spec=features.spec,
        X_train=target.loc[train].reset_index(drop=True),
        y_train=y_target[train],
        X_test=X_test,
        y_test=y_target[~train],
        segment_test=X_test["lifecycle"].to_numpy(),  # as of the split: `new` = cold start
        X_aux=source.loc[aux].reset_index(drop=True),
        y_aux=y_source[aux],
        aux_note="source-domain (Drama) ratings before split_time, labelled source samples",
    )


def _movielens_samples(
    ml: MovieLensData, features: ConversionFeatures, domain: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Model rows, labels and times of ``domain``'s exposures in log order, with the user
    fields as of each exposure and the sample columns ``domain``/``scene``."""
    log = ml.dataset.exposures
    mine = (log["domain"] == domain).to_numpy()
    frame = features.exposure_frame(domain=domain)  # this domain's rows, in time order
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
    return X, frame.y, frame.timestamp


@dataclass(frozen=True)
class ModelVariant:
    """A row of the benchmark table: registered model ``model`` on the fields of ``domains``."""

    label: str
    model: str
    domains: tuple[str, ...] | None = None  # None: every domain of the split's spec
    params: Mapping[str, Any] = field(default_factory=dict)


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


def fit_predict(
    variant: ModelVariant,
    split: BenchmarkSplit,
    seed: int,
    registry: Mapping[str, type] = CONVERSION_MODELS,
) -> FitResult:
    """Fit ``variant`` on ``split``'s training (and, if it takes them, auxiliary) rows; score the test set."""
    if variant.model not in registry:
        raise ValueError(f"unknown model {variant.model!r}; registered: {sorted(registry)}")
    cls = registry[variant.model]
    spec = restrict(split.spec, variant.domains)
    X, y, weight = split.X_train, split.y_train, None
    if "aux_column" in constructor_params(cls) and len(split.X_aux):
        X = pd.concat(
            [
                split.X_train.assign(**{AUX_COLUMN: np.nan}),
                split.X_aux.assign(**{AUX_COLUMN: split.y_aux.astype(np.float64)}),
            ],
            ignore_index=True,
        )
        y = np.concatenate([split.y_train, np.zeros(len(split.y_aux), dtype=split.y_train.dtype)])
        weight = np.concatenate([np.ones(len(split.y_train)), np.zeros(len(split.y_aux))])
    model = cls(spec, **{"seed": seed, **variant.params})
    seen = 0
    plain_loss = getattr(model, "loss", None)  # models trained in mini-batches have one

    def counting_loss(module, batch, target, w):  # rows through the training loss
        nonlocal seen
        seen += len(target)
        return plain_loss(module, batch, target, w)

    if plain_loss is not None:
        model.loss = counting_loss
    start = time.perf_counter()
    try:
        model.fit(X, y, **({} if weight is None else {"sample_weight": weight}))
    finally:
        if plain_loss is not None:
            del model.loss
    seconds = time.perf_counter() - start
    p = model.predict_proba(split.X_test)[:, 1]
    # rows through the loss per second; a model without a loss hook: training rows per
    # second of fit; a model with its own training loop (no call to loss()): NaN
    rate = seen / seconds if seen else (len(X) / seconds if plain_loss is None else float("nan"))
    return FitResult(p, seconds, rate, len(X))


@dataclass
class BenchmarkResult:
    """Long frames: ``metrics`` (dataset, model, seed, segment, metric, value) and
    ``throughput`` (dataset, model, seed, fit_seconds, samples_per_s, n_train);
    ``failures`` lists ``(dataset, model, seed, error)`` of variants that raised."""

    metrics: pd.DataFrame
    throughput: pd.DataFrame
    failures: list[tuple[str, str, int, str]]


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
    metric_parts, rows, failures = [], [], []
    for dataset, make_split in datasets.items():
        for seed in seeds:
            split = make_split(seed)
            for variant in variants:
                try:
                    fit = fit_predict(variant, split, seed, registry)
                except Exception as err:
                    if not skip_errors:
                        raise
                    failures.append((dataset, variant.label, seed, f"{type(err).__name__}: {err}"))
                    if log is not None:
                        log(f"skipped {variant.label} on {dataset} (seed {seed}): {err}")
                        log(traceback.format_exc(limit=3))
                    continue
                m = segment_metrics(split.y_test, fit.p_test, split.segment_test)
                metric_parts.append(m.assign(dataset=dataset, model=variant.label, seed=seed))
                rows.append(
                    {
                        "dataset": dataset,
                        "model": variant.label,
                        "seed": seed,
                        "fit_seconds": fit.fit_seconds,
                        "samples_per_s": fit.samples_per_s,
                        "n_train": fit.n_train,
                    }
                )
                if log is not None:
                    auc = m.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
                    log(
                        f"{dataset:<10} seed {seed} {variant.label:<24} AUC {auc:.4f} "
                        f"fit {fit.fit_seconds:6.1f}s {fit.samples_per_s:10.0f} samples/s"
                    )
    columns = ["dataset", "model", "seed", "segment", "metric", "value"]
    metrics = pd.concat(metric_parts, ignore_index=True)[columns] if metric_parts else None
    return BenchmarkResult(
        metrics=metrics if metrics is not None else pd.DataFrame(columns=columns),
        throughput=pd.DataFrame(
            rows, columns=["dataset", "model", "seed", "fit_seconds", "samples_per_s", "n_train"]
        ),
        failures=failures,
    )


def summarize(result: BenchmarkResult) -> pd.DataFrame:
    """Mean, standard deviation and seed count per (dataset, model, segment, metric)."""
    grouped = result.metrics.groupby(["dataset", "model", "segment", "metric"], sort=False)
    return grouped["value"].agg(mean="mean", std="std", n_seeds="count").reset_index()


def format_table(
    result: BenchmarkResult,
    dataset: str,
    *,
    metrics: Sequence[str] = TABLE_METRICS,
    segments: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One table: rows = models, columns = ``segment metric`` as ``mean±std``, plus samples/s."""
    summary = summarize(result)
    summary = summary[(summary["dataset"] == dataset) & summary["metric"].isin(metrics)]
    if summary.empty:
        raise ValueError(f"no metrics for dataset {dataset!r}")
    present = set(summary["segment"])
    segments = [s for s in (segments or SEGMENT_ORDER) if s in present]
    models = list(dict.fromkeys(summary["model"]))
    table = pd.DataFrame(index=pd.Index(models, name="model"))
    for segment in segments:
        for metric in metrics:
            cell = summary[(summary["segment"] == segment) & (summary["metric"] == metric)]
            text = {
                r.model: f"{r.mean:.4f}±{0.0 if np.isnan(r.std) else r.std:.4f}"
                for r in cell.itertuples()
            }
            table[f"{segment} {metric}"] = [text.get(m, "") for m in models]
    speed = result.throughput[result.throughput["dataset"] == dataset]
    rate = speed.groupby("model")["samples_per_s"].mean()
    table["samples/s"] = [f"{rate.get(m, np.nan):,.0f}" for m in models]
    return table


def store_benchmark(result: BenchmarkResult, store: Any, config: Mapping[str, Any]) -> int:
    """Write every metric (one row per dataset, model, segment, metric, seed) as a 'benchmark' run."""
    rows = result.metrics.assign(value=result.metrics["value"].astype(float))
    rows = rows.replace({"value": {np.inf: np.nan, -np.inf: np.nan}})
    with store.run(kind="benchmark", config=dict(config)) as run:
        run.add_model_metrics(rows[["model", "dataset", "segment", "metric", "value", "seed"]])
        run.summary = {
            "failures": [list(f) for f in result.failures],
            "samples_per_s": {
                f"{d}/{m}": float(v)
                for (d, m), v in result.throughput.groupby(["dataset", "model"])["samples_per_s"]
                .mean()
                .items()
            },
        }
        return run.id
