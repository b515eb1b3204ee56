"""The solver layer of install control: its settings, and Pyomo models on a persistent HiGHS.

``SolverFactory('highs')`` (``pyomo.contrib.solver``, persistent) is used: it
works with highspy 1.16 and Pyomo 6.10 and re-solves after parameter changes
without rebuilding, which the Pareto sweep relies on.  After the first solve
automatic model updates are switched off (only the target parameters change).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from optimizers.install.curves import METRICS
from optimizers.install.model import Approximation, ModelData, build_model

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
    HiGHS presolve (off by default: these models are already tight);
    ``polish``: refine the MILP/LP plan on
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
class RawSolve:
    """One HiGHS solve, read back in original units."""

    feasible: bool
    proven_infeasible: bool
    objective: float  # model objective (original units)
    bound: float  # solver's dual bound (original units)
    spend: np.ndarray
    budget_dual: float
    message: str


class CompiledModel:
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

    def solve(self, *, dual: bool = False) -> RawSolve:
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
            return RawSolve(False, infeasible, math.nan, math.nan, np.zeros(0), math.nan, str(tc))
        res.solution_loader.load_vars()
        S, V = d.spend_scale, d.value_scale
        unit = S if d.problem.sense == "min" and not hasattr(m, "slack_target") else V
        spend = np.array([m.s[c].value or 0.0 for c in m.C]) * S
        bound = res.objective_bound if res.objective_bound is not None else math.nan
        budget_dual = math.nan
        if dual and hasattr(m, "budget"):
            budget_dual = self._budget_dual(res) * V / S
        return RawSolve(
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
