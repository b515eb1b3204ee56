"""DCN-v2 (Wang et al., 2021): explicit feature crosses next to a deep network.

All fields are embedded by :class:`~predictors.torch.layers.FieldEmbedding` and
flattened into ``x0``.  A :class:`~predictors.torch.layers.CrossNetV2` stack
(``x_{l+1} = x0 * (W_l x_l + b_l) + x_l``) and an :class:`~predictors.torch.layers.MLP`
read ``x0`` in parallel; their outputs are concatenated and a linear layer gives
the logit.  Crosses such as coupon face value x purchase power are products the
MLP would have to approximate; the cross network writes them down directly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from predictors.features import FeatureSpec
from predictors.models.mlp import MLPConfig
from predictors.torch.base import TorchEstimator
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, CrossNetV2, FieldEmbedding


class DCNv2Config(MLPConfig):
    """Hyper-parameters of :class:`DCNv2Model` (the deep network's, then the cross
    network's); names equal its constructor arguments.

    ``cross_rank`` factorises each cross matrix as ``U V^T`` of that rank (the
    paper's low-rank variant); ``None`` uses full ``width x width`` matrices.  The
    input (every field's embedding) is wide, so full cross layers are large and
    slow to train; the low-rank default trains much faster at the same AUC
    (``benchmarks/README.md``).
    """

    cross_layers: int = Field(2, ge=1)
    cross_rank: int | None = Field(32, ge=1)


class DCNv2Net(nn.Module):
    """Field embeddings -> [cross network ‖ MLP] -> linear -> one logit (parallel DCN-v2)."""

    def __init__(self, spec: FeatureSpec, cfg: DCNv2Config) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(spec, cfg.embedding_dim)
        width = self.embedding.flat_dim
        self.cross = CrossNetV2(width, cfg.cross_layers, rank=cfg.cross_rank)
        self.deep = MLP(width, cfg.hidden, dropout=cfg.dropout)
        self.head = nn.Linear(self.cross.out_dim + self.deep.out_dim, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        x0 = self.embedding(batch).flatten(1)  # (batch, fields * dim)
        both = torch.cat([self.cross(x0), self.deep(x0)], dim=1)  # (batch, width + hidden[-1])
        return self.head(both).squeeze(-1)  # (batch,)


class DCNv2Model(TorchEstimator):
    """Conversion probability from a DCN-v2 over all fields of ``feature_spec``.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> model = DCNv2Model(spec, cross_layers=2, epochs=1, seed=1).fit(X, y)
    >>> len(model.module_.cross.layers)
    2
    """

    name = "dcnv2"
    Config = DCNv2Config
    network = DCNv2Net
    tiny_params: ClassVar[dict[str, Any]] = {
        **TorchEstimator.tiny_params,
        "hidden": (32,),
        "cross_layers": 2,
    }
