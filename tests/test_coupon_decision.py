"""Coupon scoring: factored LightGBM trees, the merchant rule, and agreement with plain scoring."""

from __future__ import annotations

import numpy as np
import pytest

from growth import services as svc
from growth.campaigns.coupons.scoring import _coupon_order, predicted_coupon_decision
from growth.modeling.features import ConversionFeatures
from predictors.basket import BasketSizeModel
from predictors.lgbm import LightGBMModel, split_trees
from predictors.scoring import FrameScorer
from predictors.tabular import encode_tabular


@pytest.fixture(scope="module")
def small() -> tuple[ConversionFeatures, LightGBMModel, BasketSizeModel]:
    """A small world's features with a quick LightGBM conversion model and a basket model."""
    features = svc.conversion_features(svc.load_world("small", 800))
    ex = features.exposure_frame()
    model = LightGBMModel(features.spec, n_estimators=40, seed=0).fit(ex.X, ex.y)
    basket = BasketSizeModel(features.spec, n_estimators=30, seed=0).fit(ex.X, ex.order_value)
    return features, model, basket


class MerchantBlindModel:
    """A conversion model whose coupon effect is zero when a merchant coupon does not match."""

    def predict_proba(self, X):
        logit = -2.0 + 0.3 * X["coupon_face_over_price"] * X["coupon_merchant_match"]
        logit = (
            logit + 0.01 * X["item_price"] + 0.05 * X["coupon_type"] * X["coupon_merchant_match"]
        )
        p = 1.0 / (1.0 + np.exp(-logit.to_numpy(np.float64)))
        return np.column_stack([1.0 - p, p])

    def grouped_scorer(self, entities, varying=()):
        return FrameScorer(self, entities)


def _scored_every_row(features, model, basket) -> dict[str, np.ndarray]:
    """Reference: score every (user, candidate, option) row with ``model`` and average per user."""
    order = _coupon_order(features)
    cand = features.dataset.candidates
    u = features.user_positions(cand["user_id"].to_numpy())
    i = features.item_positions(cand["item_id"].to_numpy())
    n, k1, m = len(features.user_ids), len(order), len(u)
    opt = np.repeat(order, m)
    X = features.raw_frame(np.tile(u, k1), np.tile(i, k1), opt)
    p = model.predict_proba(X)[:, 1].reshape(k1, m)
    applies = features.applicable(np.tile(i, k1), opt).reshape(k1, m)
    log_basket = basket.predict(X.iloc[:m])
    reach = basket.reach_probability(log_basket[None, :], features.threshold[order][:, None])
    denom = np.maximum(np.bincount(u, minlength=n), 1)[:, None]
    total = lambda w: np.stack([np.bincount(u, weights=w[j], minlength=n) for j in range(k1)], 1)  # noqa: E731
    return {
        "conversion": total(_with_reach(p, reach)) / denom,
        "redemption": total(p * applies * reach) / denom,
        "p": p,
        "reach": reach,
        "neutral": features.inapplicable(np.tile(i, k1), opt).reshape(k1, m),
    }


def _with_reach(p: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Reference rule: a coupon that applies with probability ``reach`` converts as 'none' (row
    0) otherwise."""
    return reach * p + (1.0 - reach) * p[0]


def test_tree_split_reproduces_lightgbm_probabilities(small):
    """Fixed trees + option trees give LightGBM's own probabilities (only the sum is regrouped)."""
    features, model, _ = small
    names = model.feature_names_in_
    split = split_trees(model.booster_, names, features.option_columns, model.best_iteration_)
    assert split.n_fixed_trees + split.n_varying_trees == model.best_iteration_
    assert split.n_varying_trees > 0
    rng = np.random.default_rng(0)
    n = 3000
    X = features.raw_frame(
        rng.integers(0, len(features.user_ids), n),
        rng.integers(0, len(features.item_ids), n),
        rng.integers(0, len(features.option_ids), n),
    )
    block = encode_tabular(model.feature_spec_, X).to_numpy()
    p = split.proba(split.raw_fixed(block) + split.raw_varying(block))
    np.testing.assert_allclose(p, model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="not columns the model was fitted on"):
        split_trees(model.booster_, names, ["no_such_column"], model.best_iteration_)


def test_rule_skipped_merchant_rows_match_scoring_them(small):
    """When the model ignores other merchants' coupons, skipping their rows changes nothing."""
    features, _, basket = small
    model = MerchantBlindModel()
    ref = _scored_every_row(features, model, basket)
    assert ref["neutral"].any(), "the world must have merchant coupons on other merchants' items"
    decision = predicted_coupon_decision(features, model, basket, chunk_users=150)
    np.testing.assert_allclose(decision.conversion, ref["conversion"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(decision.redemption, ref["redemption"], rtol=0, atol=1e-12)


def test_lightgbm_decision_equals_plain_scoring_with_the_rule(small):
    """The factored LightGBM path equals scoring every row, with the merchant rule applied."""
    features, model, basket = small
    ref = _scored_every_row(features, model, basket)
    p = np.where(ref["neutral"], ref["p"][:1], ref["p"])  # rule: 'none' where it cannot apply
    assert np.abs(p - ref["p"]).max() > 0, "the rule must matter for this model"
    p = _with_reach(p, ref["reach"])
    u = features.user_positions(features.dataset.candidates["user_id"].to_numpy())
    n = len(features.user_ids)
    denom = np.maximum(np.bincount(u, minlength=n), 1)
    expected = np.stack([np.bincount(u, weights=pj, minlength=n) for pj in p], 1) / denom[:, None]
    decision = predicted_coupon_decision(features, model, basket, chunk_users=150)
    np.testing.assert_allclose(decision.conversion, expected, rtol=0, atol=1e-12)
    merchant = np.asarray(decision.option_types) == "merchant"
    # a user's merchant coupon only lifts conversion through that merchant's items
    assert np.all(decision.redemption[:, merchant] <= decision.conversion[:, merchant] + 1e-15)


def test_torch_scoring_from_encoded_users_equals_raw_frame_rows(small):
    """Encoding the users table once gives the probabilities of encoding raw_frame rows."""
    from predictors.models import MLPModel

    features, _, basket = small
    ex = features.exposure_frame()
    model = MLPModel(features.spec, epochs=1, batch_size=256, seed=0)
    model.fit(ex.X, ex.y)
    scorer = model.grouped_scorer(features.user_frame, features.option_columns)
    assert set(scorer.context_fields) == set(features.context_columns), "only context per row"
    rng = np.random.default_rng(1)
    m = 500
    u = rng.integers(0, len(features.user_ids), m)
    i = rng.integers(0, len(features.item_ids), m)
    opt = rng.integers(0, len(features.option_ids), m)
    base = scorer.rows(u, features.context_frame(i, np.zeros(m, np.int64)))
    options = features.context_frame(i, opt, options_only=True)
    expected = model.predict_proba(features.raw_frame(u, i, opt))[:, 1]
    np.testing.assert_allclose(
        base.predict_variants(np.arange(m), options), expected, rtol=0, atol=1e-6
    )
    decision = predicted_coupon_decision(features, model, basket, chunk_users=150)
    assert np.isfinite(decision.conversion).all() and (decision.conversion > 0).any()


def test_the_decision_reads_calibrated_probabilities(small):
    """With a calibrator every scored probability is mapped per (option, segment) before it is
    averaged into conversion and redemption; rule rows copy the calibrated 'none'."""
    from growth.modeling.recalibration import GroupCalibrator

    features, _, basket = small
    model = MerchantBlindModel()
    order = _coupon_order(features)
    cal = GroupCalibrator(
        pooled=(1.0, 0.0),
        by_option={int(order[1]): (1.0, 0.7)},
        by_group={(int(order[0]), "new"): (1.2, -0.3)},
    )
    ref = _scored_every_row(features, model, basket)
    cand = features.dataset.candidates
    u = features.user_positions(cand["user_id"].to_numpy())
    seg = features.lifecycle[u]
    p = np.stack([cal.apply(pj, np.full(len(pj), order[j]), seg) for j, pj in enumerate(ref["p"])])
    p = _with_reach(np.where(ref["neutral"], p[:1], p), ref["reach"])
    n = len(features.user_ids)
    denom = np.maximum(np.bincount(u, minlength=n), 1)
    expected = np.stack([np.bincount(u, weights=pj, minlength=n) for pj in p], 1) / denom[:, None]
    plain = predicted_coupon_decision(features, model, basket, chunk_users=150)
    decision = predicted_coupon_decision(features, model, basket, chunk_users=150, calibrator=cal)
    np.testing.assert_allclose(decision.conversion, expected, rtol=0, atol=1e-12)
    assert (decision.conversion[:, 1] > plain.conversion[:, 1] + 1e-9).sum() > n // 2


def test_a_threshold_coupon_is_credited_only_where_the_basket_reaches_it(small):
    """A full-reduction coupon converts as 'none' where the basket misses its threshold: its
    incremental conversion is the reach-weighted effect, not the model's whole effect (a model
    blind to the threshold would otherwise be credited on baskets the coupon never discounts)."""
    features, _, basket = small
    model = MerchantBlindModel()  # an effect for every full-reduction coupon, threshold or not
    ref = _scored_every_row(features, model, basket)
    decision = predicted_coupon_decision(features, model, basket, chunk_users=150)
    fr = np.flatnonzero(np.asarray(decision.option_types) == "full_reduction")
    assert len(fr) and (ref["reach"][fr] < 0.5).mean() > 0.1, "thresholds must be missed often"
    np.testing.assert_allclose(
        decision.conversion[:, fr], ref["conversion"][:, fr], rtol=0, atol=1e-12
    )
    u = features.user_positions(features.dataset.candidates["user_id"].to_numpy())
    n = len(features.user_ids)
    denom = np.maximum(np.bincount(u, minlength=n), 1)
    whole = np.stack([np.bincount(u, weights=ref["p"][j], minlength=n) for j in fr], 1)
    whole_value = whole / denom[:, None] - decision.conversion[:, :1]
    assert np.all(decision.value[:, fr - 1] <= whole_value + 1e-12)
    assert (whole_value - decision.value[:, fr - 1]).mean() > 1e-3


def test_the_decision_reads_calibrated_reach(small):
    """With a reach calibrator the basket's reach of a threshold coupon is mapped per (option,
    segment) before redemption is built; coupons without a threshold and conversion are untouched."""
    from growth.modeling.recalibration import GroupCalibrator

    features, model, basket = small
    order = _coupon_order(features)
    gated = features.threshold[order] > 0
    assert gated.any() and (~gated[1:]).any()
    cal = GroupCalibrator(pooled=(1.0, 0.8))  # lifts every reach
    plain = predicted_coupon_decision(features, model, basket, chunk_users=150)
    lifted = predicted_coupon_decision(
        features, model, basket, chunk_users=150, reach_calibrator=cal
    )
    np.testing.assert_array_equal(lifted.conversion[:, ~gated], plain.conversion[:, ~gated])
    np.testing.assert_array_equal(lifted.redemption[:, ~gated], plain.redemption[:, ~gated])
    grew = lifted.redemption[:, gated] > plain.redemption[:, gated] + 1e-12
    assert grew.mean() > 0.5


def test_one_pass_scores_each_calibrator_pair_as_its_own_call(small):
    """The cross-fit's decisions come from one scoring pass: each (conversion, reach)
    calibrator pair gives exactly the decision a call with that pair alone gives."""
    from growth.campaigns.coupons.scoring import predicted_coupon_decisions
    from growth.modeling.recalibration import GroupCalibrator

    features, model, basket = small
    pairs = [
        (None, None),
        (GroupCalibrator(pooled=(1.1, 0.4)), None),
        (GroupCalibrator(pooled=(0.9, -0.2)), GroupCalibrator(pooled=(1.0, 0.8))),
    ]
    together = predicted_coupon_decisions(features, model, basket, pairs, chunk_users=150)
    assert len(together) == len(pairs)
    for (conversion, reach), decision in zip(pairs, together, strict=True):
        alone = predicted_coupon_decision(
            features,
            model,
            basket,
            chunk_users=150,
            calibrator=conversion,
            reach_calibrator=reach,
        )
        for name in ("conversion", "redemption", "gmv"):
            np.testing.assert_array_equal(getattr(decision, name), getattr(alone, name))
    assert not np.array_equal(together[0].conversion, together[1].conversion)
