"""PLE (Tang et al., 2020): progressive layered extraction, one task per scene.

The tasks are the scenes of the ``scene`` sample column (:mod:`predictors.torch.samples`),
the source domain's among them; without a ``scene`` column they are the domains (target,
source), without either there is one task.  Each level
(:class:`~predictors.torch.transfer_layers.ExtractionLayer`, a customized gate control)
has shared experts and ``n_specific`` experts per task; each task's gate mixes its own and
the shared experts, and below the last level a shared gate mixes all experts for the next
level's shared input.  ``n_levels`` levels are stacked; one MLP tower per task.  A row's
loss and prediction are its own task's tower's; a row of a scene unseen in fit counts as
the default scene.
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
from predictors.torch.samples import SampleColumns, SampleEstimator, input_spec
from predictors.torch.transfer_layers import ExtractionLayer


class PLEConfig(MiniBatchConfig):
    """Hyper-parameters of :class:`PLEModel`; names equal its constructor arguments."""

    embedding_dim: int = Field(16, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    n_levels: int = Field(2, ge=1)
    n_shared: int = Field(2, ge=1)
    n_specific: int = Field(1, ge=1)
    expert_hidden: tuple[int, ...] = Field((64,), min_length=1)
    tower_hidden: tuple[int, ...] = Field((32,), min_length=1)


class PLENet(nn.Module):
    """Embeddings -> ``n_levels`` extraction layers -> one tower per task."""

    def __init__(self, spec: FeatureSpec, cfg: PLEConfig) -> None:
        super().__init__()
        self.samples = SampleColumns(spec)
        self.n_tasks = len(self.samples.groups)
        self.embedding = FieldEmbedding(input_spec(spec), cfg.embedding_dim)
        width, levels = self.embedding.flat_dim, []
        for level in range(cfg.n_levels):
            levels.append(
                ExtractionLayer(
                    width,
                    n_tasks=self.n_tasks,
                    n_shared=cfg.n_shared,
                    n_specific=cfg.n_specific,
                    expert_hidden=cfg.expert_hidden,
                    dropout=cfg.dropout,
                    shared_gate=level < cfg.n_levels - 1,
                )
            )
            width = levels[-1].out_dim
        self.levels = nn.ModuleList(levels)
        self.towers = nn.ModuleList(
            MLP(width, cfg.tower_hidden, dropout=cfg.dropout, output_dim=1)
            for _ in range(self.n_tasks)
        )

    def task_logits(self, batch: Batch) -> torch.Tensor:
        x = self.embedding(batch).flatten(1)  # (batch, fields * dim)
        inputs = [x] * (self.n_tasks + 1)  # one per task, then the shared one
        for level in self.levels:
            inputs = level(inputs)
        return torch.cat([t(inputs[k]) for k, t in enumerate(self.towers)], dim=1)  # (b, tasks)

    def forward(self, batch: Batch) -> torch.Tensor:
        task = self.samples.group(batch).unsqueeze(1)  # (batch, 1)
        return self.task_logits(batch).gather(1, task).squeeze(1)  # (batch,)


class PLEModel(SampleEstimator):
    """Progressive layered extraction over the scenes (see the module docstring).

    Example:

    >>> from predictors.examples import DOMAINS, sampled_frame
    >>> from predictors.features import FeatureSpec
    >>> X, y, _ = sampled_frame(800)
    >>> model = PLEModel(FeatureSpec.infer(X, DOMAINS), epochs=1, seed=1).fit(X, y)
    >>> model.module_.n_tasks, len(model.module_.levels)
    (4, 2)
    >>> model.predict_proba(X).shape
    (800, 2)
    """

    name = "ple"
    Config = PLEConfig
    network = PLENet
    tiny_params: ClassVar[dict[str, Any]] = {
        **TorchEstimator.tiny_params,
        "epochs": 4,
        "batch_size": 128,
        "expert_hidden": (16,),
        "tower_hidden": (8,),
    }
