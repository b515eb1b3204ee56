"""OR-Tools CP-SAT set up the same way for every optimizer that solves exactly with it.

>>> solver = cpsat_solver(time_limit_s=5, num_workers=1, seed=0)
>>> solver.parameters.max_time_in_seconds, solver.parameters.num_workers
(5.0, 1)
"""

from __future__ import annotations

from ortools.sat.python import cp_model


def cpsat_solver(*, time_limit_s: float, num_workers: int, seed: int) -> cp_model.CpSolver:
    """A CP-SAT solver stopped after ``time_limit_s`` seconds, searching with
    ``num_workers`` workers from random seed ``seed`` (a fixed seed and worker count
    make its plans reproducible); a caller sets any further parameter itself."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = int(num_workers)
    solver.parameters.random_seed = int(seed)
    return solver
