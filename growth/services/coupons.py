"""Coupons page: the certified allocation, its breakdown, the value-versus-budget curve and the front.

On demand, a request is answered at the plan's dual prices by the plan's pacer
(:func:`plan_pacer`: paced to the plan's effective budgets, never paying beyond the
posed ones; :func:`answer`), :mod:`growth.campaigns.coupons.online`.
"""

from __future__ import annotations

import math

import pandas as pd

from growth.campaigns.coupons import PLATFORM, CouponCampaign, CouponPlan, plan_coupons
from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.online import answer, plan_pacer
from growth.campaigns.coupons.value import (
    COUPON_PLAN,
    cross_fit,
    estimate_plan,
    plan_estimate_rows,
)
from growth.campaigns.settings import CouponSettings
from growth.services.session import Predictors, holdout_log, holdout_logs, score_coupons


def allocation_by_segment(decision: CouponDecision, plan: CouponPlan) -> pd.DataFrame:
    """Users, expected cost and incremental conversions per lifecycle segment and coupon type."""
    rows = decision.plan_frame(plan.choice)
    if rows.empty:
        return pd.DataFrame(columns=["segment", "coupon_type", "users", "cost", "conversions"])
    return (
        rows.groupby(["segment", "coupon_type"], as_index=False)
        .agg(
            users=("user_id", "size"),
            cost=("expected_cost", "sum"),
            conversions=("expected_value", "sum"),
        )
        .sort_values(["segment", "coupon_type"], ignore_index=True)
    )


def plan_for(predictors: Predictors, settings: CouponSettings) -> CouponPlan:
    """The plan of the predictors' scores under ``settings``, made as the nightly makes its
    own: each budget's buffer reads the holdout's spend bias the predictors carry."""
    return plan_coupons(score_coupons(predictors), settings, calibration=predictors.calibration)


def value_vs_budget(
    decision: CouponDecision,
    settings: CouponSettings,
    *,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5),
    calibration: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Incremental conversions and the budget's dual price at several platform budgets.

    The dual price is the marginal value of the next unit of platform budget
    (conversions per currency unit): the Lagrangian method's multiplier of the
    budget constraint at that budget (the method that certifies the bound).
    Budgets are solved in increasing order, each starting from the previous
    one's prices (a warm start); each row carries its own certificate.  ``calibration``:
    the holdout's spend bias the budget buffers read (:func:`plan_for`).
    """
    rows = []
    warm: dict[str, float] | None = None
    for frac in sorted(fractions):
        s = settings.model_copy(update={"budget": settings.budget * frac, "method": "lagrangian"})
        plan = plan_coupons(decision, s, calibration=calibration, warm_start=warm)
        a = plan.allocation
        warm = a.dual
        rows.append(
            {
                "budget": s.budget,
                "conversions": float(a.objective),
                "upper_bound": float(a.upper_bound),
                "marginal_value": float(a.dual.get(PLATFORM, math.nan)),
                "status": a.status,
            }
        )
    return pd.DataFrame(rows)


def coupon_front(decision: CouponDecision, settings: CouponSettings, n_points: int = 5):
    """The conversions-versus-GMV front under the same budgets (store-ready rows)."""
    return CouponCampaign(decision, settings).front(n_points=n_points)


def plan_estimates(predictors: Predictors, plan: CouponPlan) -> pd.DataFrame:
    """The plan's value (incremental conversions), GMV and spend per budget, each by IPS,
    SNIPS and DR with its 95 % interval, estimated off-policy on the randomised holdout
    of the exposure log (:mod:`growth.campaigns.coupons.value`); store-ready rows.

    Cross-fitted as the nightly's (:func:`~growth.campaigns.coupons.value.cross_fitted_value`):
    each fold's scores are planned under the plan's own settings and valued on that fold's
    rows; in-sample on the whole holdout when the predictors carry no folds (a run stored
    before the folds existed)."""
    if not predictors.value_folds:
        return plan_estimate_rows(estimate_plan(plan, holdout_log(predictors)), COUPON_PLAN)
    score_coupons(predictors)  # the folds' scores, once
    _, *logs = holdout_logs(predictors)
    folds = [
        (f.decision, f.calibration, log)
        for f, log in zip(predictors.value_folds, logs, strict=True)
    ]
    return plan_estimate_rows(cross_fit(plan.campaign.settings, folds), COUPON_PLAN)


def coupon_tables(
    decision: CouponDecision,
    plan: CouponPlan,
    front: pd.DataFrame | None = None,
    estimates: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Store rows of a coupon solve: the allocation (the front when traced, the plan's
    estimates when given)."""
    out = {"coupon_allocations": decision.plan_frame(plan.choice)}
    if estimates is not None:
        out["plan_estimates"] = estimates
    if front is not None:
        out["pareto_points"] = front
    return out


__all__ = [
    "allocation_by_segment",
    "answer",
    "coupon_front",
    "coupon_tables",
    "plan_coupons",
    "plan_estimates",
    "plan_for",
    "plan_pacer",
    "value_vs_budget",
]
