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
  all pushes (a fairness floor between advertisers).

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

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from optimizers.certificate import InfeasibleError

OpenProbFn = Callable[[int], np.ndarray]

SHARE_TOL = 1e-9  # slack when checking ``count_k >= s_k * total`` in floating point


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
        ``{industry label: minimum share in [0, 1]}``.
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
        self.share = _validate_shares(
            industry_share or {}, self.industries, self.industry_code, mask
        )

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

    def share_fractions(self, max_denominator: int = 10_000) -> dict[int, Fraction]:
        """Share floors as rationals ``>=`` the float shares (for integer models)."""
        out: dict[int, Fraction] = {}
        for k, s in enumerate(self.share):
            if s <= 0:
                continue
            r = Fraction(float(s)).limit_denominator(max_denominator)
            if float(r) < s - SHARE_TOL:
                r = Fraction(int(np.ceil(s * max_denominator)), max_denominator)
            out[k] = r
        return out

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
        """``count_k - s_k * total`` per industry for pushes of industry ``codes`` (< 0: floor broken)."""
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
        for k, s in enumerate(self.share):
            if s > 0 and counts[k] < s * total - SHARE_TOL:
                out.append(
                    f"industry_share[{self.industries[k].item()!r}]: {counts[k]} of {total} "
                    f"pushes < {s:g} share"
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
    industry_share: Mapping[Any, float],
    industries: np.ndarray,
    codes: np.ndarray,
    mask: np.ndarray,
) -> np.ndarray:
    """Share floor per industry code; refuse floors only the empty schedule meets."""
    share = np.zeros(len(industries))
    lookup = {lab.item() if hasattr(lab, "item") else lab: k for k, lab in enumerate(industries)}
    has_cand = np.bincount(codes[mask], minlength=len(industries)) > 0
    for label, s in industry_share.items():
        s_val = float(s)
        if not 0.0 <= s_val <= 1.0:
            raise ValueError(f"industry_share[{label!r}] = {s} must be in [0, 1]")
        if s_val == 0:
            continue
        key = label.item() if hasattr(label, "item") else label
        if key not in lookup or not has_cand[lookup[key]]:
            raise PushInfeasibleError(
                f"industry_share[{label!r}] = {s_val:g} > 0 but no user has a candidate "
                f"of industry {label!r}: only the empty schedule meets it. Drop the "
                "floor or add candidates of that industry."
            )
        share[lookup[key]] = s_val
    if share.sum() > 1.0 + SHARE_TOL:
        terms = " + ".join(
            f"industry_share[{industries[k].item()!r}]={share[k]:g}" for k in np.flatnonzero(share)
        )
        raise PushInfeasibleError(
            f"{terms} = {share.sum():g} > 1: together these floors exceed all pushes, so "
            "only the empty schedule meets them. Lower the shares so they sum to <= 1."
        )
    return share
