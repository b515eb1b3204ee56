"""The coupon campaign: decision data, one optimizer problem per plan, and scoring against the truth.

:func:`plan_coupons` turns a :class:`CouponDecision` and the operator's
:class:`~growth.campaigns.settings.CouponSettings` into a :class:`CouponPlan`
through a :class:`CouponCampaign` (the budgets, named once, and the optimizer
problem built once); :func:`score_against_truth` scores a plan on a simulated
world beside a random and an oracle plan.
"""

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import (
    COUPON_FRONT,
    PLATFORM,
    Budget,
    CouponCampaign,
    CouponPlan,
    campaign_budgets,
    plan_coupons,
)
from growth.campaigns.coupons.truth import score_against_truth, true_coupon_decision

__all__ = [
    "COUPON_FRONT",
    "PLATFORM",
    "Budget",
    "CouponCampaign",
    "CouponDecision",
    "CouponPlan",
    "campaign_budgets",
    "plan_coupons",
    "score_against_truth",
    "true_coupon_decision",
]
