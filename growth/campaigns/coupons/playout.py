"""A coupon plan played out against its budgets: coupons are honoured until a budget runs out.

A plan hands out coupons; the world decides who redeems them.  Played out, the
coupon holders arrive in a random order; each redemption is a Bernoulli event
(probability ``redemption[u, k]``) that charges the option's face value to every
budget the option draws on: its payer (``platform`` or ``merchant_<id>``) and any
``type[<type>]`` cap.  A coupon is honoured when its holder arrives while every
one of those budgets can still pay its face value; otherwise it is void (the
holder behaves as without a coupon) and, if the holder would have redeemed it,
that redemption is lost.  A refused redemption leaves the room to later, smaller
ones (first fit).

Value counts the incremental conversions of honoured coupons only, each at its
expectation ``conversion[u, k] - conversion[u, none]``: whether a holder's coupon
is honoured depends only on earlier arrivals' redemptions, so this is an
unbiased value of the play-out.  Spend is per budget group, never summed across
groups; ``demand`` is what the same redemptions would have cost had every one
been paid (the spend a plan promises the finance team).

Every plan scored together reads the same :class:`Arrivals` (common random
numbers: one arrival order and one redemption draw per user and seed), so the
differences between plans are not sampling noise of the draws.

>>> import numpy as np
>>> member = np.array([[True, False], [True, True], [True, False]])  # (items, groups)
>>> first_fit(np.array([6.0, 5.0, 3.0]), member, np.array([10.0, 4.0]))
array([ True, False,  True])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import Budget

_TOL = 1e-9  # currency units: a budget filled exactly still holds
_PER_SEED = ("value", "gmv", "redeemed", "lost", "paid", "demand", "value_by_segment")


def first_fit(cost: np.ndarray, member: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Which items, taken in order, are paid: each while every group it draws on has room.

    Args:
        cost: (m,) what each item charges (currency units, >= 0).
        member: (m, G) bool, the groups each item charges (all of them, in full).
        room: (G,) what each group can pay.

    Returns:
        (m,) bool, paid.  An item that does not fit is refused and charges nothing,
        so a later, smaller item may still be paid.  Vectorised by rounds: items
        that can no longer fit are dropped, the prefix that fits is accepted with
        one cumulative sum, the first item past it is refused.
    """
    cost = np.asarray(cost, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    room = np.array(room, dtype=np.float64)
    paid = np.zeros(cost.shape[0], dtype=bool)
    live = np.arange(cost.shape[0])
    while live.size:
        charge = member[live] * cost[live, None]  # (m', G)
        fits = ~(charge > room + _TOL).any(axis=1)  # (m',) could still be paid alone
        live, charge = live[fits], charge[fits]
        if not live.size:
            break
        spent = np.cumsum(charge, axis=0)  # (m', G)
        over = (spent > room + _TOL).any(axis=1)
        stop = int(np.argmax(over)) if over.any() else live.size
        paid[live[:stop]] = True
        if stop:
            room -= spent[stop - 1]
        live = live[stop + 1 :]  # the item at ``stop`` overflows after the prefix: refused
    return paid


def membership(budgets: Sequence[Budget], n_options: int) -> np.ndarray:
    """(K, G) bool: option ``k`` (0..K-1) charges budget ``g`` (in ``budgets`` order)."""
    member = np.zeros((n_options, len(budgets)), dtype=bool)
    for g, b in enumerate(budgets):
        member[b.options, g] = True
    return member


@dataclass(frozen=True)
class Arrivals:
    """Per seed, each user's arrival rank and the uniform draw that decides redemption.

    ``rank`` and ``draw`` are (S, n): user ``u`` arrives ``rank[s, u]``-th in
    play-out ``s`` and redeems option ``k`` when ``draw[s, u] < redemption[u, k]``.
    """

    seeds: tuple[int, ...]
    rank: np.ndarray  # (S, n) int
    draw: np.ndarray  # (S, n) float in [0, 1)

    @classmethod
    def sample(cls, n_users: int, seeds: Sequence[int]) -> Arrivals:
        """Deterministic given ``seeds``: play-out ``s`` uses ``np.random.default_rng(seeds[s])``."""
        rank = np.empty((len(seeds), n_users), dtype=np.int64)
        draw = np.empty((len(seeds), n_users))
        for i, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            rank[i] = rng.permutation(n_users)
            draw[i] = rng.random(n_users)
        return cls(tuple(int(s) for s in seeds), rank, draw)


@dataclass(frozen=True)
class PlayOut:
    """A plan played out once per seed; arrays have one row per seed.

    ``value`` / ``gmv``: incremental conversions / GMV of honoured coupons;
    ``paid`` / ``demand``: (S, G) spend per budget group, paid and as if every
    redemption were paid; ``redeemed`` / ``lost``: redemptions paid and lost;
    ``value_by_segment``: (S, segments) incremental conversions per lifecycle
    segment (``segments`` names its columns).
    """

    budgets: tuple[Budget, ...]
    segments: tuple[str, ...]
    value: np.ndarray  # (S,)
    gmv: np.ndarray  # (S,)
    redeemed: np.ndarray  # (S,)
    lost: np.ndarray  # (S,)
    paid: np.ndarray  # (S, G)
    demand: np.ndarray  # (S, G)
    value_by_segment: np.ndarray  # (S, segments)


def play_out(
    truth: CouponDecision,
    choice: np.ndarray,
    budgets: Sequence[Budget],
    arrivals: Arrivals,
) -> PlayOut:
    """Play ``choice`` (-1 = no coupon) out on ``truth`` under ``budgets``, once per seed.

    See the module docstring for the rules.  ``truth`` is the world's response
    (:func:`~growth.campaigns.coupons.truth.true_coupon_decision`); ``budgets`` are
    the campaign's (:func:`~growth.campaigns.coupons.plan.campaign_budgets`).
    """
    choice = np.asarray(choice)
    holders = np.flatnonzero(choice >= 0)
    option = choice[holders]
    member = membership(budgets, truth.value.shape[1])[option]  # (h, G)
    face = truth.face_value[1:][option]
    p_redeem = truth.redemption[holders, option + 1]
    uplift = truth.value[holders, option]
    uplift_gmv = truth.gmv_value[holders, option]
    room = np.array([b.amount for b in budgets])
    segments = tuple(sorted(set(truth.segment.tolist())))
    seg_index = np.searchsorted(segments, truth.segment[holders])
    rows: dict[str, list] = {k: [] for k in _PER_SEED}
    for rank, draw in zip(arrivals.rank, arrivals.draw, strict=True):
        order = np.argsort(rank[holders], kind="stable")  # holders in arrival order
        redeem = draw[holders[order]] < p_redeem[order]
        m, f = member[order], face[order]
        paid = np.zeros(len(order), dtype=bool)
        paid[redeem] = first_fit(f[redeem], m[redeem], room)
        charge = m * (f * paid)[:, None]  # (h, G)
        before = np.cumsum(charge, axis=0) - charge  # spent when each holder arrives
        honoured = ~(m & (f[:, None] > room - before + _TOL)).any(axis=1)
        honoured[redeem] = paid[redeem]
        kept = np.zeros(len(holders), dtype=bool)
        kept[order] = honoured
        rows["value"].append(uplift[kept].sum())
        rows["gmv"].append(uplift_gmv[kept].sum())
        rows["redeemed"].append(paid.sum())
        rows["lost"].append((redeem & ~paid).sum())
        rows["paid"].append(charge.sum(axis=0))
        rows["demand"].append((m * (f * redeem)[:, None]).sum(axis=0))
        by_seg = np.bincount(seg_index[kept], uplift[kept], minlength=len(segments))
        rows["value_by_segment"].append(by_seg)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}
    return PlayOut(budgets=tuple(budgets), segments=segments, **arrays)
