"""Layers and losses of the transfer models that learn from labelled rows of both domains.

- :class:`DomainFieldGates`: one small gate MLP per (domain, field): how much of each
  field a row of that domain lets through (WE-CAN's attention gates).
- :func:`gradient_penalty`, :func:`wasserstein_estimate`, :func:`critic_loss`,
  :func:`frozen_call`: the Wasserstein critics' pieces (WGAN-GP, Gulrajani et al. 2017),
  shared by WE-CAN and CSDE-cycle.

Every forward documents shapes as ``# (batch, ...)`` comments.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


class DomainFieldGates(nn.Module):
    """Per-field, per-domain attention gates ``g[k, f] = sigmoid(MLP_{k,f}(e_f))`` in ``(0, 1)``.

    Every (domain ``k``, field ``f``) pair has its own ``dim x hidden... x 1`` MLP
    (ReLU between layers), all fields of a domain at once with batched matrix
    products; ``forward(emb, domain)`` runs each row through its own domain's
    MLPs only and returns its gates, ``(batch, fields)``.
    """

    def __init__(
        self, n_domains: int, n_fields: int, dim: int, hidden: Sequence[int] = (64, 32)
    ) -> None:
        super().__init__()
        if min(n_domains, n_fields, dim, *hidden) < 1:
            raise ValueError(
                f"DomainFieldGates sizes must be >= 1, got {n_domains}, {n_fields}, {dim}, {hidden}"
            )
        sizes = [dim, *hidden, 1]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(n_domains, n_fields, a, b) / math.sqrt(a))
            for a, b in itertools.pairwise(sizes)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(n_domains, n_fields, b)) for b in sizes[1:]
        )

    def domain_gates(self, emb: torch.Tensor, k: int) -> torch.Tensor:
        """Domain ``k``'s gates of rows ``emb (rows, fields, dim)``: ``(rows, fields)``."""
        h = torch.einsum("bfa,fac->bfc", emb, self.weights[0][k]) + self.biases[0][k]
        for w, bias in zip(self.weights[1:], self.biases[1:], strict=True):
            h = torch.einsum("bfa,fac->bfc", torch.relu(h), w[k]) + bias[k]  # (rows, fields, c)
        return torch.sigmoid(h.squeeze(-1))  # (rows, fields)

    def forward(self, emb: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        # emb (batch, fields, dim); domain long (batch,): each row runs its own domain's MLPs
        gates = emb.new_zeros(emb.shape[:2])  # (batch, fields)
        for k in range(self.weights[0].shape[0]):
            rows = (domain == k).nonzero().squeeze(1)
            if len(rows):
                gates = gates.index_put((rows,), self.domain_gates(emb[rows], k))
        return gates


def frozen_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with its parameters detached: gradients reach ``x`` only."""
    frozen = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, frozen, (x,))


def wasserstein_estimate(
    critic: nn.Module, a: torch.Tensor, b: torch.Tensor, *, frozen: bool = False
) -> torch.Tensor:
    """The critic's estimate ``mean D(a) - mean D(b)`` of the Wasserstein-1 distance (0 when
    either set is empty); ``frozen``: the critic's parameters are detached (the
    encoders' side of the game)."""
    if not len(a) or not len(b):
        return a.sum() * 0.0 + b.sum() * 0.0
    if frozen:
        return frozen_call(critic, a).mean() - frozen_call(critic, b).mean()
    return critic(a).mean() - critic(b).mean()


def gradient_penalty(critic: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean (|grad D(x)|_2 - 1)^2`` at random interpolates ``x`` of rows of ``a`` and ``b``.

    The two sets need not be paired: ``min(len(a), len(b))`` rows are drawn from each
    (torch's global generator, seeded by ``fit``).  Inputs are detached: the penalty
    trains the critic only.
    """
    n = min(len(a), len(b))
    if n == 0:
        return torch.zeros(())
    a = a[torch.randperm(len(a))[:n]].detach()
    b = b[torch.randperm(len(b))[:n]].detach()
    eps = torch.rand(n, 1)  # (n, 1)
    mixed = (eps * a + (1 - eps) * b).requires_grad_(True)  # (n, d)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)  # (n, d)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def critic_loss(
    critic: nn.Module, a: torch.Tensor, b: torch.Tensor, lambda_gp: float
) -> torch.Tensor:
    """What a WGAN-GP critic minimises: ``-(mean D(a) - mean D(b)) + lambda_gp * penalty``
    on detached inputs (it learns to tell ``a`` from ``b``)."""
    a, b = a.detach(), b.detach()
    return -wasserstein_estimate(critic, a, b) + lambda_gp * gradient_penalty(critic, a, b)


__all__ = [
    "DomainFieldGates",
    "critic_loss",
    "frozen_call",
    "gradient_penalty",
    "wasserstein_estimate",
]
