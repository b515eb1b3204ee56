"""Train and evaluate the conversion predictors on a dataset's exposure log."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch

from growth.modeling.calibration import spend_calibration
from growth.modeling.concurrency import side_by_side
from growth.modeling.features import ConversionFeatures, ExposureFrame
from growth.modeling.recalibration import GroupCalibrator, Recalibration, recalibrate
from growth.modeling.sampling import (
    HOLDOUT_FRACTION,
    HOLDOUT_MIN_ROWS,
    chronological_split,
    sample_rows,
)
from growth.modeling.selection import (
    CROSS_DOMAIN_PREDICTOR,
    FALLBACK_PREDICTOR,
    SELECTION_METRIC,
    FittedCandidate,
    available_predictors,
    candidate_predictors,
    choose_model,
    counterfactual,
    cross_domain_names,
    holdout_qini,
)
from predictors.basket import BasketSizeModel
from predictors.metrics import segment_metrics
from predictors.registry import get_predictor
from predictors.torch.base import using_torch_threads

log = logging.getLogger(__name__)

VALUE_FOLDS = 2
"""Folds of the holdout's users a plan's value is cross-fitted over (see ``train_models``)."""


@dataclass
class TrainedModels:
    """The fitted models and their holdout metrics (long frame: model, domain, scene,
    segment, metric, value).

    ``metrics`` has rows for every model trained (``auto`` trains two), on the decision
    scene's holdout; ``sample_metrics`` the same on the newest rows of every other
    domain and scene (None: there are none).  The ``conversion`` model is the one
    named ``predictor``.
    """

    predictor: str  # the conversion model's name (``auto`` resolved)
    conversion: Any  # a registered conversion estimator
    basket: BasketSizeModel
    metrics: pd.DataFrame
    n_train: int  # rows the conversion model learnt from
    n_holdout: int
    calibration: pd.DataFrame | None = None  # predicted vs observed spend per option (holdout)
    recalibration: Recalibration | None = None  # conversion calibrated per option x segment
    reach: Recalibration | None = None  # threshold reach (redemption) per option x segment
    uplift: pd.DataFrame | None = None
    """Per lifecycle segment, the coupon effects' slope on the log and the factor the value
    side stretches them by (:mod:`growth.campaigns.coupons.uplift`; None: not fitted)."""
    frame: ExposureFrame | None = (
        None  # the exposure rows the models learnt from and were judged on
    )
    holdout: np.ndarray | None = None  # boolean mask of ``frame``'s randomised holdout
    sample_metrics: pd.DataFrame | None = None  # per other domain and scene (newest rows)
    alternatives: list[TrainedModels] = field(default_factory=list)
    """The other candidates ``auto`` trained, each calibrated like the chosen one, so a
    later stage can choose again by their plans' value (:mod:`growth.campaigns.coupons.choice`)."""
    value_folds: list[TrainedModels] = field(default_factory=list)
    """The same model calibrated on all but one fold of the holdout's users, its ``holdout``
    that fold's rows: a plan made from these predictions can be valued on rows it never
    saw (:func:`growth.campaigns.coupons.value.cross_fitted_value`)."""

    def metrics_by_sample(self) -> pd.DataFrame:
        """Every metric row, the decision scene's and the other domains' and scenes'."""
        return pd.concat([self.metrics, self.sample_metrics], ignore_index=True)

    def candidates(self) -> list[TrainedModels]:
        """This model first, then the alternatives (no alternatives of their own)."""
        return [replace(self, alternatives=[]), *self.alternatives]

    @property
    def calibrator(self) -> GroupCalibrator | None:
        """The per option x segment calibrator of the conversion model's probabilities."""
        return None if self.recalibration is None else self.recalibration.calibrator

    @property
    def reach_calibrator(self) -> GroupCalibrator | None:
        """The per option x segment calibrator of the basket model's threshold reach."""
        return None if self.reach is None else self.reach.calibrator

    def calibration_summary(self) -> list[dict]:
        """Conversion's and redemption's before/after rows (``quantity`` names which)."""
        return [
            row for r in (self.recalibration, self.reach) if r is not None for row in r.summary()
        ]


@dataclass
class _Rows:
    """The exposure rows models learn from and are judged on, each built once for every model."""

    frame: ExposureFrame
    older: np.ndarray  # positions in ``frame`` of the rows before the holdout
    sample: np.ndarray  # a seeded sample of ``older`` (at most ``max_train_rows``)
    holdout: np.ndarray  # boolean mask over ``frame``
    newer: ExposureFrame  # the other domains' and scenes' rows from the holdout's start on
    built: dict[int, pd.DataFrame] = field(default_factory=dict)

    def training(self, model: Any) -> np.ndarray:
        """The rows ``model`` learns from: the sample if it trains on one, else every older row."""
        return self.sample if model.trains_on_sample else self.older

    def X(self, rows: np.ndarray) -> pd.DataFrame:
        """Raw rows of ``rows`` (``older`` or ``sample``), built at most once each."""
        if len(rows) not in self.built:
            every = self.built.get(len(self.older))
            self.built[len(rows)] = (
                self.frame.rows(rows)
                if every is None
                else every.iloc[np.searchsorted(self.older, rows)].reset_index(drop=True)
            )
        return self.built[len(rows)]

    @cached_property
    def X_holdout(self) -> pd.DataFrame:
        return self.frame.rows(np.flatnonzero(self.holdout))


def _training_rows(
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    max_train_rows: int | None,
    max_source_rows: int | None,
    seed: int,
) -> _Rows:
    """The decision scene's ``frame`` followed by the labelled samples logged before its
    holdout (the other scenes' rows and at most ``max_source_rows`` source rows, a seeded
    sample); the holdout stays the decision scene's newest rows."""
    start = frame.timestamp[holdout].min() if holdout.any() else frame.timestamp.max() + 1
    extra = features.transfer_frame(start)
    source = np.flatnonzero(extra.domain == "source")
    if max_source_rows == 0:
        source = source[:0]
    kept = np.union1d(
        np.flatnonzero(extra.domain != "source"), sample_rows(source, max_source_rows, seed=seed)
    )
    both = frame.concat(extra)
    older = np.concatenate([np.flatnonzero(~holdout), len(frame) + kept])
    mask = np.concatenate([holdout, np.zeros(len(extra), dtype=bool)])
    newer = features.transfer_frame(start, newer=True)
    return _Rows(both, older, sample_rows(older, max_train_rows, seed=seed), mask, newer)


def sample_metrics(model: Any, frame: ExposureFrame, name: str) -> pd.DataFrame:
    """``model``'s metrics by domain, scene and lifecycle segment on ``frame``'s rows."""
    if len(frame) == 0:
        return pd.DataFrame(columns=["model", "domain", "scene", "segment", "metric", "value"])
    p = model.predict_proba(frame.rows())[:, 1]
    keys = pd.DataFrame({"domain": frame.domain, "scene": frame.scene})
    parts = [
        segment_metrics(frame.y[g], p[g], frame.segment[g]).assign(domain=d, scene=s)
        for (d, s), g in keys.groupby(["domain", "scene"], sort=True).indices.items()
    ]
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "model", name)
    return out[["model", "domain", "scene", "segment", "metric", "value"]]


def _fit_conversion(
    name: str, features: ConversionFeatures, rows: _Rows, *, seed: int, progress: bool
) -> FittedCandidate:
    """Fit predictor ``name`` on its training rows, evaluate it by segment on the holdout."""
    frame = rows.frame
    model = get_predictor(name)(features.spec, seed=seed, verbose=progress)
    train = rows.training(model)
    log.info(
        "%s: training on %d of %d older rows, %d torch threads",
        name,
        len(train),
        len(rows.older),
        torch.get_num_threads(),
    )
    model.fit(rows.X(train), frame.y[train])
    p = model.predict_proba(rows.X_holdout)[:, 1]
    return judged_candidate(name, model, features, rows, p, len(train), seed=seed)


def judged_candidate(
    name: str,
    model: Any,
    features: ConversionFeatures,
    rows: _Rows,
    p: np.ndarray,
    n_train: int,
    *,
    seed: int,
) -> FittedCandidate:
    """Fitted ``model`` judged on the holdout from its probabilities ``p`` there: metrics by
    segment, its Qini, and its metrics on the other domains' and scenes' newest rows."""
    frame, holdout = rows.frame, rows.holdout
    metrics = segment_metrics(frame.y[holdout], p, frame.segment[holdout])
    predict = counterfactual(model, features, frame)
    qini = holdout_qini(predict, features, frame, holdout, p, seed=seed)
    metrics.loc[len(metrics)] = {"segment": "all", "metric": "qini", "value": qini.value}
    metrics.insert(0, "model", name)
    metrics.insert(1, "domain", "target")
    metrics.insert(2, "scene", features.decision_scene)
    auc = metrics.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
    log.info("%s: holdout AUC %.4f, Qini %.6f on %d rows", name, auc, qini.value, holdout.sum())
    others = sample_metrics(model, rows.newer, name)
    return FittedCandidate(name, model, metrics, n_train, qini, holdout_p=p, others=others)


def train_models(
    features: ConversionFeatures,
    *,
    predictor: str = FALLBACK_PREDICTOR,
    cross_domain: str = CROSS_DOMAIN_PREDICTOR,
    holdout_fraction: float = HOLDOUT_FRACTION,
    holdout_min_rows: int = HOLDOUT_MIN_ROWS,
    max_train_rows: int | None = None,
    max_source_rows: int | None = None,
    torch_threads: int | None = None,
    value_folds: int = VALUE_FOLDS,
    seed: int = 0,
    progress: bool = False,
) -> TrainedModels:
    """Fit the conversion and basket models on the older exposures, evaluate on the newest.

    ``predictor`` names a registered conversion model
    (:func:`~growth.modeling.selection.available_predictors`) or ``auto`` (see
    :func:`candidate_predictors`: with several candidates :func:`choose_model`
    picks by holdout :data:`SELECTION_METRIC`); ``cross_domain`` is the cross-domain
    model ``auto`` trains (the job passes the one the benchmark evidence names,
    :func:`~growth.modeling.selection.choose_cross_domain`).  Every model reads the same
    :meth:`ConversionFeatures.raw_frame` rows described by ``features.spec``.
    ``max_train_rows`` caps the rows of every model that declares it trains on
    a sample (``trains_on_sample``: the torch models, whose cost per row is
    high) at a seeded sample of the older exposures (None: all of them); the
    other models learn from every older exposure, the basket model from those
    that converted with an order value.  The holdout is always the whole newest
    ``holdout_fraction`` of the decision scene's target rows, at least ``holdout_min_rows``
    (:func:`chronological_split`; :attr:`ConversionFeatures.decision_scene`): the randomised
    coupon log that calibration and the off-policy estimates read.  The older rows are
    the decision scene's and every other labelled sample logged before the holdout (the
    other target scenes, and at most ``max_source_rows`` source-domain rows, a seeded
    sample; None: all, 0: none), each carrying its ``domain`` and ``scene``.
    ``torch_threads`` sets torch's threads while the models train (None: leave them).
    ``value_folds`` (at least 2; fewer: none) groups of holdout users each candidate is also
    calibrated without, for the plan's cross-fitted value (:attr:`TrainedModels.value_folds`).
    ``progress`` shows each model's training progress on the console.
    """
    if predictor not in available_predictors():
        raise ValueError(f"unknown predictor {predictor!r}; choose one of {available_predictors()}")
    if cross_domain not in cross_domain_names():
        raise ValueError(
            f"cross_domain {cross_domain!r} is not a registered conversion model other than "
            f"{FALLBACK_PREDICTOR}; choose one of {cross_domain_names()}"
        )
    frame = features.exposure_frame()
    holdout = chronological_split(frame, holdout_fraction, holdout_min_rows)
    rows = _training_rows(features, frame, holdout, max_train_rows, max_source_rows, seed)
    names = candidate_predictors(predictor, features, cross_domain=cross_domain)
    with using_torch_threads(torch_threads):
        fitted = side_by_side(
            lambda name: _fit_conversion(name, features, rows, seed=seed, progress=progress), names
        )
    best, why = choose_model(fitted)
    if len(fitted) > 1:
        log.info("auto: %s chosen by holdout %s (%s)", best.name, SELECTION_METRIC, why)
    value = rows.frame.order_value[rows.older]
    sold = rows.older[np.isfinite(value) & (value > 0)]  # few rows: the basket model learns all
    basket = BasketSizeModel(features.spec, seed=seed, verbose=progress)
    basket.fit(rows.frame.rows(sold), rows.frame.order_value[sold])
    metrics = pd.concat([f.metrics for f in fitted], ignore_index=True)
    others = pd.concat([f.others for f in fitted], ignore_index=True)
    splits = [(holdout, holdout)] + [
        (holdout & ~fold, fold) for fold in holdout_folds(frame, holdout, value_folds, seed=seed)
    ]  # (calibrating, valued) rows: the whole holdout, then each fold's cross-fit
    reaches = [
        reach_recalibration(
            features, frame, c, rows.X_holdout.iloc[np.flatnonzero(c[holdout])], basket, seed=seed
        )
        for c, _ in splits
    ]
    trained = []
    for f in [best, *(f for f in fitted if f is not best)]:
        each = [
            _calibrated(f, features, frame, split, basket, reach, metrics, seed=seed)
            for split, reach in zip(splits, reaches, strict=True)
        ]
        trained.append(replace(each[0], sample_metrics=others, value_folds=each[1:]))
    return replace(trained[0], alternatives=trained[1:])


def holdout_folds(
    frame: ExposureFrame, holdout: np.ndarray, folds: int, *, seed: int
) -> list[np.ndarray]:
    """Masks of the ``holdout``'s rows of each of ``folds`` seeded groups of its users
    (none under 2 folds): a user's rows stay in one fold, as they share the user's taste."""
    if folds < 2:
        return []
    users = np.unique(frame.user_pos[holdout])
    fold_of = np.full(int(frame.user_pos.max()) + 1, -1)
    fold_of[users] = np.random.default_rng([seed, 0xF01D]).permutation(len(users)) % folds
    fold = fold_of[frame.user_pos]
    return [holdout & (fold == k) for k in range(folds)]


def _calibrated(
    fitted: FittedCandidate,
    features: ConversionFeatures,
    frame: ExposureFrame,
    split: tuple[np.ndarray, np.ndarray],
    basket: BasketSizeModel,
    reach: Recalibration,
    metrics: pd.DataFrame,
    *,
    seed: int,
) -> TrainedModels:
    """One fitted candidate with its conversion calibration and spend bias on the holdout
    rows ``split[0]`` and ``split[1]`` the rows its plans are valued on (``reach``: the basket
    model's threshold reach calibrated on the same rows, shared by every candidate);
    ``frame`` is the decision scene's, whose newest rows are the holdout."""
    calibrating, valued = split
    p = fitted.holdout_p[calibrating[calibrating | valued]]  # it covers the whole holdout
    recal = conversion_recalibration(features, frame, calibrating, p, seed=seed)
    return TrainedModels(
        predictor=fitted.name,
        conversion=fitted.model,
        basket=basket,
        metrics=metrics,
        n_train=fitted.n_train,
        n_holdout=int(valued.sum()),
        calibration=spend_calibration(features, frame, calibrating, recal.fitted_p, reach.fitted_p),
        recalibration=recal,
        reach=reach,
        frame=frame,
        holdout=valued,
    )


def conversion_recalibration(
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    p: np.ndarray,
    *,
    seed: int = 0,
    **fit_options,
) -> Recalibration:
    """Calibrate the holdout probabilities ``p`` per coupon option x lifecycle segment
    (:mod:`growth.modeling.recalibration`); the spend bias is then measured on the
    full calibrator's probabilities (``fitted_p``), the ones the plan reads: the bias the
    calibrated predictions still carry, the holdout's evidence counted once (the
    out-of-fold ``holdout_p`` report the calibration's error honestly).

    A merchant coupon is calibrated on the rows where it applies (that merchant's
    items) only: the decision maps just those rows through its calibrator (elsewhere
    the rule copies 'none'), and they carry all of its redemptions.  Fitted on every
    row of the option, the rows where the coupon cannot apply would set the fit, and
    a model that under-predicts the coupon's own conversions (its redemptions) would
    stay under-predicted.  ``holdout_p`` and ``fitted_p`` keep ``p`` on the rows left out.
    ``fit_options``: :func:`~growth.modeling.recalibration.fit_calibrator`'s minimums.
    """
    rows = np.flatnonzero(holdout)
    fit = ~features.inapplicable(frame.item_pos[rows], frame.option_pos[rows])
    recal = recalibrate(
        p[fit],
        frame.y[rows][fit],
        frame.option_pos[rows][fit],
        frame.segment[rows][fit],
        list(features.option_ids),
        seed=seed,
        **fit_options,
    )
    q = np.array(p, dtype=np.float64)
    fitted = q.copy()
    q[fit] = recal.holdout_p
    fitted[fit] = recal.fitted_p
    recal.holdout_p, recal.fitted_p = q, fitted
    return recal


def reach_recalibration(
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    X_holdout: pd.DataFrame,
    basket: BasketSizeModel,
    *,
    seed: int = 0,
    **fit_options,
) -> Recalibration:
    """Calibrate the basket model's reach ``P(basket >= threshold)`` per threshold coupon
    option x lifecycle segment, on the holdout rows of those options that converted with an
    order value (the event: the order reached the threshold).

    The holdout's options are randomised, so each option's converted rows show how often
    a conversion under that coupon reaches its threshold; that is the redemption's part
    the conversion calibration does not cover (no-threshold coupons reach with
    probability 1).  The reach of every holdout row is kept in ``holdout_p``: out of
    fold where the row is one of these conversions, the full calibrator's elsewhere
    (1 where the option has no threshold); ``fitted_p`` the full calibrator's everywhere,
    the reach the plan reads and the spend bias measures.
    ``fit_options`` are :func:`~growth.modeling.recalibration.fit_calibrator`'s group
    minimums and shrinkage (default: the same as conversion's).
    """
    rows = np.flatnonzero(holdout)
    option = frame.option_pos[rows]
    threshold = features.threshold[option]
    value = frame.order_value[rows]
    fit = (threshold > 0) & (frame.y[rows] == 1) & np.isfinite(value)
    raw = basket.prob_at_least(X_holdout, threshold)
    recal = recalibrate(
        raw[fit],
        (value[fit] >= threshold[fit]).astype(float),
        option[fit],
        frame.segment[rows][fit],
        list(features.option_ids),
        seed=seed,
        quantity="redemption",
        **fit_options,
    )
    reach = np.ones(len(rows))
    gated = threshold > 0
    reach[gated] = recal.calibrator.apply(raw[gated], option[gated], frame.segment[rows][gated])
    recal.fitted_p = reach.copy()
    reach[fit] = recal.holdout_p
    recal.holdout_p = reach
    return recal
