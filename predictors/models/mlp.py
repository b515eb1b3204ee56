"""Plain MLP over every field's embedding: the reference deep model.

All fields of all domains are embedded by :class:`~predictors.torch.layers.FieldEmbedding`,
flattened and fed to one :class:`~predictors.torch.layers.MLP`.  Deliberately lean:
it is the throughput yardstick the richer models (CSDE, DCN-v2, MMOE) are
measured against.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from predictors.features import FeatureSpec
from predictors.torch.base import MiniBatchConfig, TorchEstimator
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, FieldEmbedding


class MLPConfig(MiniBatchConfig):
    """Hyper-parameters of :class:`MLPModel`; names equal its constructor arguments."""

    embedding_dim: int = Field(16, ge=1)
    hidden: tuple[int, ...] = Field((128, 64), min_length=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class MLPNet(nn.Module):
    """Field embeddings -> flatten -> MLP -> one logit."""

    def __init__(self, spec: FeatureSpec, cfg: MLPConfig) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(spec, cfg.embedding_dim)
        self.mlp = MLP(self.embedding.flat_dim, cfg.hidden, dropout=cfg.dropout, output_dim=1)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch)  # (batch, fields, dim)
        return self.mlp(emb.flatten(1)).squeeze(-1)  # (batch,)


class MLPModel(TorchEstimator):
    """Conversion probability from an MLP over all fields of ``feature_spec``.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> model = MLPModel(spec, epochs=1, hidden=(16,), seed=1).fit(X, y)
    >>> model.predict_proba(X).shape
    (600, 2)
    """

    name = "mlp"
    Config = MLPConfig
    network = MLPNet
    tiny_params: ClassVar[dict[str, Any]] = {**TorchEstimator.tiny_params, "hidden": (32,)}
