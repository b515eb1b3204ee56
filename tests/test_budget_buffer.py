"""Chance-constrained coupon budgets: each budget keeps its random spend with a stated probability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from growth.campaigns.coupons import (
    Arrivals,
    CouponDecision,
    campaign_budgets,
    plan_coupons,
    play_out,
)
from growth.campaigns.coupons import plan as plan_module
from growth.campaigns.coupons.buffer import (
    BudgetRisk,
    p_within,
    posterior,
    spend_bias,
    spend_risk,
)
from growth.campaigns.settings import CouponSettings
from growth.jobs.config import NightlyConfig
from growth.modeling.calibration import ratio_bias
from growth.modeling.recalibration import PRIOR_SD


def _decision(n: int = 400, redemption: float = 0.3, face: float = 10.0) -> CouponDecision:
    """``n`` users, one red packet (platform) of ``face`` redeemed with probability ``redemption``."""
    rng = np.random.default_rng(0)
    conversion = np.column_stack([np.full(n, 0.1), 0.2 + 0.3 * rng.random(n)])
    return CouponDecision(
        user_ids=np.arange(n),
        segment=np.array(["new"] * n),
        option_ids=["none", "rp"],
        option_types=["none", "red_packet"],
        face_value=np.array([0.0, face]),
        merchant_id=np.array([-1, -1]),
        conversion=conversion,
        redemption=np.column_stack([np.zeros(n), np.full(n, redemption)]),
        gmv=conversion * 30.0,
    )


def _buffer(decision: CouponDecision, target: float | None, budget: float = 300.0) -> float:
    plan = plan_coupons(decision, CouponSettings(budget=budget, spend_confidence=target))
    return plan.risk["platform"].buffer if plan.risk else 0.0


def test_buffer_grows_with_the_variance_of_spend():
    """Same expected cost per coupon, more variance (rarer redemption, bigger face): a bigger buffer."""
    low = _buffer(_decision(redemption=0.5, face=10.0), 0.95)
    high = _buffer(_decision(redemption=0.1, face=50.0), 0.95)
    assert 0.0 < low < high


def test_buffer_is_near_zero_at_an_even_chance():
    """With target probability 0.5 (and no calibration bias) the solver sees the whole budget."""
    decision = _decision()
    assert _buffer(decision, 0.5) == pytest.approx(0.0, abs=1e-6 * 300)
    assert _buffer(decision, 0.95) > 10.0


def _risk(decision: CouponDecision, calibration: pd.DataFrame | None, choice=None) -> BudgetRisk:
    """The platform's risk of ``choice`` (default: everyone gets the red packet) at 300."""
    if choice is None:
        choice = np.zeros(decision.n_users, dtype=np.int64)
    budgets = campaign_budgets(decision, CouponSettings(budget=300.0))
    bias = spend_bias(decision, calibration)
    return spend_risk(decision, choice, budgets, {"platform": 300.0}, bias)["platform"]


def test_calibration_bias_widens_the_buffer():
    """A holdout that spent more than predicted moves the effective budget down further: by
    the bias's posterior under the calibration's prior, and its error widens the sd."""
    decision = _decision()
    frame = pd.DataFrame({"rel_bias": [0.1], "rel_bias_se": [0.05]}, ["rp"])
    risk = _risk(decision, frame)
    mean, sd = posterior(0.0, 0.1, 0.05)
    assert 0.09 < mean < 0.1
    assert risk.bias_allowance == pytest.approx(mean * risk.expected_spend)
    draws = decision.n_users * 0.3 * 0.7 * 100.0
    assert risk.spend_sd == pytest.approx(np.sqrt(draws + (sd * risk.expected_spend) ** 2))
    assert ratio_bias(np.array([2.0, 2.0]), np.array([1.0, 1.0]))[0] == pytest.approx(1.0)


def test_a_bias_measured_with_a_large_error_is_pooled_towards_none():
    """The calibration's prior (PRIOR_SD) holds an option's bias near none until the holdout
    measures it precisely: +30 % measured to within 30 % is +9 %, with sd 0.17, not +30 %
    with sd 0.3; without evidence the prior itself."""
    assert posterior(0.0, 0.3, 0.3) == pytest.approx(
        (0.3 * PRIOR_SD**2 / (PRIOR_SD**2 + 0.09), PRIOR_SD * 0.3 / np.sqrt(PRIOR_SD**2 + 0.09))
    )
    assert posterior(0.1, 0.5, float("inf")) == (0.1, PRIOR_SD)
    decision = _decision()
    noisy = _risk(decision, pd.DataFrame({"rel_bias": [0.3], "rel_bias_se": [0.3]}, ["rp"]))
    assert noisy.bias_allowance == pytest.approx(0.3 * 4 / 13 * noisy.expected_spend)


def test_played_out_spend_keeps_the_budget_in_most_seeds():
    """Unbuffered, the plan's demand exceeds the budget in about half the arrival seeds;
    buffered at 95 %, in few."""
    decision = _decision(n=2_000)
    arrivals = Arrivals.sample(decision.n_users, range(100))
    held = {}
    for target in (None, 0.95):
        settings = CouponSettings(budget=1_000.0, spend_confidence=target)
        plan = plan_coupons(decision, settings)
        out = play_out(decision, plan.choice, plan.campaign.budgets, arrivals)
        held[target] = float((out.demand[:, 0] <= 1_000.0 + 1e-9).mean())
    assert held[None] < 0.7
    assert held[0.95] >= 0.9


def test_the_bias_allowance_follows_the_plans_segment_mix():
    """The holdout under-predicts new users' spend by 30 % and active users' not at all (10 %
    over the option), precisely: a plan of new users carries 30 %, a plan of active users
    none; measured imprecisely, a segment's bias is pooled towards its option's; a segment
    the holdout lacks takes its option's, with the prior's sd about it."""
    decision = _decision()
    decision = dataclasses.replace(
        decision, segment=np.where(np.arange(decision.n_users) % 2 == 0, "new", "active")
    )
    index = pd.MultiIndex.from_tuples(
        [("rp", "all"), ("rp", "new"), ("rp", "active")], names=["option_id", "segment"]
    )
    calibration = pd.DataFrame({"rel_bias": [0.1, 0.3, 0.0], "rel_bias_se": [0.02] * 3}, index)
    for segment, share in (("new", 0.3), ("active", 0.0)):
        risk = _risk(decision, calibration, np.where(decision.segment == segment, 0, -1))
        assert risk.bias_allowance == pytest.approx(share * risk.expected_spend, abs=0.01 * 300)
    # a segment the holdout barely measured (error 0.5) is pooled mostly to its option's 10 %
    noisy = calibration.assign(rel_bias_se=[0.02, 0.5, 0.02])
    risk = _risk(decision, noisy, np.where(decision.segment == "new", 0, -1))
    assert 0.1 < risk.bias_allowance / risk.expected_spend < 0.15
    bias = spend_bias(decision, calibration.drop(("rp", "new")))
    new = int(bias.codes[decision.segment == "new"][0])
    option = posterior(0.0, 0.1, 0.02)
    assert bias.table[0, new] == pytest.approx([option[0], np.hypot(PRIOR_SD, option[1])])


def test_a_group_that_saw_none_of_its_few_predicted_redemptions_is_not_certain_of_none():
    """New users' red packet predicted to redeem 2 times in 40 rows (face 10) and seen 0 times:
    the ratio estimator's residuals are all zero about a ratio of 0, so alone it would call the
    bias -100 % with no error and the buffer would net the group's spend off the others'.  The
    error of 2 predicted events (about 70 %) keeps it near its option's bias instead."""
    redeems = np.full(40, 0.05)
    predicted, variance = 10.0 * redeems, 100.0 * redeems * (1.0 - redeems)
    assert ratio_bias(np.zeros(40), predicted) == (-1.0, 0.0)  # the estimator alone
    bias, se = ratio_bias(np.zeros(40), predicted, variance)
    assert bias == -1.0
    assert se == pytest.approx(np.sqrt(variance.sum()) / predicted.sum())
    assert se > 0.6
    # a group measured precisely keeps the ratio estimator's own error
    seen = np.where(np.arange(400) % 4 == 0, 10.0, 0.0)
    plain = ratio_bias(seen, np.full(400, 2.0))
    assert ratio_bias(seen, np.full(400, 2.0), np.full(400, 16.0 * 0.2 * 0.8 / 4.0)) == plain
    decision = _decision()
    index = pd.MultiIndex.from_tuples(
        [("rp", "all"), ("rp", "new")], names=["option_id", "segment"]
    )
    calibration = pd.DataFrame({"rel_bias": [0.0, bias], "rel_bias_se": [0.02, se]}, index)
    b, sd = spend_bias(decision, calibration).table[0, 0]
    assert -0.1 < b < 0.0 and sd > 0.15


def test_the_spend_quantile_is_skew_aware_for_a_few_dozen_redemptions():
    """About 25 expected redemptions, most of 10 and a few of 100 in face value: the normal
    approximation's 95 % quantile of the spend understates the right tail (Monte Carlo: a
    budget there holds in about 93 % of draws); the Cornish-Fisher quantile is nearer the
    Monte-Carlo one and a budget there holds in about 95 %."""
    rng = np.random.default_rng(1)
    n = 400
    p = np.full(n, 0.0625)
    face = np.where(np.arange(n) < 20, 100.0, 10.0)
    draws = (rng.uniform(size=(100_000, n)) < p) @ face
    mc = float(np.quantile(draws, 0.95))
    mean, var = float(p @ face), float((p * (1 - p)) @ face**2)
    skew = float((p * (1 - p) * (1 - 2 * p)) @ face**3) / var**1.5
    risk = BudgetRisk(600.0, 600.0, mean, 0.0, np.sqrt(var), 0.0, spend_skew=skew)
    normal, cf = mean + 1.645 * np.sqrt(var), risk.quantile(1.645)
    assert float((draws <= normal).mean()) < 0.94
    assert 0.945 <= float((draws <= cf).mean()) <= 0.96
    assert abs(cf - mc) < 0.2 * abs(normal - mc)
    # p_within inverts the quantile
    assert p_within(cf, mean=mean, sd=np.sqrt(var), skew=skew) == pytest.approx(0.95, abs=1e-3)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_spend_confidence_is_a_probability(bad):
    """spend_confidence outside (0, 1) is refused, in the settings and the nightly config."""
    with pytest.raises(ValidationError, match="spend_confidence"):
        CouponSettings(spend_confidence=bad)
    with pytest.raises(ValidationError, match="spend_confidence"):
        NightlyConfig(coupons={"spend_confidence": bad})
    assert CouponSettings().spend_confidence == 0.99


def test_the_buffer_settles_where_the_plans_mix_makes_its_risk_jump(monkeypatch):
    """Above an effective budget of 260 the plan admits users whose spend the holdout
    under-predicted, and the bias allowance jumps by 40. A step by the shortfall then swings
    between a plan far inside the target (P(within) 1.000 at 236.7) and one short of it;
    halving the bracket between them settles at the largest effective budget that holds."""

    def jumping_risk(decision, choice, budgets, effective, bias):
        e = effective["platform"]
        allowance = 40.0 if e > 260.0 else 0.0
        p = p_within(300.0, mean=e + allowance, sd=10.0)
        return {"platform": BudgetRisk(300.0, e, e, allowance, 10.0, p)}

    monkeypatch.setattr(plan_module, "spend_risk", jumping_risk)
    plan = plan_coupons(_decision(), CouponSettings(budget=300.0, spend_confidence=0.99))
    assert 258.0 < plan.risk["platform"].effective_budget <= 260.0
    assert plan.risk["platform"].p_within >= 0.99
