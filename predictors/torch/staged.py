"""Two-stage training for the cross-domain models (CSDE and its cycle variant).

Epochs ``1..stage1_epochs`` minimise the prediction log loss plus the model's
stage-1 terms (generator, similarity, translation losses); later epochs
minimise the log loss alone, with the generators frozen.  The log loss runs
from the first epoch, so early stopping always watches a trained predictor.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from predictors.torch.base import TorchEstimator
from predictors.torch.inputs import Batch


class TwoStageEstimator(TorchEstimator):
    """A torch estimator whose module has ``parts(batch, train_generator=...)`` with a
    ``logit``, and whose config has ``stage1_epochs``; subclasses add :meth:`stage1_loss`."""

    _stage = 1

    @property
    def in_stage1(self) -> bool:
        return self._stage == 1

    def on_epoch_start(self, module: nn.Module, epoch: int) -> None:
        """Stage 1 (plus the log loss) up to ``stage1_epochs``, then the log loss alone."""
        self._stage = 1 if epoch <= self.config_.stage1_epochs else 2

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Log loss over the rows, plus :meth:`stage1_loss` while stage 1 runs."""
        parts = module.parts(batch, train_generator=self.in_stage1)
        w = torch.ones_like(y) if weight is None else weight
        total = masked_bce(parts.logit, y, w)
        return total + self.stage1_loss(module, parts, y, w) if self.in_stage1 else total

    def stage1_loss(
        self, module: nn.Module, parts: Any, y: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """The stage-1 terms of one batch (``weight (batch,)``: 0 where a row does not count)."""
        raise NotImplementedError

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        sample_weight: Any = None,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
    ) -> TwoStageEstimator:
        """Train both stages; return ``self``."""
        self._stage = 1
        super().fit(X, y, sample_weight=sample_weight, eval_set=eval_set)
        return self


def masked_bce(logit: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged with row weights ``rows`` (0 where a row does not count)."""
    losses = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
    return (losses * rows).sum() / rows.sum().clamp_min(1e-6)


def masked_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean of ``values (batch,)`` with row weights ``rows``."""
    return (values * rows).sum() / rows.sum().clamp_min(1e-6)
