"""The coupon MIP for the exact methods: variables, constraints and objective.

Both exact methods read the same column data from :func:`build_columns`: one
binary ``x[u, k]`` per (user, option) pair worth keeping.  Columns that can never
help (objective <= 0, no ROI benefit, user outside every coverage segment) are
left out.  The builders are pure functions of the problem; solving and reading
the solution live in :mod:`optimizers.coupons.solve`.

* :func:`build_highs_model` keeps the real (float) coefficients as a sparse
  column-wise matrix for HiGHS; with ``relax=True`` the columns are continuous
  (the LP relaxation).
* :func:`build_cpsat_model` needs integers: each constraint row is scaled by a
  power of two (so scaling itself is exact) that gives its smallest coefficient
  about ``resolution`` units, and rounded *conservatively* (coefficients up,
  limits down), so every plan it admits is feasible for the real data.  Rounding
  shrinks the feasible set, so CP-SAT's bound is a bound of the posed problem only
  when no row needed rounding (:attr:`CpSatModel.exact`); the objective is scaled
  the same way and rounded to nearest, and :attr:`CpSatModel.objective_slack`
  bounds what that rounding can hide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from optimizers.coupons.exact import exact_sum, round_down, round_up
from optimizers.coupons.problem import CouponProblem


@dataclass
class Columns:
    """The MIP in column form: one column per kept (user, option) pair."""

    n_users: int  # users (rows ``one_coupon[u]``); ``user`` indexes them
    user: np.ndarray  # (m,) user of each column, 0..n_users-1
    option: np.ndarray  # (m,) option of each column
    obj: np.ndarray  # (m,) objective coefficient
    coef: np.ndarray  # (C, m) coupling-constraint coefficients
    rhs: np.ndarray  # (C,) coupling-constraint limits (<=)
    names: list[str]
    # floats bracketing the exact coefficients where ``coef`` is rounded (see exact_brackets)
    coef_lo: np.ndarray | None = None  # (C, m)
    coef_hi: np.ndarray | None = None  # (C, m)

    @property
    def size(self) -> int:
        """Number of columns ``m``."""
        return int(self.user.size)

    def choice(self, n_users: int, x: np.ndarray) -> np.ndarray:
        """The plan (n,) of column values ``x`` (m,): option of each user, -1 = none."""
        choice = np.full(n_users, -1, dtype=np.int64)
        on = x > 0.5
        choice[self.user[on]] = self.option[on]
        return choice


def build_columns(
    problem: CouponProblem, users: np.ndarray | None = None, rhs: np.ndarray | None = None
) -> Columns:
    """Variables ``x[u, k]`` worth keeping and their coefficients.

    A column with objective <= 0 is left out unless it can help a floor: every
    option of a user in a coverage segment, and options with positive value when
    there is an ROI floor.  Budgets only grow with a column, so dropping the
    others loses no optimal plan (moving such a user to "no coupon" is as good).
    ``users`` (indices) restricts the model to those users, numbered 0.. in that
    order, with limits ``rhs`` (e.g. what the other users leave).
    """
    rows = np.arange(problem.n_users) if users is None else np.asarray(users)
    obj = problem.objective_matrix[rows]
    keep = obj > 0
    for c in problem.constraints:
        if c.kind == "coverage" and c.user_weight is not None:
            keep |= (c.user_weight[rows] < 0)[:, None]  # coverage users keep all options
        elif c.kind == "roi":
            keep |= problem.value[rows] > 0  # options that may raise the ROI slack
    user, option = np.nonzero(keep)
    coef = np.array([c.at(rows[user], option) for c in problem.constraints]).reshape(
        len(problem.constraints), user.size
    )
    limits = np.array([c.rhs for c in problem.constraints], dtype=np.float64)
    return Columns(
        n_users=int(rows.size),
        user=user,
        option=option,
        obj=obj[user, option],
        coef=coef,
        rhs=limits if rhs is None else np.asarray(rhs, dtype=np.float64),
        names=[c.name for c in problem.constraints],
    )


def exact_brackets(problem: CouponProblem, cols: Columns) -> Columns:
    """``cols`` (of the whole problem) with floats ``coef_lo <= exact coef <= coef_hi``.

    Budget and group rows are costs times 0 or 1: their floats are exact.  A row
    with a value term (the ROI floor, ``roi * cost - value``) rounds; its exact
    coefficients are computed as fractions and rounded down and up.
    """
    if cols.coef_lo is not None or not cols.size:
        return cols
    lo, hi = cols.coef.copy(), cols.coef.copy()
    for j, c in enumerate(problem.constraints):
        if not c.value_weight and np.isin(c.cost_weight, (0.0, 1.0)).all():
            continue
        for i, (u, k) in enumerate(zip(cols.user.tolist(), cols.option.tolist(), strict=True)):
            e = Fraction(float(c.cost_weight[k])) * Fraction(float(c.cost[u, k]))
            e += Fraction(c.value_weight) * Fraction(float(c.value[u, k]))
            if c.user_weight is not None:
                e += Fraction(float(c.user_weight[u]))
            lo[j, i], hi[j, i] = round_down(e), round_up(e)
    cols.coef_lo, cols.coef_hi = lo, hi
    return cols


@dataclass
class HighsModel:
    """The MIP (or LP) as HiGHS reads it: ``max obj @ x`` s.t. ``row_lower <= A x <= row_upper``."""

    obj: np.ndarray  # (m,) objective coefficient of each column
    matrix: sp.csc_matrix  # (n + C, m) rows: one coupon per user, then the coupling constraints
    row_lower: np.ndarray  # (n + C,)
    row_upper: np.ndarray  # (n + C,)
    integrality: np.ndarray  # (m,) 1 = integer column, 0 = continuous


def build_highs_model(cols: Columns, *, relax: bool = False, inf: float = math.inf) -> HighsModel:
    """Rows ``one_coupon[u]`` (``sum_k x[u, k] <= 1``) and the coupling constraints.

    ``inf`` is the solver's infinity (the free lower bound of every row).
    """
    # --- data
    n, m, c = cols.n_users, cols.size, len(cols.names)
    # --- variables: x[u, k] in [0, 1], integer unless relaxed
    integrality = np.full(m, 0 if relax else 1, dtype=np.int32)
    # --- constraints: rows 0..n-1 one_coupon[u], rows n.. budget, groups, coverage, roi_floor
    rows = [cols.user]
    vals = [np.ones(m)]
    col_idx = [np.arange(m)]
    for j in range(c):
        nz = np.nonzero(cols.coef[j])[0]
        rows.append(np.full(nz.size, n + j))
        vals.append(cols.coef[j, nz])
        col_idx.append(nz)
    a = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(col_idx))), shape=(n + c, m)
    )
    a.sort_indices()
    # --- objective: maximise sum obj[u, k] x[u, k]
    return HighsModel(
        obj=cols.obj.astype(np.float64),
        matrix=a,
        row_lower=np.full(n + c, -inf),
        row_upper=np.concatenate([np.ones(n), cols.rhs]),
        integrality=integrality,
    )


_INT_LIMIT = 2.0**61
"""Largest total a scaled row may reach: inside CP-SAT's int64 with room to spare."""


def _exact_exponent(values: np.ndarray) -> int:
    """Smallest ``p`` with every ``values * 2**p`` an integer (finite floats)."""
    nz = values[values != 0]
    if not nz.size:
        return 0
    mant, expo = np.frexp(np.abs(nz))
    q = (mant * 2.0**53).astype(np.int64)  # |x| = q * 2**(expo - 53)
    tz = np.log2((q & -q).astype(np.float64)).astype(np.int64)  # trailing zero bits of q
    return int((53 - expo - tz).max())


def _power_of_two_scale(values: np.ndarray, resolution: float, total: float) -> float:
    """``2**p`` giving the smallest nonzero ``|value|`` about ``resolution`` units, capped
    so that ``total * 2**p`` stays below :data:`_INT_LIMIT`."""
    nz = np.abs(values[values != 0])
    if not nz.size:
        return 1.0
    p = math.ceil(math.log2(resolution / float(nz.min())))
    cap = math.floor(math.log2(_INT_LIMIT / max(total, 1e-300)))
    return math.ldexp(1.0, min(p, cap))


def scaled_row(
    row: np.ndarray,
    rhs: float,
    resolution: float,
    *,
    outer: bool = False,
    row_hi: np.ndarray | None = None,
) -> tuple[np.ndarray, int, bool]:
    """(integer coefficients, integer limit, exact) of the row ``row . x <= rhs``.

    When a power of two makes every coefficient and the limit integers within
    :data:`_INT_LIMIT`, the integer row is the real one (``exact``).  Otherwise it
    is scaled to about ``resolution`` units and rounded: *inner* (default)
    coefficients up and the limit down, so it admits fewer plans than the real
    row (each one feasible); *outer* coefficients down and the limit up, so it
    admits more (a relaxation: its infeasibility and its bound hold for the real
    row).  ``row`` is a lower and ``row_hi`` an upper float bracket of the exact
    coefficients when they are not floats themselves (``None``: ``row`` is exact).
    """
    hi = row if row_hi is None else row_hi
    total = float(np.abs(hi).sum()) + abs(float(rhs))
    both = np.append(row, rhs)
    if row_hi is None or np.array_equal(row, row_hi):
        scale = math.ldexp(1.0, _exact_exponent(both))
        if total * scale <= _INT_LIMIT:
            return (row * scale).astype(np.int64), int(rhs * scale), True
    scale = _power_of_two_scale(both, resolution, total)
    if outer:
        return np.floor(row * scale).astype(np.int64), math.ceil(float(rhs) * scale), False
    return np.ceil(hi * scale).astype(np.int64), math.floor(float(rhs) * scale), False


@dataclass
class CpSatModel:
    """A built CP-SAT model, its variables and what its integer rounding means."""

    model: cp_model.CpModel
    x: list[cp_model.IntVar]  # (m,) one per column
    objective_scale: float  # integer objective units per objective unit (a power of two)
    objective_slack: Fraction  # sum over users of the largest obj * scale - round(obj * scale)
    exact: bool  # no constraint row was rounded: the model admits exactly the real plans
    outer: bool = False  # rows rounded outward: a relaxation of the real model


def build_cpsat_model(cols: Columns, *, resolution: float = 1e6, outer: bool = False) -> CpSatModel:
    """The integer-scaled MIP for CP-SAT; a pure function of the columns.

    Rows that no power of two makes integral are rounded inward (a restriction:
    every plan feasible) or, with ``outer``, outward (a relaxation: a proof of
    infeasibility and a bound of the posed problem); see :func:`scaled_row`.
    """
    model = cp_model.CpModel()
    # --- variables: x[u, k] = 1 if user u gets option k
    x = [model.new_bool_var(f"x[{u},{k}]") for u, k in zip(cols.user, cols.option, strict=True)]
    # --- constraints: one_coupon[u] (at most one option per user)
    order = np.argsort(cols.user, kind="stable")
    bounds = np.flatnonzero(np.diff(cols.user[order])) + 1
    for group in np.split(order, bounds):
        if group.size > 1:
            model.add_at_most_one(x[i] for i in group)
    # coupling constraints: the budget, budget groups, min_coverage[...], roi_floor
    exact = True
    for j, name in enumerate(cols.names):
        lo = cols.coef[j] if cols.coef_lo is None else cols.coef_lo[j]
        hi = None if cols.coef_hi is None else cols.coef_hi[j]
        ints, limit, row_exact = scaled_row(
            lo, float(cols.rhs[j]), resolution, outer=outer, row_hi=hi
        )
        exact &= row_exact
        nz = np.flatnonzero(ints)
        expr = cp_model.LinearExpr.weighted_sum([x[i] for i in nz], ints[nz].tolist())
        model.add(expr <= limit).with_name(name)
    # --- objective: integer-scaled value, rounded to nearest
    scale = _power_of_two_scale(cols.obj, 1e3 * resolution, float(np.abs(cols.obj).sum()))
    scaled = cols.obj * scale
    rounded = np.rint(scaled)
    worst = np.zeros(int(cols.user.max()) + 1 if cols.size else 0)
    np.maximum.at(worst, cols.user, scaled - rounded)  # per user: what rounding may hide
    model.maximize(cp_model.LinearExpr.weighted_sum(x, rounded.astype(np.int64).tolist()))
    return CpSatModel(model, x, scale, exact_sum(worst), exact, outer and not exact)
