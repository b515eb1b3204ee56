"""Push scheduling under fatigue: exact CP-SAT for small days, Lagrangian DP for large ones.

Layout: :mod:`~optimizers.push.problem` (the data and its validation),
:mod:`~optimizers.push.model` (the CP-SAT path model), :mod:`~optimizers.push.solve`
(method dispatch and the CP-SAT solve), :mod:`~optimizers.push.result` (the
schedule and its certificate), and the methods
:mod:`~optimizers.push.decomposition` and :mod:`~optimizers.push.repair`.

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

from optimizers.push.decomposition import DecompositionConfig, solve_decomposition
from optimizers.push.model import build_cpsat_model
from optimizers.push.problem import PushInfeasibleError, PushProblem
from optimizers.push.result import PushSchedule
from optimizers.push.solve import CPSAT_MAX_VARIABLES, schedule_push, solve_cpsat

__all__ = [
    "CPSAT_MAX_VARIABLES",
    "DecompositionConfig",
    "PushInfeasibleError",
    "PushProblem",
    "PushSchedule",
    "build_cpsat_model",
    "schedule_push",
    "solve_cpsat",
    "solve_decomposition",
]
