"""Budget buffers: how much of a budget a plan may promise so that its random spend keeps it.

A plan's spend against a budget is a random sum: holder ``u`` of option ``k``
redeems with probability ``p = redemption[u, k]`` and then charges the face value
``c``.  Its mean is the plan's expected spend ``sum p c``, its variance from the
draws ``sum p (1 - p) c^2``.  The predictions themselves may be off: the
randomised holdout's relative bias ``b_k`` of predicted spend per option, with
standard error ``s_k`` (:func:`growth.modeling.calibration.spend_calibration`),
moves the mean by ``sum_k m_k b_k`` (``m_k`` the plan's expected spend on option
``k``) with variance ``sum_k m_k^2 s_k^2``.  Under a normal approximation::

    allowance = max(0, sum_k m_k b_k)        (a bias that would lower spend is not trusted)
    sd        = sqrt(sum p (1 - p) c^2 + sum_k m_k^2 s_k^2)
    P(spend <= B) = Phi((B - mean - allowance) / sd)

The plan (:func:`growth.campaigns.coupons.plan.plan_coupons`) is solved against
an effective budget ``B'`` per budget and ``B'`` moved by the plan's own
shortfall, ``B' <- min(B, max(B' / 2, B' + B - (mean + allowance + z sd)))``, until every
budget holds with probability ``target`` (``z = Phi^-1(target)``).

>>> import numpy as np
>>> round(p_within(100.0, mean=90.0, sd=5.0), 4)
0.9772
>>> round(z_score(0.5), 6), round(z_score(0.95), 3)
(0.0, 1.645)
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

MAX_REL_SE = 1.0
"""An option's relative-bias standard error is capped here (an option the holdout
barely tried is known to within 100 %, not infinitely badly)."""


def z_score(target: float) -> float:
    """The standard normal quantile of ``target``, in (0, 1)."""
    return NormalDist().inv_cdf(target)


def p_within(budget: float, *, mean: float, sd: float) -> float:
    """``P(spend <= budget)`` for a normal spend of ``mean`` and ``sd``."""
    if sd <= 0.0:
        return 1.0 if mean <= budget + 1e-9 else 0.0
    return NormalDist().cdf((budget - mean) / sd)


@dataclass(frozen=True)
class BudgetRisk:
    """One budget's spend under a plan: what the solver saw and how likely the budget holds.

    All amounts in currency units; ``buffer = budget - effective_budget``.
    """

    budget: float
    effective_budget: float
    expected_spend: float  # the plan's predicted mean spend
    bias_allowance: float  # max(0, sum_k m_k b_k)
    spend_sd: float  # draws and calibration together
    p_within: float  # predicted P(spend <= budget)

    @property
    def buffer(self) -> float:
        return self.budget - self.effective_budget

    @property
    def centre(self) -> float:
        """The centre of the spend's distribution: expected spend plus the bias allowance."""
        return self.expected_spend + self.bias_allowance

    def summary(self) -> dict[str, float]:
        return {**asdict(self), "buffer": self.buffer}


def option_bias(decision: CouponDecision, calibration: pd.DataFrame | None) -> np.ndarray:
    """(K, 2) relative bias and its standard error per option (0..K-1); zeros without one."""
    out = np.zeros((len(decision.option_ids) - 1, 2))
    if calibration is None:
        return out
    table = calibration.reindex(decision.option_ids[1:])
    out[:, 0] = table["rel_bias"].fillna(0.0).to_numpy()
    out[:, 1] = np.minimum(table["rel_bias_se"].fillna(MAX_REL_SE).to_numpy(), MAX_REL_SE)
    return out


def spend_risk(
    decision: CouponDecision,
    choice: np.ndarray,
    budgets: Sequence[Any],
    effective: dict[str, float],
    bias: np.ndarray,
) -> dict[str, BudgetRisk]:
    """Each budget's :class:`BudgetRisk` under ``choice`` (-1 = none).

    ``budgets`` are the campaign's (name, options, amount); ``effective`` the
    amounts the solver saw, by name; ``bias`` is :func:`option_bias`.
    """
    choice = np.asarray(choice)
    rows = np.flatnonzero(choice >= 0)
    k = choice[rows]
    m = decision.cost[rows, k]
    p = decision.redemption[rows, k + 1]
    draws = p * (1.0 - p) * decision.face_value[1:][k] ** 2
    n_options = bias.shape[0]
    out = {}
    for b in budgets:
        mine = np.isin(k, b.options)
        per_option = np.bincount(k[mine], m[mine], minlength=n_options)  # m_k
        allowance = max(0.0, float(per_option @ bias[:, 0]))
        variance = float(draws[mine].sum() + (per_option**2) @ (bias[:, 1] ** 2))
        mean, sd = float(m[mine].sum()), math.sqrt(variance)
        out[b.name] = BudgetRisk(
            budget=float(b.amount),
            effective_budget=float(effective[b.name]),
            expected_spend=mean,
            bias_allowance=allowance,
            spend_sd=sd,
            p_within=p_within(b.amount, mean=mean + allowance, sd=sd),
        )
    return out


def next_effective(risk: dict[str, BudgetRisk], z: float) -> dict[str, float]:
    """The effective budgets of the next round: each moved by its budget's shortfall at ``z``,
    at most halved in one round (a small budget whose buffer is most of it is approached,
    not overshot to nothing), never above the budget."""
    return {
        name: min(
            r.budget,
            max(
                0.5 * r.effective_budget, r.effective_budget + r.budget - r.centre - z * r.spend_sd
            ),
        )
        for name, r in risk.items()
    }
