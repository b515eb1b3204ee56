"""Coupon re-solves: warm-started value curves and fronts keep a valid certificate at every point."""

from __future__ import annotations

import numpy as np
import pytest

from growth import services as svc
from growth.campaigns.coupons import plan_coupons, true_coupon_decision
from growth.campaigns.settings import CouponSettings
from optimizers.coupons import allocate, pareto_front


@pytest.fixture(scope="module")
def truth():
    """The small world's true coupon response (platform + per-merchant budgets)."""
    return true_coupon_decision(svc.load_world("small", 1500))


def _instance(n: int = 150, seed: int = 3) -> dict:
    """Value/cost with a platform budget and two merchant budgets, small enough for HiGHS."""
    rng = np.random.default_rng(seed)
    value = rng.uniform(0.0, 0.05, size=(n, 6))
    cost = rng.uniform(0.2, 3.0, size=(n, 6)) * (1 + 10 * value)
    return {
        "value": value,
        "cost": cost,
        "global_options": np.array([True, True, True, True, False, False]),
        "budget_groups": {"merchant_0": ([4], 0.05 * n), "merchant_1": ([5], 0.05 * n)},
    }


def test_warm_started_value_curve_equals_cold_solves(truth):
    """Each warm-started budget point matches its cold solve and keeps objective <= bound
    (at the buffer level this small instance was sized for)."""
    settings = CouponSettings(budget=200.0, merchant_budget=20.0, spend_confidence=0.95)
    fractions = (1.5, 0.25, 1.0, 0.5)  # any order: solved in increasing budget order
    curve = svc.value_vs_budget(truth, settings, fractions=fractions)
    assert curve["budget"].tolist() == [settings.budget * f for f in sorted(fractions)]
    for row in curve.itertuples():
        cold = plan_coupons(
            truth, settings.model_copy(update={"budget": row.budget, "method": "lagrangian"})
        ).allocation
        assert row.conversions <= row.upper_bound + 1e-12
        assert row.conversions <= cold.upper_bound + 1e-9  # both bounds are valid
        assert cold.objective <= row.upper_bound + 1e-9
        # equal up to the certified gaps (the heuristic plans may differ by a few users)
        slack = max(row.upper_bound - row.conversions, cold.upper_bound - cold.objective)
        assert abs(row.conversions - cold.objective) <= slack + 1e-9
        assert slack <= 1e-3 * cold.upper_bound
        assert row.upper_bound == pytest.approx(cold.upper_bound, rel=1e-4)
        assert row.marginal_value == pytest.approx(cold.dual["platform"], rel=0.01)  # small n: the
        # minimising price is an interval, so warm and cold may stop at different points of it


@pytest.mark.parametrize("budget", [8.0, 20.0, 50.0])
def test_warm_start_from_another_budget_is_certified(budget):
    """A Lagrangian solve warm-started at another budget's prices is feasible with a valid bound."""
    data = _instance()
    start = allocate(budget=35.0, method="lagrangian", **data)
    warm = allocate(budget=budget, method="lagrangian", warm_start=start.dual, **data)
    exact = allocate(budget=budget, method="highs", **data)
    assert warm.spend <= budget * (1 + 1e-9)
    assert all(s <= 0.05 * 150 * (1 + 1e-9) for s in warm.group_spend.values())
    assert warm.objective <= exact.upper_bound + 1e-9  # no plan beats the exact bound
    assert exact.objective <= warm.upper_bound + 1e-9  # the warm bound is a true bound
    assert warm.gap < 0.02
    cold = allocate(budget=budget, method="lagrangian", **data)
    assert warm.upper_bound == pytest.approx(cold.upper_bound, rel=1e-4)


def test_warm_started_front_points_are_certified():
    """Every point of the (warm-started) front has objective <= bound >= the exact optimum."""
    data = _instance(seed=5)
    value2 = np.random.default_rng(1).uniform(0.0, 10.0, size=data["value"].shape)
    points = pareto_front(
        data["value"], value2, data["cost"], 25.0, n_points=4, method="lagrangian",
        global_options=data["global_options"], budget_groups=data["budget_groups"],
    )  # fmt: skip
    assert len(points) >= 2
    s1, s2 = np.abs(data["value"]).max(), np.abs(value2).max()
    for p in points:
        a = p.allocation
        weight = p.weight * s1 / s2 / ((1.0 - p.weight) + p.weight * s1 / s2)  # pareto_front's
        exact = allocate(
            data["value"], data["cost"], 25.0, value2=value2, weight=weight, method="highs",
            global_options=data["global_options"], budget_groups=data["budget_groups"],
        )  # fmt: skip
        assert a.objective <= exact.upper_bound + 1e-9
        assert exact.objective <= a.upper_bound + 1e-9


def test_front_marks_the_adopted_plan(truth):
    """The front's chosen point is the conversions-only plan, the one the job adopts."""
    settings = CouponSettings(budget=200.0, merchant_budget=20.0, method="lagrangian")
    plan = plan_coupons(truth, settings)
    front = plan.campaign.front(n_points=3)  # under the plan's effective (buffered) budgets
    assert front["conversions"].is_monotonic_increasing
    assert front["chosen"].sum() == 1
    chosen = front.loc[front["chosen"]].iloc[0]
    assert chosen["conversions"] == pytest.approx(plan.allocation.value_total, rel=1e-6)


def test_plan_duals_join_the_plan_budgets(truth):
    """The plan's dual prices are keyed by its budgets' names, the names of its spends."""
    settings = CouponSettings(
        budget=200.0, merchant_budget=20.0, method="lagrangian", type_budgets={"red_packet": 50.0}
    )
    plan = plan_coupons(truth, settings)
    assert next(iter(plan.budgets)) == "platform" and "type[red_packet]" in plan.budgets
    assert set(plan.allocation.dual) == set(plan.budgets) == set(plan.spend)
    assert [c.name for c in plan.campaign.problem.constraints] == list(plan.budgets)
    for name, spent in plan.allocation.group_spend.items():
        assert spent == pytest.approx(plan.spend[name], rel=1e-9)
    assert plan.allocation.spend == pytest.approx(plan.spend["platform"], rel=1e-9)
