"""The estimator contract, run over every model in predictors.models.REGISTRY.

Torch models take the FeatureSpec first and a raw frame in ``fit``; LightGBM
takes the tabular encoding of the same frame.  A model added to the registry
is covered here automatically (it only needs a small ``tiny_params``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from predictors.base import NotFittedError
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.models import REGISTRY, load_model
from predictors.tabular import encode_tabular
from predictors.torch.base import TorchEstimator

DOMAINS = {"src_": "source", "tgt_": "target", "coupon_": "treatment"}
LIGHTGBM_TINY = {"n_estimators": 40, "min_child_samples": 20}


def make_world(n: int = 3_000, *, seed: int = 0, src_missing: float = 0.0) -> tuple:
    """A two-domain frame: src_* numeric + sequence, tgt_* numeric + tags + categorical, coupons."""
    rng = np.random.default_rng(seed)

    def tokens(max_len: int, n_tokens: int) -> tuple[pd.Series, np.ndarray]:
        lists = [rng.integers(0, n_tokens, k) for k in rng.integers(0, max_len + 1, n)]
        has_zero = np.array([bool((t == 0).any()) for t in lists])
        return pd.Series(["|".join(map(str, t)) for t in lists]), has_zero

    src_seq, src_hit = tokens(5, 20)
    tgt_tags, tgt_hit = tokens(3, 8)
    X = pd.DataFrame(
        {
            "src_spend": rng.normal(size=n),
            "src_visits": rng.poisson(3.0, size=n).astype(float),
            "src_item_seq": src_seq,
            "tgt_power": rng.normal(500.0, 100.0, size=n),
            "tgt_user_tags": tgt_tags,
            "tgt_tier": rng.choice(["gold", "silver", "bronze"], size=n),
            "coupon_type": rng.choice(["none", "red_packet", "full_reduction"], size=n),
            "coupon_face": rng.choice([0.0, 5.0, 10.0], size=n),
        }
    )
    logit = (
        -0.3
        + 1.5 * X["src_spend"]
        + 1.0 * src_hit
        - (X["tgt_power"] - 500.0) / 100.0
        + 1.2 * tgt_hit
        + 0.8 * (X["tgt_tier"] == "gold")
        + 0.08 * X["coupon_face"]
    )
    gone = rng.random(n) < src_missing
    X.loc[gone, ["src_spend", "src_visits"]] = np.nan
    X.loc[gone, "src_item_seq"] = ""
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit.to_numpy()))).astype(np.int8)
    return X, y


class Subject:
    """Uniform handle on a registered model: builds it tiny and feeds it its input format."""

    def __init__(self, name: str, spec: FeatureSpec, **overrides: Any) -> None:
        self.cls = REGISTRY[name]
        self.torch = issubclass(self.cls, TorchEstimator)
        self.spec = spec
        params = dict(self.cls.tiny_params if self.torch else LIGHTGBM_TINY) | overrides
        self.model = self.cls(spec, **params) if self.torch else self.cls(**params)

    def inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        return X if self.torch else encode_tabular(self.spec.fit(X), X)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Subject:
        self.model.fit(self.inputs(X), y)
        return self

    def proba(self, X: pd.DataFrame, model: Any = None) -> np.ndarray:
        return (model or self.model).predict_proba(self.inputs(X))


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    X, y = make_world()
    return X, y, FeatureSpec.infer(X, DOMAINS)


class _FittedCache(dict):
    """Fits a registered model on the world the first time a test asks for it."""

    def __init__(self, world: tuple) -> None:
        super().__init__()
        self.world = world

    def __missing__(self, name: str) -> Subject:
        X, y, spec = self.world
        self[name] = Subject(name, spec).fit(X, y)
        return self[name]


@pytest.fixture(scope="module")
def fitted(world) -> dict[str, Subject]:
    return _FittedCache(world)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_probabilities_are_a_distribution_and_rank_the_signal(name, world, fitted):
    """predict_proba gives (n, 2) rows in [0, 1] summing to one that rank the synthetic signal."""
    X, y, _ = world
    p = fitted[name].proba(X)
    assert p.shape == (len(X), 2)
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert binary_metrics(y, p[:, 1])["auc"] > 0.7


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_save_load_round_trip_gives_identical_predictions(name, world, fitted, tmp_path):
    """A saved model reloads (by class and via load_model) and predicts exactly the same."""
    X, _, _ = world
    subject = fitted[name]
    subject.model.save(tmp_path / name)
    for again in (subject.cls.load(tmp_path / name), load_model(tmp_path / name)):
        np.testing.assert_array_equal(subject.proba(X), subject.proba(X, again))
    assert (tmp_path / name / "config.json").is_file()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_same_seed_same_model(name, world):
    """Two fits with the same seed predict identically."""
    X, y, spec = world
    X, y = X.iloc[:800], y[:800]
    a = Subject(name, spec, seed=7).fit(X, y)
    b = Subject(name, spec, seed=7).fit(X, y)
    np.testing.assert_array_equal(a.proba(X), b.proba(X))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_rows_without_a_source_domain_are_scored(name):
    """With 30% of rows missing every src_* field, fit works and those rows get finite scores."""
    X, y = make_world(1_200, seed=3, src_missing=0.3)
    spec = FeatureSpec.infer(X, DOMAINS)
    subject = Subject(name, spec).fit(X, y)
    gone = X["src_spend"].isna().to_numpy()
    assert 0.2 < gone.mean() < 0.4
    p = subject.proba(X)[:, 1]
    assert np.isfinite(p).all()
    assert binary_metrics(y, p)["auc"] > 0.6


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_unfitted_and_missing_column_errors(name, world, fitted):
    """predict before fit raises NotFittedError; a missing column raises ValueError naming it."""
    X, _, spec = world
    with pytest.raises(NotFittedError, match="call fit"):
        Subject(name, spec).proba(X)
    with pytest.raises(ValueError, match="tgt_power"):
        fitted[name].model.predict_proba(fitted[name].inputs(X).drop(columns="tgt_power"))


@pytest.mark.parametrize(
    "name", sorted(n for n, c in REGISTRY.items() if issubclass(c, TorchEstimator))
)
def test_torch_model_learns_heterogeneous_fields_from_a_raw_frame(name, world):
    """An unfitted spec is fitted on the raw frame; every field kind reaches the model."""
    X, y, spec = world
    model = Subject(name, spec).fit(X.iloc[:500], y[:500]).model
    assert not spec.fitted and model.feature_spec_.fitted
    kinds = {f.kind for f in model.feature_spec_.fields}
    assert kinds == {"numeric", "categorical", "multi"}
    assert model.feature_spec_.domains == ("source", "target", "treatment")
    assert len(model.history_) >= 1 and model.best_epoch_ is not None
    with pytest.raises(ValueError, match="src_item_seq"):
        Subject(name, spec).fit(X.drop(columns="src_item_seq"), y)
