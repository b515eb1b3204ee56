"""Shared-bottom multi-task model: one shared MLP bottom, a tower per task.

The auxiliary label and the two-part loss live in
:mod:`predictors.torch.multitask`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field as PydanticField
from torch import nn

from predictors.features import FeatureSpec
from predictors.torch.base import MiniBatchConfig
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, FieldEmbedding
from predictors.torch.multitask import AuxLabels, MultiTaskEstimator, input_spec


class SharedBottomConfig(MiniBatchConfig):
    """Hyper-parameters of :class:`SharedBottomModel`; names equal its constructor arguments."""

    embedding_dim: int = PydanticField(16, ge=1)
    bottom_hidden: tuple[int, ...] = PydanticField((128,), min_length=1)
    tower_hidden: tuple[int, ...] = PydanticField((64,), min_length=1)
    dropout: float = PydanticField(0.1, ge=0, lt=1)
    aux_column: str = PydanticField("aux_label", min_length=1)
    aux_weight: float = PydanticField(1.0, ge=0)


class SharedBottomNet(nn.Module):
    """Field embeddings -> shared MLP bottom -> one MLP tower (one logit) per task."""

    def __init__(self, spec: FeatureSpec, cfg: SharedBottomConfig) -> None:
        super().__init__()
        self.aux_labels = AuxLabels(spec)
        self.embedding = FieldEmbedding(input_spec(spec), cfg.embedding_dim)
        width = self.embedding.n_fields * cfg.embedding_dim
        self.bottom = MLP(width, cfg.bottom_hidden, dropout=cfg.dropout)
        self.towers = nn.ModuleList(
            MLP(self.bottom.out_dim, cfg.tower_hidden, dropout=cfg.dropout, output_dim=1)
            for _ in range(self.aux_labels.n_tasks)
        )

    def task_logits(self, batch: Batch) -> torch.Tensor:
        shared = self.bottom(self.embedding(batch).flatten(1))  # (batch, bottom)
        return torch.cat([tower(shared) for tower in self.towers], dim=1)  # (batch, tasks)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.task_logits(batch)[:, 0]  # (batch,)


class SharedBottomModel(MultiTaskEstimator):
    """Multi-task conversion model: one shared MLP bottom, a tower per task.

    Task 0 is ``y`` (target-domain conversion); task 1 is ``X[aux_column]`` when
    present (e.g. source-domain conversion).  See the module docstring.

    Example:

    >>> from predictors.examples import DOMAINS, two_domain_frame
    >>> from predictors.features import FeatureSpec
    >>> X, y, _ = two_domain_frame(600)
    >>> spec = FeatureSpec.infer(X, DOMAINS)
    >>> rows = X.assign(aux_label=(X["src_spend"] > 0).astype(float))  # 0/1, NaN where unknown
    >>> model = SharedBottomModel(spec, epochs=1, seed=1).fit(rows, y)
    >>> model.predict_proba(X).shape  # X needs no aux_label
    (600, 2)
    """

    name = "shared_bottom"
    Config = SharedBottomConfig
    tiny_params: ClassVar[dict[str, Any]] = {
        "epochs": 2,
        "batch_size": 256,
        "bottom_hidden": (32,),
        "tower_hidden": (16,),
    }

    def build(self, spec: FeatureSpec) -> nn.Module:
        return SharedBottomNet(spec, self.config_)
