"""MAML over user segments: meta-training, adaptation to a held-out segment, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.models.maml import MAMLModel

DOMAINS = {"x_": "target", "coupon_": "treatment"}
TINY = {
    "hidden": (16,),
    "embedding_dim": 4,
    "epochs": 6,
    "tasks_per_batch": 4,
    "support_size": 16,
    "query_size": 32,
    "inner_lr": 0.3,
    "validation_fraction": 0.0,
    "lr": 1e-2,
}


def segmented_world(n_segments: int, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Segments whose labels follow their own slope on x_a and bias: adaptation matters.

    logit = slope_s * x_a + bias_s + 0.5 * x_b with slope_s in +-[1, 2.5] (the sign
    flips between segments) and bias_s ~ N(0, 1): a pooled model cannot rank well.
    """
    rng = np.random.default_rng(seed)
    slope = rng.choice([-1.0, 1.0], n_segments) * rng.uniform(1.0, 2.5, n_segments)
    bias = rng.normal(0.0, 1.0, n_segments)
    seg = np.repeat(np.arange(n_segments), rows)
    n = len(seg)
    X = pd.DataFrame(
        {
            "segment": [f"s{s}" for s in seg],
            "x_a": rng.normal(size=n),
            "x_b": rng.normal(size=n),
            "coupon_type": rng.choice(["none", "red"], n),
        }
    )
    logit = slope[seg] * X["x_a"].to_numpy() + bias[seg] + 0.5 * X["x_b"].to_numpy()
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    return X, y


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    X, y = segmented_world(n_segments=24, rows=160, seed=0)
    return X, y, FeatureSpec.infer(X, DOMAINS)


@pytest.fixture(scope="module")
def meta(world) -> MAMLModel:
    X, y, spec = world
    warm = X["segment"] != "s0"
    return MAMLModel(spec, segment_columns=("segment",), **TINY).fit(X[warm], y[warm])


def _log_loss(model: MAMLModel, X: pd.DataFrame, y: np.ndarray) -> float:
    return binary_metrics(y, model.predict_proba(X)[:, 1])["logloss"]


def test_meta_training_uses_every_warm_segment_as_a_task(meta):
    """fit meta-trains over the 23 warm segments and keeps a finite loss history."""
    assert meta.n_tasks_ == 23
    assert 1 <= len(meta.history_) <= TINY["epochs"]
    assert all(np.isfinite(h["train_loss"]) for h in meta.history_)


def test_adaptation_lowers_query_loss_on_a_held_out_segment(world, meta):
    """adapt() on 32 support rows of an unseen segment lowers log loss on its other rows."""
    X, y, _ = world
    rows = np.flatnonzero(X["segment"] == "s0")
    support, query = rows[:32], rows[32:]
    before = _log_loss(meta, X.iloc[query], y[query])
    adapted = meta.adapt(X.iloc[support], y[support], steps=5)
    after = _log_loss(adapted, X.iloc[query], y[query])
    assert after < before - 0.02, (before, after)


def test_adapt_leaves_the_meta_model_unchanged(world, meta):
    """adapt() returns a copy; the meta-model's weights and predictions are untouched."""
    X, y, _ = world
    state = {k: v.clone() for k, v in meta.module_.state_dict().items()}
    p = meta.predict_proba(X)
    adapted = meta.adapt(X.iloc[:40], y[:40], steps=4)
    assert adapted is not meta and adapted.module_ is not meta.module_
    for key, value in meta.module_.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    np.testing.assert_array_equal(meta.predict_proba(X), p)
    assert not np.array_equal(adapted.predict_proba(X), p)


def test_same_seed_same_meta_model_and_adaptation(world):
    """Two fits with one seed, and two adaptations of them, predict identically."""
    X, y, spec = world
    X, y = X.iloc[:1_600], y[:1_600]
    params = TINY | {"epochs": 2, "seed": 3}
    a = MAMLModel(spec, segment_columns=("segment",), **params).fit(X, y)
    b = MAMLModel(spec, segment_columns=("segment",), **params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(
        a.adapt(X.iloc[:20], y[:20]).predict_proba(X), b.adapt(X.iloc[:20], y[:20]).predict_proba(X)
    )


def test_second_order_trains_through_the_inner_gradients(world):
    """order='second' meta-trains (finitely) to a different model than first order."""
    X, y, spec = world
    X, y = X.iloc[:1_600], y[:1_600]
    params = TINY | {"epochs": 1}
    first = MAMLModel(spec, segment_columns=("segment",), **params).fit(X, y)
    second = MAMLModel(spec, segment_columns=("segment",), order="second", **params).fit(X, y)
    p1, p2 = first.predict_proba(X)[:, 1], second.predict_proba(X)[:, 1]
    assert np.isfinite(p2).all()
    assert np.abs(p1 - p2).max() > 1e-6


def test_segments_kwarg_and_learned_step_sizes_round_trip(world, tmp_path):
    """segments= overrides segment_columns; learned inner step sizes survive save/load."""
    X, y, spec = world
    X, y = X.iloc[:1_600], y[:1_600]
    model = MAMLModel(spec, **(TINY | {"epochs": 2})).fit(X, y, segments=X["segment"].to_numpy())
    assert model.n_tasks_ == 10
    lr = model.module_.inner_log_lr.detach().exp()
    assert not torch.allclose(lr, torch.full_like(lr, TINY["inner_lr"]))
    again = MAMLModel.load(model.save(tmp_path / "maml"))
    torch.testing.assert_close(again.module_.inner_log_lr, model.module_.inner_log_lr)
    np.testing.assert_array_equal(
        model.adapt(X.iloc[:20], y[:20]).predict_proba(X),
        again.adapt(X.iloc[:20], y[:20]).predict_proba(X),
    )


def test_bad_segments_and_adaptation_inputs_are_refused(world, meta):
    """A missing segment column, misaligned segments or bad adapt labels raise clear errors."""
    X, y, spec = world
    with pytest.raises(ValueError, match="region"):
        MAMLModel(spec, segment_columns=("region",), **TINY).fit(X, y)
    with pytest.raises(ValueError, match="one label per row"):
        MAMLModel(spec, **TINY).fit(X, y, segments=["a", "b"])
    with pytest.raises(ValueError, match="no segment has 2"):
        MAMLModel(spec, **TINY).fit(X.iloc[:4], [0, 1, 0, 1], segments=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="row 1 has 2"):
        meta.adapt(X.iloc[:3], [0, 2, 1])
    with pytest.raises(ValueError, match="steps"):
        meta.adapt(X.iloc[:3], [0, 1, 1], steps=-1)
