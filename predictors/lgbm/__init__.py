"""The LightGBM predictors' common ground: :class:`LightGBMEstimator`, tree splits, the
conversion model."""

from predictors.lgbm.base import LightGBMConfig, LightGBMEstimator, TabularScorer
from predictors.lgbm.conversion import LightGBMModel
from predictors.lgbm.trees import TreeSplit, split_trees

__all__ = [
    "LightGBMConfig",
    "LightGBMEstimator",
    "LightGBMModel",
    "TabularScorer",
    "TreeSplit",
    "split_trees",
]
