"""Shared-bottom multi-task model: one shared MLP bottom, a tower per task.

The auxiliary label and the two-part loss live in
:mod:`predictors.torch.multitask`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from predictors.features import FeatureSpec
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP
from predictors.torch.multitask import MultiTaskConfig, MultiTaskEstimator, MultiTaskNet


class SharedBottomConfig(MultiTaskConfig):
    """Hyper-parameters of :class:`SharedBottomModel`; names equal its constructor arguments."""

    bottom_hidden: tuple[int, ...] = Field((128,), min_length=1)
    tower_hidden: tuple[int, ...] = Field((64,), min_length=1)


class SharedBottomNet(MultiTaskNet):
    """Field embeddings -> shared MLP bottom -> one MLP tower (one logit) per task."""

    def __init__(self, spec: FeatureSpec, cfg: SharedBottomConfig) -> None:
        super().__init__(spec, cfg.embedding_dim)
        self.bottom = MLP(self.embedding.flat_dim, cfg.bottom_hidden, dropout=cfg.dropout)
        self.towers = nn.ModuleList(
            MLP(self.bottom.out_dim, cfg.tower_hidden, dropout=cfg.dropout, output_dim=1)
            for _ in range(self.n_tasks)
        )

    def task_logits(self, batch: Batch) -> torch.Tensor:
        shared = self.bottom(self.embedding(batch).flatten(1))  # (batch, bottom)
        return torch.cat([tower(shared) for tower in self.towers], dim=1)  # (batch, tasks)


class SharedBottomModel(MultiTaskEstimator):
    """Multi-task conversion model: one shared MLP bottom, a tower per task.

    Task 0 is ``y`` of the target rows; task 1 is ``y`` of the source rows (the
    ``domain`` sample column) or ``X[aux_column]`` when present.  See
    :mod:`predictors.torch.multitask`.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> rows = X.assign(aux_label=(X["src_spend"] > 0).astype(float))  # 0/1, NaN where unknown
    >>> model = SharedBottomModel(spec, epochs=1, seed=1).fit(rows, y)
    >>> model.predict_proba(X).shape  # X needs no aux_label
    (600, 2)
    >>> from predictors.examples import sampled_frame
    >>> X, y, _ = sampled_frame(600)  # labelled source rows: the auxiliary task
    >>> model = SharedBottomModel(spec, epochs=1, seed=1).fit(X, y)
    >>> source = X[X.domain == "source"].head(3)  # answered by the source tower
    >>> bool((model.predict_proba(source) != model.predict_proba(source.drop(columns="domain"))).all())
    True
    """

    name = "shared_bottom"
    Config = SharedBottomConfig
    network = SharedBottomNet
    tiny_params: ClassVar[dict[str, Any]] = {
        **MultiTaskEstimator.tiny_params,
        "bottom_hidden": (32,),
        "tower_hidden": (16,),
    }
