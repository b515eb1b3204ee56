"""A simulated world's randomised exposure log in the experiment format, with its truth.

The world's ``exposures`` are a randomised trial: each impression's coupon option
is drawn uniformly from all options (``none`` included).  :func:`world_experiment`
keeps each user's first impression in the scene the coupon decision is for (the
shop's ``coupon_scene``; one row per user), the user's features (the
multi-valued tags and sequences left out) and the coupon catalogue as the arms
table: ``none`` is the control, every option costs its face value per conversion
and has the design propensity ``1 / options``.  Because the world knows every
impression's true conversion probability under every option, ``truth`` gives what
any plan is truly worth on these rows, so the off-policy estimates can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.data.schema import MULTI_SUFFIXES, NO_COUPON
from growth.world import World


@dataclass(frozen=True)
class WorldExperiment:
    """``log`` and ``arms`` in the experiment format; ``truth[i, k]`` is row ``i``'s true
    P(conversion) under arm ``k`` (arms-table order, the control ``none`` first)."""

    log: pd.DataFrame
    arms: pd.DataFrame
    truth: np.ndarray


def world_experiment(world: World) -> WorldExperiment:
    """The world's randomised log, one row per exposed user (their first impression)."""
    exposures = world.dataset.exposures
    exposures = exposures[
        (exposures["domain"] == "target") & (exposures["scene"] == world.config.coupon_scene)
    ]
    first = exposures.drop_duplicates("user_id", keep="first").reset_index(drop=True)
    users = world.dataset.users.set_index("user_id").loc[first["user_id"]].reset_index()
    features = [c for c in users.columns if c != "user_id" and not c.endswith(MULTI_SUFFIXES)]
    coupons = world.dataset.coupons
    options = coupons["option_id"].astype(str).tolist()
    log = pd.DataFrame(
        {
            "user_id": first["user_id"].astype(str).to_numpy(),
            "arm": first["treatment"].astype(str).to_numpy(),
            "conversion": first["label"].astype(np.int64).to_numpy(),
            "revenue": first["order_value"].fillna(0.0).to_numpy(),
        }
    )
    log = pd.concat(
        [log, users[features].assign(has_source=users["has_source"].astype(float))], axis=1
    )
    arms = pd.DataFrame(
        {
            "arm": options,
            "control": [o == NO_COUPON for o in options],
            "cost_per_conversion": coupons["face_value"].astype(float).to_numpy(),
            "propensity": np.full(len(options), 1.0 / len(options)),
        }
    )
    user = first["user_id"].to_numpy(dtype=np.int64)[:, None]
    item = first["item_id"].to_numpy(dtype=np.int64)[:, None]
    truth = world.conversion_prob(user, item, np.arange(len(options))[None, :])
    return WorldExperiment(log=log, arms=arms, truth=np.asarray(truth, dtype=np.float64))
