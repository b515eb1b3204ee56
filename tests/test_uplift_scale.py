"""The coupon effects stretched per segment where the randomised log shows them shrunk
(campaigns/coupons/uplift.py, GroupCalibrator.uplift_scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from randomised_logs import randomised_log

from growth import services as svc
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.campaigns.coupons.uplift import MIN_ROWS, fit_uplift_scale, with_uplift_scale
from growth.campaigns.coupons.value import HoldoutLog, model_holdout_logs
from growth.modeling.recalibration import GroupCalibrator
from growth.modeling.training import train_models
from predictors.basket import BasketSizeModel
from predictors.lgbm import LightGBMModel

OPTIONS = ["none", "rp", "fr"]


def shrunk_log(true_over_model: dict[str, float], users: int = 12_000, seed: int = 0) -> HoldoutLog:
    """A randomised log whose model predicts each coupon's effect ``0.06 x`` (``x`` a user's
    uniform feature) while the truth's is ``true_over_model[segment]`` times that."""
    rng = np.random.default_rng(seed)
    segments = np.array(sorted(true_over_model))
    seg_of_user = segments[rng.integers(0, len(segments), users)]
    x = rng.random(users)
    user = np.repeat(np.arange(users), 3)
    arm = rng.integers(0, len(OPTIONS), len(user))
    model = np.column_stack([np.full(users, 0.1), 0.1 + 0.06 * x, 0.1 + 0.03 * x])[user]
    ratio = np.array([true_over_model[s] for s in seg_of_user])[user]
    true = model[:, :1] + ratio[:, None] * (model - model[:, :1])
    y = (rng.random(len(user)) < true[np.arange(len(user)), arm]).astype(float)
    return randomised_log(user, seg_of_user[user], arm, y, model, OPTIONS)


def test_the_slope_finds_the_effect_a_model_shrank_and_leaves_a_right_one_alone():
    """New users' true effects are twice the model's, active users' as predicted: the slope
    reads about 2 and 1 (within three standard errors), and only new users are stretched."""
    fits = {f.segment: f for f in fit_uplift_scale(shrunk_log({"active": 1.0, "new": 2.0}))}
    new, active = fits["new"], fits["active"]
    assert abs(new.beta - 2.0) < 3 * new.se and new.se < 0.4
    assert abs(active.beta - 1.0) < 3 * active.se
    assert 1.5 < new.factor <= new.beta + 1e-9  # the prior about 1 pulls it in a little
    assert active.factor < 1.0 + 2 * active.se


def test_effects_the_log_shows_smaller_are_not_shrunk_further():
    """A segment whose observed effects are half the model's keeps the model's (factor 1):
    a regularised model's effects are shrunk, not inflated, so a low slope is taken as noise."""
    (fit,) = fit_uplift_scale(shrunk_log({"lost": 0.5}))
    assert fit.beta < 0.9 and fit.factor == 1.0


def test_a_segment_with_too_few_rows_keeps_the_models_effects():
    log = shrunk_log({"potential": 3.0}, users=MIN_ROWS // 3 - 1)
    (fit,) = fit_uplift_scale(log)
    assert fit.rows < MIN_ROWS and np.isnan(fit.beta) and fit.factor == 1.0


def test_the_stretch_is_saved_with_the_calibrator():
    cal = GroupCalibrator(pooled=(1.1, 0.2), uplift_scale={"new": 1.7}, uplift_options=(1, 3))
    assert GroupCalibrator.from_json(cal.to_json()) == cal
    older = {k: v for k, v in cal.to_json().items() if not k.startswith("uplift")}  # earlier runs
    assert GroupCalibrator.from_json(older) == GroupCalibrator(pooled=(1.1, 0.2))


@pytest.fixture(scope="module")
def small():
    """A small world's features with a quick LightGBM conversion model and a basket model."""
    features = svc.conversion_features(svc.load_world("small", 800))
    ex = features.exposure_frame()
    model = LightGBMModel(features.spec, n_estimators=40, seed=0).fit(ex.X, ex.y)
    basket = BasketSizeModel(features.spec, n_estimators=30, seed=0).fit(ex.X, ex.order_value)
    return features, model, basket


def test_the_value_side_of_the_platforms_coupons_moves_and_nothing_else(small):
    """Scored through a calibrator that stretches new users' effects 2x: their incremental
    conversions and GMV under the platform's coupons double; every other user's, every
    merchant coupon's, redemption (what spend and the buffer read) and 'none' stay.  The
    holdout log the plan's value is estimated on moves the same way."""
    features, model, basket = small
    ids = np.asarray(features.option_ids)
    platform = np.flatnonzero((ids != "none") & (features.coupon_merchant < 0))
    stretch = GroupCalibrator(uplift_scale={"new": 2.0}, uplift_options=tuple(platform))
    plain = predicted_coupon_decision(features, model, basket, calibrator=GroupCalibrator())
    decision = predicted_coupon_decision(features, model, basket, calibrator=stretch)
    new = decision.segment == "new"
    ours = np.asarray(decision.option_types[1:]) != "merchant"
    assert new.any() and ours.any() and (~ours).any()
    assert np.abs(plain.value[new][:, ours]).max() > 1e-4
    doubled = np.ix_(new, ours)
    np.testing.assert_allclose(decision.value[doubled], 2.0 * plain.value[doubled], atol=1e-12)
    np.testing.assert_allclose(
        decision.gmv_value[doubled], 2.0 * plain.gmv_value[doubled], atol=1e-9
    )
    np.testing.assert_allclose(decision.value[~new], plain.value[~new], atol=1e-12)
    np.testing.assert_allclose(decision.value[:, ~ours], plain.value[:, ~ours], atol=1e-12)
    np.testing.assert_array_equal(decision.redemption, plain.redemption)
    np.testing.assert_array_equal(decision.conversion[:, 0], plain.conversion[:, 0])

    frame = features.exposure_frame()
    rows = np.ones(len(frame.y), dtype=bool)
    before, after = model_holdout_logs(
        frame, model, basket, [(rows, GroupCalibrator(), None), (rows, stretch, None)]
    )
    lift = lambda lg: lg.p - lg.p[:, [lg.none]]  # noqa: E731
    on_new = before.segment == "new"
    moved = np.ix_(on_new, platform)
    np.testing.assert_allclose(lift(after)[moved], 2.0 * lift(before)[moved], atol=1e-12)
    np.testing.assert_allclose(lift(after)[~on_new], lift(before)[~on_new], atol=1e-12)
    others = np.setdiff1d(np.arange(len(ids)), platform)
    np.testing.assert_array_equal(after.p[:, others], before.p[:, others])
    np.testing.assert_array_equal(after.p_cost, before.p_cost)


@pytest.mark.slow
def test_trained_models_and_their_folds_carry_their_own_stretch():
    """``with_uplift_scale`` fits the chosen model and each value fold on its own rows: every
    calibrator gets a factor of at least 1 per segment with enough rows for the platform's
    options, and the fits are kept for the report; without ``apply`` only the fits."""
    features = svc.conversion_features(svc.load_world("small", 1_500))
    trained = train_models(features, predictor="lightgbm", seed=0)
    models = with_uplift_scale(trained)
    reported = with_uplift_scale(trained, apply=False)  # stretch_effects off
    assert reported.calibrator.uplift_scale == {} and reported.calibrator.uplift_options == ()
    pd.testing.assert_frame_equal(reported.uplift, models.uplift)
    for m in [models, *models.value_folds]:
        assert m.uplift is not None and set(m.uplift["segment"]) >= {"active", "new"}
        assert (m.uplift["factor"] >= 1.0).all()
        scale = m.calibrator.uplift_scale
        fitted = m.uplift.set_index("segment")["factor"]
        assert scale == {s: f for s, f in fitted.items() if f != 1.0}
        stretched = np.asarray(features.option_ids)[list(m.calibrator.uplift_options)]
        assert len(stretched) and not any(o == "none" or "merchant" in o for o in stretched)
    assert models.calibrator.uplift_scale != models.value_folds[0].calibrator.uplift_scale


@pytest.mark.slow
def test_the_nightly_stretches_unless_told_not_to(tmp_path):
    """A config's ``stretch_effects = false`` reaches the job (the default stretches); the
    job's training measures the slopes either way and stretches the value side only with it."""
    from growth.jobs.pipeline import train_configured
    from growth.jobs.production import load_config

    toml = tmp_path / "nightly.toml"
    toml.write_text('scenario = "small"\nstretch_effects = false\n')
    assert not load_config(toml).stretch_effects and load_config().stretch_effects

    features = svc.conversion_features(svc.load_world("small", 1_200))
    for stretch in (False, True):
        config = load_config(predictor="lightgbm", stretch_effects=stretch)
        _, models = train_configured(config, features, None, seed=0)
        assert models.uplift is not None and len(models.uplift) > 0
        assert bool(models.calibrator.uplift_scale) == stretch
