"""Budget buffers: how much of a budget a plan may promise so that its random spend keeps it.

A plan's spend against a budget is a random sum: holder ``u`` of option ``k``
redeems with probability ``p = redemption[u, k]`` and then charges the face value
``c``.  Its mean is the plan's expected spend ``sum p c``, its variance from the
draws ``sum p (1 - p) c^2`` and its third cumulant ``sum p (1 - p) (1 - 2p) c^3``.

The predictions themselves may be off.  They are calibrated per option x lifecycle
segment on the randomised holdout (:mod:`growth.modeling.recalibration`), so what the
holdout says of their bias is the bias the *calibrated* predictions still carry there:
relative bias ``b_g`` of predicted spend per option x segment ``g`` with standard error
``s_g`` (:func:`growth.modeling.calibration.spend_calibration` on the full calibrators'
probabilities, the ones the plan reads).  Under the calibration's own prior
(:data:`~growth.modeling.recalibration.PRIOR_SD`) an option's bias is about none and a
segment's about its option's; each group's posterior mean ``b_g'`` and sd ``sd_g``
(:func:`posterior`) move the mean by ``sum_g m_g b_g'`` (``m_g`` the plan's expected spend
on ``g``: its own mix, so a segment it buys heavily carries its own bias)::

    allowance = max(0, sum_g m_g b_g')      (a bias that would lower spend is not trusted)
    sd        = sqrt(sum p (1 - p) c^2 + sum_g m_g^2 sd_g^2)
    skew      = sum p (1 - p) (1 - 2p) c^3 / sd^3

The holdout's evidence is counted once.  An earlier rule read the *out-of-fold* bias
(each fold's calibrator fitted without its rows): the bias the calibration had already
removed, added a second time, and the plan buys the groups that same noise raised, so the
allowance grew with the plan's own selection and left about a third of a small world's
budget unspent (``benchmarks/README.md``, small scenario).

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
>>> [round(x, 4) for x in posterior(0.0, 0.3, 0.2)], posterior(0.0, 0.3, float("inf"))
([0.15, 0.1414], (0.0, 0.2))
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
    bias_allowance: float  # max(0, sum_g m_g b_g')
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
    """Posterior relative bias of predicted spend and its sd per option x segment.

    ``table[k, g]`` is option ``k``'s (0..K-1, 'none' excluded) ``(b', sd)`` on the
    users whose segment code is ``g``; ``codes`` is each decision user's code.
    """

    codes: np.ndarray  # (n_users,) segment code
    table: np.ndarray  # (K, S, 2)


def posterior(prior_mean: float, estimate: float, se: float, prior_sd: float = PRIOR_SD):
    """Posterior mean and sd of a level with prior ``N(prior_mean, prior_sd^2)`` measured
    as ``estimate`` with error ``se`` (normal-normal; the prior without evidence).

    Returns ``(mean, sd)``."""
    if not np.isfinite(se):
        return prior_mean, prior_sd
    w = prior_sd**2 / (prior_sd**2 + se**2)
    return prior_mean + w * (estimate - prior_mean), math.sqrt(w) * se


def spend_bias(decision: CouponDecision, calibration: pd.DataFrame | None) -> SpendBias:
    """The :class:`SpendBias` of a :func:`~growth.modeling.calibration.spend_calibration`
    frame: an option's bias the posterior about none, a segment's the posterior about its
    option's, with prior sd ``sqrt(PRIOR_SD^2 + sd_option^2)`` (:func:`posterior`; the
    option's alone for a frame indexed by option).  Zeros without a frame; an option the
    frame lacks, or whose error exceeds it, is known to within :data:`MAX_REL_SE`."""
    segments, codes = np.unique(np.asarray(decision.segment).astype(str), return_inverse=True)
    options = decision.option_ids[1:]
    table = np.zeros((len(options), len(segments), 2))
    if calibration is None:
        return SpendBias(codes, table)
    by_option = calibration.index.nlevels == 1
    if by_option:
        calibration = calibration.set_index(
            pd.MultiIndex.from_product([calibration.index, ["all"]], names=["option_id", "segment"])
        )
    bias = calibration["rel_bias"].to_dict()
    error = calibration["rel_bias_se"].astype(float).to_dict()
    for k, option in enumerate(options):
        if (option, "all") not in bias:
            table[k, :] = 0.0, MAX_REL_SE
            continue
        b_k, s_k = posterior(0.0, bias[(option, "all")], min(error[(option, "all")], MAX_REL_SE))
        prior_sd = math.sqrt(PRIOR_SD**2 + s_k**2)
        for g, segment in enumerate(segments):
            if by_option:
                table[k, g] = b_k, s_k
                continue
            group = bias.get((option, segment), 0.0), error.get((option, segment), np.inf)
            b, sd = posterior(b_k, *group, prior_sd=prior_sd)
            table[k, g] = b, min(sd, MAX_REL_SE)
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
