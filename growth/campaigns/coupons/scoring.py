"""Score every user under every coupon option with the trained models: the predicted CouponDecision."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from growth.campaigns.coupons.decision import CouponDecision
from growth.data.schema import NO_COUPON
from growth.modeling.features import ConversionFeatures
from growth.modeling.recalibration import GroupCalibrator
from predictors.torch.base import using_torch_threads


def _coupon_order(features: ConversionFeatures) -> np.ndarray:
    """Coupons-table positions with 'none' first and the rest in table order."""
    none = features.option_ids.index(NO_COUPON)
    return np.array([none, *(i for i in range(len(features.option_ids)) if i != none)])


def applied_with_reach(p: np.ndarray, reach: np.ndarray, *, none: int = 0) -> np.ndarray:
    """Conversion probabilities of (option, row) pairs once each coupon applies only with
    probability ``reach``: ``reach * p + (1 - reach) * p[none]``, row ``none`` being 'none'.

    A coupon that does not apply to the order (a full-reduction coupon whose threshold the
    basket misses) leaves its price unchanged, so the row converts as under 'none'; only
    the applied share of a coupon's predicted effect is credited.  Without that rule a
    model that has not learnt the threshold (few exposures) credits the coupon with an
    effect on baskets it never discounts, and those users look cheap, because redemption
    already carries ``reach``: the plan buys effect that does not exist.

    >>> applied_with_reach(np.array([[0.1, 0.1], [0.3, 0.5]]), np.array([[1.0, 1.0], [0.5, 1.0]]))
    array([[0.1, 0.1],
           [0.2, 0.5]])
    """
    return reach * p + (1.0 - reach) * p[none : none + 1]


def calibrate_reach(
    reach: np.ndarray,
    options: np.ndarray,
    segment: np.ndarray,
    features: ConversionFeatures,
    calibrator: GroupCalibrator | None,
) -> np.ndarray:
    """``reach`` (options x rows, option ``options[j]`` in row ``j``) with each threshold
    option's row mapped through ``calibrator`` per (option, ``segment``); in place."""
    if calibrator is not None:
        for j in np.flatnonzero(features.threshold[options] > 0):
            reach[j] = calibrator.apply(reach[j], np.full(len(segment), options[j]), segment)
    return reach


def predicted_coupon_decision(
    features: ConversionFeatures,
    conversion_model,
    basket_model,
    *,
    chunk_users: int = 20_000,
    progress: bool = False,
    torch_threads: int | None = None,
    calibrator: GroupCalibrator | None = None,
    reach_calibrator: GroupCalibrator | None = None,
) -> CouponDecision:
    """Score every (user, candidate item, option) with the models and average per user.

    Both models are registered estimators; their grouped scorers
    (:mod:`predictors.scoring`) encode the users once, and each chunk of
    (user, item) rows is scored under 'none' and re-targeted to every other
    option.  Users without candidates get zero conversion under every option.
    ``torch_threads`` sets torch's threads while scoring (None: leave them).

    Rule: a merchant coupon on another merchant's item cannot apply
    (:meth:`ConversionFeatures.inapplicable`), so its conversion probability is
    the 'none' option's for that (user, item) and those rows are not scored;
    its redemption is zero.  Every other row is scored by the model.  The same
    rule holds where a coupon applies only with some probability: a
    full-reduction coupon discounts an order only when the basket reaches its
    threshold (probability ``reach``, the basket model's), so the row converts
    as under the coupon with that probability and as under 'none' otherwise
    (:func:`applied_with_reach`); redemption is ``reach`` times the coupon's
    conversion probability, as before.

    ``calibrator`` (:mod:`growth.modeling.recalibration`, fitted on the
    randomised holdout) maps every scored probability through its (option,
    lifecycle segment) calibration before conversion, redemption and GMV are
    built from it, so the plan's value and cost and the spend buffer all read
    calibrated probabilities (None: the model's own).  Its ``uplift_scale`` then
    stretches the platform's options' conversion and GMV over 'none' per lifecycle segment,
    the value side only (:mod:`growth.campaigns.coupons.uplift`); redemption keeps the
    calibrated probabilities.  ``reach_calibrator`` does the
    same for the basket model's reach of a threshold coupon's threshold (the
    rest of redemption; :func:`growth.modeling.training.reach_recalibration`).
    """
    return predicted_coupon_decisions(
        features,
        conversion_model,
        basket_model,
        [(calibrator, reach_calibrator)],
        chunk_users=chunk_users,
        progress=progress,
        torch_threads=torch_threads,
    )[0]


Calibrators = tuple[GroupCalibrator | None, GroupCalibrator | None]
"""(conversion, threshold reach) calibrators of one decision (None: the model's own)."""


def predicted_coupon_decisions(
    features: ConversionFeatures,
    conversion_model,
    basket_model,
    calibrators: Sequence[Calibrators],
    *,
    chunk_users: int = 20_000,
    progress: bool = False,
    torch_threads: int | None = None,
) -> list[CouponDecision]:
    """:func:`predicted_coupon_decision` under each pair of ``calibrators``, in one pass:
    the models score every row once and each pair maps the scores its own way (the
    cross-fitted plan value's decisions, :mod:`growth.campaigns.coupons.value`)."""
    with using_torch_threads(torch_threads):
        return _score(
            features, conversion_model, basket_model, chunk_users, progress, list(calibrators)
        )


def _score(
    features: ConversionFeatures,
    conversion_model,
    basket_model,
    chunk_users: int,
    progress: bool,
    calibrators: list[Calibrators],
) -> list[CouponDecision]:
    ds = features.dataset
    conversion = conversion_model.grouped_scorer(features.user_frame, features.option_columns)
    basket_scorer = basket_model.grouped_scorer(features.user_frame)
    order = _coupon_order(features)
    n, k1 = len(features.user_ids), len(order)
    cand = ds.candidates
    cand_user = features.user_positions(cand["user_id"].to_numpy(), what="candidate user ids")
    cand_item = features.item_positions(cand["item_id"].to_numpy())
    sort = np.argsort(cand_user, kind="stable")
    cand_user, cand_item = cand_user[sort], cand_item[sort]
    per_user = np.bincount(cand_user, minlength=n).astype(np.float64)

    # per calibrator pair: P(convert), redemption and GMV summed over each user's candidates
    sums = [np.zeros((3, n, k1)) for _ in calibrators]
    bounds = np.searchsorted(cand_user, np.arange(0, n + chunk_users, chunk_users))
    name = getattr(conversion_model, "name", "") or type(conversion_model).__name__
    with tqdm(total=n, desc=f"scoring {name}", unit="user", disable=not progress) as bar:
        for lo, hi in itertools.pairwise(bounds):
            if hi <= lo:
                continue
            u, i = cand_user[lo:hi], cand_item[lo:hi]
            m = len(u)
            opt = np.repeat(order, m)  # (k1*m,) option-major
            ii = np.tile(i, k1)
            context = features.context_frame(i, opt[:m])  # (m, columns) under 'none'
            none_rows = conversion.rows(u, context)
            # score the rows no rule answers: 'none' first, then the options that can apply
            neutral = features.inapplicable(ii, opt).reshape(k1, m)
            scored = np.flatnonzero(~neutral.ravel())
            options = features.context_frame(ii[scored], opt[scored], options_only=True)
            raw = none_rows.predict_variants(scored % m, options)
            applies = features.applicable(ii, opt).reshape(k1, m)
            # the basket does not depend on the coupon: predict it once per (user, item)
            log_basket = basket_scorer.rows(u, context).predict()
            raw_reach = basket_model.reach_probability(
                log_basket[None, :], features.threshold[order][:, None]
            )  # (k1, m)
            basket = basket_model.expected_basket(log_basket)
            base, span = u[0], u[-1] - u[0] + 1  # users are sorted: a contiguous block
            for (calibrator, reach_calibrator), total in zip(calibrators, sums, strict=True):
                p = np.empty((k1, m))
                p.ravel()[scored] = raw
                if calibrator is not None:
                    segment = features.lifecycle[u[scored % m]]
                    p.ravel()[scored] = calibrator.apply(raw, opt[scored], segment)
                p[neutral] = np.broadcast_to(p[0], (k1, m))[neutral]  # rule: same as 'none'
                reach = calibrate_reach(
                    raw_reach.copy(), order, features.lifecycle[u], features, reach_calibrator
                )
                converts = applied_with_reach(p, reach)  # rule: 'none' where the threshold missed
                parts = (converts, p * applies * reach, converts * basket)
                for j in range(k1):
                    for total_part, part in zip(total, parts, strict=True):
                        total_part[base : base + span, j] += np.bincount(
                            u - base, weights=part[j], minlength=span
                        )
            bar.update(len(np.unique(u)))
    denom = np.maximum(per_user, 1.0)[:, None]
    return [
        _decision(features, order, total / denom, calibrator)
        for (calibrator, _), total in zip(calibrators, sums, strict=True)
    ]


def _decision(
    features: ConversionFeatures,
    order: np.ndarray,
    means: np.ndarray,
    calibrator: GroupCalibrator | None,
) -> CouponDecision:
    """The decision of per-user means (conversion, redemption, GMV; options in ``order``,
    'none' first), the calibrator's stretch of each option's effect applied to the value
    side (conversion and GMV) only."""
    conversion, redemption, gmv = means
    if calibrator is not None:
        conversion = calibrator.stretch_uplift(conversion, features.lifecycle, order, 0)
        gmv = calibrator.stretch_uplift(gmv, features.lifecycle, order, 0)
    return CouponDecision(
        user_ids=features.user_ids,
        segment=features.lifecycle,
        option_ids=[features.option_ids[j] for j in order],
        option_types=[str(features.option_type[j]) for j in order],
        face_value=features.face_value[order],
        merchant_id=features.coupon_merchant[order],
        conversion=conversion,
        redemption=redemption,
        gmv=gmv,
    )
