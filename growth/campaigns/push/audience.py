"""The push audience: installed users with candidate messages, padded to a rectangle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from growth.data.schema import Lifecycle
from growth.modeling.features import ConversionFeatures

HOURS = 24
"""Hours of a day, the slots a push can be sent in."""


@dataclass
class PushAudience:
    """Users to push to and their candidate messages, padded to a rectangle."""

    user_pos: np.ndarray  # (n,) positions in the users table
    user_ids: np.ndarray  # (n,)
    message_ids: np.ndarray  # (n, m) message ids, -1 for padding
    relevance: np.ndarray  # (n, m)
    industry: np.ndarray  # (n, m) industry labels ('' for padding)
    mask: np.ndarray  # (n, m) True for a real candidate


def push_audience(features: ConversionFeatures, *, max_users: int | None, seed: int):
    """Installed users (not 'potential') with candidates; a seeded sample when over ``max_users``."""
    ds = features.dataset
    cand = ds.push_candidates.merge(
        ds.push_messages[["message_id", "industry"]], on="message_id", how="left"
    )
    installed = features.user_ids[features.lifecycle != Lifecycle.POTENTIAL.value]
    users = np.intersect1d(installed, cand["user_id"].unique())
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    cand = cand[cand["user_id"].isin(users)].sort_values(
        ["user_id", "relevance"], ascending=[True, False]
    )
    slot = cand.groupby("user_id").cumcount().to_numpy()
    row = np.searchsorted(users, cand["user_id"].to_numpy())
    m = int(slot.max()) + 1 if len(slot) else 1
    n = len(users)
    message_ids = np.full((n, m), -1, dtype=np.int64)
    relevance = np.zeros((n, m), dtype=np.float32)
    industry = np.full((n, m), "", dtype=object)
    message_ids[row, slot] = cand["message_id"].to_numpy()
    relevance[row, slot] = cand["relevance"].to_numpy()
    industry[row, slot] = cand["industry"].astype(str).to_numpy()
    return PushAudience(
        user_pos=features.user_positions(users),
        user_ids=users,
        message_ids=message_ids,
        relevance=relevance,
        industry=industry.astype(str),
        mask=message_ids >= 0,
    )
