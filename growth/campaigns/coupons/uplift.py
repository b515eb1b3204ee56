"""How far the model shrinks the platform's coupon effects per segment, and their stretch.

A regularised conversion model learns a coupon's effect, the small difference between two
probabilities, from each segment's rows, and where a segment has few rows it pulls the
effect toward none.  The plan then buys the segment whose effects it learnt well (active
users) and under-buys the others.  On the default world at 20,000 users the true
incremental conversions per segment ran 1.3-2.9 times the calibrated predictions for new,
lost and potential users and about 1 times for active users (``benchmarks/README.md``,
"The coupon effects the model shrinks").  The per option x segment calibration
(:mod:`growth.modeling.recalibration`) cannot undo it: it matches each option's level on
the holdout's rows, a fifth of a large log, where a segment's effect is about as large as the
noise of the two rates it is the difference of.

The whole decision scene's log is randomised, so every row says something about the
effect.  Per segment ``s``, least squares over all its rows of 'none' and of the
platform's coupons, the training rows and the holdout's (:func:`fit_uplift_scale`)::

    y - q_none = alpha_s + beta_s (q_arm - q_none)

with ``q`` the calibrated probability of converting under each option, the threshold rule
applied (what the decision's ``conversion`` averages), ``arm`` the logged option and
``alpha_s`` the level of 'none'.  Pooling the options gives one slope per segment: the
share of the predicted effect the log shows, precise where no single option's difference
would be.  On the training rows the model has seen the labels, which pulls ``beta`` toward
1: the estimate errs on the side of the model.

The factor a segment's effects are multiplied by is the posterior mean of ``beta_s`` under
a ``N(1, PRIOR_SD^2)`` prior (the model's effects about right), never below 1: a
regularised model's effects are shrunk, not inflated, so an estimate under 1 is taken as
the noise of a small segment.

Applied (the nightly's ``stretch_effects``, on by default), only the value side of the
platform's coupons moves: their conversion and GMV become ``q_none + factor (q - q_none)``
(exact per user, the factor being the user's segment's).  Redemption, and with it every
budget's spend and buffer, keeps the calibrated probabilities.  A merchant's coupons keep
the model's effects: they apply to a few of a user's items, so the log holds few rows that
show their effect, and their spend is calibrated on as few; stretched too, they broke the
merchants' budgets more often than before.

The effects the model shrinks are in its redemptions too, so a plan the stretch moves
toward those segments spends more than its predictions say.  At the default
``spend_confidence`` 0.99 the buffer absorbed it on the fresh report worlds (no budget over,
the platform's play-outs over 2.0 -> 4.5 %); at 0.95 the platform's budget ran 3.5 % over on
one of them (``benchmarks/README.md``, "The coupon effects the model shrinks").  The slopes
are measured and reported on every run (the nightly summary's ``uplift_scale``, the Models
page): they tell the operator where the model under-states the coupons.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from growth.campaigns.coupons.value import HoldoutLog, model_holdout_logs
from growth.data.schema import NO_COUPON
from growth.modeling.concurrency import side_by_side
from growth.modeling.recalibration import GroupCalibrator
from growth.modeling.training import TrainedModels

log = logging.getLogger(__name__)

PRIOR_SD = 1.0
"""Prior sd of a segment's slope ``beta`` about 1: the model's effects right to within a
factor of two before the log says otherwise."""

MAX_ROWS = 100_000
"""The slopes read a seeded sample of at most this many rows of the log (every row of a
20,000-user world): the step predicts each row under every option, and beyond this its
cost grows faster than the standard errors shrink."""

MIN_ROWS = 200
"""A segment with fewer logged rows (or without a row of 'none' and one of a coupon) keeps
the model's effects (factor 1)."""


@dataclass(frozen=True)
class UpliftFit:
    """One segment's slope of the observed on the predicted effect, and the factor applied."""

    segment: str
    rows: int
    beta: float  # least-squares slope (nan: too few rows)
    se: float  # its user-clustered standard error
    factor: float  # the posterior mean, at least 1 (1 without a fit)


def fit_uplift_scale(
    log: HoldoutLog, options: np.ndarray | None = None, *, prior_sd: float = PRIOR_SD
) -> list[UpliftFit]:
    """Per lifecycle segment of ``log``'s rows of 'none' and of ``options`` (coupons-table
    positions; None: every option): the slope of ``y - q_none`` on ``q_arm - q_none`` (with
    an intercept), its user-clustered standard error and the factor (module docstring)."""
    arms = np.arange(log.p.shape[1]) if options is None else np.asarray(options)
    segments = np.asarray(log.segment).astype(str)
    kept = np.flatnonzero(np.isin(log.arm, arms) | (log.arm == log.none))
    arm, users, segment = log.arm[kept], log.user_pos[kept], segments[kept]
    effect = log.p[kept, arm] - log.p[kept, log.none]
    residual = log.converted[kept] - log.p[kept, log.none]
    fits = []
    for s in sorted(np.unique(segments)):
        mine = np.flatnonzero(segment == s)
        treated = arm[mine] != log.none
        if len(mine) < MIN_ROWS or treated.all() or not treated.any():
            fits.append(UpliftFit(s, len(mine), math.nan, math.nan, 1.0))
            continue
        beta, se = _clustered_slope(effect[mine], residual[mine], users[mine])
        w = prior_sd**2 / (prior_sd**2 + se**2) if np.isfinite(se) else 0.0
        fits.append(UpliftFit(s, len(mine), beta, se, max(1.0, 1.0 + w * (beta - 1.0))))
    return fits


def _clustered_slope(x: np.ndarray, y: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``y`` on ``x`` with an intercept, and its cluster-robust
    (sandwich) standard error; (nan, nan) when ``x`` does not vary."""
    X = np.column_stack([np.ones_like(x), x])
    xtx = X.T @ X
    if np.linalg.cond(xtx) > 1e12:
        return math.nan, math.nan
    bread = np.linalg.inv(xtx)
    coef = bread @ (X.T @ y)
    scores = X * (y - X @ coef)[:, None]
    _, group = np.unique(clusters, return_inverse=True)
    meat = np.column_stack([np.bincount(group, s) for s in scores.T])
    cov = bread @ (meat.T @ meat) @ bread
    return float(coef[1]), float(np.sqrt(max(cov[1, 1], 0.0)))


def platform_options(models: TrainedModels) -> np.ndarray:
    """Coupons-table positions of the platform's coupons: every option but 'none' and the
    merchant type's, the rule of the platform's budget
    (:func:`~growth.campaigns.coupons.plan.campaign_budgets`)."""
    assert models.frame is not None
    features = models.frame.features
    ids, types = np.asarray(features.option_ids), np.asarray(features.option_type).astype(str)
    return np.flatnonzero((ids != NO_COUPON) & (types != "merchant"))


def with_uplift_scale(models: TrainedModels, *, apply: bool = True) -> TrainedModels:
    """``models`` and each of its alternatives and value folds with the platform's coupon
    effects' slopes per segment on the decision scene's log (module docstring) as ``uplift``,
    the candidates side by side: the whole log (at most :data:`MAX_ROWS` of it) for the model
    itself, the same rows without a fold's holdout rows for that fold,
    so no row a fold's plan is valued on shapes it.  With ``apply`` the conversion
    calibrators stretch the value side by them (``uplift_scale``); without, the slopes are
    only reported.  Models without a calibrator are returned as they are."""
    scaled = side_by_side(lambda m: _scaled(m, apply), models.candidates())
    return replace(scaled[0], alternatives=scaled[1:])


def _scaled(models: TrainedModels, apply: bool) -> TrainedModels:
    if models.frame is None or models.recalibration is None:
        return models
    options = platform_options(models)
    each = [models, *models.value_folds]
    n = len(models.frame.y)
    read = np.zeros(n, dtype=bool)
    read[np.random.default_rng(0x5EED).permutation(n)[:MAX_ROWS]] = True
    masks = [read] + [read & ~fold.holdout for fold in models.value_folds]  # type: ignore[operator]
    parts = [
        (mask, _unscaled(m.calibrator), m.reach_calibrator)
        for mask, m in zip(masks, each, strict=True)
    ]
    logs = model_holdout_logs(models.frame, models.conversion, models.basket, parts)
    fits = [fit_uplift_scale(lg, options) for lg in logs]
    log.info(
        "%s: the platform's coupon effects per segment, on the log over predicted (%s): %s",
        models.predictor,
        "applied to the plan's value" if apply else "reported only",
        ", ".join(
            f"{f.segment} x{f.factor:.2f} (beta {f.beta:.2f} +- {f.se:.2f})" for f in fits[0]
        ),
    )
    stretched = tuple(int(o) for o in options) if apply else ()
    scaled = [_with_fits(m, f, stretched) for m, f in zip(each, fits, strict=True)]
    return replace(scaled[0], value_folds=scaled[1:])


def _unscaled(calibrator: GroupCalibrator | None) -> GroupCalibrator | None:
    """The calibrator without a stretch (the slope is measured on the calibrated effects)."""
    return None if calibrator is None else replace(calibrator, uplift_scale={}, uplift_options=())


def _with_fits(
    models: TrainedModels, fits: list[UpliftFit], options: tuple[int, ...]
) -> TrainedModels:
    """``models`` with the fits as ``uplift``, whose conversion calibrator stretches
    ``options`` by them (none: no stretch)."""
    recalibration = models.recalibration
    assert recalibration is not None
    scale = {f.segment: f.factor for f in fits if f.factor != 1.0} if options else {}
    calibrator = replace(recalibration.calibrator, uplift_scale=scale, uplift_options=options)
    return replace(
        models,
        recalibration=replace(recalibration, calibrator=calibrator),
        uplift=pd.DataFrame([asdict(f) for f in fits]),
    )
