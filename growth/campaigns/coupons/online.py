"""Coupons on demand: each request answered at the nightly plan's prices, paced to its budgets.

The nightly plan (:func:`~growth.campaigns.coupons.plan.plan_coupons`) prices every
budget (the allocation's dual prices, by budget name) and holds each to an
*effective* budget: the posed budget less the buffer that keeps the plan's random
spend within it with probability ``spend_confidence``
(:mod:`growth.campaigns.coupons.buffer`).  During the day a request (one user) is
answered by a :class:`~optimizers.coupons.BudgetPacer` built from that plan
(:func:`plan_pacer`): the user's options are scored with their predicted value
and cost at the nightly prices; each budget's *realised* spend is paced to its
effective budget over the day (a day whose redemptions run above the forecast
raises that budget's price); and no coupon is offered that a budget it draws on
could no longer pay, so no budget is ever paid beyond its posed amount.  This is
the second line of defence behind the buffer: the buffer is sized from the
predictions, the pacer reads what is actually spent.

:func:`serve_day` replays one day of requests (every user once, in a seeded
random order, through the traffic shape's periods) against a response, the
world's truth in a simulation, and reports what each budget paid and the
incremental conversions of the coupons honoured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import CouponPlan
from growth.campaigns.coupons.playout import membership
from optimizers.coupons import BudgetPacer


def plan_pacer(
    plan: CouponPlan,
    *,
    horizon: int = 24,
    traffic_shape: Sequence[float] | None = None,
    kp: float = 0.5,
    ki: float = 0.2,
) -> BudgetPacer:
    """The day's pacer of ``plan``: its dual prices, paced to its effective budgets, capped
    at the posed budgets (every budget of the campaign, in its order)."""
    campaign = plan.campaign
    budgets = campaign.budgets
    return BudgetPacer(
        prices=[max(0.0, float(plan.allocation.dual.get(b.name, 0.0))) for b in budgets],
        member=membership(budgets, campaign.decision.value.shape[1]),
        face=campaign.decision.face_value[1:],
        targets=[min(b.amount, campaign.effective[b.name]) for b in budgets],
        caps=[b.amount for b in budgets],
        horizon=horizon,
        traffic_shape=traffic_shape,
        kp=kp,
        ki=ki,
    )


def answer(pacer: BudgetPacer, decision: CouponDecision, user: int) -> int:
    """The option (0..K-1, ``-1`` = none) offered to the request of ``user`` (its row in
    ``decision``, the predictions the plan was made from)."""
    return pacer.offer(decision.value[user], decision.cost[user])


@dataclass(frozen=True)
class ServedDay:
    """One replayed day: per budget (campaign order) its cap, target and what was paid;
    the coupons offered, the redemptions paid and refused, the honoured coupons'
    incremental conversions (at the response's expectation), prices at start and end."""

    budgets: tuple[str, ...]
    caps: np.ndarray
    targets: np.ndarray
    paid: np.ndarray
    offers: int
    redeemed: int
    refused: int
    value: float
    price_start: np.ndarray
    price_end: np.ndarray
    last_offer: float  # share of the day's requests seen when the last coupon was offered


def serve_day(
    plan: CouponPlan,
    response: CouponDecision,
    *,
    seed: int = 0,
    pace: bool = True,
    horizon: int = 24,
) -> ServedDay:
    """Replay a day of requests of every user of ``plan`` against ``response``.

    Each request is answered by :func:`answer`; an offered coupon is redeemed when the
    user's seeded uniform draw falls below ``response.redemption`` and then charged
    (:meth:`BudgetPacer.settle`).  ``pace=False`` keeps the nightly prices all day
    (the pacer's gains at 0): the caps still hold.  Deterministic given ``seed``.
    """
    decision = plan.campaign.decision
    if not np.array_equal(response.user_ids, decision.user_ids):
        raise ValueError("the response's users and the plan's users are not in the same order")
    gains = {"kp": 0.5, "ki": 0.2} if pace else {"kp": 0.0, "ki": 0.0}
    pacer = plan_pacer(plan, horizon=horizon, **gains)
    start_price = pacer.price.copy()
    rng = np.random.default_rng(seed)
    n = decision.n_users
    order, draw = rng.permutation(n), rng.random(n)
    ends = np.round(pacer.share * n).astype(int)
    value, redeemed, refused, last, start = 0.0, 0, 0, 0, 0
    for end in ends:
        for i in range(start, int(end)):
            u = int(order[i])
            k = answer(pacer, decision, u)
            if k < 0:
                continue
            last = i + 1
            used = bool(draw[u] < response.redemption[u, k + 1])
            paid = pacer.settle(k, redeemed=used)
            redeemed += int(paid)
            refused += int(used and not paid)
            if paid or not used:  # a refused redemption voids the coupon
                value += float(response.value[u, k])
        pacer.end_period()
        start = int(end)
    return ServedDay(
        budgets=tuple(b.name for b in plan.campaign.budgets),
        caps=pacer.caps.copy(),
        targets=pacer.targets.copy(),
        paid=pacer.paid.copy(),
        offers=pacer.n_offers,
        redeemed=redeemed,
        refused=refused,
        value=value,
        price_start=start_price,
        price_end=pacer.price.copy(),
        last_offer=last / max(n, 1),
    )
