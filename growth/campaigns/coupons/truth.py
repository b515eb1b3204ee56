"""A coupon plan scored against the world's ground truth, beside the random and oracle plans."""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import CouponPlan, plan_coupons


def true_coupon_decision(world) -> CouponDecision:
    """The world's ground-truth response as a :class:`CouponDecision` (users-table order)."""
    truth = world.coupon_truth()
    users = world.dataset.users
    coupons = world.dataset.coupons.set_index("option_id").loc[world.option_ids]
    return CouponDecision(
        user_ids=np.asarray(truth.user_ids),
        segment=users["lifecycle"].astype(str).to_numpy(),
        option_ids=list(world.option_ids),
        option_types=coupons["type"].astype(str).tolist(),
        face_value=coupons["face_value"].to_numpy(np.float64),
        merchant_id=coupons["merchant_id"].fillna(-1).to_numpy(np.int64),
        conversion=truth.conversion,
        redemption=truth.redemption,
        gmv=truth.gmv,
    )


def score_against_truth(world, plan: CouponPlan) -> pd.DataFrame:
    """The plan, a random plan and the oracle plan, all scored by the world's true response.

    The random plan spends the same budgets at random (seeded by the world's
    seed); the oracle is planned under the same settings on the true response.
    """
    campaign = plan.campaign
    truth = true_coupon_decision(world)
    if not np.array_equal(truth.user_ids, campaign.decision.user_ids):
        raise ValueError("the world's users and the decision's users are not in the same order")
    oracle = plan_coupons(truth, campaign.settings)
    rnd = campaign.random_plan(seed=world.config.seed)
    rows = {}
    for name, choice in (("platform", plan.choice), ("random", rnd), ("oracle", oracle.choice)):
        rows[name] = truth.evaluate(choice)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "plan"
    return frame
