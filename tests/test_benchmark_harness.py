"""The predictor benchmark harness, and choosing a torch predictor by name in the nightly path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.harness import (
    AUX_COLUMN,
    ModelVariant,
    blank_domain,
    default_variants,
    fit_predict,
    format_table,
    movielens_split,
    run_benchmark,
    store_benchmark,
    summarize,
    world_split,
)
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import available_predictors, train_models
from growth.store import Store
from growth.world import WorldConfig, generate_world
from predictors.registry import predictor_names

TINY_TORCH = {"epochs": 1, "batch_size": 512}
VARIANTS = [
    ModelVariant("lightgbm_target", "lightgbm", ("user", "target", "item", "treatment"),
                 {"n_estimators": 20}),
    ModelVariant("lightgbm_target_source", "lightgbm", None, {"n_estimators": 20}),
    ModelVariant("mlp", "mlp", None, {**TINY_TORCH, "hidden": (16,)}),
    ModelVariant("mmoe", "mmoe", None, {**TINY_TORCH, "n_experts": 2, "expert_hidden": (8,)}),
    ModelVariant("finetune", "finetune", None, {**TINY_TORCH, "hidden": (8,), "pretrain_epochs": 1}),
]  # fmt: skip


def tiny_world(seed: int):
    return world_split(800, seed=seed, test_fraction=0.4)


@pytest.fixture(scope="module")
def result():
    return run_benchmark({"world": tiny_world}, variants=VARIANTS, seeds=(0,))


def test_world_split_holds_out_users_of_every_lifecycle():
    """The user-level holdout puts new, active and lost users in the test set; aux rows are blanked."""
    split = tiny_world(0)
    assert {"active", "new", "lost"} <= set(split.segment_test)
    assert len(split.X_aux) == len(split.X_train)
    target = [f.name for f in split.spec.of_domain("target") if f.kind == "numeric"]
    assert split.X_aux[target].isna().all().all()
    assert split.X_train[target].notna().any().any()


def test_harness_reports_every_segment_and_model(result):
    """Metrics exist for every variant and every segment (all, active, new, lost) with throughput."""
    assert not result.failures
    got = result.metrics.groupby("model")["segment"].agg(set)
    assert set(got.index) == {v.label for v in VARIANTS}
    assert all({"all", "active", "new", "lost"} <= s for s in got)
    assert set(result.metrics["metric"]) >= {"auc", "logloss", "ece"}
    assert (result.throughput["samples_per_s"] > 0).all()
    table = format_table(result, "world")
    assert list(table.index) == [v.label for v in VARIANTS]
    assert {"new auc", "active logloss", "lost ece", "samples/s"} <= set(table.columns)


def test_harness_is_deterministic_given_seed(result):
    """A second run with the same seed gives exactly the same metrics."""
    again = run_benchmark({"world": tiny_world}, variants=VARIANTS, seeds=(0,))
    pd.testing.assert_frame_equal(result.metrics, again.metrics)


def test_summary_has_mean_and_spread_over_seeds():
    """Two seeds give a mean, a standard deviation and n_seeds == 2 per cell."""
    res = run_benchmark({"world": tiny_world}, variants=VARIANTS[:1], seeds=(0, 1))
    summary = summarize(res)
    assert (summary["n_seeds"] == 2).all()
    auc = summary.query("segment == 'all' and metric == 'auc'")
    assert auc["std"].notna().all()


def test_failing_model_is_skipped_with_a_note():
    """A variant that raises is recorded as a failure and the others still run."""
    bad = ModelVariant("broken", "mlp", None, {"epochs": 0})
    notes: list[str] = []
    res = run_benchmark({"world": tiny_world}, variants=[VARIANTS[0], bad], seeds=(0,),
                        log=notes.append)  # fmt: skip
    assert [f[1] for f in res.failures] == ["broken"]
    assert set(res.metrics["model"]) == {"lightgbm_target"}
    assert any("skipped broken" in n for n in notes)
    with pytest.raises(ValueError, match="epochs"):
        run_benchmark({"world": tiny_world}, variants=[bad], seeds=(0,), skip_errors=False)


def test_default_variants_cover_the_registry():
    """Both LightGBM variants plus one row for every other registered model."""
    labels = [v.label for v in default_variants()]
    assert "lightgbm_target" in labels and "lightgbm_target_source" in labels
    assert set(predictor_names("conversion")) - {"lightgbm"} <= set(labels)
    with pytest.raises(ValueError, match="'nowhere'"):
        fit_predict(ModelVariant("x", "lightgbm", ("nowhere",)), tiny_world(0), 0)


def test_metrics_go_to_the_store(result):
    """store_benchmark writes one model_metrics row per metric in a 'benchmark' run."""
    store = Store("sqlite://")
    run_id = store_benchmark(result, store, {"seeds": [0]})
    rows = store.read("model_metrics")
    assert len(rows) == len(result.metrics) and (rows["run_id"] == run_id).all()
    assert store.runs(limit=1)["kind"].iloc[0] == "benchmark"


def test_blank_domain_empties_every_field_kind():
    """Numeric -> NaN, multi -> '' for every field of the domain; other domains untouched."""
    split = tiny_world(1)
    blanked = blank_domain(split.X_train.head(5), split.spec, "target")
    assert (blanked["tgt_user_tags"] == "").all() and blanked["tgt_purchase_power"].isna().all()
    pd.testing.assert_series_equal(blanked["coupon_face"], split.X_train.head(5)["coupon_face"])
    assert AUX_COLUMN not in blanked


def test_movielens_cold_start_users_are_only_in_the_test_set(movielens_dir):
    """Target-side cold-start ('new') test rows have no target history; a training row is
    'new' exactly when its user had no target rating before it (its lifecycle then)."""
    split = movielens_split(movielens_dir)
    new_test = split.segment_test == "new"
    assert new_test.sum() > 100 and (split.X_test.loc[new_test, "tgt_n_ratings"] == 0).all()
    new_train = split.X_train["lifecycle"] == "new"
    assert new_train.any() and new_train.equals(split.X_train["tgt_n_ratings"] == 0)
    assert len(split.X_aux) > 0 and set(np.unique(split.y_aux)) == {0, 1}
    assert set(split.X_train["domain"]) == {"target"} and set(split.X_aux["domain"]) == {"source"}
    assert set(split.X_train["scene"]) == {"Comedy"} and set(split.X_aux["scene"]) == {"Drama"}


def test_nightly_can_train_and_score_a_torch_predictor_by_name():
    """train_models('mlp') fits on raw frames; the coupon decision scores them with raw rows."""
    assert {"lightgbm", "mlp"} <= set(available_predictors())
    world = generate_world(WorldConfig(n_users=300, seed=4))
    features = ConversionFeatures(world.dataset)
    models = train_models(features, predictor="mlp", seed=1)
    assert models.conversion.feature_spec_.domains[:1] == ("user",)
    auc = models.metrics.query("segment == 'all' and metric == 'auc'")["value"].iloc[0]
    assert 0.5 < auc <= 1.0
    decision = predicted_coupon_decision(features, models.conversion, models.basket)
    assert decision.conversion.shape[0] == len(features.user_ids)
    assert np.isfinite(decision.conversion).all()
    assert ((decision.conversion >= 0) & (decision.conversion <= 1)).all()
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        train_models(features, predictor="nope")
