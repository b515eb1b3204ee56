"""Off-policy value of a targeting plan from a randomised log: IPS, SNIPS and DR.

Arrays, one entry per logged row ``i``: ``outcome`` ``Y_i``, ``logged_arm`` ``A_i``,
``propensity`` ``p_i = P(A_i | x_i)`` (the design's), ``target_arm`` ``pi_i`` (the arm
the plan gives row ``i``) and, for DR, ``predictions`` ``mu[i, k]`` (the predicted
outcome of row ``i`` under arm ``k``, from a model not fitted on these rows).  With
``w_i = [A_i = pi_i] / p_i``, the value per row of the plan is estimated as

* IPS: ``mean(w Y)``;
* SNIPS: ``sum(w Y) / sum(w)`` (self-normalised: bounded by the outcomes, a little biased);
* DR: ``mean(mu[i, pi_i] + w_i (Y_i - mu[i, A_i]))`` (unbiased when the propensities
  are right, whatever ``mu``; lower variance the better ``mu``).

Intervals are normal at ``level`` from the rows' standard error (the delta method
for SNIPS).  :func:`difference` compares two plans on the same rows with paired DR
scores.  The spend of a plan is estimated the same way with the cost as the outcome.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 20_000
>>> arm = rng.integers(0, 2, n)                      # a 50/50 trial
>>> y = (rng.random(n) < np.where(arm == 1, 0.3, 0.2)).astype(float)
>>> est = policy_value(y, arm, np.full(n, 0.5), np.ones(n, int), np.full((n, 2), 0.25))
>>> sorted(est), bool(est["dr"].lo < 0.3 < est["dr"].hi)
(['dr', 'ips', 'snips'], True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

ESTIMATORS: tuple[str, ...] = ("ips", "snips", "dr")


@dataclass(frozen=True)
class Estimate:
    """A plan's value per row by one estimator, with its standard error and interval."""

    estimator: str
    value: float
    se: float
    lo: float
    hi: float

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def _check(outcome, logged_arm, propensity, target_arm):
    y = np.asarray(outcome, dtype=np.float64)
    a = np.asarray(logged_arm, dtype=np.int64)
    p = np.asarray(propensity, dtype=np.float64)
    t = np.asarray(target_arm, dtype=np.int64)
    n = y.shape[0]
    for name, arr in (("logged_arm", a), ("propensity", p), ("target_arm", t)):
        if arr.shape != (n,):
            raise ValueError(f"{name} has shape {arr.shape}; outcome has {n} rows")
    if n == 0:
        raise ValueError("no rows: an off-policy estimate needs logged rows")
    if not np.all((p > 0) & (p <= 1)):
        raise ValueError("propensities must lie in (0, 1]")
    return y, a, p, t


def _interval(name: str, value: float, se: float, level: float) -> Estimate:
    z = float(norm.ppf(0.5 + level / 2.0))
    return Estimate(name, float(value), float(se), float(value - z * se), float(value + z * se))


def dr_scores(outcome, logged_arm, propensity, target_arm, predictions) -> np.ndarray:
    """Per-row doubly robust scores; their mean is the DR estimate."""
    y, a, p, t = _check(outcome, logged_arm, propensity, target_arm)
    mu = np.asarray(predictions, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] != y.shape[0]:
        raise ValueError(f"predictions must be (rows, arms), got {mu.shape}")
    rows = np.arange(y.shape[0])
    return mu[rows, t] + (a == t) / p * (y - mu[rows, a])


def policy_value(
    outcome,
    logged_arm,
    propensity,
    target_arm,
    predictions=None,
    *,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """IPS, SNIPS and (with ``predictions``) DR estimates of the plan's value per row."""
    y, a, p, t = _check(outcome, logged_arm, propensity, target_arm)
    n = y.shape[0]
    w = (a == t) / p
    ips = w * y
    out = {
        "ips": _interval(
            "ips", ips.mean(), ips.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf, level
        )
    }
    if w.sum() > 0:
        snips = ips.sum() / w.sum()
        se = np.sqrt(np.mean((w * (y - snips)) ** 2) / n) / w.mean()
        out["snips"] = _interval("snips", snips, se, level)
    else:
        out["snips"] = Estimate("snips", float("nan"), float("inf"), -np.inf, np.inf)
    if predictions is not None:
        s = dr_scores(y, a, p, t, predictions)
        out["dr"] = _interval(
            "dr", s.mean(), s.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf, level
        )
    return out


def difference(scores_a: np.ndarray, scores_b: np.ndarray, *, level: float = 0.95) -> Estimate:
    """Plan A's value minus plan B's per row, from paired per-row scores (e.g. :func:`dr_scores`)."""
    d = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    return _interval("dr", d.mean(), d.std(ddof=1) / np.sqrt(d.shape[0]), level)
