"""Calibrate the models' probabilities per coupon option and lifecycle segment.

The coupon decision's value and cost are built from P(convert) per (user, option)
(:mod:`growth.campaigns.coupons.scoring`); a model whose probabilities sit off the
observed rates per option misprices both, and the plan's spend with them.  The
randomised holdout says how far off: each exposure carries a randomly assigned
option and its conversion label.

Platt scaling per group: ``logit q = a * logit p + b``, fitted on the holdout rows in
three steps, each with empirical-Bayes partial pooling: the options about the pooled fit;
then a shift per lifecycle segment shared by every option (a model that over-predicts a
segment does so under every coupon, and all options' rows measure it); then each
(option, segment) about its option's line plus its segment's shift.  At each step every
child's intercept shift (from the maximum likelihood shift of its rows and its standard
error) is shrunk to its parent by ``tau^2 / (tau^2 + se^2)``, where ``tau``, how much the
children truly differ, is estimated from the same data (DerSimonian-Laird,
:func:`between_sd`): on a small holdout an option x segment's rate is measured only to
about +-0.02 (+-0.4-0.6 in log-odds), more than the true uplifts between options, and a
fixed prior cannot tell that noise from a real shift; children that differ no more than
their noise are pooled, a real shift is kept.  The shift is the posterior mode under ``N(0, tau^2)``
(:func:`_shift`), which leaves the ranking within the group alone.  A child with
``min_rows`` rows and ``min_class`` conversions and non-conversions also has a slope of
its own, shrunk to its parent's the same way (``tau_a`` over those children's slopes).

This works on any predictor's output probabilities, and on any probability the
decision reads: the conversion model's ``P(convert)`` (every option, every holdout row) and the basket model's
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
"""Fallback prior sd of a shift (logit scale), where the data cannot say how much groups
differ: the pooled fit's shift from the identity on rows too few for a slope, and the
children of a level with under two estimates to compare (:func:`between_sd`)."""


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

    def to_json(self) -> dict:
        """JSON-safe parameters (:meth:`from_json` reads them back)."""
        return {
            "pooled": list(self.pooled),
            "by_option": [[o, *ab] for o, ab in self.by_option.items()],
            "by_group": [[o, s, *ab] for (o, s), ab in self.by_group.items()],
        }

    @classmethod
    def from_json(cls, data: dict) -> GroupCalibrator:
        return cls(
            pooled=(float(data["pooled"][0]), float(data["pooled"][1])),
            by_option={int(o): (float(a), float(b)) for o, a, b in data["by_option"]},
            by_group={(int(o), str(s)): (float(a), float(b)) for o, s, a, b in data["by_group"]},
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


def _pooled_shift(p: np.ndarray, y: np.ndarray, parent: Params, prior_sd: float) -> float:
    """Posterior mode of the intercept shift ``delta`` of ``parent`` on the rows, under a
    ``N(0, prior_sd^2)`` prior (``inf``: flat, the maximum likelihood shift)."""
    return _shift(parent[0] * _logit(p) + parent[1], y, prior_sd)


def _shift(eta: np.ndarray, y: np.ndarray, prior_sd: float) -> float:
    """Posterior mode of a shift ``delta`` of the rows' log-odds ``eta`` under a
    ``N(0, prior_sd^2)`` prior: Newton's method on the concave log posterior
    ``sum log-likelihood(eta + delta) - delta^2 / (2 prior_sd^2)``."""
    if len(y) == 0 or prior_sd <= 0.0:
        return 0.0
    precision, delta = 1.0 / prior_sd**2, 0.0
    for _ in range(50):
        q = 1.0 / (1.0 + np.exp(-(eta + delta)))
        grad = float((y - q).sum()) - precision * delta
        # damped: far from the mode a flat prior's curvature can vanish
        step = float(np.clip(grad / (float((q * (1.0 - q)).sum()) + precision + EPS), -2, 2))
        delta += step
        if abs(step) < 1e-10:
            break
    return delta


def _evidence(eta: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The rows' maximum likelihood shift of ``eta`` and its standard error (``1 / sqrt`` of
    the Fisher information ``sum q (1 - q)``); rows without both outcomes carry no estimate
    (shift 0, error ``inf``)."""
    if len(y) == 0 or y.min() == y.max():
        return 0.0, np.inf
    delta = _shift(eta, y, np.inf)
    q = 1.0 / (1.0 + np.exp(-(eta + delta)))
    return delta, 1.0 / np.sqrt(max(float((q * (1.0 - q)).sum()), EPS))


def between_sd(shifts: np.ndarray, errors: np.ndarray, fallback: float = PRIOR_SD) -> float:
    """DerSimonian-Laird estimate of the sd of the children's true shifts from their
    estimates and standard errors: ``tau^2 = max(0, (Q - (k - 1)) / (S1 - S2 / S1))`` with
    weights ``w = 1 / se^2``, ``Q = sum w (d - mean_w d)^2``, ``S1 = sum w``, ``S2 = sum w^2``.
    Estimates that differ no more than their errors say give 0: the children are pooled.
    Under two children with an estimate there is nothing to compare: ``fallback``."""
    w = np.where(np.isfinite(errors), 1.0 / np.asarray(errors) ** 2, 0.0)
    if int((w > 0).sum()) < 2:
        return fallback
    d = np.asarray(shifts)
    mean = float((w * d).sum() / w.sum())
    q_stat = float((w * (d - mean) ** 2).sum())
    s1, s2 = float(w.sum()), float((w**2).sum())
    return float(np.sqrt(max(0.0, (q_stat - ((w > 0).sum() - 1)) / (s1 - s2 / s1))))


def _eb_shifts(eta: np.ndarray, y: np.ndarray, groups: dict, fallback: float) -> dict:
    """Each group's shift of the rows' log-odds ``eta``: the posterior mode under
    ``N(0, tau^2)``, ``tau`` the groups' between-sd (:func:`between_sd`)."""
    evidence = [_evidence(eta[r], y[r]) for r in groups.values()]
    errors = np.array([e[1] for e in evidence])
    tau = between_sd(np.array([e[0] for e in evidence]), errors, fallback)
    return {k: _shift(eta[r], y[r], tau) for k, r in groups.items()}


def _slope_evidence(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """A child's own Platt slope and its standard error (from the inverse of the Fisher
    information ``X' diag(q (1 - q)) X`` of ``X = [logit p, 1]``)."""
    a, b = _platt(p, y)
    x = _logit(p)
    q = 1.0 / (1.0 + np.exp(-(a * x + b)))
    w = q * (1.0 - q)
    info = np.array([[(w * x * x).sum(), (w * x).sum()], [(w * x).sum(), w.sum()]])
    det = float(np.linalg.det(info))
    return a, float(np.sqrt(info[1, 1] / det)) if det > 0 else np.inf


def _log_odds(p: np.ndarray, groups: dict, lines: dict) -> np.ndarray:
    """``a logit p + b`` of each row through its group's line (every row in one group)."""
    eta = np.empty(len(p))
    for k, rows in groups.items():
        eta[rows] = lines[k][0] * _logit(p[rows]) + lines[k][1]
    return eta


def _children(
    p: np.ndarray,
    y: np.ndarray,
    groups: dict,
    parents: dict,
    limits: tuple[int, int],
    prior_rows: float | None,
    fallback: float,
) -> dict:
    """Each child's parameters (its rows ``groups[k]``, its parent ``parents[k]``).

    Slope: a child with ``limits`` (rows, events) for a fit of its own has its Platt slope
    shrunk to the parent's with weight ``tau_a^2 / (tau_a^2 + se^2)``, ``tau_a`` the between-sd
    of those children's slopes (or ``n / (n + prior_rows)`` when ``prior_rows`` is given);
    the others keep the parent's.  Intercept: the parent's line (held at the rows' mean logit
    when the slope changed) shifted by the posterior mode of ``delta`` under ``N(0, tau^2)``,
    ``tau`` the children's between-sd of their shifts (:func:`_eb_shifts`)."""
    own = {}
    for k, r in groups.items():
        n, pos = len(r), int(y[r].sum())
        if n >= limits[0] and min(pos, n - pos) >= limits[1]:
            own[k] = _slope_evidence(p[r], y[r])
    dev = np.array([a - parents[k][0] for k, (a, _) in own.items()])
    tau_a = between_sd(dev, np.array([se for _, se in own.values()]), fallback)
    lines = {}
    for k, rows in groups.items():
        a0, b = parents[k]
        a = a0
        if k in own:
            (a_k, se), n = own[k], len(rows)
            w = n / (n + prior_rows) if prior_rows is not None else tau_a**2 / (tau_a**2 + se**2)
            a = w * a_k + (1 - w) * a0
            b += (a0 - a) * float(_logit(p[rows]).mean())
        lines[k] = (a, b)
    shift = _eb_shifts(_log_odds(p, groups, lines), y, groups, fallback)
    return {k: (a, b + shift[k]) for k, (a, b) in lines.items()}


def fit_calibrator(
    p: np.ndarray,
    y: np.ndarray,
    option: np.ndarray,
    segment: np.ndarray,
    *,
    min_rows: int = 300,
    min_class: int = 100,
    prior_rows: float | None = None,
    prior_sd: float = PRIOR_SD,
) -> GroupCalibrator:
    """Fit the pooled, per-option and per-(option, segment) Platt parameters (see the module):
    options about the pooled fit, then a segment shift shared by every option, then each
    option x segment about its option's line plus its segment's shift.

    ``min_rows`` / ``min_class``: the rows and events (and non-events) a group needs for a
    slope of its own; ``prior_rows``: None shrinks those slopes empirical-Bayes, a number
    with the fixed weight ``n / (n + prior_rows)``; ``prior_sd``: :data:`PRIOR_SD`'s role."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    option = np.asarray(option, dtype=np.int64)
    segment = np.asarray(segment).astype(str)
    n, pos = len(y), int(y.sum())
    if n >= min_rows and min(pos, n - pos) >= min_class:
        pooled = _platt(p, y)
    else:
        pooled = (1.0, _pooled_shift(p, y, IDENTITY, prior_sd))
    limits = (min_rows, min_class), prior_rows
    rows = {int(o): np.flatnonzero(option == o) for o in np.unique(option)}
    by_option = _children(p, y, rows, dict.fromkeys(rows, pooled), *limits, prior_sd)
    segments = {str(s): np.flatnonzero(segment == s) for s in np.unique(segment)}
    seg = _eb_shifts(_log_odds(p, rows, by_option), y, segments, prior_sd)
    cells = {(o, s): r[segment[r] == s] for o, r in rows.items() for s in np.unique(segment[r])}
    parents = {(o, s): (by_option[o][0], by_option[o][1] + seg[s]) for o, s in cells}
    by_group = _children(p, y, cells, parents, *limits, prior_sd)
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
