"""The sample columns (domain, scene): validation, defaults, decoding, save/load, metrics by group,
and the multi-task models' source rows as the auxiliary task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictors.examples import DOMAINS, sampled_frame
from predictors.features import FeatureSpec
from predictors.metrics import metrics_by, segment_metrics
from predictors.models.mmoe import MMOEModel
from predictors.models.shared_bottom import SharedBottomModel
from predictors.registry import load_model
from predictors.torch.inputs import FrameEncoder
from predictors.torch.samples import (
    SAMPLE_DOMAIN,
    SampleColumns,
    default_scene,
    fill_carried,
    input_spec,
    with_sample_fields,
)


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    X, y, _ = sampled_frame(1_200, seed=4)
    return X, y, FeatureSpec.infer(X, DOMAINS)


def test_bad_sample_values_name_the_column_and_row(frame):
    X, _, spec = frame
    bad = X.assign(domain=X["domain"].where(X.index != 5, "shop"))
    with pytest.raises(
        ValueError, match=r"'domain' must hold 'source' or 'target'.*row 5 has 'shop'"
    ):
        with_sample_fields(spec, bad)
    gap = X.assign(scene=X["scene"].where(X.index != 9, None))
    with pytest.raises(ValueError, match=r"'scene' must name a scene in every row; row 9"):
        with_sample_fields(spec, gap)
    feature = FeatureSpec.infer(X, {**DOMAINS, "scene": "target"})
    with pytest.raises(ValueError, match=r"\['scene'\] are sample columns, not features"):
        with_sample_fields(feature, X)


def test_default_scene_is_the_most_frequent_target_scene(frame):
    X, _, _ = frame
    counts = X[X.domain == "target"].scene.value_counts()
    assert default_scene(X) == counts.idxmax() == "home_feed"
    mostly_source, _, _ = sampled_frame(600, source_share=0.7)
    assert mostly_source.scene.value_counts().idxmax() == "offers"
    assert default_scene(mostly_source) == "home_feed"  # source rows do not count
    only_source = X[X.domain == "source"]
    assert default_scene(only_source) == "offers"


def test_sample_fields_are_carried_never_embedded(frame):
    X, _, spec = frame
    full, X = with_sample_fields(spec, X)
    assert [f.name for f in full.of_domain(SAMPLE_DOMAIN)] == ["domain", "scene"]
    assert input_spec(full).names == spec.names
    encoder = FrameEncoder.fit(full, X)
    samples = SampleColumns(encoder.spec)
    is_source, scene = samples(encoder.encode(X))
    np.testing.assert_array_equal(is_source.numpy(), X["domain"].eq("source").to_numpy())
    names = np.asarray(samples.scenes)[scene.numpy()]
    np.testing.assert_array_equal(names, X["scene"].to_numpy())
    # a frame without the columns: target rows of the default scene; an unseen scene: 0
    bare = fill_carried(encoder.spec, X.drop(columns=["domain", "scene"]))
    is_source, scene = samples(encoder.encode(bare))
    assert not is_source.any() and (scene == samples.default_scene).all()
    assert samples.scenes[samples.default_scene] == "home_feed"
    _, scene = samples(encoder.encode(X.assign(scene="never_seen")))
    assert (scene == 0).all()
    with pytest.raises(ValueError, match="row 0 has 'shop'"):
        fill_carried(encoder.spec, X.assign(domain="shop"))


def test_without_sample_columns_everything_is_one_target_scene(frame):
    X, _, spec = frame
    bare = X.drop(columns=["domain", "scene"])
    same, out = with_sample_fields(spec, bare)
    assert same.names == spec.names and out is bare
    samples = SampleColumns(FrameEncoder.fit(same, bare).spec)
    assert samples.n_scenes == 1


@pytest.mark.parametrize("cls", [SharedBottomModel, MMOEModel])
def test_multitask_source_rows_are_the_auxiliary_task(cls, frame, tmp_path):
    """With ``domain``, a source row is answered by the auxiliary tower (the same features
    scored as a target row differ); frames without the columns score target rows; the
    fitted spec (default scene included) survives save/load."""
    X, y, spec = frame
    model = cls(spec, **cls.tiny_params, seed=3).fit(X, y)
    assert model.module_.n_tasks == 2
    rows = X.iloc[:200]
    as_source = model.predict_proba(rows.assign(domain="source"))[:, 1]
    as_target = model.predict_proba(rows.assign(domain="target"))[:, 1]
    assert np.abs(as_source - as_target).max() > 1e-4
    np.testing.assert_array_equal(
        model.predict_proba(rows.drop(columns=["domain", "scene"]))[:, 1],
        model.predict_proba(rows.assign(domain="target", scene="home_feed"))[:, 1],
    )
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.feature_spec_.of_domain(SAMPLE_DOMAIN)[1].default == "home_feed"


def test_metrics_by_groups_rows_by_domain_and_scene(frame):
    X, y, _ = frame
    p = np.clip(y * 0.6 + 0.2, 0, 1)
    table = metrics_by(y, p, {"domain": X["domain"], "scene": X["scene"]})
    n = table[table.metric == "n"].set_index(["by", "group"])["value"]
    assert n[("all", "all")] == len(X)
    assert n[("domain", "source")] + n[("domain", "target")] == len(X)
    assert n["scene"].to_dict() == X["scene"].value_counts().sort_index().astype(float).to_dict()
    with pytest.raises(ValueError, match="grouping 'scene' has 3 labels for 1200 rows"):
        metrics_by(y, p, {"scene": ["a", "b", "c"]})
    seg = segment_metrics(y, p, X["scene"].to_numpy())
    assert list(seg.columns) == ["segment", "metric", "value"]
