"""Push messages: catalogue, per-user candidates, open probability and the push log.

Each message promotes one item; its industry is that item's category's industry
(categories are grouped round-robin into ``n_industries`` industries).  A user's
relevance for a message is ``sigmoid(taste_u . latent_item / sqrt(d))``.

    p_open(u, m, hour, prior) = sigmoid(-3.0 + 2.5 * relevance(u, m)
                                        + 0.8 * log(24 * profile_u[hour])
                                        + 0.3 * activity_u)
                                * fatigue_decay ** prior

``prior`` is the number of pushes the user already received that day.  The log
holds randomly timed pushes (uniform day in the last ``push_days``, uniform hour)
of one of the user's candidate messages, with ``opened`` ~ Bernoulli(p_open).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.world._sampling import sample_distinct, sigmoid, str_column
from growth.world.config import WorldConfig
from growth.world.items import ItemState
from growth.world.users import UserState

INDUSTRY_NAMES: tuple[str, ...] = (
    "fashion",
    "food",
    "electronics",
    "beauty",
    "home",
    "travel",
    "sports",
    "books",
)
OPEN_INTERCEPT = -3.0
OPEN_RELEVANCE = 2.5
OPEN_HOUR = 0.8
OPEN_ACTIVITY = 0.3


def industry_names(n: int) -> tuple[str, ...]:
    """``n`` industry labels (named ones first, then ``industry_<i>``)."""
    return tuple(
        INDUSTRY_NAMES[i] if i < len(INDUSTRY_NAMES) else f"industry_{i}" for i in range(n)
    )


@dataclass(frozen=True)
class PushState:
    """The message catalogue and each user's candidate messages."""

    item: np.ndarray  # (M,) item promoted by each message
    industry: np.ndarray  # (M,) industry index
    industry_names: tuple[str, ...]
    candidates: np.ndarray  # (n_users, push_candidates_per_user) message indices


class PushModel:
    """Ground-truth relevance and open probability."""

    def __init__(
        self, cfg: WorldConfig, users: UserState, items: ItemState, state: PushState
    ) -> None:
        self.cfg = cfg
        self.users = users
        self.items = items
        self.state = state
        self._log_profile = np.log(24.0 * users.hour_profile)  # (n, 24) float32

    def relevance(self, user: np.ndarray, message: np.ndarray) -> np.ndarray:
        """sigmoid(taste . item latent / sqrt(d)) in (0, 1), broadcast."""
        user, message = np.broadcast_arrays(np.asarray(user), np.asarray(message))
        u = self.users.taste[user.ravel()]
        v = self.items.latent[self.state.item[message.ravel()]]
        dot = np.einsum("nd,nd->n", u, v) / np.sqrt(self.cfg.taste_dim)
        return sigmoid(dot.astype(np.float64)).reshape(user.shape)

    def open_prob(
        self,
        user: np.ndarray,
        message: np.ndarray,
        hour: np.ndarray,
        prior_pushes_today: np.ndarray,
    ) -> np.ndarray:
        """p_open for broadcastable integer arrays (see module docstring)."""
        user, message, hour, prior = np.broadcast_arrays(
            np.asarray(user, dtype=np.int64),
            np.asarray(message, dtype=np.int64),
            np.asarray(hour, dtype=np.int64),
            np.asarray(prior_pushes_today, dtype=np.int64),
        )
        logit = (
            OPEN_INTERCEPT
            + OPEN_RELEVANCE * self.relevance(user, message)
            + OPEN_HOUR * self._log_profile[user, hour]
            + OPEN_ACTIVITY * self.users.activity[user]
        )
        return sigmoid(logit) * self.cfg.fatigue_decay**prior


def sample_push_state(cfg: WorldConfig, items: ItemState, rng: np.random.Generator) -> PushState:
    """Message catalogue (one promoted item each) and per-user candidate messages."""
    item = rng.integers(0, items.n_items, size=cfg.n_push_messages)
    industry_of_category = np.arange(cfg.n_categories) % cfg.n_industries
    n_msg = cfg.n_push_messages
    candidates = sample_distinct(
        rng,
        cfg.n_users,
        cfg.push_candidates_per_user,
        lambda rows: rng.integers(0, n_msg, size=rows.shape[0]),
    )
    return PushState(
        item=item.astype(np.int64),
        industry=industry_of_category[items.category[item]],
        industry_names=industry_names(cfg.n_industries),
        candidates=candidates,
    )


def messages_table(state: PushState) -> pd.DataFrame:
    """The ``push_messages`` table."""
    names = np.array(state.industry_names, dtype=object)
    return pd.DataFrame(
        {
            "message_id": np.arange(state.item.shape[0], dtype=np.int64),
            "industry": names[state.industry],
            "item_id": state.item,
        }
    )


def candidates_frame(model: PushModel) -> pd.DataFrame:
    """user_id, message_id, industry, relevance for every user's candidate messages."""
    cand = model.state.candidates
    n, m = cand.shape
    user = np.repeat(np.arange(n, dtype=np.int64), m)
    message = cand.ravel()
    return pd.DataFrame(
        {
            "user_id": user,
            "message_id": message.astype(np.int64),
            "industry": str_column(model.state.industry[message], model.state.industry_names),
            "relevance": model.relevance(user, message),
        }
    )


def sample_push_log(cfg: WorldConfig, model: PushModel, rng: np.random.Generator) -> pd.DataFrame:
    """Randomly timed pushes with the sampled ``opened`` outcome, sorted by user and time."""
    n = model.users.n_users
    counts = rng.poisson(cfg.pushes_per_user, size=n)
    user = np.repeat(np.arange(n, dtype=np.int64), counts)
    k = model.state.candidates.shape[1]
    message = model.state.candidates[user, rng.integers(0, k, size=user.shape[0])]
    day = rng.integers(0, cfg.push_days, size=user.shape[0])  # days before the end date
    hour = rng.integers(0, 24, size=user.shape[0])
    second = rng.integers(0, 3600, size=user.shape[0])

    # Sort by (user, time) through one int64 key; prior_pushes_today is then each
    # push's position within its (user, day) run.
    day_span = cfg.push_days * 86_400
    sec_in_window = (cfg.push_days - 1 - day) * 86_400 + hour * 3600 + second
    order = np.argsort(user * day_span + sec_in_window, kind="stable")
    user, message, day, hour = (a[order] for a in (user, message, day, hour))
    sec_in_window = sec_in_window[order]
    new_group = np.ones(user.shape[0], dtype=bool)
    new_group[1:] = (user[1:] != user[:-1]) | (day[1:] != day[:-1])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(user.shape[0]), 0))
    prior = np.arange(user.shape[0]) - group_start

    opened = (rng.random(user.shape[0]) < model.open_prob(user, message, hour, prior)).astype(
        np.int64
    )
    window_start = np.datetime64(cfg.end_date, "s") - np.timedelta64(cfg.push_days - 1, "D")
    timestamp = window_start + sec_in_window.astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "user_id": user,
            "message_id": message.astype(np.int64),
            "timestamp": timestamp.astype("datetime64[ns]"),
            "hour": hour.astype(np.int64),
            "prior_pushes_today": prior.astype(np.int64),
            "opened": opened,
        }
    )
