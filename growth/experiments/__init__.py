"""Bring your own experiment: a randomised campaign log in, a certified plan and its value out.

* :mod:`~growth.experiments.schema`: the format (``log`` and ``arms`` tables);
* :mod:`~growth.experiments.log`: reading and validation (:func:`read_experiment`);
* :mod:`~growth.experiments.export`: a simulated world's randomised log in the format,
  with the truth behind it;
* :mod:`~growth.experiments.learners`: uplift per arm (T-learners over the registry's
  predictors, X- and DR-learners);
* :mod:`~growth.experiments.plan`: the certified allocation under a total and per-arm
  budgets (the coupon optimizer), and the baselines at the same budgets;
* IPS, SNIPS and DR estimates with intervals come from :mod:`predictors.off_policy`
  (shared with the coupon plan's value);
* :mod:`~growth.experiments.analysis`: the whole analysis (:func:`analyse_experiment`).
"""

from growth.experiments.analysis import (
    ExperimentReport,
    ExperimentSettings,
    analyse_experiment,
)
from growth.experiments.export import WorldExperiment, world_experiment
from growth.experiments.learners import LEARNERS, fit_learner, learner_names
from growth.experiments.log import (
    Experiment,
    read_experiment,
    validate_experiment,
    write_experiment,
)

__all__ = [
    "LEARNERS",
    "Experiment",
    "ExperimentReport",
    "ExperimentSettings",
    "WorldExperiment",
    "analyse_experiment",
    "fit_learner",
    "learner_names",
    "read_experiment",
    "validate_experiment",
    "world_experiment",
    "write_experiment",
]
