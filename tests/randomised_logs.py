"""Constructed randomised holdout logs for the tests of plan values and effect slopes.

A test states who saw which option and who converted, and what a model predicted; the rest
of a :class:`~growth.campaigns.coupons.value.HoldoutLog` follows one convention: an order is
worth 1 and redeems 1 (``gmv`` and ``cost`` are the conversions), the options are drawn
uniformly, and each segment's population is its users in the log.
"""

from __future__ import annotations

import numpy as np

from growth.campaigns.coupons.value import HoldoutLog


def randomised_log(
    user: np.ndarray,
    segment: np.ndarray,
    arm: np.ndarray,
    converted: np.ndarray,
    p: np.ndarray,
    option_ids: list[str],
    *,
    p_cost: np.ndarray | None = None,
    population: dict[str, int] | None = None,
) -> HoldoutLog:
    """The log of rows ``(user, segment, arm, converted)`` and the model's per-option
    conversion ``p`` (rows x options), which also stands for its order value and, unless
    ``p_cost`` is given, its redemptions; ``population``: each segment's users in the log."""
    if population is None:
        first = np.unique(user, return_index=True)[1]
        names, counts = np.unique(np.asarray(segment)[first], return_counts=True)
        population = {str(s): int(c) for s, c in zip(names, counts, strict=True)}
    y = np.asarray(converted, dtype=np.float64)
    return HoldoutLog(
        user_pos=user,
        segment=segment,
        arm=arm,
        propensity=np.full(len(user), 1 / len(option_ids)),
        converted=y,
        gmv=y,
        cost=y,
        p=p,
        p_gmv=p,
        p_cost=p if p_cost is None else p_cost,
        option_ids=option_ids,
        population=population,
    )
