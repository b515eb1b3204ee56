"""Coupon allocation: a multiple-choice knapsack with budgets, coverage and ROI floors.

Give each user at most one coupon option (or none) to maximise predicted
incremental value within a global budget, per-type / per-merchant budgets,
minimum coverage per segment and an ROI floor.  Every result carries its
certificate (objective, valid upper bound, gap, duals, status, time).

Layout: :mod:`~optimizers.coupons.problem` (the data, its validation and the
constraints), :mod:`~optimizers.coupons.model` (the MIP of the exact methods),
:mod:`~optimizers.coupons.solve` (method dispatch and the exact solvers),
:mod:`~optimizers.coupons.result` (the plan and its certificate), and the
methods :mod:`~optimizers.coupons.lagrangian` (with :mod:`~optimizers.coupons.dual`,
:mod:`~optimizers.coupons.polish` and :mod:`~optimizers.coupons.exact`),
:mod:`~optimizers.coupons.repair`, :mod:`~optimizers.coupons.pareto` and
:mod:`~optimizers.coupons.online`.

Methods: ``'highs'`` (exact MIP, HiGHS via highspy), ``'cpsat'`` (exact,
OR-Tools CP-SAT on integer-scaled data), ``'lagrangian'`` (bisection on one price,
box-stabilised cutting planes on several, an exact LP over the undecided users,
and a repair and fill that keep every constraint in exact arithmetic; for
millions of users) and ``'auto'`` (the Lagrangian; the exact MIP as well on a
small instance whose Lagrangian gap misses ``rel_gap``).  Every bound is one of
the problem as posed (see :mod:`~optimizers.coupons.dual`).
:class:`OnlineAllocator` answers single requests with the nightly dual price and
paces spend through the day; :class:`BudgetPacer` does so under several budgets at
once, paced to targets and never paid beyond caps.  Dual prices, group spends and the constraints are
keyed by the budgets' own names (``budget_name``, the keys of ``budget_groups``).

Example
-------
>>> import numpy as np
>>> from optimizers.coupons import allocate
>>> rng = np.random.default_rng(0)
>>> value = rng.uniform(0.0, 0.05, size=(1000, 6))        # incremental conversions
>>> cost = rng.uniform(0.5, 3.0, size=(1000, 6))          # expected cost per option
>>> plan = allocate(value, cost, budget=500.0, method="lagrangian")
>>> plan.spend <= 500.0 and plan.gap < 0.01
True
>>> plan.choice.shape, plan.status in ("optimal", "feasible")
((1000,), True)
>>> segs = np.where(np.arange(1000) < 200, "new", "active")
>>> plan = allocate(value, cost, 500.0, segments=segs, min_coverage={"new": 0.9})
>>> plan.coverage["new"] >= 0.9
True
>>> groups = {"merchant_7": ([5], 20.0)}
>>> plan = allocate(value, cost, 500.0, budget_name="platform", budget_groups=groups,
...                 global_options=[True] * 5 + [False], method="lagrangian")
>>> sorted(plan.dual) == sorted(["platform", *plan.group_spend])
True
"""

from optimizers.certificate import Certificate, InfeasibleError
from optimizers.coupons.online import (
    DAILY_TRAFFIC,
    BudgetPacer,
    DayReport,
    OnlineAllocator,
    simulate_day,
)
from optimizers.coupons.pareto import ParetoPoint, non_dominated, pareto_front, solve_front
from optimizers.coupons.problem import OPTION_TYPES, CouponProblem, LinearConstraint
from optimizers.coupons.result import CouponAllocation
from optimizers.coupons.solve import (
    AUTO_EXACT_MAX_VARS,
    METHODS,
    RepairFailedError,
    allocate,
    solve,
)

__all__ = [
    "AUTO_EXACT_MAX_VARS",
    "DAILY_TRAFFIC",
    "METHODS",
    "OPTION_TYPES",
    "BudgetPacer",
    "Certificate",
    "CouponAllocation",
    "CouponProblem",
    "DayReport",
    "InfeasibleError",
    "LinearConstraint",
    "OnlineAllocator",
    "ParetoPoint",
    "RepairFailedError",
    "allocate",
    "non_dominated",
    "pareto_front",
    "simulate_day",
    "solve",
    "solve_front",
]
