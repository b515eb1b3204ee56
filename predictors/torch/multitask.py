"""Multi-task estimators and the auxiliary-label plumbing every multi-task model uses.

Multi-task learning needs a second label.  It comes in one of two ways:

- **source rows** (:mod:`predictors.torch.samples`): with a ``domain`` column, the
  source-domain rows are the auxiliary task (task 1) and the target rows the main task
  (task 0); each row's ``y`` is its own task's label, and ``predict_proba`` answers each
  row's own task (a frame without ``domain`` is all target rows).
- **an auxiliary column** (the older path, kept for its callers): a column named
  ``aux_column`` (default ``"aux_label"``) holding 0/1 where a row has an auxiliary
  label and NaN where it has none.  A row that only carries an auxiliary label (e.g. a
  MovieLens *source*-domain rating used to help the *target* task) gets
  ``sample_weight`` 0, so it trains the auxiliary head and the shared layers but not
  the main head.  Prediction returns the main task; frames without the column, such as
  the scoring frames of the decision layer, are accepted.

Why columns and not a second ``y``: the training loop, early stopping and save/load live
once in :class:`~predictors.torch.base.TorchEstimator`; the auxiliary label rides along as
one more (categorical) field of domain ``aux`` and the sample columns as fields of domain
``sample``, which the network never embeds, so they are shuffled and batched with their row.

Without either, a multi-task model trains the main task alone (one tower), which keeps it
usable wherever a plain model is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field as PydanticField
from torch import nn
from torch.nn import functional as F

from predictors.features import FeatureSpec, Field
from predictors.torch.base import MiniBatchConfig, TrainConfig
from predictors.torch.inputs import Batch
from predictors.torch.layers import FieldEmbedding
from predictors.torch.samples import (
    AUX_DOMAIN,
    SampleColumns,
    SampleEstimator,
    complete_eval_set,
    input_spec,
    with_sample_fields,
)


def with_aux_field(
    spec: FeatureSpec, X: pd.DataFrame, aux_column: str
) -> tuple[FeatureSpec, pd.DataFrame]:
    """Add the auxiliary label of ``X[aux_column]`` (0/1/NaN) to ``spec`` as a field.

    Returns ``(spec, X)`` unchanged when ``X`` has no such column.  Otherwise the
    column is validated and rewritten as the strings ``"0"``/``"1"`` (missing kept)
    so the encoder codes it like any categorical field.
    """
    spec = spec.select(lambda f: f.domain != AUX_DOMAIN)  # a reloaded model's spec has one
    if aux_column in spec.names:
        raise ValueError(
            f"aux_column {aux_column!r} is also a feature of the FeatureSpec; a label must not "
            "be an input: drop it from the spec or pass another aux_column"
        )
    if not isinstance(X, pd.DataFrame) or aux_column not in X.columns:
        return spec, X
    values = pd.to_numeric(X[aux_column], errors="coerce").to_numpy(np.float64)
    text_bad = X[aux_column].notna().to_numpy() & np.isnan(values)
    bad = text_bad | (~np.isnan(values) & ~np.isin(values, (0.0, 1.0)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = X[aux_column].iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise ValueError(
            f"auxiliary label column {aux_column!r} must hold 0, 1 or NaN; row {row} has {value!r}"
        )
    coded = pd.Series(
        np.where(np.isnan(values), None, np.where(values == 1.0, "1", "0")),
        index=X.index,
        dtype="object",
    )
    vocab = ("<unk>", "0", "1") if spec.fitted else ()
    aux = Field(name=aux_column, kind="categorical", domain=AUX_DOMAIN, vocab=vocab)
    return FeatureSpec(fields=(*spec.fields, aux), fitted=spec.fitted), X.assign(
        **{aux_column: coded}
    )


class MultiTaskConfig(MiniBatchConfig):
    """Hyper-parameters of every model trained on both tasks at once; a model adds its own.

    ``aux_weight`` weighs the auxiliary task's log loss against the main task's
    (:meth:`MultiTaskEstimator.loss`).
    """

    embedding_dim: int = PydanticField(16, ge=1)
    dropout: float = PydanticField(0.1, ge=0, lt=1)
    aux_column: str = PydanticField("aux_label", min_length=1)
    aux_weight: float = PydanticField(1.0, ge=0)


class AuxLabels(nn.Module):
    """Decodes the auxiliary field of a batch into ``(labels float, present bool)``, both ``(batch,)``."""

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        fields = [f for f in spec.fields if f.domain == AUX_DOMAIN]
        if len(fields) > 1:
            raise ValueError(f"at most one auxiliary label field, got {[f.name for f in fields]}")
        self.name = fields[0].name if fields else None
        vocab = fields[0].vocab if fields else ()
        # code -> label: -1 missing/unknown, else 0/1
        lookup = torch.tensor([{"0": 0, "1": 1}.get(v, -1) for v in vocab] or [-1])
        self.register_buffer("lookup", lookup, persistent=False)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.name is None:
            n = len(next(iter(batch.values())))
            return torch.zeros(n), torch.zeros(n, dtype=torch.bool)
        codes = self.lookup[batch[self.name]]  # (batch,)
        return codes.clamp_min(0).float(), codes >= 0


class MultiTaskNet(nn.Module):
    """Base of the multi-task networks: the auxiliary labels, the sample columns, the
    embeddings of the input fields, and ``forward`` = each row's own task's logit (the
    auxiliary task's for source rows); a subclass adds its layers and
    ``task_logits(batch) -> (batch, n_tasks)`` (task 0 is the main task)."""

    def __init__(self, spec: FeatureSpec, embedding_dim: int) -> None:
        super().__init__()
        self.aux_labels = AuxLabels(spec)
        self.samples = SampleColumns(spec)
        self.embedding = FieldEmbedding(input_spec(spec), embedding_dim)

    @property
    def n_tasks(self) -> int:
        """1 (main task) plus 1 when there is an auxiliary task (an aux label or source rows)."""
        return 2 if self.aux_labels.name or self.samples.domain_field else 1

    def task_logits(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement task_logits(batch)")

    def own_task(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        """``(batch,)``: each row's own task's column of ``logits`` (task 1 for source rows)."""
        if logits.shape[1] == 1:
            return logits[:, 0]
        is_source, _ = self.samples(batch)
        return torch.where(is_source, logits[:, 1], logits[:, 0])

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.own_task(batch, self.task_logits(batch))  # (batch,)


class MultiTaskEstimator(SampleEstimator):
    """Base of the multi-task models: the auxiliary task in ``fit`` and the two-part loss.

    A subclass's module is a :class:`MultiTaskNet`; its ``Config`` has ``aux_column``
    and ``aux_weight`` (a :class:`MultiTaskConfig`, or the fine-tuning model's own).
    """

    Config = MultiTaskConfig

    def training_inputs(
        self, X: pd.DataFrame, eval_set: tuple[pd.DataFrame, Any] | None, cfg: TrainConfig
    ) -> tuple[FeatureSpec, pd.DataFrame, tuple[pd.DataFrame, Any] | None]:
        """The sample columns and ``X[aux_column]`` (0/1/NaN) join the spec as carried fields.

        Rows with only an auxiliary label should get ``sample_weight`` 0.
        """
        spec, X = with_sample_fields(self.feature_spec, X)
        spec, X = with_aux_field(spec, X, cfg.aux_column)
        if eval_set is not None:
            X_valid, y_valid = eval_set
            eval_set = (with_aux_field(spec, X_valid, cfg.aux_column)[1], y_valid)
        return spec, X, complete_eval_set(spec, eval_set)

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Target rows' BCE (weighted mean) + ``aux_weight`` x the auxiliary task's BCE: the
        source rows' (weighted mean of their own task's logit) and the aux-labelled rows'."""
        logits = module.task_logits(batch)  # (batch, tasks)
        own = F.binary_cross_entropy_with_logits(
            module.own_task(batch, logits), y, reduction="none"
        )
        w = torch.ones_like(y) if weight is None else weight
        if logits.shape[1] == 1:  # one head (fine-tuning: its phases choose the rows)
            return _weighted_mean(own, w)
        is_source, _ = module.samples(batch)
        total = _weighted_mean(own, w * ~is_source)
        if is_source.any():
            total = total + self.config_.aux_weight * _weighted_mean(own, w * is_source)
        if module.aux_labels.name is not None:
            labels, present = module.aux_labels(batch)
            if present.any():
                aux = F.binary_cross_entropy_with_logits(logits[present, 1], labels[present])
                total = total + self.config_.aux_weight * aux
        return total


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (values * weight).sum() / weight.sum().clamp_min(1e-12)
