"""Greedy repair and fill moves that keep every constraint of a coupon problem, exactly.

A *move* changes one user's choice ``cur -> t`` (``t`` may be "no coupon").  Both
heuristics score every user's best move at once on (m, K+1) matrices (column ``K``
is "no coupon") and apply a whole sorted prefix of moves per round, cut where the
cumulative use of a protected constraint would pass its slack.

Floating point only chooses the moves.  Whether a batch of moves may be applied is
decided by a :class:`Ledger`, which holds every constraint's usage as an exact
rational number and adds a batch's change exactly: a batch that would take a
protected constraint past its limit (by any amount, no tolerance) is halved until
it fits, and a single move that does not fit is dropped.  So a plan that leaves
:func:`repair` or :func:`fill` satisfies every constraint in exact arithmetic.

* :func:`repair` makes a plan feasible: first the coverage floors (adding the
  coupons with the best price-adjusted value), then each broken budget / ROI floor
  by dropping or downgrading the picks that lose the least objective per unit of
  the broken constraint they free, never pushing another constraint past its
  limit nor undoing coverage.
* :func:`fill` then spends leftover slack: upgrades or new picks with the best
  objective gain per (slack-weighted) unit of resource, until no move fits (each
  round takes the fitting prefix of the sorted moves, then first-fit over the
  next few thousand, so a round spends most of the slack).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from optimizers.coupons.exact import round_down, round_up
from optimizers.coupons.problem import CouponProblem

_COVERAGE_FIRST = {"coverage": 0, "roi": 1, "budget": 2, "group": 2}
_FIRST_FIT = 4096
"""Moves past the fitting prefix that one :func:`fill` round still tries one by one."""


class MoveTable:
    """Objective and constraint coefficients with an explicit "no coupon" column ``K``."""

    def __init__(self, problem: CouponProblem) -> None:
        self.problem = problem
        self.k = problem.n_options
        self.obj = problem.objective_matrix  # (n, K)
        self.cons = problem.constraints
        self.kinds = [c.kind for c in self.cons]
        self.names = [c.name for c in self.cons]
        self.rhs = np.array([c.rhs for c in self.cons], dtype=np.float64)
        scale = float(np.abs(self.obj).max()) if self.obj.size else 1.0
        self.obj_eps = 1e-12 * max(scale, 1e-300)

    def index(self, choice: np.ndarray) -> np.ndarray:
        """Choice (-1..K-1) -> column index (0..K)."""
        return np.where(choice < 0, self.k, choice)

    def objective(self, users: np.ndarray) -> np.ndarray:
        """(m, K+1) objective of every option of ``users``; "no coupon" is 0."""
        return np.concatenate([self.obj[users], np.zeros((users.size, 1))], axis=1)

    def coef(self, j: int, users: np.ndarray) -> np.ndarray:
        """(m, K+1) coefficients of constraint ``j`` for ``users``; "no coupon" is 0."""
        c = self.cons[j]
        out = np.zeros((users.size, self.k + 1))
        out[:, : self.k] = self.problem.cost[users] * c.cost_weight[None, :]
        if c.value_weight:
            out[:, : self.k] += c.value_weight * self.problem.value[users]
        if c.user_weight is not None:
            out[:, : self.k] += c.user_weight[users][:, None]
        return out

    def coef_at(self, j: int, users: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(m,) coefficient of constraint ``j`` at (``users``, ``cols``); column K is 0."""
        out = np.zeros(users.size)
        on = cols < self.k
        out[on] = self.cons[j].at(users[on], cols[on])
        return out

    def apply(self, choice: np.ndarray, users: np.ndarray, cols: np.ndarray) -> None:
        choice[users] = np.where(cols == self.k, -1, cols)


class Ledger:
    """Exact usage of every constraint for a plan, updated exactly batch by batch."""

    def __init__(self, table: MoveTable, choice: np.ndarray) -> None:
        self.table = table
        self.usage = table.problem.exact_usage(choice)
        self.limit = [Fraction(float(b)) for b in table.rhs]

    def slack(self) -> np.ndarray:
        """(C,) ``rhs - usage`` rounded down (never more room than there is)."""
        return np.array([round_down(b - u) for b, u in zip(self.limit, self.usage, strict=True)])

    def broken(self) -> np.ndarray:
        """(C,) whether each constraint is exceeded (exactly, by any amount)."""
        return np.array([u > b for u, b in zip(self.usage, self.limit, strict=True)], dtype=bool)

    def excess(self, j: int) -> float:
        """How far constraint ``j`` exceeds its limit, rounded up (<= 0 when it holds)."""
        return round_up(self.usage[j] - self.limit[j])

    def change(self, users: np.ndarray, old: np.ndarray, new: np.ndarray) -> list[Fraction]:
        """Exact change of every constraint's usage when ``users`` move from ``old`` to ``new``."""
        t = self.table
        k = t.k
        p = t.problem
        sign = np.r_[np.ones(users.size), -np.ones(users.size)]
        who, col = np.r_[users, users], np.r_[new, old]
        on = col < k
        who, col, sign = who[on], col[on], sign[on]
        return p.exact_terms(who, col, sign)

    def try_apply(
        self, choice: np.ndarray, users: np.ndarray, cols: np.ndarray, modes: list[str]
    ) -> int:
        """Apply the longest prefix of the moves (halving) that respects ``modes``; its length.

        ``modes[i]`` says what constraint ``i`` must satisfy after the moves, in
        exact arithmetic: ``'keep'`` within its limit; ``'shrink'`` within its
        limit or strictly less used than before; ``'no_growth'`` within its limit
        or not more used than before; ``'free'`` anything (budgets while the
        coverage floors are restored).
        """
        t = self.table
        take = users.size
        old = t.index(choice[users])
        while take > 0:
            d = self.change(users[:take], old[:take], cols[:take])
            new = [u + di for u, di in zip(self.usage, d, strict=True)]
            if all(
                _respects(m, nu, b, di)
                for m, nu, b, di in zip(modes, new, self.limit, d, strict=True)
            ):
                self.usage = new
                t.apply(choice, users[:take], cols[:take])
                return take
            take //= 2
        return 0


def _respects(mode: str, usage: Fraction, limit: Fraction, change: Fraction) -> bool:
    """Whether a constraint's new exact ``usage`` (after ``change``) satisfies ``mode``."""
    if mode == "free" or usage <= limit:
        return True
    if mode == "shrink":
        return change < 0
    return mode == "no_growth" and change <= 0


def _prefix_within(cum_incs: list[np.ndarray], slacks: list[float]) -> int:
    """Longest prefix whose cumulative increase stays within every slack."""
    take = cum_incs[0].shape[0] if cum_incs else 0
    for cum, s in zip(cum_incs, slacks, strict=True):
        take = min(take, int(np.searchsorted(cum, s, side="right")))
    return take


def _first_fit(inc: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Rows of ``inc`` (r, C) taken in order whenever they still fit in ``room`` (C,)."""
    room = room.copy()
    keep = []
    for r, row in enumerate(inc):
        if (row <= room).all():
            keep.append(r)
            room -= row
    return np.array(keep, dtype=np.int64)


def _moves_from(table: MoveTable, users: np.ndarray, idx: np.ndarray, j: int) -> np.ndarray:
    """(m, K+1) change of constraint ``j`` when each user moves from ``idx`` to each column."""
    d = table.coef(j, users)
    d -= d[np.arange(users.size), idx][:, None]
    return d


def _increase(table: MoveTable, j: int, users: np.ndarray, old: np.ndarray, new: np.ndarray):
    """(m,) increase (>= 0) of constraint ``j`` when ``users`` move from ``old`` to ``new``."""
    return np.maximum(table.coef_at(j, users, new) - table.coef_at(j, users, old), 0.0)


def repair(
    problem: CouponProblem,
    choice: np.ndarray,
    prices: np.ndarray | None = None,
    *,
    max_rounds: int = 200,
    table: MoveTable | None = None,
    users: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Make ``choice`` satisfy every constraint; returns (plan, remaining violations).

    ``prices`` (one per constraint, e.g. Lagrangian duals) price the side effects
    of a move on other constraints; ``users`` (indices) limits the moves to those
    users.  An empty violation dict means success: the plan then satisfies every
    constraint in exact arithmetic.
    """
    t = table or MoveTable(problem)
    choice = np.array(choice, dtype=np.int64)
    ledger = Ledger(t, choice)
    p = np.zeros(len(t.cons)) if prices is None else np.asarray(prices, dtype=np.float64)
    blocked = np.zeros(problem.n_users, dtype=bool)
    for _ in range(max_rounds):
        broken = ledger.broken()
        if not broken.any():
            return choice, {}
        slack = ledger.slack()
        scale = np.maximum(1.0, np.abs(t.rhs))
        j = min(
            np.flatnonzero(broken), key=lambda i: (_COVERAGE_FIRST[t.kinds[i]], slack[i] / scale[i])
        )
        pool = np.flatnonzero(~blocked) if users is None else users[~blocked[users]]
        if not _repair_round(t, ledger, choice, j, broken, slack, p, pool, blocked):
            break
    return choice, problem.violations(choice)


def _repair_round(
    t: MoveTable,
    ledger: Ledger,
    choice: np.ndarray,
    j: int,
    broken: np.ndarray,
    slack: np.ndarray,
    prices: np.ndarray,
    users: np.ndarray,
    blocked: np.ndarray,
) -> bool:
    """One round on broken constraint ``j`` with moves of ``users``; False when none frees it."""
    fixing_coverage = t.kinds[j] == "coverage"
    rows = np.arange(users.size)
    idx = t.index(choice[users])
    obj = t.objective(users)
    priced = obj[rows, idx][:, None] - obj  # (m, K+1) objective lost by each move
    dj = _moves_from(t, users, idx, j)
    valid = dj < -1e-12 * max(1.0, abs(t.rhs[j]))
    modes, protected = [], []
    for i in range(len(t.cons)):
        if i == j:
            modes.append("shrink")
            continue
        di = _moves_from(t, users, idx, i)
        priced += prices[i] * di
        if fixing_coverage and t.kinds[i] != "coverage":
            modes.append("free")  # budgets may break while coverage is restored; fixed next
        elif broken[i]:
            valid &= di <= 0.0
            modes.append("no_growth")
        else:
            valid &= di <= max(slack[i], 0.0)
            modes.append("keep")
            protected.append(i)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(valid, priced / np.where(valid, -dj, 1.0), np.inf)
    col = np.argmin(score, axis=1)
    best = score[rows, col]
    cand = np.flatnonzero(np.isfinite(best))
    if cand.size == 0:
        return False
    cand = cand[np.argsort(best[cand], kind="stable")]
    cols, who, old = col[cand], users[cand], idx[cand]
    freed = np.cumsum(-dj[cand, cols])
    take = int(np.searchsorted(freed, -slack[j], side="left")) + 1
    cum = [np.cumsum(_increase(t, i, who, old, cols)) for i in protected]
    take = min(
        take, cand.size, max(1, _prefix_within(cum, [max(slack[i], 0.0) for i in protected]))
    )
    if ledger.try_apply(choice, who[:take], cols[:take], modes) == 0:
        blocked[who[0]] = True  # its move does not fit in exact arithmetic: skip the user
    return True


def fill(
    problem: CouponProblem,
    choice: np.ndarray,
    *,
    max_rounds: int = 100,
    table: MoveTable | None = None,
    users: np.ndarray | None = None,
) -> np.ndarray:
    """Greedily improve a feasible ``choice`` without breaking any constraint (exactly).

    Only ``users`` (indices; default all) move.  After the first round only users
    that still had a fitting move are scanned (slack only shrinks, so nobody else
    can gain a move), unless some slack grew.
    """
    t = table or MoveTable(problem)
    choice = np.array(choice, dtype=np.int64)
    ledger = Ledger(t, choice)
    c = len(t.cons)
    everyone = np.arange(problem.n_users) if users is None else np.asarray(users)
    scan = everyone
    prev = None
    for _ in range(max_rounds):
        slack = np.maximum(ledger.slack(), 0.0)
        if prev is not None and (slack > prev).any():
            scan = everyone  # a move freed resources: everyone may have a move again
        prev = slack
        rows = np.arange(scan.size)
        idx = t.index(choice[scan])
        obj = t.objective(scan)
        gain = obj - obj[rows, idx][:, None]  # (m, K+1) objective gained by each move
        valid = gain > t.obj_eps
        weighted = np.zeros_like(gain)
        for i in range(c):
            di = _moves_from(t, scan, idx, i)
            valid &= di <= slack[i]
            with np.errstate(over="ignore"):  # a move using all of a tiny slack weighs inf
                weighted += np.maximum(di, 0.0) / max(slack[i], 1e-300)
        has_move = valid.any(axis=1)
        if not has_move.any():
            break
        local = np.flatnonzero(has_move)  # score only users with a fitting move
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(valid[local], gain[local] / weighted[local], -np.inf)  # free: +inf
        col = np.argmax(score, axis=1)
        order = np.argsort(-score[np.arange(local.size), col], kind="stable")
        who, cols, old = scan[local[order]], col[order], idx[local[order]]
        inc = np.zeros((who.size, c))  # (m, C) resource each move takes
        for i in range(c):
            inc[:, i] = _increase(t, i, who, old, cols)
        take = max(
            1, _prefix_within(list(np.cumsum(inc, axis=0).T), list(slack)) if c else who.size
        )
        # past the prefix, still take each of the next moves that fits what is left
        more = take + _first_fit(inc[take : take + _FIRST_FIT], slack - inc[:take].sum(axis=0))
        picked = np.concatenate([np.arange(take), more])
        if ledger.try_apply(choice, who[picked], cols[picked], ["keep"] * c) == 0:
            has_move[local[order[0]]] = False  # does not fit in exact arithmetic: drop it
        scan = scan[has_move]
    return choice
