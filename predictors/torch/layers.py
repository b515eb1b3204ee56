"""Shared layers for the PyTorch predictors (after FuxiCTR's ``pytorch/layers``).

- :class:`FieldEmbedding`: one ``dim``-vector per field of a fitted spec, for
  every field kind, robust to missing values and empty domains, plus one per
  sequence/target link (:class:`SequenceMatch`).
- :class:`SequenceMatch` / :class:`MatchEmbedding`: how strongly a sequence
  field holds the row's target value (target attention, computed exactly).
- :class:`MLP`: the only MLP block; models never write their own.
- :class:`CrossNetV2`: DCN-v2 cross layers.
- :class:`AttentionPooling`: masked dot-product/additive attention over a set of
  vectors (e.g. one per domain) that also returns its weights.
- :class:`MixtureOfExperts`: experts plus one softmax gate per task (MMOE).
- :func:`field_present`, :func:`coverage`, :func:`domain_present`: which rows have
  a field, what share of a domain's fields, any field of a domain.
- :class:`DomainGroups`: cut the field axis into groups of domains.

Every forward documents shapes as ``# (batch, fields, dim)`` comments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from predictors.features import FeatureSpec, Field
from predictors.torch.inputs import NUMERIC_BUCKETS, bucket_key, missing_key


def _require_fitted(spec: FeatureSpec) -> None:
    if not spec.fitted:
        raise ValueError("the FeatureSpec is not fitted; fit it (or a FrameEncoder) first")


MATCH_SMOOTHING = 0.5  # pseudo-count per token of SequenceMatch's smoothed shares
MATCH_EDGES = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)  # MatchEmbedding's bucket edges


class SequenceMatch(nn.Module):
    """Log lift of the row's target value in a linked sequence field: ``(batch, links)``.

    For every multi field ``f`` of the spec that names a target field ``t``
    (a categorical field over the same tokens, e.g. the click sequence's
    categories and the item's category), with ``c`` the sequence's tokens equal
    to the row's value of ``t``, ``n`` the sequence's length and ``V`` its
    vocabulary size::

        match = log((c + a) / (n + a V)) + log V        (a = MATCH_SMOOTHING)

    the smoothed share of the target in the sequence relative to a uniform
    share: 0 for an empty sequence, positive when the user keeps returning to
    the target.  It is DIN's target attention reduced to exact token equality,
    and it is what a mean of token embeddings cannot express: the true logit of
    a softmax taste is linear in the *log* share.  :meth:`profile` gives the
    same quantity for every token of the vocabulary (CSDE's generator learns to
    predict it from the source domain).
    """

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        _require_fitted(spec)
        by_name = {f.name: f for f in spec.fields}
        self.links = [(f.name, f.target) for f in spec.fields if f.target is not None]
        self.domains = tuple(by_name[name].domain for name, _ in self.links)
        self.n_tokens = [by_name[name].n_tokens for name, _ in self.links]
        self.n_ids = [by_name[name].n_ids for name, _ in self.links]
        for i, (name, target) in enumerate(self.links):
            # categorical code of the target field -> token id of the sequence (0: no token)
            vocab = by_name[target].vocab
            codes = [0] + [_token_id(v, by_name[name]) for v in vocab[1:]]
            self.register_buffer(f"code_to_token_{i}", torch.tensor(codes), persistent=False)

    @property
    def names(self) -> tuple[str, ...]:
        """One derived field name per link: ``"<sequence>@<target>"``."""
        return tuple(f"{name}@{target}" for name, target in self.links)

    def target_token(self, batch: Mapping[str, torch.Tensor], i: int) -> torch.Tensor:
        """``(batch,)`` token id + 1 of link ``i``'s target value (0: not a token)."""
        return getattr(self, f"code_to_token_{i}")[batch[self.links[i][1]]]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(match, empty)``: both ``(batch, links)``; ``empty`` is True for empty sequences."""
        values, empty = [], []
        for i, (name, _) in enumerate(self.links):
            tokens = batch[name]  # (batch, L), 0 = padding
            target = self.target_token(batch, i)  # (batch,)
            hits = ((tokens == target.unsqueeze(1)) & (target.unsqueeze(1) != 0)).sum(dim=1)
            length = (tokens != 0).sum(dim=1)  # (batch,)
            values.append(_log_lift(hits.float(), length.float(), self.n_tokens[i]))
            empty.append(length == 0)
        return torch.stack(values, dim=1), torch.stack(empty, dim=1)

    def profile(self, batch: Mapping[str, torch.Tensor], i: int) -> torch.Tensor:
        """``(batch, V)``: link ``i``'s match for every token of the vocabulary."""
        tokens = batch[self.links[i][0]]  # (batch, L)
        n_tokens = self.n_tokens[i]
        counts = torch.zeros(tokens.shape[0], self.n_ids[i], device=tokens.device)
        counts.scatter_add_(1, tokens, torch.ones_like(tokens, dtype=counts.dtype))
        length = counts[:, 1:].sum(dim=1, keepdim=True)  # (batch, 1), out-of-vocabulary too
        counts = counts[:, 1 : n_tokens + 1]  # the known tokens: (batch, V)
        return _log_lift(counts, length, n_tokens)


def _token_id(value: str, field: Field) -> int:
    """Id in multi ``field`` of a categorical vocabulary entry (``"3"`` or ``"3.0"``), 0 if none."""
    try:
        number = float(value)
    except ValueError:
        return 0
    if not number.is_integer() or not 0 <= number <= 2**62:
        return 0
    token_id = int(field.token_ids(np.array([int(number)]))[0])
    return token_id if token_id <= field.n_tokens else 0


def _log_lift(hits: torch.Tensor, length: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """``log((hits + a) / (length + a V)) + log V``: 0 for an empty sequence."""
    a = MATCH_SMOOTHING
    return torch.log((hits + a) / (length + a * n_tokens)) + math.log(n_tokens)


class MatchEmbedding(nn.Module):
    """Embed ``(batch, links)`` match values (:class:`SequenceMatch`): ``(batch, links, dim)``.

    ``value * w + b[bucket] + empty * e``: a slope, a learned vector per bucket
    of :data:`MATCH_EDGES` (any step function of the value) and a vector for
    rows whose sequence is empty.
    """

    def __init__(self, n_links: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_links, dim) * 0.1)  # (links, dim)
        self.empty = nn.Parameter(torch.randn(n_links, dim) * 0.01)
        self.buckets = nn.Parameter(torch.randn(n_links, len(MATCH_EDGES) + 1, dim) * 0.01)
        self.register_buffer("edges", torch.tensor(MATCH_EDGES), persistent=False)
        self.register_buffer("link_index", torch.arange(n_links), persistent=False)

    def forward(self, match: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
        bucket = torch.bucketize(match, self.edges)  # (batch, links)
        emb = match.unsqueeze(-1) * self.weight + self.buckets[self.link_index, bucket]
        return emb + empty.unsqueeze(-1) * self.empty  # (batch, links, dim)


class FieldEmbedding(nn.Module):
    """Embed every field of a fitted spec into a ``dim``-vector: ``(batch, fields, dim)``.

    - numeric: ``value * w_f + b_f[bucket]``: the standardised value's linear
      term plus a learned vector per quantile bucket of the field (see
      :mod:`predictors.torch.inputs`), so the embedding is any step function
      of the value plus a slope; a missing value gives a learned vector ``m_f``.
    - categorical: a row of an embedding table; index 0 is the learned
      "unknown/missing" vector.
    - multi: the mean of the token embeddings (padding 0 excluded) plus
      ``log(1 + tokens) * l_f``, so the row's length (how many tags, how long
      the click history) is not lost by the mean; an empty row gives zero
      plus a learned "empty" vector ``e_f``.

    - link (a multi field with a target field): one more field after the
      spec's, ``"<sequence>@<target>"`` of the sequence's domain, embedding
      the :class:`SequenceMatch` value with a :class:`MatchEmbedding`.

    Output fields follow ``spec.fields`` order, then the links; :meth:`domain_index`
    gives the positions of one domain's fields.
    """

    def __init__(self, spec: FeatureSpec, dim: int) -> None:
        super().__init__()
        _require_fitted(spec)
        if dim < 1:
            raise ValueError(f"embedding dim must be >= 1, got {dim}")
        self.dim = dim
        self.match = SequenceMatch(spec)
        self.match_embedding = MatchEmbedding(len(self.match.links), dim)
        self.field_names = (*spec.names, *self.match.names)
        self.domains = (*(f.domain for f in spec.fields), *self.match.domains)
        self.numeric_names = [f.name for f in spec.fields if f.kind == "numeric"]
        self.categorical_names = [f.name for f in spec.fields if f.kind == "categorical"]
        self.multi_names = [f.name for f in spec.fields if f.kind == "multi"]

        n_num = len(self.numeric_names)
        self.numeric_weight = nn.Parameter(torch.randn(n_num, dim) * 0.1)  # (num, dim)
        self.numeric_missing = nn.Parameter(torch.randn(n_num, dim) * 0.01)  # (num, dim)
        # bucket vectors of every numeric field in one table: row f * NUMERIC_BUCKETS + bucket
        self.numeric_buckets = nn.Embedding(max(n_num, 1) * NUMERIC_BUCKETS, dim)
        nn.init.normal_(self.numeric_buckets.weight, std=0.01)
        self.register_buffer(
            "bucket_offsets",
            torch.arange(n_num, dtype=torch.long) * NUMERIC_BUCKETS,
            persistent=False,
        )

        # one shared table for all categorical fields, addressed with per-field offsets
        sizes = [max(len(f.vocab), 1) for f in spec.fields if f.kind == "categorical"]
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0) if sizes else None
        self.register_buffer(
            "categorical_offsets",
            offsets if offsets is not None else torch.zeros(0, dtype=torch.long),
            persistent=False,
        )
        self.categorical_table = nn.Embedding(max(sum(sizes), 1), dim)
        nn.init.normal_(self.categorical_table.weight, std=0.01)

        self.multi_bags = nn.ModuleDict()
        for f in spec.fields:
            if f.kind == "multi":
                bag = nn.EmbeddingBag(f.n_ids, dim, mode="mean", padding_idx=0)
                nn.init.normal_(bag.weight, std=0.01)
                with torch.no_grad():
                    bag.weight[0].zero_()
                self.multi_bags[f.name] = bag
        self.multi_empty = nn.Parameter(torch.randn(len(self.multi_names), dim) * 0.01)
        self.multi_length = nn.Parameter(torch.randn(len(self.multi_names), dim) * 0.01)

        # permutation from [numeric..., categorical..., multi...] back to spec order
        grouped = [*self.numeric_names, *self.categorical_names, *self.multi_names]
        where = {name: i for i, name in enumerate(grouped)}
        order = torch.tensor([where[name] for name in spec.names], dtype=torch.long)
        self.register_buffer("order", order, persistent=False)
        self._identity_order = bool((order == torch.arange(len(order))).all())

    @property
    def n_fields(self) -> int:
        return len(self.field_names)

    @property
    def flat_dim(self) -> int:
        """Width of the output flattened per row: ``fields * dim``."""
        return self.n_fields * self.dim

    def domain_index(self, domain: str) -> torch.Tensor:
        """Positions (in the output's field axis) of the fields of ``domain``."""
        index = [i for i, d in enumerate(self.domains) if d == domain]
        if not index:
            raise ValueError(f"no field belongs to domain {domain!r}; domains: {set(self.domains)}")
        return torch.tensor(index, dtype=torch.long, device=self.order.device)

    def only(self, batch: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
        """:meth:`forward`'s vectors of the numeric and categorical fields ``names`` alone:
        ``(batch, len(names), dim)`` (a model that embeds a few fields of many rows)."""
        out = []
        for name in names:
            if name in self.numeric_names:
                out.append(self._numeric(batch, [name], [self.numeric_names.index(name)]))
            elif name in self.categorical_names:
                c = [self.categorical_names.index(name)]
                out.append(self._categorical(batch, [name], c))
            else:
                raise ValueError(f"only numeric and categorical fields, not {name!r}")
        return torch.cat(out, dim=1)  # (batch, fields, dim)

    def _numeric(
        self, batch: Mapping[str, torch.Tensor], names: Sequence[str], at: slice | list[int]
    ) -> torch.Tensor:
        """``(batch, len(names), dim)`` of numeric fields ``names``, at positions ``at`` of
        :attr:`numeric_names`: ``value * w_f + b_f[bucket]``, or ``m_f`` where missing."""
        values = torch.stack([batch[n] for n in names], dim=1)  # (batch, num)
        missing = torch.stack([batch[missing_key(n)] for n in names], dim=1)
        buckets = torch.stack([batch[bucket_key(n)] for n in names], dim=1)
        emb = values.unsqueeze(-1) * self.numeric_weight[at]  # (batch, num, dim)
        emb = emb + self.numeric_buckets(buckets + self.bucket_offsets[at])  # (batch, num, dim)
        return torch.where(missing.unsqueeze(-1), self.numeric_missing[at], emb)

    def _categorical(
        self, batch: Mapping[str, torch.Tensor], names: Sequence[str], at: slice | list[int]
    ) -> torch.Tensor:
        """``(batch, len(names), dim)`` of categorical fields ``names`` (positions ``at``)."""
        codes = torch.stack([batch[n] for n in names], dim=1)  # (batch, cat)
        return self.categorical_table(codes + self.categorical_offsets[at])  # (b, cat, dim)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.numeric_names:
            parts.append(self._numeric(batch, self.numeric_names, slice(None)))
        if self.categorical_names:
            parts.append(self._categorical(batch, self.categorical_names, slice(None)))
        for i, name in enumerate(self.multi_names):
            tokens = batch[name]  # (batch, L)
            pooled = self.multi_bags[name](tokens)  # (batch, dim); all-padding rows give 0
            length = (tokens != 0).sum(dim=1, keepdim=True)  # (batch, 1)
            pooled = pooled + torch.log1p(length.float()) * self.multi_length[i]
            pooled = pooled + (length == 0) * self.multi_empty[i]
            parts.append(pooled.unsqueeze(1))  # (batch, 1, dim)
        out = torch.cat(parts, dim=1)  # (batch, spec fields, dim) grouped by kind
        if not self._identity_order:
            out = out.index_select(1, self.order)
        if self.match.links:
            linked = self.match_embedding(*self.match(batch))  # (batch, links, dim)
            out = torch.cat([out, linked], dim=1)
        return out  # (batch, fields, dim)


class DomainGroups(nn.Module):
    """Cut ``(batch, fields, dim)`` field embeddings into groups of domains.

    ``groups`` lists each group's domains; a last group holds every other field.
    One gather orders the fields group by group and one split cuts them
    (backward: one concatenation, no zero-filled gradients).  ``sizes`` holds
    each group's field count.
    """

    def __init__(self, domains: Sequence[str], groups: Sequence[Sequence[str]]) -> None:
        super().__init__()
        named = {d for group in groups for d in group}
        index = [[i for i, d in enumerate(domains) if d in group] for group in groups]
        index.append([i for i, d in enumerate(domains) if d not in named])
        order = [i for rows in index for i in rows]
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.sizes = [len(rows) for rows in index]

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return emb.index_select(1, self.order).split(self.sizes, dim=1)  # (batch, f_g, dim) each


def field_present(batch: Mapping[str, torch.Tensor], field: Field) -> torch.Tensor:
    """Bool ``(batch,)``: True where the row has a value for ``field``.

    Present means: a numeric value that is not NaN, a categorical code other than
    0 (unknown/missing), or a multi row with at least one in-vocabulary token.
    """
    if field.kind == "numeric":
        return ~batch[missing_key(field.name)]
    if field.kind == "categorical":
        return batch[field.name] != 0
    return (batch[field.name] != 0).any(dim=1)


def coverage(batch: Mapping[str, torch.Tensor], fields: Sequence[Field]) -> torch.Tensor:
    """Float ``(batch,)``: fraction of ``fields`` present in each row (> 0 iff the domain is)."""
    present = torch.stack([field_present(batch, f) for f in fields], dim=1)  # (batch, fields)
    return present.float().mean(dim=1)


def domain_present(
    batch: Mapping[str, torch.Tensor], spec: FeatureSpec, domain: str
) -> torch.Tensor:
    """Bool ``(batch,)``: True where any field of ``domain`` is present (:func:`field_present`).

    A user without source-domain history has every ``src_*`` field absent.
    """
    fields = spec.of_domain(domain)
    if not fields:
        raise ValueError(f"no field belongs to domain {domain!r}; domains: {spec.domains}")
    return torch.stack([field_present(batch, f) for f in fields], dim=1).any(dim=1)


class MLP(nn.Module):
    """Linear -> [BatchNorm] -> activation -> dropout blocks, optionally a final linear layer.

    ``out_dim`` is ``hidden[-1]`` (or ``output_dim`` when given; or ``in_dim`` if
    ``hidden`` is empty and no ``output_dim``).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        *,
        dropout: float = 0.0,
        output_dim: int | None = None,
        batch_norm: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if in_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"MLP sizes must be >= 1, got in_dim={in_dim}, hidden={hidden}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if output_dim is not None:
            layers.append(nn.Linear(width, output_dim))
            width = output_dim
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (batch, in_dim) -> (batch, out_dim)


class CrossNetV2(nn.Module):
    """DCN-v2 cross layers: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.

    ``rank=None`` uses full ``dim x dim`` matrices; a rank ``r`` factorises
    ``W_l = U_l V_l^T`` (the paper's low-rank variant) for wide inputs.
    """

    def __init__(self, dim: int, n_layers: int, *, rank: int | None = None) -> None:
        super().__init__()
        if dim < 1 or n_layers < 1:
            raise ValueError(f"CrossNetV2 needs dim >= 1 and n_layers >= 1, got {dim}, {n_layers}")
        if rank is not None and rank < 1:
            raise ValueError(f"rank must be >= 1 or None, got {rank}")
        if rank is None:
            self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))
        else:
            self.layers = nn.ModuleList(
                nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim))
                for _ in range(n_layers)
            )
        self.out_dim = dim

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (batch, dim)
        for layer in self.layers:
            x = x0 * layer(x) + x  # (batch, dim)
        return x


class AttentionPooling(nn.Module):
    """Masked attention over a set of vectors; returns ``(pooled, weights)``.

    ``kind="dot"`` scores ``<q, W k> / sqrt(dim)``; ``kind="additive"`` scores
    ``v^T tanh(W_q q + W_k k)``.  Without a query a learned query vector is used.
    Masked-out items get weight exactly 0; a row with everything masked pools to
    zero with all-zero weights (no NaN).
    """

    def __init__(self, dim: int, *, kind: str = "dot", hidden: int = 32) -> None:
        super().__init__()
        if kind not in ("dot", "additive"):
            raise ValueError(f"attention kind must be 'dot' or 'additive', got {kind!r}")
        self.kind = kind
        self.scale = dim**-0.5
        self.default_query = nn.Parameter(torch.randn(dim) * 0.1)
        if kind == "dot":
            self.key_proj = nn.Linear(dim, dim, bias=False)
        else:
            self.query_proj = nn.Linear(dim, hidden)
            self.key_proj = nn.Linear(dim, hidden, bias=False)
            self.score = nn.Linear(hidden, 1, bias=False)

    def forward(
        self,
        keys: torch.Tensor,
        mask: torch.Tensor | None = None,
        query: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # keys (batch, items, dim); mask (batch, items) bool; query (batch, dim)
        if query is None:
            query = self.default_query.expand(keys.shape[0], -1)  # (batch, dim)
        if self.kind == "dot":
            scores = torch.einsum("bd,bnd->bn", query, self.key_proj(keys)) * self.scale
        else:
            h = torch.tanh(self.query_proj(query).unsqueeze(1) + self.key_proj(keys))  # (b, n, h)
            scores = self.score(h).squeeze(-1)  # (batch, items)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1)  # (batch, items)
        if mask is not None:
            weights = weights * mask  # all-masked rows: uniform * 0 = 0
        pooled = torch.einsum("bn,bnd->bd", weights, keys)  # (batch, dim)
        return pooled, weights


class MixtureOfExperts(nn.Module):
    """MMOE: shared expert MLPs and one softmax gate per task.

    ``forward(x)`` returns ``(task_outputs, gates)``: ``(batch, tasks, expert_dim)``
    and ``(batch, tasks, experts)``.
    """

    def __init__(
        self,
        in_dim: int,
        *,
        n_experts: int,
        n_tasks: int,
        expert_hidden: Sequence[int],
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_experts < 1 or n_tasks < 1 or not expert_hidden:
            raise ValueError(
                f"MixtureOfExperts needs n_experts >= 1, n_tasks >= 1 and a non-empty "
                f"expert_hidden, got {n_experts}, {n_tasks}, {tuple(expert_hidden)}"
            )
        self.experts = nn.ModuleList(
            MLP(in_dim, expert_hidden, dropout=dropout) for _ in range(n_experts)
        )
        self.gates = nn.Linear(in_dim, n_tasks * n_experts)
        self.n_tasks, self.n_experts = n_tasks, n_experts
        self.out_dim = self.experts[0].out_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (batch, experts, d)
        logits = self.gates(x).view(-1, self.n_tasks, self.n_experts)  # (batch, tasks, experts)
        gates = torch.softmax(logits, dim=-1)
        return torch.bmm(gates, experts), gates  # (batch, tasks, d), (batch, tasks, experts)
