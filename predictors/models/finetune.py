"""Train on the source task, then fine-tune on the target task: the transfer-learning baseline.

One network (field embeddings -> MLP -> one logit) is trained in two phases:

1. **pretrain** for ``pretrain_epochs``, with no early stopping, on the source rows: the
   rows whose ``domain`` is ``"source"`` (:mod:`predictors.torch.samples`) with their
   ``y``, and the rows that carry an auxiliary label ``X[aux_column]`` (0/1, NaN
   elsewhere; the older path) with that label.
2. **fine-tune** on the target rows (not source, with a positive ``sample_weight``; all
   rows without either) with ``y`` as the target, a fresh optimiser at
   ``lr * finetune_lr_scale``, and early stopping on the target validation rows' loss.

``history_`` holds both phases (``"phase"`` is ``"pretrain"`` or ``"finetune"``;
epochs are numbered across phases).  Without source rows only phase 2 runs, so the model
degrades to a plain MLP.  The one head answers for the target domain, source rows too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from predictors.features import FeatureSpec
from predictors.models.mlp import MLPConfig, MLPModel
from predictors.torch.base import Rows
from predictors.torch.inputs import Batch, take
from predictors.torch.layers import MLP
from predictors.torch.multitask import MultiTaskEstimator, MultiTaskNet


class FineTuneConfig(MLPConfig):
    """Hyper-parameters of :class:`FineTuneModel` (the MLP's, then the two phases'); names
    equal its constructor arguments."""

    aux_column: str = Field("aux_label", min_length=1)
    pretrain_epochs: int = Field(5, ge=0)
    finetune_lr_scale: float = Field(0.5, gt=0, le=1)


class FineTuneNet(MultiTaskNet):
    """Field embeddings -> MLP -> one logit; the same head serves both phases."""

    def __init__(self, spec: FeatureSpec, cfg: FineTuneConfig) -> None:
        super().__init__(spec, cfg.embedding_dim)
        self.mlp = MLP(self.embedding.flat_dim, cfg.hidden, dropout=cfg.dropout, output_dim=1)

    def task_logits(self, batch: Batch) -> torch.Tensor:
        return self.mlp(self.embedding(batch).flatten(1))  # (batch, 1): one task at a time


class FineTuneModel(MultiTaskEstimator):
    """Pretrain on auxiliary (source) labels, then fine-tune on ``y`` (see the module docstring).

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> rows = X.assign(aux_label=y.astype(float))
    >>> rows.loc[300:, "aux_label"] = float("nan")  # NaN on target rows
    >>> w = rows["aux_label"].isna().astype(float)  # target rows only in phase 2
    >>> model = FineTuneModel(spec, pretrain_epochs=1, epochs=1, seed=1)
    >>> [h["phase"] for h in model.fit(rows, y, sample_weight=w).history_]
    ['pretrain', 'finetune']
    """

    name = "finetune"
    Config = FineTuneConfig
    network = FineTuneNet
    tiny_params: ClassVar[dict[str, Any]] = {**MLPModel.tiny_params, "pretrain_epochs": 1}

    def _train(
        self,
        module: nn.Module,
        cfg: FineTuneConfig,
        train: Rows,
        valid: Rows | None,
        generator: torch.Generator,
        context: Any = None,
    ) -> None:
        data, target, weight = train
        history: list[dict[str, Any]] = []
        labels, present = module.aux_labels(data)
        is_source, _ = module.samples(data)
        labels = torch.where(present, labels, target)  # source rows keep their own y
        pretrain = present | is_source
        if cfg.pretrain_epochs > 0 and pretrain.any():
            rows = torch.nonzero(pretrain).squeeze(1)
            phase1 = cfg.model_copy(update={"epochs": cfg.pretrain_epochs})
            super()._train(module, phase1, (take(data, rows), labels[rows], None), None, generator)
            history += [{**h, "phase": "pretrain"} for h in self.history_]

        keep = ~is_source if weight is None else ~is_source & (weight > 0)
        rows = torch.nonzero(keep).squeeze(1)
        valid = None if valid is None else _target_rows(module, valid)
        phase2 = cfg.model_copy(update={"lr": cfg.lr * cfg.finetune_lr_scale})
        fine = (take(data, rows), target[rows], _rows(weight, rows))
        super()._train(module, phase2, fine, valid, generator)
        offset = len(history)
        history += [{**h, "epoch": h["epoch"] + offset, "phase": "finetune"} for h in self.history_]
        self.history_ = history
        self.best_epoch_ = self.best_epoch_ + offset

    def _platt(
        self, module: nn.Module, data: Batch, target: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[float, float]:
        """Platt scaling on the target validation rows only: the one head answers the target."""
        rows = _target_rows(module, (data, target, weight))
        return (1.0, 0.0) if rows is None else super()._platt(module, *rows)


def _rows(weight: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    return None if weight is None else weight[rows]


def _target_rows(module: nn.Module, rows: Rows) -> Rows | None:
    """The target-domain rows of ``(batch, target, weight)``; None when there are none."""
    data, target, weight = rows
    keep = torch.nonzero(~module.samples(data)[0]).squeeze(1)
    return (take(data, keep), target[keep], _rows(weight, keep)) if len(keep) else None
