"""Coupon plans against the world's ground truth and the baselines they are compared with."""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import CouponPlan, budget_groups, solve_coupon_plan
from growth.campaigns.settings import CouponSettings


def random_plan(decision: CouponDecision, settings: CouponSettings, *, seed: int) -> np.ndarray:
    """Random targeting: users in random order get a random option while its budget lasts.

    Uses the same expected costs as the platform, so the comparison is at equal spend.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(decision.n_users)
    option = rng.integers(0, decision.value.shape[1], size=decision.n_users)[order]
    cost = decision.cost[order, option]
    choice = np.full(decision.n_users, -1)
    for idx, amount in budget_groups(decision, settings).values():
        mine = np.flatnonzero(np.isin(option, idx))  # this budget's users, in random order
        fits = np.cumsum(cost[mine]) <= amount
        choice[order[mine[fits]]] = option[mine[fits]]
    return choice


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


def score_against_truth(world, decision: CouponDecision, plan: CouponPlan, config) -> pd.DataFrame:
    """The plan, a random plan and the oracle plan, all scored by the world's true response."""
    truth = true_coupon_decision(world)
    if not np.array_equal(truth.user_ids, decision.user_ids):
        raise ValueError("the world's users and the decision's users are not in the same order")
    oracle = solve_coupon_plan(truth, config.coupons)
    rnd = random_plan(decision, config.coupons, seed=world.config.seed)
    rows = {}
    for name, choice in (("platform", plan.choice), ("random", rnd), ("oracle", oracle.choice)):
        rows[name] = truth.evaluate(choice)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "plan"
    return frame
