"""Multi-task estimators and the auxiliary-label plumbing every multi-task model uses.

Multi-task learning needs a second label.  Here it travels *inside* ``X``: a
column named ``aux_column`` (default ``"aux_label"``) holding 0/1 where a row has
an auxiliary label and NaN where it has none.  The main label is ``y``; a row
that only carries an auxiliary label (e.g. a MovieLens *source*-domain rating
used to help the *target* task) gets ``sample_weight`` 0, so it trains the
auxiliary head and the shared layers but not the main head.  Prediction always
returns the main (target) task; frames without the auxiliary column, such as
the scoring frames of the decision layer, are accepted.

Why a column and not a second ``y``: the training loop, early stopping and
save/load live once in :class:`~predictors.torch.base.TorchEstimator`; the
auxiliary label rides along as one more (categorical) field of domain ``aux``
that the network never embeds, so it is shuffled and batched with its row.

Without the auxiliary column a multi-task model trains the main task alone
(one tower), which keeps it usable wherever a plain model is.
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
from predictors.torch.base import MiniBatchConfig, TorchEstimator, TrainConfig
from predictors.torch.inputs import Batch
from predictors.torch.layers import FieldEmbedding

AUX_DOMAIN = "aux"
"""Domain of the auxiliary-label field: carried in batches, never embedded."""


def input_spec(spec: FeatureSpec) -> FeatureSpec:
    """``spec`` without the auxiliary-label field: the fields a network embeds."""
    return FeatureSpec(
        fields=tuple(f for f in spec.fields if f.domain != AUX_DOMAIN), fitted=spec.fitted
    )


def with_aux_field(
    spec: FeatureSpec, X: pd.DataFrame, aux_column: str
) -> tuple[FeatureSpec, pd.DataFrame]:
    """Add the auxiliary label of ``X[aux_column]`` (0/1/NaN) to ``spec`` as a field.

    Returns ``(spec, X)`` unchanged when ``X`` has no such column.  Otherwise the
    column is validated and rewritten as the strings ``"0"``/``"1"`` (missing kept)
    so the encoder codes it like any categorical field.
    """
    spec = input_spec(spec)  # a reloaded model's spec already carries the field
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


def fill_aux_column(spec: FeatureSpec, X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with an all-missing auxiliary column added when ``spec`` has one and ``X`` lacks it."""
    for f in spec.fields:
        if f.domain == AUX_DOMAIN and isinstance(X, pd.DataFrame) and f.name not in X.columns:
            X = X.assign(**{f.name: None})
    return X


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

    @property
    def n_tasks(self) -> int:
        """1 (main task) plus 1 when an auxiliary label field exists."""
        return 1 if self.name is None else 2

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.name is None:
            n = len(next(iter(batch.values())))
            return torch.zeros(n), torch.zeros(n, dtype=torch.bool)
        codes = self.lookup[batch[self.name]]  # (batch,)
        return codes.clamp_min(0).float(), codes >= 0


class MultiTaskNet(nn.Module):
    """Base of the multi-task networks: the auxiliary labels, the embeddings of the input
    fields, and ``forward`` = the main task's logit; a subclass adds its layers and
    ``task_logits(batch) -> (batch, tasks)`` (task 0 is the main task)."""

    def __init__(self, spec: FeatureSpec, embedding_dim: int) -> None:
        super().__init__()
        self.aux_labels = AuxLabels(spec)
        self.embedding = FieldEmbedding(input_spec(spec), embedding_dim)

    def task_logits(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement task_logits(batch)")

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.task_logits(batch)[:, 0]  # (batch,)


class MultiTaskEstimator(TorchEstimator):
    """Base of the multi-task models: the auxiliary column in ``fit`` and the two-part loss.

    A subclass's module is a :class:`MultiTaskNet`; its ``Config`` has ``aux_column``
    (a :class:`MultiTaskConfig`, or the fine-tuning model's own).
    """

    Config = MultiTaskConfig

    def training_inputs(
        self, X: pd.DataFrame, eval_set: tuple[pd.DataFrame, Any] | None, cfg: TrainConfig
    ) -> tuple[FeatureSpec, pd.DataFrame, tuple[pd.DataFrame, Any] | None]:
        """``X[aux_column]`` (0/1/NaN) joins the spec as the auxiliary label field.

        Rows with only an auxiliary label should get ``sample_weight`` 0.
        """
        spec, X = with_aux_field(self.feature_spec, X, cfg.aux_column)
        if eval_set is not None:
            X_valid, y_valid = eval_set
            X_valid = with_aux_field(self.feature_spec, X_valid, cfg.aux_column)[1]
            eval_set = (fill_aux_column(spec, X_valid), y_valid)
        return spec, X, eval_set

    def complete_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the auxiliary column added (missing) when absent: prediction needs no label."""
        return fill_aux_column(self.feature_spec_, X)

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Main BCE (weighted mean over rows) + ``aux_weight`` x auxiliary BCE on labelled rows."""
        logits = module.task_logits(batch)  # (batch, tasks)
        main = F.binary_cross_entropy_with_logits(logits[:, 0], y, reduction="none")
        if weight is None:
            total = main.mean()
        else:
            total = (main * weight).sum() / weight.sum().clamp_min(1e-12)
        if logits.shape[1] > 1:
            labels, present = module.aux_labels(batch)
            if present.any():
                aux = F.binary_cross_entropy_with_logits(logits[present, 1], labels[present])
                total = total + self.config_.aux_weight * aux
        return total
