"""The CSDE-cycle network: unpaired translation between the domains, then a filled predictor.

Kept apart from the estimator (:mod:`predictors.models.csde_cycle`) so the maths
reads in one place.  Per row, with every field embedded by
:class:`~predictors.torch.layers.FieldEmbedding`:

- ``s``: the flattened embeddings of the source fields and the ``user``
  (demographics) fields; ``t``: those of the target fields, the derived
  sequence-match field (``tgt_click_seq@item_category``) included; every other
  field (item, coupon option) is context ``c``.
- generators ``G_st: s -> t_hat`` and ``G_ts: t -> s_hat``; WGAN critics
  ``D_t`` and ``D_s`` score real against generated vectors of their domain.
  Real ``t`` are the target-present rows, real ``s`` the source-present rows:
  the two sets are not paired by user (CycleGAN's unpaired setting), and cycle
  consistency ``G_ts(G_st(s)) ~ s``, ``G_st(G_ts(t)) ~ t`` keeps the
  translation tied to its input.
- prediction: ``H([t_fill, s, c])`` where ``t_fill`` is ``t`` for target-present
  rows and ``G_st(s)`` (detached: only the translation losses train the
  generators) for rows with source fields but without the target domain;
  rows with neither keep ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from predictors.features import FeatureSpec
from predictors.models.csde_parts import USER_DOMAIN
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, DomainGroups
from predictors.torch.staged import CrossDomainNet, masked_mean
from predictors.torch.transfer_layers import frozen_call, gradient_penalty

if TYPE_CHECKING:
    from predictors.models.csde_cycle import CSDECycleConfig


@dataclass
class CycleParts:
    """What one forward pass computes; the estimator's loss picks what it needs."""

    logit: torch.Tensor  # (batch,)
    s: torch.Tensor  # (batch, s_dim) source + user field embeddings
    t: torch.Tensor  # (batch, t_dim) target field embeddings
    t_gen: torch.Tensor  # (batch, t_dim) G_st(s); gradient only with train_generator
    target_present: torch.Tensor  # (batch,) bool: target coverage >= min_target_coverage
    source_present: torch.Tensor  # (batch,) bool: any source field present
    is_source: torch.Tensor  # (batch,) bool: a labelled source-domain row


class CSDECycleNet(CrossDomainNet):
    """Field embeddings, the two generators and critics, and the filled prediction head."""

    def __init__(self, spec: FeatureSpec, cfg: CSDECycleConfig) -> None:
        super().__init__(spec, cfg, model="csde_cycle")
        # target | source + user | other (item, coupon option)
        self.groups = DomainGroups(self.embedding.domains, [["target"], ["source", USER_DOMAIN]])
        t_dim, s_dim, c_dim = (n * cfg.embedding_dim for n in self.groups.sizes)
        self.g_st = MLP(s_dim, cfg.gen_hidden, output_dim=t_dim)
        self.g_ts = MLP(t_dim, cfg.gen_hidden, output_dim=s_dim)
        self.d_t = MLP(t_dim, cfg.critic_hidden, activation=nn.LeakyReLU, output_dim=1)
        self.d_s = MLP(s_dim, cfg.critic_hidden, activation=nn.LeakyReLU, output_dim=1)
        self.head = MLP(t_dim + s_dim + c_dim, cfg.hidden, dropout=cfg.dropout, output_dim=1)
        self.build_source_head(s_dim + c_dim, cfg)  # labelled source rows: [s, context]

    def parts(
        self, batch: Batch, *, train_generator: bool = False, fill: bool = True
    ) -> CycleParts:
        """Embed, translate the source to the target domain, fill, predict.

        ``train_generator=False`` runs ``G_st`` without its autograd graph: the
        fill is a fixed input of the head either way.  ``fill=False`` leaves rows
        without the target domain as they are (the evaluation of the fill).
        """
        t, s, context = (g.flatten(1) for g in self.groups(self.embedding(batch)))
        target_present, source_present = self.present(*self.coverage(batch))  # (batch,) each
        with torch.set_grad_enabled(train_generator and torch.is_grad_enabled()):
            t_gen = self.g_st(s.detach())  # (batch, t_dim)
        filled = (source_present & ~target_present & fill).unsqueeze(1)  # (batch, 1)
        t_fill = torch.where(filled, t_gen.detach(), t)  # (batch, t_dim)
        logit = self.head(torch.cat([t_fill, s, context], dim=1)).squeeze(-1)  # (batch,)
        is_source, _ = self.samples(batch)  # (batch,) bool
        logit = self.own_domain(logit, lambda: torch.cat([s, context], dim=1), is_source)
        return CycleParts(logit, s, t, t_gen, target_present, source_present, is_source)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.parts(batch).logit  # (batch,)

    def translation_losses(
        self,
        parts: CycleParts,
        weight: torch.Tensor,
        *,
        lambda_gp: float,
        lambda_cycle: float,
    ) -> torch.Tensor:
        """Both directions' WGAN-GP critic and generator losses plus cycle consistency.

        The cycle term is the L1 norm (summed over features, averaged over rows):
        the critics' gradients are bounded by the penalty, so a per-feature mean
        let the adversarial pull win and the generators drift (critic scores of
        +-20 on the simulated world); the sum keeps them anchored.  Reads the
        embeddings detached: the embeddings learn from the prediction loss only.
        ``weight (batch,)`` weights the rows (0: the row does not count).
        """
        s, t = parts.s.detach(), parts.t.detach()  # (batch, s_dim), (batch, t_dim)
        with_target = parts.target_present.float() * weight  # real t, input of G_ts
        with_source = parts.source_present.float() * weight  # real s, input of G_st
        t_gen = parts.t_gen  # (batch, t_dim) = G_st(s)
        s_gen = self.g_ts(t)  # (batch, s_dim)
        adversarial = wgan_gp_losses(self.d_t, t, t_gen, with_target, with_source, lambda_gp)
        adversarial = adversarial + wgan_gp_losses(
            self.d_s, s, s_gen, with_source, with_target, lambda_gp
        )
        s_cycle = self.g_ts(t_gen)  # (batch, s_dim)
        t_cycle = self.g_st(s_gen)  # (batch, t_dim)
        cycle = masked_mean((s_cycle - s).abs().sum(dim=1), with_source) + masked_mean(
            (t_cycle - t).abs().sum(dim=1), with_target
        )
        return adversarial + lambda_cycle * cycle


def wgan_gp_losses(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    real_rows: torch.Tensor,
    fake_rows: torch.Tensor,
    lambda_gp: float,
) -> torch.Tensor:
    """WGAN-GP critic loss + generator loss in one backward pass.

    Critic: ``mean D(fake) - mean D(real) + lambda_gp * mean (|grad D(x_i)|_2 - 1)^2``
    on detached inputs, ``x_i`` interpolating a real row and a randomly drawn
    fake row (not the same user: unpaired).  Generator: ``-mean D(fake)`` with
    the critic's parameters detached (``functional_call``), so neither player's
    loss moves the other.  ``real (batch, d)`` counts on ``real_rows``, ``fake``
    on ``fake_rows`` (row weights ``(batch,)``).
    """
    d_real = critic(real.detach()).squeeze(-1)  # (batch,)
    d_fake = critic(fake.detach()).squeeze(-1)
    loss = masked_mean(d_fake, fake_rows) - masked_mean(d_real, real_rows)
    penalty = gradient_penalty(critic, real[real_rows > 0], fake[fake_rows > 0])
    g_fake = frozen_call(critic, fake).squeeze(-1)  # (batch,)
    return loss + lambda_gp * penalty - masked_mean(g_fake, fake_rows)
