"""The solver layer of install control: its settings, and the PWL models on a persistent HiGHS.

The matrix of :mod:`optimizers.install.model` is passed to ``highspy`` once; a new
set of targets only moves the bounds of the ``target[metric]`` rows, and a solve
may start from a known plan (a MIP start: a neighbouring Pareto point's plan).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import highspy
import numpy as np

from optimizers.install.curves import METRICS
from optimizers.install.model import Approximation, LinearModel

BOUND_MIP_ABS_GAP = 1e-9
"""HiGHS's absolute MIP gap of the outer model, in units of its objective scale."""


@dataclass(frozen=True)
class SolverConfig:
    """Settings of the install optimiser.

    ``approximation``: PWL segments per curve; ``mip_rel_gap``: HiGHS relative MIP
    gap of the plan (inner) MILP, which only has to find a good pattern: the exact
    pattern solve and the dual do the rest; ``bound_mip_rel_gap``: that of the
    outer MILP, whose dual bound is reported; ``time_limit_s``: per HiGHS call, a
    safety net only; ``presolve``: HiGHS
    presolve (off by default: these models are already tight); ``polish``: solve
    the MILP plan's pattern (which channels spend, and S-shaped ones on the concave
    side of their inflection) exactly on the true curves
    (:mod:`optimizers.install.lagrange`), kept when it is feasible and better.
    ``refine_tol``: the certified gap the solver aims for.  Above it, the dual
    bound branches on the channels whose on/off choice it leaves open (at most
    ``max_nodes`` branchings, :mod:`optimizers.install.bnb`); above it still, the outer
    PWL model bounds the optimum too and, at most ``max_refinements`` times, both
    envelopes get breakpoints at the incumbent and at the relaxation's optimum (the
    last ``max_extra_points`` per channel are kept) and the models are rebuilt and
    re-solved: this closes the PWL error around the plan and lets the MILP change
    a channel's on/off choice, which the polish (fixed pattern) cannot.
    """

    approximation: Approximation = field(default_factory=Approximation)
    mip_rel_gap: float = 1e-2
    bound_mip_rel_gap: float = 1e-7
    time_limit_s: float = 60.0
    presolve: bool = False
    polish: bool = True
    refine_tol: float = 1e-3
    max_nodes: int = 64
    max_refinements: int = 2
    max_extra_points: int = 4

    def __post_init__(self) -> None:
        for name in ("mip_rel_gap", "bound_mip_rel_gap"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"SolverConfig.{name} must lie in [0, 1), got {getattr(self, name)}"
                )
        if not self.time_limit_s > 0:
            raise ValueError(f"SolverConfig.time_limit_s must be > 0, got {self.time_limit_s}")
        if not 0.0 <= self.refine_tol < 1.0:
            raise ValueError(f"SolverConfig.refine_tol must lie in [0, 1), got {self.refine_tol}")
        if self.max_extra_points < 2:
            raise ValueError(
                f"SolverConfig.max_extra_points must be >= 2, got {self.max_extra_points}"
            )
        if self.max_nodes < 0:
            raise ValueError(f"SolverConfig.max_nodes must be >= 0, got {self.max_nodes}")
        if self.max_refinements < 0:
            raise ValueError(
                f"SolverConfig.max_refinements must be >= 0, got {self.max_refinements}"
            )


@dataclass(frozen=True)
class RawSolve:
    """One HiGHS solve, read back in original units (objective and bound of the model)."""

    feasible: bool
    proven_infeasible: bool
    objective: float
    bound: float
    x: np.ndarray  # column values (a start for the next solve)
    spend: np.ndarray
    message: str


class HighsModel:
    """A :class:`~optimizers.install.model.LinearModel` loaded into one persistent HiGHS."""

    def __init__(self, model: LinearModel, config: SolverConfig) -> None:
        self.model = model
        m = model
        gap = config.mip_rel_gap if m.data.envelope == "inner" else config.bound_mip_rel_gap
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(config.time_limit_s))
        h.setOptionValue("mip_rel_gap", float(gap))
        h.setOptionValue("presolve", "on" if config.presolve else "off")
        sense = highspy.ObjSense.kMaximize if m.sense == "max" else highspy.ObjSense.kMinimize
        if m.data.envelope == "outer":
            h.setOptionValue("mip_abs_gap", BOUND_MIP_ABS_GAP)
        h.passModel(
            int(m.obj.size),
            int(m.row_lo.size),
            int(m.A.nnz),
            int(highspy.MatrixFormat.kColwise.value),
            int(sense.value),
            float(m.offset),
            m.obj,
            m.col_lo,
            m.col_hi,
            m.row_lo,
            m.row_hi,
            m.A.indptr.astype(np.int32),
            m.A.indices.astype(np.int32),
            m.A.data.astype(np.float64),
            m.integer.astype(np.int32),
        )
        self.highs = h
        self.unit = 1.0  # objective unit, in the model's units (see scale_objective)

    def scale_objective(self, unit: float) -> None:
        """Let HiGHS see the objective in units of ``unit`` (original units, > 0): a value
        near the optimum keeps it O(1), so HiGHS's absolute tolerances stay relative."""
        d = self.model.data
        value = unit / (d.spend_scale if self.model.sense == "min" else d.value_scale)
        if not (math.isfinite(value) and value > 0) or self.model.slacks:
            return
        n = int(self.model.obj.size)
        self.highs.changeColsCost(n, np.arange(n, dtype=np.int32), self.model.obj / value)
        self.highs.changeObjectiveOffset(float(self.model.offset) / value)
        self.unit = value

    @property
    def is_mip(self) -> bool:
        """Whether the model has binaries."""
        return self.model.is_mip

    def set_targets(self, targets: Mapping[str, float]) -> None:
        """Move the lower bounds of ``target[metric]`` (unset metrics: 0)."""
        for k in METRICS:
            row = self.model.rows[f"target[{k}]"]
            lo = self.model.target_lo(k, float(targets.get(k, 0.0)))
            self.highs.changeRowBounds(row, lo, math.inf)

    def solve(self, start: np.ndarray | None = None) -> RawSolve:
        """Run HiGHS (from the column values ``start`` when given) and read the result."""
        h, m = self.highs, self.model
        if start is not None and m.is_mip:
            h.setSolution(int(start.size), np.arange(start.size, dtype=np.int32), start)
        h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        infeasible = status in (
            highspy.HighsModelStatus.kInfeasible,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        )
        message = h.modelStatusToString(status)
        found = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
        if infeasible or not found:
            empty = np.zeros(0)
            return RawSolve(False, infeasible, math.nan, math.nan, empty, empty, message)
        x = np.array(h.getSolution().col_value)
        d = m.data
        unit = self.unit * (
            1.0 if m.slacks else (d.spend_scale if m.sense == "min" else d.value_scale)
        )
        bound = info.mip_dual_bound if m.is_mip else info.objective_function_value
        if status != highspy.HighsModelStatus.kOptimal and not m.is_mip:
            bound = math.nan  # an LP stopped early proves nothing
        bound = self._safe(float(bound), float(info.objective_function_value))
        return RawSolve(
            True,
            False,
            float(info.objective_function_value) * unit,
            float(bound) * unit,
            x,
            m.spend(x),
            message,
        )

    def _safe(self, bound: float, objective: float) -> float:
        """HiGHS's float ``bound`` moved outwards past what its tolerances may hide, in its
        objective units: nodes pruned within the MIP gaps of the plan's ``objective`` leave
        the bound, and each reduced cost and row price may be off by the dual-feasibility
        tolerance (over each column's range, binaries over 0..1, times 1 + its column's
        absolute sum)."""
        h, m = self.highs, self.model
        opt = {
            k: float(h.getOptionValue(k)[1])
            for k in ("mip_abs_gap", "mip_rel_gap", "dual_feasibility_tolerance")
        }
        sign = 1.0 if m.sense == "max" else -1.0
        if m.is_mip:
            gap = max(opt["mip_abs_gap"], opt["mip_rel_gap"] * abs(objective))
            bound = sign * max(sign * bound, sign * objective + gap)
        span = np.where(np.isfinite(m.col_hi - m.col_lo), m.col_hi - m.col_lo, 0.0)
        weight = 1.0 + np.asarray(abs(m.A).sum(axis=0)).ravel()
        return bound + sign * opt["dual_feasibility_tolerance"] * math.fsum(
            (span * weight).tolist()
        )
