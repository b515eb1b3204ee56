"""The price search of the Lagrangian method: minimise the dual function over the prices.

``L(lam)`` (:mod:`optimizers.coupons.dual`) is convex and piecewise linear in the
prices ``lam >= 0``, one per coupling constraint; every ``L(lam)`` bounds the
optimum, and its minimum equals the LP-relaxation bound.

* One constraint: safeguarded regula falsi on the price (usage is non-increasing
  in it), bracketed first on a random subsample of users.
* Several constraints: a cutting-plane method with a box trust region (Kelley's
  method stabilised as in Marsten's box-step): every evaluation of ``L`` yields a
  cut ``L(lam_i) + g_i . (lam - lam_i)`` (``g_i = rhs - usage``, a subgradient);
  HiGHS minimises the cuts' maximum over a box around the best prices so far;
  the box doubles after a good step that reached its edge and halves after a step
  that did not improve.  The search stops when the cuts prove the best value
  within ``rtol`` of the minimum (the model's minimiser lies inside the box, so
  the model's minimum is global), or after ``max_evals`` evaluations.  Above
  twice :data:`SUBSAMPLE` users the search first runs on a random subsample (with
  the limits scaled to it), and the full problem's search starts at its prices
  in a box a few percent wide: a handful of passes over all users.

The bound reported is :meth:`~optimizers.coupons.dual.Relaxation.certified_bound`
at the best prices found: valid whatever the search did.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from optimizers.coupons.dual import Relaxation
from optimizers.coupons.problem import CouponProblem

SUBSAMPLE = 50_000
"""Users in the random subsample that starts the price search of a larger problem."""


@dataclass
class DualSolution:
    """Prices, their certified bound, and the best response at the prices."""

    prices: np.ndarray  # (C,) one per constraint: the prices of the plan
    bound: float  # certified upper bound on the optimum (L at the best prices, rounded up)
    choice: np.ndarray  # (n,) best response at ``prices`` (-1 = none)
    evaluations: int


def solve_dual(
    problem: CouponProblem,
    *,
    rtol: float = 1e-7,
    seed: int = 0,
    warm_prices: np.ndarray | None = None,
    max_evals: int = 150,
    relax: Relaxation | None = None,
) -> DualSolution:
    """Minimise L(lam) and return the prices, their certified bound and the best response.

    ``warm_prices`` (C,) start the search (e.g. the prices of a solve at a nearby
    budget or objective) instead of the subsample pre-solve.  Any start gives a
    valid bound: it is computed for this problem's data at the prices returned.
    ``relax`` is the problem's :class:`Relaxation` when the caller has built it.
    """
    relax = relax or Relaxation(problem)
    c = relax.n_constraints
    warm = None
    if warm_prices is not None:
        warm = np.maximum(np.asarray(warm_prices, dtype=np.float64), 0.0)
        if warm.shape != (c,):
            raise ValueError(f"warm_prices has shape {warm.shape}, expected ({c},)")
        if not warm.any():
            warm = None
    sample = None
    if warm is None and problem.n_users > 2 * SUBSAMPLE:
        rng = np.random.default_rng(seed)
        sample = Relaxation(problem, np.sort(rng.choice(problem.n_users, SUBSAMPLE, replace=False)))
    if c == 0:
        plan = bound_at = np.zeros(0)
    elif c == 1:
        guess = None if warm is None else float(warm[0])
        if sample is not None:
            guess = bisect_price(sample, rtol=1e-4)[0]
        lam, lam_bound = bisect_price(relax, rtol=rtol, guess=guess)
        plan, bound_at = np.array([lam]), np.array([lam_bound])
    else:
        scale = relax.price_scale()
        start, step = np.zeros(c), scale
        if sample is not None:
            start = kelley(sample, start, step, rtol=1e-6, max_evals=3 * max_evals)
        elif warm is not None:
            start = warm
        if start.any():
            step = 0.05 * start + 1e-3 * scale
        plan = bound_at = kelley(relax, start, step, rtol=rtol, max_evals=max_evals)
    _, _, choice = relax.best_response(plan, with_choice=True)
    bound = relax.certified_bound(bound_at)
    return DualSolution(plan, bound, choice, relax.evaluations)  # type: ignore[arg-type]


def bisect_price(
    relax: Relaxation, *, rtol: float, guess: float | None = None, spread: float = 0.01
) -> tuple[float, float]:
    """(plan price, bound price) of a single constraint: usage within the limit, smallest ``L``.

    Bracket the price where usage crosses the limit (from ``guess`` when given,
    widening eightfold per probe), then safeguarded regula falsi on the
    non-increasing usage: interpolate between the bracket ends, clamp away from
    them, bisect every third step; stop when the bracket is ``rtol`` (relative)
    narrow or the plan at its feasible end is within 1e-7 of the smallest ``L``.
    The plan price is that feasible end; the bound price the one of the smallest ``L``.
    """
    rhs = float(relax.rhs[0])
    seen: dict[float, float] = {}

    def usage(lam: float) -> float:
        val, g = relax(np.array([lam]))
        seen[lam] = val
        return rhs - float(g[0])

    lo, hi, u_lo, u_hi = _bracket(usage, rhs, guess, spread, float(relax.price_scale()[0]))
    if hi is None:  # usage within the limit at price 0
        return 0.0, 0.0
    for step in range(200):
        width = hi - lo
        if width <= rtol * hi:
            break
        if step % 3 == 2 or u_lo <= u_hi:
            mid = lo + 0.5 * width
        else:
            frac = (u_lo - rhs) / (u_lo - u_hi)
            mid = lo + min(max(frac, 1e-3), 1.0 - 1e-3) * width
        u = usage(mid)
        if u <= rhs:
            hi, u_hi = mid, u
            low = min(seen.values())
            if low - (seen[mid] - mid * (rhs - u)) <= 1e-7 * max(abs(low), 1e-12):
                break  # the plan at hi is within 1e-7 of the best bound
        else:
            lo, u_lo = mid, u
    return hi, min(seen, key=lambda lam: (seen[lam], lam))


def _bracket(usage, rhs: float, guess: float | None, spread: float, scale: float):
    """(lo, hi, usage(lo), usage(hi)) with usage(lo) > rhs >= usage(hi); hi None if lo=0 fits."""
    lo = hi = None
    u_lo = u_hi = 0.0
    if guess is not None and guess > 0:
        widths = spread * 8.0 ** np.arange(8)
        u = usage(guess * (1.0 + spread))
        if u <= rhs:  # feasible above the guess: walk down to an infeasible price
            hi, u_hi = guess * (1.0 + spread), u
            for w in widths:
                u = usage(guess / (1.0 + w))
                if u > rhs:
                    lo, u_lo = guess / (1.0 + w), u
                    break
                hi, u_hi = guess / (1.0 + w), u
        else:  # infeasible above the guess: walk up to a feasible price
            lo, u_lo = guess * (1.0 + spread), u
            for w in widths[1:]:
                u = usage(guess * (1.0 + w))
                if u <= rhs:
                    hi, u_hi = guess * (1.0 + w), u
                    break
                lo, u_lo = guess * (1.0 + w), u
    if lo is None:
        u_lo = usage(0.0)
        if u_lo <= rhs:
            return 0.0, None, u_lo, u_lo
        lo = 0.0
    if hi is None:
        hi = lo * 2.0 if lo > 0 else max(scale, 1e-300)
        for _ in range(2000):  # make sure hi is feasible
            u_hi = usage(hi)
            if u_hi <= rhs:
                break
            lo, u_lo, hi = hi, u_hi, hi * 2.0
    return lo, hi, u_lo, u_hi


def kelley(
    relax: Relaxation, start: np.ndarray, step: np.ndarray, *, rtol: float, max_evals: int
) -> np.ndarray:
    """Box-stabilised cutting planes from ``start``; the prices of the smallest ``L`` seen.

    ``step`` (C,) is the box's initial half-width per price.  The cuts are kept
    per block of users (:meth:`Relaxation.cuts`), a disaggregated model that
    needs far fewer evaluations than one cut per evaluation.  The master problem,
    in prices scaled by ``step``, is solved by HiGHS: minimise
    ``rhs . lam + sum_g w_g`` s.t. ``w_g >= S_g(lam_i) - U_g(lam_i) . (lam - lam_i)``
    for every evaluation ``i`` and block ``g``, ``lam`` in the box, ``lam >= 0``.
    """
    c = relax.n_constraints
    unit = np.maximum(np.asarray(step, dtype=np.float64), 1e-300)  # price per scaled unit
    center = np.maximum(np.asarray(start, dtype=np.float64), 0.0)
    master = _Master(relax.rhs * unit, relax.n_blocks)
    values, usage = relax.cuts(center)
    best = float(values.sum() + center @ relax.rhs)
    master.add_cuts(values, usage, center, unit)
    box = np.ones(c)  # half-width in scaled units
    for _ in range(max_evals - 1):
        mu_c = center / unit
        lo, hi = np.maximum(mu_c - box, 0.0), mu_c + box
        found = master.minimise(lo, hi)
        if found is None:
            break
        mu, model = found
        lam = np.maximum(mu * unit, 0.0)
        predicted = best - model
        edge = (mu >= hi - 1e-9 * box) | ((mu <= lo + 1e-9 * box) & (lo > 0))
        if predicted <= rtol * abs(best) and not edge.any():
            break  # the cuts prove no price does better than best - rtol |best|
        values, usage = relax.cuts(lam)
        val = float(values.sum() + lam @ relax.rhs)
        master.add_cuts(values, usage, lam, unit)
        if val < best:
            if best - val >= 0.5 * predicted:
                box *= 2.0
            center, best = lam, val
        else:
            box *= 0.5
    return center


class _Master:
    """The cutting-plane model: ``min rhs . lam + sum_g w_g`` over scaled prices ``mu``."""

    def __init__(self, rhs_scaled: np.ndarray, n_blocks: int) -> None:
        self.n, self.g = rhs_scaled.size, n_blocks
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        inf = highspy.kHighsInf
        lower = np.r_[np.zeros(self.n), np.full(n_blocks, -inf)]
        self.h.addVars(self.n + n_blocks, lower, np.full(self.n + n_blocks, inf))
        self.idx = np.arange(self.n + n_blocks, dtype=np.int32)
        self.h.changeColsCost(self.n + n_blocks, self.idx, np.r_[rhs_scaled, np.ones(n_blocks)])

    def add_cuts(
        self, values: np.ndarray, usage: np.ndarray, lam: np.ndarray, unit: np.ndarray
    ) -> None:
        """``w_g + (usage_g * unit) . mu >= values_g + usage_g . lam`` for every block ``g``."""
        g, n = self.g, self.n
        coef = np.concatenate([usage * unit[None, :], np.ones((g, 1))], axis=1)  # (G, C+1)
        index = np.concatenate(
            [
                np.tile(np.arange(n, dtype=np.int32), (g, 1)),
                (n + np.arange(g, dtype=np.int32))[:, None],
            ],
            axis=1,
        )
        lower = values + usage @ lam
        starts = np.arange(g, dtype=np.int32) * (n + 1)
        self.h.addRows(
            g, lower, np.full(g, highspy.kHighsInf), coef.size, starts, index.ravel(), coef.ravel()
        )

    def minimise(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """(mu, model value) minimising the model over the box, or None when HiGHS fails."""
        self.h.changeColsBounds(self.n, self.idx[: self.n], lo, hi)
        self.h.run()
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        x = np.asarray(self.h.getSolution().col_value)
        return x[: self.n], float(self.h.getInfo().objective_function_value)
