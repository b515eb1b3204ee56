"""The predictor benchmark harness, and choosing a torch predictor by name in the nightly path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.claims import claim_variants, cold_scene, share_table
from benchmarks.harness import (
    ModelVariant,
    default_variants,
    fit_predict,
    format_table,
    movielens_split,
    popularity_bins,
    popularity_ranges,
    run_benchmark,
    store_benchmark,
    summarize,
    world_split,
)
from benchmarks.tables import gains
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import available_predictors, train_models
from growth.store import Store
from growth.world import WorldConfig, generate_world
from predictors.registry import get_predictor, predictor_names

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
    """The user-level holdout puts new, active and lost users in the test set."""
    split = tiny_world(0)
    assert {"active", "new", "lost"} <= set(split.segment_test)


def test_world_split_tests_both_domains_and_every_scene():
    """Train and test rows are labelled samples of both domains and every scene (the
    source offers and the three target scenes); a user's rows are all on one side."""
    split = tiny_world(0)
    scenes = {
        ("source", "offers"),
        *(("target", s) for s in ("home_feed", "search", "coupon_centre")),
    }
    for X in (split.X_train, split.X_test):
        assert set(map(tuple, X[["domain", "scene"]].drop_duplicates().to_numpy())) == scenes
    assert (
        split.groups[["domain", "scene"]].to_numpy() == split.X_test[["domain", "scene"]].to_numpy()
    ).all()
    assert not set(split.train_keys["user"]) & set(split.groups["user"])
    source = split.groups["domain"] == "source"
    assert (split.groups.loc[source, ["segment", "popularity"]] == "source").all().all()
    assert set(split.groups.loc[~source, "segment"]) <= {"active", "new", "lost", "potential"}


def test_popularity_bins_come_from_logged_counts():
    """An item's popularity is its number of training rows; p1 holds the least popular
    items' test rows, and the bins split the target test rows about evenly."""
    split = tiny_world(0)
    logged = split.train_keys.groupby("item").size()
    target = split.groups["domain"] == "target"
    counts = split.groups.loc[target, "item"].map(logged).fillna(0).astype(int)
    assert (split.groups.loc[target, "item_count"] == counts).all()
    by_bin = split.groups[target].groupby("popularity")["item_count"].agg(["min", "max", "size"])
    assert list(by_bin.index) == ["p1", "p2", "p3", "p4"]
    assert (by_bin["max"].to_numpy()[:-1] <= by_bin["min"].to_numpy()[1:]).all()
    assert by_bin["size"].min() > 0.15 * target.sum()
    assert popularity_bins(np.array([0, 0, 0, 5])).tolist() == ["p1", "p1", "p1", "p2"]
    ranges = popularity_ranges(split.groups).set_index("popularity")
    assert ranges[["min", "max"]].equals(by_bin[["min", "max"]].astype(np.int64))


def test_harness_reports_every_grouping_and_model(result):
    """Metrics exist for every variant, domain, scene, segment and popularity bin, with
    throughput; the per-scene table has a column per scene for every model."""
    assert not result.failures
    got = result.metrics.groupby("model")["group"].agg(set)
    assert set(got.index) == {v.label for v in VARIANTS}
    assert all(
        {"all", "target", "source", "search", "active", "new", "lost", "p1"} <= s for s in got
    )
    assert set(result.metrics["by"]) == {"all", "domain", "scene", "segment", "popularity"}
    assert set(result.popularity[0]["popularity"]) == {"p1", "p2", "p3", "p4"}
    assert set(result.metrics["metric"]) >= {"auc", "logloss", "ece"}
    assert (result.throughput["samples_per_s"] > 0).all()
    assert result.scene_domain == {"offers": "source", "home_feed": "target", "search": "target",
                                   "coupon_centre": "target"}  # fmt: skip
    table = format_table(result, "world", by="scene")
    assert list(table.index) == [v.label for v in VARIANTS]
    assert {f"{s} auc" for s in result.scene_domain} | {"samples/s"} <= set(table.columns)
    assert {"new auc", "active logloss", "source auc"} <= set(
        format_table(result, "world", by="segment")
    )


def test_harness_is_deterministic_given_seed(result):
    """A second run with the same seed gives exactly the same metrics."""
    again = run_benchmark({"world": tiny_world}, variants=VARIANTS, seeds=(0,))
    pd.testing.assert_frame_equal(result.metrics, again.metrics)


def test_summary_has_mean_and_spread_over_seeds():
    """Two seeds give a mean, a standard deviation and n_seeds == 2 per cell."""
    res = run_benchmark({"world": tiny_world}, variants=VARIANTS[:1], seeds=(0, 1))
    summary = summarize(res)
    assert (summary["n_seeds"] == 2).all()
    auc = summary.query("by == 'all' and metric == 'auc'")
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
    """store_benchmark writes the per-domain, per-scene and per-segment rows in a 'benchmark' run."""
    store = Store("sqlite://")
    run_id = store_benchmark(result, store, {"seeds": [0]})
    rows = store.read("model_metrics")
    by, group = result.metrics["by"], result.metrics["group"]
    assert (
        len(rows)
        == (by.isin(["domain", "scene"]) | ((by == "segment") & (group != "source"))).sum()
    )
    assert (rows["run_id"] == run_id).all()
    assert set(rows.loc[rows["scene"] == "offers", "domain"]) == {"source"}
    assert store.runs(limit=1)["kind"].iloc[0] == "benchmark"


def test_variants_per_scene_and_on_a_share_of_the_rows():
    """per_scene fits one model per target scene on that scene's rows; train_share keeps a
    seeded share of the training rows."""
    seen: list[set] = []

    class Recording(get_predictor("lightgbm")):
        def fit(self, X, y):
            seen.append(set(zip(X["domain"], X["scene"], strict=True)))
            return super().fit(X, y)

    split, registry = tiny_world(0), {"lightgbm": Recording}
    params = {"n_estimators": 5}
    fit = fit_predict(
        ModelVariant("x", "lightgbm", None, params, per_scene=True), split, 0, registry
    )
    assert sorted(map(sorted, seen)) == [
        [("target", s)] for s in ("coupon_centre", "home_feed", "search")
    ]
    assert np.isfinite(fit.p_test).all()
    half = fit_predict(
        ModelVariant("y", "lightgbm", None, params, train_share=0.5), split, 0, registry
    )
    assert abs(half.n_train / len(split.y_train) - 0.5) < 0.05


def test_throughput_counts_models_with_their_own_update_step():
    """WE-CAN updates its critics and encoders in its own train_step (not through loss):
    its rows still count."""
    fit = fit_predict(ModelVariant("wecan", "wecan", None, {**TINY_TORCH}), tiny_world(0), 0)
    assert fit.samples_per_s > 0


def test_the_comparisons_read_their_rows(result):
    """Paired gains over a base model; the cold scene is the smallest target scene; the
    comparison rows and the share table's pairing of CDAnet with MMOE."""
    table = gains(result, "world", by="scene", base="lightgbm_target")
    assert "lightgbm_target" not in table.index and "search" in table.columns
    assert cold_scene(result, "world") == "search"
    labels = [
        v.label for v in claim_variants({"mmoe": 1, "cdanet": 1, "self_train": 1}, {}, [0.25, 1.0])
    ]
    assert labels == ["self_train_per_scene", "mmoe@25%", "cdanet@25%"]
    assert share_table(result, "world", [1.0]).empty  # no cdanet row in this result


def test_movielens_cold_start_users_are_only_in_the_test_set(movielens_dir):
    """Target-side cold-start ('new') test rows have no target history; a training row is
    'new' exactly when its user had no target rating before it (its lifecycle then)."""
    split = movielens_split(movielens_dir)
    new_test = split.segment_test == "new"
    assert new_test.sum() > 100 and (split.X_test.loc[new_test, "tgt_n_ratings"] == 0).all()
    train = split.X_train[split.X_train["domain"] == "target"]
    new_train = train["lifecycle"] == "new"
    assert new_train.any() and new_train.equals(train["tgt_n_ratings"] == 0)
    for X in (split.X_train, split.X_test):  # labelled samples of both domains
        assert set(map(tuple, X[["domain", "scene"]].drop_duplicates().to_numpy())) == {
            ("target", "Comedy"), ("source", "Drama")}  # fmt: skip
    source = (split.groups["domain"] == "source").to_numpy()
    assert (split.segment_test[source] == "source").all()


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
