"""Conversion calibrated per coupon option x lifecycle segment on the randomised holdout."""

from __future__ import annotations

import numpy as np
import pytest

from growth.modeling.recalibration import (
    GroupCalibrator,
    fit_calibrator,
    recalibrate,
)


def _holdout(n: int = 24_000, seed: int = 0):
    """Rows of two options x two segments with true rates; the model halves
    (option 1, 'new') and is right elsewhere."""
    rng = np.random.default_rng(seed)
    option = rng.integers(0, 2, n)
    segment = np.where(rng.uniform(size=n) < 0.5, "new", "active")
    truth = rng.uniform(0.02, 0.3, n)
    y = (rng.uniform(size=n) < truth).astype(float)
    bad = (option == 1) & (segment == "new")
    p = np.where(bad, 0.5 * truth, truth)
    return p, y, option, segment, bad


def test_a_miscalibrated_group_is_corrected_and_the_others_left_alone() -> None:
    """Probabilities halved in one option x segment are lifted back; the error after is
    measured out of fold and falls there, and stays small elsewhere."""
    p, y, option, segment, _ = _holdout()
    recal = recalibrate(p, y, option, segment, ["none", "c10"], seed=0)
    table = recal.table.set_index(["option_id", "segment"])
    worst = table.loc[("c10", "new")]
    assert worst["ratio_before"] == pytest.approx(2.0, rel=0.1)
    assert worst["ratio_after"] == pytest.approx(1.0, abs=0.06)
    assert worst["ece_after"] < 0.3 * worst["ece_before"]
    fine = table.loc[("c10", "active")]
    assert fine["ratio_after"] == pytest.approx(1.0, abs=0.06)
    assert fine["ece_after"] < 0.02
    # the calibrator the plan uses lifts only the halved group
    q = recal.calibrator.apply(
        np.array([0.05, 0.05]), np.array([1, 1]), np.array(["new", "active"])
    )
    assert q[0] == pytest.approx(0.1, abs=0.015)
    assert q[1] == pytest.approx(0.05, abs=0.008)


def test_a_group_below_the_minimum_size_falls_back_to_its_parent_fit() -> None:
    """A group with too few rows keeps its option's slope (the option itself shrunk to the
    pooled fit) and its intercept moves little on calibrated rows; an unseen group and option
    fall back to their parent; a large group shrinks only a little."""
    p, y, option, segment, _ = _holdout()
    rare = np.zeros(len(p), dtype=bool)
    rare[:100] = True
    segment = np.where(rare, "dormant", segment)
    cal = fit_calibrator(p, y, option, segment, min_rows=300, prior_rows=1000)
    for o in (0, 1):
        assert cal.by_group[(o, "dormant")][0] == cal.by_option[o][0]
        assert cal.by_group[(o, "dormant")][1] == pytest.approx(cal.by_option[o][1], abs=0.1)
    assert cal.params(7, "new") == cal.pooled
    assert cal.params(1, "unseen") == cal.by_option[1]
    big = fit_calibrator(p, y, option, segment, min_rows=300, prior_rows=0.0)
    a_own, a_parent = big.by_group[(1, "new")][0], cal.by_option[1][0]
    a_shrunk = cal.by_group[(1, "new")][0]
    assert min(a_own, a_parent) <= a_shrunk <= max(a_own, a_parent)
    assert abs(a_shrunk - a_own) < abs(a_parent - a_own)


def _small_group(n_small: int, seed: int = 0):
    """The calibrated holdout plus a 'potential' group of option 1 whose true rates are
    1.5 x the model's, with ``n_small`` rows (about 0.1 n_small conversions)."""
    p, y, option, segment, _ = _holdout(n=12_000, seed=seed)
    rng = np.random.default_rng(seed + 1)
    truth = np.full(n_small, 0.1)
    p = np.concatenate([p, truth / 1.5])
    y = np.concatenate([y, (rng.uniform(size=n_small) < truth).astype(float)])
    option = np.concatenate([option, np.ones(n_small, int)])
    segment = np.concatenate([segment, np.full(n_small, "potential")])
    return p, y, option, segment


def test_a_group_below_the_minimum_moves_by_its_evidence() -> None:
    """Partial pooling: a group with about 70 conversions (under the 100 for a fit of its own)
    that the model under-predicts by a third is lifted most of the way, keeping its option's
    slope; with a quarter of the evidence it moves less.  Without pooling it would keep its
    option's fit (ratio 1)."""
    lifted = {}
    for n_small in (700, 175):
        p, y, option, segment = _small_group(n_small)
        cal = fit_calibrator(p, y, option, segment)  # the default minimums: 300 rows, 100 events
        assert cal.by_group[(1, "potential")][0] == cal.by_option[1][0]
        q = cal.apply(np.full(10, 0.1 / 1.5), np.ones(10, int), np.full(10, "potential"))
        lifted[n_small] = float(q.mean() / (0.1 / 1.5))
    assert 1.2 < lifted[700] < 1.6
    assert 1.0 < lifted[175] < lifted[700]


def test_calibration_is_deterministic() -> None:
    """The same rows and seed give the same calibrator, out-of-fold probabilities and report."""
    p, y, option, segment, _ = _holdout(n=6000)
    one = recalibrate(p, y, option, segment, ["none", "c10"], seed=3)
    two = recalibrate(p, y, option, segment, ["none", "c10"], seed=3)
    assert one.calibrator == two.calibrator
    np.testing.assert_array_equal(one.holdout_p, two.holdout_p)
    assert one.summary() == two.summary()
    assert GroupCalibrator.from_json(one.calibrator.to_json()) == one.calibrator  # as saved


def test_identity_calibrator_changes_nothing() -> None:
    """Unfitted parameters are the identity map."""
    p = np.array([0.01, 0.2, 0.9])
    q = GroupCalibrator().apply(p, np.zeros(3, int), np.array(["a", "b", "c"]))
    np.testing.assert_allclose(q, p, rtol=1e-9)


def test_the_reach_of_a_threshold_is_calibrated_on_the_holdout_conversions() -> None:
    """A basket model that under-predicts baskets understates how often a conversion reaches a
    coupon's threshold; the reach calibration (threshold options only, on the holdout's
    conversions) lifts it back, measured out of fold; rows without a threshold reach with 1."""
    from growth import services as svc
    from growth.modeling.sampling import chronological_split
    from growth.modeling.training import reach_recalibration
    from predictors.basket import BasketSizeModel

    features = svc.conversion_features(svc.load_world("small", 5000))
    frame = features.exposure_frame()
    holdout = chronological_split(frame, 0.3)
    older = np.flatnonzero(~holdout)
    basket = BasketSizeModel(features.spec, n_estimators=30, seed=0)
    basket.fit(frame.rows(older), frame.order_value[older])

    class Pessimist:  # baskets predicted 30 % small
        def prob_at_least(self, X, threshold):
            return basket.reach_probability(basket.predict(X) - 0.35, threshold)

    X = frame.rows(np.flatnonzero(holdout))
    recal = reach_recalibration(features, frame, holdout, X, Pessimist(), min_rows=50, min_class=10)
    assert recal.quantity == "redemption"
    table = recal.table[recal.table["segment"] == "all"].set_index("option_id")
    gated = [o for o, t in zip(features.option_ids, features.threshold, strict=True) if t > 0]
    assert sorted(table.index) == sorted(gated)
    assert (table["ratio_before"] > 1.4).all()
    # ~100 conversions each (5,000 users: the decision scene has 60 % of the shop's rows)
    assert ((table["ratio_after"] - 1.0).abs() < 0.2).all()
    no_threshold = features.threshold[frame.option_pos[holdout]] == 0
    np.testing.assert_array_equal(recal.holdout_p[no_threshold], 1.0)


def test_a_merchant_coupon_is_calibrated_on_the_rows_where_it_applies() -> None:
    """A model that under-predicts a merchant coupon's conversions on that merchant's items
    (its redemptions) and over-predicts them on other merchants' items (where the decision
    copies 'none') looks calibrated over all the option's rows; fitted on the rows where the
    coupon applies, the calibrator lifts the redemptions back."""
    from growth import services as svc
    from growth.modeling.sampling import chronological_split
    from growth.modeling.training import conversion_recalibration

    world = svc.load_world("small", 3000)
    features = svc.conversion_features(world)
    frame = features.exposure_frame()
    holdout = chronological_split(frame, 0.5)
    rows = np.flatnonzero(holdout)
    user, item, option = frame.user_pos[rows], frame.item_pos[rows], frame.option_pos[rows]
    truth = world.conversion_prob(user, item, option)
    merchant = features.option_type[option] == "merchant"
    applies = merchant & ~features.inapplicable(item, option)
    off = merchant & ~applies
    p = np.where(applies, 0.6 * truth, np.where(off, np.minimum(1.6 * truth, 0.9), truth))
    recal = conversion_recalibration(
        features, frame, holdout, p, min_rows=30, min_class=5, prior_rows=0.0
    )
    segment = frame.segment[rows]
    q = recal.calibrator.apply(p[applies], option[applies], segment[applies])
    assert q.sum() / p[applies].sum() > 1.3  # lifted towards truth / 0.6
    assert abs(q.sum() / truth[applies].sum() - 1.0) < 0.25


def test_the_models_page_reports_conversion_and_redemption() -> None:
    """growth.services' option calibration table has a ``quantity`` column: conversion per
    option x segment and redemption (reach) for the threshold options only."""
    import pandas as pd

    from growth import services as svc
    from predictors.basket import BasketSizeModel
    from predictors.lgbm import LightGBMModel

    features = svc.conversion_features(svc.load_world("small", 800))
    ex = features.exposure_frame()
    predictors = svc.Predictors(
        features=features,
        predictor="lightgbm",
        conversion=LightGBMModel(features.spec, n_estimators=20, seed=0).fit(ex.X, ex.y),
        basket=BasketSizeModel(features.spec, n_estimators=20, seed=0).fit(ex.X, ex.order_value),
        metrics=pd.DataFrame(),
        source="test",
        seed=0,
    )
    table = svc.option_calibration_frame(predictors)
    assert set(table["quantity"]) == {"conversion", "redemption"}
    gated = {o for o, t in zip(features.option_ids, features.threshold, strict=True) if t > 0}
    assert set(table.loc[table["quantity"] == "redemption", "option_id"]) == gated
    assert {"ece_before", "ece_after", "ratio_before", "ratio_after", "events"} <= set(table)
