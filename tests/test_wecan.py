"""WE-CAN: the critics' game, the per-domain gates, the per-domain loss, the Wasserstein
transfer configuration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from predictors.metrics import binary_metrics
from predictors.models.wecan import WassersteinTransferModel, WECANModel
from predictors.torch.staged import per_domain_bce
from predictors.torch.transfer_layers import wasserstein_estimate

TRAINED = {"epochs": 6, "batch_size": 128}


@pytest.fixture(scope="module")
def fitted(sampled_rows) -> WECANModel:
    X, y, spec = sampled_rows
    return WECANModel(spec, **WECANModel.tiny_params | TRAINED, seed=0).fit(X, y)


def test_encoder_lowers_what_the_critic_raises(sampled_rows):
    """On embeddings whose source rows are shifted, D_c's own updates (critic_loss) raise its
    estimate of the source/target Wasserstein distance of the shared representation; the
    encoder's updates through ``adversarial_loss`` (D_c frozen) lower it again."""
    X, y, spec = sampled_rows
    model = WECANModel(spec, **WECANModel.tiny_params | {"epochs": 1}, seed=0)
    net = model.fit(X.iloc[:300], y[:300]).module_.train()
    g = torch.Generator().manual_seed(0)
    n, fields, dim = 400, net.embedding.n_fields, net.embedding.dim
    is_source = torch.arange(n) % 2 == 0
    emb = torch.randn(n, fields, dim, generator=g) + is_source.view(-1, 1, 1).float()

    def distance() -> float:
        with torch.no_grad():
            parts = net.encode(emb, is_source)
            return float(
                wasserstein_estimate(net.d_c, parts.shared[is_source], parts.shared[~is_source])
            )

    torch.manual_seed(0)  # the gradient penalty's interpolates
    before = distance()
    critic = torch.optim.Adam(net.d_c.parameters(), lr=1e-2)
    for _ in range(30):
        with torch.no_grad():
            parts = net.encode(emb, is_source)
        critic.zero_grad()
        net.critic_loss(parts, lambda_gp=10.0).backward()
        critic.step()
    raised = distance()
    encoder = torch.optim.Adam(net.shared.parameters(), lr=1e-2)
    for _ in range(30):
        encoder.zero_grad()
        net.adversarial_loss(net.encode(emb, is_source), 1.0, 0.0).backward()
        encoder.step()
    lowered = distance()
    assert raised > before + 0.05
    assert lowered < raised - 0.5


def test_each_domain_has_its_own_gates(sampled_rows, fitted):
    """The same rows read as source rows and as target rows get different gates (separate
    weights per domain), each in (0, 1), one per embedded field."""
    X, y, _ = sampled_rows
    as_source = fitted.gate_weights(X.assign(domain="source"))
    as_target = fitted.gate_weights(X.assign(domain="target"))
    assert as_source.shape == (len(X), fitted.module_.embedding.n_fields)
    assert ((as_source > 0) & (as_source < 1)).all()
    assert np.abs(as_source - as_target).mean() > 0.01
    assert binary_metrics(y, fitted.predict_proba(X)[:, 1])["auc"] > 0.65


def test_the_loss_is_averaged_per_domain():
    """Each domain's mean log loss counts once, whatever its number of rows."""
    logit = torch.tensor([0.0, 0.0, 0.0, 2.0])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0])
    is_source = torch.tensor([False, False, False, True])
    loss = per_domain_bce(logit, y, torch.ones(4), is_source)
    target_part = torch.log(torch.tensor(2.0))  # -log sigmoid(0)
    source_part = torch.nn.functional.softplus(torch.tensor(2.0))  # -log(1 - sigmoid(2))
    assert float(loss) == pytest.approx(float((target_part + source_part) / 2), rel=1e-6)


def test_training_updates_every_critic(sampled_rows):
    """Each critic's weights move during fit: only its own steps can move them (the encoder's
    loss reads frozen copies), so without the critic steps they would keep their init."""
    X, y, spec = sampled_rows
    model = WECANModel(spec, **WECANModel.tiny_params | {"epochs": 1}, seed=0)
    model.fit(X.iloc[:300], y[:300])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # fit builds the module right after seeding the same way
        init = model.build(model.feature_spec_)
    for name in ("d_c", "d_s", "d_t"):
        trained = getattr(model.module_, name).net[0].weight
        assert not torch.equal(getattr(init, name).net[0].weight, trained), name


def test_wasserstein_transfer_is_wecan_without_gates_and_private_networks(sampled_rows):
    """The paper's comparison is a configuration: the shared encoder, D_c and the towers."""
    X, y, spec = sampled_rows
    model = WassersteinTransferModel(spec, **WECANModel.tiny_params | TRAINED, seed=0).fit(X, y)
    net = model.module_
    assert net.gates is None and net.private is None and net.d_s is None and net.d_t is None
    assert model.get_params()["gates"] is False
    assert binary_metrics(y, model.predict_proba(X)[:, 1])["auc"] > 0.65
