"""Predictor choice (``auto``) and the torch training-size cap of ``growth.modeling.training``."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from growth.data.schema import SOURCE_PREFIX
from growth.jobs.config import NightlyConfig
from growth.modeling.concurrency import side_by_side
from growth.modeling.features import ConversionFeatures
from growth.modeling.selection import SELECTION_FOLDS, HoldoutQini
from growth.modeling.training import (
    FittedCandidate,
    available_predictors,
    candidate_predictors,
    choose_model,
    sample_rows,
    train_models,
)
from growth.world import WorldConfig, generate_world
from predictors.torch.base import using_torch_threads


@pytest.fixture(scope="module")
def features() -> ConversionFeatures:
    return ConversionFeatures(generate_world(WorldConfig(n_users=300, seed=4)).dataset)


def without_source(features: ConversionFeatures) -> ConversionFeatures:
    """The same world with every source-domain value missing (the columns stay)."""
    dataset = copy.copy(features.dataset)
    users = dataset.users.copy()
    users[[c for c in users.columns if c.startswith(SOURCE_PREFIX)]] = np.nan
    dataset.users = users
    return ConversionFeatures(dataset)


def test_auto_trains_csde_and_lightgbm_with_a_source_domain_and_lightgbm_without(features):
    """auto -> csde vs lightgbm with source-domain values, lightgbm alone when all are missing."""
    assert "auto" in available_predictors()
    assert candidate_predictors("auto", features) == ["csde", "lightgbm"]
    assert candidate_predictors("auto", without_source(features)) == ["lightgbm"]
    assert candidate_predictors("mlp", without_source(features)) == ["mlp"]  # a name is kept


def test_auto_keeps_csde_unless_lightgbm_ranks_uplift_better_on_the_holdout(features):
    """Both candidates' metrics are kept; LightGBM is chosen only with the higher holdout Qini."""
    models = train_models(features, predictor="auto", max_train_rows=2_000, seed=1)
    assert set(models.metrics["model"]) == {"csde", "lightgbm"}
    qini = models.metrics.query("segment == 'all' and metric == 'qini'").set_index("model")
    assert len(qini) == 2 and qini["value"].notna().all()
    if models.predictor == "lightgbm":
        assert qini.loc["lightgbm", "value"] > qini.loc["csde", "value"]
    expected = "TorchEstimator" if models.predictor == "csde" else "LightGBMModel"
    assert expected in [c.__name__ for c in type(models.conversion).__mro__]


def test_auto_stores_the_resolved_name_in_metrics(features):
    """The metrics' model column and TrainedModels.predictor name the model, never 'auto'."""
    models = train_models(without_source(features), predictor="auto", seed=1)
    assert models.predictor == "lightgbm"
    assert set(models.metrics["model"]) == {"lightgbm"}


def test_max_train_rows_caps_torch_training_but_keeps_the_whole_holdout(features):
    """A model that trains on a sample (torch) learns from max_train_rows older rows; the
    holdout and LightGBM are whole."""
    full = train_models(features, predictor="lightgbm", max_train_rows=100, seed=1)
    capped = train_models(features, predictor="mlp", max_train_rows=100, seed=1)
    assert full.n_train > 100 and capped.n_train == 100
    assert capped.n_holdout == full.n_holdout
    n_eval = capped.metrics.query("segment == 'all' and metric == 'n'")["value"].iloc[0]
    assert n_eval == full.n_holdout


def test_model_rows_carry_domain_and_scene_and_source_rows_train_but_never_judge(features):
    """Exposure rows carry their ``domain`` and ``scene``; the models learn from the decision
    scene's older rows plus the other scenes' and (capped) source rows logged before the
    holdout, while the holdout - what calibration and the off-policy estimates read - is
    the decision scene's target rows only."""
    from growth.modeling.sampling import chronological_split
    from growth.modeling.training import _training_rows

    assert features.decision_scene == "coupon_centre"
    frame = features.exposure_frame()
    X = frame.rows(np.arange(5))
    assert (X["domain"] == "target").all() and (X["scene"] == "coupon_centre").all()
    source = features.exposure_frame(domain="source")
    assert (source.rows()["domain"] == "source").all() and set(source.scene) == {"offers"}
    holdout = chronological_split(frame, 0.2)
    rows = _training_rows(features, frame, holdout, None, 40, seed=0)
    trained = rows.X(rows.older)
    assert set(trained["scene"]) == {"coupon_centre", "home_feed", "search", "offers"}
    assert (trained["domain"] == "source").sum() == 40
    start = frame.timestamp[holdout].min()
    assert (rows.frame.timestamp[rows.older] < start).all()
    assert set(rows.frame.scene[rows.holdout]) == {"coupon_centre"}
    assert (rows.frame.domain[rows.holdout] == "target").all()
    assert rows.holdout.sum() == holdout.sum() and set(rows.newer.scene) == {
        "home_feed",
        "search",
        "offers",
    }
    models = train_models(features, predictor="lightgbm", max_source_rows=40, seed=0)
    assert models.frame.scene is not None and set(models.frame.scene) == {"coupon_centre"}
    assert models.n_train == len(rows.older) and models.n_holdout == holdout.sum()
    scenes = set(models.metrics_by_sample()["scene"])
    assert scenes == {"coupon_centre", "home_feed", "search", "offers"}


def test_sample_rows_is_a_seeded_ordered_subset():
    """Same seed, same rows, in their original order; rows that fit come back unchanged."""
    rows = np.arange(10, 60)
    a, b = sample_rows(rows, 20, seed=3), sample_rows(rows, 20, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 20 and np.all(np.diff(a) > 0) and set(a) <= set(rows)
    assert not np.array_equal(a, sample_rows(rows, 20, seed=4))
    assert sample_rows(rows, None, seed=0) is rows and sample_rows(rows, 50, seed=0) is rows
    with pytest.raises(ValueError, match="max_rows must be >= 1"):
        sample_rows(rows, 0, seed=0)


def test_the_holdout_is_the_newest_share_with_a_floor_of_rows_of_at_most_half(features):
    """The newest ``holdout_fraction`` of rows, grown to ``min_rows`` on a small log but
    never past half of it; ``train_models`` holds out the same rows."""
    from growth.modeling.sampling import HOLDOUT_MIN_ROWS, chronological_split

    frame = features.exposure_frame()
    n = len(frame)
    assert NightlyConfig().holdout_min_rows == HOLDOUT_MIN_ROWS > n // 2  # a small log
    assert chronological_split(frame, 0.2).sum() == n // 2
    share = chronological_split(frame, 0.2, min_rows=0)
    assert share.sum() == n - int(np.floor(0.8 * n)) and share[-share.sum() :].all()
    assert np.array_equal(chronological_split(frame, 0.2, min_rows=share.sum() - 5), share)
    grown = chronological_split(frame, 0.2, min_rows=share.sum() + 7)
    assert grown.sum() == share.sum() + 7 and grown[-grown.sum() :].all()
    assert (frame.timestamp[grown] >= frame.timestamp[~grown].max()).all()
    assert chronological_split(frame, 0.2, min_rows=10 * n).sum() == n // 2
    models = train_models(features, predictor="lightgbm", holdout_min_rows=share.sum() + 7)
    assert models.n_holdout == grown.sum()
    with pytest.raises(ValueError, match="min_rows must be >= 0"):
        chronological_split(frame, 0.2, min_rows=-1)
    with pytest.raises(ValidationError, match="holdout_min_rows"):
        NightlyConfig(holdout_min_rows=-1)


def test_nightly_config_defaults_to_auto_and_rejects_unknown_predictors():
    """The predictor defaults to auto and unknown names are refused; a cap of 0 means none."""
    assert NightlyConfig().predictor == "auto"
    assert NightlyConfig().max_train_rows is not None
    assert NightlyConfig(predictor="csde", max_train_rows=0).max_train_rows is None
    with pytest.raises(ValidationError, match="unknown predictor 'nope'"):
        NightlyConfig(predictor="nope")
    with pytest.raises(ValidationError, match="max_train_rows"):
        NightlyConfig(max_train_rows=-1)


def test_validating_a_nightly_config_imports_neither_torch_nor_the_optimizers():
    """The predictor is validated by name: a fresh interpreter loads no torch, LightGBM or solver."""
    code = (
        "import sys; from growth.jobs.config import NightlyConfig; "
        "NightlyConfig(predictor='csde'); NightlyConfig(predictor='lightgbm'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightgbm', 'optimizers'}))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_torch_threads_sets_and_restores_the_thread_count():
    """Inside the block torch uses the asked threads; afterwards the previous count is back."""
    before = torch.get_num_threads()
    with using_torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with using_torch_threads(None):
        assert torch.get_num_threads() == before


def test_qini_rewards_ranking_by_true_uplift():
    """Ranking by the true uplift beats random order (about 0), which beats the reverse."""
    from predictors.metrics import qini_coefficient

    rng = np.random.default_rng(0)
    n = 40_000
    uplift = np.where(rng.random(n) < 0.3, 0.25, 0.0)
    treated = rng.random(n) < 0.5
    y = (rng.random(n) < 0.1 + uplift * treated).astype(int)
    best = qini_coefficient(y, treated, uplift + 1e-3 * rng.random(n))
    noise = qini_coefficient(y, treated, rng.random(n))
    worst = qini_coefficient(y, treated, -uplift + 1e-3 * rng.random(n))
    # perfect ranking: 0.35 x the total uplift per treated row (0.075) = 0.026
    assert best > 0.02 and abs(noise) < 0.005 and worst < -0.02
    assert np.isnan(qini_coefficient(y[:10], np.ones(10, bool), uplift[:10]))


def test_holdout_qini_prefers_the_worlds_true_uplift_to_its_reverse():
    """On the randomised holdout the true response ranks uplift well, its mirror badly."""
    from growth.modeling.training import chronological_split, holdout_qini

    world = generate_world(WorldConfig(n_users=3_000, seed=2))
    feats = ConversionFeatures(world.dataset)
    frame = feats.exposure_frame()
    holdout = chronological_split(frame, 0.3)
    none = feats.option_ids.index("none")
    truth = world.conversion.prob  # positions equal the world's user and item indices

    def true(rows, k):
        return truth(frame.user_pos[rows], frame.item_pos[rows], np.full(len(rows), k))

    def mirrored(rows, k):
        return 2 * true(rows, none) - true(rows, k)

    def logged(predict):  # the holdout rows under the options they were shown
        held = np.flatnonzero(holdout)
        shown, p = frame.option_pos[held], np.zeros(len(held))
        for k in np.unique(shown):
            p[shown == k] = predict(held[shown == k], k)
        return p

    good = holdout_qini(true, feats, frame, holdout, logged(true))
    bad = holdout_qini(mirrored, feats, frame, holdout, logged(mirrored))
    assert good.value > 0 > bad.value
    assert good.folds.shape == (SELECTION_FOLDS,)
    assert np.nanmean(good.folds) > 0 > np.nanmean(bad.folds)  # every fold is an experiment


def fitted_with(name: str, folds: list[float]) -> FittedCandidate:
    qini = HoldoutQini(value=float(np.mean(folds)), folds=np.array(folds))
    return FittedCandidate(name, model=None, metrics=pd.DataFrame(), n_train=0, qini=qini)


def test_a_challenger_replaces_the_default_only_when_clearly_better():
    """choose_model keeps the first model on a noisy edge and switches on a consistent one."""
    default = fitted_with("csde", [0.010, 0.012, 0.008, 0.011, 0.009])
    noisy = fitted_with("lightgbm", [0.013, 0.009, 0.010, 0.014, 0.008])  # +0.0008, se 0.0015
    steady = fitted_with("lightgbm", [0.012, 0.014, 0.010, 0.013, 0.011])  # +0.002 every fold
    chosen, why = choose_model([default, noisy])
    assert chosen is default and "not 2 se better" in why
    chosen, why = choose_model([default, steady])
    assert chosen is steady and "clearly better" in why
    assert choose_model([steady])[0] is steady


def test_the_spend_bias_is_that_of_the_predictions_the_plan_reads(features):
    """The budget buffer reads the holdout's spend bias (``models.calibration``) of the
    calibrated probabilities the plan reads (the full calibrators', the holdout's evidence
    counted once), not of the out-of-fold ones that report the calibration's error: per
    option it is the holdout log's observed over predicted spend."""
    from growth.campaigns.coupons.value import holdout_log

    models = train_models(features, predictor="lightgbm", seed=0)
    log = holdout_log(models)
    predicted = log.p_cost[np.arange(len(log.arm)), log.arm]
    bias = models.calibration.xs("all", level="segment")["rel_bias"]
    for k, option in enumerate(log.option_ids):
        mine = log.arm == k
        if option in bias.index and predicted[mine].sum() > 0:
            ratio = log.cost[mine].sum() / predicted[mine].sum()
            assert bias[option] == pytest.approx(ratio - 1.0, abs=1e-6), option
    assert models.recalibration is not None and models.recalibration.fitted_p is not None
    assert not np.allclose(models.recalibration.fitted_p, models.recalibration.holdout_p)


def test_each_value_fold_is_calibrated_without_its_own_rows(features):
    """The cross-fit's folds split the holdout's users in two; each fold's models are
    calibrated on the other fold's rows alone and valued on their own."""
    from growth.modeling.training import holdout_folds

    models = train_models(features, predictor="lightgbm", seed=0)
    folds = models.value_folds
    assert len(folds) == 2 and models.value_folds[0].value_folds == []
    a, b = (f.holdout for f in folds)
    assert not (a & b).any() and np.array_equal(a | b, models.holdout)
    users = [set(models.frame.user_pos[m]) for m in (a, b)]
    assert not users[0] & users[1], "a user's rows stay in one fold"
    for fold, other in ((folds[0], b), (folds[1], a)):
        assert fold.recalibration.fitted_p is not None
        assert len(fold.recalibration.fitted_p) == other.sum()  # fitted on the other fold
        assert len(fold.reach.fitted_p) == other.sum()
    assert fold.calibrator != models.calibrator
    assert holdout_folds(models.frame, models.holdout, 1, seed=0) == []
    again = holdout_folds(models.frame, models.holdout, 2, seed=0)
    assert all(np.array_equal(x, f.holdout) for x, f in zip(again, folds, strict=True))


def test_each_users_logged_impressions_per_app_are_user_features(features):
    """log(1 + impressions) in the shop and in the payments app, counted from the exposure
    log (NaN in the payments app for users it does not know), are target and source fields
    of the spec; a dataset that brings its own (as of each row, MovieLens) keeps them."""
    from growth.modeling.features import ACTIVITY_COLUMNS

    log, users = features.dataset.exposures, features.dataset.users
    shop, payments = ACTIVITY_COLUMNS
    for column, domain in ((shop, "target"), (payments, "source")):
        counts = log.loc[log["domain"] == domain, "user_id"].value_counts()
        expected = np.log1p(counts.reindex(users["user_id"], fill_value=0).to_numpy())
        if domain == "source":
            expected = np.where(users["has_source"].to_numpy() > 0, expected, np.nan)
        np.testing.assert_allclose(features.user_frame[column], expected, rtol=1e-6)
        assert column in {f.name for f in features.spec.of_domain(domain)}
    assert features.user_frame[shop].std() > 0
    dataset = copy.copy(features.dataset)
    dataset.users = users.assign(**{shop: 7.0})
    assert (ConversionFeatures(dataset).user_frame[shop] == 7.0).all()


def test_side_by_side_keeps_the_order_and_raises_the_first_error():
    """Results in the items' order whichever finishes first; a failure is not swallowed."""
    import time

    assert side_by_side(lambda s: (time.sleep(s), s)[1], [0.05, 0.0]) == [0.05, 0.0]

    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 2"):
        side_by_side(fail_on_two, [1, 2, 3])


def test_candidates_side_by_side_learn_and_score_as_one_after_the_other(features, monkeypatch):
    """Training and scoring the two candidates in parallel threads changes no number."""
    import growth.campaigns.coupons.choice as choice
    import growth.modeling.training as training
    from growth.campaigns.coupons.choice import score_candidates

    def run() -> tuple[pd.DataFrame, list[np.ndarray]]:
        models = train_models(features, predictor="auto", max_train_rows=2_000, seed=5)
        scores = score_candidates(features, models, torch_threads=1)
        return models.metrics, [s.decision.conversion for s in scores]

    metrics, conversion = run()
    in_turn = lambda work, items: [work(x) for x in items]  # noqa: E731
    monkeypatch.setattr(training, "side_by_side", in_turn)
    monkeypatch.setattr(choice, "side_by_side", in_turn)
    metrics_in_turn, conversion_in_turn = run()
    pd.testing.assert_frame_equal(metrics, metrics_in_turn)
    assert len(conversion) == 2
    for a, b in zip(conversion, conversion_in_turn, strict=True):
        np.testing.assert_array_equal(a, b)
