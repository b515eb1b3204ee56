"""Shared layers of the domain- and scene-aware models (beside :mod:`predictors.torch.layers`).

- :class:`GradientReversal` and :func:`dann_lambda`: DANN's gradient reversal layer and
  its schedule (Ganin et al., 2016).
- :class:`StarMLP` and :class:`PartitionedNorm`: STAR's star-topology fully connected
  network and partitioned normalisation (Sheng et al., 2021).
- :class:`ExtractionLayer`: one level of PLE's customized gate control (Tang et al., 2020).
- :class:`DomainFieldGates`: one small gate MLP per (domain, field): how much of each
  field a row of that domain lets through (WE-CAN's attention gates).
- :func:`gradient_penalty`, :func:`wasserstein_estimate`, :func:`critic_loss`,
  :func:`frozen_call`: the Wasserstein critics' pieces (WGAN-GP, Gulrajani et al. 2017),
  shared by WE-CAN and CSDE-cycle.

A *group* is a row's scene (or domain) as :meth:`predictors.torch.samples.SampleColumns.group`
gives it: long ``(batch,)`` in ``0..n_groups-1``.

>>> x = torch.ones(3, requires_grad=True)
>>> reverse = GradientReversal()
>>> reverse.scale = 0.5
>>> reverse(x).sum().backward()
>>> x.grad.tolist()  # identity forward, gradient times -0.5 backward
[-0.5, -0.5, -0.5]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from predictors.torch.layers import MLP


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


class GradientReversal(nn.Module):
    """Identity in the forward pass; multiplies the gradient by ``-scale`` in the backward pass.

    Placed between a feature extractor and a domain classifier, the classifier learns to
    tell the domains apart while the extractor learns to make them indistinguishable.
    ``scale`` is set by the trainer (:func:`dann_lambda`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGradient.apply(x, self.scale)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s schedule ``2 / (1 + exp(-gamma p)) - 1`` for training progress ``p`` in
    [0, 1]: 0 at the start (the domain classifier's noisy early signal is not fed back),
    approaching 1 at the end."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


class StarMLP(nn.Module):
    """STAR's star-topology FCN: layer ``i`` of group ``g`` computes
    ``x (W_i * W_ig) + b_i + b_ig`` (``*`` element-wise), ReLU and dropout between layers.

    The shared ``W_i, b_i`` learn from every group's rows; a group's ``W_ig, b_ig`` (ones
    and zeros at the start, so every group starts as the shared network) only from its own.
    ``hidden`` are the hidden widths; the last layer has ``output_dim`` units.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        n_groups: int,
        *,
        output_dim: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        dims = [in_dim, *hidden, output_dim]
        self.shared_weight = nn.ParameterList(
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(a, b))) for a, b in pairwise(dims)
        )
        self.shared_bias = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in dims[1:])
        self.group_weight = nn.ParameterList(
            nn.Parameter(torch.ones(n_groups, a, b)) for a, b in pairwise(dims)
        )
        self.group_bias = nn.ParameterList(nn.Parameter(torch.zeros(n_groups, b)) for b in dims[1:])
        self.n_groups = n_groups
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        last = len(self.shared_weight) - 1
        for i, (w, b) in enumerate(zip(self.shared_weight, self.shared_bias, strict=True)):
            weight = w * self.group_weight[i]  # (groups, in, out)
            bias = b + self.group_bias[i]  # (groups, out)
            out = x.new_zeros(x.shape[0], w.shape[1])  # (batch, out)
            for g in range(self.n_groups):
                rows = torch.nonzero(group == g).squeeze(1)
                if rows.numel():
                    out = out.index_copy(0, rows, x[rows] @ weight[g] + bias[g])
            x = out if i == last else self.dropout(torch.relu(out))
        return x  # (batch, output_dim)


class PartitionedNorm(nn.Module):
    """STAR's partitioned normalisation: batch normalisation with each group's own statistics.

    Training normalises a group's rows with their batch mean and variance (and updates that
    group's running statistics); evaluation uses the group's running statistics.  Scale and
    shift are ``gamma * gamma_g`` and ``beta + beta_g``: shared times (plus) the group's own.
    """

    def __init__(self, dim: int, n_groups: int, *, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.group_gamma = nn.Parameter(torch.ones(n_groups, dim))
        self.group_beta = nn.Parameter(torch.zeros(n_groups, dim))
        self.register_buffer("running_mean", torch.zeros(n_groups, dim))
        self.register_buffer("running_var", torch.ones(n_groups, dim))
        self.momentum, self.eps, self.n_groups = momentum, eps, n_groups

    def forward(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        if self.training:
            normed = torch.zeros_like(x)  # (batch, dim)
            for g in range(self.n_groups):
                rows = torch.nonzero(group == g).squeeze(1)
                if not rows.numel():
                    continue
                part = x[rows]
                mean, var = part.mean(dim=0), part.var(dim=0, unbiased=False)
                normed = normed.index_copy(0, rows, (part - mean) / torch.sqrt(var + self.eps))
                with torch.no_grad():
                    self.running_mean[g].lerp_(mean, self.momentum)
                    self.running_var[g].lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean[group], self.running_var[group]  # (batch, dim)
            normed = (x - mean) / torch.sqrt(var + self.eps)
        scale = self.gamma * self.group_gamma[group]  # (batch, dim)
        return normed * scale + self.beta + self.group_beta[group]


class ExtractionLayer(nn.Module):
    """One level of PLE: shared experts, ``n_specific`` experts per task, a softmax gate
    per task over its own and the shared experts, and (``shared_gate``, every level but
    the last) a gate over all experts that feeds the next level's shared experts.

    ``forward(inputs)`` takes one ``(batch, in_dim)`` input per task plus the shared one
    (last) and returns the same layout with ``out_dim`` columns; without ``shared_gate``
    only the tasks' outputs.
    """

    def __init__(
        self,
        in_dim: int,
        *,
        n_tasks: int,
        n_shared: int,
        n_specific: int,
        expert_hidden: Sequence[int],
        dropout: float = 0.0,
        shared_gate: bool = True,
    ) -> None:
        super().__init__()
        if min(n_tasks, n_shared, n_specific) < 1 or not expert_hidden:
            raise ValueError(
                f"ExtractionLayer needs n_tasks, n_shared, n_specific >= 1 and expert_hidden, "
                f"got {n_tasks}, {n_shared}, {n_specific}, {tuple(expert_hidden)}"
            )

        def experts(n: int) -> nn.ModuleList:
            return nn.ModuleList(MLP(in_dim, expert_hidden, dropout=dropout) for _ in range(n))

        self.shared = experts(n_shared)
        self.specific = nn.ModuleList(experts(n_specific) for _ in range(n_tasks))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_specific + n_shared) for _ in range(n_tasks))
        self.shared_gate = (
            nn.Linear(in_dim, n_tasks * n_specific + n_shared) if shared_gate else None
        )
        self.out_dim = self.shared[0].out_dim

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        shared = torch.stack([e(inputs[-1]) for e in self.shared], dim=1)  # (batch, S, d)
        owns, outputs = [], []
        for k, (experts, gate) in enumerate(zip(self.specific, self.gates, strict=True)):
            own = torch.stack([e(inputs[k]) for e in experts], dim=1)  # (batch, s, d)
            weights = torch.softmax(gate(inputs[k]), dim=-1)  # (batch, s + S)
            outputs.append(torch.einsum("be,bed->bd", weights, torch.cat([own, shared], dim=1)))
            owns.append(own)
        if self.shared_gate is not None:
            every = torch.cat([*owns, shared], dim=1)  # (batch, tasks * s + S, d)
            weights = torch.softmax(self.shared_gate(inputs[-1]), dim=-1)
            outputs.append(torch.einsum("be,bed->bd", weights, every))
        return outputs  # tasks (+ shared) x (batch, d)


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
            for a, b in pairwise(sizes)
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
