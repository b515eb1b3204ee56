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

from optimizers.coupons.exact import exact_sum
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


_INT_LIMIT = 2.0**53
"""Largest total a scaled row may reach: exact in float64 and far inside CP-SAT's int64."""


def _power_of_two_scale(values: np.ndarray, resolution: float, total: float) -> float:
    """``2**p`` giving the smallest nonzero ``|value|`` about ``resolution`` units, capped
    so that ``total * 2**p`` stays below :data:`_INT_LIMIT`."""
    nz = np.abs(values[values != 0])
    if not nz.size:
        return 1.0
    p = math.ceil(math.log2(resolution / float(nz.min())))
    cap = math.floor(math.log2(_INT_LIMIT / max(total, 1e-300)))
    return math.ldexp(1.0, min(p, cap))


def scaled_row(row: np.ndarray, rhs: float, resolution: float) -> tuple[np.ndarray, int, bool]:
    """(integer coefficients, integer limit, exact): ``row`` scaled by a power of two, rounded up,
    ``rhs`` scaled and rounded down.  ``exact`` when no rounding happened, i.e. the integer
    row admits exactly the plans the real row admits; otherwise it admits fewer."""
    integral = bool(np.all(row == np.round(row))) and float(rhs) == round(rhs)
    total = float(np.abs(row).sum()) + abs(float(rhs))
    if integral and total < _INT_LIMIT:
        scale = 1.0
    else:
        scale = _power_of_two_scale(np.append(row, rhs), resolution, total)
    scaled = row * scale  # exact: a power-of-two scale (barring underflow, checked below)
    ints = np.ceil(scaled)
    limit = math.floor(float(rhs) * scale)
    exact = bool(np.all(ints == scaled) and np.all(scaled / scale == row)) and limit == rhs * scale
    return ints.astype(np.int64), limit, exact


@dataclass
class CpSatModel:
    """A built CP-SAT model, its variables and what its integer rounding means."""

    model: cp_model.CpModel
    x: list[cp_model.IntVar]  # (m,) one per column
    objective_scale: float  # integer objective units per objective unit (a power of two)
    objective_slack: Fraction  # sum over users of the largest obj * scale - round(obj * scale)
    exact: bool  # no constraint row was rounded: the model admits exactly the real plans


def build_cpsat_model(cols: Columns, *, resolution: float = 1e6) -> CpSatModel:
    """The integer-scaled MIP for CP-SAT; a pure function of the columns."""
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
        ints, limit, row_exact = scaled_row(cols.coef[j], float(cols.rhs[j]), resolution)
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
    return CpSatModel(model, x, scale, exact_sum(worst), exact)
