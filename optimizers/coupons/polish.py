"""An exact LP over the users that the Lagrangian prices leave undecided.

At near-optimal prices most users have one clearly best option; only the users
whose best and second-best reduced scores are close
(:meth:`~optimizers.coupons.dual.Relaxation.margins`) could change their choice
when the prices move a little.  :func:`polish` keeps every other user at its best
response, and solves the LP relaxation of the problem restricted to the (at most
``max_users``) most undecided users, with the limits the others leave, exactly
with HiGHS.  This gives

* a balanced plan for the undecided users: a basic LP solution has at most as
  many fractional users as there are coupling constraints, and those are
  rounded down to "no coupon" (repair and fill restore what that breaks or
  frees), where the best response alone can miss a budget by many users when
  the dual is flat;
* the restricted LP's row duals: prices that are optimal for the whole problem
  when the fixed users would not change their choice at them, so their
  Lagrangian bound can be tighter than the search's.

With at most ``max_users`` users the LP is the whole problem's LP relaxation.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
from ortools.sat.python import cp_model

from optimizers.coupons.dual import Relaxation
from optimizers.coupons.highs import run_highs
from optimizers.coupons.model import build_columns, build_cpsat_model
from optimizers.coupons.problem import CouponProblem
from optimizers.cpsat import cpsat_solver

POLISH_USERS = 1_500
"""Most undecided users in the restricted LP of :func:`polish`."""
POLISH_MIP_USERS = 50
"""Users with the smallest margins (besides the LP's fractional ones) in the restricted MIP."""
POLISH_MIP_WORK = 0.2
"""CP-SAT's deterministic time limit for the restricted MIP (a fixed amount of work)."""


@dataclass
class Polished:
    """A plan, the users the LP decided (where repair and fill look), and the LP's prices."""

    choice: np.ndarray  # (n,) -1 = none
    users: np.ndarray | None  # sorted indices of the undecided users; None when the LP failed
    prices: np.ndarray | None  # (C,) the restricted LP's duals; None when it was not solved
    few: np.ndarray | None = None  # the LP's fractional users and the smallest margins


def polish(
    problem: CouponProblem,
    relax: Relaxation,
    prices: np.ndarray,
    *,
    max_users: int = POLISH_USERS,
    time_limit_s: float = 30.0,
) -> Polished:
    """The best response at ``prices`` with its most undecided users re-decided by an exact LP.

    The LP is over the ``max_users`` most undecided users; its fractional users
    are rounded down to "no coupon" and returned in ``few`` with the
    :data:`POLISH_MIP_USERS` users of smallest margins, for :func:`improve`.
    """
    choice, undecided, margin = relax.margins(prices)
    users = _smallest(undecided, max_users)
    fixed, cols = _fix_others(problem, relax, choice, users)
    h = run_highs(cols, relax=True, time_limit_s=time_limit_s) if cols.size else None
    if h is None or h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return Polished(choice, None, None)  # the other users alone break a limit
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    whole = x >= 1.0 - 1e-9
    fixed[users[cols.user[whole]]] = cols.option[whole]
    duals = np.abs(np.asarray(sol.row_dual)[cols.n_users :])
    fractional = users[cols.user[(x > 1e-9) & ~whole]]
    few = np.unique(np.r_[fractional, _smallest(margin, POLISH_MIP_USERS)])
    return Polished(fixed, users, duals, few)


def _smallest(x: np.ndarray, count: int) -> np.ndarray:
    """Sorted indices of the ``count`` smallest entries of ``x`` (ties by index)."""
    if count >= x.size:
        return np.arange(x.size)
    cut = np.partition(x, count - 1)[count - 1]
    below = np.flatnonzero(x < cut)
    at = np.flatnonzero(x == cut)[: count - below.size]
    return np.sort(np.r_[below, at])


def _fix_others(problem: CouponProblem, relax: Relaxation, choice: np.ndarray, users: np.ndarray):
    """(``choice`` with ``users`` at "no coupon", the columns of ``users`` with the limits left)."""
    fixed = choice.copy()
    fixed[users] = -1
    left = relax.rhs - relax.usage(fixed)  # limits left to these users (float)
    return fixed, build_columns(problem, users, left)


def improve(
    problem: CouponProblem,
    relax: Relaxation,
    plan: np.ndarray,
    users: np.ndarray,
    *,
    seed: int = 0,
    time_limit_s: float = 30.0,
) -> np.ndarray:
    """``plan`` with ``users`` re-decided by CP-SAT on their MIP (one worker, a fixed amount
    of deterministic work, started from ``plan``); ``plan`` itself unless that is better.

    The limits are floats (what the other users leave): the caller repairs the result.
    """
    fixed, cols = _fix_others(problem, relax, plan, users)
    if cols.size == 0:
        return plan
    built = build_cpsat_model(cols)
    for var, on in zip(built.x, plan[users[cols.user]] == cols.option, strict=True):
        built.model.add_hint(var, bool(on))
    solver = cpsat_solver(time_limit_s=time_limit_s, num_workers=1, seed=seed)
    solver.parameters.max_deterministic_time = POLISH_MIP_WORK
    if solver.solve(built.model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return plan
    on = np.array([solver.value(v) for v in built.x], dtype=bool)
    fixed[users[cols.user[on]]] = cols.option[on]
    obj = problem.objective_matrix
    better = problem.gather(obj, fixed)[users].sum() > problem.gather(obj, plan)[users].sum()
    return fixed if better else plan
