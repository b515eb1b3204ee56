"""Exact MIP methods for small coupon problems: HiGHS (via highspy) and OR-Tools CP-SAT.

Both read the same column data from :func:`build_columns` (data -> variables ->
constraints -> objective), then solve and read the solution only after checking
the status.  Columns ``x[u, k]`` that can never help (objective <= 0, no ROI
benefit, user outside every coverage segment) are left out.

* HiGHS works on the real (float) coefficients; its MIP dual bound is the upper
  bound.  ``relax=True`` solves the LP relaxation instead and returns the row
  duals of the coupling constraints (the LP bound, also what the Lagrangian
  bound equals with one budget).
* CP-SAT needs integers: each constraint row is scaled so its largest
  coefficient is ~1e6 and rounded *conservatively* (coefficients up, limits
  down), so every plan it returns is feasible for the real data; the objective
  is rounded to nearest, and the bound reported is CP-SAT's bound plus the
  worst-case objective rounding error.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from optimizers.certificate import InfeasibleError
from optimizers.coupons.problem import CouponProblem

_INF = highspy.kHighsInf


@dataclass
class Columns:
    """The MIP in column form: one column per kept (user, option) pair."""

    user: np.ndarray  # (m,) user of each column
    option: np.ndarray  # (m,) option of each column
    obj: np.ndarray  # (m,) objective coefficient
    coef: np.ndarray  # (C, m) coupling-constraint coefficients
    rhs: np.ndarray  # (C,) coupling-constraint limits (<=)
    names: list[str]


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


def _choice_from(problem: CouponProblem, cols: Columns, x: np.ndarray) -> np.ndarray:
    choice = np.full(problem.n_users, -1, dtype=np.int64)
    on = x > 0.5
    choice[cols.user[on]] = cols.option[on]
    return choice


@dataclass
class ExactSolution:
    """Raw outcome of an exact solve, before it is wrapped as an allocation."""

    choice: np.ndarray
    status: str
    bound: float
    dual: dict[str, float]
    time_s: float
    message: str = ""


def _empty(problem: CouponProblem, t0: float) -> ExactSolution:
    """No column can help (every option loses value): "no coupon" for all is optimal."""
    choice = np.full(problem.n_users, -1, dtype=np.int64)
    return ExactSolution(choice, "optimal", 0.0, {}, time.perf_counter() - t0, "no useful option")


def solve_highs(
    problem: CouponProblem,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-4,
    relax: bool = False,
    threads: int | None = None,
) -> ExactSolution:
    """Solve the MIP (or its LP relaxation with ``relax=True``) with HiGHS.

    ``threads`` is left to HiGHS by default: HiGHS fixes its thread pool the first
    time any solve in the process runs (Pyomo's included), and a later request
    for a different count makes ``run()`` fail without a status.

    For ``relax=True`` the returned ``choice`` rounds the fractional LP plan down
    (each user keeps an option only if ``x >= 0.5``); use the ``bound`` and
    ``dual`` of that result, not its plan.
    """
    t0 = time.perf_counter()
    cols = build_columns(problem)
    n, m, c = problem.n_users, cols.user.size, len(cols.names)
    if m == 0:
        return _empty(problem, t0)
    # data -> variables x[u, k] in [0, 1] (integer unless relaxed)
    # constraints: rows 0..n-1 "one coupon per user", rows n.. the coupling constraints
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
    row_lower = np.full(n + c, -_INF)
    row_upper = np.concatenate([np.ones(n), cols.rhs])
    integrality = np.full(m, 0 if relax else 1, dtype=np.int32)

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    h.passModel(
        m,
        n + c,
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise.value),
        int(highspy.ObjSense.kMaximize.value),
        0.0,
        cols.obj.astype(np.float64),
        np.zeros(m),
        np.ones(m),
        row_lower,
        row_upper,
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        integrality,
    )
    # solve
    h.run()
    model_status = h.getModelStatus()
    info = h.getInfo()
    elapsed = time.perf_counter() - t0
    if model_status == highspy.HighsModelStatus.kInfeasible:
        raise InfeasibleError(
            f"HiGHS proved the constraints {cols.names} admit no plan "
            "(check budgets against coverage floors and the ROI floor)"
        )
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if not has_solution:
        raise RuntimeError(
            f"HiGHS found no plan (status {h.modelStatusToString(model_status)}, "
            f"time_limit_s={time_limit_s})"
        )
    # read the solution
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    if relax:
        bound = float(info.objective_function_value)
        duals = np.asarray(sol.row_dual)[n:]
        dual = {name: float(abs(d)) for name, d in zip(cols.names, duals, strict=True)}
        status = "optimal" if model_status == highspy.HighsModelStatus.kOptimal else "feasible"
        return ExactSolution(_choice_from(problem, cols, x), status, bound, dual, elapsed)
    bound = float(info.mip_dual_bound)
    optimal = model_status == highspy.HighsModelStatus.kOptimal
    msg = "" if optimal else f"stopped: {h.modelStatusToString(model_status)}"
    return ExactSolution(
        _choice_from(problem, cols, x),
        "optimal" if optimal else "feasible",
        bound,
        {},
        elapsed,
        msg,
    )


def _scaled(row: np.ndarray, rhs: float, resolution: float) -> tuple[list[int], int]:
    """Integer row with ``coef`` rounded up and ``rhs`` down (a conservative restriction)."""
    top = float(np.abs(row).max()) if row.size else 0.0
    if top == 0.0:
        return [0] * row.size, math.floor(rhs) if rhs < 0 else 0
    integral = np.all(row == np.round(row)) and float(rhs) == round(rhs)
    s = 1.0 if integral and top <= resolution else resolution / top
    return np.ceil(row * s - 1e-9).astype(np.int64).tolist(), math.floor(rhs * s + 1e-9)


def solve_cpsat(
    problem: CouponProblem,
    *,
    time_limit_s: float = 60.0,
    rel_gap: float = 1e-4,
    workers: int = 2,
    seed: int = 0,
    resolution: float = 1e6,
) -> ExactSolution:
    """Solve the integer-scaled MIP with OR-Tools CP-SAT."""
    t0 = time.perf_counter()
    cols = build_columns(problem)
    m = cols.user.size
    if m == 0:
        return _empty(problem, t0)
    model = cp_model.CpModel()
    # variables: x[u, k] = 1 if user u gets option k
    x = [model.new_bool_var(f"x[{u},{k}]") for u, k in zip(cols.user, cols.option, strict=True)]
    # constraints: at most one coupon per user
    order = np.argsort(cols.user, kind="stable")
    bounds = np.flatnonzero(np.diff(cols.user[order])) + 1
    for group in np.split(order, bounds):
        if group.size > 1:
            model.add_at_most_one(x[i] for i in group)
    # coupling constraints: budget, budget_group[...], min_coverage[...], roi_floor
    for j, name in enumerate(cols.names):
        ints, limit = _scaled(cols.coef[j], float(cols.rhs[j]), resolution)
        nz = [i for i, ci in enumerate(ints) if ci != 0]
        expr = cp_model.LinearExpr.weighted_sum([x[i] for i in nz], [ints[i] for i in nz])
        model.add(expr <= limit).with_name(name)
    # objective: integer-scaled value
    top = float(np.abs(cols.obj).max()) if m else 1.0
    s_obj = resolution / top if top > 0 else 1.0
    model.maximize(
        cp_model.LinearExpr.weighted_sum(x, np.rint(cols.obj * s_obj).astype(int).tolist())
    )
    # solve
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.relative_gap_limit = float(rel_gap)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    code = solver.solve(model)
    elapsed = time.perf_counter() - t0
    if code == cp_model.INFEASIBLE:
        raise InfeasibleError(
            f"CP-SAT proved the constraints {cols.names} admit no plan "
            "(after conservative integer rounding of costs)"
        )
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise RuntimeError(
            f"CP-SAT found no plan (status {solver.status_name(code)}, time_limit_s={time_limit_s})"
        )
    # read the solution
    vals = np.array([solver.value(v) for v in x], dtype=np.float64) if m else np.zeros(0)
    n_users = np.unique(cols.user).size
    bound = solver.best_objective_bound / s_obj + 0.5 * n_users / s_obj
    return ExactSolution(
        _choice_from(problem, cols, vals),
        "optimal" if code == cp_model.OPTIMAL else "feasible",
        float(bound),
        {},
        elapsed,
        "" if code == cp_model.OPTIMAL else "stopped at time limit",
    )
