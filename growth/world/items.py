"""Target-domain shop items and the taste-biased item sampler.

Each category c has a hidden centroid in taste space; an item's hidden latent
vector is its category centroid plus noise.  Prices are log-normal around a
per-category level, raised by brand tier.  Merchants own items with Zipf-like
shares (merchant 0 is the largest), popularity is log-normal and hidden: the
``sales_bucket`` column is a bucket of the logged orders
(:func:`growth.world.scenes.logged_sales`), a noisy view of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.world._sampling import (
    row_offset_cdf,
    sample_rows,
    sample_within_groups,
    softmax_rows,
)
from growth.world.config import WorldConfig

N_PRICE_LEVELS = 5
N_SALES_BUCKETS = 5
N_BRAND_TIERS = 3


@dataclass(frozen=True)
class ItemState:
    """Hidden and observed item attributes, indexed by item position (= item_id)."""

    centroids: np.ndarray  # (n_categories, taste_dim) category centres in taste space
    latent: np.ndarray  # (n_items, taste_dim) float32 hidden item vectors
    category: np.ndarray  # (n_items,) int
    price: np.ndarray  # (n_items,) float, currency units
    merchant: np.ndarray  # (n_items,) int
    popularity: np.ndarray  # (n_items,) float > 0, relative sales rate
    brand_tier: np.ndarray  # (n_items,) int in [0, N_BRAND_TIERS)

    @property
    def n_items(self) -> int:
        return int(self.category.shape[0])

    @property
    def log_popularity_z(self) -> np.ndarray:
        """Standardised log popularity: the item-quality term of the conversion logit."""
        lp = np.log(self.popularity)
        return (lp - lp.mean()) / (lp.std() + 1e-12)


def _quantile_bucket(x: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket 0..n_buckets-1 of ``x`` by its empirical quantiles."""
    edges = np.quantile(x, np.linspace(0, 1, n_buckets + 1)[1:-1])
    return np.searchsorted(edges, x, side="right").astype(np.int64)


def sample_items(cfg: WorldConfig, rng: np.random.Generator) -> ItemState:
    """Draw the item catalogue's hidden state."""
    n, d, n_cat = cfg.n_items, cfg.taste_dim, cfg.n_categories
    centroids = rng.standard_normal((n_cat, d))
    # Every category gets at least one item; the rest follow uneven category sizes.
    cat_weights = rng.dirichlet(np.full(n_cat, 2.0))
    category = np.concatenate([np.arange(n_cat), rng.choice(n_cat, size=n - n_cat, p=cat_weights)])
    rng.shuffle(category)
    latent = (centroids[category] + 0.6 * rng.standard_normal((n, d))).astype(np.float32)

    cat_log_price = rng.normal(np.log(cfg.ref_price), 0.6, size=n_cat)
    brand_tier = rng.choice(N_BRAND_TIERS, size=n, p=[0.5, 0.35, 0.15])
    log_price = cat_log_price[category] + 0.35 * brand_tier + rng.normal(0.0, 0.4, size=n)
    price = np.maximum(np.round(np.exp(log_price), 2), 1.0)

    merchant_w = 1.0 / np.arange(1, cfg.n_merchants + 1) ** 0.8
    merchant = np.concatenate(
        [
            np.arange(cfg.n_merchants),
            rng.choice(cfg.n_merchants, size=n - cfg.n_merchants, p=merchant_w / merchant_w.sum()),
        ]
    )
    rng.shuffle(merchant)
    popularity = np.exp(rng.normal(0.0, 1.0, size=n) + 0.2 * brand_tier)
    return ItemState(
        centroids=centroids,
        latent=latent,
        category=category.astype(np.int64),
        price=price,
        merchant=merchant.astype(np.int64),
        popularity=popularity,
        brand_tier=brand_tier.astype(np.int64),
    )


def items_table(
    items: ItemState,
    sales_bucket: np.ndarray,
    *,
    domain: str = "target",
    first_id: int = 0,
    first_category: int = 0,
) -> pd.DataFrame:
    """The ``items`` table in the schema's format for one domain's items.

    ``sales_bucket`` comes from the logs, never from the hidden popularity; ids start
    at ``first_id`` and categories at ``first_category`` (the source domain's items
    follow the shop's, with category tokens of their own).
    """
    n = items.n_items
    merchant = pd.array(np.where(items.merchant < 0, -1, items.merchant), dtype="Int64")
    merchant[items.merchant < 0] = pd.NA
    return pd.DataFrame(
        {
            "item_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "domain": np.full(n, domain, dtype=object),
            "category": items.category + first_category,
            "price": items.price,
            "price_level": _quantile_bucket(items.price, N_PRICE_LEVELS),
            "merchant_id": merchant,
            "brand_tier": items.brand_tier,
            "sales_bucket": sales_bucket,
        }
    )


class TasteSampler:
    """Draw items for users, biased towards their taste.

    A draw first picks a category with probability softmax(taste . centroid /
    sqrt(d) / temperature) and then an item within it proportionally to its
    popularity.  Category probabilities are computed once per user: (n_users,
    n_categories), never (n_users, n_items).
    """

    def __init__(self, items: ItemState, taste: np.ndarray, temperature: float = 0.7) -> None:
        d = items.centroids.shape[1]
        logits = (taste @ items.centroids.T) / (np.sqrt(d) * temperature)
        probs = softmax_rows(logits.astype(np.float64))  # (n_users, n_categories)
        self.n_categories = probs.shape[1]
        self._category_cdf = row_offset_cdf(probs)  # flat (n_users * n_categories,)
        del probs
        order = np.argsort(items.category, kind="stable")
        self._item_order = order
        cat_sorted = items.category[order]
        n_cat = items.centroids.shape[0]
        self._group_start = np.searchsorted(cat_sorted, np.arange(n_cat), side="left")
        pop = items.popularity[order]
        cum = np.cumsum(pop)
        group_total = np.add.reduceat(pop, self._group_start)
        group_before = cum[self._group_start] - pop[self._group_start]
        self._member_cdf = (cum - group_before[cat_sorted]) / group_total[cat_sorted] + cat_sorted

    def categories(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """One taste-biased category per entry of ``users``."""
        return sample_rows(rng, self._category_cdf, self.n_categories, users)

    def items_in(self, rng: np.random.Generator, categories: np.ndarray) -> np.ndarray:
        """One popularity-weighted item of each requested category."""
        pos = sample_within_groups(rng, categories, self._group_start, self._member_cdf)
        return self._item_order[pos]

    def draw(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """One taste-biased item per entry of ``users``."""
        return self.items_in(rng, self.categories(rng, users))
