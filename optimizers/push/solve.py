"""Solving push problems: method dispatch and the exact CP-SAT solve.

* ``'cpsat'``: the path model of :mod:`optimizers.push.model`, solved by OR-Tools
  CP-SAT; the schedule is read only from an optimal or feasible status.
* ``'decomposition'``: :mod:`optimizers.push.decomposition` (Lagrangian prices,
  exact per-user DP, :mod:`optimizers.push.repair`).
* ``'auto'``: CP-SAT when the model has at most :data:`CPSAT_MAX_VARIABLES`
  binaries, the decomposition otherwise.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
from ortools.sat.python import cp_model

from optimizers.cpsat import cpsat_solver
from optimizers.push.decomposition import DecompositionConfig, solve_decomposition
from optimizers.push.model import build_cpsat_model
from optimizers.push.problem import PushProblem
from optimizers.push.result import PushSchedule, make_schedule

CPSAT_MAX_VARIABLES = 20_000  # 'auto' uses CP-SAT up to this many w[u, m, h, j] variables


def schedule_push(
    problem: PushProblem,
    *,
    method: Literal["auto", "cpsat", "decomposition"] = "auto",
    time_limit_s: float = 60.0,
    tol: float = 1e-3,
    max_iter: int = 300,
    num_workers: int = 1,
    seed: int = 0,
    repair_every: int = 1,
) -> PushSchedule:
    """Schedule the day's pushes and certify the plan.

    ``method='auto'`` picks CP-SAT when the position-indexed model has at most
    :data:`CPSAT_MAX_VARIABLES` binaries and the decomposition otherwise.
    ``tol`` is the decomposition's target relative gap and ``max_iter`` its
    number of subgradient iterations, repairing its Lagrangian solution into a
    schedule every ``repair_every`` of them: stopped by them (not by ``time_limit_s``)
    the decomposition's plan does not depend on the machine's speed or load.
    ``num_workers`` and ``seed`` are CP-SAT's.
    """
    if method not in ("auto", "cpsat", "decomposition"):
        raise ValueError(f"method must be 'auto', 'cpsat' or 'decomposition'; got {method!r}")
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0; got {time_limit_s}")
    if method == "auto":
        n_pos = problem.max_pushes_per_user if problem.decay < 1 else 1
        n_vars = int(problem.candidate_mask.sum()) * problem.n_hours * n_pos
        method = "cpsat" if n_vars <= CPSAT_MAX_VARIABLES else "decomposition"
    if method == "cpsat":
        return solve_cpsat(problem, time_limit_s=time_limit_s, num_workers=num_workers, seed=seed)
    config = DecompositionConfig(
        tol=tol, time_limit_s=time_limit_s, max_iter=max_iter, repair_every=repair_every
    )
    return solve_decomposition(problem, config)


def solve_cpsat(
    problem: PushProblem,
    *,
    time_limit_s: float = 60.0,
    num_workers: int = 1,
    seed: int = 0,
) -> PushSchedule:
    """Solve ``problem`` exactly with CP-SAT (or to the time limit, with a proven bound)."""
    t0 = time.perf_counter()
    built = build_cpsat_model(problem)
    solver = cpsat_solver(time_limit_s=time_limit_s, num_workers=num_workers, seed=seed)
    solver.parameters.linearization_level = 2  # use the (tight) LP of the path model
    code = solver.solve(built.model)
    if code == cp_model.INFEASIBLE or code == cp_model.MODEL_INVALID:
        # The empty schedule is always feasible, so this signals a modelling bug.
        raise RuntimeError(f"CP-SAT reported {solver.status_name(code)} for a feasible model")
    users: list[int] = []
    msgs: list[int] = []
    hours: list[int] = []
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        for (u, m, h, _a), var in built.push.items():
            if solver.boolean_value(var):
                users.append(u)
                msgs.append(m)
                hours.append(h)
    found = code in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    if not built.push:
        bound = 0.0
    elif found:
        bound = solver.best_objective_bound / built.scale
    else:  # time limit before any solution: the empty plan, with no proven bound
        bound = np.inf
    status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible"}.get(code, "unknown")
    if not built.push:
        status = "optimal"
    return make_schedule(
        problem,
        np.array(users, dtype=np.int64),
        np.array(msgs, dtype=np.int64),
        np.array(hours, dtype=np.int64),
        upper_bound=bound,
        status=status,
        solve_time_s=time.perf_counter() - t0,
        method="cpsat",
        dual_capacity=np.full(problem.n_hours, np.nan),
        dual_industry=np.full(problem.n_industries, np.nan),
        info={"cpsat_status": solver.status_name(code), "n_push_arcs": len(built.push)},
    )
