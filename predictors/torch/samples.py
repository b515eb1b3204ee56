"""Sample columns: which domain and scene a training or scoring row belongs to.

A conversion frame MAY carry two *sample columns* beside its features:

- ``domain``: ``"source"`` (the payments app) or ``"target"`` (the shop): whose label ``y`` is;
- ``scene``: the row's scene within its domain (``"home_feed"``, ``"search"``, ``"offers"``).

They ride in every batch as categorical fields of field-domain :data:`SAMPLE_DOMAIN`, as the
auxiliary label of :mod:`predictors.torch.multitask` rides as a field of :data:`AUX_DOMAIN`:
*carried* fields, shuffled and batched with their rows, never embedded (:func:`input_spec`
drops them).  A network decodes them with :class:`SampleColumns` into ``is_source`` (bool
``(batch,)``) and ``scene`` (long ``(batch,)``: an index into the fitted scene vocabulary
:attr:`SampleColumns.scenes`, 0 = unknown).

A model learns the sample columns its training frame has (:func:`with_sample_fields`); a
frame without one stands for the field's ``default`` (:func:`fill_carried`): ``domain`` is
``"target"`` and ``scene`` the *default scene*, the most frequent target scene of the
training frame.  So the decision layer's scoring frames, which carry neither column, are
target rows of the main scene.  A model fitted without a ``scene`` column sees one scene
(index 0 for every row).

Example:

>>> from predictors.examples import DOMAINS, sampled_frame
>>> from predictors.torch.inputs import FrameEncoder
>>> X, y, _ = sampled_frame(400)
>>> spec, X = with_sample_fields(FeatureSpec.infer(X, DOMAINS), X)
>>> [(f.name, f.default) for f in spec.of_domain(SAMPLE_DOMAIN)]
[('domain', 'target'), ('scene', 'home_feed')]
>>> encoder = FrameEncoder.fit(spec, X)
>>> samples = SampleColumns(encoder.spec)
>>> samples.scenes
('<unk>', 'coupon_centre', 'home_feed', 'offers', 'search')
>>> scoring = X.drop(columns=["domain", "scene"]).iloc[:3]  # no sample columns
>>> is_source, scene = samples(encoder.encode(fill_carried(encoder.spec, scoring)))
>>> is_source.tolist(), scene.tolist()  # target rows of the default scene
([False, False, False], [2, 2, 2])
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from predictors.base import check_sample_weight, check_xy
from predictors.features import FeatureSpec, Field
from predictors.torch.base import TorchEstimator, TrainConfig
from predictors.torch.inputs import Batch, batch_size_of

SAMPLE_DOMAIN = "sample"
"""Field-domain of the sample columns: carried in batches, never embedded."""
AUX_DOMAIN = "aux"
"""Field-domain of the auxiliary label (:mod:`predictors.torch.multitask`): carried, never embedded."""
CARRIED_DOMAINS = (SAMPLE_DOMAIN, AUX_DOMAIN)
DOMAIN_COLUMN = "domain"
SCENE_COLUMN = "scene"
SOURCE, TARGET = "source", "target"
UNKNOWN = "<unk>"


def input_spec(spec: FeatureSpec) -> FeatureSpec:
    """``spec`` without the carried fields (sample columns, auxiliary label): what a network embeds."""
    return spec.select(lambda f: f.domain not in CARRIED_DOMAINS)


def check_sample_columns(X: pd.DataFrame) -> None:
    """Raise a ValueError naming the column and row of a bad sample value.

    ``domain`` must be ``"source"`` or ``"target"`` in every row; ``scene`` must name a
    scene in every row.  Frames without the columns pass.
    """
    if DOMAIN_COLUMN in X.columns:
        bad = ~X[DOMAIN_COLUMN].isin((SOURCE, TARGET)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = X[DOMAIN_COLUMN].iloc[row]
            raise ValueError(
                f"sample column {DOMAIN_COLUMN!r} must hold {SOURCE!r} or {TARGET!r} in every "
                f"row; row {row} has {value!r}"
            )
    if SCENE_COLUMN in X.columns:
        missing = X[SCENE_COLUMN].isna().to_numpy()
        if missing.any():
            raise ValueError(
                f"sample column {SCENE_COLUMN!r} must name a scene in every row; "
                f"row {int(np.flatnonzero(missing)[0])} has none"
            )


def source_rows(X: pd.DataFrame) -> np.ndarray:
    """Bool ``(rows,)``: True for the source-domain rows of ``X`` (none without ``domain``)."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    check_sample_columns(X)
    if DOMAIN_COLUMN not in X.columns:
        return np.zeros(len(X), dtype=bool)
    return (X[DOMAIN_COLUMN] == SOURCE).to_numpy()


def default_scene(X: pd.DataFrame) -> str:
    """The most frequent scene of the target rows of ``X`` (of all rows if none is a target
    row; ties: the first name in sorted order)."""
    scenes = X[SCENE_COLUMN].astype(str)
    target = ~source_rows(X)
    counts = (scenes[target] if target.any() else scenes).value_counts()
    return str(min(counts.index[counts == counts.max()]))


def with_sample_fields(spec: FeatureSpec, X: pd.DataFrame) -> tuple[FeatureSpec, pd.DataFrame]:
    """Add the sample columns that ``X`` has to ``spec`` as fields of :data:`SAMPLE_DOMAIN`.

    ``X`` is validated (:func:`check_sample_columns`) and its ``scene`` written as text;
    sample fields already in ``spec`` (a reloaded model's) are replaced.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    spec = spec.select(lambda f: f.domain != SAMPLE_DOMAIN)
    clash = [c for c in (DOMAIN_COLUMN, SCENE_COLUMN) if c in spec.names]
    if clash:
        raise ValueError(
            f"{clash} are sample columns, not features: drop them from the FeatureSpec "
            f"(the models read them through predictors.torch.samples)"
        )
    check_sample_columns(X)
    fields = []
    if DOMAIN_COLUMN in X.columns:
        vocab = (UNKNOWN, SOURCE, TARGET) if spec.fitted else ()
        fields.append(Field(DOMAIN_COLUMN, "categorical", SAMPLE_DOMAIN, vocab, default=TARGET))
    if SCENE_COLUMN in X.columns:
        X = X.assign(**{SCENE_COLUMN: X[SCENE_COLUMN].astype(str)})
        vocab = (UNKNOWN, *sorted(X[SCENE_COLUMN].unique())) if spec.fitted else ()
        fields.append(
            Field(SCENE_COLUMN, "categorical", SAMPLE_DOMAIN, vocab, default=default_scene(X))
        )
    return FeatureSpec(fields=(*spec.fields, *fields), fitted=spec.fitted), X


def fill_carried(spec: FeatureSpec, X: pd.DataFrame) -> pd.DataFrame:
    """``X`` checked, with every carried column of ``spec`` it lacks added as the field's
    ``default`` (``"target"``, the default scene; a missing auxiliary label)."""
    if not isinstance(X, pd.DataFrame):
        return X  # the encoder names the type
    check_sample_columns(X)
    absent = {
        f.name: f.default
        for f in spec.fields
        if f.domain in CARRIED_DOMAINS and f.name not in X.columns
    }
    return X.assign(**absent) if absent else X


def complete_eval_set(
    spec: FeatureSpec, eval_set: tuple[pd.DataFrame, Any] | None
) -> tuple[pd.DataFrame, Any] | None:
    """``eval_set`` with its frame completed by :func:`fill_carried`."""
    if eval_set is None:
        return None
    X_valid, y_valid = eval_set
    return fill_carried(spec, X_valid), y_valid


class SampleColumns(nn.Module):
    """Decodes a batch's sample fields into ``(is_source bool, scene long)``, both ``(batch,)``.

    ``scenes`` is the fitted scene vocabulary (index 0 = unknown; just ``("<unk>",)``
    without a scene field), ``default_scene`` the index of the default scene.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        fields = {f.name: f for f in spec.of_domain(SAMPLE_DOMAIN)}
        domain, scene = fields.get(DOMAIN_COLUMN), fields.get(SCENE_COLUMN)
        self.domain_field = domain.name if domain else None
        self.scene_field = scene.name if scene else None
        self.scenes: tuple[str, ...] = scene.vocab if scene and scene.vocab else (UNKNOWN,)
        default = scene.default if scene else None
        self.default_scene = self.scenes.index(default) if default in self.scenes else 0
        codes = [v == SOURCE for v in domain.vocab] if domain and domain.vocab else [False]
        self.register_buffer("source_code", torch.tensor(codes), persistent=False)

    @property
    def n_scenes(self) -> int:
        """Scene slots, unknown (0) included."""
        return len(self.scenes)

    @property
    def groups(self) -> tuple[str, ...]:
        """The finest partition of rows the columns give, for per-scene parameters: the
        known scenes (``scenes[1:]``), else the domains (target, source), else one group."""
        if self.scene_field is not None and self.n_scenes > 1:
            return self.scenes[1:]
        return (TARGET, SOURCE) if self.domain_field is not None else (TARGET,)

    def group(self, batch: Batch) -> torch.Tensor:
        """Long ``(batch,)``: each row's index into :attr:`groups`; a row of an unknown scene
        counts as the default scene."""
        is_source, scene = self(batch)
        if self.scene_field is not None and self.n_scenes > 1:
            return torch.where(scene == 0, self.default_scene, scene) - 1
        return is_source.long()

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        n = batch_size_of(batch)
        if self.domain_field is None:
            is_source = torch.zeros(n, dtype=torch.bool)
        else:
            is_source = self.source_code[batch[self.domain_field]]  # (batch,)
        if self.scene_field is None:
            return is_source, torch.zeros(n, dtype=torch.long)
        return is_source, batch[self.scene_field]  # (batch,), (batch,)


class SampleEstimator(TorchEstimator):
    """A torch estimator whose network reads the sample columns (:class:`SampleColumns`):
    ``fit`` adds the ones ``X`` has to the spec, prediction fills the ones a frame lacks."""

    def training_inputs(
        self, X: pd.DataFrame, eval_set: tuple[pd.DataFrame, Any] | None, cfg: TrainConfig
    ) -> tuple[FeatureSpec, pd.DataFrame, tuple[pd.DataFrame, Any] | None]:
        spec, X = with_sample_fields(self.feature_spec, X)
        return spec, X, complete_eval_set(spec, eval_set)

    def complete_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the sample columns it lacks added as their defaults (:func:`fill_carried`)."""
        return fill_carried(self.feature_spec_, X)


class OneDomainEstimator(TorchEstimator):
    """A torch estimator fitted on the rows of one domain only (``trains_on``), scoring any
    row: the source-only and self-train (target-only) baselines of the transfer models."""

    trains_on: ClassVar[str] = TARGET

    def training_rows(
        self, X: pd.DataFrame, y: Any, sample_weight: Any, eval_set: tuple[pd.DataFrame, Any] | None
    ) -> tuple[pd.DataFrame, Any, Any, tuple[pd.DataFrame, Any] | None]:
        """The rows of ``X`` (and of ``eval_set``) whose ``domain`` is ``trains_on`` (a frame
        without ``domain`` is all target rows)."""
        labels = check_xy(X, y)
        weight = check_sample_weight(sample_weight, len(X))
        keep = self._own_rows(X)
        if not keep.any():
            raise ValueError(
                f"{self.name} trains on the {self.trains_on}-domain rows (column "
                f"{DOMAIN_COLUMN!r}); X has none"
            )
        if eval_set is not None:
            X_valid, y_valid = eval_set
            kept = self._own_rows(X_valid)
            eval_set = (X_valid[kept], np.asarray(y_valid)[kept])
        return X[keep], labels[keep], None if weight is None else weight[keep], eval_set

    def _own_rows(self, X: pd.DataFrame) -> np.ndarray:
        """Rows of ``X`` in the domain this estimator trains on."""
        return source_rows(X) == (self.trains_on == SOURCE)


__all__ = [
    "AUX_DOMAIN",
    "DOMAIN_COLUMN",
    "SAMPLE_DOMAIN",
    "SCENE_COLUMN",
    "SOURCE",
    "TARGET",
    "OneDomainEstimator",
    "SampleColumns",
    "SampleEstimator",
    "check_sample_columns",
    "complete_eval_set",
    "default_scene",
    "fill_carried",
    "input_spec",
    "source_rows",
    "with_sample_fields",
]
