"""Grouped scoring: many rows that share an entity and differ in a few context columns.

A decision layer scores every user under every coupon option: millions of rows
that repeat each user's fields (long token strings among them) and differ only
in the option's columns.  ``model.grouped_scorer(entities, varying)`` encodes
the entity table (the users) once; :meth:`GroupedScorer.rows` then takes base
rows, given as positions in that table plus the other columns (item, option),
and :meth:`ScoredRows.predict` / :meth:`ScoredRows.predict_variants` score them
and variants of them with the ``varying`` columns replaced.  Each estimator
family implements it the fast way it can (LightGBM evaluates the trees that
never read a varying column once per base row; torch gathers the entities'
encoded tensors, and a module with ``variant_fields`` runs what a base row's variants
share once); the scores equal ``predict_proba(rows)[:, 1]`` (classifiers)
or ``predict(rows)`` (regressors) of the joined rows, up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd


class ScoredRows(Protocol):
    """Base rows of a :class:`GroupedScorer`, ready to be scored with or without variants."""

    def predict(self) -> np.ndarray:
        """(m,) scores of the base rows."""
        ...

    def predict_variants(self, rows: np.ndarray, replaced: pd.DataFrame) -> np.ndarray:
        """(r,) scores of base rows ``rows`` with the columns of ``replaced`` (r rows)
        taking its values (a subset of the scorer's ``varying`` columns)."""
        ...


class GroupedScorer(Protocol):
    """An estimator's scorer with the entity table encoded once."""

    def rows(self, entity_index: np.ndarray, context: pd.DataFrame) -> ScoredRows:
        """Base rows: entity ``entity_index[j]`` joined with row ``j`` of ``context``
        (every model column that is not an entity column)."""
        ...


def join_rows(
    entities: pd.DataFrame, entity_index: np.ndarray, context: pd.DataFrame
) -> pd.DataFrame:
    """The raw rows a grouped scorer stands for: entity columns, then context columns."""
    frame = entities.take(entity_index).reset_index(drop=True)
    for col in context.columns:
        frame[col] = context[col].to_numpy()
    return frame


class RowScorer(Protocol):
    """A scorer of joined rows, as :class:`ContextRows` uses it."""

    def score(
        self,
        entity_index: np.ndarray,
        context: pd.DataFrame,
        *,
        variant_of: np.ndarray | None = None,
        varying: Sequence[str] = (),
    ) -> np.ndarray:
        """(m,) scores of entity ``entity_index[j]`` joined with row ``j`` of ``context``;
        ``variant_of[j]`` names the base row that row ``j`` varies (in ``varying`` only)."""
        ...


class ContextRows:
    """Base rows kept as entity positions plus their context columns; the scorer's
    :meth:`~RowScorer.score` scores them (the rows are joined only there)."""

    def __init__(self, scorer: RowScorer, entity_index: np.ndarray, context: pd.DataFrame) -> None:
        self.scorer = scorer
        self.entity_index, self.context = np.asarray(entity_index), context.reset_index(drop=True)

    def predict(self) -> np.ndarray:
        return self.scorer.score(self.entity_index, self.context)

    def predict_variants(self, rows: np.ndarray, replaced: pd.DataFrame) -> np.ndarray:
        context = self.context.iloc[rows].reset_index(drop=True)
        for col in replaced.columns:
            context[col] = replaced[col].to_numpy()
        return self.scorer.score(
            self.entity_index[rows],
            context,
            variant_of=np.asarray(rows),
            varying=tuple(replaced.columns),
        )


class FrameScorer:
    """The plain :class:`GroupedScorer` of any classifier with ``predict_proba``: it joins
    the rows and scores them (no saving; a reference and a fallback)."""

    def __init__(self, model, entities: pd.DataFrame) -> None:
        self.model, self.entities = model, entities

    def rows(self, entity_index: np.ndarray, context: pd.DataFrame) -> ContextRows:
        return ContextRows(self, entity_index, context)

    def score(
        self, entity_index: np.ndarray, context: pd.DataFrame, **variants: object
    ) -> np.ndarray:
        """Scores of entity ``entity_index[j]`` joined with row ``j`` of ``context`` (every
        row on its own: ``variants`` are ignored)."""
        joined = join_rows(self.entities, entity_index, context)
        return self.model.predict_proba(joined)[:, 1]
