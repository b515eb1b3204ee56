"""Every registered predictor by name, importable without importing its library.

A name maps to ``module:Class`` and the task it learns; the class is imported
only when asked for (:func:`get_predictor`), so validating a configuration that
names a predictor does not import torch or LightGBM.  Every registered model
follows the contract of :mod:`predictors.base` and is exercised by
``tests/test_model_contract.py``.  Add a model by adding a line to
:data:`REGISTRY`.

Tasks: ``conversion`` (binary: does a user convert on an item under a coupon
option), ``open`` (binary: is a push opened), ``basket`` (regression of the log
order value).

>>> {"csde", "lightgbm", "mlp"} <= set(predictor_names("conversion"))
True
>>> predictor_names("basket")
['basket_size']
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Task = Literal["conversion", "open", "basket"]


@dataclass(frozen=True)
class Entry:
    """A registered predictor: where its class lives and what it learns."""

    path: str  # "module:Class"
    task: Task


REGISTRY: dict[str, Entry] = {
    "basket_size": Entry("predictors.basket:BasketSizeModel", "basket"),
    "cdanet": Entry("predictors.models.cdanet:CDAnetModel", "conversion"),
    "csde": Entry("predictors.models.csde:CSDEModel", "conversion"),
    "csde_cycle": Entry("predictors.models.csde_cycle:CSDECycleModel", "conversion"),
    "dann": Entry("predictors.models.dann:DANNModel", "conversion"),
    "dcnv2": Entry("predictors.models.dcnv2:DCNv2Model", "conversion"),
    "finetune": Entry("predictors.models.finetune:FineTuneModel", "conversion"),
    "lightgbm": Entry("predictors.lgbm.conversion:LightGBMModel", "conversion"),
    "maml": Entry("predictors.models.maml:MAMLModel", "conversion"),
    "mlp": Entry("predictors.models.mlp:MLPModel", "conversion"),
    "mmoe": Entry("predictors.models.mmoe:MMOEModel", "conversion"),
    "open_rate": Entry("predictors.open_rate:OpenRateModel", "open"),
    "ple": Entry("predictors.models.ple:PLEModel", "conversion"),
    "self_train": Entry("predictors.models.self_train:SelfTrainModel", "conversion"),
    "shared_bottom": Entry("predictors.models.shared_bottom:SharedBottomModel", "conversion"),
    "source_only": Entry("predictors.models.source_only:SourceOnlyModel", "conversion"),
    "star": Entry("predictors.models.star:STARModel", "conversion"),
    "wasserstein_transfer": Entry("predictors.models.wecan:WassersteinTransferModel", "conversion"),
    "wecan": Entry("predictors.models.wecan:WECANModel", "conversion"),
}


def predictor_names(task: Task | None = None) -> list[str]:
    """Registered names, sorted; only those of ``task`` when given."""
    return sorted(n for n, e in REGISTRY.items() if task is None or e.task == task)


def get_predictor(name: str) -> type:
    """The estimator class registered as ``name`` (imports its module)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown predictor {name!r}; registered: {predictor_names()}")
    module, cls = REGISTRY[name].path.split(":")
    return getattr(importlib.import_module(module), cls)


def load_model(path: str | Path) -> Any:
    """Load any saved registered model; its ``config.json`` names the class."""
    folder = Path(path)
    name = json.loads((folder / "config.json").read_text()).get("model")
    if name not in REGISTRY:
        raise ValueError(f"{folder} holds model {name!r}; registered models: {predictor_names()}")
    return get_predictor(name).load(folder)
