"""Calibrate the models' probabilities per coupon option and lifecycle segment.

The coupon decision's value and cost are built from P(convert) per (user, option)
(:mod:`growth.campaigns.coupons.scoring`); a model whose probabilities sit off the
observed rates per option misprices both, and the plan's spend with them.  The
randomised holdout says how far off: each exposure carries a randomly assigned
option and its conversion label.

Platt scaling per group: ``logit q = a * logit p + b`` fitted by logistic
regression on the holdout rows of each (option, lifecycle segment).  A group's
parameters shrink to its option's, and an option's to the pooled fit over all
rows, with weight ``n / (n + prior_rows)``.  A group (or option) under
``min_rows`` rows, or with under ``min_class`` conversions or non-conversions, is
too small for its own slope but still moves by its evidence (partial pooling): it
keeps its parent's slope and shifts its parent's intercept by the posterior mode
of ``delta`` under a ``N(0, prior_sd^2)`` prior (:func:`_pooled_shift`), so the
shift's weight grows with the group's conversions (about ``e / (e + 1/prior_sd^2)``
for ``e`` conversions at low rates) and a shift leaves the ranking within the group
alone.  This works on any predictor's output
probabilities, and on any probability the decision reads: the conversion
model's ``P(convert)`` (every option, every holdout row) and the basket model's
reach ``P(basket >= threshold)`` of a threshold coupon (its holdout rows that
converted with an order value, the event being that the order reached the
threshold; :func:`growth.modeling.training.reach_recalibration`).  Together they
make the decision's redemption ``P(convert) x applies x reach`` calibrated.

:func:`cross_fitted` reports the error honestly: the holdout is split into
seeded folds, each fold's rows are calibrated by a calibrator fitted on the
other folds, and the expected calibration error (equal-count bins) and the
observed/predicted ratio per option x segment are measured on those
out-of-fold probabilities, before and after.  The calibrator the plan uses is
fitted on the whole holdout.

>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(0.02, 0.4, 4000)
>>> y = (rng.uniform(size=4000) < p).astype(float)
>>> cal = fit_calibrator(p * 0.5, y, np.zeros(4000, int), np.full(4000, "new"))
>>> round(float(cal.apply(np.array([0.1]), np.array([0]), np.array(["new"]))[0]), 1)
0.2
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

Params = tuple[float, float]  # (a, b): logit q = a * logit p + b
IDENTITY: Params = (1.0, 0.0)
EPS = 1e-6
PRIOR_SD = 0.2
"""Prior sd of a small group's intercept shift from its parent's (logit scale): a group
differs from its option by about 20 % in odds before its evidence says otherwise."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _platt(p: np.ndarray, y: np.ndarray) -> Params:
    """Unpenalised logistic regression of ``y`` on ``logit p``."""
    model = LogisticRegression(C=1e6, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(_logit(p)[:, None], y.astype(int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


@dataclass(frozen=True)
class GroupCalibrator:
    """Platt parameters per (option, segment), per option and pooled; see the module."""

    pooled: Params = IDENTITY
    by_option: dict[int, Params] = field(default_factory=dict)
    by_group: dict[tuple[int, str], Params] = field(default_factory=dict)
    uplift_scale: dict[str, float] = field(default_factory=dict)
    """Per lifecycle segment, the factor on the effect over 'none' of each option in
    :attr:`uplift_options` on the value side (:mod:`growth.campaigns.coupons.uplift`); a
    segment not named keeps 1.  It leaves :meth:`apply`, the per-row probabilities that
    spend reads, alone."""
    uplift_options: tuple[int, ...] = ()
    """The options (coupons-table positions) :attr:`uplift_scale` stretches."""

    def to_json(self) -> dict:
        """JSON-safe parameters (:meth:`from_json` reads them back)."""
        return {
            "pooled": list(self.pooled),
            "by_option": [[o, *ab] for o, ab in self.by_option.items()],
            "by_group": [[o, s, *ab] for (o, s), ab in self.by_group.items()],
            "uplift_scale": dict(self.uplift_scale),
            "uplift_options": list(self.uplift_options),
        }

    @classmethod
    def from_json(cls, data: dict) -> GroupCalibrator:
        return cls(
            pooled=(float(data["pooled"][0]), float(data["pooled"][1])),
            by_option={int(o): (float(a), float(b)) for o, a, b in data["by_option"]},
            by_group={(int(o), str(s)): (float(a), float(b)) for o, s, a, b in data["by_group"]},
            uplift_scale={str(s): float(f) for s, f in data.get("uplift_scale", {}).items()},
            uplift_options=tuple(int(o) for o in data.get("uplift_options", [])),
        )

    def params(self, option: int, segment: str) -> Params:
        """The group's parameters, else its option's, else the pooled ones."""
        key = (int(option), str(segment))
        return self.by_group.get(key, self.by_option.get(int(option), self.pooled))

    def apply(self, p: np.ndarray, option: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``p`` (rows with their option position and segment)."""
        p = np.asarray(p, dtype=np.float64)
        if len(p) == 0:
            return p.copy()
        # integer keys, not a MultiIndex of strings: this runs on every scored row
        seg_codes, segments = pd.factorize(np.asarray(segment), use_na_sentinel=False)
        keys = np.asarray(option, dtype=np.int64) * len(segments) + seg_codes
        codes, uniques = pd.factorize(keys)
        table = np.array(
            [self.params(k // len(segments), segments[k % len(segments)]) for k in uniques]
        )  # (groups, 2)
        a, b = table[codes, 0], table[codes, 1]
        return 1.0 / (1.0 + np.exp(-(a * _logit(p) + b)))

    def stretch_uplift(
        self, q: np.ndarray, segment: np.ndarray, options: np.ndarray, none: int
    ) -> np.ndarray:
        """``q`` (rows, options; column ``j`` option ``options[j]``, a coupons-table position,
        column ``none`` 'none') with the effect over 'none' of each option in
        :attr:`uplift_options` multiplied by its row's segment's :attr:`uplift_scale`."""
        stretched = np.isin(options, self.uplift_options)
        if not self.uplift_scale or not stretched.any():
            return q
        factor = pd.Series(np.asarray(segment).astype(str)).map(self.uplift_scale)
        factor = factor.fillna(1.0).to_numpy()[:, None]
        base = q[:, [none]]
        out = q.copy()
        out[:, stretched] = base + factor * (q[:, stretched] - base)
        return out


def _pooled_shift(p: np.ndarray, y: np.ndarray, parent: Params, prior_sd: float) -> float:
    """Posterior mode of the intercept shift ``delta`` of ``parent`` on the rows, under a
    ``N(0, prior_sd^2)`` prior: Newton's method on the concave log posterior
    ``sum log-likelihood(a logit p + b + delta) - delta^2 / (2 prior_sd^2)``."""
    if len(y) == 0 or prior_sd <= 0.0:
        return 0.0
    eta = parent[0] * _logit(p) + parent[1]
    precision, delta = 1.0 / prior_sd**2, 0.0
    for _ in range(50):
        q = 1.0 / (1.0 + np.exp(-(eta + delta)))
        grad = float((y - q).sum()) - precision * delta
        step = grad / (float((q * (1.0 - q)).sum()) + precision)
        delta += step
        if abs(step) < 1e-10:
            break
    return delta


def _fit_or_parent(
    p: np.ndarray,
    y: np.ndarray,
    parent: Params,
    min_rows: int,
    min_class: int,
    prior: float,
    prior_sd: float,
) -> Params:
    """Platt fit of the rows shrunk to ``parent``; rows too few for a slope shift the
    parent's intercept by their evidence (:func:`_pooled_shift`)."""
    n, pos = len(y), int(y.sum())
    if n < min_rows or min(pos, n - pos) < min_class:
        return (parent[0], parent[1] + _pooled_shift(p, y, parent, prior_sd))
    a, b = _platt(p, y)
    w = n / (n + prior)
    return (w * a + (1 - w) * parent[0], w * b + (1 - w) * parent[1])


def fit_calibrator(
    p: np.ndarray,
    y: np.ndarray,
    option: np.ndarray,
    segment: np.ndarray,
    *,
    min_rows: int = 300,
    min_class: int = 100,
    prior_rows: float = 300.0,
    prior_sd: float = PRIOR_SD,
) -> GroupCalibrator:
    """Fit the pooled, per-option and per-(option, segment) Platt parameters (see the module)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    segment = np.asarray(segment).astype(str)
    limits = (min_rows, min_class)
    pooled = _fit_or_parent(p, y, IDENTITY, *limits, 0.0, prior_sd)
    by_option: dict[int, Params] = {}
    by_group: dict[tuple[int, str], Params] = {}
    for o in np.unique(option):
        mine = option == o
        by_option[int(o)] = _fit_or_parent(p[mine], y[mine], pooled, *limits, prior_rows, prior_sd)
        for s in np.unique(segment[mine]):
            rows = mine & (segment == s)
            by_group[(int(o), str(s))] = _fit_or_parent(
                p[rows], y[rows], by_option[int(o)], *limits, prior_rows, prior_sd
            )
    return GroupCalibrator(pooled, by_option, by_group)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, *, n_bins: int = 10) -> float:
    """Row-weighted mean |observed - predicted| rate over equal-count bins of ``p``."""
    if len(p) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    gap = sum(abs(float(y[b].sum() - p[b].sum())) for b in np.array_split(order, n_bins))
    return gap / len(p)


def cross_fitted(
    p: np.ndarray,
    y: np.ndarray,
    option: np.ndarray,
    segment: np.ndarray,
    *,
    folds: int = 2,
    seed: int = 0,
    **fit_options,
) -> np.ndarray:
    """Out-of-fold calibrated ``p``: each seeded fold calibrated by a fit on the others."""
    fold = np.random.default_rng(seed).permutation(len(p)) % folds
    out = np.empty(len(p))
    for f in range(folds):
        test = fold == f
        cal = fit_calibrator(p[~test], y[~test], option[~test], segment[~test], **fit_options)
        out[test] = cal.apply(p[test], option[test], segment[test])
    return out


def calibration_table(
    p: np.ndarray,
    q: np.ndarray,
    y: np.ndarray,
    option: np.ndarray,
    segment: np.ndarray,
    option_ids: list[str],
) -> pd.DataFrame:
    """Per option x segment (and option x 'all'): rows, events (``y == 1``: conversions,
    or orders that reached the threshold), ECE and observed/predicted ratio of ``p``
    (before) and ``q`` (after, out of fold)."""
    segment = np.asarray(segment).astype(str)
    records = []
    for o in np.unique(option):
        mine = option == o
        for s in ["all", *sorted(np.unique(segment[mine]))]:
            rows = mine if s == "all" else mine & (segment == s)
            yy = y[rows]
            records.append(
                {
                    "option_id": option_ids[int(o)],
                    "segment": s,
                    "rows": int(rows.sum()),
                    "events": int(yy.sum()),
                    "ece_before": expected_calibration_error(p[rows], yy),
                    "ece_after": expected_calibration_error(q[rows], yy),
                    "ratio_before": float(yy.sum() / max(p[rows].sum(), EPS)),
                    "ratio_after": float(yy.sum() / max(q[rows].sum(), EPS)),
                }
            )
    return pd.DataFrame.from_records(records)


@dataclass
class Recalibration:
    """The calibrator the plan uses, the holdout's out-of-fold probabilities and the report.

    ``quantity`` names what is calibrated: ``conversion`` or ``redemption`` (the
    threshold's reach, the part of redemption the conversion model does not give).
    """

    calibrator: GroupCalibrator
    holdout_p: np.ndarray  # out-of-fold calibrated probabilities of the holdout's rows
    table: pd.DataFrame  # calibration_table: before/after per option x segment
    quantity: str = "conversion"
    fitted_p: np.ndarray | None = None  # the holdout's rows through ``calibrator`` (in-sample)

    def summary(self) -> list[dict]:
        """JSON-safe rows of the table (errors rounded), each naming its ``quantity``."""
        return self.table.round(5).assign(quantity=self.quantity).to_dict(orient="records")


def recalibrate(
    p: np.ndarray,
    y: np.ndarray,
    option: np.ndarray,
    segment: np.ndarray,
    option_ids: list[str],
    *,
    seed: int = 0,
    quantity: str = "conversion",
    **fit_options,
) -> Recalibration:
    """Fit the calibrator on all rows and report its cross-fitted error before and after;
    ``fitted_p`` keeps the rows through the calibrator the plan uses."""
    y = np.asarray(y, dtype=np.float64)
    q = cross_fitted(p, y, option, segment, seed=seed, **fit_options)
    calibrator = fit_calibrator(p, y, option, segment, **fit_options)
    return Recalibration(
        calibrator=calibrator,
        holdout_p=q,
        table=calibration_table(p, q, y, option, segment, option_ids),
        quantity=quantity,
        fitted_p=calibrator.apply(p, option, segment),
    )
