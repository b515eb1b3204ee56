"""Budget buffers: how much of a budget a plan may promise so that its random spend keeps it.

A plan's spend against a budget is a random sum: holder ``u`` of option ``k``
redeems with probability ``p = redemption[u, k]`` and then charges the face value
``c``.  Its mean is the plan's expected spend ``sum p c``, its variance from the
draws ``sum p (1 - p) c^2`` and its third cumulant ``sum p (1 - p) (1 - 2p) c^3``.
The predictions themselves may be off: the randomised holdout's relative bias
``b_g`` of predicted spend per option x lifecycle segment ``g``, with standard
error ``s_g`` (:func:`growth.modeling.calibration.spend_calibration`, each
segment's pooled with its option's by :func:`pooled_bias`), moves the
mean by ``sum_g m_g b_g`` (``m_g`` the plan's expected spend on ``g``: the plan's
own mix, so a segment it buys heavily carries its own bias) with variance
``sum_g m_g^2 s_g^2``::

    allowance = max(0, sum_g m_g b_g)        (a bias that would lower spend is not trusted)
    sd        = sqrt(sum p (1 - p) c^2 + sum_g m_g^2 s_g^2)
    skew      = sum p (1 - p) (1 - 2p) c^3 / sd^3

A budget of a few dozen redemptions has a right tail longer than the normal's, so
the spend's quantile at ``z = Phi^-1(target)`` is the Cornish-Fisher one,
``mean + allowance + (z + (z^2 - 1) skew / 6) sd`` (:func:`cornish_fisher`), and
``P(spend <= B)`` its inverse (:func:`p_within`).  The plan
(:func:`growth.campaigns.coupons.plan.plan_coupons`) is solved against an
effective budget ``B'`` per budget and ``B'`` moved by the plan's own shortfall,
``B' <- min(B, max(B' / 2, B' + B - quantile))``, until every budget holds with
probability ``target``.

>>> import numpy as np
>>> round(p_within(100.0, mean=90.0, sd=5.0), 4)
0.9772
>>> round(z_score(0.5), 6), round(z_score(0.95), 3)
(0.0, 1.645)
>>> round(cornish_fisher(1.645, 0.3), 3)
1.73
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.modeling.recalibration import PRIOR_SD

MAX_REL_SE = 1.0
"""An option's relative-bias standard error is capped here (an option the holdout
barely tried is known to within 100 %, not infinitely badly)."""


def z_score(target: float) -> float:
    """The standard normal quantile of ``target``, in (0, 1)."""
    return NormalDist().inv_cdf(target)


def cornish_fisher(z: float, skew: float) -> float:
    """The standardised quantile of a sum with ``skew`` at the normal's ``z`` (first order)."""
    return z + (z * z - 1.0) * skew / 6.0


def p_within(budget: float, *, mean: float, sd: float, skew: float = 0.0) -> float:
    """``P(spend <= budget)`` for a spend of ``mean``, ``sd`` and ``skew``: the level whose
    Cornish-Fisher quantile is the budget (the normal's when ``skew`` is 0)."""
    if sd <= 0.0:
        return 1.0 if mean <= budget + 1e-9 else 0.0
    x, g = (budget - mean) / sd, skew / 6.0
    if abs(g) < 1e-12:
        return NormalDist().cdf(x)
    disc = 1.0 + 4.0 * g * (x + g)  # solve z + g (z^2 - 1) = x on the increasing branch
    if disc < 0.0:
        return 0.0 if g > 0 else 1.0
    return NormalDist().cdf((math.sqrt(disc) - 1.0) / (2.0 * g))


@dataclass(frozen=True)
class BudgetRisk:
    """One budget's spend under a plan: what the solver saw and how likely the budget holds.

    All amounts in currency units; ``buffer = budget - effective_budget``.
    """

    budget: float
    effective_budget: float
    expected_spend: float  # the plan's predicted mean spend
    bias_allowance: float  # max(0, sum_g m_g b_g)
    spend_sd: float  # draws and calibration together
    p_within: float  # predicted P(spend <= budget)
    spend_skew: float = 0.0  # the draws' third cumulant over sd^3

    def quantile(self, z: float) -> float:
        """The spend's Cornish-Fisher quantile at the normal's ``z``."""
        return self.centre + cornish_fisher(z, self.spend_skew) * self.spend_sd

    @property
    def buffer(self) -> float:
        return self.budget - self.effective_budget

    @property
    def centre(self) -> float:
        """The centre of the spend's distribution: expected spend plus the bias allowance."""
        return self.expected_spend + self.bias_allowance

    def summary(self) -> dict[str, float]:
        return {**asdict(self), "buffer": self.buffer}


@dataclass(frozen=True)
class SpendBias:
    """Relative bias of predicted spend and its standard error per option x segment.

    ``table[k, g]`` is option ``k``'s (0..K-1, 'none' excluded) ``(b, s)`` on the
    users whose segment code is ``g``; ``codes`` is each decision user's code.
    """

    codes: np.ndarray  # (n_users,) segment code
    table: np.ndarray  # (K, S, 2)


def pooled_bias(option: tuple[float, float], group: tuple[float, float]) -> tuple[float, float]:
    """A segment's relative bias and its error, pooled with its option's: the group's
    estimate ``b_g`` (error ``s_g``) moves the option's ``b_k`` (error ``s_k``) by
    ``w (b_g - b_k)``, ``w = v / (v + s_g^2)`` with ``v = PRIOR_SD^2 + s_k^2`` the prior
    variance of the group's bias about the option's estimate; the error is the posterior's,
    ``sqrt(w) s_g``.  A group without evidence (infinite error) takes its option's."""
    (b_k, s_k), (b_g, s_g) = option, group
    if not np.isfinite(s_g):
        return b_k, s_k
    v = PRIOR_SD**2 + s_k**2
    w = v / (v + s_g**2)
    return b_k + w * (b_g - b_k), math.sqrt(w) * s_g


def spend_bias(decision: CouponDecision, calibration: pd.DataFrame | None) -> SpendBias:
    """The :class:`SpendBias` of a :func:`~growth.modeling.calibration.spend_calibration`
    frame: per option x segment the segment's bias pooled with its option's
    (:func:`pooled_bias`; the option's alone for a frame indexed by option); zeros without
    a frame; an option it lacks, or whose error exceeds it, is known to within
    :data:`MAX_REL_SE`."""
    segments, codes = np.unique(np.asarray(decision.segment).astype(str), return_inverse=True)
    options = decision.option_ids[1:]
    table = np.zeros((len(options), len(segments), 2))
    if calibration is None:
        return SpendBias(codes, table)
    if calibration.index.nlevels == 1:
        calibration = calibration.set_index(
            pd.MultiIndex.from_product([calibration.index, ["all"]], names=["option_id", "segment"])
        )
    bias = calibration["rel_bias"].to_dict()
    error = calibration["rel_bias_se"].astype(float).to_dict()
    for k, option in enumerate(options):
        if (option, "all") not in bias:
            table[k, :] = 0.0, MAX_REL_SE
            continue
        mine = bias[(option, "all")], min(error[(option, "all")], MAX_REL_SE)
        for g, segment in enumerate(segments):
            group = bias.get((option, segment), 0.0), error.get((option, segment), np.inf)
            b, se = pooled_bias(mine, group)
            table[k, g] = b, min(se, MAX_REL_SE)
    return SpendBias(codes, table)


def spend_risk(
    decision: CouponDecision,
    choice: np.ndarray,
    budgets: Sequence[Any],
    effective: dict[str, float],
    bias: SpendBias,
) -> dict[str, BudgetRisk]:
    """Each budget's :class:`BudgetRisk` under ``choice`` (-1 = none).

    ``budgets`` are the campaign's (name, options, amount); ``effective`` the
    amounts the solver saw, by name; ``bias`` is :func:`spend_bias`.
    """
    choice = np.asarray(choice)
    rows = np.flatnonzero(choice >= 0)
    k = choice[rows]
    m = decision.cost[rows, k]
    p = decision.redemption[rows, k + 1]
    c = decision.face_value[1:][k]
    draws = p * (1.0 - p) * c**2
    third = draws * (1.0 - 2.0 * p) * c
    n_groups = bias.table.shape[0] * bias.table.shape[1]
    group = k * bias.table.shape[1] + bias.codes[rows]  # option x segment, flat
    b, s = bias.table[..., 0].ravel(), bias.table[..., 1].ravel()
    out = {}
    for budget in budgets:
        mine = np.isin(k, budget.options)
        per_group = np.bincount(group[mine], m[mine], minlength=n_groups)  # m_g
        allowance = max(0.0, float(per_group @ b))
        sd = math.sqrt(float(draws[mine].sum() + (per_group**2) @ (s**2)))
        skew = float(third[mine].sum()) / sd**3 if sd > 0.0 else 0.0
        mean = float(m[mine].sum())
        out[budget.name] = BudgetRisk(
            budget=float(budget.amount),
            effective_budget=float(effective[budget.name]),
            expected_spend=mean,
            bias_allowance=allowance,
            spend_sd=sd,
            p_within=p_within(budget.amount, mean=mean + allowance, sd=sd, skew=skew),
            spend_skew=skew,
        )
    return out


def next_effective(risk: dict[str, BudgetRisk], z: float) -> dict[str, float]:
    """The effective budgets of the next round: each moved by its budget's shortfall at ``z``
    (its Cornish-Fisher quantile), at most halved in one round (a small budget whose buffer
    is most of it is approached, not overshot to nothing), never above the budget."""
    return {
        name: min(
            r.budget,
            max(0.5 * r.effective_budget, r.effective_budget + r.budget - r.quantile(z)),
        )
        for name, r in risk.items()
    }
