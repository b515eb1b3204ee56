"""Coupon plans: the decision problem handed to the optimizer, and plan baselines.

The platform's budget pays for red packets and full-reduction coupons; each
merchant's budget pays for that merchant's coupons.  ``solve_coupon_plan`` builds
those budget groups from a :class:`CouponDecision` and calls
:func:`optimizers.coupons.allocate`, whose result carries the certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.settings import CouponSettings
from optimizers.coupons import CouponAllocation, allocate, pareto_front

PLATFORM = "platform"
COUPON_FRONT = "coupon_conversions_vs_gmv"


def budget_groups(decision: CouponDecision, settings: CouponSettings) -> dict[str, tuple]:
    """Budget name -> (option indices 0..K-1, amount): the platform's and each merchant's."""
    types = np.asarray(decision.option_types[1:])
    merchants = decision.merchant_id[1:]
    groups: dict[str, tuple] = {
        PLATFORM: (np.flatnonzero(types != "merchant").tolist(), settings.budget)
    }
    for m in sorted(set(merchants[types == "merchant"].tolist())):
        idx = np.flatnonzero((types == "merchant") & (merchants == m)).tolist()
        groups[f"merchant_{m}"] = (idx, settings.merchant_budget)
    return groups


@dataclass
class CouponPlan:
    """A coupon plan (``choice[u]`` = option index 0..K-1 or -1) and its certificate."""

    choice: np.ndarray
    allocation: CouponAllocation
    budgets: dict[str, float]
    spend: dict[str, float]
    users_by_segment: dict[str, int]

    def summary(self) -> dict[str, Any]:
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
        }


def group_spend(decision: CouponDecision, choice: np.ndarray, groups: dict) -> dict[str, float]:
    """Expected spend of ``choice`` per budget group (name -> (option indices, amount))."""
    cost = decision.cost
    rows = np.flatnonzero(choice >= 0)
    picked = cost[rows, choice[rows]]
    return {
        name: float(picked[np.isin(choice[rows], idx)].sum()) for name, (idx, _) in groups.items()
    }


def type_budget_groups(decision: CouponDecision, settings: CouponSettings) -> dict[str, tuple]:
    """Budget name ``type[t]`` -> (option indices 0..K-1, amount) for each capped coupon type.

    These caps hold on top of the platform's and merchants' budgets (a red-packet
    cap limits red packets within the platform budget).
    """
    types = np.asarray(decision.option_types[1:])
    return {
        f"type[{t}]": (np.flatnonzero(types == t).tolist(), float(amount))
        for t, amount in sorted(settings.type_budgets.items())
    }


def _constraints(decision: CouponDecision, settings: CouponSettings) -> dict[str, Any]:
    """Keyword arguments of :func:`allocate` for the budgets and coverage floors."""
    groups = budget_groups(decision, settings)
    return {
        "global_options": np.isin(np.arange(decision.value.shape[1]), groups[PLATFORM][0]),
        "budget_groups": {k: v for k, v in groups.items() if k != PLATFORM},
        "option_types": list(decision.option_types[1:]),
        "type_budgets": dict(settings.type_budgets) or None,
        "segments": decision.segment,
        "min_coverage": settings.min_coverage or None,
        "method": settings.method,
    }


def solve_coupon_plan(
    decision: CouponDecision,
    settings: CouponSettings,
    *,
    warm_start: dict[str, float] | None = None,
) -> CouponPlan:
    """Allocate coupons to maximise incremental conversions under every budget.

    The plan's ``budgets``/``spend`` list the platform, each merchant and each
    capped coupon type (``type[red_packet]`` ...).  ``warm_start`` (a previous
    plan's ``allocation.dual``) starts the Lagrangian's prices there, which makes
    re-solves at nearby budgets fast; the certificate is this solve's own.
    """
    groups = {**budget_groups(decision, settings), **type_budget_groups(decision, settings)}
    allocation = allocate(
        decision.value,
        decision.cost,
        settings.budget,
        warm_start=warm_start,
        **_constraints(decision, settings),
    )
    choice = np.asarray(allocation.choice)
    seg, counts = np.unique(decision.segment[choice >= 0], return_counts=True)
    return CouponPlan(
        choice=choice,
        allocation=allocation,
        budgets={k: float(v[1]) for k, v in groups.items()},
        spend=group_spend(decision, choice, groups),
        users_by_segment={str(s): int(c) for s, c in zip(seg, counts, strict=True)},
    )


def coupon_pareto_frame(
    decision: CouponDecision, settings: CouponSettings, *, n_points: int = 7
) -> pd.DataFrame:
    """Store rows of the conversions-versus-GMV front under the same budgets.

    Points are in increasing conversions; the last (the most conversions, the
    conversions-only objective) is the plan the job adopts (``chosen``).
    """
    points = pareto_front(
        decision.value,
        decision.gmv_value,
        decision.cost,
        settings.budget,
        n_points=n_points,
        **_constraints(decision, settings),
    )
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
