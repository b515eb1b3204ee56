"""Train and evaluate the conversion predictors on a dataset's exposure log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from growth.data.schema import NO_COUPON
from growth.modeling.features import ConversionFeatures, ExposureFrame
from predictors.basket import BasketSizeModel
from predictors.lgbm import LightGBMModel
from predictors.metrics import qini_coefficient, segment_metrics
from predictors.models import REGISTRY
from predictors.torch.base import TorchEstimator

log = logging.getLogger(__name__)

PREDICTORS = {"lightgbm": LightGBMModel}
"""Tabular conversion models the nightly job can use, by name; torch models come from REGISTRY."""
AUTO = "auto"
"""Predictor name resolved per dataset by :func:`candidate_predictors` and the holdout."""
CROSS_DOMAIN_PREDICTOR = "csde"
"""The cross-domain model ``auto`` trains when the dataset has source-domain features."""
FALLBACK_PREDICTOR = "lightgbm"
"""The tabular model ``auto`` always trains (alone when there is no source domain)."""
SELECTION_METRIC = "qini"
"""Holdout metric (segment ``all``, higher is better) by which ``auto`` picks its model.

The coupon plan ranks users by predicted *incremental* conversion, so ``auto``
compares models by how well they rank uplift on the randomised coupon holdout
(:func:`holdout_qini`) rather than by conversion log loss.
"""
SELECTION_FOLDS = 10
"""User folds of the holdout over which :func:`choose_model` measures the Qini difference's noise."""
SELECTION_Z = 2.0
"""A challenger replaces ``auto``'s default model only when its holdout Qini is higher by at
least this many standard errors of the paired per-fold difference (:func:`choose_model`)."""
QINI_MAX_ROWS = 300_000
"""Holdout rows (a seeded sample) :func:`holdout_qini` scores, to bound its cost at 1M users."""


def available_predictors() -> list[str]:
    """Every predictor name ``train_models`` accepts: ``auto``, the tabular ones, the torch REGISTRY."""
    torch_models = {n for n, c in REGISTRY.items() if issubclass(c, TorchEstimator)}
    return [AUTO, *sorted(set(PREDICTORS) | torch_models)]


def has_source_domain(features: ConversionFeatures) -> bool:
    """True when some user has a non-missing source-domain field (``src_*`` columns).

    Missing is NaN for numbers and NaN or ``""`` for strings (empty tags or sequences).
    """
    names = [f.name for f in features.raw_spec().of_domain("source")]
    for name in names:
        column = features.dataset.users[name]
        present = column.notna()
        if not pd.api.types.is_numeric_dtype(column):
            present &= column.astype(str) != ""
        if present.any():
            return True
    return False


def candidate_predictors(predictor: str, features: ConversionFeatures) -> list[str]:
    """The models to train: ``predictor`` itself, or for ``auto`` CSDE and LightGBM.

    ``auto`` is default/challenger: with a source domain CSDE (the cross-domain
    model) is the default and LightGBM the challenger, which replaces it only
    when it ranks uplift clearly better on the holdout (:func:`choose_model`);
    without a source domain CSDE has nothing to transfer and LightGBM trains
    alone.  The first name returned is the default.
    """
    if predictor != AUTO:
        return [predictor]
    source = has_source_domain(features) and CROSS_DOMAIN_PREDICTOR in REGISTRY
    chosen = [CROSS_DOMAIN_PREDICTOR, FALLBACK_PREDICTOR] if source else [FALLBACK_PREDICTOR]
    log.info(
        "predictor auto -> %s (%s)",
        " vs ".join(chosen),
        "source-domain features present" if source else "no source-domain features",
    )
    return chosen


def sample_rows(rows: np.ndarray, max_rows: int | None, *, seed: int) -> np.ndarray:
    """A seeded sample of at most ``max_rows`` of ``rows``, in their original order.

    Returns ``rows`` itself when they already fit (or ``max_rows`` is None).
    """
    if max_rows is None or len(rows) <= max_rows:
        return rows
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1 (or None for no cap), got {max_rows}")
    rng = np.random.default_rng(seed)
    return rows[np.sort(rng.choice(len(rows), size=max_rows, replace=False))]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave torch's setting).

    On 2 shared cores one thread is the safe choice: with other processes busy,
    2 threads spin-wait at every op and CSDE trained 6-10x slower (1-2k vs 13k
    samples/s measured); the previous setting is restored afterwards.  Keep
    LightGBM outside the block: torch sets OpenMP's thread count, which
    LightGBM shares (it trained on one core under it).
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def uses_raw_frame(model: object) -> bool:
    """True for models that read :meth:`ConversionFeatures.raw_frame` rows (the torch models)."""
    return isinstance(model, TorchEstimator)


@dataclass
class TrainedModels:
    """The fitted models and their holdout metrics (long frame: model, segment, metric, value).

    ``metrics`` has rows for every model trained (``auto`` trains two); the
    ``conversion`` model is the one named ``predictor``.
    """

    predictor: str  # the conversion model's name (``auto`` resolved)
    conversion: LightGBMModel | TorchEstimator
    basket: BasketSizeModel
    metrics: pd.DataFrame
    n_train: int  # rows the conversion model learnt from
    n_holdout: int


def chronological_split(frame: ExposureFrame, holdout_fraction: float) -> np.ndarray:
    """Boolean mask of the holdout: the latest ``holdout_fraction`` of rows by timestamp."""
    n = len(frame.y)
    cut = int(np.floor((1.0 - holdout_fraction) * n))
    holdout = np.zeros(n, dtype=bool)
    holdout[cut:] = True  # frame rows are already in timestamp order
    return holdout


@dataclass
class FittedCandidate:
    """One conversion model fitted on the older rows and scored on the holdout."""

    name: str
    model: LightGBMModel | TorchEstimator
    metrics: pd.DataFrame
    n_train: int
    qini: HoldoutQini


def _fit_conversion(
    name: str,
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    *,
    max_train_rows: int | None,
    threads: int | None,
    seed: int,
) -> FittedCandidate:
    """Fit predictor ``name`` on the rows outside ``holdout``, evaluate it by segment on it.

    A torch model reads :meth:`ConversionFeatures.raw_frame` rows, built only for
    its training sample and the holdout (not the whole log), under ``threads``.
    """
    train = ~holdout
    tabular = name in PREDICTORS
    build = features.frame if tabular else features.raw_frame
    threads = None if tabular else threads  # LightGBM shares OpenMP's thread count: leave it

    def rows_of(rows: np.ndarray) -> pd.DataFrame:
        return build(frame.user_pos[rows], frame.item_pos[rows], frame.option_pos[rows])

    with torch_threads(threads):
        if tabular:
            model = PREDICTORS[name](seed=seed).fit(
                frame.X.loc[train], frame.y[train], categorical=features.categorical
            )
            n_train = int(train.sum())
            p = model.predict_proba(frame.X.loc[holdout])[:, 1]
        else:
            rows = sample_rows(np.flatnonzero(train), max_train_rows, seed=seed)
            n_train = len(rows)
            model = REGISTRY[name](features.raw_spec(), seed=seed)
            log.info(
                "%s: training on %d of %d rows with %d torch threads",
                name,
                n_train,
                int(train.sum()),
                torch.get_num_threads(),
            )
            model.fit(rows_of(rows), frame.y[rows])
            p = model.predict_proba(rows_of(np.flatnonzero(holdout)))[:, 1]
        metrics = segment_metrics(frame.y[holdout], p, frame.segment[holdout])
        qini = holdout_qini(
            lambda u, i, k: model.predict_proba(build(u, i, k))[:, 1],
            features,
            frame,
            holdout,
            seed=seed,
        )
    metrics.loc[len(metrics)] = {"segment": "all", "metric": "qini", "value": qini.value}
    metrics.insert(0, "model", name)
    auc = metrics.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
    log.info("%s: holdout AUC %.4f, Qini %.6f on %d rows", name, auc, qini.value, holdout.sum())
    return FittedCandidate(name, model, metrics, n_train, qini)


@dataclass(frozen=True)
class HoldoutQini:
    """:func:`holdout_qini` on every sampled holdout row (``value``) and on each user fold."""

    value: float
    folds: np.ndarray  # (SELECTION_FOLDS,), NaN where a fold lacks an experiment


def choose_model(fitted: list[FittedCandidate]) -> tuple[FittedCandidate, str]:
    """The default (first) model unless a challenger ranks uplift clearly better; and why.

    A challenger wins when the mean of its per-fold Qini minus the current
    choice's exceeds :data:`SELECTION_Z` standard errors of that paired
    difference (the folds split the same holdout by user, so both models are
    compared on the same experiments).  A near tie keeps the default: on the
    demo world LightGBM's edge in Qini over CSDE is within the noise while CSDE
    decides better on the truth (``benchmarks/README.md``).
    """
    best, reasons = fitted[0], [f"{fitted[0].name} is the default"]
    for challenger in fitted[1:]:
        diff = challenger.qini.folds - best.qini.folds
        diff = diff[np.isfinite(diff)]
        if len(diff) < 2:
            reasons.append(f"{challenger.name}: too few holdout folds to compare")
            continue
        mean, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
        wins = mean > SELECTION_Z * se
        reasons.append(
            f"{challenger.name} Qini {mean:+.6f} +- {se:.6f} (se) vs {best.name}: "
            + ("clearly better, chosen" if wins else f"not {SELECTION_Z:g} se better")
        )
        if wins:
            best = challenger
    return best, "; ".join(reasons)


def holdout_qini(
    predict,
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    *,
    max_rows: int = QINI_MAX_ROWS,
    n_folds: int = SELECTION_FOLDS,
    seed: int = 0,
) -> HoldoutQini:
    """Treated-row-weighted mean Qini coefficient of the coupon options on the holdout.

    The exposure log's coupons are randomised, so for option ``k`` its rows and
    the 'none' rows form an experiment: rank both by the predicted uplift
    ``p(k) - p(none)`` of the same (user, item) and score the ranking with
    :func:`predictors.metrics.qini_coefficient`.  ``predict(user_pos,
    item_pos, option_pos)`` gives conversion probabilities; a merchant coupon on
    another merchant's item has uplift 0 by the scoring rule.  At most
    ``max_rows`` holdout rows (seeded sample) are used.  The same score on each
    of ``n_folds`` seeded user folds measures its noise (:func:`choose_model`).
    """
    if frame.item_pos is None or frame.option_pos is None:
        raise ValueError("holdout_qini needs an ExposureFrame with item and option positions")
    none = features.option_ids.index(NO_COUPON)
    idx = sample_rows(np.flatnonzero(holdout), max_rows, seed=seed)
    u, i, t, y = frame.user_pos[idx], frame.item_pos[idx], frame.option_pos[idx], frame.y[idx]
    user_fold = np.random.default_rng(seed).integers(0, n_folds, size=len(features.user_ids))
    fold = user_fold[u]
    control = t == none
    p_none = predict(u, i, np.full(len(idx), none))
    experiments = []  # (rows, treated, uplift) per coupon option
    for k in range(len(features.option_ids)):
        rows = np.flatnonzero((t == k) | control)
        if k == none or not (t[rows] == k).any():
            continue
        k_rows = np.full(len(rows), k)
        uplift = predict(u[rows], i[rows], k_rows) - p_none[rows]
        uplift[features.inapplicable(i[rows], k_rows)] = 0.0
        experiments.append((rows, t[rows] == k, uplift))

    def score(in_fold: np.ndarray | None) -> float:
        total, weight = 0.0, 0
        for rows, treated, uplift in experiments:
            keep = slice(None) if in_fold is None else in_fold[rows]
            n_treated = int(treated[keep].sum())
            if n_treated == 0 or n_treated == len(treated[keep]):
                continue
            total += qini_coefficient(y[rows][keep], treated[keep], uplift[keep]) * n_treated
            weight += n_treated
        return total / weight if weight else float("nan")

    return HoldoutQini(
        value=score(None), folds=np.array([score(fold == f) for f in range(n_folds)])
    )


def train_models(
    features: ConversionFeatures,
    *,
    predictor: str = FALLBACK_PREDICTOR,
    holdout_fraction: float = 0.2,
    max_train_rows: int | None = None,
    torch_threads: int | None = None,
    seed: int = 0,
) -> TrainedModels:
    """Fit the conversion model on the older exposures, evaluate on the newest ones by segment.

    ``predictor`` names a tabular model of :data:`PREDICTORS` (fitted on the
    tabular frame), a torch model of ``predictors.models.REGISTRY`` (fitted on
    the raw frame described by ``features.raw_spec()``) or ``auto`` (see
    :func:`candidate_predictors`: with several candidates :func:`choose_model`
    picks by holdout :data:`SELECTION_METRIC`).  ``max_train_rows`` caps a torch model's
    training rows at a seeded sample of the older exposures (LightGBM and the
    basket model use them all); the holdout is always the whole newest
    ``holdout_fraction``.  ``torch_threads`` sets torch's threads while a torch
    model trains and predicts (None: leave them).  The basket model is fitted
    on converted exposures with an order value.
    """
    if predictor not in available_predictors():
        raise ValueError(f"unknown predictor {predictor!r}; choose one of {available_predictors()}")
    frame = features.exposure_frame()
    holdout = chronological_split(frame, holdout_fraction)
    fitted = [
        _fit_conversion(
            name,
            features,
            frame,
            holdout,
            max_train_rows=max_train_rows,
            threads=torch_threads,
            seed=seed,
        )
        for name in candidate_predictors(predictor, features)
    ]
    best, why = choose_model(fitted)
    if len(fitted) > 1:
        log.info("auto: %s chosen by holdout %s (%s)", best.name, SELECTION_METRIC, why)
    train = ~holdout
    basket = BasketSizeModel(seed=seed).fit(frame.X.loc[train], frame.order_value[train])
    return TrainedModels(
        predictor=best.name,
        conversion=best.model,
        basket=basket,
        metrics=pd.concat([f.metrics for f in fitted], ignore_index=True),
        n_train=best.n_train,
        n_holdout=int(holdout.sum()),
    )
