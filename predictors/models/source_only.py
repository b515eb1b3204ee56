"""Source-only: the MLP trained on the source domain's labelled rows, scored on the target's.

The lower comparison of the transfer models (WE-CAN, DANN, ...): what the payments app's
labels alone say about the shop.  A thin configuration of :class:`~predictors.models.mlp.MLPModel`:
:class:`~predictors.torch.samples.OneDomainEstimator` keeps the rows whose ``domain`` is
``"source"`` (for training, validation, early stopping and calibration alike), so no
target label reaches the model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from predictors.models.mlp import MLPModel
from predictors.torch.samples import SOURCE, OneDomainEstimator


class SourceOnlyModel(OneDomainEstimator, MLPModel):
    """The MLP fitted on the source rows of ``X`` only; it scores any row.

    Example:

    >>> from predictors.examples import DOMAINS, sampled_frame
    >>> from predictors.features import FeatureSpec
    >>> X, y, _ = sampled_frame(800)
    >>> model = SourceOnlyModel(FeatureSpec.infer(X, DOMAINS), epochs=1, seed=1).fit(X, y)
    >>> target = X[X.domain == "target"]
    >>> model.predict_proba(target).shape
    (562, 2)
    """

    name = "source_only"
    trains_on = SOURCE
    tiny_params: ClassVar[dict[str, Any]] = {**MLPModel.tiny_params, "epochs": 5, "batch_size": 64}
