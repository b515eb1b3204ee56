"""Solve install-control problems to a certified near-global optimum.

Three tools, each used where it is cheapest (:class:`InstallSolver`):

* the **pattern MILP**: the inner PWL envelopes of the curves
  (:mod:`optimizers.install.pwl`, :mod:`optimizers.install.model`) on HiGHS.  Its
  plan is feasible for the true curves; more importantly it picks the global
  *pattern*: which S-shaped channels spend (on the concave side of their
  inflection) and which stay silent;
* the **pattern solve** (:mod:`optimizers.install.lagrange`): on a fixed pattern
  the problem on the true curves is concave, so Newton's method on its few prices
  gives the exact optimum of the pattern and its prices (``budget_dual``: extra
  objective per extra unit of budget, exact while the pattern holds);
* the **bounds**: the Lagrangian dual on the true curves at the plan's prices
  (improved by smoothed Newton steps) is a valid upper bound with no PWL error;
  where it leaves more than ``refine_tol`` (few channels, whose on/off choices a
  dual cannot price), the outer PWL MILP (envelopes above the curves) bounds the
  optimum too, with adaptive refinement of both envelopes.  The reported bound
  is the lowest valid one.

A Pareto sweep passes each point's plan to the next (:meth:`InstallSolver.solve`
with ``start``): its pattern is solved exactly first and the MILP only runs when
the bound is not yet within ``refine_tol``.

Infeasible constraints are explained by :mod:`optimizers.install.conflicts`,
with the smallest budget that would satisfy all of them (:func:`cheapest_budget`
on the same constraints).  The operator's constraints arrive as one
:class:`~optimizers.install.problem.ChannelLimits`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from optimizers.install import lagrange, newton
from optimizers.install.bnb import branch_and_bound
from optimizers.install.conflicts import diagnose, infeasible_plan, unreachable
from optimizers.install.curves import ChannelModels
from optimizers.install.highs import HighsModel, RawSolve, SolverConfig
from optimizers.install.model import build_model, linearise
from optimizers.install.problem import ChannelLimits, InstallProblem, Objective, make_problem
from optimizers.install.result import BudgetPlan, BudgetSplit, funnel_series, relative_gap


@dataclass
class _Incumbent:
    """The best plan of one solve so far, its prices and the lowest valid bound."""

    problem: InstallProblem
    spend: np.ndarray | None = None
    objective: float = -math.inf
    prices: dict[str, float] = field(default_factory=dict)
    upper: float = math.inf
    bound_by: str = "none"
    sources: list[str] = field(default_factory=list)

    def offer(self, spend: np.ndarray, source: str) -> bool:
        """Keep ``spend`` (fitted into its bounds) when it is feasible and better."""
        p = self.problem
        s = p.within_bounds(spend)
        if p.broken_constraint(s):
            return False
        value = float(math.fsum(p.funnel(s)[p.objective]))
        if value <= self.objective:
            return False
        self.spend, self.objective = s, value
        self.sources.append(source)
        return True

    def tighten(self, bound: float, source: str) -> None:
        """Keep ``bound`` when it is the lowest valid bound so far."""
        if bound < self.upper:
            self.upper, self.bound_by = bound, source

    @property
    def gap(self) -> float:
        """Relative gap of the incumbent to the lowest bound (``inf`` without either)."""
        return relative_gap(self.objective, self.upper) if self.spend is not None else math.inf


class InstallSolver:
    """The models of one problem, built once and re-solvable with new targets.

    Used by :func:`optimize_installs` (one solve) and by the Pareto sweep (many
    solves that only move one target, each starting from its neighbour's plan).
    """

    def __init__(self, problem: InstallProblem, config: SolverConfig | None = None) -> None:
        if problem.sense != "max":
            raise ValueError("InstallSolver maximises; use cheapest_budget for spend")
        self.problem = problem
        self.config = config or SolverConfig()
        self._extra: list[np.ndarray] = [np.zeros(0) for _ in range(problem.n)]
        self._highs: dict[str, HighsModel] = {}  # built on first use, rebuilt by refinement
        self._data: tuple | None = None  # the envelopes' linear data, for the models above
        self._prices: dict[str, float] = {}  # the last solve's prices: the next Newton start

    @property
    def method(self) -> str:
        """``'pwl-milp/highs'`` when any curve is S-shaped, else ``'pwl-lp/highs'``."""
        s_shaped = any(c.alpha > 1.0 for c in self.problem.curves)
        return "pwl-milp/highs" if s_shaped else "pwl-lp/highs"

    def _model(self, envelope: str, p: InstallProblem) -> HighsModel:
        """The inner or outer HiGHS model with ``p``'s targets and the breakpoints so far."""
        if envelope not in self._highs:  # only the envelope asked for: the outer is rare
            if self._data is None:
                self._data = linearise(p, self.config.approximation, extra=self._extra)
            data = next(d for d in self._data if d.envelope == envelope)
            self._highs[envelope] = HighsModel(build_model(data), self.config)
        model = self._highs[envelope]
        model.set_targets(p.targets)
        return model

    def solve(
        self, targets: Mapping[str, float] | None = None, *, start: BudgetSplit | None = None
    ) -> BudgetSplit:
        """Solve with ``targets`` (default: the problem's own) and certify the plan.

        ``start``: a plan of a neighbouring problem (a Pareto neighbour); when it meets
        these targets its pattern is solved first and the MILP runs only if needed.
        """
        t0 = time.perf_counter()
        p = self.problem if targets is None else self.problem.with_targets(targets)
        inc = _Incumbent(p)
        rel = lagrange.relaxation(p, bound_side=True)
        proven = unreachable(p, rel.top)
        if proven:
            return self._infeasible(p, t0, None, proven)
        base = lagrange.relaxation(p, bound_side=False)
        if start is not None and inc.offer(start.spend.to_numpy(), "start"):
            self._certify(inc, rel, base)
        elif self.config.polish:
            self._dual_start(inc, rel, base)
        rounds = 0
        if inc.gap > self.config.refine_tol:
            inner = self._model("inner", p)
            raw = inner.solve(self._start(inner, inc))
            if not raw.feasible and inc.spend is None:
                return self._infeasible(p, t0, raw)
            if raw.feasible and not inc.offer(raw.spend, "milp") and inc.spend is None:
                broken = p.broken_constraint(p.within_bounds(raw.spend))
                raise RuntimeError(f"the inner PWL plan breaks {broken} on the true curves")
            self._certify(inc, rel, base)
            rounds = self._refine(p, inc, rel, base)
        return self._result(p, inc, t0, rounds)

    def _dual_start(
        self, inc: _Incumbent, rel: lagrange.Relaxation, base: lagrange.Relaxation
    ) -> None:
        """A first plan without a model: the pattern of the dual's maximisers (a Lagrangian
        heuristic; with many channels it is all but optimal), certified like any plan."""
        y0 = np.array([self._prices.get(name, 0.0) for name in rel.names])
        scale = float(np.sum(rel.w0 * rel.curves.vmax)) or 1.0  # above any objective
        bound = newton.best_bound(rel, y0, scale)
        plan, _ = newton.solve_pattern(base.pattern(bound.spend), bound.y)
        if inc.offer(plan.spend, "dual pattern"):
            self._certify(inc, rel, base)

    def _start(self, model: HighsModel, inc: _Incumbent) -> np.ndarray | None:
        """The incumbent as a MIP start of ``model`` (None without one)."""
        return None if inc.spend is None else model.model.columns_of(inc.spend)

    def _certify(
        self, inc: _Incumbent, rel: lagrange.Relaxation, base: lagrange.Relaxation
    ) -> None:
        """Solve the incumbent's pattern exactly and bound it by the dual; while the gap is
        too wide, try the pattern the bound's maximisers suggest (a Lagrangian heuristic)
        and branch on the channels whose on/off choice the prices leave open."""
        y0 = np.array([self._prices.get(name, 0.0) for name in rel.names])
        point, _ = newton.solve_pattern(base.pattern(inc.spend), y0)
        if self.config.polish:
            inc.offer(point.spend, "pattern")
        inc.prices = self._prices = dict(zip(rel.names, point.y.tolist(), strict=True))
        bound = newton.best_bound(rel, point.y, inc.objective)
        inc.tighten(bound.value, "dual")
        if inc.gap <= self.config.refine_tol or not self.config.polish:
            return

        def improve(node: lagrange.DualPoint) -> float:
            plan, _ = newton.solve_pattern(base.pattern(node.spend), node.y)
            if inc.offer(plan.spend, "dual pattern"):
                inc.prices = dict(zip(rel.names, plan.y.tolist(), strict=True))
            return inc.objective

        improve(bound)
        value = branch_and_bound(
            rel,
            bound,
            inc.objective,
            improve,
            rtol=self.config.refine_tol,
            max_nodes=self.config.max_nodes,
            value_scale=inc.objective,
        )
        inc.tighten(value, "dual, branched")

    def _refine(
        self,
        p: InstallProblem,
        inc: _Incumbent,
        rel: lagrange.Relaxation,
        base: lagrange.Relaxation,
    ) -> int:
        """Bound by the outer PWL model and refine both envelopes while the gap is too wide."""
        rounds = 0
        cfg = self.config
        while inc.gap > cfg.refine_tol:
            model = self._model("outer", p)
            # The objective in units of the optimum (the dual bound, else the plan's value):
            # left tiny, HiGHS's absolute tolerances would swallow it and its bound.
            model.scale_objective(inc.upper if math.isfinite(inc.upper) else inc.objective)
            outer = model.solve(self._start(model, inc))
            if outer.feasible and math.isfinite(outer.bound):
                inc.tighten(outer.bound, "outer PWL MILP (bound widened by HiGHS's tolerances)")
            if inc.gap <= cfg.refine_tol or rounds >= cfg.max_refinements or not outer.feasible:
                break
            # Make both envelopes exact at the incumbent and at the relaxation's optimum,
            # then re-solve: the plan can only improve and the bound tightens.
            rounds += 1
            keep = cfg.max_extra_points
            self._extra = [
                np.concatenate([pts, [inc.spend[c], outer.spend[c]]])[-keep:]
                for c, pts in enumerate(self._extra)
            ]
            self._highs, self._data = {}, None  # rebuilt with the new breakpoints
            inner = self._model("inner", p)
            raw = inner.solve(self._start(inner, inc))
            if raw.feasible and inc.offer(raw.spend, "refined milp"):
                self._certify(inc, rel, base)
        return rounds

    def _infeasible(
        self, p: InstallProblem, t0: float, raw: RawSolve | None, proven: tuple = ()
    ) -> BudgetSplit:
        """The infeasible answer: conflicts, the least-violating plan and the least budget."""
        budget_plan = _cheapest(p.without_budget(), self.config)
        min_budget = budget_plan.min_budget if budget_plan.status != "infeasible" else None
        return infeasible_plan(
            p,
            self.config,
            t0=t0,
            method=self.method,
            raw=raw,
            min_budget=min_budget,
            proven=proven,
        )

    def _result(self, p: InstallProblem, inc: _Incumbent, t0: float, rounds: int) -> BudgetSplit:
        """The certified split of the incumbent."""
        if inc.spend is None:  # the MILP found a plan the true curves refuse: a bug
            raise RuntimeError("install solve ended without a feasible plan")
        message = (
            f"plan from {' > '.join(inc.sources)}; bound from the {inc.bound_by} "
            f"(the lowest valid one); refinements: {rounds}"
        )
        return BudgetSplit(
            status="feasible",  # the certificate labels it by its gap
            objective=inc.objective,
            upper_bound=inc.upper,
            solve_time_s=time.perf_counter() - t0,
            method=self.method,
            dual=dict(inc.prices),
            message=message,
            objective_name=p.objective,
            **funnel_series(p, inc.spend),
            budget_dual=inc.prices.get("budget", math.nan),
        )


def _cheapest(p: InstallProblem, config: SolverConfig) -> BudgetPlan:
    """Minimise total spend under ``p``'s constraints (inner PWL plan polished on the true
    curves; lower bound from the Lagrangian dual, never from HiGHS's outer PWL bound, which
    holds only up to its float tolerances and fell above a feasible plan's spend)."""
    t0 = time.perf_counter()
    inner_data, _ = linearise(p, config.approximation)
    inner = HighsModel(build_model(inner_data), config)
    method = "pwl-milp/highs" if inner.is_mip else "pwl-lp/highs"
    proven = unreachable(p, lagrange.relaxation(p, bound_side=True).top)
    raw = inner.solve() if not proven else None
    spend = p.within_bounds(raw.spend) if raw and raw.feasible else np.zeros(p.n)
    if raw and raw.feasible and config.polish:
        spend = _least_on_pattern(p, spend)
    if proven or not raw.feasible or p.broken_constraint(spend):
        conflicts, spend = (proven, p.min_spend.astype(float)) if proven else diagnose(p, config)
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
    total = math.fsum(spend)
    lower = min(_least_spend_bound(p, total, config), total)
    return BudgetPlan(
        status="feasible",  # labelled by its gap
        min_budget=total,
        lower_bound=max(lower, 0.0),
        **funnel_series(p, spend),
        solve_time_s=time.perf_counter() - t0,
        method=method,
        message=f"inner: {raw.message}; lower bound from the Lagrangian dual, branched",
    )


def _least_spend_bound(p: InstallProblem, total: float, config: SolverConfig) -> float:
    """A valid lower bound on the least spend: the dual of ``max -spend``, branched on the
    channels whose choice its prices leave open, until within ``refine_tol`` of ``total``."""
    rel = lagrange.relaxation(p, bound_side=True)
    root = newton.best_bound(rel, np.zeros(rel.n_rows), total)
    if not math.isfinite(root.value):
        return 0.0
    value = branch_and_bound(
        rel,
        root,
        -total,
        lambda _: -total,
        rtol=config.refine_tol,
        max_nodes=config.max_nodes,
        value_scale=total,
    )
    return max(-value, 0.0)


def _least_on_pattern(p: InstallProblem, spend: np.ndarray) -> np.ndarray:
    """The least spend on the pattern of ``spend`` (solved exactly by the dual), when it
    meets every constraint and spends less, or the PWL plan misses a target by its last
    digits (HiGHS's tolerances); else ``spend``."""
    base = lagrange.relaxation(p, bound_side=False)
    patterns = [spend]
    if p.broken_constraint(spend):  # at bad scales: the PWL plan scaled up until it holds
        patterns.append(_scaled_up(p, spend))
    best = spend
    for pattern in patterns:
        point, _ = newton.solve_pattern(base.pattern(pattern), np.zeros(base.n_rows))
        for plan in (pattern, p.within_bounds(point.spend)):
            if p.broken_constraint(plan):
                continue
            if p.broken_constraint(best) or math.fsum(plan) < math.fsum(best):
                best = plan
    return best


def _scaled_up(p: InstallProblem, spend: np.ndarray) -> np.ndarray:
    """``spend`` times the least factor (to 1e-12, by bisection) that meets the targets
    without a budget (curves rise with spend), or ``spend`` when no factor does."""
    top = np.divide(p.hi, spend, out=np.full(p.n, np.inf), where=spend > 0).min()
    if (
        p.budget is not None
        or not np.isfinite(top)
        or p.broken_constraint(np.minimum(spend * top, p.hi))
    ):
        return spend
    lo, hi = 1.0, float(top)
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if not p.broken_constraint(np.minimum(spend * mid, p.hi)) else (mid, hi)
    return np.minimum(spend * hi, p.hi)


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
    >>> plan.status in ("optimal", "feasible"), plan.gap < 1e-3
    (True, True)
    >>> capped = optimize_installs(models, 600.0, objective="installs",
    ...                            limits=ChannelLimits(max_spend={"b": 100.0}))
    >>> bool(capped.spend["b"] <= 100.0)
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
