"""Two-stage training for the cross-domain models (CSDE and its cycle variant).

Epochs ``1..stage1_epochs`` minimise the prediction log loss plus the model's
stage-1 terms (generator, similarity, translation losses); later epochs
minimise the log loss alone, with the generators frozen.  The log loss runs
from the first epoch, so early stopping always watches a trained predictor.

Both models embed every field, tell the target and the source domain apart,
and count the target domain as present in a row when at least
``min_target_coverage`` of its fields are (a new user knows too little of it):
:class:`TwoStageConfig` and :class:`CrossDomainNet` hold that once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from predictors.features import FeatureSpec
from predictors.torch.base import MiniBatchConfig, TorchEstimator
from predictors.torch.inputs import Batch
from predictors.torch.layers import FieldEmbedding, coverage


class TwoStageConfig(MiniBatchConfig):
    """Hyper-parameters both cross-domain models have; each model adds its own."""

    embedding_dim: int = Field(16, ge=1)
    hidden: tuple[int, ...] = Field((128, 64), min_length=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    stage1_epochs: int = Field(4, ge=1)
    min_target_coverage: float = Field(0.5, gt=0, le=1)
    # defaults tuned on the simulated world (benchmarks/README.md)
    lr: float = Field(1e-3, gt=0)
    epochs: int = Field(20, ge=1)
    patience: int = Field(3, ge=1)


class CrossDomainNet(nn.Module):
    """Base of the cross-domain networks: every field embedded, and which domains a row has."""

    def __init__(self, spec: FeatureSpec, cfg: TwoStageConfig, *, model: str) -> None:
        super().__init__()
        spec.require_domains(("source", "target"), model=model)
        self.embedding = FieldEmbedding(spec, cfg.embedding_dim)
        self.target_fields = spec.of_domain("target")
        self.source_fields = spec.of_domain("source")
        self.min_target_coverage = cfg.min_target_coverage

    def coverage(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Float ``(batch,)`` each: the share of the target and of the source fields a row has."""
        return coverage(batch, self.target_fields), coverage(batch, self.source_fields)

    def present(
        self, target_coverage: torch.Tensor, source_coverage: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bool ``(batch,)`` each: the row has the target domain (``min_target_coverage`` of
        its fields) and the source domain (any of its fields)."""
        return target_coverage >= self.min_target_coverage, source_coverage > 0


class TwoStageEstimator(TorchEstimator):
    """A torch estimator whose module has ``parts(batch, train_generator=...)`` with a
    ``logit``, and whose config is a :class:`TwoStageConfig`; subclasses add
    :meth:`stage1_loss`.

    The stage is a flag of the module being trained (``module.stage1``), set at
    the start of every epoch, so the estimator itself holds no training state.
    """

    Config = TwoStageConfig
    tiny_params: ClassVar[dict[str, Any]] = {
        **TorchEstimator.tiny_params,
        "lr": 1e-2,
        "hidden": (32,),
        "stage1_epochs": 1,
    }

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
