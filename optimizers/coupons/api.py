"""Entry points: :func:`allocate` (one plan with its certificate) and :func:`pareto_front`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from optimizers.coupons import exact, lagrangian
from optimizers.coupons.problem import CouponProblem
from optimizers.coupons.repair import MoveTable, fill, repair
from optimizers.coupons.result import CouponAllocation

Method = Literal["auto", "lagrangian", "cpsat", "highs"]
METHODS: tuple[str, ...] = ("auto", "lagrangian", "cpsat", "highs")
AUTO_EXACT_MAX_VARS = 12_000
"""``method='auto'`` uses the exact HiGHS MIP up to this many (user, option) pairs."""


class RepairFailedError(RuntimeError):
    """The Lagrangian repair could not meet every constraint (not a proof of infeasibility)."""


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
        sol = exact.solve_highs(problem, time_limit_s=time_limit_s, mip_rel_gap=rel_gap)
    else:
        sol = exact.solve_cpsat(problem, time_limit_s=time_limit_s, rel_gap=rel_gap, seed=seed)
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
    time_limit_s: float = 60.0,
    rel_gap: float = 1e-4,
    seed: int = 0,
    warm_start: Mapping[str, float] | None = None,
) -> CouponAllocation:
    """Choose at most one coupon option per user to maximise value within budgets.

    See :class:`~optimizers.coupons.problem.CouponProblem` for every argument's
    meaning and the maths.  ``method='auto'`` solves the exact HiGHS MIP when
    ``n * K <= AUTO_EXACT_MAX_VARS`` and the Lagrangian method otherwise (falling
    back to HiGHS if its repair fails).  ``warm_start`` (constraint name -> price,
    e.g. a previous allocation's ``dual``) starts the Lagrangian's price search
    near the answer when re-solving at another budget or weight.  Raises ``ValueError`` for bad input and
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
    )
    return solve(
        problem,
        method,
        time_limit_s=time_limit_s,
        rel_gap=rel_gap,
        seed=seed,
        warm_start=warm_start,
    )


@dataclass
class ParetoPoint:
    """One non-dominated plan: its scalarisation weight and both value totals."""

    weight: float
    value: float
    value2: float
    allocation: CouponAllocation


def pareto_front(
    value: np.ndarray,
    value2: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    n_points: int = 11,
    method: Method = "auto",
    **kwargs: object,
) -> list[ParetoPoint]:
    """Non-dominated (total value, total value2) plans, sorted by total value.

    Sweeps ``n_points`` weights ``w`` in [0, 1] on the objective
    ``(1 - w) * value / s1 + w * value2 / s2`` (``s1``, ``s2``: the largest
    absolute entry of each matrix, so that ``w`` trades the two on a common
    scale), then drops duplicates and dominated points.  Each solve starts its
    price search at the previous point's duals (``warm_start``); every point keeps
    its own certificate.  Extra keyword arguments (constraints, ``time_limit_s``
    ...) go to :func:`allocate`.
    """
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    v1 = np.asarray(value, dtype=np.float64)
    v2 = np.asarray(value2, dtype=np.float64)
    if v1.shape != v2.shape:
        raise ValueError(f"value has shape {v1.shape} but value2 has shape {v2.shape}")
    s1 = float(np.abs(v1).max()) or 1.0
    s2 = float(np.abs(v2).max()) or 1.0
    points: list[ParetoPoint] = []
    warm: dict[str, float] | None = None
    for w in np.linspace(0.0, 1.0, n_points):
        # (1-w) v1/s1 + w v2/s2 is proportional to (1-w') v1 + w' v2 with this w'
        w_raw = float(w * s1 / s2 / ((1.0 - w) + w * s1 / s2))
        alloc = allocate(
            v1, cost, budget, value2=v2, weight=w_raw, method=method, warm_start=warm, **kwargs
        )  # type: ignore[arg-type]
        warm = alloc.dual if alloc.method == "lagrangian" else None
        points.append(
            ParetoPoint(float(w), alloc.value_total, float(alloc.value2_total or 0.0), alloc)
        )
    return non_dominated(points)


def non_dominated(points: list[ParetoPoint], rtol: float = 1e-12) -> list[ParetoPoint]:
    """Points not dominated by another (>= in both totals, > in one), by total value."""
    keep: list[ParetoPoint] = []
    for p in sorted(points, key=lambda q: (-q.value, -q.value2)):
        tol1 = rtol * max(1.0, abs(p.value))
        tol2 = rtol * max(1.0, abs(p.value2))
        if any(q.value >= p.value - tol1 and q.value2 >= p.value2 - tol2 for q in keep):
            continue
        keep.append(p)
    return sorted(keep, key=lambda q: q.value)
