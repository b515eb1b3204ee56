"""MMOE (Ma et al., 2018): shared experts, one softmax gate and one tower per task.

Where a shared bottom forces both tasks through the same representation, MMOE
lets each task mix the experts it needs, so a weakly related auxiliary task
(source-domain conversion) hurts the main one less.  The auxiliary label rides
in ``X[aux_column]`` exactly as for every model of :mod:`predictors.torch.multitask`;
:meth:`MMOEModel.gates` exposes the per-row gate weights.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from predictors.base import check_is_fitted
from predictors.features import FeatureSpec
from predictors.torch.base import PREDICT_BATCH
from predictors.torch.inputs import Batch, chunks
from predictors.torch.layers import MLP, MixtureOfExperts
from predictors.torch.multitask import MultiTaskConfig, MultiTaskEstimator, MultiTaskNet


class MMOEConfig(MultiTaskConfig):
    """Hyper-parameters of :class:`MMOEModel`; names equal its constructor arguments."""

    n_experts: int = Field(4, ge=1)
    expert_hidden: tuple[int, ...] = Field((64,), min_length=1)
    tower_hidden: tuple[int, ...] = Field((32,), min_length=1)


class MMOENet(MultiTaskNet):
    """Field embeddings -> experts mixed by per-task gates -> one MLP tower per task."""

    def __init__(self, spec: FeatureSpec, cfg: MMOEConfig) -> None:
        super().__init__(spec, cfg.embedding_dim)
        self.experts = MixtureOfExperts(
            self.embedding.flat_dim,
            n_experts=cfg.n_experts,
            n_tasks=self.n_tasks,
            expert_hidden=cfg.expert_hidden,
            dropout=cfg.dropout,
        )
        self.towers = nn.ModuleList(
            MLP(self.experts.out_dim, cfg.tower_hidden, dropout=cfg.dropout, output_dim=1)
            for _ in range(self.n_tasks)
        )

    def mix(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-task mixed expert outputs ``(batch, tasks, d)`` and gates ``(batch, tasks, experts)``."""
        return self.experts(self.embedding(batch).flatten(1))

    def task_logits(self, batch: Batch) -> torch.Tensor:
        mixed, _ = self.mix(batch)  # (batch, tasks, d)
        return torch.cat([t(mixed[:, k]) for k, t in enumerate(self.towers)], dim=1)  # (b, tasks)


class MMOEModel(MultiTaskEstimator):
    """Multi-gate mixture-of-experts over all domains; task 0 is ``y``, task 1 ``X[aux_column]``.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> rows = X.assign(aux_label=(X["src_spend"] > 0).astype(float))  # 0/1, NaN where unknown
    >>> model = MMOEModel(spec, n_experts=4, epochs=1, seed=1).fit(rows, y)
    >>> model.gates(X).shape  # (rows, tasks, experts); each gate sums to 1
    (600, 2, 4)
    """

    name = "mmoe"
    Config = MMOEConfig
    network = MMOENet
    tiny_params: ClassVar[dict[str, Any]] = {
        **MultiTaskEstimator.tiny_params,
        "n_experts": 2,
        "expert_hidden": (16,),
        "tower_hidden": (8,),
    }

    def gates(self, X: pd.DataFrame) -> np.ndarray:
        """Gate weights ``(rows, tasks, experts)`` of every row: which experts each task uses."""
        check_is_fitted(self, "module_")
        data = self.encoder_.encode(self.complete_frame(X))
        self.module_.eval()
        with torch.no_grad():
            parts = [self.module_.mix(rows)[1] for rows in chunks(data, PREDICT_BATCH)]
        return torch.cat(parts).numpy().astype(np.float64)
