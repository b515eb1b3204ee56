"""CSDE-cycle: unpaired CycleGAN-style translation (WGAN-GP) that fills missing target fields.

The optional third variant of the cross-domain model: instead of CSDE's paired
generator (:mod:`predictors.models.csde`), two generators translate between the
source-domain vector ``s`` (source + demographic field embeddings) and the
target-domain vector ``t`` (target field embeddings, the click-sequence match
included), trained like CycleGAN: WGAN-GP critics on each side and a cycle-
consistency loss, with real vectors taken from whichever users have that domain
(not from the users who have both).  A user without the target domain but with
source history (a new user) is scored with ``G_st(s)`` in place of the target
fields they lack, so the prediction head sees a full row.

Labelled source-domain rows train the source head (:mod:`predictors.torch.staged`).
:meth:`CSDECycleModel.target_feature_scores` scores the same model with the real
target fields, with them removed and with them generated (the evaluation of its
source paper; :func:`predictors.metrics.target_feature_ablation` tabulates it).

Stage 1 (epochs ``1..stage1_epochs``) minimises the prediction log loss plus the
translation losses (on detached embeddings: the embeddings learn from the
prediction only); later epochs minimise the log loss alone with the generators
frozen.  See :mod:`predictors.models.csde_cycle_parts` for the network.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from predictors.base import check_is_fitted
from predictors.models.csde_cycle_parts import CSDECycleNet, CycleParts
from predictors.torch.base import PREDICT_BATCH
from predictors.torch.inputs import chunks
from predictors.torch.staged import TwoStageConfig, TwoStageEstimator

TargetFeatures = Literal["real", "removed", "generated"]


class CSDECycleConfig(TwoStageConfig):
    """Hyper-parameters of :class:`CSDECycleModel`; names equal its constructor arguments."""

    gen_hidden: tuple[int, ...] = Field((64,), min_length=1)
    critic_hidden: tuple[int, ...] = Field((64,), min_length=1)
    lambda_gp: float = Field(10.0, ge=0)
    lambda_cycle: float = Field(10.0, ge=0)


class CSDECycleModel(TwoStageEstimator):
    """Conversion probability; rows without the target domain get generated target fields.

    ``feature_spec`` needs fields of domains ``source`` and ``target``; domain
    ``user`` (demographics) joins the source side; every other domain is context.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> model = CSDECycleModel(spec, epochs=2, stage1_epochs=1, seed=1).fit(X, y)
    >>> model.predict_proba(X).shape
    (600, 2)
    """

    name = "csde_cycle"
    Config = CSDECycleConfig
    network = CSDECycleNet
    tiny_params: ClassVar[dict[str, Any]] = {
        **TwoStageEstimator.tiny_params,
        "gen_hidden": (16,),
        "critic_hidden": (16,),
    }

    def stage1_loss(
        self, module: nn.Module, parts: CycleParts, y: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        """Both directions' WGAN-GP and cycle-consistency losses."""
        cfg = self.config_
        return module.translation_losses(
            parts, w, lambda_gp=cfg.lambda_gp, lambda_cycle=cfg.lambda_cycle
        )

    @torch.no_grad()
    def target_feature_scores(self, X: pd.DataFrame, target_features: TargetFeatures) -> np.ndarray:
        """Conversion probabilities ``(rows,)`` of ``X`` scored with its target fields
        ``"real"`` (as :meth:`predict_proba`), ``"removed"`` (every target field missing,
        no fill: the head reads the missing-value embeddings) or ``"generated"`` (every
        target field missing, filled with ``G_st(s)`` where the row has source fields)."""
        check_is_fitted(self, "module_")
        if target_features not in ("real", "removed", "generated"):
            raise ValueError(
                f"target_features must be 'real', 'removed' or 'generated', got {target_features!r}"
            )
        frame = self.complete_frame(X)
        if target_features != "real":
            blank = {
                f.name: np.nan if f.kind == "numeric" else None for f in self.module_.target_fields
            }
            frame = frame.assign(**blank)
        data, module = self.encoder_.encode(frame), self.module_.eval()
        fill = target_features != "removed"
        logits = [module.parts(rows, fill=fill).logit for rows in chunks(data, PREDICT_BATCH)]
        return 1.0 / (1.0 + np.exp(-self._calibrated(torch.cat(logits))))


__all__ = ["CSDECycleConfig", "CSDECycleModel", "TargetFeatures"]
