"""CSDE-cycle: the filled prediction, the translation losses, the fill rule, spec refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from predictors.metrics import binary_metrics, target_feature_ablation
from predictors.models.csde_cycle import CSDECycleModel

SMALL = {
    "epochs": 3,
    "stage1_epochs": 2,
    "batch_size": 256,
    "lr": 5e-3,
    "hidden": (32,),
    "gen_hidden": (32,),
    "critic_hidden": (32,),
    "embedding_dim": 8,
    "patience": 3,
}


@pytest.fixture(scope="module")
def fitted(two_domain_rows) -> CSDECycleModel:
    X, y, _, spec = two_domain_rows
    return CSDECycleModel(spec, seed=0, **SMALL).fit(X, y)


def has_source(X: pd.DataFrame) -> np.ndarray:
    return X["has_source"].astype(str).eq("True").to_numpy()


def test_filled_model_ranks_new_users(two_domain_rows, fitted):
    """Probabilities lie in [0, 1]; new users (scored through the fill) rank above chance."""
    X, y, segment, _ = two_domain_rows
    p = fitted.predict_proba(X)[:, 1]
    assert ((p >= 0) & (p <= 1)).all()
    assert binary_metrics(y, p)["auc"] > 0.7
    new = segment == "new"
    assert binary_metrics(y[new], p[new])["auc"] > 0.6


def test_cycle_loss_makes_the_translation_invertible(two_domain_rows, fitted):
    """After fit, G_ts(G_st(s)) reconstructs source embeddings far better (relative to their
    spread) than a barely trained model's generators; with lambda_cycle=0 it does not."""
    X, y, _, spec = two_domain_rows
    untrained = CSDECycleModel(spec, seed=0, **SMALL | {"epochs": 1})
    untrained.fit(X.iloc[:300], y[:300])  # builds the module; barely trains it
    rows = X.loc[has_source(X)].iloc[:2_000]

    def cycle_error(model: CSDECycleModel) -> float:
        net = model.module_.eval()
        with torch.no_grad():
            s = net.parts(model.encoder_.encode(rows)).s  # (rows, s_dim)
            error = (net.g_ts(net.g_st(s)) - s).abs().mean()
            spread = (s - s.mean(dim=0)).abs().mean()
        return float(error / spread)

    assert cycle_error(fitted) < 0.6 * cycle_error(untrained)


def test_rows_without_target_take_the_generated_fill(two_domain_rows, fitted):
    """Changing G_st's output moves new users' predictions (source, no target) and leaves
    active users' (target present) exactly as they were."""
    X, _, segment, _ = two_domain_rows
    new = X.loc[(segment == "new") & has_source(X)].iloc[:500]
    active = X.loc[(segment == "active") & has_source(X)].iloc[:500]
    with torch.no_grad():
        parts = fitted.module_.parts(fitted.encoder_.encode(new))
    assert len(new) and not parts.target_present.any() and parts.source_present.all()
    before_new, before_active = fitted.decision_function(new), fitted.decision_function(active)
    last = fitted.module_.g_st.net[-1]
    saved = last.weight.clone()
    with torch.no_grad():
        last.weight.zero_()
    try:
        after_new, after_active = fitted.decision_function(new), fitted.decision_function(active)
    finally:
        with torch.no_grad():
            last.weight.copy_(saved)
    assert np.abs(after_new - before_new).max() > 1e-3
    np.testing.assert_array_equal(after_active, before_active)


def test_spec_without_source_fields_is_refused_by_name(two_domain_rows):
    """A spec without domain 'source' raises ValueError naming the domain."""
    X, y, _, spec = two_domain_rows
    target_only = spec.select(lambda f: f.domain != "source")
    with pytest.raises(ValueError, match="'source'"):
        CSDECycleModel(target_only, epochs=1).fit(X.iloc[:200], y[:200])


def test_target_feature_ablation_scores_real_removed_and_generated(two_domain_rows, fitted):
    """The same model on active users with source history: real target fields score as
    predict_proba, generated ones as the rows without target fields (the fill), removed ones
    without the fill; the real fields rank best."""
    X, y, segment, _ = two_domain_rows
    rows = np.flatnonzero((segment == "active") & has_source(X))[:3_000]
    active, labels = X.iloc[rows], y[rows]
    table = target_feature_ablation(fitted, active, labels)
    assert list(table.index) == ["real", "removed", "generated"]
    real = fitted.target_feature_scores(active, "real")
    np.testing.assert_allclose(real, fitted.predict_proba(active)[:, 1])
    blank = {f.name: np.nan if f.kind == "numeric" else None for f in fitted.module_.target_fields}
    generated = fitted.target_feature_scores(active, "generated")
    np.testing.assert_allclose(generated, fitted.predict_proba(active.assign(**blank))[:, 1])
    removed = fitted.target_feature_scores(active, "removed")
    assert np.abs(removed - generated).max() > 1e-3
    assert table.loc["real", "auc"] > table.loc["removed", "auc"]
    with pytest.raises(ValueError, match="'real', 'removed' or 'generated'"):
        fitted.target_feature_scores(active, "imagined")
