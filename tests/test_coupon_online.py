"""Coupons on demand: requests answered at the nightly prices, paced to the effective budgets,
never paid beyond the posed budgets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from growth.campaigns.coupons import CouponDecision, plan_coupons
from growth.campaigns.coupons.online import plan_pacer, serve_day
from growth.campaigns.settings import CouponSettings
from optimizers.coupons import BudgetPacer


def _decision(n: int = 6000, seed: int = 0) -> CouponDecision:
    """Users of uneven uplift; options rp_5 (red packet 5, platform) and m_4 (merchant 7's 4),
    each redeemed with predicted probability 0.3."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.05, 0.15, n)
    lift = rng.gamma(2.0, 0.03, (n, 2))
    conversion = np.column_stack([base, base + lift[:, 0], base + 0.6 * lift[:, 1]])
    return CouponDecision(
        user_ids=np.arange(n),
        segment=np.where(np.arange(n) % 2 == 0, "new", "active"),
        option_ids=["none", "rp_5", "m_4"],
        option_types=["none", "red_packet", "merchant"],
        face_value=np.array([0.0, 5.0, 4.0]),
        merchant_id=np.array([-1, -1, 7]),
        conversion=conversion,
        redemption=np.column_stack([np.zeros(n), np.full((n, 2), 0.3)]),
        gmv=conversion * 50,
    )


@pytest.fixture(scope="module")
def plan():
    settings = CouponSettings(budget=1500.0, merchant_budget=400.0, spend_confidence=0.95)
    return plan_coupons(_decision(), settings)


def test_the_pacer_reads_the_plans_prices_and_effective_budgets(plan) -> None:
    """Targets are the buffered (effective) budgets, caps the posed ones, prices the duals."""
    pacer = plan_pacer(plan)
    names = [b.name for b in plan.campaign.budgets]
    assert names == ["platform", "merchant_7"]
    np.testing.assert_allclose(pacer.targets, [plan.campaign.effective[n] for n in names])
    np.testing.assert_allclose(pacer.caps, [1500.0, 400.0])
    assert (pacer.targets < pacer.caps - 1.0).all()  # the buffer is there
    np.testing.assert_allclose(pacer.base_price, [plan.allocation.dual[n] for n in names])


def test_a_day_whose_true_spend_would_overrun_is_held_within_every_budget(plan) -> None:
    """True redemptions run 50 % above the forecast.  At the nightly prices the plan's users
    would overspend every budget; served on demand no budget is paid beyond its posed amount,
    the pacer raises the prices so spend tracks the effective budgets, and coupons are still
    offered at the day's end (unpaced, a budget runs dry earlier and the day's last requests
    get nothing)."""
    decision = plan.campaign.decision
    truth = replace(decision, redemption=decision.redemption * 1.5)
    chosen = plan.choice >= 0
    face = decision.face_value[1:][plan.choice[chosen]]
    overrun = np.bincount(plan.choice[chosen], face * 0.45, minlength=2)
    assert (overrun > np.array([1500.0, 400.0])).all()
    for seed in range(3):
        paced = serve_day(plan, truth, seed=seed)
        fixed = serve_day(plan, truth, seed=seed, pace=False)
        for day in (paced, fixed):
            assert (day.paid <= day.caps + 1e-9).all()
        assert (paced.price_end > paced.price_start).all()
        assert paced.paid.sum() >= 0.9 * paced.targets.sum()
        assert paced.last_offer > 0.97 > fixed.last_offer


def test_settle_never_pays_beyond_a_cap() -> None:
    """A redemption a budget cannot pay is refused and charges nothing; offers skip options
    whose face value no longer fits; bad inputs name the argument."""
    pacer = BudgetPacer([0.0, 0.0], [[True, True], [True, False]], [3.0, 2.0], [5, 3], [6, 4])
    assert pacer.settle(0, redeemed=True) is True
    assert pacer.settle(0, redeemed=True) is False  # the cap of 4 has 1 left
    np.testing.assert_allclose(pacer.paid, [3.0, 3.0])
    assert pacer.offer([1.0, 0.5], [1.0, 1.0]) == 1
    assert pacer.settle(1, redeemed=True) and pacer.offer([1.0, 0.5], [1.0, 1.0]) == -1
    with pytest.raises(ValueError, match="targets"):
        BudgetPacer([0.0], [[True]], [1.0], [2.0], [1.0])
    with pytest.raises(ValueError, match="face"):
        BudgetPacer([0.0], [[True]], [-1.0], [1.0], [1.0])
