"""The install-control model: PWL envelopes of the curves in a Pyomo model.

Decision: daily spend ``s[c]`` per acquisition channel ``c``.  Each channel's
expected installs ``v[c]`` follow a Hill curve, represented by a PWL envelope
(:mod:`optimizers.install.pwl`) in the *incremental* formulation:

    s[c] = sum_j d[c, j],            0 <= d[c, j] <= L[c, j]      (spend_def)
    v[c] <= base[c] + sum_j m[c, j] * d[c, j]                     (curve)

Concave segments (slopes decreasing) need nothing more: maximising fills them in
order.  The convex segments of S-shaped curves get ordering binaries
``y[c, j]`` (``d[c, j] >= L[c, j] y[c, j]``, ``d[c, j+1] <= L[c, j+1] y[c, j]``),
whose LP relaxation is the concave envelope, so branch-and-bound closes quickly.
Side constraints: ``budget``, ``min_spend[c]``, ``cpi_cap[c]`` (spend <=
cpi_max * installs), ``cpi_cap_total`` and ``target[metric]`` (installs / logins /
retained >= X).  Internally spend is in units of ``spend_scale`` and installs in
units of ``value_scale`` so the solver sees numbers near 1.

:func:`linearise` turns an :class:`~optimizers.install.problem.InstallProblem`
into the data of its inner and outer models; :func:`build_model` turns that
into a ``pyo.ConcreteModel`` (a pure function of the data, no solving).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyomo.environ as pyo

from optimizers.install.curves import METRICS
from optimizers.install.problem import InstallProblem
from optimizers.install.pwl import PiecewiseLinear, hill_envelopes

Envelope = Literal["inner", "outer"]


@dataclass(frozen=True)
class Approximation:
    """How finely the curves are linearised (segments of the PWL envelopes)."""

    n_convex: int = 2
    n_concave: int = 24

    def __post_init__(self) -> None:
        if self.n_convex < 2 or self.n_concave < 2:
            raise ValueError(
                f"Approximation needs n_convex >= 2 and n_concave >= 2, got "
                f"{self.n_convex} and {self.n_concave}"
            )


@dataclass(frozen=True)
class ModelData:
    """Numbers the Pyomo model is built from: one PWL envelope per channel, scaled."""

    problem: InstallProblem
    envelopes: tuple[PiecewiseLinear, ...]
    envelope: Envelope
    spend_scale: float
    value_scale: float


def linearise(
    problem: InstallProblem,
    approx: Approximation | None = None,
    extra: Sequence[np.ndarray] | None = None,
) -> tuple[ModelData, ModelData]:
    """The ``(inner, outer)`` model data of ``problem`` (see :mod:`optimizers.install.pwl`).

    ``extra[c]``: additional breakpoints of channel ``c`` (adaptive refinement).
    """
    ap = approx or Approximation()
    if extra is not None and len(extra) != problem.n:
        raise ValueError(f"extra breakpoints given for {len(extra)} channels, expected {problem.n}")
    pairs = [
        hill_envelopes(
            c,
            float(h),
            n_convex=ap.n_convex,
            n_concave=ap.n_concave,
            extra=None if extra is None else extra[i],
        )
        for i, (c, h) in enumerate(zip(problem.curves, problem.hi, strict=True))
    ]
    spend_scale = float(problem.budget or 0.0) or float(problem.hi.sum()) or 1.0
    value_scale = float(sum(c.vmax for c in problem.curves)) / max(problem.n, 1)
    inner = ModelData(problem, tuple(p[0] for p in pairs), "inner", spend_scale, value_scale)
    outer = ModelData(problem, tuple(p[1] for p in pairs), "outer", spend_scale, value_scale)
    return inner, outer


def build_model(data: ModelData, *, elastic: bool = False) -> pyo.ConcreteModel:
    """The Pyomo model of ``data`` (a pure function of the data; nothing is solved).

    With ``elastic=True`` the soft constraints (targets, min spends, CPI caps) get
    non-negative slack variables and the objective minimises their normalised sum:
    the constraints whose slack stays positive are the ones in conflict.
    Targets are mutable parameters ``target_rhs[metric]`` (the Pareto sweep
    changes them between solves).
    """
    p = data.problem
    S, V = data.spend_scale, data.value_scale
    m = pyo.ConcreteModel(name=f"install_control_{data.envelope}")

    # ---- data
    C = range(p.n)
    seg = [(c, j) for c in C for j in range(data.envelopes[c].n_segments)]
    cvx = [(c, j) for c in C for j in range(data.envelopes[c].n_convex)]
    length = {(c, j): float(L) / S for c in C for j, L in enumerate(data.envelopes[c].lengths)}
    slope = {(c, j): float(sl) * S / V for c in C for j, sl in enumerate(data.envelopes[c].slopes)}
    base = {c: float(data.envelopes[c].values[0]) / V for c in C}
    metrics = tuple(METRICS)
    m.C = pyo.Set(initialize=list(C), ordered=True)
    m.SEG = pyo.Set(initialize=seg, dimen=2, ordered=True)
    m.CVX = pyo.Set(initialize=cvx, dimen=2, ordered=True)
    m.M = pyo.Set(initialize=list(metrics), ordered=True)
    m.target_rhs = pyo.Param(
        m.M, initialize={k: p.targets.get(k, 0.0) / V for k in metrics}, mutable=True
    )

    # ---- variables
    m.s = pyo.Var(m.C, bounds=lambda _, c: (0.0, p.hi[c] / S))  # spend of channel c / S
    m.d = pyo.Var(m.SEG, bounds=lambda _, c, j: (0.0, length[c, j]))  # spend in segment j / S
    m.y = pyo.Var(m.CVX, domain=pyo.Binary)  # 1 when convex segment j is full
    m.v = pyo.Var(m.C, bounds=(0.0, None))  # expected installs of channel c / V

    # ---- constraints
    by_channel: dict[int, list[int]] = {c: [] for c in C}
    for c, j in seg:
        by_channel[c].append(j)
    m.spend_def = pyo.Constraint(
        m.C, rule=lambda m, c: m.s[c] == sum(m.d[c, j] for j in by_channel[c])
    )
    m.curve = pyo.Constraint(
        m.C,
        rule=lambda m, c: m.v[c] <= base[c] + sum(slope[c, j] * m.d[c, j] for j in by_channel[c]),
    )
    m.fill_full = pyo.Constraint(m.CVX, rule=lambda m, c, j: m.d[c, j] >= length[c, j] * m.y[c, j])
    m.fill_next = pyo.Constraint(
        m.CVX,
        rule=lambda m, c, j: (
            m.d[c, j + 1] <= length[c, j + 1] * m.y[c, j]
            if (c, j + 1) in length
            else pyo.Constraint.Skip
        ),
    )
    gated = [
        (c, j)
        for c in C
        if data.envelopes[c].n_convex
        for j in range(data.envelopes[c].n_convex + 1, data.envelopes[c].n_segments)
    ]
    last_cvx = {c: data.envelopes[c].n_convex - 1 for c in C}
    m.GATED = pyo.Set(initialize=gated, dimen=2, ordered=True)
    m.fill_rest = pyo.Constraint(
        m.GATED, rule=lambda m, c, j: m.d[c, j] <= length[c, j] * m.y[c, last_cvx[c]]
    )
    if p.budget is not None:
        m.budget = pyo.Constraint(expr=sum(m.s[c] for c in C) <= p.budget / S)

    def metric_expr(m: pyo.ConcreteModel, k: str) -> pyo.Expression:
        w = p.weights[k]
        return sum(float(w[c]) * m.v[c] for c in C)

    lo_idx = [c for c in C if p.min_spend[c] > 0]
    cpi_idx = [c for c in C if math.isfinite(p.cpi_max[c])]
    if elastic:
        m.slack_target = pyo.Var(m.M, bounds=(0.0, None))
        m.slack_min = pyo.Var(lo_idx, bounds=(0.0, None))
        m.slack_cpi = pyo.Var(cpi_idx, bounds=(0.0, None))
        m.slack_cpi_total = pyo.Var(bounds=(0.0, None))
    m.min_spend = pyo.Constraint(
        lo_idx,
        rule=lambda m, c: m.s[c] + (m.slack_min[c] if elastic else 0.0) >= p.min_spend[c] / S,
    )
    m.cpi_cap = pyo.Constraint(
        cpi_idx,
        rule=lambda m, c: (
            S * m.s[c] - (m.slack_cpi[c] if elastic else 0.0) <= p.cpi_max[c] * V * m.v[c]
        ),
    )
    if p.cpi_max_total is not None:
        m.cpi_cap_total = pyo.Constraint(
            expr=S * sum(m.s[c] for c in C) - (m.slack_cpi_total if elastic else 0.0)
            <= p.cpi_max_total * V * sum(m.v[c] for c in C)
        )
    m.target = pyo.Constraint(
        m.M,
        rule=lambda m, k: (
            metric_expr(m, k) + (m.slack_target[k] if elastic else 0.0) >= m.target_rhs[k]
        ),
    )

    # ---- objective
    if elastic:
        total = sum(m.slack_target[k] / max(p.targets.get(k, 0.0) / V, 1e-9) for k in metrics)
        total += sum(m.slack_min[c] * S / p.min_spend[c] for c in lo_idx)
        total += sum(m.slack_cpi[c] / max(p.budget or S, 1e-9) for c in cpi_idx)
        total += m.slack_cpi_total / max(p.budget or S, 1e-9)
        m.obj = pyo.Objective(expr=total, sense=pyo.minimize)
    elif p.objective == "spend":
        m.obj = pyo.Objective(expr=sum(m.s[c] for c in C), sense=pyo.minimize)
    else:
        m.obj = pyo.Objective(expr=metric_expr(m, p.objective), sense=pyo.maximize)
    return m
