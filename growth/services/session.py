"""The world, the store and the predictors every page of the app shares.

Environment:

- ``GROWTH_DB_URL``: the SQL store (default: the embedded SQLite database);
- ``GROWTH_APP_SCENARIO``: the scenario selected first (default ``small``);
- ``GROWTH_APP_USERS``: overrides the scenario's number of users (tests use it);

The predictors are those of the newest stored nightly run of the same world
(with its coupon scores) or, without one, trained here with the nightly job's
settings; the app caches them per (scenario, users), so widget changes never
re-train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.choice import plan_candidates, score_candidates
from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.scoring import predicted_coupon_decisions
from growth.campaigns.coupons.value import HoldoutLog, model_holdout_logs
from growth.jobs.artifacts import ValueFold, load_run_artifacts
from growth.jobs.config import KIND, NightlyConfig
from growth.jobs.pipeline import cross_domain_evidence, train_configured
from growth.modeling.features import ConversionFeatures, ExposureFrame
from growth.modeling.sampling import chronological_split
from growth.modeling.training import holdout_folds
from growth.paths import default_db_url, scenario_names
from growth.store import ENV_VAR, Store
from growth.world import World, WorldConfig, generate_world, load_scenario

SCENARIO_ENV = "GROWTH_APP_SCENARIO"
USERS_ENV = "GROWTH_APP_USERS"
DEFAULT_SCENARIO = "small"


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


def conversion_features(world: World) -> ConversionFeatures:
    """The world's user, item and coupon encodings (no model, no exposure rows yet)."""
    return ConversionFeatures(world.dataset)


@dataclass
class Predictors:
    """The conversion and basket models the app plans with, and where they come from.

    ``source`` says it in words: the nightly run whose stored models (and coupon
    scores) are reused, or training in the app with the nightly job's settings
    when no run of this world is stored.
    """

    features: ConversionFeatures
    predictor: str  # the conversion model's name (auto resolved)
    conversion: Any
    basket: Any
    metrics: pd.DataFrame  # newest-row metrics: model, domain, scene, segment, metric, value
    source: str
    seed: int
    run_id: int | None = None  # the nightly run the models come from
    decision: CouponDecision | None = None  # that run's coupon scores
    calibrator: Any = None  # conversion calibrator per option x segment the scores use
    reach_calibrator: Any = None  # threshold reach calibrator per option x segment
    calibration: pd.DataFrame | None = None  # the holdout's spend bias, which the buffer reads
    uplift: pd.DataFrame | None = None  # the platform's coupon effects' slopes per segment
    value_folds: list[ValueFold] = field(default_factory=list)
    """The cross-fit's folds of the holdout's users, each with the calibrators fitted
    without it and (once scored) its scores: a plan's value is estimated on rows its own
    calibration never saw (:func:`growth.services.coupons.plan_estimates`)."""

    @property
    def settings(self) -> NightlyConfig:
        """The nightly job's settings the models follow (predictor choice, holdout, threads)."""
        return NightlyConfig()

    def holdout(self, frame: ExposureFrame) -> np.ndarray:
        """Mask of ``frame``'s randomised holdout under the nightly settings: the rows the
        calibrators learnt from and the off-policy estimates read."""
        settings = self.settings
        return chronological_split(frame, settings.holdout_fraction, settings.holdout_min_rows)


def load_predictors(
    world: World, db: Store, *, features: ConversionFeatures | None = None
) -> Predictors:
    """The models of the newest succeeded nightly run of this world, else trained here.

    A run matches when its summary's ``world_fingerprint`` equals the world's
    (the same scenario, size and seed) and its files are still on disk.
    Training uses the nightly job's own settings (:class:`NightlyConfig`
    defaults: the ``auto`` predictor choice, ``max_train_rows``, holdout,
    threads), so the app and the job plan with the same kind of model.
    """
    features = features if features is not None else conversion_features(world)
    run = stored_run(db, world.config.fingerprint())
    if run is None:
        return train_predictors(world, features=features, db=db)
    saved = load_run_artifacts(Path(run["summary"]["artifacts"]))
    return Predictors(
        features=features,
        predictor=saved.predictor,
        conversion=saved.conversion,
        basket=saved.basket,
        metrics=db.read("model_metrics", run_id=int(run["id"]))[
            ["model", "domain", "scene", "segment", "metric", "value"]
        ],
        source=f"nightly run {run['id']} ({run['campaign_date']}, {run['campaign']})",
        seed=world.config.seed,
        run_id=int(run["id"]),
        decision=saved.decision,
        calibrator=saved.calibrator,
        reach_calibrator=saved.reach_calibrator,
        calibration=saved.calibration,
        value_folds=saved.value_folds,
        uplift=_frame(run["summary"].get("uplift_scale")),
    )


def stored_run(db: Store, fingerprint: str, *, newest: int = 200) -> dict[str, Any] | None:
    """The newest succeeded nightly run (of the ``newest`` runs) of the world with this
    fingerprint whose model files exist, as :meth:`Store.get_run` gives it; else ``None``."""
    runs = db.runs(limit=newest)
    done = runs[(runs["kind"] == KIND) & (runs["status"] == "succeeded")]
    for run_id in done["run_id"]:
        run = db.get_run(int(run_id))
        summary = run["summary"] or {}
        folder = summary.get("artifacts")
        if summary.get("world_fingerprint") == fingerprint and folder and Path(folder).is_dir():
            return run
    return None


def train_predictors(
    world: World, *, features: ConversionFeatures | None = None, db: Store | None = None
) -> Predictors:
    """Train the conversion and basket models as the nightly job does (its default settings):
    ``auto``'s cross-domain model the one the store's benchmark evidence names (as the job's;
    without ``db`` or evidence, its default), and with several candidates the one whose plan
    at the nightly's default budgets has the higher estimated value
    (:mod:`growth.campaigns.coupons.choice`), with its scores."""
    features = features if features is not None else conversion_features(world)
    seed = world.config.seed
    config = NightlyConfig()
    evidence = None if db is None else cross_domain_evidence(db, config)
    _, models = train_configured(config, features, evidence, seed=seed)
    decision, fold_decisions = None, [None] * len(models.value_folds)
    if models.alternatives:  # auto: the model whose plan is worth more
        decisions = score_candidates(features, models, torch_threads=config.torch_threads)
        chosen = plan_candidates(models, decisions, config.coupons).chosen
        models, decision, fold_decisions = chosen.models, chosen.decision, chosen.fold_decisions
    return Predictors(
        features=features,
        predictor=models.predictor,
        conversion=models.conversion,
        basket=models.basket,
        metrics=models.metrics_by_sample(),
        source="trained in the app with the nightly settings (no stored nightly run of this world)",
        seed=seed,
        decision=decision,
        calibrator=models.calibrator,
        reach_calibrator=models.reach_calibrator,
        calibration=models.calibration,
        value_folds=[
            ValueFold(m.calibrator, m.reach_calibrator, d, m.calibration)
            for m, d in zip(models.value_folds, fold_decisions, strict=True)
        ],
        uplift=models.uplift,
    )


def _frame(records: list[dict] | None) -> pd.DataFrame | None:
    """A frame of a run summary's records (None without them: a run stored before them)."""
    return None if not records else pd.DataFrame.from_records(records)


def holdout_log(predictors: Predictors) -> HoldoutLog:
    """The randomised holdout of the exposure log (the nightly settings' fraction) with the
    predictors' per-arm predictions: what a plan's off-policy estimates read."""
    return holdout_logs(predictors)[0]


def holdout_logs(predictors: Predictors) -> list[HoldoutLog]:
    """:func:`holdout_log`, then each value fold's: that fold's rows predicted through the
    calibrators fitted without them; the models predict every holdout row once."""
    frame = predictors.features.exposure_frame()
    holdout = predictors.holdout(frame)
    folds = predictors.value_folds
    masks = holdout_folds(frame, holdout, len(folds), seed=predictors.seed)
    parts = [(holdout, predictors.calibrator, predictors.reach_calibrator)] + [
        (mask, f.calibrator, f.reach_calibrator) for mask, f in zip(masks, folds, strict=True)
    ]
    return model_holdout_logs(frame, predictors.conversion, predictors.basket, parts)


def score_coupons(predictors: Predictors, *, chunk_users: int = 20_000) -> CouponDecision:
    """Predicted conversion, redemption and GMV of every user under every coupon option.

    The nightly run's stored scores when the models come from one; else scored
    here (the expensive step at scale, so the app runs it only when an operator
    first solves coupons, then caches it), with every value fold's scores in the same
    pass, kept on ``predictors``.
    """
    missing = any(f.decision is None for f in predictors.value_folds)
    if predictors.decision is not None and not missing:
        return predictors.decision
    folds = predictors.value_folds
    decisions = predicted_coupon_decisions(
        predictors.features,
        predictors.conversion,
        predictors.basket,
        [(predictors.calibrator, predictors.reach_calibrator)]
        + [(f.calibrator, f.reach_calibrator) for f in folds],
        chunk_users=chunk_users,
        torch_threads=predictors.settings.torch_threads,
    )
    if predictors.decision is None:
        predictors.decision = decisions[0]
    predictors.value_folds = [
        replace(f, decision=d) for f, d in zip(folds, decisions[1:], strict=True)
    ]
    return predictors.decision


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
