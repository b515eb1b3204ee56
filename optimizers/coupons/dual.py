"""The Lagrangian relaxation of a coupon problem: its value, subgradient and a certified bound.

Price every coupling constraint ``j`` at ``lam_j >= 0``.  The relaxed problem
separates by user, and for every ``lam >= 0`` (weak duality)

    L(lam) = sum_u max(0, max_k r[u, k]) + sum_j lam_j rhs_j >= optimum,
    r[u, k] = obj[u, k] - sum_j lam_j coef_j[u, k].

With the structure of :class:`~optimizers.coupons.problem.LinearConstraint`
(``coef_j = cost_weight_j[k] cost + value_weight_j value + user_weight_j[u]``)
the reduced score is one pass over the (n, K) data whatever the number of
constraints: ``r = obj - q[k] cost - G value + beta[u]`` with per-option prices
``q = lam @ cost_weight``, ``G = lam @ value_weight`` and per-user
``beta = -sum_j lam_j user_weight_j``.

:meth:`Relaxation.certified_bound` evaluates ``L(lam)`` so that the result is an
upper bound on the optimum of the problem as posed, in exact arithmetic: the
positive parts are summed exactly (:mod:`optimizers.coupons.exact`), the prices'
contribution ``lam . rhs`` is exact, and the rounding of the reduced scores is
covered by a standard forward error bound, then the total is rounded up.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from optimizers.coupons.exact import exact_sum, round_up
from optimizers.coupons.problem import CouponProblem

_UNIT = 2.0**-53  # unit roundoff of float64
BLOCK_USERS = 2_000
"""Users per block of :meth:`Relaxation.cuts` (at most :data:`MAX_BLOCKS` blocks)."""
MAX_BLOCKS = 64


class Relaxation:
    """``L(lam)`` of ``problem`` over all users, or over ``users`` with limits scaled to them.

    ``users`` (sorted indices) gives the relaxation of a subsample: its limits
    are the problem's times ``len(users) / n``, which makes its prices estimate
    the full problem's (a start for the search, never a bound of the problem).
    """

    def __init__(self, problem: CouponProblem, users: np.ndarray | None = None) -> None:
        cons = problem.constraints
        rows = slice(None) if users is None else users
        self.n_users = problem.n_users if users is None else int(users.size)
        self.obj_t = np.ascontiguousarray(problem.objective_matrix[rows].T)  # (K, m)
        self.cost_t = np.ascontiguousarray(problem.cost[rows].T)  # (K, m)
        self.alpha = np.array([c.cost_weight for c in cons]).reshape(len(cons), problem.n_options)
        self.gamma = np.array([c.value_weight for c in cons], dtype=np.float64)  # (C,)
        self.value_t = (
            np.ascontiguousarray(problem.value[rows].T) if np.any(self.gamma) else None
        )  # (K, m)
        self.user_w = [
            (j, np.ascontiguousarray(c.user_weight[rows]))
            for j, c in enumerate(cons)
            if c.user_weight is not None
        ]
        share = self.n_users / max(problem.n_users, 1)
        self.rhs = np.array([c.rhs for c in cons], dtype=np.float64) * share  # (C,)
        self.exact_rhs = [Fraction(c.rhs) for c in cons] if users is None else None
        self.evaluations = 0
        self.n_blocks = int(np.clip(self.n_users // BLOCK_USERS, 1, MAX_BLOCKS))
        self.block = (np.arange(self.n_users) * self.n_blocks) // max(self.n_users, 1)  # (m,)
        self.block_starts = np.searchsorted(self.block, np.arange(self.n_blocks))
        # sums of row maxima, for the rounding-error bound of certified_bound
        self.abs_obj = float(np.abs(self.obj_t).max(axis=0).sum())
        self.abs_cost = float(self.cost_t.max(axis=0).sum())
        self.abs_value = (
            0.0 if self.value_t is None else float(np.abs(self.value_t).max(axis=0).sum())
        )
        self.abs_user = np.zeros(len(cons))
        for j, w in self.user_w:
            self.abs_user[j] = float(np.abs(w).sum())

    @property
    def n_constraints(self) -> int:
        return int(self.rhs.size)

    def price_scale(self) -> np.ndarray:
        """(C,) a natural size of each price: the largest objective per typical unit of the row."""
        top = float(np.abs(self.obj_t).max()) if self.obj_t.size else 1.0
        mean_cost = self.cost_t.mean(axis=1) if self.n_users else np.ones(self.alpha.shape[1])
        mean_value = 0.0 if self.value_t is None else float(np.abs(self.value_t).mean())
        typical = np.zeros(self.n_constraints)
        for j in range(self.n_constraints):
            on = self.alpha[j] != 0
            if on.any():
                typical[j] += float(np.mean(np.abs(self.alpha[j][on]) * mean_cost[on]))
            typical[j] += abs(self.gamma[j]) * mean_value
        for j, w in self.user_w:
            typical[j] += float(np.abs(w).mean())
        return np.where(typical > 0, max(top, 1e-300) / np.maximum(typical, 1e-300), 1.0)

    def _scores(self, k: int, q: float, g: float, beta: np.ndarray | None, buf: np.ndarray) -> None:
        """``buf = r[:, k] = obj_k - q cost_k - g value_k + beta`` (the reduced score of option k)."""
        np.multiply(self.cost_t[k], -q, out=buf)
        buf += self.obj_t[k]
        if g:
            buf -= g * self.value_t[k]  # type: ignore[index]
        if beta is not None:
            buf += beta

    def _prices(self, lam: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
        """(q, G, beta): per-option cost price (K,), value price, per-user term (m,) or None."""
        q = lam @ self.alpha  # (K,) price of one unit of each option's cost
        g = float(lam @ self.gamma)  # price of one unit of value
        beta = None
        if self.user_w:
            beta = np.zeros(self.n_users)
            for j, w in self.user_w:
                if lam[j]:
                    beta -= lam[j] * w
        return q, g, beta

    def _respond(
        self, lam: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(best positive score, choice, its cost, its value or None) per user at ``lam``."""
        q, g, beta = self._prices(np.asarray(lam, dtype=np.float64))
        m = self.n_users
        best, cost = np.zeros(m), np.zeros(m)
        value = None if self.value_t is None else np.zeros(m)
        arg = np.full(m, -1, dtype=np.int64)
        buf, better = np.empty(m), np.empty(m, dtype=bool)
        for k in range(self.obj_t.shape[0]):
            self._scores(k, float(q[k]), g, beta, buf)
            np.greater(buf, best, out=better)
            np.copyto(arg, k, where=better)
            np.copyto(cost, self.cost_t[k], where=better)
            if value is not None:
                np.copyto(value, self.value_t[k], where=better)  # type: ignore[index]
            np.maximum(best, buf, out=best)
        self.evaluations += 1
        return best, arg, cost, value

    def cuts(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per block of users: (sum of best positive scores (G,), usage of every constraint (G, C)).

        ``L(lam) = values.sum() + lam @ rhs`` and ``rhs - usage.sum(0)`` is a
        subgradient; each block's pair is a cut of that block's part of ``L``.
        """
        best, arg, cost, value = self._respond(lam)
        k = self.obj_t.shape[0]
        slot = self.block * (k + 1) + arg + 1
        spend = np.bincount(slot, weights=cost, minlength=self.n_blocks * (k + 1))
        usage = spend.reshape(self.n_blocks, k + 1)[:, 1:] @ self.alpha.T  # (G, C)
        if value is not None:
            usage += (
                np.bincount(self.block, weights=value, minlength=self.n_blocks)[:, None]
                * self.gamma[None, :]
            )
        chosen = arg >= 0
        for j, w in self.user_w:
            usage[:, j] += np.bincount(self.block, weights=w * chosen, minlength=self.n_blocks)
        return np.add.reduceat(best, self.block_starts), usage

    def best_response(
        self, lam: np.ndarray, *, with_choice: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(best positive score per user (m,), usage of every constraint (C,), choice or None)."""
        best, arg, _, _ = self._respond(lam)
        return best, self.usage(arg), arg if with_choice else None

    def margins(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(choice, relative margin, margin), each (m,), at prices ``lam``.

        The margin is the user's best reduced score minus its second best ("no
        coupon" counts as an option scoring 0; options that score 0 at every
        price count as "no coupon"); relative to the priced size of the user's
        options, it says how undecided the user is: a user whose relative margin
        is below ``eps`` may change its choice when the prices move by a relative
        ``eps`` (``inf`` when no option of the user is priced at all).
        """
        q, g, beta = self._prices(np.asarray(lam, dtype=np.float64))
        m = self.n_users
        best, second = np.zeros(m), np.full(m, -np.inf)
        arg = np.full(m, -1, dtype=np.int64)
        size = np.zeros(m) if beta is None else np.abs(beta)
        buf, better = np.empty(m), np.empty(m, dtype=bool)
        for k in range(self.obj_t.shape[0]):
            self._scores(k, float(q[k]), g, beta, buf)
            priced = np.abs(q[k]) * self.cost_t[k]
            if g:
                priced += abs(g) * np.abs(self.value_t[k])  # type: ignore[index]
            like_none = (priced == 0) & (buf == 0)  # scores 0 at every price: "no coupon" again
            if beta is not None:
                like_none &= beta == 0
            buf[like_none] = -np.inf
            np.greater(buf, best, out=better)
            np.copyto(arg, k, where=better)
            np.maximum(second, np.minimum(best, buf), out=second)
            np.maximum(best, buf, out=best)
            np.maximum(size, priced, out=size)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(size > 0, (best - second) / size, np.inf)  # nothing priced: decided
        return arg, ratio, best - second

    def usage(self, arg: np.ndarray) -> np.ndarray:
        """Usage (C,) of the plan ``arg`` (-1 = none), from per-option spends (floating point)."""
        k = self.obj_t.shape[0]
        chosen = arg >= 0
        rows = np.flatnonzero(chosen)
        spend = np.bincount(arg[rows], weights=self.cost_t[arg[rows], rows], minlength=k)
        usage = self.alpha @ spend
        if self.value_t is not None:
            usage += self.gamma * float(self.value_t[arg[rows], rows].sum())
        for j, w in self.user_w:
            usage[j] += float(w[rows].sum())
        return usage

    def __call__(self, lam: np.ndarray) -> tuple[float, np.ndarray]:
        """(L(lam) in floating point, a subgradient ``rhs - usage``)."""
        values, usage = self.cuts(lam)
        return float(values.sum() + lam @ self.rhs), self.rhs - usage.sum(axis=0)

    def certified_bound(self, lam: np.ndarray) -> float:
        """``L(lam)`` rounded up so that it bounds the posed problem's optimum in exact arithmetic.

        Only for the full problem (not a subsample).  The float reduced scores
        differ from the exact ones by at most ``gamma_(C+6)`` times the sum of the
        absolute terms that make them (Higham's bound for a sum of ``C + 4``
        rounded terms, with room to spare); twice that, summed over users through
        the row maxima, is added to the exact sum of the float positive parts.
        """
        if self.exact_rhs is None:
            raise ValueError("a subsample's relaxation bounds nothing; use the full problem")
        lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
        best, _, _ = self.best_response(lam)
        c = self.n_constraints + 6
        gamma = c * _UNIT / (1.0 - c * _UNIT)
        q_abs = float((lam @ np.abs(self.alpha)).max()) if self.n_constraints else 0.0
        terms = (
            self.abs_obj
            + q_abs * self.abs_cost
            + float(lam @ np.abs(self.gamma)) * self.abs_value
            + float(lam @ self.abs_user)
        )
        margin = Fraction(2.0 * gamma * terms) * (1 + Fraction(1, 1 << 20))
        prices = sum(
            (Fraction(float(p)) * b for p, b in zip(lam, self.exact_rhs, strict=True) if p),
            Fraction(0),
        )
        return round_up(exact_sum(best) + margin + prices)
