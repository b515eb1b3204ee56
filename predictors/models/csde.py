"""CSDE: cross-domain embedding for new users, with a domain attention.

Stage 1 (cross-domain embedding learning) teaches a generator ``G`` to map a
user's source-domain fields (plus demographics) to a target-domain user
embedding.  Its loss, on the rows whose target fields are known (coverage at
least ``min_target_coverage``), is

    L1 = BCE(H1(e_tgt)) + lambda_sim * sim(e_gen, e_tgt) + lambda_gen * BCE(H1(e_gen))

with ``sim`` either the L2 distance to the (detached) real embedding or an
adversarial discriminator (real = ``e_tgt``, fake = ``e_gen``).  The generated
embedding's classification term uses every row with source fields.  Where the
target domain has a sequence linked to an item field (the click sequence and
the item category, see :class:`predictors.features.Field`), the real embedding
also holds the sequence's profile (the log lift of every category in the
user's clicks) and the generator predicts it too: a dense, per-category
signal from every active user with source history, far richer than one
conversion label per exposure.  A new user's generated profile at the item's
category (the "generated match") then stands in for the click history they
do not have, which is the signal a cold-start user lacks most.

Stage 2 (adaptive prediction) trains on all users: a domain attention weighs
the target embedding, the source embedding and the generated (CSDE) embedding,
with missing domains masked to weight 0; the weighted embeddings (concatenated,
or summed with ``pooling="sum"``) form the user vector, which joins the match
(real and generated mixed by the attention; generated alone for new users), the
demographics, item and coupon-option fields before the prediction MLP. With
``field_skip`` (default) that MLP also reads the target and source field
embeddings themselves: the towers are narrow, so the skip keeps what a plain MLP
over all fields sees while the generated embedding still serves new users.
The target domain counts as present when at least
``min_target_coverage`` of its fields are (the rule that also picks stage 1's
real embeddings): in the simulated world a new user knows only
``tgt_days_since_visit`` and so leans on the source and generated embeddings.
The attention query is built from both domains' coverage and the demographics,
so how much each embedding counts adapts to how much is known about the user.

Training schedule: epochs ``1..stage1_epochs`` minimise ``L2 + L1`` (the
stage-2 loss ``L2`` from the first epoch, so early stopping always watches a
trained predictor; the generator sees only ``L1``); later epochs minimise
``L2`` alone with the generator frozen. The defaults (``lr=1e-3``, up to 20
epochs, patience 3) come from the search recorded in ``benchmarks/README.md``. See
:mod:`predictors.models.csde_parts` for the network.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from predictors.base import check_is_fitted
from predictors.features import FeatureSpec
from predictors.models.csde_parts import DOMAIN_KEYS, CSDENet, CSDEParts
from predictors.torch.base import PREDICT_BATCH
from predictors.torch.inputs import chunks
from predictors.torch.staged import TwoStageConfig, TwoStageEstimator, masked_bce, masked_mean

SUMMARY_ROWS = 20_000  # training rows (a seeded sample) that ``attention_`` summarises


class CSDEConfig(TwoStageConfig):
    """Hyper-parameters of :class:`CSDEModel`; names equal its constructor arguments."""

    user_dim: int = Field(32, ge=1)
    tower_hidden: tuple[int, ...] = Field((64,), min_length=1)
    similarity: Literal["l2", "adversarial"] = "l2"
    lambda_sim: float = Field(10.0, ge=0)
    lambda_gen: float = Field(1.0, ge=0)
    pooling: Literal["sum", "concat"] = "concat"
    field_skip: bool = True


class CSDEModel(TwoStageEstimator):
    """Conversion probability for every lifecycle segment, new users via the generated embedding.

    ``feature_spec`` needs fields of domains ``source`` and ``target``; domain
    ``user`` (demographics) feeds the source tower, the generator and the
    attention query; every other domain (item, treatment, ...) is context.

    After ``fit``: ``attention_`` is a frame of the mean attention weight per
    domain (columns ``target``, ``source``, ``csde``, ``n``) by which domains a
    training row has (over a seeded sample of at most ``SUMMARY_ROWS`` rows);
    :meth:`attention_weights` gives the weights per row.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> model = CSDEModel(spec, similarity="l2", epochs=2, stage1_epochs=1, seed=1).fit(X, y)
    >>> list(model.attention_weights(X).columns)
    ['target', 'source', 'csde']
    """

    name = "csde"
    Config = CSDEConfig
    network = CSDENet
    tiny_params: ClassVar[dict[str, Any]] = {
        **TwoStageEstimator.tiny_params,
        "tower_hidden": (16,),
        "user_dim": 16,
    }

    def __init__(self, feature_spec: FeatureSpec, **params: Any) -> None:
        super().__init__(feature_spec, **params)
        self.attention_: pd.DataFrame | None = None

    # ------------------------------------------------------------------ hooks
    def stage1_loss(
        self, module: nn.Module, parts: CSDEParts, y: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        """``L1``: both stage-1 classifications and the similarity (module docstring)."""
        cfg = self.config_
        known = parts.target_present.float() * w
        with_source = parts.source_present.float() * w
        paired = known * parts.source_present.float()
        assert parts.r_tgt is not None  # stage 1 computes it
        real = module.stage1_logit(parts.e_tgt, parts.m_tgt, parts.context)
        generated = module.stage1_logit(parts.e_gen, parts.m_gen, parts.context)
        total = masked_bce(real, y, known) + cfg.lambda_gen * masked_bce(generated, y, with_source)
        # the real target embedding: the tower's output plus the sequence profiles
        e_real = torch.cat([parts.e_tgt.detach(), parts.r_tgt], dim=1)  # (batch, u + profile)
        e_fake = torch.cat([parts.e_gen, parts.r_gen], dim=1)
        if cfg.similarity == "l2":
            distance = (e_fake - e_real).pow(2).mean(dim=1)  # (batch,)
            similarity = masked_mean(distance, paired)
        else:
            similarity = module.adversarial_losses(e_real, e_fake, paired)
        return total + cfg.lambda_sim * similarity

    def on_fit_end(self, X: pd.DataFrame) -> None:
        """Record ``attention_`` over a seeded sample of the training rows."""
        rows = np.random.default_rng(self.config_.seed).permutation(len(X))[:SUMMARY_ROWS]
        self.attention_ = attention_summary(self.attention_weights(X.iloc[np.sort(rows)]))

    # ------------------------------------------------------------- attention
    @torch.no_grad()
    def attention_weights(self, X: pd.DataFrame) -> pd.DataFrame:
        """Domain-attention weights per row of ``X``: columns ``target``, ``source``, ``csde``.

        A row's weights sum to 1 over its present domains; a missing domain has
        weight exactly 0 (``csde`` needs the source domain; the target domain
        needs ``min_target_coverage`` of its fields).  A row with neither has
        all-zero weights (its prediction rests on the context fields).
        """
        check_is_fitted(self, "module_")
        module = self.module_
        data = self.encoder_.encode(self.complete_frame(X))
        was_training = module.training
        module.eval()
        try:
            out = [module.parts(rows).weights for rows in chunks(data, PREDICT_BATCH)]
        finally:
            module.train(was_training)
        weights = torch.cat(out).numpy().astype(np.float64)
        return pd.DataFrame(weights, columns=list(DOMAIN_KEYS), index=X.index)


def attention_summary(weights: pd.DataFrame) -> pd.DataFrame:
    """Mean attention weight per domain, grouped by which domains a row has (plus ``all``)."""
    present = weights > 0
    has_target = present["target"].map({True: "target", False: "-"})
    has_source = (present["source"] | present["csde"]).map({True: "source", False: "-"})
    pattern = has_target + "+" + has_source
    grouped = weights.groupby(pattern.to_numpy())
    table = grouped.mean()
    table["n"] = grouped.size()
    overall = weights.mean().to_frame("all").T
    overall["n"] = len(weights)
    return pd.concat([table, overall])


__all__ = ["CSDEConfig", "CSDEModel", "attention_summary"]
