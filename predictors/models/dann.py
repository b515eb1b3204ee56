"""DANN (Ganin et al., 2016): a shared representation the domains cannot be told apart by.

Field embeddings -> an MLP encoder (the shared representation ``h``) -> a label head (one
logit, every row's label in its own domain).  A domain classifier reads ``h`` through a
gradient reversal layer (:class:`~predictors.torch.transfer_layers.GradientReversal`) and
predicts whether the row is a source row (the ``domain`` sample column,
:mod:`predictors.torch.samples`): it learns to tell the domains apart while the reversed
gradient drives the encoder to representations it cannot tell apart, so what the label
head learns from the source rows carries over to the target rows.

Loss per mini-batch: the label BCE (weighted mean over all rows, both domains) plus
``domain_weight`` x the domain classifier's BCE (batches with rows of both domains).
The reversal's strength follows Ganin et al.'s schedule
``lambda_p = 2 / (1 + exp(-lambda_gamma * p)) - 1`` (:func:`~predictors.torch.transfer_layers.dann_lambda`)
with training progress ``p = (epoch - 1) / epochs`` (per epoch, of the configured epochs,
whether or not early stopping ends sooner): 0 in the first epoch, near 1 by the last.
Their learning-rate annealing is not used: AdamW at ``lr``, as every model here.
Without source rows the domain loss is never computed and DANN is an MLP.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from predictors.features import FeatureSpec
from predictors.models.mlp import MLPConfig, MLPModel
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, FieldEmbedding
from predictors.torch.samples import SampleColumns, SampleEstimator, input_spec
from predictors.torch.transfer_layers import GradientReversal, dann_lambda


class DANNConfig(MLPConfig):
    """Hyper-parameters of :class:`DANNModel` (``hidden`` is the encoder's); names equal its
    constructor arguments."""

    domain_hidden: tuple[int, ...] = Field((32,), min_length=1)
    domain_weight: float = Field(1.0, ge=0)
    lambda_gamma: float = Field(10.0, gt=0)


class DANNNet(nn.Module):
    """Embeddings -> encoder ``h`` -> label logit; ``domain_logit(h)`` through the reversal."""

    def __init__(self, spec: FeatureSpec, cfg: DANNConfig) -> None:
        super().__init__()
        self.samples = SampleColumns(spec)
        self.embedding = FieldEmbedding(input_spec(spec), cfg.embedding_dim)
        self.encoder = MLP(self.embedding.flat_dim, cfg.hidden, dropout=cfg.dropout)
        self.label_head = nn.Linear(self.encoder.out_dim, 1)
        self.reverse = GradientReversal()
        self.domain_head = MLP(self.encoder.out_dim, cfg.domain_hidden, output_dim=1)

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.encoder(self.embedding(batch).flatten(1))  # (batch, hidden[-1])

    def domain_logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.domain_head(self.reverse(h)).squeeze(-1)  # (batch,)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.label_head(self.represent(batch)).squeeze(-1)  # (batch,)


class DANNModel(SampleEstimator):
    """Domain-adversarial conversion model over source and target rows (see the module docstring).

    Example:

    >>> from predictors.examples import DOMAINS, sampled_frame
    >>> from predictors.features import FeatureSpec
    >>> X, y, _ = sampled_frame(800)
    >>> model = DANNModel(FeatureSpec.infer(X, DOMAINS), epochs=2, seed=1).fit(X, y)
    >>> model.module_.reverse.scale  # lambda of the last epoch: 2 / (1 + e^-5) - 1
    0.9866142981514305
    >>> model.predict_proba(X.drop(columns=["domain", "scene"])).shape
    (800, 2)
    """

    name = "dann"
    Config = DANNConfig
    network = DANNNet
    tiny_params: ClassVar[dict[str, Any]] = {**MLPModel.tiny_params, "domain_hidden": (8,)}

    def on_epoch_start(self, module: nn.Module, epoch: int) -> None:
        progress = (epoch - 1) / self.config_.epochs
        module.reverse.scale = dann_lambda(progress, self.config_.lambda_gamma)

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Label BCE + ``domain_weight`` x domain BCE (through the gradient reversal)."""
        h = module.represent(batch)
        label = module.label_head(h).squeeze(-1)
        total = F.binary_cross_entropy_with_logits(label, y, weight=weight)
        is_source, _ = module.samples(batch)
        if self.config_.domain_weight > 0 and 0 < int(is_source.sum()) < len(is_source):
            domain = F.binary_cross_entropy_with_logits(module.domain_logit(h), is_source.float())
            total = total + self.config_.domain_weight * domain
        return total
