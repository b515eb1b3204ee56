"""Trade-off fronts between two coupon values (e.g. conversions and GMV) under the same budgets.

A weighted-sum sweep: for ``n_points`` weights ``w`` in [0, 1] the problem's
objective becomes ``(1 - w) * value / s1 + w * value2 / s2`` (``s1``, ``s2``: the
largest absolute entry of each matrix, so that ``w`` trades the two on a common
scale).  The constraints are built once (:meth:`CouponProblem.with_weight`);
each solve starts its price search at the previous point's duals and keeps its
own certificate.  Duplicates and dominated points are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from optimizers.coupons.problem import CouponProblem
from optimizers.coupons.result import CouponAllocation
from optimizers.coupons.solve import Method, solve


@dataclass
class ParetoPoint:
    """One non-dominated plan: its scalarisation weight and both value totals."""

    weight: float
    value: float
    value2: float
    allocation: CouponAllocation


def solve_front(
    problem: CouponProblem,
    *,
    n_points: int = 11,
    method: Method = "auto",
    time_limit_s: float = 60.0,
    rel_gap: float = 1e-4,
    seed: int = 0,
) -> list[ParetoPoint]:
    """Non-dominated (total value, total value2) plans of ``problem``, by total value.

    ``problem`` must carry ``value2``; its own ``weight`` is ignored.
    """
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    if problem.value2 is None:
        raise ValueError("a front needs the problem's value2 (the second value matrix)")
    s1 = float(np.abs(problem.value).max()) or 1.0
    s2 = float(np.abs(problem.value2).max()) or 1.0
    points: list[ParetoPoint] = []
    warm: dict[str, float] | None = None
    for w in np.linspace(0.0, 1.0, n_points):
        # (1-w) v1/s1 + w v2/s2 is proportional to (1-w') v1 + w' v2 with this w'
        w_raw = float(w * s1 / s2 / ((1.0 - w) + w * s1 / s2))
        alloc = solve(
            problem.with_weight(w_raw),
            method,
            time_limit_s=time_limit_s,
            rel_gap=rel_gap,
            seed=seed,
            warm_start=warm,
        )
        warm = alloc.dual if alloc.method == "lagrangian" else None
        points.append(
            ParetoPoint(float(w), alloc.value_total, float(alloc.value2_total or 0.0), alloc)
        )
    return non_dominated(points)


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

    Keyword arguments that are fields of
    :class:`~optimizers.coupons.problem.CouponProblem` (``global_options``,
    ``budget_groups``, ``min_coverage`` ...) build the problem; the others
    (``time_limit_s``, ``rel_gap``, ``seed``) go to :func:`solve_front`.
    """
    v1 = np.asarray(value, dtype=np.float64)
    v2 = np.asarray(value2, dtype=np.float64)
    if v1.shape != v2.shape:
        raise ValueError(f"value has shape {v1.shape} but value2 has shape {v2.shape}")
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    known = {f.name for f in fields(CouponProblem) if f.init}
    constraints = {k: v for k, v in kwargs.items() if k in known}
    options = {k: v for k, v in kwargs.items() if k not in known}
    problem = CouponProblem(value=v1, cost=cost, budget=budget, value2=v2, **constraints)  # type: ignore[arg-type]
    return solve_front(problem, n_points=n_points, method=method, **options)  # type: ignore[arg-type]


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
