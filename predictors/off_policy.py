"""Off-policy estimates of a targeting policy's value from a randomised log, with intervals.

A randomised log has one row per exposure: the arm the row received (``arm``),
the probability the design gave that arm (``propensity``) and the outcome
(``outcome``: a conversion, a revenue, a cost).  A *target policy* names an arm
per row (``target``: the arm a plan would give that row's user).  Its value,
the total ``sum_r w_r Y_r(target_r)`` (``weights`` ``w``, default ``1/n``: the
mean outcome per row), or the *contrast* with a baseline policy
``sum_r w_r (Y_r(target_r) - Y_r(baseline_r))`` (for instance the incremental
conversions of a coupon plan over no coupon), is estimated three ways:

- ``ips``: inverse propensity scoring, ``w rho Y`` with ``rho = 1[arm = target] / propensity``;
  unbiased when the propensities are the design's;
- ``snips``: self-normalised IPS, each policy's ``sum w rho Y / sum w rho`` (rescaled to
  the total weight): slightly biased, usually less noisy;
- ``dr``: doubly robust, the model's prediction of the target arm plus the IPS
  correction of its residual, ``q(target) + rho (Y - q(arm))``; unbiased when the
  propensities are right, whatever the model, and less noisy when the model is good
  (the direct part may also be given as a total computed elsewhere).

Intervals are normal (CLT) on the per-row terms with cluster-robust standard
errors: rows of one ``cluster`` (a user) are summed before the variance, so a
user's correlated rows count once; ``strata`` (e.g. lifecycle segments
post-stratified by ``weights``) add their variances.  SNIPS's variance is the
delta method's (its linearised terms).

A total whose target arms produced no event (every row that received its target arm
had outcome 0: a merchant's coupon nobody in the log redeemed) gets an IPS and SNIPS
of 0 whose per-row terms are all 0, a normal interval of zero width.  Given each
row's largest possible outcome (``outcome_max``, e.g. the face value), their standard
error is instead the one the unseen events allow: with no event among independent
rows, ``sum_r e_r pi_r <= L = -ln(alpha / 2)`` at the interval's one-sided level
(``pi_r <= 1`` the row's event probability under its target, ``e_r`` its propensity), so
the estimand ``sum_r w_r pi_r max_r`` is at most the largest it can be under that
constraint: a fractional knapsack, filled by the rows of largest ``w_r max_r / e_r``
first (:func:`unseen_events_bound`).  Every estimator's ``se`` is then at least that
bound over ``z``: the interval reaches the unseen events.  A row's logged propensity
stands in for its target arm's (exact when the design gives every arm of a row the same
probability, as the coupon holdout's does).

>>> rng = np.random.default_rng(0)
>>> arm = rng.integers(0, 2, 20_000)
>>> y = (rng.random(20_000) < np.where(arm == 1, 0.3, 0.1)).astype(float)
>>> est = policy_estimates(y, arm, np.full(20_000, 0.5), np.ones(20_000, int), baseline=0)
>>> round(est["ips"].value, 1), est["ips"].lower < 0.2 < est["ips"].upper
(0.2, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

ESTIMATORS = ("ips", "snips", "dr")
"""The estimators :func:`policy_estimates` returns (``dr`` only with predictions)."""


@dataclass(frozen=True)
class Estimate:
    """One estimator's value of a policy with its confidence interval (``level``)."""

    estimator: str
    value: float
    lower: float
    upper: float
    se: float
    n_rows: int
    n_clusters: int
    level: float = 0.95
    n_events: int = -1
    """Rows that received the target arm with a non-zero outcome (-1: a contrast, not counted)."""

    def covers(self, truth: float) -> bool:
        """Whether the interval contains ``truth``."""
        return self.lower <= truth <= self.upper

    def summary(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {
            k: (float(v) if isinstance(v, float | np.floating) else v)
            for k, v in asdict(self).items()
        }


def _as_arms(name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be {n} integer arms (or one), got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _check(
    outcome: Any, arm: Any, propensity: Any, weights: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(outcome, dtype=np.float64)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError(f"outcome must be a 1-d array of finite numbers, got shape {y.shape}")
    n = len(y)
    a = _as_arms("arm", arm, n)
    e = np.asarray(propensity, dtype=np.float64)
    e = np.full(n, float(e)) if e.ndim == 0 else e
    if e.shape != (n,):
        raise ValueError(f"propensity must have {n} rows (or be one number), got {e.shape}")
    bad = ~((e > 0) & (e <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"propensity must lie in (0, 1]; row {row} has {float(e[row])!r}")
    w = np.full(n, 1.0 / max(n, 1)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be {n} finite non-negative numbers, got {w.shape}")
    return y, a, e, w


def cluster_se(
    terms: np.ndarray, clusters: np.ndarray | None = None, strata: np.ndarray | None = None
) -> tuple[float, int]:
    """Standard error of ``terms.sum()`` with rows summed per cluster; and the cluster count.

    Within each stratum the cluster totals are treated as an i.i.d. sample
    (variance ``G/(G-1) sum (Z_g - mean Z)^2``); strata add.  ``clusters`` None:
    every row its own cluster.
    """
    n = len(terms)
    clusters = np.arange(n) if clusters is None else np.asarray(clusters)
    strata = np.zeros(n, np.int64) if strata is None else np.asarray(strata)
    if clusters.shape != (n,) or strata.shape != (n,):
        raise ValueError(f"clusters and strata must have {n} rows")
    var, count = 0.0, 0
    for s in np.unique(strata):
        rows = strata == s
        _, inverse = np.unique(clusters[rows], return_inverse=True)
        z = np.bincount(inverse, weights=terms[rows])
        g = len(z)
        count += g
        if g > 1:
            var += g / (g - 1) * float(((z - z.mean()) ** 2).sum())
    return float(np.sqrt(var)), count


def _estimate(
    name: str,
    value: float,
    terms: np.ndarray,
    level: float,
    *,
    unseen: float = 0.0,
    n_events: int = -1,
    **groups: Any,
) -> Estimate:
    """The estimate with its normal interval; ``unseen`` (> 0 when no event was seen,
    :func:`unseen_events_bound`) floors the half-width."""
    se, g = cluster_se(terms, **groups)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    se = max(se, unseen / z)
    half = z * se
    return Estimate(name, value, value - half, value + half, se, len(terms), g, level, n_events)


def unseen_events_bound(
    weights: np.ndarray, propensity: np.ndarray, outcome_max: np.ndarray, level: float
) -> float:
    """Upper bound on a total ``sum_r w_r pi_r max_r`` whose rows showed no event (module
    docstring): its largest value over ``0 <= pi_r <= 1`` with ``sum_r e_r pi_r <= L``,
    ``L = -ln(alpha / 2)``, ``alpha = 1 - level``."""
    gain = weights * outcome_max  # what pi_r = 1 adds to the total
    order = np.argsort(-gain / propensity, kind="stable")
    gain, cost = gain[order], propensity[order]
    left = -np.log((1.0 - level) / 2.0) - np.concatenate([[0.0], np.cumsum(cost)[:-1]])
    share = np.clip(left / cost, 0.0, 1.0)  # pi of each row, the best rows first
    return float((share * gain).sum())


def policy_estimates(
    outcome: Any,
    arm: Any,
    propensity: Any,
    target: Any,
    *,
    predictions: np.ndarray | None = None,
    baseline: Any = None,
    clusters: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    direct_total: float | None = None,
    outcome_max: Any = None,
    unseen_total: float = 0.0,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """IPS, SNIPS and (with ``predictions``) DR estimates of the target policy's value.

    ``outcome``, ``arm``, ``propensity`` (or one number: the design's constant),
    ``target`` (or one arm for every row) have one entry per log row;
    ``predictions`` is ``(rows, arms)``: the model's expected outcome of each
    row under each arm (the direct method).  ``baseline`` (arms or one arm,
    optional) makes every estimate the contrast target minus baseline; rows
    whose target equals their baseline then contribute exactly zero.
    ``weights`` sets the estimand (module docstring); ``clusters``/``strata``
    the interval's standard errors (:func:`cluster_se`).  ``direct_total``: the
    direct method's value (target minus baseline) computed elsewhere, for example
    over a whole population rather than the logged rows; DR is then that total
    plus the rows' weighted IPS correction of the predictions' residuals, and its
    interval the correction's.  ``outcome_max`` (per row or one number, without
    ``baseline``): the largest outcome a row could have under its target; when no row
    that received its target arm had an outcome, IPS's and SNIPS's intervals are the
    unseen events' bound (module docstring) instead of zero-width, and DR's reaches it, or
    ``unseen_total`` if larger (what the rows cannot bound: a policy's most over units no
    row holds).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    y, a, e, w = _check(outcome, arm, propensity, weights)
    n = len(y)
    if n == 0:
        raise ValueError("the log has no rows to estimate from")
    policies = [(1.0, _as_arms("target", target, n))]
    if baseline is not None:
        policies.append((-1.0, _as_arms("baseline", baseline, n)))
    groups = {"clusters": clusters, "strata": strata}
    total = w.sum()
    ips, snips_terms, snips_value = np.zeros(n), np.zeros(n), 0.0
    dr = None if predictions is None else np.zeros(n)
    q = None if predictions is None else np.asarray(predictions, np.float64)
    if q is not None and (q.ndim != 2 or q.shape[0] != n):
        raise ValueError(f"predictions must be (rows, arms) with {n} rows, got {q.shape}")
    for sign, pi in policies:
        rho = (a == pi) / e
        ips += sign * w * rho * y
        norm = float((w * rho).sum())
        mean = float((w * rho * y).sum()) / norm if norm > 0 else 0.0
        snips_value += sign * total * mean
        # delta method: d/d(row) of total * sum(w rho y) / sum(w rho)
        snips_terms += sign * (total / norm if norm > 0 else 0.0) * w * rho * (y - mean)
        if dr is not None and q is not None:
            rows = np.arange(n)
            direct = 0.0 if direct_total is not None else q[rows, pi]
            dr += sign * w * (direct + rho * (y - q[rows, a]))
    target = policies[0][1]
    seen = {}
    if baseline is None:
        events = int(((a == target) & (y != 0)).sum())
        seen["n_events"] = events
        if outcome_max is not None and events == 0:
            bound = np.broadcast_to(np.asarray(outcome_max, np.float64), (n,))
            seen["unseen"] = max(unseen_events_bound(w, e, bound, level), unseen_total)
    out = {
        "ips": _estimate("ips", float(ips.sum()), ips, level, **seen, **groups),
        "snips": _estimate("snips", snips_value, snips_terms, level, **seen, **groups),
    }
    if dr is not None:
        value = float(dr.sum()) + (direct_total or 0.0)
        out["dr"] = _estimate("dr", value, dr, level, **seen, **groups)
    return out
