"""Install control: split an acquisition budget across channels, with certificates.

Fit Hill response curves per channel (:func:`fit_channels`), forecast a budget
split (:meth:`ChannelModels.forecast`), find the globally optimal split for
installs, logins or next-day retained users (:func:`optimize_installs`), trace
the trade-off between two of them (:func:`pareto_front`), or ask for the least
budget meeting targets (:func:`cheapest_budget`).  The operator's side
constraints are one :class:`ChannelLimits`.  Optimisation combines HiGHS on
piecewise-linear envelopes of the curves (the pattern of a plan: which channels
spend) with Lagrangian duality on the true curves (the exact plan of a pattern and
valid bounds); every result carries its objective, upper bound and gap.

Layout: :mod:`~optimizers.install.curves` and :mod:`~optimizers.install.fitting`
(the channels' response curves), :mod:`~optimizers.install.problem` (limits and
the validated problem), :mod:`~optimizers.install.pwl` and
:mod:`~optimizers.install.model` (the PWL envelopes and their matrix MILP),
:mod:`~optimizers.install.highs` (solver settings, persistent HiGHS),
:mod:`~optimizers.install.lagrange`, :mod:`~optimizers.install.newton` and
:mod:`~optimizers.install.bnb` (the dual on the true curves, its minimisation
and branching), :mod:`~optimizers.install.solve` (certified solves),
:mod:`~optimizers.install.result`, and the methods
:mod:`~optimizers.install.conflicts` and :mod:`~optimizers.install.pareto`.
"""

from optimizers.install.curves import ChannelModel, ChannelModels, HillCurve
from optimizers.install.fitting import FitConfig, fit_channels, fit_hill, wilson_interval
from optimizers.install.highs import SolverConfig
from optimizers.install.model import Approximation
from optimizers.install.pareto import ParetoFront, pareto_front
from optimizers.install.problem import ChannelLimits, InstallProblem, make_problem
from optimizers.install.result import BudgetPlan, BudgetSplit, Conflict
from optimizers.install.solve import InstallSolver, cheapest_budget, optimize_installs

__all__ = [
    "Approximation",
    "BudgetPlan",
    "BudgetSplit",
    "ChannelLimits",
    "ChannelModel",
    "ChannelModels",
    "Conflict",
    "FitConfig",
    "HillCurve",
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
