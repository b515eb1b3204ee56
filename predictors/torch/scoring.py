"""Grouped scoring for the torch predictors (see :mod:`predictors.scoring`).

The entity table (users) is encoded once; each base row gathers its entity's
tensors and encodes only its context columns (item, coupon option, cross
features): the same tensors as encoding the joined raw rows, without
re-tokenising a user's strings for every item and option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from predictors.scoring import ContextRows
from predictors.torch.inputs import VARIANT_KEY, take

if TYPE_CHECKING:
    from predictors.torch.base import TorchEstimator


class BatchScorer:
    """:class:`~predictors.scoring.GroupedScorer` of a torch model."""

    def __init__(self, model: TorchEstimator, entities: pd.DataFrame) -> None:
        names = model.encoder_.spec.names
        self.model = model
        self.entity_fields = [c for c in names if c in entities.columns]
        self.context_fields = [c for c in names if c not in entities.columns]
        self.entity_batch = model.encoder_.encode(entities, fields=self.entity_fields)

    def rows(self, entity_index: np.ndarray, context: pd.DataFrame) -> ContextRows:
        return ContextRows(self, entity_index, self.model.complete_frame(context))

    def score(
        self,
        entity_index: np.ndarray,
        context: pd.DataFrame,
        *,
        variant_of: np.ndarray | None = None,
        varying: Sequence[str] = (),
    ) -> np.ndarray:
        """Scores of entity ``entity_index[j]`` with row ``j`` of ``context``: the entities'
        encoded tensors gathered, the context columns encoded.

        Variants of one base row (``variant_of``) that differ only in ``varying`` columns,
        all among the module's ``variant_fields``, are scored side by side and marked
        (:data:`~predictors.torch.inputs.VARIANT_KEY`): the module computes what they share
        once per base row.  The scores are the same up to float rounding.
        """
        batch = take(self.entity_batch, torch.from_numpy(entity_index))
        batch.update(self.model.encoder_.encode(context, fields=self.context_fields))
        may_vary = getattr(self.model.module_, "variant_fields", frozenset())
        if variant_of is None or not set(varying) <= may_vary:
            return self.model.predict_proba_encoded(batch)
        order = np.argsort(variant_of, kind="stable")  # a base row's variants side by side
        batch = take(batch, torch.from_numpy(order))
        batch[VARIANT_KEY] = torch.from_numpy(np.asarray(variant_of)[order])
        scores = np.empty(len(order))
        scores[order] = self.model.predict_proba_encoded(batch)
        return scores
