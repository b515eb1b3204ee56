"""Install control: split an acquisition budget across channels, with certificates.

Fit Hill response curves per channel (:func:`fit_channels`), forecast a budget
split (:meth:`ChannelModels.forecast`), find the globally optimal split for
installs, logins or next-day retained users (:func:`optimize_installs`), trace
the trade-off between two of them (:func:`pareto_front`), or ask for the least
budget meeting targets (:func:`cheapest_budget`).  Optimisation uses Pyomo +
HiGHS on piecewise-linear envelopes of the curves; every result carries its
objective, upper bound and gap.
"""

from optimizers.install.curves import (
    ChannelModel,
    ChannelModels,
    FitConfig,
    HillCurve,
    fit_channels,
    fit_hill,
    wilson_interval,
)
from optimizers.install.model import Approximation, InstallProblem, make_problem
from optimizers.install.pareto import ParetoFront, pareto_front
from optimizers.install.solve import (
    BudgetPlan,
    Conflict,
    InstallPlan,
    InstallSolver,
    SolverConfig,
    cheapest_budget,
    optimize_installs,
)

__all__ = [
    "Approximation",
    "BudgetPlan",
    "ChannelModel",
    "ChannelModels",
    "Conflict",
    "FitConfig",
    "HillCurve",
    "InstallPlan",
    "InstallProblem",
    "InstallSolver",
    "ParetoFront",
    "SolverConfig",
    "cheapest_budget",
    "fit_channels",
    "fit_hill",
    "make_problem",
    "optimize_installs",
    "pareto_front",
    "wilson_interval",
]
