"""How far the models' predicted coupon spend sits from what the randomised holdout spent.

The holdout is a randomised trial: each exposure carries a randomly assigned coupon
option, its conversion label and, when it converted, its order value.  Per coupon
option this compares the spend the models predict for the holdout's rows,
``face x P(convert) x applies x P(basket >= threshold)`` (what the decision's
``cost`` is made of, both probabilities calibrated as the plan reads them), with the
spend the rows observed, ``face x converted x applies x (order value >= threshold)``
(a converted row without a logged order value counts its predicted reach).  The
relative bias is the ratio estimator ``observed / predicted - 1`` and its standard
error the ratio estimator's, at least that of the predicted redemptions' own draws
(:func:`ratio_bias`: a group that saw none of its few predicted redemptions is not
-100 % for certain), per option and per option x lifecycle segment (a segment the
conversion calibration pooled towards its option may keep a bias of its own).  The
coupon campaign widens its budget buffers by it, weighted by the plan's own mix of
options and segments (:mod:`growth.campaigns.coupons.buffer`).

>>> import numpy as np
>>> bias, se = ratio_bias(np.array([1.0, 0.0, 2.0, 1.0]), np.array([0.5, 0.5, 1.0, 1.0]))
>>> round(bias, 3), round(se, 3)
(0.333, 0.406)
>>> bias, se = ratio_bias(np.zeros(20), np.full(20, 0.05), np.full(20, 0.05 * 0.95))
>>> bias, round(se, 3)
(-1.0, 0.975)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.data.schema import NO_COUPON
from growth.modeling.features import ConversionFeatures, ExposureFrame


def ratio_bias(
    observed: np.ndarray, predicted: np.ndarray, variance: np.ndarray | None = None
) -> tuple[float, float]:
    """``sum(observed) / sum(predicted) - 1`` and its standard error (ratio estimator).

    The error is ``sqrt(n * var(observed - r * predicted)) / sum(predicted)`` with
    ``r`` the ratio; ``(0, inf)`` when nothing is predicted (no evidence either way).
    ``variance`` (per row: the variance of ``observed`` the predictions imply) floors it at
    ``sqrt(sum(variance)) / sum(predicted)``, the error of a sum of that many predicted
    events: a group that observed no event at all has residuals of zero about ``r = 0``, and
    the ratio estimator alone would call its bias of -100 % exact.
    """
    total = float(predicted.sum())
    if total <= 0.0 or len(predicted) < 2:
        return 0.0, float("inf")
    ratio = float(observed.sum()) / total
    resid = observed - ratio * predicted
    se = float(np.sqrt(len(resid) * resid.var(ddof=1)) / total)
    if variance is not None:
        se = max(se, float(np.sqrt(variance.sum())) / total)
    return ratio - 1.0, se


def spend_calibration(
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    p_convert: np.ndarray,
    reach: np.ndarray,
) -> pd.DataFrame:
    """Predicted against observed spend per coupon option (x segment) on the holdout.

    Args:
        features: the dataset's encodings (face values, thresholds, applicability).
        frame: the exposure rows; ``holdout`` a boolean mask over them.
        p_convert: (holdout rows,) the conversion probabilities on the holdout.
        reach: (holdout rows,) the predicted ``P(basket >= threshold)`` of each row's
            option (1 without a threshold).

    Returns:
        Rows indexed by (``option_id``, ``segment``): per option but 'none', one row over
        all its rows (segment ``all``) and one per lifecycle segment, with ``rows``,
        ``predicted`` and ``observed`` spend (currency units), ``rel_bias`` and
        ``rel_bias_se``.
    """
    rows = np.flatnonzero(holdout)
    option, item = frame.option_pos[rows], frame.item_pos[rows]
    segment = np.asarray(frame.segment[rows]).astype(str)
    face, threshold = features.face_value[option], features.threshold[option]
    applies = features.applicable(item, option)
    value = frame.order_value[rows]
    reached = np.where(np.isfinite(value), value >= threshold, reach)
    redeems = p_convert * applies * reach  # P(the row redeems), as predicted
    predicted = face * redeems
    variance = face**2 * redeems * (1.0 - redeems)
    observed = face * frame.y[rows] * applies * reached
    out = {}
    for k, name in enumerate(features.option_ids):
        if name == NO_COUPON:
            continue
        for s in ["all", *sorted(np.unique(segment))]:
            mine = (option == k) & ((segment == s) | (s == "all"))
            bias, se = ratio_bias(observed[mine], predicted[mine], variance[mine])
            out[(name, s)] = {
                "rows": int(mine.sum()),
                "predicted": float(predicted[mine].sum()),
                "observed": float(observed[mine].sum()),
                "rel_bias": bias,
                "rel_bias_se": se,
            }
    frame_out = pd.DataFrame.from_dict(out, orient="index")
    frame_out.index = pd.MultiIndex.from_tuples(frame_out.index, names=["option_id", "segment"])
    return frame_out
