"""CDAnet: cross-domain augmentation through learned translations between the domains.

Every row is a labelled sample of its own domain ``k`` (source or target,
:mod:`predictors.torch.samples`).  Per row:

- **decoupled embeddings**: each domain embeds the fields with its own tables
  (``E_k``), so one domain's fitting does not move the other's vectors.
- an **MMOE** over ``x = E_k(fields)``: ``K`` MLP experts shared by both domains
  (the paper found ``K = 2`` best) mixed by a per-domain MLP gate,
  ``z = sum_j softmax(G_k(x))_j expert_j(x)``; a tower per domain ``T_k(z)``.
- **translation matrices** ``W_t`` (target -> source) and ``W_s`` (source -> target):
  ``W_k z`` is the row translated into the other domain.  *Cross-supervision*: the
  other domain's tower must still predict the row's own label from it,
  ``BCE(T_other(W_k z), y)``.  *Orthogonality*: ``|W_s^T W_t|_F^2`` (mean of its
  squared entries) is driven to zero, so the two directions span complementary
  subspaces instead of collapsing onto one shared map.
- the **augmentation network** ``A_k([z, W_k z])`` gives the row's logit: the row's
  representation augmented with what the other domain would make of it.

Loss, each log loss averaged per domain over both domains' labels:
``BCE(A) + BCE(T_k(z)) + translation_weight * BCE(T_other(W_k z)) +
orthogonality_weight * |W_s^T W_t|^2`` (defaults 0.02 and 0.1: the paper used 0.01-0.03
and 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from predictors.base import check_is_fitted
from predictors.features import FeatureSpec
from predictors.torch.base import MiniBatchConfig
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, FieldEmbedding
from predictors.torch.samples import SampleColumns, SampleEstimator, input_spec
from predictors.torch.staged import per_domain_bce


class CDAnetConfig(MiniBatchConfig):
    """Hyper-parameters of :class:`CDAnetModel`; names equal its constructor arguments."""

    embedding_dim: int = Field(16, ge=1)
    n_experts: int = Field(2, ge=1)
    expert_hidden: tuple[int, ...] = Field((128, 64), min_length=1)
    gate_hidden: tuple[int, ...] = Field((32,), min_length=1)
    tower_hidden: tuple[int, ...] = Field((32,), min_length=1)
    translation_weight: float = Field(0.02, ge=0)
    orthogonality_weight: float = Field(0.1, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)


@dataclass
class CDAnetParts:
    """What one forward pass computes; the loss picks what it needs."""

    logit: torch.Tensor  # (batch,) augmentation network A_k([z, W_k z])
    own: torch.Tensor  # (batch,) the own domain's tower T_k(z)
    cross: torch.Tensor  # (batch,) the other domain's tower on the translation T_other(W_k z)
    gates: torch.Tensor  # (batch, experts) the own domain's gate
    is_source: torch.Tensor  # (batch,) bool


def _pick(per_domain: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """Row ``i`` of ``per_domain (batch, 2, ...)`` at ``domain[i]``: ``(batch, ...)``."""
    return per_domain[torch.arange(len(domain)), domain]


class CDAnetNet(nn.Module):
    """Decoupled embeddings, MMOE with per-domain gates, translations, augmentation heads."""

    def __init__(self, spec: FeatureSpec, cfg: CDAnetConfig) -> None:
        super().__init__()
        self.samples = SampleColumns(spec)
        inputs = input_spec(spec)
        # index 0 = target, 1 = source throughout
        self.embeddings = nn.ModuleList(FieldEmbedding(inputs, cfg.embedding_dim) for _ in range(2))
        width = self.embeddings[0].flat_dim
        self.experts = nn.ModuleList(
            MLP(width, cfg.expert_hidden, dropout=cfg.dropout) for _ in range(cfg.n_experts)
        )
        self.gates = nn.ModuleList(
            MLP(width, cfg.gate_hidden, output_dim=cfg.n_experts) for _ in range(2)
        )
        z_dim = self.experts[0].out_dim
        self.towers = nn.ModuleList(
            MLP(z_dim, cfg.tower_hidden, dropout=cfg.dropout, output_dim=1) for _ in range(2)
        )
        # translation[0] = W_t (target -> source), translation[1] = W_s (source -> target)
        self.translation = nn.Parameter(torch.randn(2, z_dim, z_dim) / z_dim**0.5)
        self.augment = nn.ModuleList(
            MLP(2 * z_dim, cfg.tower_hidden, dropout=cfg.dropout, output_dim=1) for _ in range(2)
        )

    def parts(self, batch: Batch) -> CDAnetParts:
        is_source, _ = self.samples(batch)  # (batch,) bool
        domain = is_source.long()
        emb = torch.stack([e(batch).flatten(1) for e in self.embeddings], dim=1)  # (b, 2, width)
        x = _pick(emb, domain)  # (batch, width): the row's own domain's embeddings
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (batch, K, z)
        gate_logits = torch.stack([g(x) for g in self.gates], dim=1)  # (batch, 2, K)
        gates = torch.softmax(_pick(gate_logits, domain), dim=-1)  # (batch, K)
        z = torch.einsum("bk,bkz->bz", gates, experts)  # (batch, z)
        translated = torch.einsum("kij,bj->bki", self.translation, z)  # (batch, 2, z): W_k z
        moved = _pick(translated, domain)  # (batch, z): the row in the other domain
        towers_z = torch.cat([t(z) for t in self.towers], dim=1)  # (batch, 2)
        towers_moved = torch.cat([t(moved) for t in self.towers], dim=1)  # (batch, 2)
        augmented = torch.cat([a(torch.cat([z, moved], dim=1)) for a in self.augment], dim=1)
        own = towers_z.gather(1, domain.unsqueeze(1)).squeeze(1)  # (batch,)
        cross = towers_moved.gather(1, (1 - domain).unsqueeze(1)).squeeze(1)  # (batch,)
        logit = augmented.gather(1, domain.unsqueeze(1)).squeeze(1)  # (batch,)
        return CDAnetParts(logit, own, cross, gates, is_source)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.parts(batch).logit  # (batch,)

    def orthogonality(self) -> torch.Tensor:
        """``mean((W_s^T W_t)^2)``: zero when the two translations' column spaces are orthogonal."""
        w_t, w_s = self.translation[0], self.translation[1]
        return (w_s.T @ w_t).pow(2).mean()


class CDAnetModel(SampleEstimator):
    """Conversion probability of each row in its own domain, augmented by its translation.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> rows = X.assign(domain=np.where(np.arange(600) % 3 == 0, "source", "target"))
    >>> model = CDAnetModel(spec, n_experts=2, epochs=1, seed=1).fit(rows, y)
    >>> sorted(model.losses(rows, y))
    ['augmented', 'orthogonality', 'own', 'translation']
    """

    name = "cdanet"
    Config = CDAnetConfig
    network = CDAnetNet
    tiny_params: ClassVar[dict[str, Any]] = {
        **SampleEstimator.tiny_params,
        "lr": 5e-3,
        "expert_hidden": (32, 16),
        "gate_hidden": (8,),
        "tower_hidden": (8,),
    }

    def loss_terms(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Each unweighted term of the training loss (module docstring)."""
        parts = module.parts(batch)
        w = torch.ones_like(y) if weight is None else weight
        return {
            "augmented": per_domain_bce(parts.logit, y, w, parts.is_source),
            "own": per_domain_bce(parts.own, y, w, parts.is_source),
            "translation": per_domain_bce(parts.cross, y, w, parts.is_source),
            "orthogonality": module.orthogonality(),
        }

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        cfg = self.config_
        terms = self.loss_terms(module, batch, y, weight)
        return (
            terms["augmented"]
            + terms["own"]
            + cfg.translation_weight * terms["translation"]
            + cfg.orthogonality_weight * terms["orthogonality"]
        )

    @torch.no_grad()
    def losses(self, X: pd.DataFrame, y: Any) -> dict[str, float]:
        """Each term of the training loss on ``(X, y)`` (the fitted model, evaluation mode)."""
        check_is_fitted(self, "module_")
        labels = torch.from_numpy(np.asarray(y, dtype=np.float32))
        terms = self.loss_terms(
            self.module_.eval(), self.encoder_.encode(self.complete_frame(X)), labels, None
        )
        return {k: float(v) for k, v in terms.items()}

    @torch.no_grad()
    def translated_scores(self, X: pd.DataFrame) -> np.ndarray:
        """``sigmoid(T_other(W_k z))`` per row: its label as the other domain's tower reads
        the row's translation (what cross-supervision trains)."""
        check_is_fitted(self, "module_")
        cross = self.module_.eval().parts(self.encoder_.encode(self.complete_frame(X))).cross
        return torch.sigmoid(cross).numpy().astype(np.float64)


__all__ = ["CDAnetConfig", "CDAnetModel"]
