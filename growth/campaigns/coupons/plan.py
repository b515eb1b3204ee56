"""The coupon campaign: its budgets as one optimizer problem, the plan, the front.

The platform's budget pays for red packets and full-reduction coupons; each
merchant's budget pays for that merchant's coupons; an operator may also cap the
spend of a coupon type within them.  :class:`CouponCampaign` names these budgets
once (``platform``, ``merchant_<id>``, ``type[<type>]``) and builds the
:class:`~optimizers.coupons.CouponProblem` once from a :class:`CouponDecision`
and the :class:`~growth.campaigns.settings.CouponSettings`.  The plan and the
conversions-versus-GMV front read that one problem, the optimizer reports its
spends and dual prices under the budgets' names, and the truth's play-out
(:mod:`growth.campaigns.coupons.playout`) holds every plan to the same budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.buffer import (
    BudgetRisk,
    next_effective,
    spend_bias,
    spend_risk,
    z_score,
)
from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.settings import CouponSettings
from optimizers.coupons import CouponAllocation, CouponProblem, solve, solve_front

PLATFORM = "platform"
COUPON_FRONT = "coupon_conversions_vs_gmv"
BUFFER_ROUNDS = 12
"""At most this many solves to settle the effective budgets (:func:`plan_coupons`)."""
BUFFER_TOL = 1e-3
"""Stop once no effective budget would move by more than this share of the largest."""


@dataclass(frozen=True)
class Budget:
    """One named budget: the options (indices 0..K-1) whose expected cost it pays, and its amount.

    ``payer`` budgets (the platform and each merchant) split the options between
    them, each option paid by exactly one; a type cap (``payer=False``) limits a
    coupon type's spend on top of its payer's budget.
    """

    name: str
    options: np.ndarray
    amount: float
    payer: bool = True


def campaign_budgets(decision: CouponDecision, settings: CouponSettings) -> list[Budget]:
    """The platform's budget, each merchant's, then each capped coupon type's (by type name)."""
    types = np.asarray(decision.option_types[1:])
    merchants = decision.merchant_id[1:]
    is_merchant = types == "merchant"
    budgets = [Budget(PLATFORM, np.flatnonzero(~is_merchant), float(settings.budget))]
    for m in sorted(set(merchants[is_merchant].tolist())):
        idx = np.flatnonzero(is_merchant & (merchants == m))
        budgets.append(Budget(f"merchant_{m}", idx, float(settings.merchant_budget)))
    for t, amount in sorted(settings.type_budgets.items()):
        budgets.append(Budget(f"type[{t}]", np.flatnonzero(types == t), float(amount), False))
    return budgets


class CouponCampaign:
    """A coupon decision under the operator's settings, as one optimizer problem.

    ``budgets`` lists every :class:`Budget` (platform first); ``problem`` maximises
    incremental conversions (``value``) and carries incremental GMV as ``value2``
    for the front.  Its constraints are named after the budgets; their
    right-hand sides are ``effective`` (by name, default each budget's amount),
    the budgets less their buffers (:mod:`growth.campaigns.coupons.buffer`).
    """

    def __init__(
        self,
        decision: CouponDecision,
        settings: CouponSettings,
        *,
        effective: dict[str, float] | None = None,
    ) -> None:
        self.decision = decision
        self.settings = settings
        self.budgets = campaign_budgets(decision, settings)
        self.effective = {b.name: b.amount for b in self.budgets} | (effective or {})
        platform, *groups = [
            Budget(b.name, b.options, self.effective[b.name], b.payer) for b in self.budgets
        ]
        global_options = np.zeros(decision.value.shape[1], dtype=bool)
        global_options[platform.options] = True
        self.problem = CouponProblem(
            value=decision.value,
            cost=decision.cost,
            budget=platform.amount,
            budget_name=platform.name,
            value2=decision.gmv_value,
            option_types=list(decision.option_types[1:]),
            global_options=global_options,
            budget_groups={b.name: (b.options, b.amount) for b in groups},
            segments=decision.segment,
            min_coverage=settings.min_coverage or None,
        )

    def plan(self, *, warm_start: dict[str, float] | None = None) -> CouponPlan:
        """The certified plan that maximises incremental conversions under every budget.

        ``warm_start`` (a previous plan's ``allocation.dual``) starts the
        Lagrangian's prices there, which makes re-solves at nearby budgets fast;
        the certificate is this solve's own.
        """
        allocation = solve(self.problem, self.settings.method, warm_start=warm_start)  # type: ignore[arg-type]
        choice = np.asarray(allocation.choice)
        seg, counts = np.unique(self.decision.segment[choice >= 0], return_counts=True)
        return CouponPlan(
            campaign=self,
            choice=choice,
            allocation=allocation,
            budgets={b.name: b.amount for b in self.budgets},
            spend=self.spend(choice),
            users_by_segment={str(s): int(c) for s, c in zip(seg, counts, strict=True)},
        )

    def spend(self, choice: np.ndarray) -> dict[str, float]:
        """Expected spend of ``choice`` (-1 = none) against each budget, by name."""
        rows = np.flatnonzero(choice >= 0)
        picked = self.decision.cost[rows, choice[rows]]
        return {b.name: float(picked[np.isin(choice[rows], b.options)].sum()) for b in self.budgets}

    def front(self, *, n_points: int = 7) -> pd.DataFrame:
        """Store rows of the conversions-versus-GMV front under the same budgets.

        Points are in increasing conversions; the last (the most conversions, the
        conversions-only objective) is the plan the job adopts (``chosen``).
        """
        points = solve_front(self.problem, n_points=n_points, method=self.settings.method)  # type: ignore[arg-type]
        return pd.DataFrame(
            {
                "front": COUPON_FRONT,
                "point_id": np.arange(len(points)),
                "spend": [float(p.allocation.spend) for p in points],
                "conversions": [p.value for p in points],
                "gmv": [p.value2 for p in points],
                "chosen": np.arange(len(points)) == len(points) - 1,
            }
        )


@dataclass
class CouponPlan:
    """A coupon plan (``choice[u]`` = option index 0..K-1 or -1) and its certificate.

    ``budgets`` and ``spend`` are keyed by budget name, as are the allocation's
    dual prices (``allocation.dual``).
    """

    campaign: CouponCampaign
    choice: np.ndarray
    allocation: CouponAllocation
    budgets: dict[str, float]
    spend: dict[str, float]
    users_by_segment: dict[str, int]
    risk: dict[str, BudgetRisk] = field(default_factory=dict)
    """Per budget: buffer, effective budget, predicted P(spend <= budget) (empty: no buffer)."""

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run."""
        a = self.allocation
        return {
            "status": a.status,
            "method": a.method,
            "objective": float(a.objective),
            "upper_bound": float(a.upper_bound),
            "gap": float(a.gap),
            "solve_time_s": float(a.solve_time_s),
            "dual": {k: float(v) for k, v in a.dual.items()},
            "budgets": self.budgets,
            "spend": self.spend,
            "coupons_by_segment": self.users_by_segment,
            "spend_confidence": self.campaign.settings.spend_confidence,
            "spend_risk": {name: r.summary() for name, r in self.risk.items()},
        }


def plan_coupons(
    decision: CouponDecision,
    settings: CouponSettings,
    *,
    calibration: pd.DataFrame | None = None,
    warm_start: dict[str, float] | None = None,
) -> CouponPlan:
    """Allocate coupons to maximise incremental conversions under every budget, each kept
    with probability ``settings.spend_confidence`` (None: planned to the expected spend).

    Each round solves the :class:`CouponCampaign` against effective budgets,
    measures the plan's spend risk (:func:`~growth.campaigns.coupons.buffer.spend_risk`,
    with ``calibration``'s per option x segment bias of predicted spend, if given) and moves
    each effective budget by its shortfall, or, once a round falls short after one that
    held, halves the bracket between the best plan that held and that round (the bias and sd
    move with the plan's mix, so a step can overshoot back and forth); the plan adopted is
    the best one whose every budget holds with the target probability (the last round's if
    none does).
    The plan keeps its campaign for the front and the truth's scoring.
    """
    target = settings.spend_confidence
    campaign = CouponCampaign(decision, settings)
    plan = campaign.plan(warm_start=warm_start)
    if target is None:
        return plan
    z, bias = z_score(target), spend_bias(decision, calibration)
    best: CouponPlan | None = None
    for round_ in range(BUFFER_ROUNDS):
        plan.risk = spend_risk(decision, plan.choice, campaign.budgets, campaign.effective, bias)
        held = all(r.p_within >= target - 1e-9 for r in plan.risk.values())
        if held and (best is None or plan.allocation.objective > best.allocation.objective):
            best = plan
        if held or best is None:
            effective = next_effective(plan.risk, z)
        else:
            # short of the target after a plan that held: the target lies between them, so
            # halve that bracket; a step by the shortfall can overshoot again, as the plan's
            # mix, and with it the spend's bias and sd, moves with the budgets
            kept = best.campaign.effective
            effective = {n: 0.5 * (kept[n] + campaign.effective[n]) for n in kept}
        moved = max(abs(effective[n] - campaign.effective[n]) for n in effective)
        settled = moved <= BUFFER_TOL * max(1.0, *campaign.effective.values())
        if (settled and best is not None) or round_ == BUFFER_ROUNDS - 1:
            break
        campaign = CouponCampaign(decision, settings, effective=effective)
        plan = campaign.plan(warm_start=plan.allocation.dual)
    return best or plan
