"""CDAnet: cross-supervision of the translations, the orthogonality loss, the decoupled
embeddings, the per-domain gates."""

from __future__ import annotations

import pytest
import torch

from predictors.metrics import binary_metrics
from predictors.models.cdanet import CDAnetModel

TRAINED = CDAnetModel.tiny_params | {"epochs": 6, "batch_size": 128}


@pytest.fixture(scope="module")
def fitted(sampled_rows) -> CDAnetModel:
    X, y, spec = sampled_rows
    return CDAnetModel(spec, **TRAINED, seed=0).fit(X, y)


def test_cross_supervision_teaches_the_other_tower_to_read_the_translation(sampled_rows, fitted):
    """With the translation loss (default weight 0.02) the other domain's tower predicts a
    row's own label from its translation W_k z far better than without it."""
    X, y, spec = sampled_rows
    without = CDAnetModel(spec, **TRAINED, translation_weight=0.0, seed=0).fit(X, y)
    auc_with = binary_metrics(y, fitted.translated_scores(X))["auc"]
    auc_without = binary_metrics(y, without.translated_scores(X))["auc"]
    assert auc_with > auc_without + 0.08
    assert binary_metrics(y, fitted.predict_proba(X)[:, 1])["auc"] > 0.75


def test_orthogonality_loss_drives_the_translations_apart(sampled_rows, fitted):
    """``mean((W_s^T W_t)^2)`` ends several times smaller with the orthogonality loss
    (default weight 0.1) than without it."""
    X, y, spec = sampled_rows
    without = CDAnetModel(spec, **TRAINED, orthogonality_weight=0.0, seed=0).fit(X, y)
    with torch.no_grad():
        w_t, w_s = fitted.module_.translation
        product = float((w_s.T @ w_t).pow(2).mean())
        assert float(fitted.module_.orthogonality()) == pytest.approx(product)
        assert product < 0.3 * float(without.module_.orthogonality())


def test_the_training_loss_is_its_weighted_terms(sampled_rows, fitted):
    """The loss is BCE(augmented) + BCE(own tower) + 0.02 translation + 0.1 orthogonality."""
    X, y, _ = sampled_rows
    terms = fitted.losses(X, y)
    assert terms["translation"] > 0 and terms["orthogonality"] > 0
    batch = fitted.encoder_.encode(fitted.complete_frame(X))
    with torch.no_grad():
        loss = fitted.loss(fitted.module_.eval(), batch, torch.tensor(y, dtype=torch.float32), None)
    expected = (
        terms["augmented"]
        + terms["own"]
        + 0.02 * terms["translation"]
        + 0.1 * terms["orthogonality"]
    )
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_each_domain_reads_its_own_embeddings(sampled_rows, fitted):
    """Decoupled embeddings: wiping the target tables leaves source rows' scores unchanged."""
    X, _, _ = sampled_rows
    source = X[X["domain"] == "source"]
    target = X[X["domain"] == "target"]
    before_source, before_target = (
        fitted.decision_function(source),
        fitted.decision_function(target),
    )
    table = fitted.module_.embeddings[0].categorical_table.weight  # index 0: the target domain
    saved = table.detach().clone()
    with torch.no_grad():
        table.zero_()
    try:
        assert (fitted.decision_function(source) == before_source).all()
        assert not (fitted.decision_function(target) == before_target).all()
    finally:
        with torch.no_grad():
            table.copy_(saved)
