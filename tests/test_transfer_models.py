"""Behaviour tests of the transfer models over the sample columns: source-only, self-train,
DANN, STAR, PLE and fine-tuning on source rows.  Each fails without its defining mechanism;
the estimator contract itself runs in test_model_contract.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from predictors.examples import DOMAINS, sampled_frame
from predictors.features import FeatureSpec
from predictors.models.dann import DANNModel
from predictors.models.finetune import FineTuneModel
from predictors.models.ple import PLEModel
from predictors.models.self_train import SelfTrainModel
from predictors.models.source_only import SourceOnlyModel
from predictors.models.star import STARModel
from predictors.torch.transfer_layers import PartitionedNorm, dann_lambda


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    X, y, _ = sampled_frame(600, seed=11)
    return X, y, FeatureSpec.infer(X, DOMAINS)


def tiny(cls, spec: FeatureSpec, **params):
    return cls(spec, **{**cls.tiny_params, **params})


@pytest.mark.parametrize(
    ("cls", "ignored"), [(SourceOnlyModel, "target"), (SelfTrainModel, "source")]
)
def test_one_domain_models_never_see_the_other_domains_labels(cls, ignored, frame):
    """Flipping every label of the other domain leaves the fitted model unchanged."""
    X, y, spec = frame
    flipped = np.where(X["domain"] == ignored, 1 - y, y)
    a = tiny(cls, spec, seed=2).fit(X, y).predict_proba(X)
    b = tiny(cls, spec, seed=2).fit(X, flipped).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = tiny(cls, spec, seed=2).fit(X, np.where(X["domain"] != ignored, 1 - y, y))
    assert np.abs(c.predict_proba(X) - a).max() > 1e-3  # its own domain's labels do count


def test_source_only_needs_source_rows(frame):
    X, y, spec = frame
    with pytest.raises(ValueError, match="source_only trains on the source-domain rows"):
        tiny(SourceOnlyModel, spec).fit(X.drop(columns="domain"), y)


def test_dann_reverses_the_domain_gradient_into_the_encoder(frame):
    """The domain loss's gradient reaches the encoder times -lambda (the classifier's own
    gradient is not reversed); lambda follows Ganin et al.'s schedule per epoch."""
    X, y, spec = frame
    model = tiny(DANNModel, spec, epochs=3, patience=5).fit(X, y)
    net = model.module_
    assert net.reverse.scale == pytest.approx(dann_lambda(2 / 3)) and dann_lambda(0.0) == 0.0
    batch = model.encoder_.encode(model.complete_frame(X.iloc[:200]))
    is_source = net.samples(batch)[0].float()

    def grads(reverse: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        net.zero_grad()
        h = net.represent(batch)
        logit = net.domain_logit(h) if reverse else net.domain_head(h).squeeze(-1)
        torch.nn.functional.binary_cross_entropy_with_logits(logit, is_source).backward()
        encoder = [p.grad.clone() for p in net.encoder.parameters()]
        return encoder, [p.grad.clone() for p in net.domain_head.parameters()]

    net.train()
    torch.manual_seed(0)
    reversed_encoder, reversed_head = grads(reverse=True)
    torch.manual_seed(0)  # the same dropout masks
    plain_encoder, plain_head = grads(reverse=False)
    for r, p in zip(reversed_encoder, plain_encoder, strict=True):
        torch.testing.assert_close(r, -net.reverse.scale * p)
    assert any(p.abs().sum() > 0 for p in plain_encoder)
    for r, p in zip(reversed_head, plain_head, strict=True):
        torch.testing.assert_close(r, p)


def test_star_scene_weights_move_only_their_scene(frame):
    """Changing one scene's star weights changes that scene's predictions and no other's."""
    X, y, spec = frame
    model = tiny(STARModel, spec).fit(X, y)
    before = model.predict_proba(X)[:, 1]
    scenes = model.module_.samples.groups
    chosen = scenes.index("search")
    with torch.no_grad():
        for w in model.module_.star.group_weight:
            w[chosen] *= 1.5
    after = model.predict_proba(X)[:, 1]
    search = (X["scene"] == "search").to_numpy()
    assert np.abs(after[search] - before[search]).min() > 0
    np.testing.assert_array_equal(after[~search], before[~search])


def test_partitioned_norm_keeps_each_scenes_statistics():
    """Training updates each scene's running statistics from its own rows only; evaluation
    normalises a row with its scene's."""
    torch.manual_seed(0)
    norm = PartitionedNorm(3, 2, momentum=1.0)
    group = torch.tensor([0] * 50 + [1] * 50)
    x = torch.cat([torch.randn(50, 3) + 5.0, torch.randn(50, 3) * 3 - 5.0])
    out = norm.train()(x, group)
    torch.testing.assert_close(out[:50].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.running_mean[0], x[:50].mean(0))
    torch.testing.assert_close(norm.running_mean[1], x[50:].mean(0))
    torch.testing.assert_close(norm.eval()(x, group), out, atol=1e-4, rtol=0)


@pytest.mark.parametrize("levels", [1, 2])
def test_ple_task_experts_get_no_gradient_from_another_tasks_loss(levels, frame):
    """A loss on task k's tower reaches task k's experts of the last level and the shared
    ones, never another task's."""
    X, y, spec = frame
    model = tiny(PLEModel, spec, n_levels=levels, epochs=1).fit(X, y)
    net = model.module_.train()
    batch = model.encoder_.encode(model.complete_frame(X.iloc[:100]))
    k = net.samples.groups.index("home_feed")
    net.zero_grad()
    net.task_logits(batch)[:, k].sum().backward()
    last = net.levels[-1]

    def touched(module: torch.nn.Module) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    assert touched(last.specific[k]) and touched(last.shared)
    assert not any(touched(last.specific[j]) for j in range(net.n_tasks) if j != k)
    assert not any(touched(net.towers[j]) for j in range(net.n_tasks) if j != k)


def test_ple_answers_each_rows_own_scene(frame):
    X, y, spec = frame
    model = tiny(PLEModel, spec).fit(X, y)
    rows = X[X["scene"] == "search"].iloc[:50]
    moved = model.predict_proba(rows.assign(scene="home_feed"))
    assert np.abs(moved - model.predict_proba(rows)).max() > 1e-4
    unseen = model.predict_proba(rows.assign(scene="elsewhere"))  # the default scene's answer
    np.testing.assert_array_equal(unseen, moved)


def test_finetune_pretrains_on_the_source_rows(frame):
    """With a domain column and no aux label: pretraining on the source rows' labels, then
    fine-tuning on the target rows; flipping the source labels changes the model."""
    X, y, spec = frame
    model = FineTuneModel(spec, pretrain_epochs=2, epochs=2, patience=5, hidden=(16,), seed=2)
    model.fit(X, y)
    assert [h["phase"] for h in model.history_] == ["pretrain"] * 2 + ["finetune"] * 2
    flipped = np.where(X["domain"] == "source", 1 - y, y)
    again = FineTuneModel(spec, pretrain_epochs=2, epochs=2, patience=5, hidden=(16,), seed=2)
    assert np.abs(again.fit(X, flipped).predict_proba(X) - model.predict_proba(X)).max() > 1e-3


def test_finetune_stops_and_calibrates_on_the_target_rows(frame):
    """Source rows in the validation set (here with flipped labels) change neither early
    stopping nor the calibration: the one head answers for the target domain."""
    X, y, spec = frame
    train, valid = slice(0, 400), slice(400, None)
    Xv, yv = X.iloc[valid], y[valid]
    target = (Xv["domain"] == "target").to_numpy()
    flipped = np.where(target, yv, 1 - yv)

    def fit(eval_set):
        model = FineTuneModel(spec, pretrain_epochs=1, epochs=3, hidden=(16,), seed=2)
        return model.fit(X.iloc[train], y[train], eval_set=eval_set)

    a, b = fit((Xv[target], yv[target])), fit((Xv, flipped))
    assert a.calibration_ == b.calibration_ and a.best_epoch_ == b.best_epoch_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
