"""The estimator contract, run over every predictor in predictors.registry.REGISTRY.

Every model takes the FeatureSpec first and the raw frame in ``fit``; a model
added to the registry is covered here automatically (it only needs a small
``tiny_params``).  Classifiers are checked on a 0/1 label, the regressor on an
order value that only the converting rows have.  The frames carry the sample columns
``domain`` and ``scene`` (labelled source rows, three target scenes), which the models
that do not read them ignore.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from predictors.base import NotFittedError
from predictors.examples import DOMAINS, sampled_frame
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.registry import REGISTRY, get_predictor, load_model, predictor_names
from predictors.torch.base import TorchEstimator
from predictors.torch.samples import input_spec

ENTITY_COLUMNS = [
    "src_spend",
    "src_visits",
    "src_item_seq",
    "tgt_power",
    "tgt_user_tags",
    "tgt_tier",
]
NAMES = predictor_names()


def make_world(n: int = 3_000, *, seed: int = 0, src_missing: float = 0.0) -> tuple:
    """``(X, y, order_value)`` of the two-domain example frame with its sample columns
    (see :mod:`predictors.examples`)."""
    return sampled_frame(n, seed=seed, src_missing=src_missing)


def target(name: str, y: np.ndarray, value: np.ndarray) -> np.ndarray:
    """What model ``name`` learns: the order value for the regressor, else the label."""
    return value if get_predictor(name).task == "regressor" else y


def score(model, X: pd.DataFrame) -> np.ndarray:
    """The regressor's prediction or a classifier's ``(n, 2)`` probabilities."""
    return model.predict(X) if model.task == "regressor" else model.predict_proba(X)


def tiny(name: str, spec: FeatureSpec, **overrides):
    cls = get_predictor(name)
    return cls(spec, **{**cls.tiny_params, **overrides})


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, FeatureSpec]:
    X, y, value = make_world()
    return X, y, value, FeatureSpec.infer(X, DOMAINS)


class _FittedCache(dict):
    """Fits a registered model on the world the first time a test asks for it."""

    def __init__(self, world: tuple) -> None:
        super().__init__()
        self.world = world

    def __missing__(self, name: str):
        X, y, value, spec = self.world
        self[name] = tiny(name, spec).fit(X, target(name, y, value))
        return self[name]


@pytest.fixture(scope="module")
def fitted(world) -> dict:
    return _FittedCache(world)


def test_registry_lists_every_task_without_importing_models():
    """Every entry names a task; the conversion names are what the nightly job accepts."""
    assert {e.task for e in REGISTRY.values()} == {"conversion", "open", "basket"}
    assert "lightgbm" in predictor_names("conversion") and "csde" in predictor_names("conversion")
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        get_predictor("nope")


@pytest.mark.parametrize("name", NAMES)
def test_constructor_is_the_config(name):
    """The keyword-only constructor arguments are the Config's fields with its defaults."""
    cls = get_predictor(name)
    params = inspect.signature(cls).parameters
    assert next(iter(params)) == "feature_spec"
    keyword = {p.name: p.default for p in params.values() if p.kind is p.KEYWORD_ONLY}
    config = cls.Config.model_fields
    assert keyword == {k: f.get_default(call_default_factory=True) for k, f in config.items()}
    model = cls(FeatureSpec(fields=()))
    assert model.get_params() == keyword
    with pytest.raises(TypeError, match="unknown parameters"):
        cls(FeatureSpec(fields=()), not_a_parameter=1)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_parameters_are_refused_when_fit_starts(name, world):
    """A parameter outside its Config's limits is stored, then refused by fit naming it."""
    X, y, value, spec = world
    model = tiny(name, spec, seed="not a seed")
    assert model.get_params()["seed"] == "not a seed"
    with pytest.raises(ValueError, match="seed"):
        model.fit(X, target(name, y, value))


@pytest.mark.parametrize("name", NAMES)
def test_fit_changes_only_fitted_attributes(name, world):
    """After fit, every attribute not ending in '_' is what the constructor stored."""
    X, y, value, spec = world
    model = tiny(name, spec)
    before = {k: v for k, v in vars(model).items() if not k.endswith("_")}
    model.fit(X.iloc[:1_500], target(name, y, value)[:1_500])
    after = {k: v for k, v in vars(model).items() if not k.endswith("_")}
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)


@pytest.mark.parametrize("name", NAMES)
def test_scores_rank_the_signal(name, world, fitted):
    """Classifiers: (n, 2) rows in [0, 1] summing to one that rank the label; the regressor:
    finite log order values that follow the order value."""
    X, y, value, _ = world
    out = score(fitted[name], X)
    if fitted[name].task == "regressor":
        assert out.shape == (len(X),) and np.isfinite(out).all()
        sold = np.isfinite(value)
        assert np.corrcoef(out[sold], np.log(value[sold]))[0, 1] > 0.7
        return
    assert out.shape == (len(X), 2)
    assert ((out >= 0) & (out <= 1)).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert binary_metrics(y, out[:, 1])["auc"] > 0.7


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_gives_identical_predictions(name, world, fitted, tmp_path):
    """A saved model reloads (by class and via load_model) and predicts exactly the same."""
    X = world[0]
    model = fitted[name]
    model.save(tmp_path / name)
    for again in (type(model).load(tmp_path / name), load_model(tmp_path / name)):
        np.testing.assert_array_equal(score(model, X), score(again, X))
        assert again.get_params() == model.get_params()
    assert (tmp_path / name / "config.json").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model(name, world):
    """Two fits with the same seed predict identically."""
    X, y, value, spec = world
    X, t = X.iloc[:800], target(name, y, value)[:800]
    a = tiny(name, spec, seed=7).fit(X, t)
    b = tiny(name, spec, seed=7).fit(X, t)
    np.testing.assert_array_equal(score(a, X), score(b, X))


@pytest.mark.parametrize("name", NAMES)
def test_rows_without_a_source_domain_are_scored(name):
    """With 30% of rows missing every src_* field, fit works and those rows get finite scores."""
    X, y, value = make_world(1_200, seed=3, src_missing=0.3)
    model = tiny(name, FeatureSpec.infer(X, DOMAINS)).fit(X, target(name, y, value))
    gone = X["src_spend"].isna().to_numpy()
    assert 0.2 < gone.mean() < 0.4
    out = score(model, X)
    assert np.isfinite(out).all()
    if model.task == "classifier":
        assert binary_metrics(y, out[:, 1])["auc"] > 0.6


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_and_missing_column_errors(name, world, fitted):
    """Scoring before fit raises NotFittedError; a missing column raises ValueError naming it."""
    X, _, _, spec = world
    with pytest.raises(NotFittedError, match="call fit"):
        score(tiny(name, spec), X)
    with pytest.raises(ValueError, match="tgt_power"):
        score(fitted[name], X.drop(columns="tgt_power"))


@pytest.mark.parametrize("name", NAMES)
def test_grouped_scorer_matches_scoring_the_joined_rows(name, world, fitted):
    """Entities encoded once + context rows score as the joined rows; variants with the
    varying columns replaced score as the rows so changed."""
    X, _, _, _ = world
    model = fitted[name]
    users = X[ENTITY_COLUMNS].iloc[::-1].reset_index(drop=True)  # a table in another order
    index = np.arange(len(X))[::-1].copy()
    rows = model.grouped_scorer(users, ["coupon_face"]).rows(index, X.drop(columns=ENTITY_COLUMNS))
    column = 0 if model.task == "regressor" else 1

    def direct(frame: pd.DataFrame) -> np.ndarray:
        out = score(model, frame)
        return out if out.ndim == 1 else out[:, column]

    np.testing.assert_allclose(rows.predict(), direct(X), rtol=1e-6, atol=1e-9)
    picked = np.arange(0, len(X), 7)
    replaced = pd.DataFrame({"coupon_face": np.full(len(picked), 10.0)})
    expected = direct(X.iloc[picked].assign(coupon_face=10.0))
    np.testing.assert_allclose(
        rows.predict_variants(picked, replaced), expected, rtol=1e-6, atol=1e-9
    )


TORCH = [n for n in predictor_names("conversion") if issubclass(get_predictor(n), TorchEstimator)]


@pytest.mark.parametrize("name", TORCH)
def test_torch_model_learns_heterogeneous_fields_from_a_raw_frame(name, world):
    """An unfitted spec is fitted on the raw frame; every field kind reaches the model."""
    X, y, _, spec = world
    model = tiny(name, spec).fit(X.iloc[:500], y[:500])
    assert not spec.fitted and model.feature_spec_.fitted
    kinds = {f.kind for f in model.feature_spec_.fields}
    assert kinds == {"numeric", "categorical", "multi"}
    assert input_spec(model.feature_spec_).domains == ("source", "target", "treatment")
    assert len(model.history_) >= 1 and model.best_epoch_ is not None
    with pytest.raises(ValueError, match="src_item_seq"):
        tiny(name, spec).fit(X.drop(columns="src_item_seq"), y)
