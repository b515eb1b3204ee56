"""CSDE: both similarity losses, the domain attention and its masks, the stage schedule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from predictors.base import NotFittedError
from predictors.examples import DOMAINS, sampled_frame, two_domain_example
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.models.csde import CSDEModel

SMALL = {
    "epochs": 3,
    "stage1_epochs": 2,
    "batch_size": 256,
    "lr": 5e-3,
    "hidden": (32,),
    "tower_hidden": (32,),
    "user_dim": 16,
    "embedding_dim": 8,
    "patience": 3,
}


@pytest.fixture(scope="module")
def fitted(two_domain_rows) -> CSDEModel:
    X, y, _, spec = two_domain_rows
    return CSDEModel(spec, similarity="l2", seed=0, **SMALL).fit(X, y)


def test_l2_model_ranks_conversions_in_every_segment(two_domain_rows, fitted):
    """The L2 variant learns: AUC well above chance overall and for new users."""
    X, y, segment, _ = two_domain_rows
    p = fitted.predict_proba(X)[:, 1]
    assert binary_metrics(y, p)["auc"] > 0.7
    new = segment == "new"
    assert binary_metrics(y[new], p[new])["auc"] > 0.65


def test_adversarial_similarity_with_sum_pooling_fits(two_domain_rows):
    """similarity='adversarial' (+ pooling='sum', no field skip) fits, owns a discriminator,
    keeps the masks."""
    X, y, _, spec = two_domain_rows
    params = SMALL | {"similarity": "adversarial", "pooling": "sum", "field_skip": False}
    model = CSDEModel(spec, seed=0, **params).fit(X, y)
    assert model.module_.discriminator is not None
    p = model.predict_proba(X)[:, 1]
    assert np.isfinite(p).all()
    assert binary_metrics(y, p)["auc"] > 0.65
    no_source = X["has_source"].astype(str).eq("False").to_numpy()
    w = model.attention_weights(X)
    assert (w.loc[no_source, ["source", "csde"]].to_numpy() == 0).all()


def test_field_skip_feeds_the_field_embeddings_to_the_head(two_domain_rows, fitted):
    """field_skip=True (default) widens the head by every target and source field's embedding;
    the skip path carries signal: zeroing its weights changes the predictions."""
    X, _, _, spec = two_domain_rows
    net = fitted.module_
    n_fields = len(spec.of_domain("target")) + len(spec.of_domain("source"))
    first = net.head.net[0]
    skip = slice(first.in_features - n_fields * SMALL["embedding_dim"], first.in_features)
    before = fitted.decision_function(X.iloc[:500])
    saved = first.weight[:, skip].clone()
    with torch.no_grad():
        first.weight[:, skip] = 0.0
    try:
        after = fitted.decision_function(X.iloc[:500])
    finally:
        with torch.no_grad():
            first.weight[:, skip] = saved
    assert net.field_skip and np.abs(after - before).max() > 1e-3


def test_attention_weights_sum_to_one_and_missing_domains_get_zero(two_domain_rows, fitted):
    """Per row the weights sum to 1; no source -> source and csde 0; no target history -> target 0."""
    X, _, segment, _ = two_domain_rows
    w = fitted.attention_weights(X)
    assert list(w.columns) == ["target", "source", "csde"]
    assert w.index.equals(X.index)
    no_source = X["has_source"].astype(str).eq("False").to_numpy()
    no_target = np.isin(segment, ["new", "potential"])  # at most days_since_visit is known
    nothing = no_source & no_target
    assert no_source.any() and nothing.any() and (~no_source & no_target).any()
    np.testing.assert_allclose(w[~nothing].sum(axis=1), 1.0, atol=1e-6)
    assert (w[nothing].to_numpy() == 0).all()
    assert (w.loc[no_source, ["source", "csde"]].to_numpy() == 0).all()
    assert (w.loc[no_target, "target"] == 0).all()
    assert (w.loc[~no_target & ~no_source].to_numpy() > 0).all()


def test_new_users_weigh_the_csde_embedding_more_than_active_users(two_domain_rows, fitted):
    """Domain attention: the generated embedding counts more for new users than for active ones."""
    X, _, segment, _ = two_domain_rows
    w = fitted.attention_weights(X)
    has_source = X["has_source"].astype(str).eq("True").to_numpy()
    new = w.loc[(segment == "new") & has_source, "csde"].mean()
    active = w.loc[(segment == "active") & has_source, "csde"].mean()
    assert new > active + 0.05


def test_fit_records_an_attention_summary(two_domain_rows, fitted):
    """attention_ holds mean weights by domains present, with row counts adding up."""
    X, _, _, _ = two_domain_rows
    table = fitted.attention_
    assert list(table.columns) == ["target", "source", "csde", "n"]
    assert table.loc["all", "n"] == len(X)
    assert table.drop(index="all")["n"].sum() == len(X)
    assert table.loc["target+source", ["target", "source", "csde"]].sum() == pytest.approx(1.0)


def test_generator_is_frozen_after_stage_one(two_domain_rows):
    """Epochs after stage1_epochs leave the generator's weights untouched (stage 2 only)."""
    X, y, _, spec = two_domain_rows
    X, y = X.iloc[:3_000], y[:3_000]
    params = SMALL | {"epochs": 1, "stage1_epochs": 1, "validation_fraction": 0.0}
    one = CSDEModel(spec, seed=5, **params).fit(X, y)
    two = CSDEModel(spec, seed=5, **params | {"epochs": 2}).fit(X, y)
    gen_one, gen_two = one.module_.generator.state_dict(), two.module_.generator.state_dict()
    assert all(torch.equal(gen_one[k], gen_two[k]) for k in gen_one)
    head_one, head_two = one.module_.head.state_dict(), two.module_.head.state_dict()
    assert not all(torch.equal(head_one[k], head_two[k]) for k in head_one)


def test_save_load_round_trip_keeps_predictions_and_attention(two_domain_rows, fitted, tmp_path):
    """A reloaded model gives identical probabilities and attention weights."""
    X, _, _, _ = two_domain_rows
    again = CSDEModel.load(fitted.save(tmp_path / "csde"))
    np.testing.assert_array_equal(fitted.predict_proba(X), again.predict_proba(X))
    pd.testing.assert_frame_equal(fitted.attention_weights(X), again.attention_weights(X))


def test_bad_inputs_are_refused_by_name(two_domain_rows):
    """Unknown similarity / no source domain: ValueError by name; unfitted: NotFittedError."""
    X, y, _, spec = two_domain_rows
    with pytest.raises(ValueError, match="similarity"):
        CSDEModel(spec, similarity="cosine").fit(X.iloc[:200], y[:200])
    target_only = spec.select(lambda f: f.domain != "source")
    with pytest.raises(ValueError, match="'source'"):
        CSDEModel(target_only, epochs=1).fit(X.iloc[:200], y[:200])
    with pytest.raises(NotFittedError, match="call fit"):
        CSDEModel(spec).attention_weights(X.iloc[:10])


def test_generator_learns_the_click_profile_of_users_with_both_domains(two_domain_rows):
    """Stage 1 fits the generated click profile to the real one (active users with source
    history); a new user's generated match then differs across item categories."""
    X, y, segment, spec = two_domain_rows
    assert any(f.target == "item_category" for f in spec.fields)  # tgt_click_seq is linked
    untrained = CSDEModel(spec, seed=0, **SMALL | {"epochs": 1})
    untrained.fit(X.iloc[:300], y[:300])  # builds the module; barely trains it
    trained = CSDEModel(spec, seed=0, **SMALL).fit(X, y)
    paired = (segment == "active") & X["has_source"].to_numpy(bool)
    rows = X.loc[paired].iloc[:2_000]

    def profile_error(model: CSDEModel) -> float:
        with torch.no_grad():
            parts = model.module_.eval().parts(model.encoder_.encode(rows), train_generator=True)
        return float((parts.r_gen - parts.r_tgt).pow(2).mean())

    assert trained.module_.generator.out_dim == SMALL["user_dim"] + 20  # [e_gen, 20 categories]
    assert profile_error(trained) < 0.8 * profile_error(untrained)
    new_rows = X.loc[(segment == "new") & X["has_source"].to_numpy(bool)].iloc[:500]
    with torch.no_grad():
        m_gen = trained.module_.parts(trained.encoder_.encode(new_rows)).m_gen
    assert m_gen.shape == (len(new_rows), 1, SMALL["embedding_dim"])
    assert float(m_gen.std(dim=0).mean()) > 0.0


def test_labelled_source_rows_train_the_source_tower_through_their_own_head():
    """Source rows' loss reaches the source tower through the source head and never the
    target head; the source head scores source rows and only them."""
    X, y, _ = sampled_frame(600, seed=1)
    model = CSDEModel(FeatureSpec.infer(X, DOMAINS), **CSDEModel.tiny_params, seed=0).fit(X, y)
    net = model.module_.train()
    source = (X["domain"] == "source").to_numpy()
    net.stage1 = False
    batch = model.encoder_.encode(model.complete_frame(X[source]))
    net.zero_grad()
    model.loss(net, batch, torch.tensor(y[source], dtype=torch.float32), None).backward()
    assert any(p.grad.abs().sum() > 0 for p in net.source_tower.parameters())
    assert all(p.grad is None or not p.grad.any() for p in net.head.parameters())
    before = model.decision_function(X)
    last = net.source_head.net[-1]
    with torch.no_grad():
        last.bias += 1.0
    try:
        moved = model.decision_function(X) != before
    finally:
        with torch.no_grad():
            last.bias -= 1.0
    np.testing.assert_array_equal(moved, source)
    # a batch of target rows alone (scoring) skips the source head: the same answers
    target_alone = model.decision_function(X[~source])
    np.testing.assert_allclose(target_alone, before[~source], rtol=1e-6, atol=1e-6)


def test_variants_of_a_row_score_as_the_rows_themselves_with_the_user_side_run_once(
    monkeypatch,
):
    """The grouped scorer marks a base row's coupon variants; CSDE then runs everything but
    the treatment's part of the head once per base row, and scores as the joined rows do."""
    X, y, spec = two_domain_example(600)
    model = CSDEModel(spec, seed=0, **SMALL).fit(X, y)
    assert model.module_.variant_fields == {"coupon_type", "coupon_face"}
    users = X.drop(columns=["coupon_type", "coupon_face"])
    base = model.grouped_scorer(users, ["coupon_type", "coupon_face"]).rows(
        np.arange(len(X)), X[["coupon_type", "coupon_face"]]
    )
    arms = [("none", 0.0), ("red_packet", 5.0), ("full_reduction", 10.0)]
    rows = np.repeat(np.arange(len(X)), len(arms))
    replaced = pd.DataFrame(arms * len(X), columns=["coupon_type", "coupon_face"])
    grouped = []
    real = type(model.module_)._variant_logits

    def spy(net, batch, variants):
        grouped.append((len(variants.first), len(variants.inverse)))
        return real(net, batch, variants)

    monkeypatch.setattr(type(model.module_), "_variant_logits", spy)
    scores = base.predict_variants(rows, replaced)
    expected = model.predict_proba(X.iloc[rows].reset_index(drop=True).assign(**replaced))[:, 1]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    assert sum(g for g, _ in grouped) == len(X) and sum(n for _, n in grouped) == len(rows)
    # a variant in a field the user side reads is scored row by row, and as the rows
    other = pd.DataFrame({"tgt_power": np.full(len(rows), 450.0)})
    partial = model.grouped_scorer(users.drop(columns="tgt_power"), ["tgt_power"])
    whole = partial.rows(np.arange(len(X)), X[["coupon_type", "coupon_face", "tgt_power"]])
    grouped.clear()
    moved = X.iloc[rows].reset_index(drop=True).assign(tgt_power=450.0)
    np.testing.assert_allclose(
        whole.predict_variants(rows, other), model.predict_proba(moved)[:, 1], rtol=1e-5
    )
    assert grouped == []
