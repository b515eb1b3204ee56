"""The world, the store and the predictors every page of the app shares.

Environment:

- ``GROWTH_DB_URL``: the SQL store (default: the embedded SQLite database);
- ``GROWTH_APP_SCENARIO``: the scenario selected first (default ``small``);
- ``GROWTH_APP_USERS``: overrides the scenario's number of users (tests use it);
- ``GROWTH_APP_MAX_TRAIN_ROWS``: exposure rows the predictors train on at most
  (a seeded sample; default 500,000; 0 = the whole log).

The world, the predictors and the coupon scores are computed once per
(scenario, users) and cached by the app; widget changes never re-train.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import TrainedModels, sample_rows, train_models
from growth.paths import default_db_url, scenario_names
from growth.store import ENV_VAR, Store
from growth.world import World, WorldConfig, generate_world, load_scenario

SCENARIO_ENV = "GROWTH_APP_SCENARIO"
USERS_ENV = "GROWTH_APP_USERS"
DEFAULT_SCENARIO = "small"
MAX_TRAIN_ROWS_ENV = "GROWTH_APP_MAX_TRAIN_ROWS"
DEFAULT_MAX_TRAIN_ROWS = 500_000
"""Exposure rows the app's predictors train on at most (a seeded sample beyond that)."""


# -- data and models ---------------------------------------------------------------


def scenarios() -> list[str]:
    """Scenario names (TOML stems in ``data/scenarios``), the default first."""
    names = scenario_names()
    if not names:
        raise FileNotFoundError("no scenario files (*.toml) in the data root's scenarios folder")
    first = default_scenario()
    return [first, *(n for n in names if n != first)] if first in names else names


def default_scenario() -> str:
    """``$GROWTH_APP_SCENARIO`` or ``small``."""
    return os.environ.get(SCENARIO_ENV, DEFAULT_SCENARIO)


def app_users() -> int | None:
    """``$GROWTH_APP_USERS`` as a positive integer, or ``None`` when unset."""
    raw = os.environ.get(USERS_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{USERS_ENV} must be an integer, got {raw!r}") from None
    if value < 10:
        raise ValueError(f"{USERS_ENV} must be at least 10, got {value}")
    return value


def world_config(scenario: str, n_users: int | None = None, seed: int | None = None) -> WorldConfig:
    """The scenario's :class:`WorldConfig`, with ``n_users``/``seed`` overrides when given."""
    try:
        return load_scenario(scenario, n_users=n_users, seed=seed)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None


def load_world(scenario: str, n_users: int | None = None, seed: int | None = None) -> World:
    """Generate the simulated world of a scenario (deterministic given the seed)."""
    return generate_world(world_config(scenario, n_users, seed))


def max_train_rows() -> int | None:
    """``$GROWTH_APP_MAX_TRAIN_ROWS`` (0 = no cap) or :data:`DEFAULT_MAX_TRAIN_ROWS`."""
    raw = os.environ.get(MAX_TRAIN_ROWS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_TRAIN_ROWS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_TRAIN_ROWS_ENV} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{MAX_TRAIN_ROWS_ENV} must be >= 0 (0 = no cap), got {value}")
    return value or None


def conversion_features(world: World) -> ConversionFeatures:
    """The world's user, item and coupon encodings (no model, no exposure rows yet)."""
    return ConversionFeatures(world.dataset)


def sample_exposures(
    features: ConversionFeatures, max_rows: int | None, *, seed: int
) -> ConversionFeatures:
    """A view of ``features`` whose exposure log is a seeded sample of at most ``max_rows`` rows.

    The encodings (users, items, coupons) are shared, only the log the models
    learn from shrinks, so a 1M-user world trains in seconds instead of minutes.
    Returns ``features`` itself when the log already fits (or ``max_rows`` is None).
    """
    log = features.dataset.exposures
    rows = sample_rows(np.arange(len(log)), max_rows, seed=seed)
    if len(rows) == len(log):
        return features
    dataset = copy.copy(features.dataset)
    dataset.exposures = log.iloc[rows].reset_index(drop=True)
    view = copy.copy(features)
    view.dataset = dataset
    return view


@dataclass
class Predictors:
    """The world's features and the predictors trained on (a sample of) its exposure log.

    ``features`` encode the whole world (used to score every user);
    ``train_features`` is the same encoding over the exposure rows the models
    learnt from (the holdout metrics and calibration use its chronological holdout).
    """

    features: ConversionFeatures
    train_features: ConversionFeatures
    models: TrainedModels
    seed: int

    @property
    def n_rows(self) -> int:
        """Exposure rows the models saw (training plus holdout)."""
        return self.models.n_train + self.models.n_holdout


def train_predictors(
    world: World,
    *,
    features: ConversionFeatures | None = None,
    max_rows: int | None = DEFAULT_MAX_TRAIN_ROWS,
) -> Predictors:
    """Train the conversion and basket models on a seeded sample of the world's exposure log.

    ``max_rows`` caps the exposure rows (None: the whole log); the sample is
    drawn with the world's seed, so the models are deterministic.
    """
    features = features if features is not None else conversion_features(world)
    seed = world.config.seed
    train_features = sample_exposures(features, max_rows, seed=seed)
    models = train_models(train_features, seed=seed)
    return Predictors(features, train_features, models, seed)


def score_coupons(predictors: Predictors, *, chunk_users: int = 20_000) -> CouponDecision:
    """Predicted conversion, redemption and GMV of every user under every coupon option.

    The expensive step at scale (users x candidates x options model calls), so
    the app runs it only when an operator first solves coupons, then caches it.
    """
    return predicted_coupon_decision(
        predictors.features,
        predictors.models.conversion,
        predictors.models.basket,
        chunk_users=chunk_users,
    )


def lifecycle_segments(features: ConversionFeatures) -> list[str]:
    """The lifecycle segments present in the world, sorted."""
    return sorted(pd.unique(features.lifecycle).tolist())


def store_url() -> str:
    """The store URL the app uses: ``$GROWTH_DB_URL`` or the embedded SQLite default."""
    return os.environ.get(ENV_VAR) or default_db_url()


def store(url: str | None = None) -> Store:
    """The platform's store: ``url``, ``$GROWTH_DB_URL`` or the embedded SQLite database."""
    return Store(url)


# -- install control ---------------------------------------------------------------


# -- coupons -------------------------------------------------------------------------


# -- push ----------------------------------------------------------------------------


# -- models --------------------------------------------------------------------------


# -- runs ----------------------------------------------------------------------------


# -- launching -----------------------------------------------------------------------
