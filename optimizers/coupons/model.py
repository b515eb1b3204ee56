"""The coupon MIP for the exact methods: variables, constraints and objective.

Both exact methods read the same column data from :func:`build_columns`: one
binary ``x[u, k]`` per (user, option) pair worth keeping.  Columns that can never
help (objective <= 0, no ROI benefit, user outside every coverage segment) are
left out.  The builders are pure functions of the problem; solving and reading
the solution live in :mod:`optimizers.coupons.solve`.

* :func:`build_highs_model` keeps the real (float) coefficients as a sparse
  column-wise matrix for HiGHS; with ``relax=True`` the columns are continuous
  (the LP relaxation).
* :func:`build_cpsat_model` needs integers: each constraint row is scaled so its
  largest coefficient is ~``resolution`` and rounded *conservatively*
  (coefficients up, limits down), so every plan it admits is feasible for the
  real data; the objective is rounded to nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from optimizers.coupons.problem import CouponProblem


@dataclass
class Columns:
    """The MIP in column form: one column per kept (user, option) pair."""

    user: np.ndarray  # (m,) user of each column
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


def build_columns(problem: CouponProblem) -> Columns:
    """Variables ``x[u, k]`` worth keeping and their coefficients."""
    obj = problem.objective_matrix
    keep = obj > 0
    for c in problem.constraints:
        if c.kind == "coverage":
            keep |= (c.coef < 0).any(axis=1, keepdims=True)  # coverage users keep all options
        elif c.kind == "roi":
            keep |= c.coef < 0  # options that raise the ROI slack
    user, option = np.nonzero(keep)
    coef = np.array([c.coef[user, option] for c in problem.constraints]).reshape(
        len(problem.constraints), user.size
    )
    return Columns(
        user=user,
        option=option,
        obj=obj[user, option],
        coef=coef,
        rhs=np.array([c.rhs for c in problem.constraints], dtype=np.float64),
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


def build_highs_model(
    problem: CouponProblem, cols: Columns, *, relax: bool = False, inf: float = math.inf
) -> HighsModel:
    """Rows ``one_coupon[u]`` (``sum_k x[u, k] <= 1``) and the coupling constraints.

    ``inf`` is the solver's infinity (the free lower bound of every row).
    """
    # --- data
    n, m, c = problem.n_users, cols.size, len(cols.names)
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


def scaled_row(row: np.ndarray, rhs: float, resolution: float) -> tuple[list[int], int]:
    """Integer row with ``coef`` rounded up and ``rhs`` down (a conservative restriction)."""
    top = float(np.abs(row).max()) if row.size else 0.0
    if top == 0.0:
        return [0] * row.size, math.floor(rhs) if rhs < 0 else 0
    integral = np.all(row == np.round(row)) and float(rhs) == round(rhs)
    s = 1.0 if integral and top <= resolution else resolution / top
    return np.ceil(row * s - 1e-9).astype(np.int64).tolist(), math.floor(rhs * s + 1e-9)


@dataclass
class CpSatModel:
    """A built CP-SAT model, its variables and the objective's integer scale."""

    model: cp_model.CpModel
    x: list[cp_model.IntVar]  # (m,) one per column
    objective_scale: float  # integer objective units per objective unit


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
    for j, name in enumerate(cols.names):
        ints, limit = scaled_row(cols.coef[j], float(cols.rhs[j]), resolution)
        nz = [i for i, ci in enumerate(ints) if ci != 0]
        expr = cp_model.LinearExpr.weighted_sum([x[i] for i in nz], [ints[i] for i in nz])
        model.add(expr <= limit).with_name(name)
    # --- objective: integer-scaled value
    top = float(np.abs(cols.obj).max()) if cols.size else 1.0
    scale = resolution / top if top > 0 else 1.0
    model.maximize(
        cp_model.LinearExpr.weighted_sum(x, np.rint(cols.obj * scale).astype(int).tolist())
    )
    return CpSatModel(model=model, x=x, objective_scale=scale)
