"""Focused tests of the baselines: DCN-v2, shared-bottom, MMOE and train-on-source-then-fine-tune.

The estimator contract itself runs over the registry in test_model_contract.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.models.dcnv2 import DCNv2Model
from predictors.models.finetune import FineTuneModel
from predictors.models.mmoe import MMOEModel
from predictors.models.shared_bottom import SharedBottomModel

DOMAINS = {"src_": "source", "tgt_": "target", "coupon_": "treatment"}


def two_domain_frame(n: int = 1_500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Target rows (label y, no aux) followed by as many source rows (aux label, weight 0)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "src_spend": rng.normal(size=2 * n),
            "tgt_power": rng.normal(size=2 * n),
            "tgt_tags": ["|".join(map(str, rng.integers(0, 5, 2))) for _ in range(2 * n)],
            "coupon_type": rng.choice(["none", "red_packet"], size=2 * n),
        }
    )
    logit = 1.5 * X["src_spend"] - X["tgt_power"] + 0.5 * (X["coupon_type"] == "red_packet")
    label = (rng.random(2 * n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(np.int8)
    aux = np.where(np.arange(2 * n) >= n, label, np.nan)  # source rows: the aux label
    y = np.where(np.arange(2 * n) < n, label, 0)
    return X.assign(aux_label=aux), y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, FeatureSpec]:
    X, y = two_domain_frame()
    weight = X["aux_label"].isna().to_numpy(float)  # aux-only rows do not train the main task
    return X, y, weight, FeatureSpec.infer(X.drop(columns="aux_label"), DOMAINS)


def test_dcnv2_has_the_configured_cross_layers():
    """cross_layers sets the number of cross layers; cross_rank makes them low-rank U V^T."""
    X, y = two_domain_frame(400)
    spec = FeatureSpec.infer(X, DOMAINS)
    X = X.drop(columns="aux_label")
    full = DCNv2Model(spec, cross_layers=3, cross_rank=None, epochs=1, hidden=(8,)).fit(X, y)
    assert len(full.module_.cross.layers) == 3
    width = full.module_.embedding.n_fields * 16
    assert full.module_.cross.layers[0].weight.shape == (width, width)
    low = DCNv2Model(spec, cross_layers=2, cross_rank=4, epochs=1, hidden=(8,)).fit(X, y)
    assert len(low.module_.cross.layers) == 2
    assert low.module_.cross.layers[0][0].weight.shape == (4, width)


def test_mmoe_gates_are_distributions_per_task(data):
    """gates() gives (rows, tasks, experts) weights summing to one; two tasks with an aux label."""
    X, y, weight, spec = data
    model = MMOEModel(spec, n_experts=3, epochs=2, expert_hidden=(16,), tower_hidden=(8,))
    model.fit(X, y, sample_weight=weight)
    gates = model.gates(X.drop(columns="aux_label").iloc[:50])
    assert gates.shape == (50, 2, 3)
    np.testing.assert_allclose(gates.sum(axis=-1), 1.0, rtol=1e-6)
    assert (gates >= 0).all()
    single = MMOEModel(spec, n_experts=3, epochs=1).fit(X.drop(columns="aux_label"), y)
    assert single.gates(X.iloc[:5]).shape == (5, 1, 3)


@pytest.mark.parametrize("cls", [SharedBottomModel, MMOEModel])
def test_multitask_models_learn_both_tasks_from_aux_rows(cls, data):
    """The main head ranks the target label; the aux head learns the source rows' label."""
    X, y, weight, spec = data
    model = cls(spec, epochs=4, seed=1).fit(X, y, sample_weight=weight)
    target, source = slice(0, 1_500), slice(1_500, None)
    p = model.predict_proba(X.drop(columns="aux_label").iloc[target])[:, 1]
    assert binary_metrics(y[target], p)["auc"] > 0.75
    with torch.no_grad():
        batch = model.encoder_.encode(X.iloc[source].assign(aux_label=None))
        aux_logit = model.module_.task_logits(batch)[:, 1].numpy()
    assert binary_metrics(X["aux_label"].iloc[source].to_numpy(), aux_logit)["auc"] > 0.75


def test_aux_column_is_not_an_input(data):
    """Predictions ignore the aux label: with, without or with other values, they are identical."""
    X, y, weight, spec = data
    model = SharedBottomModel(spec, epochs=1).fit(X, y, sample_weight=weight)
    a = model.predict_proba(X)
    b = model.predict_proba(X.drop(columns="aux_label"))
    c = model.predict_proba(X.assign(aux_label=1.0))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_bad_aux_labels_are_refused(data):
    """A non-0/1 aux label names the column and row; an aux column that is a feature is refused."""
    X, y, _, spec = data
    bad = X.copy()
    bad.loc[7, "aux_label"] = 2.0
    with pytest.raises(ValueError, match=r"'aux_label' must hold 0, 1 or NaN; row 7 has 2.0"):
        MMOEModel(spec, epochs=1).fit(bad, y)
    with pytest.raises(ValueError, match="'tgt_power' is also a feature"):
        SharedBottomModel(spec, aux_column="tgt_power", epochs=1).fit(X, y)


def test_finetune_pretrains_on_source_then_fine_tunes_on_target(data):
    """history_ shows a pretraining phase on aux rows, then a fine-tuning phase on target rows."""
    X, y, weight, spec = data
    model = FineTuneModel(spec, pretrain_epochs=3, epochs=3, patience=5, hidden=(16,), seed=2)
    model.fit(X, y, sample_weight=weight)
    phases = [h["phase"] for h in model.history_]
    assert phases == ["pretrain"] * 3 + ["finetune"] * 3
    assert [h["epoch"] for h in model.history_] == [1, 2, 3, 4, 5, 6]
    pre = [h["train_loss"] for h in model.history_[:3]]
    assert pre[-1] < pre[0]  # pretraining actually learns the source label
    assert all(np.isnan(h["valid_loss"]) for h in model.history_[:3])
    assert all(np.isfinite(h["valid_loss"]) for h in model.history_[3:])
    assert 4 <= model.best_epoch_ <= 6
    p = model.predict_proba(X.drop(columns="aux_label").iloc[:1_500])[:, 1]
    assert binary_metrics(y[:1_500], p)["auc"] > 0.75


def test_finetune_without_aux_rows_is_one_phase(data):
    """Without an aux column there is nothing to pretrain on: only the fine-tune phase runs."""
    X, y, _, spec = data
    model = FineTuneModel(spec, pretrain_epochs=2, epochs=2, hidden=(8,))
    model.fit(X.drop(columns="aux_label"), y)
    assert {h["phase"] for h in model.history_} == {"finetune"}


def test_multitask_save_load_keeps_the_aux_head(data, tmp_path):
    """A model trained with an aux task reloads with both towers and predicts identically."""
    X, y, weight, spec = data
    model = SharedBottomModel(spec, epochs=1).fit(X, y, sample_weight=weight)
    model.save(tmp_path / "sb")
    again = SharedBottomModel.load(tmp_path / "sb")
    assert len(again.module_.towers) == 2
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
