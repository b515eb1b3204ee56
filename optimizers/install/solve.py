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

Infeasible constraints are explained by an elastic model (slacks on targets,
minimum spends and CPI caps; budget and maximum spends hard): the constraints
left with positive slack are reported, with the smallest budget that would
satisfy all of them (:func:`cheapest_budget` on the same constraints).

``SolverFactory('highs')`` (``pyomo.contrib.solver``, persistent) is used: it
works with highspy 1.16 and Pyomo 6.10 and re-solves after parameter changes
without rebuilding, which the Pareto sweep relies on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition
from scipy import optimize

from optimizers.certificate import Certificate
from optimizers.install.curves import METRICS, ChannelModels
from optimizers.install.model import (
    Approximation,
    InstallProblem,
    ModelData,
    Objective,
    build_model,
    linearise,
    make_problem,
)

_AUTO_UPDATES_OFF = (
    "check_for_new_or_removed_constraints",
    "check_for_new_or_removed_vars",
    "check_for_new_or_removed_params",
    "check_for_new_objective",
    "update_constraints",
    "update_vars",
    "update_named_expressions",
    "update_objective",
)


@dataclass(frozen=True)
class SolverConfig:
    """Settings of the install optimiser.

    ``approximation``: PWL segments per curve; ``mip_rel_gap``: HiGHS relative MIP
    gap; ``time_limit_s``: per HiGHS call; ``gap_tol``: certified gap up to which
    a plan is called ``'optimal'`` (above it, ``'feasible'``); ``presolve``:
    HiGHS presolve (off by default: these models are already tight and presolve
    dominated solve time in measurements); ``polish``: refine the MILP/LP plan on
    the true curves with SLSQP inside its basin (spending channels stay on and on
    the concave side of their inflection, silent ones stay at 0), kept only when
    it is feasible and better; skipped above ``polish_max_channels`` spending
    channels.  ``refine_tol``, ``max_refinements``, ``max_extra_points``:
    adaptive refinement -- while the certified gap exceeds ``refine_tol`` (at
    most ``max_refinements`` times) both envelopes get breakpoints at the
    incumbent and at the relaxation's optimum (the last ``max_extra_points`` per
    channel are kept) and the models are rebuilt and re-solved.  This closes the
    PWL error around the plan and lets the MILP change a channel's on/off
    choice, which the polish (fixed pattern) cannot.
    """

    approximation: Approximation = field(default_factory=Approximation)
    mip_rel_gap: float = 1e-3
    time_limit_s: float = 60.0
    gap_tol: float = 1e-2
    presolve: bool = False
    polish: bool = True
    polish_max_channels: int = 40
    refine_tol: float = 3e-3
    max_refinements: int = 2
    max_extra_points: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.mip_rel_gap < 1.0:
            raise ValueError(f"SolverConfig.mip_rel_gap must lie in [0, 1), got {self.mip_rel_gap}")
        if self.time_limit_s <= 0:
            raise ValueError(f"SolverConfig.time_limit_s must be > 0, got {self.time_limit_s}")
        if not 0.0 < self.gap_tol < 1.0:
            raise ValueError(f"SolverConfig.gap_tol must lie in (0, 1), got {self.gap_tol}")
        if not 0.0 <= self.refine_tol < 1.0:
            raise ValueError(f"SolverConfig.refine_tol must lie in [0, 1), got {self.refine_tol}")
        if self.max_extra_points < 2:
            raise ValueError(
                f"SolverConfig.max_extra_points must be >= 2, got {self.max_extra_points}"
            )
        if self.max_refinements < 0:
            raise ValueError(
                f"SolverConfig.max_refinements must be >= 0, got {self.max_refinements}"
            )


@dataclass(frozen=True)
class Conflict:
    """A constraint that cannot hold together with the others, and by how much it fails.

    ``name`` is the model's constraint name (``target[retained]``,
    ``min_spend[3]``, ``cpi_cap[3]``, ``cpi_cap_total``); ``shortfall`` is the
    relaxation needed, in the constraint's own units (users, spend).
    """

    name: str
    shortfall: float


@dataclass(kw_only=True)
class InstallPlan(Certificate):
    """A daily budget split and its certificate (maximisation of ``objective_name``).

    ``spend``, ``installs``, ``logins``, ``retained``: per-channel Series (the
    last three on the true curves).  ``objective`` is the true-curve value of the
    plan, ``pwl_objective`` the inner model's value, ``upper_bound`` the outer
    model's dual bound.  ``budget_dual``: extra ``objective_name`` per extra unit
    of budget.  When ``status == 'infeasible'``, ``spend`` is the least-violating
    plan, ``conflicts`` lists the violated constraints and ``min_budget`` the
    smallest budget meeting them all (``None`` if no budget does).
    """

    objective_name: str
    spend: pd.Series
    installs: pd.Series
    logins: pd.Series
    retained: pd.Series
    pwl_objective: float = math.nan
    budget_dual: float = math.nan
    conflicts: tuple[Conflict, ...] = ()
    min_budget: float | None = None

    @property
    def totals(self) -> dict[str, float]:
        """Total spend, installs, logins and retained users of the plan."""
        return {
            "spend": float(self.spend.sum()),
            "installs": float(self.installs.sum()),
            "logins": float(self.logins.sum()),
            "retained": float(self.retained.sum()),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per channel: spend and its expected funnel."""
        return pd.DataFrame(
            {
                "spend": self.spend,
                "installs": self.installs,
                "logins": self.logins,
                "retained": self.retained,
            }
        )


@dataclass(kw_only=True)
class BudgetPlan:
    """Answer to "what is the least total spend that meets these targets?".

    ``min_budget`` is the total spend of the returned split (feasible on the true
    curves); ``lower_bound`` is proven (outer model), so the true minimum lies in
    ``[lower_bound, min_budget]``.  Kept separate from :class:`Certificate`, whose
    convention is maximisation.
    """

    status: str
    min_budget: float
    lower_bound: float
    spend: pd.Series
    installs: pd.Series
    logins: pd.Series
    retained: pd.Series
    solve_time_s: float
    method: str
    conflicts: tuple[Conflict, ...] = ()
    message: str = ""

    @property
    def gap(self) -> float:
        """Relative gap ``(min_budget - lower_bound) / min_budget`` (``inf`` if infeasible)."""
        if self.status == "infeasible" or not math.isfinite(self.min_budget):
            return math.inf
        return max(0.0, (self.min_budget - self.lower_bound) / max(self.min_budget, 1e-9))


@dataclass(frozen=True)
class _Raw:
    """One HiGHS solve, read back in original units."""

    feasible: bool
    proven_infeasible: bool
    objective: float  # model objective (original units)
    bound: float  # solver's dual bound (original units)
    spend: np.ndarray
    budget_dual: float
    message: str


class _Compiled:
    """A built Pyomo model attached to a persistent HiGHS instance."""

    def __init__(self, data: ModelData, config: SolverConfig, *, elastic: bool = False) -> None:
        self.data = data
        self.model = build_model(data, elastic=elastic)
        self.is_mip = len(self.model.CVX) > 0
        opt = SolverFactory("highs")
        opt.config.load_solutions = False
        opt.config.raise_exception_on_nonoptimal_result = False
        opt.config.time_limit = config.time_limit_s
        opt.config.rel_gap = config.mip_rel_gap
        opt.config.solver_options.update({"presolve": "on" if config.presolve else "off"})
        self.opt = opt
        self._first = True

    def set_targets(self, targets: Mapping[str, float]) -> None:
        """Change the right-hand sides of ``target[metric]`` (unset metrics: 0)."""
        V = self.data.value_scale
        for k in METRICS:
            self.model.target_rhs[k] = float(targets.get(k, 0.0)) / V

    def solve(self, *, dual: bool = False) -> _Raw:
        """Solve; with ``dual=True`` also compute the marginal value of budget."""
        m, d = self.model, self.data
        res = self.opt.solve(m)
        if self._first:  # after the first solve only parameters change
            for k in _AUTO_UPDATES_OFF:
                setattr(self.opt.config.auto_updates, k, False)
            self._first = False
        tc = res.termination_condition
        infeasible = tc in (
            TerminationCondition.provenInfeasible,
            TerminationCondition.infeasibleOrUnbounded,
            TerminationCondition.locallyInfeasible,
        )
        if infeasible or res.incumbent_objective is None:
            return _Raw(False, infeasible, math.nan, math.nan, np.zeros(0), math.nan, str(tc))
        res.solution_loader.load_vars()
        S, V = d.spend_scale, d.value_scale
        unit = S if d.problem.sense == "min" and not hasattr(m, "slack_target") else V
        spend = np.array([m.s[c].value or 0.0 for c in m.C]) * S
        bound = res.objective_bound if res.objective_bound is not None else math.nan
        budget_dual = math.nan
        if dual and hasattr(m, "budget"):
            budget_dual = self._budget_dual(res) * V / S
        return _Raw(
            True,
            False,
            float(res.incumbent_objective) * unit,
            float(bound) * unit,
            np.maximum(spend, 0.0),
            budget_dual,
            str(tc),
        )

    def _budget_dual(self, res: object) -> float:
        """Dual of ``budget`` (LP) or of the LP with the binaries fixed (MILP)."""
        m = self.model
        if not self.is_mip:
            return abs(float(res.solution_loader.get_duals([m.budget])[m.budget]))
        self.opt.config.auto_updates.update_vars = True
        pattern = {k: round(m.y[k].value or 0.0) for k in m.y}
        for k, v in pattern.items():
            m.y[k].domain = pyo.Reals
            m.y[k].fix(v)
        try:
            fixed = self.opt.solve(m)
            ok = fixed.termination_condition == TerminationCondition.convergenceCriteriaSatisfied
            value = (
                abs(float(fixed.solution_loader.get_duals([m.budget])[m.budget]))
                if ok
                else math.nan
            )
        finally:
            for k in pattern:
                m.y[k].unfix()
                m.y[k].domain = pyo.Binary
            self.opt.solve(m)  # restore the MILP solution in the model
            self.opt.config.auto_updates.update_vars = False
        return value


def _gap(objective: float, upper: float) -> float:
    """Relative certified gap ``(upper - objective) / upper`` (``inf`` without a bound)."""
    if not math.isfinite(upper):
        return math.inf
    return max(0.0, (upper - objective) / max(abs(upper), 1e-9))


def _series(problem: InstallProblem, values: np.ndarray, name: str) -> pd.Series:
    return pd.Series(values, index=pd.Index(problem.channels, name="channel_id"), name=name)


def _funnel(problem: InstallProblem, spend: np.ndarray) -> dict[str, np.ndarray]:
    installs = np.array([c(x) for c, x in zip(problem.curves, spend, strict=True)], dtype=float)
    return {k: installs * problem.weights[k] for k in METRICS}


def _check_true_feasible(problem: InstallProblem, spend: np.ndarray, strict: bool = False) -> str:
    """Names a constraint the plan breaks on the true curves, or ''.

    Tolerance 1e-6 relative; with ``strict`` every side constraint is checked with
    1e-9 (used to accept a polished plan).
    """
    f = _funnel(problem, spend)
    tol = 1e-9 if strict else 1e-6
    if problem.budget is not None and spend.sum() > problem.budget * (1 + tol):
        return "budget"
    for k, v in problem.targets.items():
        if f[k].sum() < v * (1 - tol):
            return f"target[{k}]"
    if strict:
        if np.any(spend < problem.min_spend * (1 - tol)) or np.any(spend > problem.hi * (1 + tol)):
            return "min_spend/max_spend"
        capped = np.isfinite(problem.cpi_max)
        allowed = problem.cpi_max[capped] * f["installs"][capped] * (1 + tol) + tol
        if np.any(spend[capped] > allowed):
            return "cpi_cap"
        cpi_t = problem.cpi_max_total
        if cpi_t is not None and spend.sum() > cpi_t * f["installs"].sum() * (1 + tol):
            return "cpi_cap_total"
    return ""


def _polish(p: InstallProblem, spend: np.ndarray, max_channels: int) -> np.ndarray:
    """Local refinement of a plan on the true curves, inside the basin the MILP chose.

    Spending channels keep spending (S-shaped ones past their inflection, where
    the curve is concave), silent ones stay silent, so the subproblem is convex
    and SLSQP reaches its optimum.  Returns the better of ``spend`` and the
    polished plan (feasibility checked on the true curves).
    """
    active = np.flatnonzero(spend > 1e-9 * max(float(spend.sum()), 1.0))
    if active.size == 0 or active.size > max_channels or p.sense != "max":
        return spend
    curves = [p.curves[i] for i in active]
    vmax = np.array([c.vmax for c in curves])
    k = np.array([c.k for c in curves])
    a = np.array([c.alpha for c in curves])
    infl = np.array([c.inflection for c in curves])
    lo = np.maximum(p.min_spend[active], np.where(spend[active] >= infl, infl, 0.0))
    hi = p.hi[active]
    scale = max(float(spend.sum()), 1e-9)

    def inst(x: np.ndarray) -> np.ndarray:
        u = np.power(np.maximum(x * scale, 0.0) / k, a)
        return vmax * u / (1.0 + u)

    def dinst(x: np.ndarray) -> np.ndarray:
        s = np.maximum(x * scale, 1e-12 * k)
        u = np.power(s / k, a)
        return vmax * a * u / (s * (1.0 + u) ** 2) * scale

    w = {m: p.weights[m][active] for m in METRICS}
    wo = w[p.objective]
    cons: list[dict[str, object]] = []
    if p.budget is not None:
        cons.append({"type": "ineq", "fun": lambda x: p.budget / scale - x.sum()})
    for metric, target in p.targets.items():
        wm = w[metric]
        cons.append(
            {
                "type": "ineq",
                "fun": lambda x, wm=wm, tg=target: (inst(x) @ wm - tg) / max(tg, 1.0),
                "jac": lambda x, wm=wm, tg=target: dinst(x) * wm / max(tg, 1.0),
            }
        )
    cpi = p.cpi_max[active]
    capped = np.isfinite(cpi)
    if capped.any():
        cons.append({"type": "ineq", "fun": lambda x: (cpi * inst(x) - x * scale)[capped]})
    if p.cpi_max_total is not None:
        cons.append(
            {"type": "ineq", "fun": lambda x: p.cpi_max_total * inst(x).sum() - x.sum() * scale}
        )
    norm = max(float(inst(spend[active] / scale) @ wo), 1e-9)
    x0 = np.clip(spend[active], lo, hi) / scale
    res = optimize.minimize(
        lambda x: -float(inst(x) @ wo) / norm,
        x0,
        jac=lambda x: -dinst(x) * wo / norm,
        method="SLSQP",
        bounds=list(zip(lo / scale, hi / scale, strict=True)),
        constraints=cons,
        options={"maxiter": 200, "ftol": 1e-10},
    )
    cand = spend.copy()
    cand[active] = np.clip(res.x * scale, lo, hi)
    if p.budget is not None and cand.sum() > p.budget:
        cand *= p.budget / cand.sum()
        cand[active] = np.maximum(cand[active], p.min_spend[active])
    f_old, f_new = _funnel(p, spend), _funnel(p, cand)
    better = f_new[p.objective].sum() > f_old[p.objective].sum()
    if better and not _check_true_feasible(p, cand, strict=True):
        return cand
    return spend


class InstallSolver:
    """Inner and outer models of one problem, built once and re-solvable with new targets.

    Used by :func:`optimize_installs` (one solve) and by the Pareto sweep (many
    solves that only move one target).
    """

    def __init__(self, problem: InstallProblem, config: SolverConfig | None = None) -> None:
        self.problem = problem
        self.config = config or SolverConfig()
        t0 = time.perf_counter()
        inner, outer = linearise(problem, self.config.approximation)
        self._inner = _Compiled(inner, self.config)
        self._outer = _Compiled(outer, self.config)
        self._points: list[np.ndarray] = [np.zeros(0) for _ in range(problem.n)]
        self.build_time_s = time.perf_counter() - t0

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
    def _plan(p: InstallProblem, raw: _Raw) -> tuple[np.ndarray, float]:
        """The plan of an inner solve and its true-curve objective."""
        return raw.spend, float(_funnel(p, raw.spend)[p.objective].sum())

    def _polished(
        self, p: InstallProblem, spend: np.ndarray, objective: float
    ) -> tuple[np.ndarray, float]:
        """``spend`` polished on the true curves when that is feasible and better."""
        cand = _polish(p, spend, self.config.polish_max_channels)
        value = float(_funnel(p, cand)[p.objective].sum())
        return (cand, value) if value > objective else (spend, objective)

    def _refined(self, p: InstallProblem, points: list[np.ndarray]) -> tuple[_Compiled, _Compiled]:
        """Inner and outer models of ``p`` with extra breakpoints ``points[c]`` per channel."""
        inner, outer = linearise(p, self.config.approximation, extra=points)
        pair = (_Compiled(inner, self.config), _Compiled(outer, self.config))
        for comp in pair:
            comp.set_targets(p.targets)
        return pair

    def solve(
        self, targets: Mapping[str, float] | None = None, *, dual: bool = True
    ) -> InstallPlan:
        """Solve with ``targets`` (default: the problem's own) and certify the plan."""
        t0 = time.perf_counter()
        p = self.problem if targets is None else self.problem.with_targets(targets)
        if p.sense != "max":
            raise ValueError("InstallSolver.solve maximises; use cheapest_budget for spend")
        for comp in (self._inner, self._outer):
            comp.set_targets(p.targets)
        inner = self._inner.solve(dual=dual)
        if not inner.feasible:
            return _infeasible_plan(p, self.config, t0, self.method, inner)
        outer = self._outer.solve()
        spend, objective = self._plan(p, inner)
        upper = outer.bound if outer.feasible else math.inf
        rounds = 0
        points = list(self._points)
        keep = self.config.max_extra_points
        while (
            rounds < self.config.max_refinements
            and _gap(objective, upper) > self.config.refine_tol
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
            if cand_obj > objective and not _check_true_feasible(p, cand):
                inner, spend, objective = ri, cand, cand_obj
        if self.config.polish:
            spend, objective = self._polished(p, spend, objective)
        f = _funnel(p, spend)
        upper = max(upper, objective)
        gap = _gap(objective, upper)
        broken = _check_true_feasible(p, spend)
        status = "optimal" if gap <= self.config.gap_tol else "feasible"
        message = f"inner: {inner.message}; outer: {outer.message}; refinements: {rounds}"
        if broken:
            status, message = "unknown", f"plan breaks {broken} on the true curves; {message}"
        return InstallPlan(
            status=status,
            objective=objective,
            upper_bound=upper,
            solve_time_s=time.perf_counter() - t0,
            method=self.method,
            dual={"budget": inner.budget_dual},
            message=message,
            objective_name=p.objective,
            spend=_series(p, spend, "spend"),
            installs=_series(p, f["installs"], "installs"),
            logins=_series(p, f["logins"], "logins"),
            retained=_series(p, f["retained"], "retained"),
            pwl_objective=inner.objective,
            budget_dual=inner.budget_dual,
        )


def _diagnose(p: InstallProblem, config: SolverConfig) -> tuple[tuple[Conflict, ...], np.ndarray]:
    """Solve the elastic model; return the conflicting constraints and the closest plan."""
    inner, _ = linearise(p, config.approximation)
    comp = _Compiled(inner, config, elastic=True)
    raw = comp.solve()
    m = comp.model
    if not raw.feasible:  # budget and max spends alone cannot hold (cannot happen: s = 0)
        return (Conflict("budget", math.nan),), np.zeros(p.n)
    S, V = inner.spend_scale, inner.value_scale
    out: list[Conflict] = []
    tol = 1e-7
    for k in METRICS:
        if (m.slack_target[k].value or 0.0) > tol:
            out.append(Conflict(f"target[{k}]", m.slack_target[k].value * V))
    for c in m.slack_min:
        if (m.slack_min[c].value or 0.0) > tol:
            out.append(Conflict(f"min_spend[{p.channels[c]}]", m.slack_min[c].value * S))
    for c in m.slack_cpi:
        if (m.slack_cpi[c].value or 0.0) > tol:
            out.append(Conflict(f"cpi_cap[{p.channels[c]}]", float(m.slack_cpi[c].value)))
    if (m.slack_cpi_total.value or 0.0) > tol:
        out.append(Conflict("cpi_cap_total", float(m.slack_cpi_total.value)))
    return tuple(out), raw.spend


def _infeasible_plan(
    p: InstallProblem, config: SolverConfig, t0: float, method: str, raw: _Raw
) -> InstallPlan:
    conflicts, spend = _diagnose(p, config)
    budget_plan = _cheapest(p.without_budget(), config)
    min_budget = budget_plan.min_budget if budget_plan.status != "infeasible" else None
    names = ", ".join(c.name for c in conflicts) or "none found at this approximation"
    if min_budget is None:
        extra = "no budget satisfies them (maximum spends, curve saturation or CPI caps bind)"
    else:
        extra = f"the smallest budget satisfying them is {min_budget:.6g}"
    f = _funnel(p, spend)
    return InstallPlan(
        status="infeasible",
        objective=float(f[p.objective].sum()),
        upper_bound=math.nan,
        solve_time_s=time.perf_counter() - t0,
        method=method,
        message=f"infeasible ({raw.message}); conflicting constraints: {names}; {extra}",
        objective_name=p.objective,
        spend=_series(p, spend, "spend"),
        installs=_series(p, f["installs"], "installs"),
        logins=_series(p, f["logins"], "logins"),
        retained=_series(p, f["retained"], "retained"),
        conflicts=conflicts,
        min_budget=min_budget,
    )


def _cheapest(p: InstallProblem, config: SolverConfig) -> BudgetPlan:
    t0 = time.perf_counter()
    inner_data, outer_data = linearise(p, config.approximation)
    inner = _Compiled(inner_data, config)
    method = "pwl-milp/highs" if inner.is_mip else "pwl-lp/highs"
    raw = inner.solve()
    if not raw.feasible:
        conflicts, spend = _diagnose(p, config)
        f = _funnel(p, spend)
        names = ", ".join(c.name for c in conflicts)
        return BudgetPlan(
            status="infeasible",
            min_budget=math.inf,
            lower_bound=math.inf,
            spend=_series(p, spend, "spend"),
            installs=_series(p, f["installs"], "installs"),
            logins=_series(p, f["logins"], "logins"),
            retained=_series(p, f["retained"], "retained"),
            solve_time_s=time.perf_counter() - t0,
            method=method,
            conflicts=conflicts,
            message=f"no spend meets the constraints; conflicting: {names}",
        )
    outer = _Compiled(outer_data, config).solve()
    spend = raw.spend
    total = float(spend.sum())
    lower = min(outer.bound, total) if outer.feasible else 0.0
    f = _funnel(p, spend)
    gap = (total - lower) / max(total, 1e-9)
    return BudgetPlan(
        status="optimal" if gap <= config.gap_tol else "feasible",
        min_budget=total,
        lower_bound=lower,
        spend=_series(p, spend, "spend"),
        installs=_series(p, f["installs"], "installs"),
        logins=_series(p, f["logins"], "logins"),
        retained=_series(p, f["retained"], "retained"),
        solve_time_s=time.perf_counter() - t0,
        method=method,
        message=f"inner: {raw.message}; outer: {outer.message}",
    )


def optimize_installs(
    models: ChannelModels,
    budget: float,
    *,
    objective: Objective = "retained",
    min_spend: Mapping[Hashable, float] | float | None = None,
    max_spend: Mapping[Hashable, float] | float | None = None,
    cpi_max: Mapping[Hashable, float] | float | None = None,
    cpi_max_total: float | None = None,
    targets: Mapping[str, float] | None = None,
    config: SolverConfig | None = None,
) -> InstallPlan:
    """Split a daily ``budget`` across channels to maximise installs, logins or retained users.

    ``min_spend``/``max_spend``/``cpi_max`` are per channel (mapping) or for every
    channel (scalar); ``cpi_max_total`` caps total spend / total installs;
    ``targets`` asks for e.g. ``{'retained': 300}`` (at least).  Returns an
    :class:`InstallPlan` certified by an upper bound; ``status == 'infeasible'``
    comes with ``conflicts`` and ``min_budget``.

    >>> from optimizers.install.curves import ChannelModels, HillCurve
    >>> models = ChannelModels.from_curves({"a": HillCurve(100, 50, 0.8),
    ...                                     "b": HillCurve(300, 400, 2.5)})
    >>> plan = optimize_installs(models, 600.0, objective="installs")
    >>> plan.status, plan.gap < 0.01
    ('optimal', True)
    """
    problem = make_problem(
        models,
        budget,
        objective=objective,
        min_spend=min_spend,
        max_spend=max_spend,
        cpi_max=cpi_max,
        cpi_max_total=cpi_max_total,
        targets=targets,
    )
    if objective == "spend":
        raise ValueError("optimize_installs maximises a funnel metric; use cheapest_budget")
    return InstallSolver(problem, config).solve()


def cheapest_budget(
    models: ChannelModels,
    targets: Mapping[str, float],
    *,
    min_spend: Mapping[Hashable, float] | float | None = None,
    max_spend: Mapping[Hashable, float] | float | None = None,
    cpi_max: Mapping[Hashable, float] | float | None = None,
    cpi_max_total: float | None = None,
    budget_cap: float | None = None,
    config: SolverConfig | None = None,
) -> BudgetPlan:
    """The smallest total daily spend (and its split) meeting ``targets``.

    Channels without ``max_spend`` may spend up to where they reach 99% of their
    saturation (at most ``1000 * k``), or ``budget_cap`` if given.

    >>> from optimizers.install.curves import ChannelModels, HillCurve
    >>> models = ChannelModels.from_curves({"a": HillCurve(100, 50, 0.8)}, 0.5, 0.5)
    >>> plan = cheapest_budget(models, {"retained": 10.0})
    >>> bool(plan.retained.sum() >= 10.0)
    True
    """
    if not targets:
        raise ValueError("cheapest_budget needs at least one target, e.g. {'retained': 100}")
    problem = make_problem(
        models,
        budget_cap,
        objective="spend",
        min_spend=min_spend,
        max_spend=max_spend,
        cpi_max=cpi_max,
        cpi_max_total=cpi_max_total,
        targets=targets,
    )
    return _cheapest(problem, config or SolverConfig())
