"""Plans an operator could make without a model, held to the plan's budgets and floors.

Both baselines hand out coupons to users in a seeded random order, users needed
for a coverage floor (``min_coverage``) first, while every budget the coupon
draws on (payer and type cap) has room for its expected cost, first fit.  Sized
on the world's true expected costs, they fill the budgets they are given (the
truth stage gives them the oracle's effective budgets);
scored by :func:`~growth.campaigns.coupons.playout.play_out`, they are honoured
by the same rules.

- :func:`random_targeting`: each user a uniformly random option;
- :func:`single_option`: every user the same option (the truth stage reports the
  option that plays out best, "everyone gets the best single option").

>>> import numpy as np
>>> floor_first(np.array([0, 2, 3, 1]), np.array(["a", "b", "a", "b"]), {"b": 0.5})
array([3, 0, 2, 1])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import Budget
from growth.campaigns.coupons.playout import first_fit, membership


def floor_first(
    order: np.ndarray, segment: np.ndarray, min_coverage: Mapping[str, float]
) -> np.ndarray:
    """``order`` (user indices) with, first, the ``ceil(share x size)`` earliest users of each
    floored segment, then the rest, each part in its original order."""
    order = np.asarray(order)
    first = np.zeros(len(order), dtype=bool)
    seg = np.asarray(segment)[order]
    for name, share in min_coverage.items():
        mine = np.flatnonzero(seg == name)
        first[mine[: math.ceil(share * len(mine))]] = True
    return np.concatenate([order[first], order[~first]])


def fill(
    truth: CouponDecision,
    budgets: Sequence[Budget],
    min_coverage: Mapping[str, float],
    order: np.ndarray,
    option: np.ndarray,
) -> np.ndarray:
    """The plan (-1 = none) giving user ``u`` option ``option[u]`` (0..K-1), users in
    ``order`` (floors first), while every budget it draws on has room for its true expected cost."""
    order = floor_first(order, truth.segment, min_coverage)
    k = np.asarray(option)[order]
    member = membership(budgets, truth.value.shape[1])[k]
    take = first_fit(truth.cost[order, k], member, np.array([b.amount for b in budgets]))
    choice = np.full(truth.n_users, -1, dtype=np.int64)
    choice[order[take]] = k[take]
    return choice


def random_targeting(
    truth: CouponDecision,
    budgets: Sequence[Budget],
    min_coverage: Mapping[str, float],
    *,
    seed: int,
) -> np.ndarray:
    """Random users get a random option each while the budgets last (see the module)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(truth.n_users)
    option = rng.integers(0, truth.value.shape[1], size=truth.n_users)
    return fill(truth, budgets, min_coverage, order, option)


def single_option(
    truth: CouponDecision,
    budgets: Sequence[Budget],
    min_coverage: Mapping[str, float],
    option: int,
    *,
    seed: int,
) -> np.ndarray:
    """Random users all get option ``option`` (0..K-1) while its budgets last (see the module)."""
    order = np.random.default_rng(seed).permutation(truth.n_users)
    return fill(truth, budgets, min_coverage, order, np.full(truth.n_users, option))
