"""Push scheduling under fatigue: exact CP-SAT for small days, Lagrangian DP for large ones.

Example
-------
>>> import numpy as np
>>> from optimizers.push import PushProblem, schedule_push
>>> rng = np.random.default_rng(0)
>>> prob = PushProblem(rng.uniform(0, 0.3, (4, 2, 24)), [["a", "b"]] * 4,
...                    fatigue_cap=2, min_gap=4, capacity=2, decay=0.7)
>>> plan = schedule_push(prob, method="decomposition")
>>> plan.objective <= plan.upper_bound and prob.violations(
...     plan.pushes.user, plan.pushes.message, plan.pushes.hour) == []
True
"""

from __future__ import annotations

from typing import Literal

from optimizers.push.decomposition import DecompositionConfig, solve_decomposition
from optimizers.push.exact import build_cpsat_model, solve_cpsat
from optimizers.push.problem import PushInfeasibleError, PushProblem, PushSchedule

__all__ = [
    "DecompositionConfig",
    "PushInfeasibleError",
    "PushProblem",
    "PushSchedule",
    "build_cpsat_model",
    "schedule_push",
    "solve_cpsat",
    "solve_decomposition",
]

CPSAT_MAX_VARIABLES = 20_000  # 'auto' uses CP-SAT up to this many w[u, m, h, j] variables


def schedule_push(
    problem: PushProblem,
    *,
    method: Literal["auto", "cpsat", "decomposition"] = "auto",
    time_limit_s: float = 60.0,
    tol: float = 1e-3,
    num_workers: int = 1,
    seed: int = 0,
) -> PushSchedule:
    """Schedule the day's pushes and certify the plan.

    ``method='auto'`` picks CP-SAT when the position-indexed model has at most
    :data:`CPSAT_MAX_VARIABLES` binaries and the decomposition otherwise.
    ``tol`` is the decomposition's target relative gap; ``num_workers`` and
    ``seed`` are CP-SAT's (the decomposition is deterministic).
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
    return solve_decomposition(problem, DecompositionConfig(tol=tol, time_limit_s=time_limit_s))
