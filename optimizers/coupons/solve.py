"""Solving coupon problems: method dispatch, the exact solvers, and :func:`allocate`.

:func:`solve` takes a validated :class:`~optimizers.coupons.problem.CouponProblem`
and a method; :func:`allocate` builds the problem from arrays and solves it.

* ``'highs'``: the MIP of :mod:`optimizers.coupons.model` with HiGHS (via highspy);
  its MIP dual bound is the upper bound.  ``relax=True`` (:func:`solve_highs`)
  solves the LP relaxation instead and returns the row duals of the coupling
  constraints (the LP bound, also what the Lagrangian bound equals with one budget).
* ``'cpsat'``: the integer-scaled MIP with OR-Tools CP-SAT; rows are rounded
  conservatively, so its plans are feasible for the real data, and the bound
  reported is CP-SAT's bound plus the worst-case objective rounding error.
* ``'lagrangian'``: :mod:`optimizers.coupons.lagrangian` prices every coupling
  constraint, then :mod:`optimizers.coupons.repair` makes the plan feasible and
  spends the leftover slack.
* ``'auto'``: exact HiGHS up to :data:`AUTO_EXACT_MAX_VARS` (user, option) pairs,
  the Lagrangian method above (falling back to HiGHS if its repair fails).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
from ortools.sat.python import cp_model

from optimizers.certificate import InfeasibleError
from optimizers.coupons import lagrangian
from optimizers.coupons.model import Columns, build_columns, build_cpsat_model, build_highs_model
from optimizers.coupons.problem import CouponProblem
from optimizers.coupons.repair import MoveTable, fill, repair
from optimizers.coupons.result import CouponAllocation
from optimizers.cpsat import cpsat_solver

Method = Literal["auto", "lagrangian", "cpsat", "highs"]
METHODS: tuple[str, ...] = ("auto", "lagrangian", "cpsat", "highs")
AUTO_EXACT_MAX_VARS = 12_000
"""``method='auto'`` uses the exact HiGHS MIP up to this many (user, option) pairs."""


class RepairFailedError(RuntimeError):
    """The Lagrangian repair could not meet every constraint (not a proof of infeasibility)."""


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


def _run_highs(
    problem: CouponProblem,
    cols: Columns,
    *,
    relax: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    threads: int | None,
) -> highspy.Highs:
    """Pass the model of ``cols`` to a fresh HiGHS instance and run it."""
    lp = build_highs_model(problem, cols, relax=relax, inf=highspy.kHighsInf)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    a = lp.matrix
    h.passModel(
        cols.size,
        a.shape[0],
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise.value),
        int(highspy.ObjSense.kMaximize.value),
        0.0,
        lp.obj,
        np.zeros(cols.size),
        np.ones(cols.size),
        lp.row_lower,
        lp.row_upper,
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        lp.integrality,
    )
    h.run()
    return h


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
    if cols.size == 0:
        return _empty(problem, t0)
    h = _run_highs(
        problem,
        cols,
        relax=relax,
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap,
        threads=threads,
    )
    model_status = h.getModelStatus()
    info = h.getInfo()
    elapsed = time.perf_counter() - t0
    if model_status == highspy.HighsModelStatus.kInfeasible:
        raise InfeasibleError(
            f"HiGHS proved the constraints {cols.names} admit no plan "
            "(check budgets against coverage floors and the ROI floor)"
        )
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        raise RuntimeError(
            f"HiGHS found no plan (status {h.modelStatusToString(model_status)}, "
            f"time_limit_s={time_limit_s})"
        )
    # read the solution
    sol = h.getSolution()
    choice = cols.choice(problem.n_users, np.asarray(sol.col_value))
    optimal = model_status == highspy.HighsModelStatus.kOptimal
    status = "optimal" if optimal else "feasible"
    if relax:
        duals = np.asarray(sol.row_dual)[problem.n_users :]
        dual = {name: float(abs(d)) for name, d in zip(cols.names, duals, strict=True)}
        return ExactSolution(choice, status, float(info.objective_function_value), dual, elapsed)
    msg = "" if optimal else f"stopped: {h.modelStatusToString(model_status)}"
    return ExactSolution(choice, status, float(info.mip_dual_bound), {}, elapsed, msg)


def solve_cpsat(
    problem: CouponProblem,
    *,
    time_limit_s: float = 60.0,
    rel_gap: float = 1e-4,
    num_workers: int = 2,
    seed: int = 0,
    resolution: float = 1e6,
) -> ExactSolution:
    """Solve the integer-scaled MIP with OR-Tools CP-SAT."""
    t0 = time.perf_counter()
    cols = build_columns(problem)
    if cols.size == 0:
        return _empty(problem, t0)
    built = build_cpsat_model(cols, resolution=resolution)
    solver = cpsat_solver(time_limit_s=time_limit_s, num_workers=num_workers, seed=seed)
    solver.parameters.relative_gap_limit = float(rel_gap)
    code = solver.solve(built.model)
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
    vals = np.array([solver.value(v) for v in built.x], dtype=np.float64)
    n_users = np.unique(cols.user).size
    s_obj = built.objective_scale
    bound = solver.best_objective_bound / s_obj + 0.5 * n_users / s_obj
    return ExactSolution(
        cols.choice(problem.n_users, vals),
        "optimal" if code == cp_model.OPTIMAL else "feasible",
        float(bound),
        {},
        elapsed,
        "" if code == cp_model.OPTIMAL else "stopped at time limit",
    )


def solve(
    problem: CouponProblem,
    method: Method = "auto",
    *,
    time_limit_s: float = 60.0,
    rel_gap: float = 1e-4,
    seed: int = 0,
    warm_start: Mapping[str, float] | None = None,
) -> CouponAllocation:
    """Solve a validated :class:`CouponProblem` with the chosen method.

    ``warm_start``: constraint name -> price, e.g. the ``dual`` of a solve at a
    nearby budget; the Lagrangian method starts its price search there (the exact
    methods ignore it).  The certificate is computed for this problem either way.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        size = problem.n_users * problem.n_options
        if size <= AUTO_EXACT_MAX_VARS:
            return solve(problem, "highs", time_limit_s=time_limit_s, rel_gap=rel_gap)
        try:
            return solve(problem, "lagrangian", seed=seed, warm_start=warm_start)
        except RepairFailedError:
            return solve(problem, "highs", time_limit_s=time_limit_s, rel_gap=rel_gap)
    t0 = time.perf_counter()
    if method == "lagrangian":
        return _solve_lagrangian(problem, seed=seed, t0=t0, warm_start=warm_start)
    if method == "highs":
        sol = solve_highs(problem, time_limit_s=time_limit_s, mip_rel_gap=rel_gap)
    else:
        sol = solve_cpsat(problem, time_limit_s=time_limit_s, rel_gap=rel_gap, seed=seed)
    choice = sol.choice
    if problem.violations(choice):  # solver tolerances: restore strict feasibility
        choice, viol = repair(problem, choice)
        if viol:
            raise RuntimeError(f"{method} plan breaks {viol} beyond repair")
    return CouponAllocation.from_choice(
        problem,
        choice,
        upper_bound=sol.bound,
        status=sol.status,
        method=method,
        solve_time_s=time.perf_counter() - t0,
        dual=sol.dual,
        message=sol.message,
    )


def _solve_lagrangian(
    problem: CouponProblem,
    *,
    seed: int,
    t0: float,
    warm_start: Mapping[str, float] | None = None,
) -> CouponAllocation:
    warm = None
    if warm_start:
        warm = np.array([float(warm_start.get(c.name, 0.0)) for c in problem.constraints])
    dual = lagrangian.solve_dual(problem, seed=seed, warm_prices=warm)
    table = MoveTable(problem)
    choice = dual.choice
    if problem.violations(choice):
        choice, viol = repair(problem, choice, dual.prices, table=table)
        if viol:
            raise RepairFailedError(
                f"the Lagrangian repair could not satisfy {sorted(viol)} (excess {viol}); "
                "the constraints may conflict: try method='highs' for a proof"
            )
    choice = fill(problem, choice, table=table)
    prices = {c.name: float(p) for c, p in zip(problem.constraints, dual.prices, strict=True)}
    result = CouponAllocation.from_choice(
        problem,
        choice,
        upper_bound=dual.bound,
        status="feasible",
        method="lagrangian",
        solve_time_s=time.perf_counter() - t0,
        dual=prices,
    )
    if result.gap <= 1e-9:
        result.status = "optimal"
    return result


def allocate(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    method: Method = "auto",
    value2: np.ndarray | None = None,
    weight: float = 0.0,
    option_types: Sequence[str] | None = None,
    merchant_ids: Sequence[int | None] | None = None,
    global_options: Sequence[bool] | np.ndarray | None = None,
    budget_groups: Mapping[str, tuple[Sequence[int], float]] | None = None,
    type_budgets: Mapping[str, float] | None = None,
    merchant_budgets: Mapping[int, float] | None = None,
    segments: Sequence[object] | np.ndarray | None = None,
    min_coverage: Mapping[str, float] | None = None,
    roi_floor: float | None = None,
    budget_name: str = "budget",
    time_limit_s: float = 60.0,
    rel_gap: float = 1e-4,
    seed: int = 0,
    warm_start: Mapping[str, float] | None = None,
) -> CouponAllocation:
    """Choose at most one coupon option per user to maximise value within budgets.

    See :class:`~optimizers.coupons.problem.CouponProblem` for every argument's
    meaning and the maths, and :func:`solve` for the methods.  ``warm_start``
    (constraint name -> price, e.g. a previous allocation's ``dual``) starts the
    Lagrangian's price search near the answer when re-solving at another budget
    or weight.  Raises ``ValueError`` for bad input and
    :class:`~optimizers.certificate.InfeasibleError` (naming the conflicting
    constraints) when no plan exists.
    """
    problem = CouponProblem(
        value=value,
        cost=cost,
        budget=budget,
        value2=value2,
        weight=weight,
        option_types=option_types,
        merchant_ids=merchant_ids,
        global_options=global_options,
        budget_groups=budget_groups,
        type_budgets=type_budgets,
        merchant_budgets=merchant_budgets,
        segments=segments,
        min_coverage=min_coverage,
        roi_floor=roi_floor,
        budget_name=budget_name,
    )
    return solve(
        problem,
        method,
        time_limit_s=time_limit_s,
        rel_gap=rel_gap,
        seed=seed,
        warm_start=warm_start,
    )
