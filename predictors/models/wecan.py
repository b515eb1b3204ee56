"""WE-CAN: Wasserstein-enhanced cross-domain adversarial network over both domains' samples.

Every row is a labelled sample of its own domain (``domain`` = source or target,
:mod:`predictors.torch.samples`).  Per row, with every field embedded (``e_f``):

- attention gates ``g_f = sigmoid(MLP_{k,f}(e_f))``, one 64 x 32 x 1 MLP per field
  *and per domain* ``k`` (:class:`~predictors.torch.transfer.DomainFieldGates`): the
  same field may matter in one domain and not in the other; ``x = [g_f e_f]_f``.
- a shared encoder ``h_c = tanh(E_c(x))`` (both domains) and a private encoder per
  domain ``h_p = tanh(E_k(x))``; the tanh bounds the representations, so the
  distances below are bounded too.
- a Deep & Cross tower per domain (:class:`~predictors.torch.layers.CrossNetV2` next to an
  :class:`~predictors.torch.layers.MLP`) on ``[h_c, h_p]`` gives the row's logit.
- Wasserstein critics: ``D_c`` tells source ``h_c`` from target ``h_c`` and the encoder
  *fools* it (the shared part carries what transfers); ``D_s`` (source rows) and ``D_t``
  (target rows) tell ``h_p`` from ``h_c`` and the encoders keep them *apart* (the
  private parts carry what does not).  The critics are kept 1-Lipschitz by the
  **gradient penalty** (WGAN-GP, ``lambda_gp``), not by weight clipping.

Training alternates on every mini-batch: ``critic_steps`` critic updates on the
batch's detached representations (each critic maximises its estimate
``mean D(a) - mean D(b)`` minus the penalty), then one encoder/predictor update of

    L = mean_k BCE_k + lambda_shared W_c - lambda_private (W_s + W_t)

with the critics frozen, where ``BCE_k`` is the log loss of domain ``k``'s rows (the
loss averaged per domain over both domains' labels, so the larger domain does
not drown the smaller).  ``gates=False, private=False`` leaves the shared encoder,
one tower per domain and ``D_c`` alone: the plain **Wasserstein transfer** the WE-CAN
paper compares against (:class:`WassersteinTransferModel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn
from torch.optim import Optimizer

from predictors.base import check_is_fitted
from predictors.features import FeatureSpec
from predictors.torch.base import MiniBatchConfig, Rows, TrainConfig
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, CrossNetV2, FieldEmbedding
from predictors.torch.samples import SampleColumns, SampleEstimator, input_spec
from predictors.torch.staged import per_domain_bce
from predictors.torch.transfer_layers import (
    DomainFieldGates,
    critic_loss,
    wasserstein_estimate,
)


class WECANConfig(MiniBatchConfig):
    """Hyper-parameters of :class:`WECANModel`; names equal its constructor arguments."""

    embedding_dim: int = Field(16, ge=1)
    gates: bool = True
    gate_hidden: tuple[int, ...] = Field((64, 32), min_length=1)
    private: bool = True
    encoder_hidden: tuple[int, ...] = Field((128,), min_length=1)
    shared_dim: int = Field(32, ge=1)
    cross_layers: int = Field(2, ge=1)
    tower_hidden: tuple[int, ...] = Field((64,), min_length=1)
    critic_hidden: tuple[int, ...] = Field((64,), min_length=1)
    critic_steps: int = Field(2, ge=1)
    lambda_gp: float = Field(10.0, ge=0)
    lambda_shared: float = Field(0.1, ge=0)
    lambda_private: float = Field(0.05, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)


class DeepCrossTower(nn.Module):
    """[cross network ‖ MLP] on the same input -> linear -> one logit (parallel DCN-v2)."""

    def __init__(self, width: int, cfg: WECANConfig) -> None:
        super().__init__()
        self.cross = CrossNetV2(width, cfg.cross_layers)
        self.deep = MLP(width, cfg.tower_hidden, dropout=cfg.dropout)
        self.head = nn.Linear(self.cross.out_dim + self.deep.out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.cross(x), self.deep(x)], dim=1)).squeeze(-1)  # (batch,)


@dataclass
class WECANParts:
    """What one forward pass computes; the losses pick what they need."""

    logit: torch.Tensor  # (batch,) the row's own domain's tower
    shared: torch.Tensor  # (batch, shared_dim) h_c
    private: torch.Tensor | None  # (batch, shared_dim) h_p of the row's domain (None: no private)
    gates: torch.Tensor | None  # (batch, fields) the row's domain's gates (None: no gates)
    is_source: torch.Tensor  # (batch,) bool


def _critic(dim: int, cfg: WECANConfig) -> MLP:
    return MLP(dim, cfg.critic_hidden, activation=nn.LeakyReLU, output_dim=1)


class WECANNet(nn.Module):
    """Gates, shared and private encoders, one Deep & Cross tower per domain, three critics."""

    def __init__(self, spec: FeatureSpec, cfg: WECANConfig) -> None:
        super().__init__()
        self.samples = SampleColumns(spec)
        self.embedding = FieldEmbedding(input_spec(spec), cfg.embedding_dim)
        n_fields, width = self.embedding.n_fields, self.embedding.flat_dim
        self.gates = (
            DomainFieldGates(2, n_fields, cfg.embedding_dim, cfg.gate_hidden) if cfg.gates else None
        )
        self.shared = MLP(width, cfg.encoder_hidden, output_dim=cfg.shared_dim)
        self.private = (
            nn.ModuleList(
                MLP(width, cfg.encoder_hidden, output_dim=cfg.shared_dim) for _ in range(2)
            )
            if cfg.private
            else None
        )
        tower_in = cfg.shared_dim * (2 if cfg.private else 1)
        self.towers = nn.ModuleList(DeepCrossTower(tower_in, cfg) for _ in range(2))  # tgt, src
        self.d_c = _critic(cfg.shared_dim, cfg)
        self.d_s = _critic(cfg.shared_dim, cfg) if cfg.private else None
        self.d_t = _critic(cfg.shared_dim, cfg) if cfg.private else None

    def parts(self, batch: Batch) -> WECANParts:
        is_source, _ = self.samples(batch)  # (batch,) bool
        return self.encode(self.embedding(batch), is_source)

    def encode(self, emb: torch.Tensor, is_source: torch.Tensor) -> WECANParts:
        """Everything after the embeddings ``(batch, fields, dim)``: gates, encoders, towers."""
        domain = is_source.long()  # 0 = target, 1 = source
        gates = None if self.gates is None else self.gates(emb, domain)  # (batch, fields)
        x = (emb if gates is None else emb * gates.unsqueeze(-1)).flatten(1)  # (batch, f * d)
        shared = torch.tanh(self.shared(x))  # (batch, h)
        private, h = None, shared
        if self.private is not None:
            own = torch.stack([torch.tanh(p(x)) for p in self.private], dim=1)  # (batch, 2, h)
            private = own[torch.arange(len(domain)), domain]  # (batch, h)
            h = torch.cat([shared, private], dim=1)  # (batch, 2h)
        logits = torch.stack([t(h) for t in self.towers], dim=1)  # (batch, 2)
        logit = logits.gather(1, domain.unsqueeze(1)).squeeze(1)  # (batch,)
        return WECANParts(logit, shared, private, gates, is_source)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.parts(batch).logit  # (batch,)

    def pairs(self, parts: WECANParts) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
        """``(critic, a, b)`` per critic: ``D_c`` source vs target shared; ``D_s``/``D_t``
        private vs shared of the source/target rows."""
        src, tgt = parts.is_source, ~parts.is_source
        out = [(self.d_c, parts.shared[src], parts.shared[tgt])]
        if parts.private is not None:
            out.append((self.d_s, parts.private[src], parts.shared[src]))
            out.append((self.d_t, parts.private[tgt], parts.shared[tgt]))
        return out

    def critic_loss(self, parts: WECANParts, lambda_gp: float) -> torch.Tensor:
        """The three critics' WGAN-GP losses (detached inputs: they train the critics only)."""
        return sum(critic_loss(d, a, b, lambda_gp) for d, a, b in self.pairs(parts))

    def adversarial_loss(
        self, parts: WECANParts, lambda_shared: float, lambda_private: float
    ) -> torch.Tensor:
        """The encoders' side with the critics frozen: fool ``D_c``, keep ``D_s``/``D_t`` apart."""
        distances = [wasserstein_estimate(d, a, b, frozen=True) for d, a, b in self.pairs(parts)]
        total = lambda_shared * distances[0]
        for distance in distances[1:]:
            total = total - lambda_private * distance
        return total


class WECANModel(SampleEstimator):
    """Conversion probability of each row in its own domain, learned from both domains' labels.

    Rows with ``domain`` = ``"source"`` are payments-app samples (their own label);
    frames without the column are target rows (:mod:`predictors.torch.samples`).

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> rows = X.assign(domain=np.where(np.arange(600) % 3 == 0, "source", "target"))
    >>> model = WECANModel(spec, epochs=1, seed=1).fit(rows, y)
    >>> model.gate_weights(rows).shape  # (rows, fields): each row's own domain's gates
    (600, 8)
    """

    name = "wecan"
    Config = WECANConfig
    network = WECANNet
    tiny_params: ClassVar[dict[str, Any]] = {
        **SampleEstimator.tiny_params,
        "lr": 5e-3,
        "gate_hidden": (8, 4),
        "encoder_hidden": (32,),
        "shared_dim": 8,
        "tower_hidden": (16,),
        "critic_hidden": (8,),
        "critic_steps": 1,
    }

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """The encoder/predictor loss of a batch (:meth:`encoder_loss`)."""
        return self.encoder_loss(module, module.parts(batch), y, weight)

    def encoder_loss(
        self, module: nn.Module, parts: WECANParts, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Per-domain log loss plus the adversarial terms (critics frozen)."""
        cfg = self.config_
        w = torch.ones_like(y) if weight is None else weight
        bce = per_domain_bce(parts.logit, y, w, parts.is_source)
        return bce + module.adversarial_loss(parts, cfg.lambda_shared, cfg.lambda_private)

    def train_step(
        self, module: nn.Module, optimizer: Optimizer, cfg: TrainConfig, rows: Rows, epoch: int
    ) -> float:
        """``critic_steps`` critic updates on the batch's (detached) representations, then the
        encoders' update on the same forward pass, scored by the updated critics."""
        batch, y, weight = rows
        parts = module.parts(batch)
        for _ in range(cfg.critic_steps):
            loss = module.critic_loss(parts, cfg.lambda_gp)
            if loss.requires_grad:  # no critic has both of its sets in this batch otherwise
                self._step(optimizer, loss, cfg, epoch)
        return self._step(optimizer, self.encoder_loss(module, parts, y, weight), cfg, epoch)

    @torch.no_grad()
    def gate_weights(self, X: pd.DataFrame) -> np.ndarray:
        """Attention gates ``(rows, fields)`` of every row's own domain (fields in the
        embedding's order, ``module_.embedding.field_names``)."""
        check_is_fitted(self, "module_")
        if self.module_.gates is None:
            raise ValueError(f"this {type(self).__name__} was built with gates=False")
        parts = self.module_.eval().parts(self.encoder_.encode(self.complete_frame(X)))
        return parts.gates.numpy().astype(np.float64)


class WassersteinTransferConfig(WECANConfig):
    """:class:`WECANConfig` without gates and private networks: the shared encoder and ``D_c``."""

    gates: bool = False
    private: bool = False


class WassersteinTransferModel(WECANModel):
    """Plain Wasserstein transfer (WE-CAN's comparison): WE-CAN with ``gates=False,
    private=False``, one shared encoder fooling ``D_c`` and a tower per domain.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> model = WassersteinTransferModel(spec, epochs=1, seed=1).fit(X, y)
    >>> model.module_.private is None and model.module_.gates is None
    True
    """

    name = "wasserstein_transfer"
    Config = WassersteinTransferConfig


__all__ = ["WECANConfig", "WECANModel", "WassersteinTransferConfig", "WassersteinTransferModel"]
