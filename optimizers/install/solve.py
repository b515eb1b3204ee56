"""Solve install-control problems to a certified global optimum with Pyomo + HiGHS.

Every problem is solved twice, on the two PWL envelopes of the curves
(:mod:`optimizers.install.pwl`):

* the **inner** model (envelopes below the curves) gives the plan.  It is
  feasible for the true curves, and its objective evaluated on the true curves
  is the reported ``objective``;
* the **outer** model (envelopes above) is a relaxation: its dual bound is a
  valid ``upper_bound`` on the true optimum.

Concave curves make both models LPs; S-shaped curves make them MILPs with a few
ordering binaries per channel, solved to a small MIP gap, so the optimum found is
global (no local search is involved).  ``gap = (upper_bound - objective) /
upper_bound`` covers both the PWL error and the MIP gap.  The marginal value of
budget (``budget_dual``) is the LP dual of the budget constraint; for MILPs it
is the dual of the LP with the binaries fixed at the optimum (exact while the
set of channels past their convex part does not change).

Infeasible constraints are explained by :mod:`optimizers.install.conflicts`,
with the smallest budget that would satisfy all of them (:func:`cheapest_budget`
on the same constraints).  The operator's constraints arrive as one
:class:`~optimizers.install.problem.ChannelLimits`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np

from optimizers.install.conflicts import diagnose, infeasible_plan
from optimizers.install.curves import ChannelModels
from optimizers.install.highs import CompiledModel, RawSolve, SolverConfig
from optimizers.install.model import linearise
from optimizers.install.polish import polish
from optimizers.install.problem import ChannelLimits, InstallProblem, Objective, make_problem
from optimizers.install.result import BudgetPlan, BudgetSplit, funnel_series, relative_gap


class InstallSolver:
    """Inner and outer models of one problem, built once and re-solvable with new targets.

    Used by :func:`optimize_installs` (one solve) and by the Pareto sweep (many
    solves that only move one target).
    """

    def __init__(self, problem: InstallProblem, config: SolverConfig | None = None) -> None:
        self.problem = problem
        self.config = config or SolverConfig()
        inner, outer = linearise(problem, self.config.approximation)
        self._inner = CompiledModel(inner, self.config)
        self._outer = CompiledModel(outer, self.config)
        self._points: list[np.ndarray] = [np.zeros(0) for _ in range(problem.n)]

    @property
    def method(self) -> str:
        """``'pwl-milp/highs'`` when any curve is S-shaped, else ``'pwl-lp/highs'``."""
        return "pwl-milp/highs" if self._inner.is_mip else "pwl-lp/highs"

    def inner_metric(self, spend: np.ndarray, metric: str) -> float:
        """Total ``metric`` of a spend split on the inner envelopes (what the plan model sees)."""
        data = self._inner.data
        w = data.problem.weights[metric]
        return float(
            sum(
                float(w[i]) * float(env(x))
                for i, (env, x) in enumerate(zip(data.envelopes, spend, strict=True))
            )
        )

    @staticmethod
    def _plan(p: InstallProblem, raw: RawSolve) -> tuple[np.ndarray, float]:
        """The plan of an inner solve and its true-curve objective."""
        return raw.spend, float(p.funnel(raw.spend)[p.objective].sum())

    def _polished(
        self, p: InstallProblem, spend: np.ndarray, objective: float
    ) -> tuple[np.ndarray, float]:
        """``spend`` polished on the true curves when that is feasible and better."""
        cand = polish(p, spend, self.config.polish_max_channels)
        value = float(p.funnel(cand)[p.objective].sum())
        return (cand, value) if value > objective else (spend, objective)

    def _refined(
        self, p: InstallProblem, points: list[np.ndarray]
    ) -> tuple[CompiledModel, CompiledModel]:
        """Inner and outer models of ``p`` with extra breakpoints ``points[c]`` per channel."""
        inner, outer = linearise(p, self.config.approximation, extra=points)
        pair = (CompiledModel(inner, self.config), CompiledModel(outer, self.config))
        for comp in pair:
            comp.set_targets(p.targets)
        return pair

    def solve(
        self, targets: Mapping[str, float] | None = None, *, dual: bool = True
    ) -> BudgetSplit:
        """Solve with ``targets`` (default: the problem's own) and certify the plan."""
        t0 = time.perf_counter()
        p = self.problem if targets is None else self.problem.with_targets(targets)
        if p.sense != "max":
            raise ValueError("InstallSolver.solve maximises; use cheapest_budget for spend")
        for comp in (self._inner, self._outer):
            comp.set_targets(p.targets)
        inner = self._inner.solve(dual=dual)
        if not inner.feasible:
            budget_plan = _cheapest(p.without_budget(), self.config)
            min_budget = budget_plan.min_budget if budget_plan.status != "infeasible" else None
            return infeasible_plan(
                p, self.config, t0=t0, method=self.method, raw=inner, min_budget=min_budget
            )
        outer = self._outer.solve()
        spend, objective = self._plan(p, inner)
        upper = outer.bound if outer.feasible else math.inf
        rounds = 0
        points = list(self._points)
        keep = self.config.max_extra_points
        while (
            rounds < self.config.max_refinements
            and relative_gap(objective, upper) > self.config.refine_tol
            and outer.feasible
        ):
            # Make both envelopes exact at the incumbent (before and after polish) and
            # at the relaxation's optimum, then re-solve: the plan can only improve
            # (the incumbent stays feasible at its old value) and the bound tightens.
            rounds += 1
            points = [
                np.concatenate([pts, [spend[c], outer.spend[c]]])[-keep:]
                for c, pts in enumerate(points)
            ]
            r_inner, r_outer = self._refined(p, points)
            # The next solve (a neighbouring Pareto point) starts from these models.
            self._inner, self._outer, self._points = r_inner, r_outer, points
            ri = r_inner.solve(dual=dual)
            ro = r_outer.solve()
            if ro.feasible and math.isfinite(ro.bound):
                upper = min(upper, ro.bound)  # every outer bound is valid: keep the best
                outer = ro
            if not ri.feasible:
                break
            cand, cand_obj = self._plan(p, ri)
            if cand_obj > objective and not p.broken_constraint(cand):
                inner, spend, objective = ri, cand, cand_obj
        if self.config.polish:
            spend, objective = self._polished(p, spend, objective)
        upper = max(upper, objective)
        gap = relative_gap(objective, upper)
        broken = p.broken_constraint(spend)
        status = "optimal" if gap <= self.config.gap_tol else "feasible"
        message = f"inner: {inner.message}; outer: {outer.message}; refinements: {rounds}"
        if broken:
            status, message = "unknown", f"plan breaks {broken} on the true curves; {message}"
        return BudgetSplit(
            status=status,
            objective=objective,
            upper_bound=upper,
            solve_time_s=time.perf_counter() - t0,
            method=self.method,
            dual={"budget": inner.budget_dual},
            message=message,
            objective_name=p.objective,
            **funnel_series(p, spend),
            pwl_objective=inner.objective,
            budget_dual=inner.budget_dual,
        )


def _cheapest(p: InstallProblem, config: SolverConfig) -> BudgetPlan:
    """Minimise total spend under ``p``'s constraints (inner plan, outer lower bound)."""
    t0 = time.perf_counter()
    inner_data, outer_data = linearise(p, config.approximation)
    inner = CompiledModel(inner_data, config)
    method = "pwl-milp/highs" if inner.is_mip else "pwl-lp/highs"
    raw = inner.solve()
    if not raw.feasible:
        conflicts, spend = diagnose(p, config)
        names = ", ".join(c.name for c in conflicts)
        return BudgetPlan(
            status="infeasible",
            min_budget=math.inf,
            lower_bound=math.inf,
            **funnel_series(p, spend),
            solve_time_s=time.perf_counter() - t0,
            method=method,
            conflicts=conflicts,
            message=f"no spend meets the constraints; conflicting: {names}",
        )
    outer = CompiledModel(outer_data, config).solve()
    spend = raw.spend
    total = float(spend.sum())
    lower = min(outer.bound, total) if outer.feasible else 0.0
    gap = (total - lower) / max(total, 1e-9)
    return BudgetPlan(
        status="optimal" if gap <= config.gap_tol else "feasible",
        min_budget=total,
        lower_bound=lower,
        **funnel_series(p, spend),
        solve_time_s=time.perf_counter() - t0,
        method=method,
        message=f"inner: {raw.message}; outer: {outer.message}",
    )


def optimize_installs(
    models: ChannelModels,
    budget: float,
    *,
    objective: Objective = "retained",
    limits: ChannelLimits | None = None,
    config: SolverConfig | None = None,
) -> BudgetSplit:
    """Split a daily ``budget`` across channels to maximise installs, logins or retained users.

    ``limits`` holds the operator's side constraints (spend bounds and CPI caps
    per channel, a total CPI cap, targets such as ``{'retained': 300}``).
    Returns an :class:`BudgetSplit` certified by an upper bound; ``status ==
    'infeasible'`` comes with ``conflicts`` and ``min_budget``.

    >>> from optimizers.install.curves import ChannelModels, HillCurve
    >>> models = ChannelModels.from_curves({"a": HillCurve(100, 50, 0.8),
    ...                                     "b": HillCurve(300, 400, 2.5)})
    >>> plan = optimize_installs(models, 600.0, objective="installs")
    >>> plan.status, plan.gap < 0.01
    ('optimal', True)
    >>> capped = optimize_installs(models, 600.0, objective="installs",
    ...                            limits=ChannelLimits(max_spend={"b": 100.0}))
    >>> bool(capped.spend["b"] <= 100.0 + 1e-6)
    True
    """
    problem = make_problem(models, budget, objective=objective, limits=limits)
    if objective == "spend":
        raise ValueError("optimize_installs maximises a funnel metric; use cheapest_budget")
    return InstallSolver(problem, config).solve()


def cheapest_budget(
    models: ChannelModels,
    targets: Mapping[str, float],
    *,
    limits: ChannelLimits | None = None,
    budget_cap: float | None = None,
    config: SolverConfig | None = None,
) -> BudgetPlan:
    """The smallest total daily spend (and its split) meeting ``targets``.

    ``targets`` add to (and override) the targets of ``limits``.  Channels
    without ``max_spend`` may spend up to where they reach 99% of their
    saturation (at most ``1000 * k``), or ``budget_cap`` if given.

    >>> from optimizers.install.curves import ChannelModels, HillCurve
    >>> models = ChannelModels.from_curves({"a": HillCurve(100, 50, 0.8)}, 0.5, 0.5)
    >>> plan = cheapest_budget(models, {"retained": 10.0})
    >>> bool(plan.retained.sum() >= 10.0)
    True
    """
    lim = limits or ChannelLimits()
    lim = lim.with_targets({**lim.targets, **targets})
    if not lim.targets:
        raise ValueError("cheapest_budget needs at least one target, e.g. {'retained': 100}")
    problem = make_problem(models, budget_cap, objective="spend", limits=lim)
    return _cheapest(problem, config or SolverConfig())
