"""A coupon plan's off-policy value (campaigns/coupons/value.py) and auto's choice by it (choice.py)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from randomised_logs import randomised_log

from growth.campaigns.coupons.choice import Candidate, choose_plan
from growth.campaigns.coupons.value import (
    VALUE,
    HoldoutLog,
    cross_fitted_value,
    estimate_plan,
    user_arms,
    value_difference,
    value_differences,
)

OPTIONS = ["none", "good", "bad"]  # coupons-table order


def constructed_log(
    seed: int = 0, users: int = 3_000, rows_per_user: int = 3
) -> tuple[HoldoutLog, np.ndarray]:
    """A randomised log where 'good' lifts conversion by 0.15 x and 'bad' by nothing."""
    rng = np.random.default_rng(seed)
    x = rng.random(users)
    user = np.repeat(np.arange(users), rows_per_user)
    arm = rng.integers(0, 3, len(user))
    true = np.column_stack([np.full(users, 0.1), 0.1 + 0.15 * x, np.full(users, 0.1)])[user]
    y = (rng.random(len(user)) < true[np.arange(len(user)), arm]).astype(float)
    flattering = true.copy()
    flattering[:, 2] = 0.3  # a model that believes 'bad' is the best coupon
    log = randomised_log(user, np.full(len(user), "active"), arm, y, flattering, OPTIONS)
    object.__setattr__(log, "x", x)  # the users' feature, for the fake candidates
    return log, x


def fake_candidate(
    name: str, choice: np.ndarray, log: HoldoutLog, logloss: float = 0.3
) -> Candidate:
    """A candidate with only what the choice reads: its name and holdout log loss, its
    plan's options and predicted values (the flattering model's), its log."""
    x = log.x
    value = np.column_stack([0.15 * x, np.full(len(x), 0.2)])  # (users, plan options)
    decision = SimpleNamespace(option_ids=OPTIONS, value=value)  # 0, 1 = 'good', 'bad'
    plan = SimpleNamespace(campaign=SimpleNamespace(decision=decision), choice=choice)
    metrics = pd.DataFrame(
        {"model": [name], "segment": ["all"], "metric": ["logloss"], "value": [logloss]}
    )
    models = SimpleNamespace(predictor=name, metrics=metrics)
    return Candidate(models, decision, plan, log, None)  # type: ignore[arg-type]


def test_user_arms_map_plan_options_to_the_coupons_table():
    """Plan option k is the decision's option k + 1, found by id in the coupons table; -1 is none."""
    decision = SimpleNamespace(option_ids=["none", "bad", "good"])
    arms = user_arms(decision, np.array([-1, 0, 1]), OPTIONS)
    assert arms.tolist() == [0, 2, 1]


@pytest.mark.parametrize("good_first", [True, False])
def test_the_chooser_picks_the_truly_better_plan(good_first):
    """Of two plans for the same users, the one with the coupon that works is chosen, in
    either order, although the other model fits the holdout better (lower log loss) and
    one model's predictions favour the other plan."""
    log, x = constructed_log()
    target = x > 0.5
    good = fake_candidate("good_model", np.where(target, 0, -1), log, logloss=0.31)
    bad = fake_candidate("bad_model", np.where(target, 1, -1), log, logloss=0.30)
    choice = choose_plan([good, bad] if good_first else [bad, good])
    assert choice.chosen.name == "good_model"
    diff = next(iter(choice.differences.values()))
    assert abs(diff.value) > 2 * diff.se


@pytest.mark.parametrize("default_fits_better", [True, False])
def test_plans_within_the_noise_keep_autos_default(default_fits_better):
    """When the plans cannot be told apart (the same plan, or a gap inside the noise) the
    first candidate (auto's default) is kept, whichever model fits the holdout better:
    log loss does not rank plans."""
    log, x = constructed_log(seed=1, users=300)
    same = np.where(x > 0.5, 0, -1)
    near = np.where(x > 0.45, 0, -1)  # a slightly different plan: its gap is noise here
    for other in (same, near):
        default = fake_candidate(
            "default", same, log, logloss=0.29 if default_fits_better else 0.31
        )
        other_model = fake_candidate("other", other, log, logloss=0.30)
        assert choose_plan([default, other_model]).chosen.name == "default"
        assert choose_plan([other_model, default]).chosen.name == "other"


def test_the_difference_is_unbiased_over_seeded_logs():
    """The paired DR difference of the two plans averages to the true difference."""
    found = []
    for seed in range(40):
        log, x = constructed_log(seed=seed, users=1_000)
        target = x > 0.5
        plans = tuple(
            fake_candidate(n, np.where(target, k, -1), log).plan for n, k in (("g", 0), ("b", 1))
        )
        truth = float((0.15 * x[target]).sum())
        found.append(value_difference(plans, (log, log)).value - truth)
    assert abs(np.mean(found)) < 3 * np.std(found) / np.sqrt(len(found))


def test_the_paired_difference_by_every_estimator():
    """IPS, SNIPS and DR of the same paired contrast (the chooser's benchmark compares them):
    DR is the chooser's difference, and each finds the working coupon's plan ahead."""
    log, x = constructed_log(seed=4)
    target = x > 0.5
    plans = tuple(
        fake_candidate(n, np.where(target, k, -1), log).plan for n, k in (("g", 0), ("b", 1))
    )
    every = value_differences(plans, (log, log))
    assert sorted(every) == ["dr", "ips", "snips"]
    assert every["dr"] == value_difference(plans, (log, log))
    assert all(e.value > 0 for e in every.values())


def test_logs_of_different_rows_are_refused():
    """The paired difference needs both plans' logs on the same holdout rows."""
    a, _ = constructed_log(seed=2, users=200)
    b, _ = constructed_log(seed=3, users=200)
    plans = (
        fake_candidate("a", np.full(200, 0), a).plan,
        fake_candidate("b", np.full(200, 1), b).plan,
    )
    with pytest.raises(ValueError, match="not the same rows"):
        value_difference(plans, (a, b))


def test_weights_post_stratify_segments_to_their_size():
    """Each segment's holdout users stand for its population; a user's rows share one weight."""
    log = randomised_log(
        np.array([0, 0, 1, 2]),
        np.array(["active", "active", "active", "new"]),
        np.zeros(4, int),
        np.zeros(4),
        np.zeros((4, 3)),
        OPTIONS,
        population={"active": 100, "new": 30},
    )
    assert log.weights.tolist() == [25.0, 25.0, 50.0, 30.0]
    assert pd.Series(log.weights).sum() == 130


def test_the_frame_reads_the_logged_propensity_else_the_designs_constant():
    """Without a propensity column every option is equally likely; with one, its values."""
    from growth.modeling.features import ConversionFeatures
    from growth.world import WorldConfig, generate_world

    dataset = generate_world(WorldConfig(n_users=300, seed=1)).dataset
    features = ConversionFeatures(dataset)
    assert np.allclose(features.exposure_frame().propensity, 1 / len(features.option_ids))
    dataset.exposures["propensity"] = np.linspace(0.1, 0.9, len(dataset.exposures))
    frame = ConversionFeatures(dataset).exposure_frame()
    log = dataset.exposures.sort_values("timestamp", kind="stable")
    scene = (log["domain"] == "target") & (log["scene"] == features.decision_scene)
    logged = log.loc[scene, "propensity"].to_numpy()  # the decision scene's randomised rows
    assert np.allclose(frame.propensity, logged)


def noise_log(seed: int, users: int = 2_000, segments: int = 8) -> HoldoutLog:
    """A randomised log of ``segments`` segments where no coupon changes anything (0.1)."""
    rng = np.random.default_rng(seed)
    segment_of = np.array([f"s{k}" for k in range(segments)])[np.arange(users) % segments]
    user = np.repeat(np.arange(users), 2)
    zeros = np.zeros((len(user), 3))
    y = (rng.random(len(user)) < 0.1).astype(float)
    return randomised_log(
        user,
        segment_of[user],
        rng.integers(0, 3, len(user)),
        y,
        zeros + 0.1,
        OPTIONS,
        p_cost=zeros,
    )


def log_rows(log: HoldoutLog, rows: np.ndarray) -> HoldoutLog:
    """The ``rows`` of ``log`` (a boolean mask), the population kept."""
    arrays = {
        k: getattr(log, k)[rows]
        for k in ["user_pos", "segment", "arm", "propensity", "converted", "gmv", "cost"]
    }
    arrays |= {k: getattr(log, k)[rows] for k in ["p", "p_gmv", "p_cost"]}
    return HoldoutLog(
        **arrays, option_ids=log.option_ids, population=log.population, face_value=log.face_value
    )


def greedy_plan(log: HoldoutLog, rows: np.ndarray) -> SimpleNamespace:
    """A plan made from ``rows``: each segment gets the coupon whose rows there converted
    most beyond 'none''s, if any did (as a plan calibrated per option x segment picks the
    groups whose rows were lucky)."""
    users = int(log.user_pos.max()) + 1
    segment_of = np.empty(users, dtype=object)
    segment_of[log.user_pos] = log.segment
    choice = np.full(users, -1)
    for s in np.unique(log.segment):
        mine = rows & (log.segment == s)
        rate = [log.converted[mine & (log.arm == a)].mean() for a in range(3)]
        best = int(np.argmax(rate[1:])) + 1
        if rate[best] > rate[0]:
            choice[segment_of == s] = best - 1
    zeros = np.zeros((users, 2))
    decision = SimpleNamespace(
        option_ids=OPTIONS, value=zeros, gmv_value=zeros, cost=zeros, segment=segment_of
    )
    return SimpleNamespace(campaign=SimpleNamespace(decision=decision, budgets=[]), choice=choice)


def test_cross_fitting_removes_the_optimism_of_valuing_a_plan_on_its_own_rows():
    """No coupon works, so every plan's true value is 0.  A plan chosen on the holdout's
    rows and valued on the same rows looks positive (it picked the lucky groups); chosen on
    one fold of the users and valued on the other, each way round, it does not."""
    in_sample, crossed = [], []
    for seed in range(30):
        log = noise_log(seed)
        every = np.ones(len(log.user_pos), dtype=bool)
        e = estimate_plan(greedy_plan(log, every), log).get(VALUE, "ips")
        in_sample.append(e.estimate / e.se)
        fold = log.user_pos // 8 % 2 == 0  # half of each segment's users, rows together
        folds = [estimate_plan(greedy_plan(log, ~f), log_rows(log, f)) for f in (fold, ~fold)]
        c = cross_fitted_value(folds).get(VALUE, "ips")
        crossed.append(c.estimate / c.se)
    assert np.mean(in_sample) > 0.8
    assert abs(np.mean(crossed)) < 0.4


def test_fold_estimates_combine_as_independent_halves():
    """The cross-fitted estimate is the folds' mean, its se sqrt(sum se^2) / folds, its
    interval normal at their level; rows and users add up."""
    log = noise_log(3)
    fold = log.user_pos // 8 % 2 == 0
    plan = greedy_plan(log, np.ones(len(fold), dtype=bool))
    folds = [estimate_plan(plan, log_rows(log, f)) for f in (fold, ~fold)]
    both = cross_fitted_value(folds)
    assert both.folds == 2 and both.summary()["folds"] == 2
    for estimator in ("ips", "snips", "dr"):
        a, b, c = (v.get(VALUE, estimator) for v in (*folds, both))
        assert c.estimate == pytest.approx((a.estimate + b.estimate) / 2)
        assert c.se == pytest.approx(np.hypot(a.se, b.se) / 2)
        assert c.upper - c.estimate == pytest.approx(1.959964 * c.se, rel=1e-5)
        assert c.n_rows == len(fold) and c.n_users == len(np.unique(log.user_pos))
    with pytest.raises(ValueError, match="no fold"):
        cross_fitted_value([])


def test_a_merchant_spend_nobody_redeemed_has_an_interval_not_a_point():
    """The plan gives every user the merchant's coupon ('bad', face 10, budget 'merchant');
    the log's rows that carried it never redeemed.  IPS and SNIPS say 0 spend, with
    n_events 0 and an interval up to the unseen redemptions' bound (each row at most 10 at
    propensity 1/3), not [0, 0]; rows whose coupon cannot apply (p_cost 0) do not count."""
    users = 600
    log, _ = constructed_log(seed=5, users=users, rows_per_user=1)
    p_cost = np.zeros((users, 3))
    p_cost[:, 2] = np.where(np.arange(users) < 400, 0.05, 0.0)  # applies to 400 users' items
    log = HoldoutLog(
        **{k: getattr(log, k) for k in ["user_pos", "segment", "arm", "propensity"]},
        converted=log.converted, gmv=log.gmv, cost=np.zeros(users), p=log.p, p_gmv=log.p_gmv,
        p_cost=p_cost, option_ids=OPTIONS, population=log.population,
        face_value=np.array([0.0, 5.0, 10.0]),
    )  # fmt: skip
    decision = SimpleNamespace(
        option_ids=OPTIONS, value=np.zeros((users, 2)), gmv_value=np.zeros((users, 2)),
        cost=np.column_stack([np.zeros(users), p_cost[:, 2]]), segment=log.segment,
    )  # fmt: skip
    budget = SimpleNamespace(name="merchant", options=[1])
    plan = SimpleNamespace(
        campaign=SimpleNamespace(decision=decision, budgets=[budget]), choice=np.ones(users, int)
    )
    value = estimate_plan(plan, log)
    bound = -np.log(0.025) * 10.0 * 3.0  # weight 1 per row (one row per user)
    for estimator in ("ips", "snips"):
        spend = value.get("spend:merchant", estimator)
        assert spend.estimate == 0.0 and spend.n_events == 0
        assert spend.upper == pytest.approx(bound)
        assert value.summary()["spend:merchant"][estimator]["n_events"] == 0
    assert value.get(VALUE, "dr").n_events == -1  # a contrast: events are not counted
    blind = estimate_plan(plan, dataclasses.replace(log, face_value=None))  # no face values
    assert blind.get("spend:merchant", "ips").upper == 0.0  # the zero-width interval of before


def test_a_spend_whose_coupons_no_holdout_row_holds_reaches_the_plans_most():
    """The plan gives the merchant's coupon (face 10) to 50 users, but it applies to no item
    any holdout row logged (p_cost 0 on every row): the log is blind to that spend.  Every
    estimator's interval then reaches the plan's most, all 50 coupons redeemed (500), not the
    zero width of a bound over no row."""
    users = 300
    log, _ = constructed_log(seed=7, users=users, rows_per_user=1)
    log = dataclasses.replace(
        log, cost=np.zeros(users), p_cost=np.zeros((users, 3)), face_value=np.array([0, 5, 10.0])
    )
    cost = np.where(np.arange(users) < 50, 0.4, 0.0)  # the campaign's items: it applies there
    decision = SimpleNamespace(
        option_ids=OPTIONS, value=np.zeros((users, 2)), gmv_value=np.zeros((users, 2)),
        cost=np.column_stack([np.zeros(users), cost]), segment=log.segment,
    )  # fmt: skip
    plan = SimpleNamespace(
        campaign=SimpleNamespace(
            decision=decision, budgets=[SimpleNamespace(name="merchant", options=[1])]
        ),
        choice=np.where(cost > 0, 1, -1),
    )
    value = estimate_plan(plan, log)
    for estimator in ("ips", "snips", "dr"):
        spend = value.get("spend:merchant", estimator)
        assert spend.n_events == 0 and spend.upper - spend.estimate == pytest.approx(500.0)
    assert value.get("spend:merchant", "dr").estimate == pytest.approx(50 * 0.4)
