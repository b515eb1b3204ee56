"""Greedy repair and fill moves that keep every constraint of a coupon problem.

A *move* changes one user's choice ``cur -> t`` (``t`` may be "no coupon").  Both
heuristics score every user's best move at once on (n, K+1) matrices (column ``K``
is "no coupon") and apply a whole sorted prefix of moves per round, with the
prefix cut where the cumulative use of any protected constraint would exceed its
slack, so a round never breaks a constraint that held before it.

* :func:`repair` makes a plan feasible: first the coverage floors (adding the
  coupons with the best price-adjusted value), then each broken budget / ROI floor
  by dropping or downgrading the picks that lose the least objective per unit of
  the broken constraint they free, never pushing any other constraint past its
  limit nor undoing coverage.
* :func:`fill` then spends leftover slack: upgrades or new picks with the best
  objective gain per (slack-weighted) unit of resource, until no move fits (each
  round takes the fitting prefix of the sorted moves, then first-fit over the
  next few thousand, so a round spends most of the slack).
"""

from __future__ import annotations

import numpy as np

from optimizers.coupons.problem import CouponProblem

_COVERAGE_FIRST = {"coverage": 0, "roi": 1, "budget": 2, "group": 2}


class MoveTable:
    """Objective and constraint matrices with an explicit "no coupon" column."""

    def __init__(self, problem: CouponProblem) -> None:
        n = problem.n_users
        zero = np.zeros((n, 1))
        self.k = problem.n_options
        self.rows = np.arange(n)
        self.obj = np.concatenate([problem.objective_matrix, zero], axis=1)  # (n, K+1)
        self.coef = [np.concatenate([c.coef, zero], axis=1) for c in problem.constraints]
        self.rhs = np.array([c.rhs for c in problem.constraints], dtype=np.float64)
        self.kinds = [c.kind for c in problem.constraints]
        self.names = [c.name for c in problem.constraints]
        self.eps = 1e-9 * np.maximum(1.0, np.abs(self.rhs))  # feasibility tolerance
        scale = float(np.abs(self.obj).max()) if self.obj.size else 1.0
        self.obj_eps = 1e-12 * max(scale, 1e-300)

    def index(self, choice: np.ndarray) -> np.ndarray:
        """Choice (-1..K-1) -> column index (0..K)."""
        return np.where(choice < 0, self.k, choice)

    def usage(self, idx: np.ndarray) -> np.ndarray:
        return np.array([a[self.rows, idx].sum() for a in self.coef], dtype=np.float64)

    def apply(self, choice: np.ndarray, users: np.ndarray, cols: np.ndarray) -> None:
        choice[users] = np.where(cols == self.k, -1, cols)


_FIRST_FIT = 4096
"""Moves past the fitting prefix that one :func:`fill` round still tries one by one."""


def _first_fit(inc: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Rows of ``inc`` (r, C) taken in order whenever they still fit in ``room`` (C,)."""
    room = room.copy()
    keep = []
    for r, row in enumerate(inc):
        if (row <= room).all():
            keep.append(r)
            room -= row
    return np.array(keep, dtype=np.int64)


def _prefix_within(cum_incs: list[np.ndarray], slacks: list[float]) -> int:
    """Longest prefix whose cumulative increase stays within every slack."""
    take = cum_incs[0].shape[0] if cum_incs else 0
    for cum, s in zip(cum_incs, slacks, strict=True):
        take = min(take, int(np.searchsorted(cum, s, side="right")))
    return take


def repair(
    problem: CouponProblem,
    choice: np.ndarray,
    prices: np.ndarray | None = None,
    *,
    max_rounds: int = 200,
    table: MoveTable | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Make ``choice`` satisfy every constraint; returns (plan, remaining violations).

    ``prices`` (one per constraint, e.g. Lagrangian duals) price the side effects
    of a move on other constraints.  An empty violation dict means success.
    """
    t = table or MoveTable(problem)
    choice = choice.copy()
    c = len(t.coef)
    p = np.zeros(c) if prices is None else np.asarray(prices, dtype=np.float64)
    order_of = [_COVERAGE_FIRST[kd] for kd in t.kinds]
    for _ in range(max_rounds):
        idx = t.index(choice)
        slack = t.rhs - t.usage(idx)
        broken = slack < -t.eps
        if not broken.any():
            return choice, {}
        # fix coverage first (it may overspend), then ROI and budgets (coverage protected)
        j = min(np.nonzero(broken)[0], key=lambda i: (order_of[i], slack[i] / t.eps[i]))
        fixing_coverage = t.kinds[j] == "coverage"
        d_obj = t.obj - t.obj[t.rows, idx][:, None]  # (n, K+1) gain of each move
        d = [a - a[t.rows, idx][:, None] for a in t.coef]  # (n, K+1) per constraint
        valid = d[j] < -1e-12 * max(1.0, abs(t.rhs[j]))
        priced = -d_obj
        protected: list[int] = []
        for i in range(c):
            if i == j:
                continue
            priced = priced + p[i] * d[i]
            if fixing_coverage and t.kinds[i] != "coverage":
                continue  # budgets may break while coverage is restored; fixed next
            limit = 0.0 if broken[i] else max(slack[i], 0.0)
            valid &= d[i] <= limit + t.eps[i]
            if not broken[i]:
                protected.append(i)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(valid, priced / np.where(valid, -d[j], 1.0), np.inf)
        col = np.argmin(score, axis=1)
        best = score[t.rows, col]
        users = np.nonzero(np.isfinite(best))[0]
        if users.size == 0:
            break
        users = users[np.argsort(best[users], kind="stable")]
        cols = col[users]
        freed = np.cumsum(-d[j][users, cols])
        take = int(np.searchsorted(freed, -slack[j] - t.eps[j], side="left")) + 1
        cum = [np.cumsum(np.maximum(d[i][users, cols], 0.0)) for i in protected]
        take = min(
            take, users.size, max(1, _prefix_within(cum, [slack[i] + t.eps[i] for i in protected]))
        )
        t.apply(choice, users[:take], cols[:take])
    viol = problem.violations(choice)
    return choice, viol


def fill(
    problem: CouponProblem,
    choice: np.ndarray,
    *,
    max_rounds: int = 100,
    table: MoveTable | None = None,
) -> np.ndarray:
    """Greedily improve a feasible ``choice`` without breaking any constraint.

    After the first round only users that still had a fitting move are scanned
    (slack only shrinks, so nobody else can gain a move), unless some slack grew.
    """
    t = table or MoveTable(problem)
    choice = choice.copy()
    c = len(t.coef)
    users_all = t.rows
    scan = users_all
    prev_slack = None
    for _ in range(max_rounds):
        slack = np.maximum(t.rhs - t.usage(t.index(choice)), 0.0)
        if prev_slack is not None and (slack > prev_slack + t.eps).any():
            scan = users_all  # a move freed resources: everyone may have a move again
        prev_slack = slack
        full = scan.size == users_all.size
        idx = t.index(choice[scan])
        obj = t.obj if full else t.obj[scan]
        d_obj = obj - obj[np.arange(scan.size), idx][:, None]  # (m, K+1) gain of each move
        valid = d_obj > t.obj_eps
        d = []
        for i in range(c):
            a = t.coef[i] if full else t.coef[i][scan]
            d.append(a - a[np.arange(scan.size), idx][:, None])  # (m, K+1)
            valid &= d[i] <= slack[i] + t.eps[i]
        has_move = valid.any(axis=1)
        if not has_move.any():
            break
        local = np.nonzero(has_move)[0]  # score only users with a fitting move
        valid, d_obj, d = valid[local], d_obj[local], [di[local] for di in d]
        weighted = np.zeros_like(d_obj)
        for i in range(c):
            weighted += np.maximum(d[i], 0.0) / max(slack[i], t.eps[i])
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(valid, d_obj / weighted, -np.inf)  # free moves -> +inf
        col = np.argmax(score, axis=1)
        best = score[np.arange(local.size), col]
        order = np.argsort(-best, kind="stable")
        cols = col[order]
        inc = np.zeros((order.size, c))  # (m, C) resource each move takes
        for i in range(c):
            inc[:, i] = np.maximum(d[i][order, cols], 0.0)
        room = slack + t.eps
        take = max(
            1, _prefix_within(list(np.cumsum(inc, axis=0).T), list(room)) if c else order.size
        )
        # past the prefix, still take each of the next moves that fits what is left
        more = take + _first_fit(inc[take : take + _FIRST_FIT], room - inc[:take].sum(axis=0))
        picked = np.concatenate([np.arange(take), more])
        t.apply(choice, scan[local[order[picked]]], cols[picked])
        scan = scan[has_move]
    return choice
