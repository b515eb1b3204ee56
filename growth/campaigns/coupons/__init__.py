"""The coupon campaign: decision data, one optimizer problem per plan, and scoring against the truth.

:func:`plan_coupons` turns a :class:`CouponDecision` and the operator's
:class:`~growth.campaigns.settings.CouponSettings` into a :class:`CouponPlan`
through a :class:`CouponCampaign` (the budgets, named once, and the optimizer
problem built once); :func:`score_against_truth` plays a plan out on a simulated
world's truth under its budgets (:func:`play_out`) beside random targeting, the
best single option for everyone and the oracle, all held to the same budgets.
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
from growth.campaigns.coupons.playout import Arrivals, PlayOut, play_out
from growth.campaigns.coupons.truth import (
    CouponTruthScore,
    score_against_truth,
    true_coupon_decision,
)

__all__ = [
    "COUPON_FRONT",
    "PLATFORM",
    "Arrivals",
    "Budget",
    "CouponCampaign",
    "CouponDecision",
    "CouponPlan",
    "CouponTruthScore",
    "PlayOut",
    "campaign_budgets",
    "plan_coupons",
    "play_out",
    "score_against_truth",
    "true_coupon_decision",
]
