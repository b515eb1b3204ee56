"""Self-train: the MLP trained on the target domain's rows only, ignoring the source's.

The comparison the transfer models must beat to show that source samples help (WE-CAN's
"self-train").  A thin configuration of :class:`~predictors.models.mlp.MLPModel`:
:class:`~predictors.torch.samples.OneDomainEstimator` keeps the rows whose ``domain`` is
``"target"``; a frame without ``domain`` is all target rows, so it is then the plain MLP.
"""

from __future__ import annotations

from typing import Any, ClassVar

from predictors.models.mlp import MLPModel
from predictors.torch.samples import TARGET, OneDomainEstimator


class SelfTrainModel(OneDomainEstimator, MLPModel):
    """The MLP fitted on the target rows of ``X`` only.

    Example:

    >>> from predictors.examples import DOMAINS, sampled_frame
    >>> from predictors.features import FeatureSpec
    >>> X, y, _ = sampled_frame(800)
    >>> model = SelfTrainModel(FeatureSpec.infer(X, DOMAINS), epochs=1, seed=1).fit(X, y)
    >>> model.predict_proba(X).shape
    (800, 2)
    """

    name = "self_train"
    trains_on = TARGET
    tiny_params: ClassVar[dict[str, Any]] = MLPModel.tiny_params
