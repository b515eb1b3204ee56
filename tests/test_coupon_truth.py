"""Honest scoring of coupon plans: played out on the truth under every budget, baselines alike."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from growth.campaigns.coupons import (
    Arrivals,
    Budget,
    CouponDecision,
    campaign_budgets,
    plan_coupons,
    play_out,
    score_against_truth,
    true_coupon_decision,
)
from growth.campaigns.coupons.baselines import random_targeting, single_option
from growth.campaigns.coupons.playout import first_fit
from growth.campaigns.settings import CouponSettings
from growth.world import generate_world, load_scenario

SMALL = "data/scenarios/small.toml"


def _decision(n: int, redemption: float = 1.0) -> CouponDecision:
    """``n`` users, options rp_5 (red packet 5, platform) and m_4 (merchant 7's coupon 4)."""
    conversion = np.tile([0.1, 0.3, 0.2], (n, 1)) + np.arange(n)[:, None] * 0.001
    return CouponDecision(
        user_ids=np.arange(n),
        segment=np.array(["new", "active"] * (n // 2) + ["new"] * (n % 2)),
        option_ids=["none", "rp_5", "m_4"],
        option_types=["none", "red_packet", "merchant"],
        face_value=np.array([0.0, 5.0, 4.0]),
        merchant_id=np.array([-1, -1, 7]),
        conversion=conversion,
        redemption=np.tile([0.0, redemption, redemption], (n, 1)),
        gmv=conversion * 50,
    )


def test_first_fit_refuses_what_a_group_cannot_pay_and_keeps_room_for_smaller_ones():
    """An item is paid only if every group it charges has room; a refused one charges
    nothing and a later, smaller one is still paid."""
    member = np.array([[True, False], [True, True], [True, True], [True, False]])
    # item 1 overflows group 1 (cap 4): refused, charges neither group; item 2 fits both;
    # item 3 is larger than the platform's room left; nothing else fits
    paid = first_fit(np.array([5.0, 5.0, 3.0, 3.0]), member, np.array([10.0, 4.0]))
    assert paid.tolist() == [True, False, True, False]
    assert first_fit(
        np.array([4.0, 4.0, 1.0]), np.ones((3, 1), bool), np.array([5.0])
    ).tolist() == [
        True,
        False,
        True,
    ]


def test_play_out_honours_coupons_only_while_the_budget_can_pay_them():
    """Sure redemptions of 5 under a budget of 12: two are paid, the others are lost, and only
    the honoured holders' uplift counts; spend never exceeds the budget."""
    truth = _decision(5)
    budgets = [Budget("platform", np.array([0]), 12.0)]
    out = play_out(truth, np.zeros(5, dtype=np.int64), budgets, Arrivals.sample(5, range(6)))
    assert (out.paid[:, 0] == 10.0).all() and (out.demand[:, 0] == 25.0).all()
    assert (out.redeemed == 2).all() and (out.lost == 3).all()
    assert (out.value < truth.value[:, 0].sum() * 0.5).all()
    first_two = [
        truth.value[np.argsort(rank)[:2], 0].sum() for rank in Arrivals.sample(5, range(6)).rank
    ]
    np.testing.assert_allclose(out.value, first_two)


def test_play_out_charges_the_payer_and_the_type_cap_and_is_deterministic():
    """A red packet draws on the platform budget and its type cap: the cap binds while the
    platform budget has room; a merchant's coupon charges its merchant only; same seeds,
    same play-out."""
    truth = _decision(8)
    settings = CouponSettings(budget=100.0, merchant_budget=8.0, type_budgets={"red_packet": 10.0})
    budgets = campaign_budgets(truth, settings)
    choice = np.array([0, 1] * 4)
    arrivals = Arrivals.sample(8, [3, 4])
    out = play_out(truth, choice, budgets, arrivals)
    spend = dict(zip([b.name for b in budgets], out.paid[0], strict=True))
    assert spend == {"platform": 10.0, "merchant_7": 8.0, "type[red_packet]": 10.0}
    assert (out.lost == 4).all()  # 2 red packets and 2 merchant coupons could not be paid
    again = play_out(truth, choice, budgets, Arrivals.sample(8, [3, 4]))
    np.testing.assert_array_equal(out.value, again.value)


def test_play_out_with_room_for_everything_pays_every_redemption():
    """Budgets larger than any demand: nothing is lost, paid equals demand, and the value is
    the plan's expected uplift (every coupon honoured)."""
    truth = _decision(6, redemption=0.5)
    budgets = campaign_budgets(truth, CouponSettings(budget=1e6, merchant_budget=1e6))
    choice = np.array([0, 1, -1, 0, 1, 0])
    out = play_out(truth, choice, budgets, Arrivals.sample(6, range(4)))
    assert (out.lost == 0).all()
    np.testing.assert_array_equal(out.paid, out.demand)
    np.testing.assert_allclose(out.value, truth.evaluate(choice)["incremental_conversions"])


def test_baselines_keep_every_budget_and_floor_on_the_true_costs():
    """Random targeting and the single option fill the budgets (type caps included) on the
    true expected costs, the users a coverage floor needs first."""
    truth = _decision(40, redemption=0.5)  # expected costs: red packet 2.5, merchant coupon 2
    settings = CouponSettings(
        budget=20.0,
        merchant_budget=20.0,
        type_budgets={"red_packet": 15.0},
        min_coverage={"new": 1.0},
    )
    budgets = campaign_budgets(truth, settings)
    for choice in (
        random_targeting(truth, budgets, settings.min_coverage, seed=1),
        single_option(truth, budgets, settings.min_coverage, 0, seed=1),
    ):
        rows = np.flatnonzero(choice >= 0)
        cost = truth.cost[rows, choice[rows]]
        for b in budgets:
            assert cost[np.isin(choice[rows], b.options)].sum() <= b.amount + 1e-9, b.name
        assert (truth.segment[rows] == "new").sum() >= 6  # the floor's 20 new users come first
    single = single_option(truth, budgets, settings.min_coverage, 0, seed=1)
    assert set(single[single >= 0].tolist()) == {0} and (single >= 0).sum() == 6  # 15 / 2.5
    assert (truth.segment[single >= 0] == "new").all()


@pytest.fixture(scope="module")
def small_world():
    return generate_world(load_scenario(SMALL, n_users=1_200, seed=1))


def test_an_overspending_plan_is_held_to_its_budgets_and_scores_below_its_promise(small_world):
    """A plan planned on redemption under-predicted by half promises more than the budget
    pays for: played out, every group's spend stays within its budget, the lost
    redemptions are counted, and its % of the oracle falls below the all-paid figure."""
    truth = true_coupon_decision(small_world)
    settings = CouponSettings(budget=200.0, merchant_budget=60.0, method="lagrangian")
    plan = plan_coupons(replace(truth, redemption=truth.redemption * 0.5), settings)
    score = score_against_truth(small_world, plan, n_seeds=5)
    assert set(score.plans.index) == {"platform", "random", "best_single", "oracle"}
    assert (score.spend["paid"] <= score.spend["budget"] + 1e-9).all()
    mine = score.spend.query("plan == 'platform'").set_index("budget_group")
    assert mine.loc["platform", "demand"] > 1.3 * 200.0 and mine.loc["platform", "held"] == 0.0
    p, o = score.plans.loc["platform"], score.plans.loc["oracle"]
    assert p["redemptions_lost"] > 0
    assert score.pct_of_oracle() < 100 * p["all_paid_conversions"] / o["all_paid_conversions"]
    assert score.pct_of_oracle("oracle") == pytest.approx(100.0)
    summary = json.loads(json.dumps(score.summary()))
    assert {"plans", "spend", "seeds", "best_single_option", "pct_of_oracle_by_segment"} <= set(
        summary
    )
    assert {r["budget_group"] for r in summary["spend"]} == {"platform", "merchant_0", "merchant_1"}
    again = score_against_truth(small_world, plan, n_seeds=5)
    assert again.plans.equals(score.plans)
