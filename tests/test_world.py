"""Tests of the simulated growth world (growth.world)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from growth.data.schema import LIFECYCLES, TABLES
from growth.world import World, WorldConfig, generate_world, load_scenario
from growth.world._sampling import join_tokens

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = REPO_ROOT / "data" / "scenarios"


@pytest.fixture(scope="module")
def world() -> World:
    """A small world shared by the read-only tests of this module."""
    return generate_world(WorldConfig(n_users=3_000, n_items=500, seed=5))


def _option(world: World, option_id: str) -> int:
    return world.option_ids.index(option_id)


def test_same_seed_same_dataset_and_different_seed_differs() -> None:
    """Generation is deterministic given the seed, and the seed matters."""
    cfg = WorldConfig(n_users=800, n_items=200, seed=3)
    a, b = generate_world(cfg).dataset, generate_world(cfg).dataset
    for name, table in a.tables().items():
        pd.testing.assert_frame_equal(table, b.tables()[name], obj=name)
    c = generate_world(cfg.model_copy(update={"seed": 4})).dataset
    assert not a.users.equals(c.users)
    assert not a.exposures.equals(c.exposures)


def test_every_table_matches_the_schema(world: World) -> None:
    """All nine tables are present and pass growth.data.validation and the schema's columns."""
    from growth.data.validation import validate_dataset

    tables = world.dataset.tables()
    assert set(tables) == set(TABLES)
    validate_dataset(world.dataset)
    for name, schema in TABLES.items():
        missing = set(schema.column_names) - set(tables[name].columns)
        assert not missing, f"{name} lacks {missing}"
    users = world.dataset.users
    assert any(c.startswith("src_cat_share_") for c in users.columns)
    for col in ("tgt_purchase_power", "tgt_user_tags", "tgt_click_seq", "tgt_days_since_visit"):
        assert col in users.columns
    seqs = users["tgt_click_seq"].astype(str)
    tokens = seqs[seqs != ""].str.split("|").explode().astype(int)
    assert tokens.between(0, world.config.n_categories - 1).all()
    assert world.dataset.coupons["option_id"].tolist() == world.option_ids
    assert world.option_ids[0] == "none" and len(world.option_ids) == 7


def test_lifecycle_shares_and_feature_availability(world: World) -> None:
    """Lifecycle shares follow the config; target features exist only where the segment has them."""
    users = world.dataset.users
    shares = users["lifecycle"].value_counts(normalize=True)
    for seg in LIFECYCLES:
        assert abs(shares[seg] - world.config.lifecycle_shares[seg]) < 0.03, seg
    by = {seg: users[users["lifecycle"] == seg] for seg in LIFECYCLES}
    pot = by["potential"]
    assert pot["tgt_purchase_power"].isna().all() and pot["tgt_days_since_visit"].isna().all()
    assert (pot["tgt_click_seq"] == "").all() and (pot["tgt_user_tags"] == "").all()
    new = by["new"]
    assert (new["tgt_click_seq"] == "").all() and new["tgt_purchase_power"].isna().all()
    assert new["tgt_days_since_visit"].between(0, 14).all()
    act, lost = by["active"], by["lost"]
    assert (act["tgt_click_seq"] != "").all() and act["tgt_purchase_power"].notna().all()
    seq_len = lambda df: df["tgt_click_seq"].str.count(r"\|") + 1  # noqa: E731
    assert seq_len(act).mean() > 2 * seq_len(lost).mean()
    assert lost["tgt_days_since_visit"].min() > act["tgt_days_since_visit"].median()
    has_src = users["has_source"].mean()
    assert abs(has_src - 0.85) < 0.03
    assert users.loc[~users["has_source"], "src_spend_level"].isna().all()


def test_exposure_log_is_a_randomised_trial_with_plausible_rates(world: World) -> None:
    """Target exposures: ~6 per user, uniform treatments, positive rate ~10%, labels in every
    segment."""
    exp = world.dataset.exposures.query("domain == 'target'")
    n = world.config.n_users
    assert 5.0 < len(exp) / n < 7.0
    # ~10% by default; the exact rate moves with the seed's category prices and centroids.
    assert 0.05 < exp["label"].mean() < 0.18
    shares = exp["treatment"].value_counts(normalize=True)
    assert set(shares.index) == set(world.option_ids)
    assert (shares - 1 / 7).abs().max() < 0.02
    seg = exp.merge(world.dataset.users[["user_id", "lifecycle"]], on="user_id")
    assert (seg.groupby("lifecycle")["label"].sum() > 0).all()
    per_user = seg.groupby("lifecycle").size() / world.dataset.users["lifecycle"].value_counts()
    assert per_user["active"] > per_user["lost"] > per_user["new"]
    assert exp.loc[exp["label"] == 1, "order_value"].gt(0).all()
    assert exp.loc[exp["label"] == 0, "order_value"].isna().all()
    assert exp["timestamp"].max() < pd.Timestamp(world.config.end_timestamp())


def test_source_features_alone_rank_new_users_conversions() -> None:
    """A LightGBM on source features only ranks new users' exposure labels with AUC > 0.6."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    w = generate_world(WorldConfig(n_users=30_000, seed=1))
    users = w.dataset.users
    src = [c for c in users.columns if c.startswith("src_")]
    target = w.dataset.exposures.query("domain == 'target'")
    df = target.merge(users[["user_id", "lifecycle", *src]], on="user_id")
    df = df[df["lifecycle"] == "new"]
    train = (df["user_id"] % 4 != 0).to_numpy()
    model = lgb.LGBMClassifier(
        n_estimators=100,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        verbose=-1,
        n_jobs=1,
    )
    model.fit(df.loc[train, src], df.loc[train, "label"])
    auc = roc_auc_score(df.loc[~train, "label"], model.predict_proba(df.loc[~train, src])[:, 1])
    assert auc > 0.6, auc


def test_coupon_uplift_positive_and_larger_for_price_sensitive_users(world: World) -> None:
    """Mean true uplift is positive per coupon and larger in the top price-sensitivity quartile."""
    truth = world.coupon_truth()
    assert (truth.value >= -1e-12).all()
    assert (truth.value.mean(axis=0) > 0).all()
    ps = world.users.price_sensitivity
    lo, hi = np.quantile(ps, [0.25, 0.75])
    top, bottom = truth.value[ps >= hi], truth.value[ps <= lo]
    assert top.mean() > 1.5 * bottom.mean()
    red_packets = [_option(world, "rp_3") - 1, _option(world, "rp_8") - 1]
    assert (top[:, red_packets].mean(axis=0) > bottom[:, red_packets].mean(axis=0)).all()
    # On one item, the red packet's logit effect rises with the user's price sensitivity.
    users = np.arange(world.config.n_users)
    item = np.full(users.shape, int(world.candidates[0, 0]))
    effect = world.conversion.coupon_effect(users, item, np.full(users.shape, red_packets[1] + 1))
    assert np.corrcoef(world.users.price_sensitivity, effect)[0, 1] > 0.5


def test_new_and_lost_users_react_more_than_active(world: World) -> None:
    """For the same item and coupon, new and lost users' logit uplift exceeds active users'."""
    lc = world.dataset.users["lifecycle"].to_numpy()
    rp8 = _option(world, "rp_8")
    item = np.zeros(world.config.n_users, dtype=np.int64)
    users = np.arange(world.config.n_users)
    effect = world.conversion.coupon_effect(users, item, np.full_like(item, rp8))
    per_unit = effect / (0.2 + world.users.price_sensitivity)  # remove price sensitivity
    per_unit /= np.log1p(5.0 * np.minimum(8.0 / world.conversion.basket(users, item), 1.0))
    assert per_unit[lc == "new"].min() > per_unit[lc == "active"].max()
    assert per_unit[lc == "lost"].min() > per_unit[lc == "active"].max()


def test_full_reduction_has_no_effect_below_threshold(world: World) -> None:
    """fr_100_25 leaves p unchanged when the basket is below 100 and raises it above."""
    fr = _option(world, "fr_100_25")
    users = np.repeat(np.arange(300), world.config.n_items)
    items = np.tile(np.arange(world.config.n_items), 300)
    basket = world.conversion.basket(users, items)
    p0 = world.conversion_prob(users, items, 0)
    p1 = world.conversion_prob(users, items, fr)
    below = basket < 100.0
    assert below.any() and (~below).any()
    np.testing.assert_array_equal(p1[below], p0[below])
    assert (p1[~below] > p0[~below]).all()


def test_merchant_coupon_only_works_on_its_merchant(world: World) -> None:
    """merchant_0_10 raises p only on merchant 0's items."""
    m0 = _option(world, "merchant_0_10")
    users = np.repeat(np.arange(200), world.config.n_items)
    items = np.tile(np.arange(world.config.n_items), 200)
    own = world.items.merchant[items] == 0
    assert own.any() and (~own).any()
    p0 = world.conversion_prob(users, items, 0)
    p1 = world.conversion_prob(users, items, m0)
    np.testing.assert_array_equal(p1[~own], p0[~own])
    assert (p1[own] > p0[own]).all()


def test_coupon_truth_is_the_mean_over_the_feed(world: World) -> None:
    """truth.conversion equals the mean of p over the user's candidates; subsets agree."""
    truth = world.coupon_truth()
    ids = np.array([4, 17, 2_999])
    sub = world.coupon_truth(ids)
    np.testing.assert_allclose(sub.conversion, truth.conversion[ids])
    cand = world.candidates[ids]  # (3, F)
    for k in range(len(world.option_ids)):
        p = world.conversion_prob(ids[:, None], cand, k).mean(axis=1)
        np.testing.assert_allclose(truth.conversion[ids, k], p)
    assert (truth.redemption[:, 0] == 0).all() and (truth.cost[:, 0] == 0).all()
    assert (truth.redemption <= truth.conversion + 1e-12).all()
    merchant_cols = [_option(world, "merchant_0_10"), _option(world, "merchant_1_15")]
    assert (truth.platform_cost[:, merchant_cols] == 0).all()
    with pytest.raises(ValueError, match="user_ids"):
        world.coupon_truth(np.array([world.config.n_users]))


def test_score_coupon_plan(world: World) -> None:
    """The all-none plan (-1) spends nothing; an all-rp_8 plan spends and gains conversions."""
    n = world.config.n_users
    none = world.score_coupon_plan(np.full(n, -1, dtype=np.int64))
    assert none["spend"] == 0.0 and none["incremental_conversions"] == 0.0
    assert none["conversions"] > 0
    rp8 = world.score_coupon_plan(np.full(n, _option(world, "rp_8") - 1, dtype=np.int64))
    assert rp8["spend"] > 0 and rp8["incremental_conversions"] > 0
    assert rp8["gmv"] > none["gmv"]
    with pytest.raises(ValueError, match="choice"):
        world.score_coupon_plan(np.full(n - 1, -1, dtype=np.int64))
    with pytest.raises(ValueError, match="choice"):
        world.score_coupon_plan(np.full(n, 6, dtype=np.int64))  # 6 real coupons: 0..5
    with pytest.raises(ValueError, match="choice"):
        world.score_coupon_plan(np.full(n, -2, dtype=np.int64))


def test_world_scores_an_optimizer_plan_in_its_encoding(world: World) -> None:
    """An allocate() plan (-1 = none, k = k-th coupon) is scored on the coupon it names."""
    import math

    from growth.campaigns.coupons import true_coupon_decision
    from optimizers.coupons import allocate

    truth = true_coupon_decision(world)
    # no budget and positive value: every user gets a coupon, so no -1 hides an offset
    everyone = allocate(np.abs(truth.value) + 1e-6, truth.cost, math.inf, method="lagrangian")
    some = allocate(truth.value, truth.cost, 0.2 * float(truth.cost.min(axis=1).sum()))
    assert (everyone.choice >= 0).all() and (some.choice == -1).any()
    for choice in (everyone.choice, some.choice):
        scored = world.score_coupon_plan(choice)
        expected = truth.evaluate(choice)
        for key in ("conversions", "incremental_conversions"):
            assert scored[key] == pytest.approx(expected[key], rel=1e-12), key
        assert scored["platform_spend"] == pytest.approx(expected["platform_spend"], rel=1e-12)


def test_install_curves_saturate_and_s_shaped_are_convex_at_low_spend(world: World) -> None:
    """Marginal installs fall at high spend; S-shaped curves are convex at low spend."""
    ct = world.channel_truth
    assert ct.s_shaped.any() and (~ct.s_shaped).any()
    assert ((ct.alpha >= 0.6) & (ct.alpha <= 3.0)).all()
    k = ct.k
    marginal = lambda s: ct.installs(s + 1.0) - ct.installs(s)  # noqa: E731
    assert (marginal(4 * k) < marginal(2 * k)).all()
    assert (marginal(8 * k) < marginal(4 * k)).all()
    low = 0.1 * k
    s_idx = ct.s_shaped
    assert (marginal(2 * low)[s_idx] > marginal(low)[s_idx]).all()
    assert (marginal(2 * low)[~s_idx] <= marginal(low)[~s_idx]).all()
    exp = ct.expected(k)
    np.testing.assert_allclose(exp["installs"], ct.vmax / 2)
    assert (exp["retained"] <= exp["logins"]).all() and (exp["logins"] <= exp["installs"]).all()
    hist = world.dataset.channel_history
    assert hist["date"].nunique() >= 90
    assert (hist["logins"] <= hist["installs"]).all() and (hist["retained"] <= hist["logins"]).all()
    with pytest.raises(ValueError, match="spend"):
        ct.expected(np.ones(ct.n_channels + 1))


def test_push_open_prob_decays_with_prior_pushes(world: World) -> None:
    """Open probability falls by fatigue_decay per earlier push that day, in truth and in the log."""
    users = np.arange(100)
    msg = world.push.state.candidates[users, 0]
    p = np.stack([world.open_prob(users, msg, 20, k) for k in range(4)])
    np.testing.assert_allclose(p[1:] / p[:-1], world.config.fatigue_decay)
    cand = world.push_candidates()
    assert list(cand.columns) == ["user_id", "message_id", "industry", "relevance"]
    assert len(cand) == world.config.n_users * world.config.push_candidates_per_user
    assert cand["relevance"].between(0, 1).all()
    log = world.dataset.push_log
    rate = log.groupby(log["prior_pushes_today"].clip(upper=1))["opened"].mean()
    assert rate[0] > rate[1]
    # prior_pushes_today counts the user's earlier pushes on the same calendar day
    day = log["timestamp"].dt.floor("D")
    recount = log.sort_values("timestamp").groupby([log["user_id"], day]).cumcount()
    assert (recount.sort_index() == log["prior_pushes_today"]).all()


def test_open_prob_is_higher_at_the_users_active_hours(world: World) -> None:
    """A user's open probability peaks at their most active hour."""
    users = np.arange(50)
    msg = world.push.state.candidates[users, 0]
    best = world.users.hour_profile[users].argmax(axis=1)
    worst = world.users.hour_profile[users].argmin(axis=1)
    assert (world.open_prob(users, msg, best, 0) > world.open_prob(users, msg, worst, 0)).all()


def test_logged_impressions_fall_in_the_users_active_hours(world: World) -> None:
    """App activity is timed by the same hour profile as push opens, in both apps: at the
    logged hours a user's profile is well above its 1/24 average (uniform hours would give 1),
    and every impression stays inside the exposure window."""
    ex = world.dataset.exposures
    end = pd.Timestamp(world.config.end_timestamp())
    assert ex["timestamp"].max() < end
    assert ex["timestamp"].min() >= end - pd.Timedelta(days=world.config.exposure_days)
    for domain, rows in ex.groupby("domain"):
        hour = rows["timestamp"].dt.hour.to_numpy()
        share = 24 * world.users.hour_profile[rows["user_id"].to_numpy(), hour]
        assert share.mean() > 1.5, (domain, share.mean())


def test_scenario_files_load_and_bad_config_is_rejected() -> None:
    """The shipped scenarios parse; unknown keys and bad lifecycle shares raise naming the key."""
    sizes = {p.stem: WorldConfig.from_toml(p).n_users for p in SCENARIOS.glob("*.toml")}
    assert sizes["large"] == 1_000_000 and sizes["small"] < sizes["default"]
    with pytest.raises(ValidationError, match="n_userz"):
        WorldConfig(n_userz=10)  # type: ignore[call-arg]
    bad = {"potential": 0.5, "new": 0.5, "active": 0.5, "lost": 0.0}
    with pytest.raises(ValidationError, match="lifecycle_shares"):
        WorldConfig(lifecycle_shares=bad)
    with pytest.raises(ValidationError, match="n_candidates"):
        WorldConfig(n_items=20, n_categories=5, n_merchants=5, n_candidates=30)


def test_load_scenario_resolves_names_and_applies_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare scenario name is found in the data root; n_users/seed override the file."""
    by_path = WorldConfig.from_toml(SCENARIOS / "small.toml")
    assert load_scenario(SCENARIOS / "small.toml") == by_path
    monkeypatch.chdir(SCENARIOS.parents[1])  # the data root is ./data
    assert load_scenario("small") == by_path
    tuned = load_scenario("small", n_users=500, seed=9)
    assert (tuned.n_users, tuned.seed) == (500, 9)
    assert tuned == by_path.model_copy(update={"n_users": 500, "seed": 9})
    monkeypatch.setenv("GROWTH_DATA_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="unknown scenario 'small'"):
        load_scenario("small")


def test_small_scenario_generates_with_progress_bar() -> None:
    """The small scenario generates (progress bar on) with the requested sizes."""
    cfg = WorldConfig.from_toml(SCENARIOS / "small.toml", n_users=500)
    w = generate_world(cfg, progress=True)
    assert len(w.dataset.users) == 500
    assert len(w.dataset.candidates) == 500 * cfg.n_candidates
    ranks = w.dataset.candidates.groupby("user_id")["item_id"].nunique()
    assert (ranks == cfg.n_candidates).all()


def test_join_tokens_round_trip() -> None:
    """join_tokens writes '|'-joined rows, '' for empty rows."""
    out = join_tokens(np.array([3, 1, 4, 1, 5]), np.array([2, 0, 3, 0]))
    assert out.tolist() == ["3|1", "", "4|1|5", ""]
    with pytest.raises(ValueError, match="counts"):
        join_tokens(np.array([1, 2]), np.array([1]))


def test_the_world_logs_labelled_source_samples_and_three_target_scenes_one_cold(
    world: World,
) -> None:
    """Source-domain offers carry labels (both classes) on source items; the shop logs at
    least three scenes, the cold one with the fewest rows; only target rows are randomised."""
    exp, items = world.dataset.exposures, world.dataset.items
    source = exp[exp["domain"] == "source"]
    assert len(source) > 0.5 * world.config.n_users and set(source["scene"]) == {"offers"}
    assert set(source["label"]) == {0, 1} and (source["treatment"] == "none").all()
    source_items = set(items.loc[items["domain"] == "source", "item_id"])
    assert set(source["item_id"]) <= source_items and len(source_items) == 300
    users = world.dataset.users.set_index("user_id")
    assert users.loc[source["user_id"].unique(), "has_source"].all()
    target = exp[exp["domain"] == "target"]
    assert not set(target["item_id"]) & source_items
    rows = target["scene"].value_counts()
    assert len(rows) >= 3 and rows.idxmin() == "search" and rows.idxmax() == "coupon_centre"
    assert rows["search"] < 0.15 * len(target)
    assert (target.groupby("scene")["label"].nunique() == 2).all()


def test_scene_responses_share_a_part_and_differ_in_a_specific_part(world: World) -> None:
    """On the same (user, item) the scenes' true logits are strongly correlated (the shared
    part) but differ by more than a constant (the specific part); with no specific part and
    no offsets every scene answers alike."""
    rng = np.random.default_rng(0)
    user = rng.integers(0, world.config.n_users, 5_000)
    item = rng.integers(0, world.config.n_items, 5_000)
    logits = np.stack(
        [world.conversion.base_logit(user, item, np.full(5_000, s)) for s in range(3)]
    )
    corr = np.corrcoef(logits)
    assert (corr[np.triu_indices(3, 1)] > 0.7).all()
    diff = logits[1] - logits[2]  # home_feed vs search: scales 0.6 and 0.8
    assert 0.5 < diff.std() < 1.5 and abs(diff.mean() + 0.9) < 0.2  # offsets -0.4 vs +0.5
    flat = {name: {"share": s.share} for name, s in world.config.scenes.items()}
    alike = generate_world(WorldConfig(n_users=500, n_items=100, seed=5, scenes=flat))
    same = [alike.conversion.base_logit(user[:50] % 500, item[:50] % 100, s) for s in range(3)]
    np.testing.assert_allclose(same[0], same[1])
    np.testing.assert_allclose(same[0], same[2])


def test_the_coupon_truth_is_the_decision_scenes(world: World) -> None:
    """The truth the plans are scored on is the coupon scene's response, not another's."""
    truth = world.coupon_truth(np.arange(50))
    items = world.candidates[:50]
    users = np.arange(50)[:, None]
    for scene in world.scenes.names:
        p = world.conversion.prob(users, items, 0, np.full(items.shape, world.scenes.code(scene)))
        close = np.allclose(truth.conversion[:, 0], p.mean(axis=1))
        assert close == (scene == world.config.coupon_scene), scene


def test_sales_bucket_comes_from_logged_orders_not_the_hidden_popularity(world: World) -> None:
    """``sales_bucket`` is a bucket of logged pre-campaign orders: informative about the
    hidden popularity (rank correlation) but not its noise-free bucket."""
    items = world.dataset.items.query("domain == 'target'")
    truth = np.searchsorted(
        np.quantile(world.items.popularity, [0.2, 0.4, 0.6, 0.8]), world.items.popularity
    )
    logged = items["sales_bucket"].to_numpy()
    assert (logged == truth).mean() < 0.6
    assert pd.Series(logged).corr(pd.Series(world.items.popularity), method="spearman") > 0.3


def test_scene_settings_are_validated_and_read_from_a_scenario(tmp_path: Path) -> None:
    """Scenes come from ``[scenes.<name>]`` tables; the coupon scene must be one of them and
    the largest, and shares must sum to 1."""
    path = tmp_path / "scenes.toml"
    path.write_text(
        'n_users = 500\nn_items = 100\ncoupon_scene = "feed"\n'
        "[scenes.feed]\nshare = 0.7\neffect_scale = 0.5\n"
        "[scenes.search]\nshare = 0.3\nlogit_offset = 0.2\n"
    )
    cfg = load_scenario(path)
    assert list(cfg.scenes) == ["feed", "search"] and cfg.scenes["search"].logit_offset == 0.2
    assert set(generate_world(cfg).dataset.exposures["scene"]) == {"feed", "search", "offers"}
    with pytest.raises(ValidationError, match="largest share"):
        WorldConfig(coupon_scene="search")
    with pytest.raises(ValidationError, match="is not one of the scenes"):
        WorldConfig(coupon_scene="nowhere")
    with pytest.raises(ValidationError, match="sum to 1"):
        WorldConfig(scenes={"a": {"share": 0.5}}, coupon_scene="a")
