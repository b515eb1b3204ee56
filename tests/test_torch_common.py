"""Common ground of the torch predictors: input encoding, shared layers, the estimator base."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from predictors.examples import DOMAINS, two_domain_frame
from predictors.features import FeatureSpec, Field
from predictors.models.mlp import MLPModel
from predictors.tabular import encode_tabular, tabular_columns
from predictors.torch.base import TorchEstimator
from predictors.torch.inputs import (
    NUMERIC_BUCKETS,
    FrameEncoder,
    NumericStats,
    bucket_key,
    encode_multi,
    missing_key,
    take,
)
from predictors.torch.layers import (
    MATCH_SMOOTHING,
    MLP,
    AttentionPooling,
    CrossNetV2,
    FieldEmbedding,
    MixtureOfExperts,
    domain_present,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "src_spend": [1.0, np.nan, 3.0, np.nan],
            "src_item_seq": ["1|2|3", "", "4", np.nan],
            "tgt_power": [10.0, 20.0, 30.0, 40.0],
            "tgt_tier": ["a", "b", None, "a"],
            "coupon_type": ["none", "red", "red", "full"],
        }
    )


@pytest.fixture
def encoder(frame) -> FrameEncoder:
    spec = FeatureSpec.infer(frame, {"src_": "source", "tgt_": "target", "coupon_": "treatment"})
    return FrameEncoder.fit(spec, frame)


def test_encoder_layout_for_every_field_kind(encoder, frame):
    """Numeric -> standardised float + mask, categorical -> codes, multi -> padded dense ids."""
    batch = encoder.encode(frame)
    assert batch["src_spend"].dtype == torch.float32
    assert batch[missing_key("src_spend")].tolist() == [False, True, False, True]
    np.testing.assert_allclose(batch["src_spend"].numpy(), [-1.0, 0.0, 1.0, 0.0], atol=1e-6)
    assert batch["tgt_tier"].tolist() == [1, 2, 0, 1]  # None -> 0 (unknown)
    assert encoder.spec.fields[1].tokens == (1, 2, 3, 4)  # the tokens seen: ids 1..4
    assert batch["src_item_seq"].tolist() == [[1, 2, 3], [0, 0, 0], [4, 0, 0], [0, 0, 0]]
    assert {k: v.shape[0] for k, v in batch.items()} == dict.fromkeys(batch, 4)


def test_encoder_maps_unseen_and_out_of_range_to_unknown(encoder):
    """Unseen categories -> 0, unseen or negative tokens -> padding, NaN numeric -> masked."""
    new = pd.DataFrame(
        {
            "src_spend": [np.nan],
            "src_item_seq": ["2|99|-1|4"],
            "tgt_power": [1e9],
            "tgt_tier": ["zzz"],
            "coupon_type": ["red"],
        }
    )
    batch = encoder.encode(new)
    assert batch["src_item_seq"].tolist() == [[2, 0, 0, 4]]
    assert batch["tgt_tier"].tolist() == [0]
    assert batch["tgt_power"].item() == pytest.approx(10.0)  # clipped outlier
    assert batch[missing_key("src_spend")].tolist() == [True]


def test_multi_keeps_last_tokens_and_tolerates_empty_tokens():
    """Rows longer than the cap keep their most recent tokens; '1||2' drops the empty token."""
    f = Field("s_seq", "multi", "source", tokens=tuple(range(10)))
    out = encode_multi(f, pd.Series(["1|2|3|4|5", "7", "1||2|"]), max_tokens=3)
    assert out.tolist() == [[4, 5, 6], [8, 0, 0], [2, 3, 0]]
    with pytest.raises(ValueError, match=r"'s_seq': row 1 holds token 'x'"):
        encode_multi(f, pd.Series(["1", "2|x"]), max_tokens=3)


def test_encoder_errors_name_the_column(encoder, frame):
    """A missing column or a text value in a numeric field is refused by name."""
    with pytest.raises(ValueError, match="src_spend"):
        encoder.encode(frame.drop(columns="src_spend"))
    with pytest.raises(ValueError, match="numeric field 'tgt_power'"):
        encoder.encode(frame.assign(tgt_power=["a", "b", "c", "d"]))


def test_encoder_round_trips_through_dict(encoder, frame):
    """to_dict/from_dict keeps vocabularies and statistics, so encodings are identical."""
    again = FrameEncoder.from_dict(encoder.to_dict())
    a, b = encoder.encode(frame), again.encode(frame)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_numeric_buckets_follow_training_quantiles():
    """Quantile edges give equal-sized buckets, ties collapse, NaN -> 0, unseen values clamp."""
    values = np.arange(1000, dtype=np.float64)
    stats = NumericStats.of(values)
    assert len(stats.edges) == NUMERIC_BUCKETS - 1
    counts = np.bincount(stats.bucket(values), minlength=NUMERIC_BUCKETS)
    assert (
        counts.min() >= 1000 // NUMERIC_BUCKETS - 1 and counts.max() <= 1000 // NUMERIC_BUCKETS + 1
    )
    assert stats.bucket(np.array([np.nan, -1e9, 1e9])).tolist() == [0, 0, NUMERIC_BUCKETS - 1]
    tiers = NumericStats.of(np.array([0.0] * 50 + [1.0] * 30 + [2.0] * 20 + [np.nan] * 5))
    assert tiers.bucket(np.array([0.0, 1.0, 2.0])).tolist() == [0, 1, 2]  # one bucket per value
    assert NumericStats.of(np.full(3, np.nan)).edges == ()


def test_encoder_buckets_survive_the_dict_round_trip(encoder, frame):
    """Bucket edges are part of the saved description; an old description gives bucket 0."""
    batch = encoder.encode(frame)
    assert batch[bucket_key("tgt_power")].tolist() == [0, 1, 2, 3]
    assert batch[bucket_key("src_spend")].tolist() == [0, 0, 1, 0]  # NaN rows -> 0
    description = encoder.to_dict()
    assert description["numeric"]["tgt_power"]["edges"] == [20.0, 30.0, 40.0]
    for stats in description["numeric"].values():
        del stats["edges"]
    old = FrameEncoder.from_dict(description).encode(frame)
    assert old[bucket_key("tgt_power")].tolist() == [0, 0, 0, 0]


@pytest.mark.slow
def test_multi_encoding_of_large_frames():
    """500k rows with a multi field encode to the right shape (speed: see benchmarks)."""
    rng = np.random.default_rng(0)
    base = pd.Series(["|".join(map(str, rng.integers(0, 50, k))) for k in rng.integers(0, 9, 1000)])
    col = pd.concat([base] * 500, ignore_index=True)
    f = Field("t_tags", "multi", "target", tokens=tuple(range(50)))
    out = encode_multi(f, col, max_tokens=32)
    assert out.shape == (500_000, 8)


def test_field_embedding_shapes_and_missing_handling(encoder, frame):
    """(batch, fields, dim) in spec order; a missing numeric and an empty multi get learned vectors."""
    emb = FieldEmbedding(encoder.spec, 4)
    out = emb(encoder.encode(frame))
    assert out.shape == (4, 5, 4)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1, 0], emb.numeric_missing[0])  # src_spend NaN
    torch.testing.assert_close(out[1, 1], emb.multi_empty[0])  # src_item_seq empty
    with torch.no_grad():  # a numeric value's bucket vector is added to its linear term
        emb.numeric_buckets.weight[3] += 1.0  # src_spend (numeric 0), bucket 3
    moved = emb(encoder.encode(pd.DataFrame(frame.assign(src_spend=[1.0, np.nan, 1e6, 1.0]))))
    assert not torch.allclose(moved[2, 0], out[2, 0])
    assert emb.domain_index("target").tolist() == [2, 3]
    with pytest.raises(ValueError, match="'nowhere'"):
        emb.domain_index("nowhere")


def test_domain_present_flags_rows_without_a_domain(encoder, frame):
    """Rows with every source field NaN/empty are absent from the source domain."""
    batch = encoder.encode(frame)
    assert domain_present(batch, encoder.spec, "source").tolist() == [True, False, True, False]
    assert domain_present(batch, encoder.spec, "target").all()
    with pytest.raises(ValueError, match="'item'"):
        domain_present(batch, encoder.spec, "item")


def test_block_layer_shapes():
    """MLP, CrossNetV2 (full and low rank) and MMOE produce the documented shapes."""
    x = torch.randn(5, 12)  # (batch, dim)
    assert MLP(12, (8, 4), dropout=0.1).out_dim == 4
    assert MLP(12, (8,), output_dim=1)(x).shape == (5, 1)
    assert CrossNetV2(12, 3)(x).shape == (5, 12)
    assert CrossNetV2(12, 2, rank=3)(x).shape == (5, 12)
    outputs, gates = MixtureOfExperts(12, n_experts=3, n_tasks=2, expert_hidden=(6,))(x)
    assert outputs.shape == (5, 2, 6) and gates.shape == (5, 2, 3)
    torch.testing.assert_close(gates.sum(-1), torch.ones(5, 2))
    with pytest.raises(ValueError, match="dropout"):
        MLP(3, (2,), dropout=1.0)


@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_attention_pooling_masks_absent_items(kind):
    """Masked items get weight 0; an all-masked row pools to zero without NaN."""
    keys = torch.randn(3, 4, 8)  # (batch, items, dim)
    mask = torch.tensor([[True] * 4, [True, False, True, False], [False] * 4])
    pooled, weights = AttentionPooling(8, kind=kind)(keys, mask, query=torch.randn(3, 8))
    assert pooled.shape == (3, 8) and weights.shape == (3, 4)
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(weights[:2].sum(1), torch.ones(2))
    assert (weights[1, [1, 3]] == 0).all() and (weights[2] == 0).all()
    assert (pooled[2] == 0).all()


def test_invalid_params_and_weights_are_refused(encoder, frame):
    """Bad hyper-parameters or sample weights raise ValueError naming the culprit."""
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        MLPModel(encoder.spec, batch_size=0).fit(frame, y)
    with pytest.raises(ValueError, match="row 2 has -1"):
        MLPModel(encoder.spec).fit(frame, y, sample_weight=[1, 1, -1, 1])


class _ExtraLoss(MLPModel):
    """A subclass with a custom loss and epoch hook, as CSDE will have."""

    name = "extra_loss"

    def loss(self, module, batch, y, weight):
        self.calls.append(len(y))
        return super().loss(module, batch, y, weight) + 0.0 * module.embedding(batch).sum()

    def on_epoch_start(self, module, epoch):
        self.epochs_seen.append(epoch)


def test_subclass_hooks_and_eval_set(encoder, frame):
    """loss() and on_epoch_start() are called; eval_set drives early stopping history."""
    X = pd.concat([frame] * 25, ignore_index=True)
    y = np.tile([0, 1, 0, 1], 25)
    model = _ExtraLoss(encoder.spec, epochs=3, batch_size=40, patience=5)
    model.calls, model.epochs_seen = [], []
    model.fit(X, y, eval_set=(frame, [0, 1, 0, 1]))
    assert model.epochs_seen == [1, 2, 3]
    assert model.calls[:3] == [40, 40, 20]
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]
    assert all(np.isfinite(h["valid_loss"]) for h in model.history_)
    assert model.best_epoch_ in (1, 2, 3)
    assert isinstance(model, TorchEstimator)


def test_take_slices_every_tensor(encoder, frame):
    """take() selects the same rows of every tensor in a batch."""
    batch = take(encoder.encode(frame), torch.tensor([3, 0]))
    assert batch["tgt_power"].shape == (2,) and batch["src_item_seq"].shape == (2, 3)


def linked_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tgt_click_seq": ["1|1|2", "", "0|2", "2"],
            "item_category": [1.0, 1.0, 3.0, 2.0],  # 3 is no token of the sequence (tokens 0..2)
        }
    )


def test_spec_links_a_sequence_to_its_target_field():
    """targets= links a multi field to a categorical field; the link survives to_dict, and
    a bad link is refused by name; select() drops a link whose target it drops."""
    frame = linked_frame()
    domains = {"tgt_": "target", "item_": "item"}
    spec = FeatureSpec.infer(
        frame, domains, categorical=["item_category"], targets={"tgt_click_seq": "item_category"}
    )
    assert spec.fields[0].target == "item_category"
    assert FeatureSpec.from_dict(spec.fit(frame).to_dict()).fields[0].target == "item_category"
    with pytest.raises(
        ValueError, match=r"must be a categorical field.*'item_category' is numeric"
    ):
        FeatureSpec.infer(frame, domains, targets={"tgt_click_seq": "item_category"})
    with pytest.raises(ValueError, match="'tgt_click_seq' names target field 'item_category'"):
        FeatureSpec(fields=(Field("tgt_click_seq", "multi", "target", target="item_category"),))
    with pytest.raises(ValueError, match="only multi fields"):
        Field("tgt_power", "numeric", "target", target="item_category")
    target_only = spec.select(lambda f: f.domain == "target")
    assert target_only.names == ("tgt_click_seq",) and target_only.fields[0].target is None


def test_sequence_match_is_the_smoothed_log_lift():
    """match = log((hits + a) / (n + a V)) + log V; empty sequences give 0; the profile holds
    the match of every token; FieldEmbedding appends one field per link."""
    frame = linked_frame()
    spec = FeatureSpec.infer(
        frame,
        {"tgt_": "target", "item_": "item"},
        categorical=["item_category"],
        targets={"tgt_click_seq": "item_category"},
    )
    encoder = FrameEncoder.fit(spec, frame)
    batch = encoder.encode(frame)
    embedding = FieldEmbedding(encoder.spec, 4)
    match, empty = embedding.match(batch)
    v, a = 3, MATCH_SMOOTHING

    def lift(hits, n):
        return np.log((hits + a) / (n + a * v)) + np.log(v)

    expected = [lift(2, 3), 0.0, lift(0, 2), lift(1, 1)]
    np.testing.assert_allclose(match[:, 0].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert empty[:, 0].tolist() == [False, True, False, False]
    profile = embedding.match.profile(batch, 0)  # (rows, V)
    np.testing.assert_allclose(profile[0].numpy(), [lift(0, 3), lift(2, 3), lift(1, 3)], rtol=1e-6)
    np.testing.assert_allclose(profile[1].numpy(), np.zeros(v), atol=1e-6)
    assert embedding.field_names[-1] == "tgt_click_seq@item_category"
    assert embedding.domains[-1] == "target"
    assert embedding(batch).shape == (4, embedding.n_fields, 4) and embedding.n_fields == 3


def test_platt_scaling_fixes_the_validation_bias_and_survives_save_load(tmp_path):
    """(a, b) fitted on the validation rows make their mean probability the label rate (the
    score equation of a logistic fit); the ranking is unchanged; save/load keeps them."""
    rng = np.random.default_rng(0)
    n = 4_000
    x = rng.standard_normal(n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x - 2.0)))).astype(int)  # rare positives, ~15 %
    X = pd.DataFrame({"tgt_x": x})
    spec = FeatureSpec.infer(X, {"tgt_": "target"})
    fit, valid = slice(0, 3_000), slice(3_000, n)
    model = MLPModel(spec, hidden=(8,), dropout=0.5, epochs=3, lr=1e-2, seed=0)
    model.fit(X[fit], y[fit], eval_set=(X[valid], y[valid]))
    a, b = model.calibration_
    assert (a, b) != (1.0, 0.0) and a > 0
    logits = model._logits(model.module_, model.encoder_.encode(X[valid])).numpy()
    raw, calibrated = 1 / (1 + np.exp(-logits)), model.predict_proba(X[valid])[:, 1]
    assert abs(raw.mean() - y[valid].mean()) > 0.005  # the dropout-trained net is biased
    assert calibrated.mean() == pytest.approx(y[valid].mean(), abs=1e-3)
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(calibrated, kind="stable"))
    again = MLPModel.load(model.save(tmp_path / "mlp"))
    assert again.calibration_ == model.calibration_
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    # positives weighted 0: the validation rows hold one class, nothing to calibrate against
    one_class = MLPModel(spec, epochs=1, seed=0).fit(X, y, sample_weight=(y == 0).astype(float))
    assert one_class.calibration_ == (1.0, 0.0)


# ---------------------------------------------------------------------------------------
# token vocabularies: model size follows the distinct tokens, never the largest token
# ---------------------------------------------------------------------------------------


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_one_large_token_costs_one_embedding_row():
    """A lone token 6000 adds one vocabulary entry (not 5,981 rows) to every model input."""
    X, y, _ = two_domain_frame(300)
    spec = FeatureSpec.infer(X, DOMAINS)
    odd = X.assign(src_item_seq=X["src_item_seq"].where(X.index != 7, "3|6000"))
    plain = spec.fit(X).fields[2]
    fitted = spec.fit(odd).fields[2]
    assert plain.tokens == tuple(range(20))  # tokens 0..N-1: ids 1..N, as before
    assert fitted.tokens == (*range(20), 6000) and fitted.n_ids == 22
    emb = FieldEmbedding(spec.fit(odd), 4)
    assert emb.multi_bags["src_item_seq"].weight.shape == (22, 4)
    assert _parameters(emb) - _parameters(FieldEmbedding(spec.fit(X), 4)) == 4
    assert len(tabular_columns(spec.fit(odd))[0]) == len(tabular_columns(spec.fit(X))[0]) + 1
    row = encode_multi(fitted, odd["src_item_seq"].iloc[[7]], max_tokens=4)
    assert row.tolist() == [[4, 21]]
    model = MLPModel(spec, epochs=1, hidden=(8,), seed=0).fit(odd, y)
    small = MLPModel(spec, epochs=1, hidden=(8,), seed=0).fit(X, y)
    assert _parameters(model.module_) - _parameters(small.module_) == model.embedding_dim


def test_vocabulary_limit_keeps_the_most_frequent_tokens_and_an_oov_id():
    """Beyond the limit, the most frequent tokens stay (ties: smaller) and the rest share an id."""
    column = pd.Series(["5|5|9", "9|1", "5|7", "2", ""])
    spec = FeatureSpec((Field("t_tags", "multi", "target"),)).fit(
        pd.DataFrame({"t_tags": column}), vocabulary_limit=2
    )
    f = spec.fields[0]
    assert (f.tokens, f.oov, f.n_ids) == ((5, 9), True, 4)
    assert encode_multi(f, column, max_tokens=3).tolist() == [
        [1, 1, 2],
        [2, 3, 0],
        [1, 3, 0],
        [3, 0, 0],
        [0, 0, 0],
    ]
    table = encode_tabular(spec, pd.DataFrame({"t_tags": column}))
    assert list(table.columns) == ["t_tags__5", "t_tags__9", "t_tags__oov", "t_tags__len"]
    assert table.iloc[1].tolist() == [0.0, 0.5, 0.5, 2.0]
    again = FeatureSpec.from_dict(spec.to_dict()).fields[0]
    assert again == f
    empty = spec.fit(pd.DataFrame({"t_tags": ["", ""]})).fields[0]
    assert (empty.tokens, empty.n_ids) == ((0,), 2)  # as before: one token, log V defined
    with pytest.raises(ValueError, match="vocabulary_limit"):
        FeatureSpec((f,)).fit(pd.DataFrame({"t_tags": column}), vocabulary_limit=0)


def test_tokens_beyond_int64_are_named_not_crashed():
    """A token that no int64 holds is refused with the field, row and token (it crashed)."""
    f = Field("s_seq", "multi", "source", tokens=(1, 2))
    huge = "99999999999999999999"
    with pytest.raises(ValueError, match=rf"'s_seq': row 1 holds token '{huge}'"):
        encode_multi(f, pd.Series(["1", f"2|{huge}"]), max_tokens=3)
    with pytest.raises(ValueError, match=rf"'s_seq': row 0 holds token '{huge}'"):
        FeatureSpec((Field("s_seq", "multi", "source"),)).fit(pd.DataFrame({"s_seq": [huge]}))
    assert encode_multi(f, pd.Series(["2.0|1e0"]), max_tokens=3).tolist() == [[2, 1]]


def test_an_older_description_with_n_tokens_reads_as_tokens_0_to_n():
    """Models saved before the dense vocabulary (``n_tokens``) load with the same ids."""
    old = {"fields": [{"name": "s_seq", "kind": "multi", "domain": "source", "n_tokens": 4}]}
    f = FeatureSpec.from_dict({**old, "fitted": True}).fields[0]
    assert (f.tokens, f.oov) == ((0, 1, 2, 3), False)
    assert f.token_ids(np.array([0, 3, 4, -1])).tolist() == [1, 4, 0, 0]
    with pytest.raises(ValueError, match="strictly increasing"):
        Field("s_seq", "multi", "source", tokens=(2, 1))
