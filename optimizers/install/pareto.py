"""Pareto fronts between installs, logins and retained users (epsilon-constraint method).

Channels differ in how many of their installs log in and stay, so buying the
most installs and buying the most retained users are different budget splits.
:func:`pareto_front` maps the trade-off: it maximises the first objective subject
to "second objective >= epsilon" for ``n_points`` epsilons spread between the
second objective's value at the first's optimum and its own maximum.  Every point
is a certified global optimum of its epsilon problem (inner/outer envelopes, see
:mod:`optimizers.install.solve`); points dominated on the true curves are removed.
The models are built once and re-solved with a new epsilon (``n_points + 1``
solves); the sweep runs from the largest epsilon down, so each point starts from
its neighbour's plan (feasible for it) and its exact pattern solve.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from optimizers.install.curves import METRICS, ChannelModels
from optimizers.install.highs import SolverConfig
from optimizers.install.problem import ChannelLimits, InstallProblem, exact_dot, make_problem
from optimizers.install.result import BudgetSplit
from optimizers.install.solve import InstallSolver


@dataclass(kw_only=True)
class ParetoFront:
    """Non-dominated plans, ordered by increasing second objective.

    ``points[i]`` maximises ``objectives[0]`` subject to ``objectives[1] >=
    epsilons[i]``; each carries its own certificate (objective, upper bound, gap).
    """

    objectives: tuple[str, str]
    points: list[BudgetSplit]
    epsilons: np.ndarray
    n_dominated_removed: int
    solve_time_s: float

    @classmethod
    def empty(cls, objectives: tuple[str, str]) -> ParetoFront:
        """A front without points (the request was infeasible)."""
        return cls(
            objectives=objectives,
            points=[],
            epsilons=np.zeros(0),
            n_dominated_removed=0,
            solve_time_s=0.0,
        )

    def __len__(self) -> int:
        return len(self.points)

    def values(self) -> np.ndarray:
        """True-curve objective values, shape ``(n_points, 2)``."""
        return np.array([[p.totals[o] for o in self.objectives] for p in self.points])

    def to_frame(self) -> pd.DataFrame:
        """One row per point: both objectives, spend, the other metrics and the certificate."""
        rows = []
        for eps, p in zip(self.epsilons, self.points, strict=True):
            rows.append(
                {
                    **p.totals,
                    "epsilon": eps,
                    "upper_bound": p.upper_bound,
                    "gap": p.gap,
                    "status": p.status,
                    "solve_time_s": p.solve_time_s,
                }
            )
        return pd.DataFrame(rows)


def _non_dominated(values: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Boolean mask of rows of ``values`` (maximised) that no other row dominates."""
    n = values.shape[0]
    keep = np.ones(n, dtype=bool)
    scale = np.maximum(np.abs(values).max(axis=0), 1e-12)
    v = values / scale
    for i in range(n):
        ge = np.all(v >= v[i] - rtol, axis=1)
        gt = np.any(v > v[i] + rtol, axis=1)
        dominated_by = ge & gt
        dominated_by[i] = False
        # exact duplicates: keep the first occurrence only
        dup = np.all(np.abs(v - v[i]) <= rtol, axis=1)
        dup[i:] = False
        if dominated_by.any() or dup.any():
            keep[i] = False
    return keep


def _exact_floor(p: InstallProblem, plan: BudgetSplit, metric: str) -> float:
    """The largest float at most ``plan``'s exact ``metric`` (so the plan meets it as a target)."""
    value = exact_dot(p.weights[metric], plan.installs.to_numpy())
    x = float(value)
    return x if Fraction(x) <= value else float(np.nextafter(x, -np.inf))


def pareto_front(
    models: ChannelModels,
    budget: float,
    objectives: Sequence[str] = ("installs", "retained"),
    n_points: int = 20,
    *,
    limits: ChannelLimits | None = None,
    config: SolverConfig | None = None,
) -> ParetoFront:
    """Trade-off front between two funnel metrics under one budget (epsilon-constraint).

    ``objectives``: two distinct metrics among installs, logins, retained; the
    first is maximised, the second constrained.  ``limits``: the operator's side
    constraints, as in :func:`optimizers.install.optimize_installs`.  Raises ``ValueError`` when the
    constraints are infeasible (the message names the conflicting ones).

    >>> from optimizers.install.curves import ChannelModels, HillCurve
    >>> models = ChannelModels.from_curves(
    ...     {"a": HillCurve(100, 50, 0.8), "b": HillCurve(80, 60, 0.7)},
    ...     login_rate={"a": 0.3, "b": 0.9}, retention_rate=0.5)
    >>> front = pareto_front(models, 200.0, n_points=5)
    >>> len(front) >= 2
    True
    """
    t0 = time.perf_counter()
    objs = tuple(objectives)
    if len(objs) != 2 or objs[0] == objs[1] or any(o not in METRICS for o in objs):
        raise ValueError(
            f"objectives must be two distinct metrics among {METRICS}, got {objectives!r}"
        )
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    cfg = config or SolverConfig()
    first, second = objs
    lim = limits or ChannelLimits()
    base_targets = dict(lim.targets)
    main = InstallSolver(make_problem(models, budget, objective=first, limits=lim), cfg)
    start = main.solve()
    if start.status == "infeasible":
        raise ValueError(f"no feasible plan: {start.message}")
    other = InstallSolver(make_problem(models, budget, objective=second, limits=lim), cfg)
    end = other.solve()

    lo, hi = (_exact_floor(main.problem, plan, second) for plan in (start, end))
    eps = np.linspace(lo, hi, n_points) if hi > lo else np.array([lo])
    # Sweep down from the top: every plan meets the next (lower) epsilon, so it starts
    # the next solve, whose pattern is solved first and the MILP only run if needed.
    swept: list[BudgetSplit] = []
    previous = end
    for e in eps[:0:-1]:
        tg = {**base_targets, second: max(e, base_targets.get(second, 0.0))}
        point = main.solve(tg, start=previous)
        swept.append(point)
        previous = point if point.status != "infeasible" else previous
    points = [start, *swept[::-1]]
    feasible = [i for i, p in enumerate(points) if p.status != "infeasible"]
    points = [points[i] for i in feasible]
    eps = eps[feasible]
    values = np.array([[p.totals[first], p.totals[second]] for p in points])
    keep = _non_dominated(values)
    order = np.argsort(values[keep, 1], kind="stable")
    kept = [p for p, k in zip(points, keep, strict=True) if k]
    return ParetoFront(
        objectives=(first, second),
        points=[kept[i] for i in order],
        epsilons=eps[keep][order],
        n_dominated_removed=int((~keep).sum()),
        solve_time_s=time.perf_counter() - t0,
    )
