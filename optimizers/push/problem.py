"""Push scheduling under fatigue: the problem and its validation.

A day has ``n_hours`` hourly slots (24 by default).  Every user has a few
candidate messages; message ``m`` sent to user ``u`` at hour ``h`` is opened
with probability ``open_prob[u, m, h]``.  A schedule picks pushes
``x[u, m, h] in {0, 1}`` subject to

* ``fatigue_cap[u]``: at most ``fatigue_cap`` pushes per user per day;
* ``min_gap[u]``: two pushes to the same user are at least ``min_gap`` hours apart
  (so ``min_gap >= 1`` also means at most one push per user and hour);
* ``once[u, m]``: each candidate message is sent at most once to its user;
* ``capacity[h]``: at most ``capacity[h]`` pushes leave in hour ``h``;
* ``industry_share[k]``: pushes of industry ``k`` are at least ``s_k`` times
  all pushes (a fairness floor between advertisers).  The floor is exact: a float
  share is its exact binary value (``Fraction(0.1)`` is a hair above 1/10, so 1
  push in 10 does not meet it); pass a :class:`fractions.Fraction` for an exact
  decimal.  Every check compares integer counts with that rational exactly.

The value of a push decays with the user's fatigue: the ``j``-th push of the
day to a user (0-based, in hour order) is worth ``open_prob * decay**j``.  The
objective is the expected number of opens with that decay.

Infeasible fairness.  The empty schedule satisfies every constraint (``0 >=
s * 0``), so strictly speaking the problem always has a solution.  A share
floor that only the empty schedule can meet is, however, certainly a mistake
by the operator, so :class:`PushProblem` refuses it with
:class:`PushInfeasibleError` naming the constraints at fault: shares summing
to more than 1, or a positive share for an industry without any candidate.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from optimizers.certificate import InfeasibleError

OpenProbFn = Callable[[int], np.ndarray]


class PushInfeasibleError(InfeasibleError):
    """The constraints only admit the empty schedule; the message names them."""


class PushProblem:
    """A validated push-scheduling instance (see the module docstring for the maths).

    Parameters
    ----------
    open_prob:
        Open probability, array of shape ``(n_users, n_msgs, n_hours)`` with
        values in [0, 1], or a callable ``open_prob(hour) -> (n_users, n_msgs)``
        evaluated once per hour.
    industry:
        Industry label of each candidate, shape ``(n_users, n_msgs)``; strings or
        integer codes.
    fatigue_cap:
        Most pushes per user per day (``>= 0``).
    min_gap:
        Fewest hours between two pushes to the same user (``>= 1``).
    capacity:
        Pushes the gateway can send per hour: a scalar or an array of length
        ``n_hours``; ``>= 0``, ``np.inf`` for no limit, ``None`` for no limit at all.
        Fractional capacities are floored.
    industry_share:
        ``{industry label: minimum share in [0, 1]}`` (floats, taken at their exact
        value, or fractions).
    decay:
        Fatigue decay in (0, 1]: the ``j``-th push of a user's day is worth
        ``open_prob * decay**j``.
    candidate_mask:
        Optional boolean ``(n_users, n_msgs)``; ``False`` marks a padding slot
        for users with fewer candidates (never scheduled).
    n_hours:
        Slots per day; only used (and required) when ``open_prob`` is a callable.

    Example
    -------
    >>> import numpy as np
    >>> p = np.full((2, 2, 24), 0.1)
    >>> prob = PushProblem(p, [["a", "b"], ["a", "b"]], fatigue_cap=2, min_gap=3,
    ...                    capacity=1, industry_share={"b": 0.5}, decay=0.8)
    >>> prob.n_users, prob.n_msgs, prob.n_hours
    (2, 2, 24)
    """

    def __init__(
        self,
        open_prob: np.ndarray | OpenProbFn,
        industry: Any,
        *,
        fatigue_cap: int,
        min_gap: int = 1,
        capacity: float | np.ndarray | None = None,
        industry_share: Mapping[Any, float] | None = None,
        decay: float = 1.0,
        candidate_mask: np.ndarray | None = None,
        n_hours: int = 24,
    ) -> None:
        industry_arr = np.asarray(industry)
        if industry_arr.ndim != 2:
            raise ValueError(
                f"industry must have shape (n_users, n_msgs); got shape {industry_arr.shape}"
            )
        n_users, n_msgs = industry_arr.shape
        self.open_prob = _validate_open_prob(open_prob, n_users, n_msgs, n_hours)
        self.n_users, self.n_msgs, self.n_hours = self.open_prob.shape

        if candidate_mask is None:
            mask = np.ones((n_users, n_msgs), dtype=bool)
        else:
            mask = np.asarray(candidate_mask)
            if mask.shape != (n_users, n_msgs) or mask.dtype != bool:
                raise ValueError(
                    "candidate_mask must be a boolean array of shape "
                    f"(n_users, n_msgs) = {(n_users, n_msgs)}; got {mask.dtype} {mask.shape}"
                )
        self.candidate_mask = mask

        if isinstance(fatigue_cap, bool) or not isinstance(fatigue_cap, int | np.integer):
            raise ValueError(f"fatigue_cap must be an integer >= 0; got {fatigue_cap!r}")
        if fatigue_cap < 0:
            raise ValueError(f"fatigue_cap must be >= 0; got {fatigue_cap}")
        self.fatigue_cap = int(fatigue_cap)
        if isinstance(min_gap, bool) or not isinstance(min_gap, int | np.integer) or min_gap < 1:
            raise ValueError(f"min_gap must be an integer >= 1 (hours); got {min_gap!r}")
        self.min_gap = int(min_gap)
        if not (isinstance(decay, int | float) and 0.0 < float(decay) <= 1.0):
            raise ValueError(f"decay must be in (0, 1]; got {decay!r}")
        self.decay = float(decay)
        self.capacity = _validate_capacity(capacity, self.n_hours)

        # Industry labels -> integer codes 0..K-1 (labels sorted by np.unique).
        self.industries, codes = np.unique(industry_arr, return_inverse=True)
        self.industry_code = codes.reshape(n_users, n_msgs).astype(np.int64)
        self.share_floor = _validate_shares(
            industry_share or {}, self.industries, self.industry_code, mask
        )
        self.share = np.array([float(f) for f in self.share_floor])  # for prices only

    # ------------------------------------------------------------------ helpers
    @property
    def n_industries(self) -> int:
        """Number of distinct industry labels."""
        return len(self.industries)

    @property
    def max_pushes_per_user(self) -> int:
        """Most pushes one user can receive: cap, gap, candidates and the day all limit it."""
        by_gap = (self.n_hours - 1) // self.min_gap + 1
        return int(min(self.fatigue_cap, self.n_msgs, by_gap))

    @property
    def max_total_pushes(self) -> int:
        """Most pushes any schedule can hold (users' limits, then the hourly capacities)."""
        per_user = np.minimum(self.candidate_mask.sum(axis=1), self.max_pushes_per_user)
        total = int(per_user.sum())
        capacity = np.floor(self.capacity)
        if np.all(np.isfinite(capacity)):
            total = min(total, int(capacity.sum()))
        return total

    def floor_counts(self, total: int) -> np.ndarray:
        """Fewest pushes of each industry in a schedule of ``total`` pushes: ``ceil(s_k total)``."""
        return np.array([-((-f.numerator * int(total)) // f.denominator) for f in self.share_floor])

    def floors_met(self, counts: np.ndarray, total: int) -> bool:
        """Whether industry ``counts`` in a schedule of ``total`` pushes meet every floor (exactly)."""
        return bool(np.all(np.asarray(counts) >= self.floor_counts(total)))

    def model_floors(self) -> dict[int, Fraction]:
        """Each positive floor as the fraction with the smallest denominator the integer model
        needs: the least ``p/q >= s_k`` with ``q <=`` :attr:`max_total_pushes`.

        No fraction of a smaller denominator lies in ``[s_k, p/q)``, so for every total
        the model can reach, ``q count - p total >= 0`` admits exactly the counts that
        ``count >= s_k total`` admits: the integer model poses the same problem.
        """
        n = max(self.max_total_pushes, 1)
        return {k: ceil_fraction(f, n) for k, f in enumerate(self.share_floor) if f > 0}

    def position_values(
        self, users: np.ndarray, msgs: np.ndarray, hours: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Position (0-based push index of the user's day) and decayed value of each push."""
        users = np.asarray(users, dtype=np.int64)
        hours = np.asarray(hours, dtype=np.int64)
        msgs = np.asarray(msgs, dtype=np.int64)
        order = np.lexsort((hours, users))
        pos = np.empty(len(users), dtype=np.int64)
        if len(users):
            su = users[order]
            start = np.r_[True, su[1:] != su[:-1]]
            idx = np.arange(len(su))
            first = np.maximum.accumulate(np.where(start, idx, 0))
            pos[order] = idx - first
        value = self.open_prob[users, msgs, hours] * self.decay**pos
        return pos, value

    def objective(self, users: np.ndarray, msgs: np.ndarray, hours: np.ndarray) -> float:
        """Expected opens of a schedule, with the fatigue decay."""
        return float(self.position_values(users, msgs, hours)[1].sum())

    def share_slack(self, codes: np.ndarray) -> np.ndarray:
        """``count_k - s_k * total`` per industry for pushes of industry ``codes`` (floats: for
        prices and orderings; feasibility is :meth:`floors_met`)."""
        counts = np.bincount(codes, minlength=self.n_industries)
        return counts - self.share * len(codes)

    def violations(self, users: np.ndarray, msgs: np.ndarray, hours: np.ndarray) -> list[str]:
        """Every constraint the schedule breaks, by name; empty when feasible."""
        users = np.asarray(users, dtype=np.int64)
        msgs = np.asarray(msgs, dtype=np.int64)
        hours = np.asarray(hours, dtype=np.int64)
        out: list[str] = []
        if len(users) == 0:
            return out
        bad = (
            (users < 0)
            | (users >= self.n_users)
            | (msgs < 0)
            | (msgs >= self.n_msgs)
            | (hours < 0)
            | (hours >= self.n_hours)
        )
        if bad.any():
            return [f"index out of range at push {int(np.flatnonzero(bad)[0])}"]
        if not self.candidate_mask[users, msgs].all():
            i = int(np.flatnonzero(~self.candidate_mask[users, msgs])[0])
            out.append(f"candidate_mask: user {users[i]} message {msgs[i]} is padding")
        per_user = np.bincount(users, minlength=self.n_users)
        if per_user.max() > self.fatigue_cap:
            u = int(per_user.argmax())
            out.append(f"fatigue_cap[{u}]: {per_user[u]} pushes > {self.fatigue_cap}")
        pair = users * self.n_msgs + msgs
        uniq, cnt = np.unique(pair, return_counts=True)
        if (cnt > 1).any():
            p = int(uniq[cnt > 1][0])
            out.append(f"once[{p // self.n_msgs}, {p % self.n_msgs}]: message sent twice")
        order = np.lexsort((hours, users))
        su, sh = users[order], hours[order]
        same = su[1:] == su[:-1]
        close = same & (np.diff(sh) < self.min_gap)
        if close.any():
            i = int(np.flatnonzero(close)[0])
            out.append(
                f"min_gap[{su[i]}]: pushes at hours {sh[i]} and {sh[i + 1]} "
                f"are closer than {self.min_gap} h"
            )
        load = np.bincount(hours, minlength=self.n_hours)
        over = load > np.floor(self.capacity)
        for h in np.flatnonzero(over):
            out.append(f"capacity[{h}]: {load[h]} pushes > {self.capacity[h]:g}")
        total = len(users)
        counts = np.bincount(self.industry_code[users, msgs], minlength=self.n_industries)
        need = self.floor_counts(total)
        for k in np.flatnonzero(counts < need):
            out.append(
                f"industry_share[{self.industries[k].item()!r}]: {counts[k]} of {total} "
                f"pushes < {self.share_floor[k]} of them (needs {need[k]})"
            )
        return out


def _validate_open_prob(
    open_prob: np.ndarray | OpenProbFn, n_users: int, n_msgs: int, n_hours: int
) -> np.ndarray:
    """Materialise and check the open probabilities."""
    if callable(open_prob):
        if not isinstance(n_hours, int) or n_hours < 1:
            raise ValueError(f"n_hours must be a positive integer; got {n_hours!r}")
        cols = []
        for h in range(n_hours):
            ph = np.asarray(open_prob(h), dtype=np.float64)
            if ph.shape != (n_users, n_msgs):
                raise ValueError(
                    f"open_prob({h}) must return shape (n_users, n_msgs) = "
                    f"{(n_users, n_msgs)}; got {ph.shape}"
                )
            cols.append(ph)
        p = np.stack(cols, axis=2)
    else:
        p = np.asarray(open_prob, dtype=np.float64)
        if p.ndim != 3 or p.shape[:2] != (n_users, n_msgs):
            raise ValueError(
                "open_prob must have shape (n_users, n_msgs, n_hours) with "
                f"(n_users, n_msgs) = {(n_users, n_msgs)} from industry; got {p.shape}"
            )
        if p.shape[2] < 1:
            raise ValueError("open_prob has no hours (n_hours = 0)")
    if not np.isfinite(p).all():
        u, m, h = np.argwhere(~np.isfinite(p))[0]
        raise ValueError(f"open_prob[{u}, {m}, {h}] is not finite ({p[u, m, h]})")
    if (p < 0).any() or (p > 1).any():
        u, m, h = np.argwhere((p < 0) | (p > 1))[0]
        raise ValueError(f"open_prob[{u}, {m}, {h}] = {p[u, m, h]:g} is outside [0, 1]")
    return np.ascontiguousarray(p)


def _validate_capacity(capacity: float | np.ndarray | None, n_hours: int) -> np.ndarray:
    """Hourly capacity as a float array of length ``n_hours`` (``inf`` = unlimited)."""
    if capacity is None:
        return np.full(n_hours, np.inf)
    cap = np.asarray(capacity, dtype=np.float64)
    if cap.ndim == 0:
        cap = np.full(n_hours, float(cap))
    if cap.shape != (n_hours,):
        raise ValueError(f"capacity must be a scalar or have length {n_hours}; got {cap.shape}")
    if np.isnan(cap).any() or (cap < 0).any():
        h = int(np.flatnonzero(np.isnan(cap) | (cap < 0))[0])
        raise ValueError(f"capacity[{h}] = {cap[h]} must be >= 0 (np.inf for no limit)")
    return cap


def _validate_shares(
    industry_share: Mapping[Any, float | Fraction],
    industries: np.ndarray,
    codes: np.ndarray,
    mask: np.ndarray,
) -> tuple[Fraction, ...]:
    """Exact share floor per industry code; refuse floors only the empty schedule meets."""
    share = [Fraction(0)] * len(industries)
    lookup = {lab.item() if hasattr(lab, "item") else lab: k for k, lab in enumerate(industries)}
    has_cand = np.bincount(codes[mask], minlength=len(industries)) > 0
    for label, s in industry_share.items():
        if isinstance(s, numbers.Rational):
            exact = Fraction(s)
        elif isinstance(s, numbers.Real) and math.isfinite(float(s)):
            exact = Fraction(float(s))
        else:
            raise ValueError(f"industry_share[{label!r}] = {s!r} must be a number in [0, 1]")
        if not 0 <= exact <= 1:
            raise ValueError(f"industry_share[{label!r}] = {s} must be in [0, 1]")
        if exact == 0:
            continue
        key = label.item() if hasattr(label, "item") else label
        if key not in lookup or not has_cand[lookup[key]]:
            raise PushInfeasibleError(
                f"industry_share[{label!r}] = {float(exact):g} > 0 but no user has a candidate "
                f"of industry {label!r}: only the empty schedule meets it. Drop the "
                "floor or add candidates of that industry."
            )
        share[lookup[key]] = exact
    if sum(share) > 1:
        terms = " + ".join(
            f"industry_share[{industries[k].item()!r}]={float(share[k]):g}"
            for k in range(len(share))
            if share[k] > 0
        )
        raise PushInfeasibleError(
            f"{terms} = {float(sum(share)):g} > 1: together these floors exceed all pushes, so "
            "only the empty schedule meets them. Lower the shares so they sum to <= 1."
        )
    return tuple(share)


def ceil_fraction(x: Fraction, max_denominator: int) -> Fraction:
    """The least fraction ``>= x`` whose denominator is at most ``max_denominator``.

    The two candidates of the continued-fraction walk (as in
    :meth:`fractions.Fraction.limit_denominator`) are ``x``'s neighbours among such
    fractions, one on each side.

    >>> ceil_fraction(Fraction(0.1), 1000)  # the float 0.1 is a hair above 1/10
    Fraction(100, 999)
    >>> ceil_fraction(Fraction(1, 3), 10)
    Fraction(1, 3)
    """
    if max_denominator < 1:
        raise ValueError(f"max_denominator must be >= 1, got {max_denominator}")
    if x.denominator <= max_denominator:
        return x
    p0, q0, p1, q1 = 0, 1, 1, 0
    n, d = x.numerator, x.denominator
    while True:
        a = n // d
        q2 = q0 + a * q1
        if q2 > max_denominator:
            break
        p0, q0, p1, q1 = p1, q1, p0 + a * p1, q2
        n, d = d, n - a * d
    k = (max_denominator - q0) // q1
    sides = (Fraction(p0 + k * p1, q0 + k * q1), Fraction(p1, q1))
    return min(side for side in sides if side >= x)
