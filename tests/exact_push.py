"""Exact reference for push scheduling, independent of ``optimizers/``.

The maths, from the problem statement.  Users ``u``, candidate messages ``m``
(``mask[u, m]``), hours ``h = 0..H-1``.  A time-indexed, position-indexed MIP:
``z[u, m, h, j] = 1`` when message ``m`` goes to user ``u`` at hour ``h`` as the
``j``-th push (0-based) of the user's day, ``j < J = min(cap, M, (H - 1) // gap + 1)``::

    maximise    sum p[u, m, h] decay**j z[u, m, h, j]
    subject to  sum_{m, h} z[u, m, h, j] <= 1                      position j used once
                sum_{h, j} z[u, m, h, j] <= 1                      once[u, m]
                sum_{m, h' <= h} z[u, m, h', j]
                  <= sum_{m, h' <= h - gap} z[u, m, h', j - 1]     order[u, j, h] (j >= 1)
                sum_{u, m, j} z[u, m, h, j] <= capacity[h]         capacity[h]
                count_k - s_k * total >= 0                         industry_share[k]

``order`` makes the ``j``-th push come at least ``gap`` hours after the
``(j-1)``-th, so positions follow the hours and the decay is that of the push's
rank in the day; with ``j < cap`` no user gets more than ``fatigue_cap``.  It
shares nothing with the product's path model.  :func:`violations` checks a
schedule in exact arithmetic (``count_k >= Fraction(s_k) * total``, never
``- tolerance``); :func:`reference_optimum` returns an exactly feasible optimum
(HiGHS, :mod:`exact_mip`); :func:`brute_force` enumerates tiny instances.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from exact_mip import BinaryMip, Row, Verified, exact, tighten, verified_optimum


@dataclass
class PushInstance:
    """The arguments of ``optimizers.push.PushProblem``."""

    open_prob: np.ndarray  # (U, M, H) in [0, 1]
    industry: np.ndarray  # (U, M) labels
    fatigue_cap: int
    min_gap: int = 1
    capacity: float | np.ndarray | None = None
    industry_share: dict[str, float] | None = None
    decay: float = 1.0
    candidate_mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        u, m, h = self.open_prob.shape
        return int(u), int(m), int(h)

    def mask(self) -> np.ndarray:
        u, m, _ = self.shape
        return np.ones((u, m), bool) if self.candidate_mask is None else self.candidate_mask

    def cap(self) -> np.ndarray:
        """Capacity per hour (``inf`` for none)."""
        h = self.shape[2]
        if self.capacity is None:
            return np.full(h, math.inf)
        return np.broadcast_to(np.asarray(self.capacity, dtype=float), (h,)).copy()

    def kwargs(self) -> dict[str, object]:
        """Keyword arguments of ``PushProblem`` besides ``open_prob`` and ``industry``."""
        out: dict[str, object] = {
            "fatigue_cap": self.fatigue_cap,
            "min_gap": self.min_gap,
            "capacity": self.capacity,
            "industry_share": self.industry_share,
            "decay": self.decay,
        }
        if self.candidate_mask is not None:
            out["candidate_mask"] = self.candidate_mask
        return out

    def __repr__(self) -> str:
        """Pasteable, with exact float reprs."""
        cap = self.capacity.tolist() if isinstance(self.capacity, np.ndarray) else self.capacity
        mask = None if self.candidate_mask is None else self.candidate_mask.tolist()
        return (
            f"PushInstance(open_prob=np.array({self.open_prob.tolist()!r}), "
            f"industry=np.array({self.industry.tolist()!r}), fatigue_cap={self.fatigue_cap}, "
            f"min_gap={self.min_gap}, capacity={cap!r}, industry_share={self.industry_share!r}, "
            f"decay={self.decay!r}, candidate_mask={mask!r})"
        )


def positions(users: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Rank (0-based) of each push in its user's day, by hour."""
    pos = np.zeros(len(users), dtype=np.int64)
    for i in range(len(users)):
        pos[i] = int(np.sum((users == users[i]) & (hours < hours[i])))
    return pos


def objective(inst: PushInstance, users, msgs, hours) -> Fraction:
    """Exact ``sum p[u, m, h] decay**rank``."""
    users, msgs, hours = (np.asarray(a, dtype=np.int64) for a in (users, msgs, hours))
    d = exact(inst.decay)
    pos = positions(users, hours)
    return sum(
        (
            exact(inst.open_prob[u, m, h]) * d ** int(j)
            for u, m, h, j in zip(users, msgs, hours, pos, strict=True)
        ),
        Fraction(0),
    )


def violations(inst: PushInstance, users, msgs, hours) -> dict[str, Fraction]:
    """Constraint -> exact excess for every constraint the schedule breaks."""
    users, msgs, hours = (np.asarray(a, dtype=np.int64) for a in (users, msgs, hours))
    n_u, n_m, n_h = inst.shape
    out: dict[str, Fraction] = {}
    if len(users) == 0:
        return out
    if users.min() < 0 or users.max() >= n_u or msgs.min() < 0 or msgs.max() >= n_m:
        return {"index": Fraction(1)}
    if hours.min() < 0 or hours.max() >= n_h:
        return {"index": Fraction(1)}
    mask = inst.mask()
    for u, m in zip(users, msgs, strict=True):
        if not mask[u, m]:
            out[f"candidate_mask[{u}, {m}]"] = Fraction(1)
    for u in np.unique(users):
        mine = users == u
        if mine.sum() > inst.fatigue_cap:
            out[f"fatigue_cap[{u}]"] = Fraction(int(mine.sum()) - inst.fatigue_cap)
        ms = msgs[mine]
        if len(np.unique(ms)) < len(ms):
            out[f"once[{u}]"] = Fraction(1)
        hs = np.sort(hours[mine])
        if len(hs) > 1 and np.diff(hs).min() < inst.min_gap:
            out[f"min_gap[{u}]"] = Fraction(int(inst.min_gap - np.diff(hs).min()))
    load = np.bincount(hours, minlength=n_h)
    for h, c in enumerate(inst.cap()):
        if math.isfinite(c) and Fraction(int(load[h])) > exact(c):
            out[f"capacity[{h}]"] = Fraction(int(load[h])) - exact(c)
    total = len(users)
    labels = inst.industry[users, msgs]
    for k, s in (inst.industry_share or {}).items():
        need = exact(s) * total
        have = int(np.sum(labels == k))
        if have < need:
            out[f"industry_share[{k}]"] = need - have
    return out


def _columns(inst: PushInstance) -> list[tuple[int, int, int, int]]:
    """Variables z[u, m, h, j]: candidate (u, m), every hour, positions j < J."""
    n_u, n_m, n_h = inst.shape
    n_pos = min(inst.fatigue_cap, n_m, (n_h - 1) // inst.min_gap + 1)
    mask = inst.mask()
    return [
        (u, m, h, j)
        for u in range(n_u)
        for m in range(n_m)
        if mask[u, m]
        for h in range(n_h)
        for j in range(n_pos)
    ]


def _mip(inst: PushInstance, cols, margins: dict[str, float], count: bool) -> BinaryMip:
    """Data -> variables (``cols``) -> rows -> objective (opens, or pushes when ``count``)."""
    u_, m_, h_, j_ = (np.array([c[i] for c in cols], dtype=np.int64) for i in range(4))
    idx = np.arange(len(cols))
    rows: list[Row] = []

    def add(name: str, sel: np.ndarray, coef: np.ndarray | None = None, **side: float) -> None:
        if sel.any():
            rows.append(
                Row(name, idx[sel], np.ones(int(sel.sum())) if coef is None else coef[sel], **side)
            )

    for u in np.unique(u_):
        for j in np.unique(j_):
            add(f"position[{u},{j}]", (u_ == u) & (j_ == j), upper=1.0)
            if j == 0:
                continue
            for h in range(inst.shape[2]):
                later = (u_ == u) & (j_ == j) & (h_ <= h)
                earlier = (u_ == u) & (j_ == j - 1) & (h_ <= h - inst.min_gap)
                add(f"order[{u},{j},{h}]", later | earlier, np.where(later, 1.0, -1.0), upper=0.0)
        for m in np.unique(m_[u_ == u]):
            add(f"once[{u},{m}]", (u_ == u) & (m_ == m), upper=1.0)
    for h, c in enumerate(inst.cap()):
        if math.isfinite(c):
            add(f"capacity[{h}]", h_ == h, upper=float(math.floor(c)))
    labels = inst.industry[u_, m_] if len(cols) else np.array([])
    for k, s in (inst.industry_share or {}).items():
        name = f"industry_share[{k}]"
        coef = np.where(labels == k, 1.0 - s, -s)
        lower = tighten(0.0, margins.get(name, 0.0), upper=False)
        add(name, coef != 0, coef, lower=lower)
    if count:
        obj = np.ones(len(cols))
    else:
        obj = inst.open_prob[u_, m_, h_] * inst.decay ** j_.astype(float)
    return BinaryMip(objective=obj, rows=rows)


def reference_optimum(inst: PushInstance, *, count: bool = False) -> tuple[Verified, tuple | None]:
    """HiGHS's optimum, checked exactly; (answer, (users, msgs, hours) or None).

    ``count=True`` maximises the number of pushes instead of the opens (is any
    non-empty schedule feasible?).
    """
    cols = _columns(inst)
    if not cols:
        empty = (np.zeros(0, np.int64),) * 3
        return Verified("optimal", np.zeros(0, np.int64), Fraction(0), 0.0), empty

    def plan(x: np.ndarray) -> tuple:
        on = [cols[i] for i in np.flatnonzero(x)]
        return tuple(np.array([c[i] for c in on], dtype=np.int64) for i in range(3))

    def value(x: np.ndarray) -> Fraction:
        return Fraction(int(x.sum())) if count else objective(inst, *plan(x))

    ans = verified_optimum(
        lambda margins: _mip(inst, cols, margins, count),
        lambda x: {k: float(v) for k, v in violations(inst, *plan(x)).items()},
        value,
    )
    return ans, None if ans.x is None else plan(ans.x)


def _user_days(inst: PushInstance, u: int) -> list[list[tuple[int, int]]]:
    """Every (message, hour) sequence one user may get: cap, gap, once and mask."""
    _, n_m, n_h = inst.shape
    mask = inst.mask()
    out: list[list[tuple[int, int]]] = [[]]
    for r in range(1, inst.fatigue_cap + 1):
        for hours in itertools.combinations(range(n_h), r):
            if any(b - a < inst.min_gap for a, b in itertools.pairwise(hours)):
                continue
            for msgs in itertools.permutations(range(n_m), r):
                if all(mask[u, m] for m in msgs):
                    out.append(list(zip(msgs, hours, strict=True)))
    return out


def brute_force(inst: PushInstance) -> Fraction:
    """The exact optimum of a tiny instance by enumerating every schedule."""
    days = [_user_days(inst, u) for u in range(inst.shape[0])]
    best = Fraction(0)
    for combo in itertools.product(*days):
        users = np.array([u for u, day in enumerate(combo) for _ in day], dtype=np.int64)
        msgs = np.array([m for day in combo for m, _ in day], dtype=np.int64)
        hours = np.array([h for day in combo for _, h in day], dtype=np.int64)
        if not violations(inst, users, msgs, hours):
            best = max(best, objective(inst, users, msgs, hours))
    return best
