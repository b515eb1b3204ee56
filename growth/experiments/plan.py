"""Who gets which arm under a total budget and per-arm budgets, and the baselines.

The plan is the coupon optimizer's multiple-choice knapsack
(:func:`optimizers.coupons.allocate`): each non-control arm is an option, its value
the predicted uplift ``mu[u, k] - mu[u, 0]`` and its expected cost
``p(conversion | u, k) * cost_per_conversion[k] + cost_per_treatment[k]``; the
total budget is the constraint ``budget`` and an arm's own budget the group
``arm[<arm id>]``.  The plan comes with the optimizer's certificate (objective,
valid upper bound, gap) against that posed problem.

The baselines spend the same budgets on the same predicted costs: random targeting
(users in a seeded random order, each offered a uniformly drawn arm, given it while
every budget it draws on can pay) and one arm for everyone (the same, always that arm).
Plans are arrays of arm indices per user, 0 = the control.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimizers.coupons import CouponAllocation, allocate


def expected_cost(
    conversion_prob: np.ndarray, cost_per_conversion: np.ndarray, cost_per_treatment: np.ndarray
) -> np.ndarray:
    """(n, K) expected cost of each arm per user (the control's column is 0)."""
    cost = conversion_prob * cost_per_conversion[None, :] + cost_per_treatment[None, :]
    cost[:, 0] = 0.0
    return np.maximum(cost, 0.0)


def arm_groups(arm_ids: Sequence[str], arm_budget: np.ndarray, scale: float = 1.0) -> dict:
    """Budget groups of the arms with their own (finite) budget, scaled by ``scale``."""
    return {
        f"arm[{arm_ids[k]}]": ([k - 1], float(arm_budget[k]) * scale)
        for k in range(1, len(arm_ids))
        if np.isfinite(arm_budget[k])
    }


def plan_arms(
    mu: np.ndarray,
    cost: np.ndarray,
    budget: float,
    arm_ids: Sequence[str],
    arm_budget: np.ndarray,
    *,
    scale: float = 1.0,
    method: str = "auto",
) -> tuple[np.ndarray, CouponAllocation]:
    """The certified plan: (arm per user, the allocation with its certificate).

    ``mu``: (n, K) predicted outcome per arm (control first); ``cost``: (n, K); the
    total and per-arm budgets are multiplied by ``scale`` (a plan for a share of users).
    """
    value = mu[:, 1:] - mu[:, :1]
    groups = arm_groups(arm_ids, arm_budget, scale)
    result = allocate(
        value,
        cost[:, 1:],
        budget * scale,
        budget_name="budget",
        budget_groups=groups or None,
        method=method,
    )
    return result.choice + 1, result


def fill_in_order(
    arms: np.ndarray, cost: np.ndarray, budget: float, arm_budget: np.ndarray, scale: float = 1.0
) -> np.ndarray:
    """Give user ``u`` arm ``arms[u]`` in row order while the total and its arm's budget can pay."""
    left_total = budget * scale
    left_arm = arm_budget * scale
    out = np.zeros(arms.shape[0], dtype=np.int64)
    price = cost[np.arange(arms.shape[0]), arms]
    for u in range(arms.shape[0]):
        k, c = arms[u], price[u]
        if k > 0 and c <= left_total and c <= left_arm[k]:
            out[u] = k
            left_total -= c
            left_arm[k] -= c
    return out


def random_targeting(
    cost: np.ndarray, budget: float, arm_budget: np.ndarray, *, scale: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Users in a random order, each offered a uniformly drawn non-control arm, until budgets run out."""
    rng = np.random.default_rng(seed)
    n, k = cost.shape
    order = rng.permutation(n)
    arms = rng.integers(1, k, size=n)
    out = np.zeros(n, dtype=np.int64)
    out[order] = fill_in_order(arms, cost[order], budget, arm_budget, scale)
    return out


def single_arm(
    arm: int,
    cost: np.ndarray,
    budget: float,
    arm_budget: np.ndarray,
    *,
    scale: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Arm ``arm`` for users in a random order until its budgets run out (everyone if they allow)."""
    n = cost.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    out = np.zeros(n, dtype=np.int64)
    out[order] = fill_in_order(np.full(n, arm), cost[order], budget, arm_budget, scale)
    return out
