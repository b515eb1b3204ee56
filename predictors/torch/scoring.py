"""Grouped scoring for the torch predictors (see :mod:`predictors.scoring`).

The entity table (users) is encoded once; each base row gathers its entity's
tensors and encodes only its context columns (item, coupon option, cross
features): the same tensors as encoding the joined raw rows, without
re-tokenising a user's strings for every item and option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from predictors.scoring import ContextRows
from predictors.torch.inputs import take

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

    def rows(self, entity_index: np.ndarray, context: pd.DataFrame) -> BatchRows:
        return BatchRows(self, entity_index, self.model.complete_frame(context))


class BatchRows(ContextRows):
    """Base rows of a :class:`BatchScorer`: entity positions plus their context columns."""

    def __init__(
        self, scorer: BatchScorer, entity_index: np.ndarray, context: pd.DataFrame
    ) -> None:
        super().__init__(entity_index, context)
        self.scorer = scorer

    def _score(self, entity_index: np.ndarray, context: pd.DataFrame) -> np.ndarray:
        s = self.scorer
        batch = take(s.entity_batch, torch.from_numpy(entity_index))
        batch.update(s.model.encoder_.encode(context, fields=s.context_fields))
        return s.model.predict_proba_encoded(batch)
