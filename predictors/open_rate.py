"""Open-rate model of push messages, with the fatigue decay it implies.

A binary LightGBM model of whether a push is opened, given the user, the
message and the moment (hour, pushes already sent that day).  The push plan
needs one number besides the probabilities: how much a second push of the day
is worth relative to the first.  :attr:`OpenRateModel.decay_` is the model's own
answer: the mean open probability of a sample of training pushes sent as the
second push of the day over the same pushes sent as the first.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from predictors.lgbm.base import LightGBMConfig
from predictors.lgbm.conversion import LightGBMModel


class OpenRateConfig(LightGBMConfig):
    """Hyper-parameters of :class:`OpenRateModel`.

    Trees of 3 leaves: an open's log-odds is close to a sum of what the message, the
    hour's activity and the user's rate each say, which shallow trees fit with less noise
    than deep ones (``benchmarks/README.md``, push: 31 leaves 85.3 / 84.7 %, 15 leaves
    87.2 / 86.4 %, 3 leaves 88.1 / 87.8 % of each user's best open on tuning seeds 100/101).
    Linear leaves (``linear_tree``): the log-odds rise with the log of the user's share of
    activity at the hour, which constant leaves can only approximate in steps (88.1 / 87.9
    -> 88.5 / 88.5 %; the schedule on the report seeds 85.3 -> 86.0 % of the oracle).
    """

    n_estimators: int = Field(200, ge=1)
    num_leaves: int = Field(3, ge=2)
    linear_tree: bool = True
    fatigue_column: str = Field("prior_pushes_today", min_length=1)
    fatigue_sample: int = Field(20_000, ge=1)
    min_decay: float = Field(0.05, gt=0, le=1)


class OpenRateModel(LightGBMModel):
    """Open probability of a push; ``decay_`` in ``[min_decay, 1]`` is the implied fatigue.

    ``fatigue_column`` is the numeric column counting the user's earlier pushes
    that day; ``fatigue_sample`` training rows (seeded) measure the decay.
    """

    name = "open_rate"
    Config = OpenRateConfig
    extra_state = ("decay_",)
    tiny_params: ClassVar[dict[str, Any]] = {
        **LightGBMModel.tiny_params,
        "fatigue_column": "src_visits",
    }

    def __init__(self, feature_spec, **params: Any) -> None:
        super().__init__(feature_spec, **params)
        self.decay_: float | None = None

    def fit(self, X: pd.DataFrame, y: Any) -> OpenRateModel:
        """Fit the open model on raw frame ``X`` and 0/1 opens ``y``, then measure ``decay_``."""
        cfg = self._validated_config()
        if cfg.fatigue_column not in X.columns:
            raise ValueError(
                f"fatigue_column {cfg.fatigue_column!r} is not a column of X; "
                "name the column counting the user's earlier pushes of the day"
            )
        super().fit(X, y)
        sample = X.sample(min(len(X), cfg.fatigue_sample), random_state=cfg.seed)
        p0 = self.predict_proba(sample.assign(**{cfg.fatigue_column: 0.0}))[:, 1]
        p1 = self.predict_proba(sample.assign(**{cfg.fatigue_column: 1.0}))[:, 1]
        self.decay_ = float(np.clip(p1.mean() / max(p0.mean(), 1e-12), cfg.min_decay, 1.0))
        return self
