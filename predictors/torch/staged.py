"""Two-stage training for the cross-domain models (CSDE and its cycle variant).

Epochs ``1..stage1_epochs`` minimise the prediction log loss plus the model's
stage-1 terms (generator, similarity, translation losses); later epochs
minimise the log loss alone, with the generators frozen.  The log loss runs
from the first epoch, so early stopping always watches a trained predictor.

Both models embed every field, tell the target and the source domain apart,
and count the target domain as present in a row when at least
``min_target_coverage`` of its fields are (a new user knows too little of it):
:class:`TwoStageConfig` and :class:`CrossDomainNet` hold that once.

Labelled source-domain rows (``domain`` = ``"source"``, :mod:`predictors.torch.samples`)
train a *source head* on the source tower's side (the source fields, demographics and
context): the source tower then learns from the payments app's own labels, not only
through the target head.  A source row is scored by the source head, a target row by
the model's head; the log loss is averaged per domain, and the stage-1 terms that read
a label read the target rows' only.  Without the ``domain`` column nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from predictors.features import FeatureSpec
from predictors.torch.base import MiniBatchConfig
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, FieldEmbedding, coverage
from predictors.torch.samples import SampleColumns, SampleEstimator, input_spec


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
        self.samples = SampleColumns(spec)
        self.embedding = FieldEmbedding(input_spec(spec), cfg.embedding_dim)
        self.source_head: MLP | None = None
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

    def build_source_head(self, in_dim: int, cfg: TwoStageConfig) -> None:
        """The head of the source rows, on ``in_dim`` source-side inputs; only when the
        training frame had labelled source rows (a ``domain`` column)."""
        if self.samples.domain_field is not None:
            self.source_head = MLP(in_dim, cfg.hidden, dropout=cfg.dropout, output_dim=1)

    def own_domain(
        self,
        logit: torch.Tensor,
        source_side: Callable[[], torch.Tensor],
        is_source: torch.Tensor,
    ) -> torch.Tensor:
        """Each row's logit in its own domain: the source head's on ``source_side()
        (batch, in_dim)`` for source rows, ``logit (batch,)`` for target rows.

        Outside training a batch without source rows (every scoring batch of the shop's
        users) neither builds the source head's inputs nor runs it: the answer is ``logit``.
        """
        if self.source_head is None or not (self.training or bool(is_source.any())):
            return logit
        return torch.where(is_source, self.source_head(source_side()).squeeze(-1), logit)


class TwoStageEstimator(SampleEstimator):
    """A torch estimator whose module has ``parts(batch, train_generator=...)`` with a
    ``logit``, and whose config is a :class:`TwoStageConfig`; subclasses add
    :meth:`stage1_loss`.

    The stage is a flag of the module being trained (``module.stage1``), set at
    the start of every epoch, so the estimator itself holds no training state.
    """

    Config = TwoStageConfig
    tiny_params: ClassVar[dict[str, Any]] = {
        **SampleEstimator.tiny_params,
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
        """Log loss averaged per domain, plus :meth:`stage1_loss` (target rows' labels)
        while stage 1 runs."""
        stage1 = getattr(module, "stage1", True)
        parts = module.parts(batch, train_generator=stage1)
        w = torch.ones_like(y) if weight is None else weight
        total = per_domain_bce(parts.logit, y, w, parts.is_source)
        if not stage1:
            return total
        return total + self.stage1_loss(module, parts, y, w * (~parts.is_source).float())

    def stage1_loss(
        self, module: nn.Module, parts: Any, y: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """The stage-1 terms of one batch (``weight (batch,)``: 0 where a row does not count)."""
        raise NotImplementedError


def per_domain_bce(
    logit: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, is_source: torch.Tensor
) -> torch.Tensor:
    """Weighted log loss of each domain's rows, averaged over the domains present in the batch
    (the larger domain does not drown the smaller; one domain: :func:`masked_bce`)."""
    losses = [
        masked_bce(logit, y, weight * rows)
        for rows in (is_source.float(), (~is_source).float())
        if bool((weight * rows).sum() > 0)
    ]
    return torch.stack(losses).mean() if losses else logit.sum() * 0.0


def masked_bce(logit: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged with row weights ``rows`` (0 where a row does not count)."""
    losses = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
    return (losses * rows).sum() / rows.sum().clamp_min(1e-6)


def masked_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean of ``values (batch,)`` with row weights ``rows``."""
    return (values * rows).sum() / rows.sum().clamp_min(1e-6)
