"""The CSDE network: towers, generator, discriminator and the domain attention.

Kept apart from the estimator (:mod:`predictors.models.csde`) so the maths of
the two stages reads in one place:

- ``e_tgt = T(target fields)``: the real target-domain user embedding.
- ``e_src = S(source fields, user fields)``: the source-domain user embedding.
- ``e_gen = G(source fields, user fields)``: the generated ("cross-domain")
  target embedding, trained in stage 1 to look like ``e_tgt``.
- for a target-domain sequence linked to an item field (the click sequence and
  the item category, :class:`~predictors.torch.layers.SequenceMatch`), the real
  embedding also holds the sequence's profile ``r`` (the log lift of every
  category in the user's clicks) and the generator also predicts it: one
  network outputs ``[e_gen, r_gen] = G(source fields, user fields)``; the
  similarity compares ``[e_gen, r_gen]`` with ``[e_tgt, r]``.  ``m = r[item category]`` is the
  row's match (real or generated).
- stage 1: ``H1([e, M(m), context, <P e, context>])`` classifies with
  ``(e_tgt, m)`` (real) and ``(e_gen, m_gen)`` (generated); ``D`` tells real
  ``[e_tgt, r]`` from generated ``[e_gen, r_gen]`` (adversarial similarity only).
- stage 2: domain-attention weights ``a_k`` over the present domains ``k`` of
  ``(target, source, csde)`` (missing ones get exactly 0) gate the embeddings:
  ``u = [a_k e_k]_k`` (``pooling="concat"``, the default) or
  ``u = sum_k a_k e_k`` (``pooling="sum"``); the logit is
  ``H2([u, M(m_mix), context, <P u, context>, target fields, source fields])``
  (the last two only with ``field_skip``: a skip past the narrow towers),
  where the match ``m_mix = s m_gen + (1 - s) m`` mixes the generated and the
  real match by the CSDE embedding's share ``s = a_csde / (a_target + a_csde)``
  of the attention: a new user (no target) gets the generated match whole,
  which is how their payments behaviour says they like the item's category.
  (The alternative, gating ``M(m_gen)`` by ``a_csde`` alone, is compared in
  ``benchmarks/README.md``.) ``context`` is every
  field outside the source and target domains (user demographics, item, coupon
  option), so the same network scores each coupon option of a user;
  ``<P u, c_f>`` are user x context-field dot products (taste x item category,
  say).
- scoring: the coupon decision scores each user and candidate item under every option,
  rows that differ only in the treatment's fields.  Marked as variants of one row
  (:data:`~predictors.torch.inputs.VARIANT_KEY`), everything but the treatment's columns
  of the head's first layer runs once per (user, item): about three times faster, the
  same scores up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from predictors.features import FeatureSpec
from predictors.torch.inputs import Batch, VariantGroups, batch_size_of, take
from predictors.torch.layers import MLP, AttentionPooling, DomainGroups, MatchEmbedding
from predictors.torch.staged import CrossDomainNet, masked_bce

if TYPE_CHECKING:
    from predictors.models.csde import CSDEConfig

DOMAIN_KEYS = ("target", "source", "csde")  # order of the attention's keys and weights
USER_DOMAIN = "user"  # demographics: fed to the source tower, the generator and the query
TREATMENT_DOMAIN = "treatment"  # the coupon option's fields: what a user's scored rows vary in


@dataclass
class CSDEParts:
    """Everything one forward pass computes; the estimator's loss picks what it needs."""

    logit: torch.Tensor  # (batch,) stage-2 prediction
    weights: torch.Tensor  # (batch, 3) attention over DOMAIN_KEYS
    e_tgt: torch.Tensor  # (batch, user_dim)
    e_gen: torch.Tensor  # (batch, user_dim); carries gradient only with train_generator
    r_gen: torch.Tensor  # (batch, profile) generated profiles (0 columns without links)
    m_gen: torch.Tensor  # (batch, links, dim) embedded generated matches; gradient as e_gen
    r_tgt: torch.Tensor | None  # (batch, profile) real profiles; only with train_generator
    m_tgt: torch.Tensor  # (batch, links, dim) embedded real matches
    context: torch.Tensor  # (batch, context fields, dim)
    target_present: torch.Tensor  # (batch,) bool: target coverage >= min_target_coverage
    source_present: torch.Tensor  # (batch,) bool: any source field present
    is_source: torch.Tensor  # (batch,) bool: a labelled source-domain row


@dataclass
class UserSide:
    """What :meth:`CSDENet.parts` computes before the head (the user's side: towers,
    generator, matches, attention), one row per batch row; the field embeddings' ``user``
    and ``other`` groups ``(batch, fields, dim)`` and the flattened ``target`` and
    ``source`` ones ``(batch, fields * dim)``."""

    pooled: torch.Tensor  # (batch, pooled_dim) the attention's user vector
    weights: torch.Tensor  # (batch, 3)
    mixed: torch.Tensor  # (batch, links, dim) the match the head reads
    target: torch.Tensor
    source: torch.Tensor
    e_tgt: torch.Tensor
    e_src: torch.Tensor
    e_gen: torch.Tensor
    r_gen: torch.Tensor
    r_tgt: torch.Tensor | None
    m_tgt: torch.Tensor
    m_gen: torch.Tensor
    target_present: torch.Tensor
    source_present: torch.Tensor
    user: torch.Tensor
    other: torch.Tensor


class CSDENet(CrossDomainNet):
    """Both CSDE stages in one module; ``forward(batch)`` gives the stage-2 logits."""

    def __init__(self, spec: FeatureSpec, cfg: CSDEConfig) -> None:
        super().__init__(spec, cfg, model="CSDE")
        d, user_dim, tower_hidden = cfg.embedding_dim, cfg.user_dim, cfg.tower_hidden
        # target | source | user | other (item, coupon option)
        self.groups = DomainGroups(self.embedding.domains, [["target"], ["source"], [USER_DOMAIN]])
        n_tgt, n_src, n_user, n_other = self.groups.sizes
        self.n_user = n_user
        n_context = n_user + n_other
        # dropout only in the final predictor: the towers and stage 1's auxiliary classifier
        # (as narrow as the towers) stay cheap; CPU dropout masks cost as much as a layer
        self.target_tower = MLP(n_tgt * d, tower_hidden, output_dim=user_dim)
        source_in = (n_src + n_user) * d
        self.source_tower = MLP(source_in, tower_hidden, output_dim=user_dim)
        # target-domain sequence links: the generator also predicts their profiles, so it
        # outputs [e_gen, r_gen] (one network: the profile is part of the target embedding)
        match = self.embedding.match
        self.links = [i for i, dom in enumerate(match.domains) if dom == "target"]
        self.profile_sizes = [match.n_tokens[i] for i in self.links]
        self.user_dim = user_dim
        self.generator = MLP(source_in, tower_hidden, output_dim=user_dim + sum(self.profile_sizes))
        self.match_embedding = MatchEmbedding(len(self.links), d)
        n_match = len(self.links) * d
        # each head also sees <P e, context field> for every context field: the user x item
        # (taste x category) interactions an MLP over a concatenation learns only slowly
        self.concat = cfg.pooling == "concat"
        pooled_dim = user_dim * (len(DOMAIN_KEYS) if self.concat else 1)
        self.stage1_proj = nn.Linear(user_dim, d, bias=False)
        self.stage1_head = MLP(user_dim + n_match + n_context * (d + 1), tower_hidden, output_dim=1)
        self.proj = nn.Linear(pooled_dim, d, bias=False)
        # field_skip: the head also reads the target and source field embeddings themselves, so
        # the towers' bottleneck cannot lose what a plain MLP over all fields would see
        self.field_skip = cfg.field_skip
        skip_dim = (n_tgt + n_src) * d if cfg.field_skip else 0
        self.head = MLP(
            pooled_dim + n_match + skip_dim + n_context * (d + 1),
            cfg.hidden,
            dropout=cfg.dropout,
            output_dim=1,
        )
        self.dot_scale = d**-0.5
        self._split_head_columns(pooled_dim + n_match, d)
        # the query says how much is known about the user: coverage of both domains + demographics
        self.query = nn.Linear(2 + n_user * d, user_dim)
        self.domain_type = nn.Parameter(torch.randn(len(DOMAIN_KEYS), user_dim) * 0.1)
        self.attention = AttentionPooling(user_dim, kind="additive", hidden=user_dim)
        self.discriminator = (
            MLP(
                user_dim + sum(self.profile_sizes),
                (user_dim,),
                activation=nn.LeakyReLU,
                output_dim=1,
            )
            if cfg.similarity == "adversarial"
            else None
        )
        # labelled source rows: their own head on [e_src, source fields, context fields]
        self.build_source_head(user_dim + (n_src + n_context) * d, cfg)

    def parts(self, batch: Batch, *, train_generator: bool = False) -> CSDEParts:
        """Run both stages' encoders and the stage-2 prediction.

        ``train_generator=False`` (stage 2, prediction) runs the generator without
        building its autograd graph and skips the real profiles: only stage 1's
        losses train the generator and read them.
        """
        side = self._user_side(batch, train_generator)
        head_in, context = self._stage2_input(side)
        is_source, _ = self.samples(batch)  # (batch,) bool
        logit = self.own_domain(
            self.head(head_in).squeeze(-1),
            lambda: torch.cat([side.e_src, side.source, context.flatten(1)], dim=1),
            is_source,
        )
        return CSDEParts(
            logit=logit,
            weights=side.weights,
            e_tgt=side.e_tgt,
            e_gen=side.e_gen,
            r_tgt=side.r_tgt,
            r_gen=side.r_gen,
            m_tgt=side.m_tgt,
            m_gen=side.m_gen,
            context=context,
            target_present=side.target_present,
            source_present=side.source_present,
            is_source=is_source,
        )

    def _stage2_input(self, side: UserSide) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's input ``(rows, head_in)`` and the context fields ``(rows, f, dim)``."""
        context = torch.cat([side.user, side.other], dim=1)  # (rows, context fields, dim)
        head_in = self._head_input(side.pooled, context, self.proj, side.mixed)
        if self.field_skip:
            head_in = torch.cat([head_in, side.target, side.source], dim=1)
        return head_in, context

    def _user_side(self, batch: Batch, train_generator: bool) -> UserSide:
        """Everything of :meth:`parts` before the head: towers, generator, matches and
        attention, and the ``user`` and ``other`` field embeddings ``(rows, f, dim)``."""
        target, source, user, other = self.groups(self.embedding(batch))  # (batch, f_g, dim)
        user_fields = user
        target, source, user = target.flatten(1), source.flatten(1), user.flatten(1)
        source_in = torch.cat([source, user], dim=1)  # (batch, (source+user fields)*dim)
        e_tgt = self.target_tower(target)  # (batch, user_dim)
        e_src = self.source_tower(source_in)  # (batch, user_dim)
        with torch.set_grad_enabled(train_generator and torch.is_grad_enabled()):
            generated = self.generator(source_in)  # (batch, user_dim + sum V)
            e_gen, r_gen = generated.split([self.user_dim, generated.shape[1] - self.user_dim], 1)
            m_gen = self._generated_matches(batch, r_gen)
        # only stage 1's losses read the real profiles: prediction skips them
        r_tgt = self._real_profiles(batch) if train_generator else None
        m_tgt = self._real_matches(batch)

        target_coverage, source_coverage = self.coverage(batch)  # (batch,) each
        # the target domain counts as present when enough of it is known (new users: not)
        target_present, source_present = self.present(target_coverage, source_coverage)
        query_in = [target_coverage.unsqueeze(1), source_coverage.unsqueeze(1)]
        if self.n_user:
            query_in.append(user)
        query = self.query(torch.cat(query_in, dim=1))  # (batch, user_dim)

        # the generator learns only from stage 1: stage 2 reads its output as a fixed embedding
        keys = torch.stack([e_tgt, e_src, e_gen.detach()], dim=1) + self.domain_type  # (b, 3, u)
        mask = torch.stack([target_present, source_present, source_present], dim=1)  # (b, 3)
        pooled, weights = self.attention(keys, mask, query)  # (batch, u), (batch, 3)
        if self.concat:  # [a_target e_target, a_source e_source, a_csde e_csde]: gates, no mixing
            pooled = (weights.unsqueeze(-1) * keys).flatten(1)  # (batch, 3 * u)
        # the match the head reads: real and generated mixed by the attention between the target
        # and CSDE embeddings (a new user, without target, gets the generated match whole)
        a_tgt, a_gen = weights[:, 0], weights[:, 2]  # (batch,)
        share = (a_gen / (a_tgt + a_gen).clamp_min(1e-6)).view(-1, 1, 1)  # (batch, 1, 1)
        mixed = share * m_gen.detach() + (1 - share) * m_tgt  # (batch, links, dim)
        return UserSide(
            pooled=pooled,
            weights=weights,
            mixed=mixed,
            target=target,
            source=source,
            e_tgt=e_tgt,
            e_src=e_src,
            e_gen=e_gen,
            r_gen=r_gen,
            r_tgt=r_tgt,
            m_tgt=m_tgt,
            m_gen=m_gen,
            target_present=target_present,
            source_present=source_present,
            user=user_fields,
            other=other,
        )

    def forward(self, batch: Batch) -> torch.Tensor:
        variants = VariantGroups(batch)
        if variants.grouped and not self.training:
            is_source, _ = self.samples(batch)
            if not bool(is_source.any()):
                return self._variant_logits(batch, variants)
        return self.parts(batch).logit  # (batch,)

    @property
    def variant_fields(self) -> frozenset[str]:
        """Fields in which rows may differ and still be variants of one row
        (:data:`~predictors.torch.inputs.VARIANT_KEY`): the treatment's."""
        return frozenset(self._treatment_names)

    def _variant_logits(self, batch: Batch, variants: VariantGroups) -> torch.Tensor:
        """:meth:`forward` of target rows that are variants of base rows, differing only in
        :attr:`variant_fields`: everything up to the head's first layer runs once per base
        row; per row only the treatment's fields and their dot products with the user
        (the head's first layer split by its input columns: ``W x = W_s x_s + W_t x_t``)."""
        assert variants.first is not None and variants.inverse is not None
        side = self._user_side(take(batch, variants.first), False)  # (groups, ...)
        head_in, _ = self._stage2_input(side)  # (groups, head_in)
        first, shared, varying = self.head.net[0], self._shared_columns, self._varying_columns
        z = F.linear(head_in[:, shared], first.weight[:, shared], first.bias)  # (groups, h)
        # per row: the treatment's field embeddings and their dots with the projected user
        treatment = self.embedding.only(batch, self._treatment_names)  # (rows, t, dim)
        user = self.proj(side.pooled)[variants.inverse]  # (rows, dim)
        dots = torch.einsum("bd,bfd->bf", user, treatment) * self.dot_scale  # (rows, t)
        own = torch.cat([treatment.flatten(1), dots], dim=1)  # (rows, t * (dim + 1))
        z = z[variants.inverse] + F.linear(own, first.weight[:, varying])  # (rows, h)
        return self.head.net[1:](z).squeeze(-1)  # (rows,)

    def _split_head_columns(self, before_context: int, d: int) -> None:
        """The head input's columns that a treatment field feeds (its embedding and its dot
        product with the user), and the rest: :meth:`_variant_logits` splits the head's
        first layer by them."""
        domains = self.embedding.domains
        order = self.groups.order.tolist()
        context = order[len(order) - sum(self.groups.sizes[2:]) :]  # user, then other fields
        self._treatment_names = [
            self.embedding.field_names[i] for i in context if domains[i] == TREATMENT_DOMAIN
        ]
        if set(self._treatment_names) & set(self.embedding.multi_names):
            self._treatment_names = []  # a token list per row: no variants, every row whole
        at = [j for j, i in enumerate(context) if domains[i] == TREATMENT_DOMAIN]
        n_context = len(context)
        varying = [before_context + j * d + c for j in at for c in range(d)]
        varying += [before_context + n_context * d + j for j in at]
        width = self.head.net[0].in_features
        keep = torch.ones(width, dtype=torch.bool)
        keep[varying] = False
        self.register_buffer("_varying_columns", torch.tensor(varying, dtype=torch.long), False)
        self.register_buffer("_shared_columns", torch.nonzero(keep).squeeze(1), False)

    def stage1_logit(
        self, user: torch.Tensor, match: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """Stage-1 classifier ``H1`` on a (real or generated) target embedding and its
        embedded matches ``(batch, links, dim)``: ``(batch,)``."""
        head_in = self._head_input(user, context, self.stage1_proj, match)
        return self.stage1_head(head_in).squeeze(-1)

    def _head_input(
        self, user: torch.Tensor, context: torch.Tensor, proj: nn.Linear, match: torch.Tensor
    ) -> torch.Tensor:
        """``[user, matches, context fields, <proj(user), each context field>]``: ``(batch, head_in)``."""
        dots = torch.einsum("bd,bfd->bf", proj(user), context) * self.dot_scale  # (batch, f)
        return torch.cat([user, match.flatten(1), context.flatten(1), dots], dim=1)

    def _real_profiles(self, batch: Batch) -> torch.Tensor:
        """Real profiles ``(batch, sum V)`` of the target-domain links (stage 1's target)."""
        if not self.links:
            return torch.zeros(batch_size_of(batch), 0)
        return torch.cat([self.embedding.match.profile(batch, i) for i in self.links], dim=1)

    def _real_matches(self, batch: Batch) -> torch.Tensor:
        """Embedded real matches ``(batch, links, dim)`` (an empty sequence's own vector)."""
        if not self.links:
            return torch.zeros(batch_size_of(batch), 0, self.match_embedding.weight.shape[1])
        values, empty = self.embedding.match(batch)  # (batch, all links)
        return self.match_embedding(values[:, self.links], empty[:, self.links])

    def _generated_matches(self, batch: Batch, profiles: torch.Tensor) -> torch.Tensor:
        """Embedded generated matches ``(batch, links, dim)``: each generated profile
        ``(batch, sum V)`` read at the row's target token."""
        if not self.links:
            return torch.zeros(profiles.shape[0], 0, self.match_embedding.weight.shape[1])
        values = []
        for i, part in zip(self.links, profiles.split(self.profile_sizes, dim=1), strict=True):
            token = self.embedding.match.target_token(batch, i)  # (batch,) id + 1, 0 = none
            picked = part.gather(1, (token - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
            values.append(picked * (token != 0))  # no token: the uniform prior, 0
        values = torch.stack(values, dim=1)  # (batch, links)
        never_empty = torch.zeros_like(values, dtype=torch.bool)
        return self.match_embedding(values, never_empty)

    def adversarial_losses(
        self, real: torch.Tensor, fake: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        """Discriminator loss + non-saturating generator loss over weighted ``rows``.

        One backward pass trains both players: the discriminator sees detached
        inputs; the generator's term runs the discriminator with detached
        parameters (``functional_call``), so neither player's loss moves the
        other.  Real labels are smoothed to 0.9 for stability.
        """
        if self.discriminator is None:
            raise RuntimeError("this CSDENet was built without a discriminator (similarity='l2')")
        disc = self.discriminator
        d_real = disc(real.detach()).squeeze(-1)  # (batch,)
        d_fake = disc(fake.detach()).squeeze(-1)
        frozen = {name: p.detach() for name, p in disc.named_parameters()}
        g_fake = torch.func.functional_call(disc, frozen, (fake,)).squeeze(-1)
        loss_d = masked_bce(d_real, torch.full_like(d_real, 0.9), rows) + masked_bce(
            d_fake, torch.zeros_like(d_fake), rows
        )
        loss_g = masked_bce(g_fake, torch.ones_like(g_fake), rows)
        return loss_d + loss_g
