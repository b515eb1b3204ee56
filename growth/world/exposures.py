"""The campaign feed (``candidates``) and the randomised exposure log (``exposures``).

Candidates: every user gets ``n_candidates`` distinct items drawn by the
taste-biased sampler - what the shop will show them during the campaign.

Exposures: past impressions, also taste-biased, each shown in one of the shop's
scenes (drawn with the scenes' shares), with a treatment drawn uniformly from all
options (``none`` included) - a randomised trial - and a label
~ Bernoulli(p(user, item, treatment, scene)).  Counts per user are Poisson with a rate
set by the lifecycle segment and activity (active users see most); lost users'
impressions lie in the older half of the window, new users' after their install,
potential users' (shown through the sister app) anywhere in it.  Within its day an
impression falls in an hour drawn from the user's active hours
(:func:`~growth.world.users.seconds_into_day`): the log's timestamps are app activity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.data.schema import LIFECYCLES
from growth.world._sampling import sample_distinct, str_column
from growth.world.config import WorldConfig
from growth.world.conversion import ConversionModel
from growth.world.items import TasteSampler
from growth.world.scenes import sample_scenes
from growth.world.users import ACTIVE, LOST, NEW, UserState, seconds_into_day

_SECONDS_PER_DAY = 86_400


def sample_candidates(
    cfg: WorldConfig, sampler: TasteSampler, rng: np.random.Generator
) -> np.ndarray:
    """(n_users, n_candidates) distinct item indices per user, in feed rank order."""
    return sample_distinct(rng, cfg.n_users, cfg.n_candidates, lambda rows: sampler.draw(rng, rows))


def candidates_table(candidates: np.ndarray) -> pd.DataFrame:
    """The ``candidates`` table: one row per (user, rank)."""
    n, f = candidates.shape
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(n, dtype=np.int64), f),
            "item_id": candidates.ravel().astype(np.int64),
            "rank": np.tile(np.arange(f, dtype=np.int64), n),
        }
    )


def exposure_counts(cfg: WorldConfig, users: UserState, rng: np.random.Generator) -> np.ndarray:
    """Poisson impression counts per user with mean ``exposures_per_user`` overall."""
    seg_rate = np.array([cfg.exposure_segment_rate[s] for s in LIFECYCLES])
    lam = seg_rate[users.lifecycle] * np.exp(0.3 * users.activity)
    lam *= cfg.exposures_per_user / max(float(lam.mean()), 1e-12)
    return rng.poisson(lam)


def _days_ago(
    cfg: WorldConfig, users: UserState, user: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """How many (fractional) days before the end of the window each impression happened."""
    window = float(cfg.exposure_days)
    lc = users.lifecycle[user]
    u = rng.random(user.shape[0])
    lo = np.zeros(user.shape[0])
    hi = np.full(user.shape[0], window)
    lost = lc == LOST
    lo[lost] = window / 2.0
    new = lc == NEW
    hi[new] = np.minimum(users.days_since_visit[user[new]] + 1.0, window)
    act = lc == ACTIVE
    hi[act] = window
    return lo + u * (hi - lo)


def sample_exposures(
    cfg: WorldConfig,
    users: UserState,
    sampler: TasteSampler,
    model: ConversionModel,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The randomised ``exposures`` log, sorted by user then time."""
    counts = exposure_counts(cfg, users, rng)
    user = np.repeat(np.arange(users.n_users, dtype=np.int64), counts)
    item = sampler.draw(rng, user)
    treatment = rng.integers(0, model.coupons.n_options, size=user.shape[0])
    scene = sample_scenes(cfg, user.shape[0], rng)
    p = model.prob(user, item, treatment, scene)
    label = (rng.random(user.shape[0]) < p).astype(np.int64)
    basket = model.basket(user, item) * np.exp(rng.normal(0.0, 0.2, size=user.shape[0]))
    order_value = np.where(label == 1, np.round(basket, 2), np.nan)

    # Seconds since the window start (a day drawn by segment, the hour by the user's active
    # hours); sort by (user, time) through one int64 key.
    span = cfg.exposure_days * _SECONDS_PER_DAY
    day = np.floor(_days_ago(cfg, users, user, rng)).astype(np.int64)  # 0 = the last day
    offset = np.clip(span - (day + 1) * _SECONDS_PER_DAY, 0, None)
    offset = np.minimum(offset + seconds_into_day(users, user, rng), span - 1)
    order = np.argsort(user * span + offset, kind="stable")
    start = end_datetime64(cfg) - np.timedelta64(span, "s")
    timestamp = start + offset[order].astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "user_id": user[order],
            "item_id": item[order].astype(np.int64),
            "domain": str_column(np.zeros(user.shape[0], dtype=np.int32), ["target"]),
            "scene": str_column(scene[order], model.scenes.names),
            "timestamp": timestamp.astype("datetime64[ns]"),
            "treatment": str_column(treatment[order], model.coupons.option_ids),
            "label": label[order],
            "order_value": order_value[order],
        }
    )


def end_datetime64(cfg: WorldConfig) -> np.datetime64:
    """The world's "now" as a numpy datetime64 (seconds)."""
    return np.datetime64(cfg.end_timestamp(), "s")
