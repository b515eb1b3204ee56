"""Registry of conversion models: name -> estimator class.

Every registered model follows the contract in :mod:`predictors.base` and is
exercised by ``tests/test_model_contract.py``.  Torch models take a
:class:`~predictors.features.FeatureSpec` first and a raw frame in ``fit``;
LightGBM takes a tabular frame (:func:`predictors.tabular.encode_tabular`).
Add a model by importing its class here and adding it to :data:`REGISTRY`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from predictors.lgbm import LightGBMModel
from predictors.models.csde import CSDEModel
from predictors.models.cycle_fill import CycleFillModel
from predictors.models.dcnv2 import DCNv2Model
from predictors.models.finetune import FineTuneModel
from predictors.models.maml import MAMLModel
from predictors.models.mlp import MLPModel
from predictors.models.mmoe import MMOEModel
from predictors.models.shared_bottom import SharedBottomModel

REGISTRY: dict[str, type] = {
    "csde": CSDEModel,
    "csde_cycle": CycleFillModel,
    "dcnv2": DCNv2Model,
    "finetune": FineTuneModel,
    "lightgbm": LightGBMModel,
    "maml": MAMLModel,
    "mlp": MLPModel,
    "mmoe": MMOEModel,
    "shared_bottom": SharedBottomModel,
}


def load_model(path: str | Path) -> Any:
    """Load any saved registered model; its ``config.json`` names the class."""
    folder = Path(path)
    name = json.loads((folder / "config.json").read_text()).get("model")
    if name not in REGISTRY:
        raise ValueError(f"{folder} holds model {name!r}; registered models: {sorted(REGISTRY)}")
    return REGISTRY[name].load(folder)


__all__ = [
    "REGISTRY",
    "CSDEModel",
    "CycleFillModel",
    "DCNv2Model",
    "FineTuneModel",
    "LightGBMModel",
    "MAMLModel",
    "MLPModel",
    "MMOEModel",
    "SharedBottomModel",
    "load_model",
]
