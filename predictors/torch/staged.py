"""Two-stage training for the cross-domain models (CSDE and its cycle variant).

Epochs ``1..stage1_epochs`` minimise the prediction log loss plus the model's
stage-1 terms (generator, similarity, translation losses); later epochs
minimise the log loss alone, with the generators frozen.  The log loss runs
from the first epoch, so early stopping always watches a trained predictor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from predictors.torch.base import TorchEstimator
from predictors.torch.inputs import Batch


class TwoStageEstimator(TorchEstimator):
    """A torch estimator whose module has ``parts(batch, train_generator=...)`` with a
    ``logit``, and whose config has ``stage1_epochs``; subclasses add :meth:`stage1_loss`.

    The stage is a flag of the module being trained (``module.stage1``), set at
    the start of every epoch, so the estimator itself holds no training state.
    """

    def on_epoch_start(self, module: nn.Module, epoch: int) -> None:
        """Stage 1 (plus the log loss) up to ``stage1_epochs``, then the log loss alone."""
        module.stage1 = epoch <= self.config_.stage1_epochs

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Log loss over the rows, plus :meth:`stage1_loss` while stage 1 runs."""
        stage1 = getattr(module, "stage1", True)
        parts = module.parts(batch, train_generator=stage1)
        w = torch.ones_like(y) if weight is None else weight
        total = masked_bce(parts.logit, y, w)
        return total + self.stage1_loss(module, parts, y, w) if stage1 else total

    def stage1_loss(
        self, module: nn.Module, parts: Any, y: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """The stage-1 terms of one batch (``weight (batch,)``: 0 where a row does not count)."""
        raise NotImplementedError


def masked_bce(logit: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged with row weights ``rows`` (0 where a row does not count)."""
    losses = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
    return (losses * rows).sum() / rows.sum().clamp_min(1e-6)


def masked_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean of ``values (batch,)`` with row weights ``rows``."""
    return (values * rows).sum() / rows.sum().clamp_min(1e-6)
