"""The LightGBM conversion model and the basket model follow the estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictors.base import NotFittedError
from predictors.basket import BasketSizeModel
from predictors.features import FeatureSpec
from predictors.lgbm import LightGBMModel
from predictors.metrics import binary_metrics, expected_calibration_error, segment_metrics
from predictors.tabular import encode_tabular

DOMAINS = {"src_": "source", "tgt_": "target", "region": "user"}


@pytest.fixture
def toy() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 4_000
    X = pd.DataFrame(
        {
            "src_spend": rng.normal(size=n).astype(np.float32),
            "tgt_power": rng.normal(size=n).astype(np.float32),
            "region": rng.integers(0, 4, size=n).astype(np.int32),
        }
    )
    logit = -1.0 + 1.5 * X["src_spend"] - 1.0 * X["tgt_power"] + 0.5 * (X["region"] == 2)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_fit_predict_proba_ranks_and_is_a_distribution(toy):
    """predict_proba returns (n, 2) rows summing to one and ranks a learnable signal."""
    X, y = toy
    spec = FeatureSpec.infer(X, DOMAINS, categorical=["region"])
    model = LightGBMModel(spec, n_estimators=80, seed=1).fit(X, y)
    assert model.categorical_ == ["region"]
    p = model.predict_proba(X)
    assert p.shape == (len(X), 2)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert ((p >= 0) & (p <= 1)).all()
    assert binary_metrics(y, p[:, 1])["auc"] > 0.75


def test_save_load_round_trip_gives_identical_predictions(toy, tmp_path):
    """A saved model reloads from text + JSON and predicts exactly the same."""
    X, y = toy
    model = LightGBMModel(FeatureSpec.infer(X, DOMAINS), n_estimators=40, seed=2).fit(X, y)
    model.save(tmp_path / "m")
    again = LightGBMModel.load(tmp_path / "m")
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.txt"]


def test_same_seed_same_model(toy):
    """Training is deterministic given the seed."""
    X, y = toy
    spec = FeatureSpec.infer(X, DOMAINS)
    a = LightGBMModel(spec, n_estimators=30, seed=3).fit(X, y).predict_proba(X)
    b = LightGBMModel(spec, n_estimators=30, seed=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_contract_errors_are_clear(toy):
    """Unfitted use, bad labels, unknown parameters and missing columns are refused with a fix."""
    X, y = toy
    spec = FeatureSpec.infer(X, DOMAINS)
    with pytest.raises(NotFittedError, match="call fit"):
        LightGBMModel(spec).predict_proba(X)
    with pytest.raises(ValueError, match="row 0 has 2"):
        LightGBMModel(spec).fit(X, np.r_[2, y[1:]])
    with pytest.raises(ValueError, match="single class"):
        LightGBMModel(spec).fit(X, np.zeros(len(X)))
    with pytest.raises(TypeError, match=r"LightGBMModel got unknown parameters \['n_trees'\]"):
        LightGBMModel(spec, n_trees=3)
    with pytest.raises(ValueError, match="learning_rate"):
        LightGBMModel(spec, learning_rate=2.0).fit(X, y)
    model = LightGBMModel(spec, n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match=r"lacks feature columns \['tgt_power'\]"):
        model.predict_proba(X.drop(columns="tgt_power"))


def test_feature_spec_encodes_heterogeneous_domains():
    """Numeric, categorical and multi-valued fields of two domains encode without special cases."""
    frame = pd.DataFrame(
        {
            "src_spend": [1.0, np.nan, 3.0],
            "src_tier": ["gold", "basic", None],
            "tgt_user_tags": ["1|3", "", "3"],
            "tgt_click_seq": ["0|0|2", None, ""],
            "other": [1, 2, 3],
        }
    )
    spec = FeatureSpec.infer(frame, {"src_": "source", "tgt_": "target"}).fit(frame)
    assert spec.domains == ("source", "target")
    assert [f.kind for f in spec.fields] == ["numeric", "categorical", "multi", "multi"]
    table = encode_tabular(spec, frame)
    assert table["src_tier"].tolist() == [2, 1, 0]  # vocab: <unk>, basic, gold
    assert table["tgt_user_tags__3"].tolist() == [0.5, 0.0, 1.0]
    assert table["tgt_click_seq__0"].tolist() == pytest.approx([2 / 3, 0.0, 0.0])
    assert table["tgt_click_seq__len"].tolist() == [3.0, 0.0, 0.0]
    assert np.isnan(table["src_spend"].iloc[1])
    restored = FeatureSpec.from_dict(spec.to_dict())
    assert restored == spec


def test_basket_model_prices_thresholds():
    """P(basket >= threshold) falls as the threshold rises and is 1 at threshold 0."""
    rng = np.random.default_rng(4)
    n = 3_000
    X = pd.DataFrame({"power": rng.normal(size=n)})
    value = np.exp(3.5 + 0.6 * X["power"].to_numpy() + rng.normal(0, 0.2, n))
    value[rng.random(n) < 0.5] = np.nan  # not converted: no order value
    spec = FeatureSpec.infer(X, {"power": "user"})
    model = BasketSizeModel(spec, n_estimators=60, seed=0).fit(X, value)
    probe = pd.DataFrame({"power": [0.0, 0.0, 0.0, 1.5]})
    p = model.prob_at_least(probe, np.array([0.0, 20.0, 60.0, 60.0]))
    assert p[0] == 1.0
    assert p[1] > 0.9 > p[2]
    assert p[3] > p[2]
    assert 0.1 < model.sigma_ < 0.4


def test_metrics_by_segment():
    """Segment metrics report every segment plus 'all', and calibration error sees miscalibration."""
    y = np.array([0, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.4])
    frame = segment_metrics(y, p, np.array(["new", "new", "active", "active", "new", "lost"]))
    assert set(frame["segment"]) == {"all", "new", "active", "lost"}
    auc_all = frame.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
    assert auc_all == 1.0
    assert np.isnan(frame.query("segment == 'lost' and metric == 'auc'")["value"].iloc[0])
    assert expected_calibration_error(np.ones(100), np.full(100, 0.2)) == pytest.approx(0.8)
