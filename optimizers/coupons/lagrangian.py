"""Lagrangian dual method for large coupon problems (fully vectorised numpy).

Relax every coupling constraint ``sum_u A_j[u, choice_u] <= b_j`` with a price
``lam_j >= 0``.  The relaxed problem separates by user: each user takes
``argmax_k obj[u, k] - sum_j lam_j A_j[u, k]`` when positive, else no coupon, and

    L(lam) = sum_u max(0, max_k (obj[u, k] - sum_j lam_j A_j[u, k])) + sum_j lam_j b_j

is an upper bound on the optimum for every ``lam >= 0`` (weak duality; with one
budget its minimum equals the LP-relaxation bound).  One constraint: bisection on
``lam`` (usage is non-increasing in ``lam``), first on a random subsample to
bracket the price, then on all users.  Several constraints: coordinate descent,
one bisection per price, repeated until the bound stops improving.  The plan at
the final prices is made feasible by :func:`optimizers.coupons.repair.repair` and
topped up by :func:`optimizers.coupons.repair.fill`.

Arrays are kept transposed, (K, n), so each step is K vector operations of length
n instead of a Python loop over users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizers.coupons.problem import CouponProblem

_SUBSAMPLE = 50_000


@dataclass
class DualSolution:
    """Prices, the best bound found, and the best response at the final prices."""

    prices: np.ndarray  # (C,) one per constraint
    bound: float  # min over evaluated prices of L(lam)
    choice: np.ndarray  # (n,) best response at ``prices`` (feasible side of each bisection)
    evaluations: int


def best_response(
    base_t: np.ndarray, coef_t: np.ndarray, lam: float, *, with_choice: bool = False
) -> tuple[float, float, np.ndarray | None]:
    """Each user's best option under price ``lam`` on one constraint.

    ``base_t``: (K, n) objective already net of the other prices; ``coef_t``: (K, n).
    Returns (sum of positive best scores, usage of the constraint, choice or None).
    """
    k, n = base_t.shape
    best = np.zeros(n)  # (n,) score of "no coupon" is 0
    used = np.zeros(n)  # (n,) coefficient of the current best option
    choice = np.full(n, -1, dtype=np.int64) if with_choice else None
    buf = np.empty(n)
    for j in range(k):
        np.multiply(coef_t[j], -lam, out=buf)
        buf += base_t[j]
        better = buf > best
        np.copyto(used, coef_t[j], where=better)
        if choice is not None:
            choice[better] = j
        np.maximum(best, buf, out=best)
    return float(best.sum()), float(used.sum()), choice


class _PriceProbe:
    """``U(lam)`` of one constraint, keeping the smallest dual value seen and the count."""

    def __init__(self, base_t: np.ndarray, coef_t: np.ndarray, rhs: float, const: float) -> None:
        self.base_t, self.coef_t, self.rhs, self.const = base_t, coef_t, rhs, const
        self.evals = 0
        self.bound = np.inf

    def __call__(self, lam: float) -> tuple[float, float]:
        """(sum of positive best scores, usage) at price ``lam``; updates the bound."""
        s, u, _ = best_response(self.base_t, self.coef_t, lam)
        self.evals += 1
        self.bound = min(self.bound, s + lam * self.rhs + self.const)
        return s, u


def _bracket_guess(
    probe: _PriceProbe, lam_guess: float, spread: float
) -> tuple[float | None, float, float | None, float]:
    """(lo, U(lo), hi, U(hi)) around ``lam_guess``, widening eightfold per probe.

    ``lo`` is infeasible (usage > rhs) and ``hi`` feasible; either is ``None``
    when eight widenings did not reach it.
    """
    rhs = probe.rhs
    widths = spread * 8.0 ** np.arange(8)
    lo = hi = None
    u_lo = u_hi = 0.0
    u = probe(lam_guess * (1.0 + spread))[1]
    if u <= rhs:  # feasible above the guess: walk down to an infeasible price
        hi, u_hi = lam_guess * (1.0 + spread), u
        for w in widths:
            u = probe(lam_guess / (1.0 + w))[1]
            if u > rhs:
                lo, u_lo = lam_guess / (1.0 + w), u
                break
            hi, u_hi = lam_guess / (1.0 + w), u
    else:  # infeasible above the guess: walk up to a feasible price
        lo, u_lo = lam_guess * (1.0 + spread), u
        for w in widths[1:]:
            u = probe(lam_guess * (1.0 + w))[1]
            if u <= rhs:
                hi, u_hi = lam_guess * (1.0 + w), u
                break
            lo, u_lo = lam_guess * (1.0 + w), u
    return lo, u_lo, hi, u_hi


def _bisect_price(
    base_t: np.ndarray,
    coef_t: np.ndarray,
    rhs: float,
    const: float,
    *,
    rtol: float,
    lam_guess: float | None = None,
    spread: float = 0.01,
) -> tuple[float, float, int]:
    """Smallest price with usage <= rhs (to ``rtol``); returns (price, best bound, evals).

    With ``lam_guess`` the bracket starts at ``lam_guess * (1 +- spread)`` and
    widens eightfold per probe until it holds the price, so a guess that is
    already close (a later sweep, a nearby budget) costs a few evaluations.

    Safeguarded regula falsi on the non-increasing usage ``U(lam)``: interpolate
    between the bracket ends, clamp away from them, and bisect every third step,
    so it converges in a handful of steps on smooth (large-n) usage curves and
    never slower than bisection.  Stops early once the plan at the feasible end
    is within 1e-7 (relative) of the best bound.  ``const`` is the part of L
    contributed by the other prices (``sum_i lam_i b_i``).
    """
    probe = _PriceProbe(base_t, coef_t, rhs, const)
    lo = hi = None
    u_lo = u_hi = 0.0
    if lam_guess is not None and lam_guess > 0:
        lo, u_lo, hi, u_hi = _bracket_guess(probe, lam_guess, spread)
    if lo is None:
        u_lo = probe(0.0)[1]
        if u_lo <= rhs + 1e-12 * max(1.0, abs(rhs)):
            return 0.0, probe.bound, probe.evals
        lo = 0.0
    if hi is None:
        if lo > 0:  # infeasible just above the guess: search upwards from it
            hi = lo * 2.0
        else:
            nz = np.abs(coef_t[coef_t != 0])
            scale = float(np.abs(base_t).max()) / float(nz.min()) if nz.size else 1.0
            hi = max(scale, 1e-12) * 1.0001
        for _ in range(200):  # make sure hi is feasible
            u_hi = probe(hi)[1]
            if u_hi <= rhs:
                break
            lo, u_lo, hi = hi, u_hi, hi * 2.0
    for step in range(200):
        width = hi - lo
        if width <= rtol * hi:
            break
        if step % 3 == 2 or u_lo <= u_hi:
            mid = lo + 0.5 * width
        else:
            frac = (u_lo - rhs) / (u_lo - u_hi)
            mid = lo + min(max(frac, 1e-3), 1.0 - 1e-3) * width
        s, u = probe(mid)
        if u <= rhs:
            hi, u_hi = mid, u
            primal = s + mid * u + const  # objective of the plan at hi
            if probe.bound - primal <= 1e-7 * max(abs(probe.bound), 1e-12):
                break
        else:
            lo, u_lo = mid, u
    return hi, probe.bound, probe.evals


def solve_dual(
    problem: CouponProblem,
    *,
    rtol: float = 1e-7,
    max_sweeps: int = 30,
    seed: int = 0,
    warm_prices: np.ndarray | None = None,
) -> DualSolution:
    """Minimise L(lam) and return the prices, bound and best-response plan.

    ``warm_prices`` (C,) start the search (e.g. the prices of a solve at a nearby
    budget or objective) instead of the subsample pre-solve.  Any start gives a
    valid bound: it is the smallest L(lam) evaluated on this problem's data.
    """
    cons = problem.constraints
    obj_t = np.ascontiguousarray(problem.objective_matrix.T)  # (K, n)
    n = problem.n_users
    if not cons:
        s, _, choice = best_response(obj_t, np.zeros_like(obj_t), 0.0, with_choice=True)
        return DualSolution(np.zeros(0), s, choice, 1)  # type: ignore[arg-type]
    coef_t = [np.ascontiguousarray(c.coef.T) for c in cons]  # (K, n) each
    rhs = np.array([c.rhs for c in cons])
    warm = warm_prices is not None and np.any(np.asarray(warm_prices) > 0)
    prices = (
        np.maximum(np.asarray(warm_prices, dtype=np.float64), 0.0) if warm else np.zeros(len(cons))
    )
    if prices.shape != (len(cons),):
        raise ValueError(f"warm_prices has shape {prices.shape}, expected ({len(cons)},)")
    evals = 0
    if len(cons) == 1:
        guess = float(prices[0]) if warm else None
        if guess is None and n > 2 * _SUBSAMPLE:  # bracket the price on a random subsample first
            rng = np.random.default_rng(seed)
            sub = np.sort(rng.choice(n, size=_SUBSAMPLE, replace=False))
            guess, _, e = _bisect_price(
                np.ascontiguousarray(obj_t[:, sub]),
                np.ascontiguousarray(coef_t[0][:, sub]),
                rhs[0] * _SUBSAMPLE / n,
                0.0,
                rtol=1e-4,
            )
            evals += e
        lam, bound, e = _bisect_price(obj_t, coef_t[0], rhs[0], 0.0, rtol=rtol, lam_guess=guess)
        evals += e
        prices[0] = lam
        _, _, choice = best_response(obj_t, coef_t[0], lam, with_choice=True)
        return DualSolution(prices, bound, choice, evals + 1)  # type: ignore[arg-type]

    if not warm and n > 2 * _SUBSAMPLE:  # warm-start the prices on a random subsample
        rng = np.random.default_rng(seed)
        sub = np.sort(rng.choice(n, size=_SUBSAMPLE, replace=False))
        prices, _, e = _coordinate_descent(
            np.ascontiguousarray(obj_t[:, sub]),
            [np.ascontiguousarray(c[:, sub]) for c in coef_t],
            rhs * _SUBSAMPLE / n,
            prices,
            rtol=1e-4,
            max_sweeps=max_sweeps,
        )
        evals += e
    prices, bound, e = _coordinate_descent(
        obj_t, coef_t, rhs, prices, rtol=rtol, max_sweeps=max_sweeps
    )
    evals += e
    _, _, choice = _score(obj_t, coef_t, prices, with_choice=True)
    return DualSolution(prices, bound, choice, evals)  # type: ignore[arg-type]


def _coordinate_descent(
    obj_t: np.ndarray,
    coef_t: list[np.ndarray],
    rhs: np.ndarray,
    prices: np.ndarray,
    *,
    rtol: float,
    max_sweeps: int,
) -> tuple[np.ndarray, float, int]:
    """Exact line search on one price at a time, from ``prices``; returns (prices, bound, evals).

    Each coordinate step starts its bracket at the price it had before (a warm
    start), 1% wide in the first sweep and ``8 * rtol`` wide (widening as needed)
    in later ones, so sweeps after the first cost a few evaluations each.
    ``bound`` is the smallest dual value seen, a valid upper bound for this data.
    """
    prices = prices.copy()
    spread = np.full(len(coef_t), 0.01)  # relative bracket half-width per price
    evals = 0
    bound = np.inf
    for _ in range(max_sweeps):
        before = bound
        for j in range(len(coef_t)):
            base_t = obj_t.copy()
            for i in range(len(coef_t)):
                if i != j and prices[i] != 0.0:
                    base_t -= prices[i] * coef_t[i]
            const = float(prices @ rhs - prices[j] * rhs[j])
            lam, b, e = _bisect_price(
                base_t,
                coef_t[j],
                rhs[j],
                const,
                rtol=rtol,
                lam_guess=prices[j] or None,
                spread=spread[j],
            )
            evals += e
            prices[j] = lam
            if b < bound:
                bound = b
        spread[:] = 8.0 * rtol  # later sweeps move each price a little: bracket tightly
        s, _, _ = _score(obj_t, coef_t, prices)
        evals += 1
        lval = s + float(prices @ rhs)
        if lval < bound:
            bound = lval
        if before - bound <= 1e-7 * max(abs(bound), 1e-12):
            break
    return prices, bound, evals


def _score(
    obj_t: np.ndarray, coef_t: list[np.ndarray], prices: np.ndarray, *, with_choice: bool = False
) -> tuple[float, float, np.ndarray | None]:
    base_t = obj_t.copy()
    for p, a in zip(prices, coef_t, strict=True):
        if p != 0.0:
            base_t -= p * a
    return best_response(base_t, np.zeros_like(base_t), 0.0, with_choice=with_choice)
