"""Solving coupon problems: method dispatch, the exact solvers, and :func:`allocate`.

:func:`solve` takes a validated :class:`~optimizers.coupons.problem.CouponProblem`
and a method; :func:`allocate` builds the problem from arrays and solves it.
Every plan returned satisfies every constraint in exact arithmetic (checked by
:class:`~optimizers.coupons.result.CouponAllocation`), and every bound is a bound
of the problem as posed.

* ``'highs'``: the MIP of :mod:`optimizers.coupons.model` with HiGHS (via highspy);
  its MIP dual bound (HiGHS's, in floating point within its tolerances) is the
  upper bound, unless the certified Lagrangian bound is smaller.  ``relax=True``
  (:func:`solve_highs`) solves the LP relaxation instead and returns the row
  duals of the coupling constraints.
* ``'cpsat'``: the integer-scaled MIP with OR-Tools CP-SAT.  Rows are rounded
  conservatively, so its plans are feasible for the real data; rounding shrinks
  the feasible set, so CP-SAT's own bound counts only when no row was rounded.
  The bound reported is the smaller of that and the certified Lagrangian bound
  of the unrounded problem.
* ``'lagrangian'``: :mod:`optimizers.coupons.lagrangian` prices every coupling
  constraint (bisection for one, box-stabilised cutting planes for several);
  :mod:`optimizers.coupons.repair` makes the plan feasible and spends the
  leftover slack; the bound is the certified dual value.
* ``'auto'``: the Lagrangian method; when its certified gap is above ``rel_gap``
  and the instance has at most :data:`AUTO_EXACT_MAX_VARS` (user, option) pairs,
  also the exact HiGHS MIP, keeping the better plan and the smaller bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import highspy
import numpy as np
from ortools.sat.python import cp_model

from optimizers.certificate import InfeasibleError
from optimizers.coupons import lagrangian
from optimizers.coupons.dual import Relaxation
from optimizers.coupons.exact import exact_sum, round_up
from optimizers.coupons.highs import run_highs
from optimizers.coupons.model import build_columns, build_cpsat_model, exact_brackets
from optimizers.coupons.polish import improve, polish
from optimizers.coupons.problem import CouponProblem
from optimizers.coupons.repair import MoveTable, fill, repair
from optimizers.coupons.result import CouponAllocation
from optimizers.cpsat import cpsat_solver

Method = Literal["auto", "lagrangian", "cpsat", "highs"]
METHODS: tuple[str, ...] = ("auto", "lagrangian", "cpsat", "highs")
AUTO_EXACT_MAX_VARS = 12_000
"""``method='auto'`` tries the exact HiGHS MIP (when the Lagrangian gap misses ``rel_gap``)
up to this many (user, option) pairs."""


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
    h = run_highs(
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
    """Solve the integer-scaled MIP with OR-Tools CP-SAT.

    When every row scales exactly to integers, CP-SAT solves the posed problem:
    its infeasibility is a proof and its bound (plus what the objective's
    rounding may hide) a bound.  Otherwise the inner model (rows rounded inward)
    gives feasible plans but no bound; when it is infeasible the outer model (a
    relaxation) decides: infeasible is then a proof, else its plan (which
    :func:`solve` repairs to exact feasibility) and its bound stand.
    """
    t0 = time.perf_counter()
    cols = build_columns(problem)
    if cols.size == 0:
        return _empty(problem, t0)
    cols = exact_brackets(problem, cols)
    built = build_cpsat_model(cols, resolution=resolution)
    solver, code = _run_cpsat(built, time_limit_s, rel_gap, num_workers, seed)
    note = ""
    if not built.exact and code == cp_model.INFEASIBLE:  # maybe only the rounding's fault
        built = build_cpsat_model(cols, resolution=resolution, outer=True)
        solver, code = _run_cpsat(built, time_limit_s, rel_gap, num_workers, seed)
        note = "the plan of the outer (relaxed) integer rows, repaired"
        if code == cp_model.INFEASIBLE:
            raise InfeasibleError(
                f"CP-SAT proved the constraints {cols.names} admit no plan "
                "(even with every row rounded outward)"
            )
    elif code == cp_model.INFEASIBLE:
        raise InfeasibleError(f"CP-SAT proved the constraints {cols.names} admit no plan")
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise RuntimeError(
            f"CP-SAT found no plan (status {solver.status_name(code)}, time_limit_s={time_limit_s})"
        )
    vals = np.array([solver.value(v) for v in built.x], dtype=np.float64)
    bound = math.inf
    if built.exact or built.outer:  # the posed problem or a relaxation of it
        scaled = Fraction(float(solver.best_objective_bound)) + built.objective_slack
        bound = round_up(scaled / Fraction(built.objective_scale))
    else:
        note = "rows rounded inward: CP-SAT's bound is of a restriction, not used"
    if code != cp_model.OPTIMAL:
        note = "; ".join(filter(None, ["stopped at time limit", note]))
    status = "optimal" if code == cp_model.OPTIMAL and built.exact else "feasible"
    return ExactSolution(
        cols.choice(problem.n_users, vals), status, bound, {}, time.perf_counter() - t0, note
    )


def _run_cpsat(built, time_limit_s: float, rel_gap: float, num_workers: int, seed: int):
    """(solver, status code) of CP-SAT on the built model."""
    solver = cpsat_solver(time_limit_s=time_limit_s, num_workers=num_workers, seed=seed)
    solver.parameters.relative_gap_limit = float(rel_gap)
    return solver, solver.solve(built.model)


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

    ``rel_gap``: the exact solvers stop within this relative gap, and ``'auto'``
    is content with a Lagrangian plan whose certified gap is at most this.
    ``warm_start``: constraint name -> price, e.g. the ``dual`` of a solve at a
    nearby budget; the Lagrangian method starts its price search there (the exact
    methods ignore it).  The certificate is computed for this problem either way.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        return _solve_auto(
            problem, time_limit_s=time_limit_s, rel_gap=rel_gap, seed=seed, warm_start=warm_start
        )
    t0 = time.perf_counter()
    if method == "lagrangian":
        return _solve_lagrangian(problem, seed=seed, t0=t0, warm_start=warm_start, rel_gap=rel_gap)
    if method == "highs":
        sol = solve_highs(problem, time_limit_s=time_limit_s, mip_rel_gap=rel_gap)
    else:
        sol = solve_cpsat(problem, time_limit_s=time_limit_s, rel_gap=rel_gap, seed=seed)
    choice, viol = repair(problem, sol.choice)  # solver tolerances: restore exact feasibility
    if viol and method == "highs":  # within HiGHS's tolerances only: integer arithmetic decides
        sol = solve_cpsat(problem, time_limit_s=time_limit_s, rel_gap=rel_gap, seed=seed)
        sol.message = "; ".join(filter(None, ["HiGHS's plan broke a limit: CP-SAT's", sol.message]))
        choice, viol = repair(problem, sol.choice)
    if viol:
        raise RepairFailedError(
            f"the {method} plan breaks {viol} beyond repair (solver tolerances); "
            "no exactly feasible plan was found, which proves nothing"
        )
    relaxed = lagrangian.solve_dual(problem, seed=seed).bound  # certified, unrounded problem
    objective = float(exact_sum(problem.gather(problem.objective_matrix, choice)))
    bound = min(relaxed, sol.bound) if sol.bound >= objective else relaxed
    return CouponAllocation.from_choice(
        problem,
        choice,
        upper_bound=bound,
        status=sol.status,
        method=method,
        solve_time_s=time.perf_counter() - t0,
        dual=sol.dual,
        message=sol.message,
    )


def _solve_auto(
    problem: CouponProblem,
    *,
    time_limit_s: float,
    rel_gap: float,
    seed: int,
    warm_start: Mapping[str, float] | None,
) -> CouponAllocation:
    """The Lagrangian plan; the exact MIP as well when its gap misses ``rel_gap`` and it is small."""
    t0 = time.perf_counter()
    small = problem.n_users * problem.n_options <= AUTO_EXACT_MAX_VARS
    try:
        lag = _solve_lagrangian(problem, seed=seed, t0=t0, warm_start=warm_start, rel_gap=rel_gap)
    except RepairFailedError:
        return solve(problem, "highs", time_limit_s=time_limit_s, rel_gap=rel_gap)
    if lag.gap <= rel_gap or not small:
        return lag
    try:
        exact = solve(problem, "highs", time_limit_s=time_limit_s, rel_gap=rel_gap)
    except RuntimeError:  # no MIP plan within the time limit: the Lagrangian plan stands
        return lag
    best = exact if exact.objective >= lag.objective else lag
    # the MIP's bound holds within HiGHS's tolerances only: where an exactly feasible plan
    # beats it, the Lagrangian's certified bound stands alone
    trusted = exact.upper_bound >= best.objective
    return CouponAllocation.from_choice(
        problem,
        best.choice,
        upper_bound=min(lag.upper_bound, exact.upper_bound) if trusted else lag.upper_bound,
        status="feasible",
        method=best.method,
        solve_time_s=time.perf_counter() - t0,
        dual=lag.dual,
        message=best.message,
    )


def _solve_lagrangian(
    problem: CouponProblem,
    *,
    seed: int,
    t0: float,
    warm_start: Mapping[str, float] | None = None,
    rel_gap: float = 1e-4,
) -> CouponAllocation:
    """Prices, the exact LP over the undecided users, repair and fill; CP-SAT on the
    most undecided users only when the certified gap still misses ``rel_gap``."""
    warm = None
    if warm_start:
        warm = np.array([float(warm_start.get(c.name, 0.0)) for c in problem.constraints])
    relax = Relaxation(problem)
    dual = lagrangian.solve_dual(problem, seed=seed, warm_prices=warm, relax=relax)
    bound, lam, choice, pool, few = dual.bound, dual.prices, dual.choice, None, None
    if problem.constraints:  # re-decide the undecided users by an exact LP
        polished = polish(problem, relax, dual.prices)
        choice, pool, few = polished.choice, polished.users, polished.few
        if polished.prices is not None:
            lp_bound = relax.certified_bound(polished.prices)
            if lp_bound < bound:
                bound, lam = lp_bound, polished.prices
    table = MoveTable(problem)
    rounded, choice = choice, _repair_and_fill(problem, choice, lam, table, pool)

    def wrap(plan: np.ndarray) -> CouponAllocation:
        return CouponAllocation.from_choice(
            problem,
            plan,
            upper_bound=bound,
            status="feasible",
            method="lagrangian",
            solve_time_s=time.perf_counter() - t0,
            dual={c.name: float(p) for c, p in zip(problem.constraints, lam, strict=True)},
        )

    result = wrap(choice)
    if few is not None and not result.gap <= rel_gap:
        better = improve(problem, relax, rounded, few, seed=seed)  # before fill used the slack
        if better is not rounded:
            try:
                better = _repair_and_fill(problem, better, lam, table, pool)
            except RepairFailedError:
                return result
            if exact_sum(problem.gather(problem.objective_matrix, better)) > exact_sum(
                problem.gather(problem.objective_matrix, choice)
            ):
                result = wrap(better)
    return result


def _repair_and_fill(
    problem: CouponProblem,
    choice: np.ndarray,
    prices: np.ndarray,
    table: MoveTable,
    pool: np.ndarray | None,
) -> np.ndarray:
    """Repair (moving ``pool`` first, then anyone) and fill ``choice``; exactly feasible."""
    choice, viol = repair(problem, choice, prices, table=table, users=pool)
    if viol and pool is not None:
        choice, viol = repair(problem, choice, prices, table=table)
    if viol:
        raise RepairFailedError(
            f"the Lagrangian repair could not satisfy {sorted(viol)} (excess {viol}); "
            "the constraints may conflict: try method='highs' for a proof"
        )
    return fill(problem, choice, table=table, users=pool)


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
