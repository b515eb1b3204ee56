"""STAR (Sheng et al., 2021): one model for many scenes, star topology.

Every scene (the ``scene`` sample column, :mod:`predictors.torch.samples`; without it the
domains) shares one network and keeps its own parameters beside it:

- **partitioned normalisation** (:class:`~predictors.torch.transfer_layers.PartitionedNorm`)
  of the flattened field embeddings: each scene normalised with its own statistics,
  scale ``gamma * gamma_scene`` and shift ``beta + beta_scene``;
- **the star-topology FCN** (:class:`~predictors.torch.transfer_layers.StarMLP`): layer
  ``i``'s weight for a scene is the shared ``W_i`` times (element-wise) the scene's
  ``W_i,scene``, its bias ``b_i + b_i,scene``;
- **the auxiliary network**: an MLP over the scene indicator's embedding and the
  field embeddings, whose logit is added to the star FCN's, as in the paper (one
  network, which the indicator makes scene-specific; it lets the scene shift the logit
  directly).

A row of a scene unseen in fit counts as the default scene.  The source rows are one more
scene.  Prediction answers each row's own scene.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from predictors.features import FeatureSpec
from predictors.models.mlp import MLPConfig, MLPModel
from predictors.torch.inputs import Batch
from predictors.torch.layers import MLP, FieldEmbedding
from predictors.torch.samples import SampleColumns, SampleEstimator, input_spec
from predictors.torch.transfer_layers import PartitionedNorm, StarMLP


class STARConfig(MLPConfig):
    """Hyper-parameters of :class:`STARModel` (``hidden`` is the star FCN's); names equal its
    constructor arguments."""

    scene_dim: int = Field(8, ge=1)
    aux_hidden: tuple[int, ...] = Field((32,), min_length=1)


class STARNet(nn.Module):
    """Embeddings -> partitioned norm -> star FCN, plus the auxiliary network's logit."""

    def __init__(self, spec: FeatureSpec, cfg: STARConfig) -> None:
        super().__init__()
        self.samples = SampleColumns(spec)
        n_scenes = len(self.samples.groups)
        self.embedding = FieldEmbedding(input_spec(spec), cfg.embedding_dim)
        width = self.embedding.flat_dim
        self.norm = PartitionedNorm(width, n_scenes)
        self.star = StarMLP(width, cfg.hidden, n_scenes, dropout=cfg.dropout)
        self.scene_embedding = nn.Embedding(n_scenes, cfg.scene_dim)
        self.auxiliary = MLP(width + cfg.scene_dim, cfg.aux_hidden, output_dim=1)

    def forward(self, batch: Batch) -> torch.Tensor:
        scene = self.samples.group(batch)  # (batch,)
        x = self.embedding(batch).flatten(1)  # (batch, fields * dim)
        main = self.star(self.norm(x, scene), scene)  # (batch, 1)
        aux = self.auxiliary(torch.cat([self.scene_embedding(scene), x], dim=1))  # (batch, 1)
        return (main + aux).squeeze(-1)  # (batch,)


class STARModel(SampleEstimator):
    """One conversion model for every scene of both domains (see the module docstring).

    Example:

    >>> from predictors.examples import DOMAINS, sampled_frame
    >>> from predictors.features import FeatureSpec
    >>> X, y, _ = sampled_frame(800)
    >>> model = STARModel(FeatureSpec.infer(X, DOMAINS), epochs=1, seed=1).fit(X, y)
    >>> model.module_.samples.groups  # one set of scene parameters each
    ('coupon_centre', 'home_feed', 'offers', 'search')
    >>> model.predict_proba(X).shape
    (800, 2)
    """

    name = "star"
    Config = STARConfig
    network = STARNet
    tiny_params: ClassVar[dict[str, Any]] = {**MLPModel.tiny_params, "aux_hidden": (8,)}
