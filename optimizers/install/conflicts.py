"""Explaining infeasible install requests: which constraints conflict, and by how much.

An elastic model (non-negative slacks on targets, minimum spends and CPI caps;
the budget and maximum spends stay hard) minimises the normalised total slack:
the constraints left with positive slack are the ones in conflict, reported as
:class:`~optimizers.install.result.Conflict` with their shortfall beside the
least-violating plan.

Before any model, :func:`unreachable` proves the plainest conflict in exact
arithmetic: a target that every channel at its largest allowed spend still misses
(curves rise with spend).  HiGHS's tolerances cannot hide it, however small the
numbers.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np

from optimizers.install.highs import HighsModel, RawSolve, SolverConfig
from optimizers.install.model import build_model, linearise
from optimizers.install.problem import InstallProblem, exact_dot
from optimizers.install.result import BudgetSplit, Conflict, funnel_series


def diagnose(p: InstallProblem, config: SolverConfig) -> tuple[tuple[Conflict, ...], np.ndarray]:
    """Solve the elastic model; return the conflicting constraints and the closest plan."""
    inner, _ = linearise(p, config.approximation)
    model = build_model(inner, elastic=True)
    raw = HighsModel(model, config).solve()
    if not raw.feasible:  # budget and max spends alone cannot hold (cannot happen: s = 0)
        return (Conflict("budget", math.nan),), np.zeros(p.n)
    S, V = inner.spend_scale, inner.value_scale
    unit = {"target": V, "min_spend": S, "cpi_cap": 1.0, "cpi_cap_total": 1.0}
    out = [
        Conflict(name, float(raw.x[col]) * unit[name.split("[")[0]])
        for name, col in model.slacks.items()
        if raw.x[col] > 1e-7
    ]
    out.sort(key=lambda c: not c.name.startswith("target"))  # targets first
    return tuple(out), raw.spend


def unreachable(p: InstallProblem, top: np.ndarray) -> tuple[Conflict, ...]:
    """The targets that every channel at ``top`` (its largest spend allowed by the budget
    and its own limits) still misses, in exact arithmetic: no plan meets them, since the
    curves rise with spend.  The budget and the channels' limits stay hard, as in
    :func:`diagnose`, so only the targets are named."""
    f = np.array([float(curve(s)) for curve, s in zip(p.curves, top, strict=True)])
    return tuple(
        Conflict(f"target[{k}]", float(Fraction(v) - exact_dot(p.weights[k], f)))
        for k, v in p.targets.items()
        if exact_dot(p.weights[k], f) < Fraction(v)
    )


def infeasible_plan(
    p: InstallProblem,
    config: SolverConfig,
    *,
    t0: float,
    method: str,
    raw: RawSolve | None,
    min_budget: float | None,
    proven: tuple[Conflict, ...] = (),
) -> BudgetSplit:
    """The least-violating plan of an infeasible problem, naming its conflicts.

    ``min_budget`` is the smallest budget meeting every constraint (``None`` if
    no budget does), from a spend minimisation of the same constraints.
    ``proven``: conflicts :func:`unreachable` found (then the plan is every channel at
    its minimum spend, and the elastic model is not needed).
    """
    if proven:
        conflicts, spend = proven, p.min_spend.astype(float)
    else:
        conflicts, spend = diagnose(p, config)
    names = ", ".join(c.name for c in conflicts) or "none found at this approximation"
    why = "proven in exact arithmetic" if raw is None else raw.message
    if min_budget is None:
        extra = "no budget satisfies them (maximum spends, curve saturation or CPI caps bind)"
    else:
        extra = f"the smallest budget satisfying them is {min_budget:.6g}"
    return BudgetSplit(
        status="infeasible",
        objective=float(p.funnel(spend)[p.objective].sum()),
        upper_bound=math.nan,
        solve_time_s=time.perf_counter() - t0,
        method=method,
        message=f"infeasible ({why}); conflicting constraints: {names}; {extra}",
        objective_name=p.objective,
        **funnel_series(p, spend),
        conflicts=conflicts,
        min_budget=min_budget,
    )
