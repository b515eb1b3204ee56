"""Common ground of the PyTorch predictors: inputs, shared layers, the estimator base.

- :mod:`predictors.torch.inputs`: raw frame -> ``dict[str, Tensor]`` per field.
- :mod:`predictors.torch.layers`: FieldEmbedding, MLP, CrossNetV2,
  AttentionPooling, MixtureOfExperts, domain_present.
- :mod:`predictors.torch.base`: TorchEstimator (training, early stopping,
  save/load), TrainConfig / MiniBatchConfig, using_torch_threads.
- :mod:`predictors.torch.staged`: TwoStageEstimator (the cross-domain models), per_domain_bce.
- :mod:`predictors.torch.samples`: the sample columns ``domain``/``scene`` (carried, never
  embedded), SampleColumns (batch -> is_source, scene), SampleEstimator.
- :mod:`predictors.torch.multitask`: MultiTaskEstimator and the auxiliary label.
- :mod:`predictors.torch.scoring`: the grouped scorer (entities encoded once).
"""

from predictors.torch.base import MiniBatchConfig, TorchEstimator, TrainConfig, using_torch_threads
from predictors.torch.inputs import Batch, FrameEncoder, missing_key, take
from predictors.torch.layers import (
    MLP,
    AttentionPooling,
    CrossNetV2,
    FieldEmbedding,
    MixtureOfExperts,
    domain_present,
)

__all__ = [
    "MLP",
    "AttentionPooling",
    "Batch",
    "CrossNetV2",
    "FieldEmbedding",
    "FrameEncoder",
    "MiniBatchConfig",
    "MixtureOfExperts",
    "TorchEstimator",
    "TrainConfig",
    "domain_present",
    "missing_key",
    "take",
    "using_torch_threads",
]
