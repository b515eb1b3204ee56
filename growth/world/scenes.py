"""Labelled samples in every domain: the shop's scenes and the payments app's offers.

Target scenes (:class:`SceneResponse`): a scene's conversion logit is the shared
logit of :class:`~growth.world.conversion.ConversionModel` plus the scene's
``logit_offset`` plus ``effect_scale * taste_u' M_s latent_i / d``, with ``M_s`` a
hidden standard-normal matrix of the scene.  The shared part is what a model can
transfer between scenes; the specific part is what a per-scene model must learn.

Source domain (:func:`sample_source_exposures`): offers shown in the payments app
to users with source features.  The offers are items of their own (``domain``
``"source"`` in the items table, ids after the shop's), with latent vectors in the
same taste space, so conversion is driven by the same hidden taste through a
different response: ``source_base_logit + source_taste_weight * taste . latent /
sqrt(d) + 0.4 activity + 0.3 wealth + z(log popularity) / 4``.  Their treatment is
``none`` (no coupon experiment runs there).

Logged sales (:func:`logged_sales`): the orders of pre-campaign impressions, the
shop's sales records that ``sales_bucket`` is computed from instead of the hidden
popularity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.world._sampling import sigmoid, str_column
from growth.world.config import WorldConfig
from growth.world.items import ItemState, TasteSampler
from growth.world.users import UserState, seconds_into_day

_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SceneResponse:
    """Hidden per-scene parts of the target conversion logit (index = scene code)."""

    names: tuple[str, ...]
    offset: np.ndarray  # (n_scenes,) logit offsets
    scale: np.ndarray  # (n_scenes,) scales of the specific part
    matrix: np.ndarray  # (n_scenes, d, d) hidden taste matrices
    decision: int  # code of the scene the coupon decision is for

    def code(self, name: str) -> int:
        """The code of scene ``name``; a ValueError names the known scenes."""
        if name not in self.names:
            raise ValueError(f"unknown scene {name!r}; the world's scenes are {list(self.names)}")
        return self.names.index(name)

    def specific(self, scene: np.ndarray, taste: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """``offset_s + scale_s * taste' M_s latent / d`` for rows of (scene, taste, latent)."""
        d = taste.shape[-1]
        out = self.offset[scene].astype(np.float64)
        for s in np.unique(scene):
            rows = scene == s
            mixed = taste[rows] @ self.matrix[s]
            out[rows] += self.scale[s] * np.einsum("nd,nd->n", mixed, latent[rows]) / d
        return out


def sample_scene_response(cfg: WorldConfig, rng: np.random.Generator) -> SceneResponse:
    """Draw each scene's hidden taste matrix; offsets and scales come from ``cfg.scenes``."""
    names = tuple(cfg.scenes)
    d = cfg.taste_dim
    return SceneResponse(
        names=names,
        offset=np.array([cfg.scenes[s].logit_offset for s in names]),
        scale=np.array([cfg.scenes[s].effect_scale for s in names]),
        matrix=rng.standard_normal((len(names), d, d)),
        decision=names.index(cfg.coupon_scene),
    )


def sample_scenes(cfg: WorldConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """A scene code per target impression, drawn with the scenes' shares."""
    shares = np.array([s.share for s in cfg.scenes.values()])
    return rng.choice(len(shares), size=n, p=shares / shares.sum())


def sample_source_items(cfg: WorldConfig, rng: np.random.Generator) -> ItemState:
    """The payments app's offers: own category centroids in the shared taste space."""
    n, d, n_cat = cfg.n_source_items, cfg.taste_dim, cfg.n_source_categories
    centroids = rng.standard_normal((n_cat, d))
    category = np.concatenate([np.arange(min(n_cat, n)), rng.integers(0, n_cat, max(n - n_cat, 0))])
    rng.shuffle(category)
    latent = (centroids[category] + 0.6 * rng.standard_normal((n, d))).astype(np.float32)
    return ItemState(
        centroids=centroids,
        latent=latent,
        category=category.astype(np.int64),
        price=np.maximum(np.round(np.exp(rng.normal(np.log(20.0), 0.7, size=n)), 2), 1.0),
        merchant=np.full(n, -1, dtype=np.int64),
        popularity=np.exp(rng.normal(0.0, 1.0, size=n)),
        brand_tier=np.zeros(n, dtype=np.int64),
    )


def source_prob(
    cfg: WorldConfig, users: UserState, offers: ItemState, user: np.ndarray, item: np.ndarray
) -> np.ndarray:
    """True P(convert) of ``user`` on offer ``item`` (offer positions) in the payments app."""
    match = np.einsum("nd,nd->n", users.taste[user], offers.latent[item]) / np.sqrt(cfg.taste_dim)
    logit = (
        cfg.source_base_logit
        + cfg.source_taste_weight * match
        + 0.4 * users.activity[user]
        + 0.3 * users.wealth[user]
        + 0.25 * offers.log_popularity_z[item]
    )
    return sigmoid(logit)


def sample_source_exposures(
    cfg: WorldConfig,
    users: UserState,
    offers: ItemState,
    item_offset: int,
    start: np.datetime64,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Labelled payments-app impressions (domain ``source``) of the users with source features.

    Counts per such user are Poisson(``source_exposures_per_user``), on days uniform over
    the exposure window from ``start`` and in hours drawn from the user's active hours; offers are drawn by taste; item ids are the offer
    positions plus ``item_offset`` (the source items follow the shop's in the items table).
    """
    who = np.flatnonzero(users.has_source)
    user = np.repeat(who, rng.poisson(cfg.source_exposures_per_user, size=who.shape[0]))
    item = TasteSampler(offers, users.taste).draw(rng, user)
    label = (rng.random(user.shape[0]) < source_prob(cfg, users, offers, user, item)).astype(
        np.int64
    )
    day = rng.integers(0, cfg.exposure_days, size=user.shape[0])
    offset = day * _SECONDS_PER_DAY + seconds_into_day(users, user, rng)
    n = user.shape[0]
    return pd.DataFrame(
        {
            "user_id": user.astype(np.int64),
            "item_id": (item + item_offset).astype(np.int64),
            "domain": str_column(np.zeros(n, dtype=np.int32), ["source"]),
            "scene": str_column(np.zeros(n, dtype=np.int32), [cfg.source_scene]),
            "timestamp": (start + offset.astype("timedelta64[s]")).astype("datetime64[ns]"),
            "treatment": str_column(np.zeros(n, dtype=np.int32), ["none"]),
            "label": label,
            "order_value": np.full(n, np.nan),
        }
    )


def logged_sales(
    n_users: int,
    n_items: int,
    sampler: TasteSampler,
    prob: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_impressions: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Orders per item from ``n_impressions`` pre-campaign impressions of random users.

    ``prob(user, item)`` is the true conversion probability; each impression converts
    once by a Bernoulli draw, so the counts carry sampling noise like any sales log.
    """
    user = rng.integers(0, n_users, size=n_impressions)
    item = sampler.draw(rng, user)
    sold = rng.random(n_impressions) < prob(user, item)
    return np.bincount(item[sold], minlength=n_items)


def sales_bucket(orders: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket 0..n_buckets-1 of each item's logged orders by their quantiles (ties share one)."""
    edges = np.quantile(orders, np.linspace(0, 1, n_buckets + 1)[1:-1])
    return np.searchsorted(np.unique(edges), orders, side="right").astype(np.int64)
