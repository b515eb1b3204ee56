"""The torch conversion models, one thin file each over :mod:`predictors.torch`.

They are registered by name in :mod:`predictors.registry` (which imports none
of them until asked).
"""

from predictors.models.cdanet import CDAnetModel
from predictors.models.csde import CSDEModel
from predictors.models.csde_cycle import CSDECycleModel
from predictors.models.dann import DANNModel
from predictors.models.dcnv2 import DCNv2Model
from predictors.models.finetune import FineTuneModel
from predictors.models.maml import MAMLModel
from predictors.models.mlp import MLPModel
from predictors.models.mmoe import MMOEModel
from predictors.models.ple import PLEModel
from predictors.models.self_train import SelfTrainModel
from predictors.models.shared_bottom import SharedBottomModel
from predictors.models.source_only import SourceOnlyModel
from predictors.models.star import STARModel
from predictors.models.wecan import WassersteinTransferModel, WECANModel

__all__ = [
    "CDAnetModel",
    "CSDECycleModel",
    "CSDEModel",
    "DANNModel",
    "DCNv2Model",
    "FineTuneModel",
    "MAMLModel",
    "MLPModel",
    "MMOEModel",
    "PLEModel",
    "STARModel",
    "SelfTrainModel",
    "SharedBottomModel",
    "SourceOnlyModel",
    "WECANModel",
    "WassersteinTransferModel",
]
