"""Tests of the coupon allocation optimizer (multiple-choice knapsack with certificates)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from optimizers.certificate import Certificate, InfeasibleError
from optimizers.coupons import (
    CouponAllocation,
    CouponProblem,
    OnlineAllocator,
    ParetoPoint,
    allocate,
    non_dominated,
    pareto_front,
    simulate_day,
)

FACE = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 10.0])
TYPES = ("red_packet", "red_packet", "full_reduction", "full_reduction", "merchant", "merchant")
MERCHANTS = (None, None, None, None, 7, 9)


def world(
    seed: int, n: int = 200, budget_share: float = 0.3
) -> tuple[np.ndarray, np.ndarray, float]:
    """A small instance shaped like the simulated world: value ~ small probabilities."""
    rng = np.random.default_rng(seed)
    redemption = rng.uniform(0.2, 0.9, size=(n, FACE.size))
    cost = FACE * redemption  # (n, K) expected cost
    value = rng.uniform(0.0, 0.05, size=(n, FACE.size)) * np.sqrt(FACE)  # (n, K) uplift
    value -= rng.uniform(0.0, 0.01, size=(n, 1))  # some options hurt
    budget = budget_share * float(cost.min(axis=1).sum())
    return value, cost, budget


def typed_problem(
    value: np.ndarray, cost: np.ndarray, budget: float, **limits: Any
) -> CouponProblem:
    """An instance over the :data:`TYPES` / :data:`MERCHANTS` options with side ``limits``."""
    return CouponProblem(
        value=value, cost=cost, budget=budget, option_types=TYPES, merchant_ids=MERCHANTS, **limits
    )


def assert_feasible(problem: CouponProblem, plan: CouponAllocation) -> None:
    """Every constraint of ``problem`` holds for ``plan`` (no tolerance beyond 1e-9 rel)."""
    assert problem.violations(plan.choice) == {}, problem.violations(plan.choice)
    assert plan.choice.min() >= -1 and plan.choice.max() < problem.n_options


# -- certificate -----------------------------------------------------------------------
def test_certificate_gap_is_relative_and_infinite_when_infeasible() -> None:
    """The shared certificate reports a relative gap, NaN (never 0) without a bound or plan."""
    import math

    from optimizers.certificate import CertificateError

    c = Certificate(
        status="feasible", objective=99.0, upper_bound=100.0, solve_time_s=0.0, method="x"
    )
    assert c.gap == pytest.approx(0.01) and c.status == "feasible"
    c.status = "infeasible"
    assert math.isnan(c.gap)
    no_bound = Certificate(
        status="optimal", objective=99.0, upper_bound=math.inf, solve_time_s=0.0, method="x"
    )
    assert math.isnan(no_bound.gap) and no_bound.status == "feasible"
    tight = Certificate(
        status="feasible", objective=100.0, upper_bound=100.0 + 1e-5, solve_time_s=0, method="x"
    )
    assert tight.status == "optimal" and tight.gap <= 1e-6
    with pytest.raises(CertificateError, match="exceeds its upper bound"):
        Certificate(
            status="feasible", objective=100.1, upper_bound=100.0, solve_time_s=0, method="x"
        )
    with pytest.raises(ValueError, match="status"):
        Certificate(status="great", objective=0, upper_bound=0, solve_time_s=0, method="x")


# -- exactness and bounds ----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_lagrangian_matches_exact_optimum_and_bounds_it(seed: int) -> None:
    """Lagrangian is within 1% of the CP-SAT/HiGHS optimum and its bound is >= that optimum."""
    value, cost, budget = world(seed)
    lag = allocate(value, cost, budget, method="lagrangian")
    highs = allocate(value, cost, budget, method="highs", rel_gap=1e-6)
    cpsat = allocate(value, cost, budget, method="cpsat", rel_gap=1e-6, time_limit_s=20)
    assert highs.objective == pytest.approx(cpsat.objective, rel=1e-4)
    opt = max(highs.objective, cpsat.objective)
    assert lag.objective >= 0.99 * opt
    assert lag.upper_bound >= opt - 1e-9
    assert highs.upper_bound >= opt - 1e-6
    assert lag.spend <= budget and highs.spend <= budget and cpsat.spend <= budget


def test_lagrangian_bound_equals_lp_relaxation_with_one_budget() -> None:
    """With one budget the Lagrangian dual bound equals the HiGHS LP-relaxation bound."""
    from optimizers.coupons.solve import solve_highs

    value, cost, budget = world(5)
    problem = CouponProblem(value=value, cost=cost, budget=budget)
    lp = solve_highs(problem, relax=True)
    lag = allocate(value, cost, budget, method="lagrangian")
    assert lag.upper_bound == pytest.approx(lp.bound, rel=1e-5)
    assert lag.dual["budget"] == pytest.approx(lp.dual["budget"], rel=1e-3)


def test_all_negative_values_give_no_coupon() -> None:
    """No user gets a coupon when every option loses value."""
    value, cost, budget = world(1)
    for method in ("lagrangian", "highs", "cpsat"):
        plan = allocate(-np.abs(value) - 1e-3, cost, budget, method=method)
        assert (plan.choice == -1).all(), method
        assert plan.objective == 0.0 and plan.spend == 0.0


def test_unbinding_budget_is_optimal_with_zero_price() -> None:
    """A budget larger than the unconstrained plan's spend gets price 0 and status optimal."""
    value, cost, _ = world(2)
    plan = allocate(value, cost, 1e9, method="lagrangian")
    assert plan.status == "optimal" and plan.dual["budget"] == 0.0
    np.testing.assert_array_equal(plan.choice, np.where(value.max(1) > 0, value.argmax(1), -1))


def test_weighted_objective_mixes_two_value_matrices() -> None:
    """weight=1 optimises value2 alone; weight=0 optimises value alone."""
    value, cost, budget = world(3)
    value2 = np.random.default_rng(9).uniform(0, 5, size=value.shape)  # GMV
    only2 = allocate(value, cost, budget, value2=value2, weight=1.0, method="highs")
    direct2 = allocate(value2, cost, budget, method="highs")
    assert only2.objective == pytest.approx(direct2.objective, rel=1e-3)
    assert only2.value2_total == pytest.approx(only2.objective)
    mix = allocate(value, cost, budget, value2=value2, weight=0.5, method="lagrangian")
    assert mix.objective == pytest.approx(0.5 * mix.value_total + 0.5 * mix.value2_total)


# -- constraints are never broken ------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_lagrangian_never_breaks_any_constraint(seed: int) -> None:
    """Global, group, coverage and ROI constraints hold for random instances and settings."""
    rng = np.random.default_rng(100 + seed)
    value, cost, budget = world(seed, n=300, budget_share=float(rng.uniform(0.05, 0.6)))
    segments = rng.choice(["new", "active", "lost"], size=value.shape[0], p=[0.2, 0.6, 0.2])
    problem = typed_problem(
        value,
        cost,
        budget,
        type_budgets={"full_reduction": float(rng.uniform(0.05, 0.3)) * budget},
        merchant_budgets={7: float(rng.uniform(0.05, 0.2)) * budget, 9: 0.1 * budget},
        segments=segments,
        min_coverage={"new": float(rng.uniform(0.0, 0.4))},
        roi_floor=float(rng.choice([0.0, 0.005, 0.01])),
    )
    from optimizers.coupons import solve

    plan = solve(problem, "lagrangian")
    assert_feasible(problem, plan)
    assert plan.upper_bound >= plan.objective - 1e-9
    assert plan.coverage["new"] >= problem.min_coverage["new"] - 1e-12  # type: ignore[index]


@pytest.mark.parametrize("seed", range(3))
def test_lagrangian_with_several_constraints_is_close_to_exact(seed: int) -> None:
    """With groups, coverage and ROI the Lagrangian plan stays within 3% of the HiGHS optimum."""
    value, cost, budget = world(seed, n=200)
    segments = np.where(np.arange(200) < 50, "new", "active")
    kwargs = {
        "option_types": TYPES,
        "merchant_ids": MERCHANTS,
        "merchant_budgets": {7: 0.2 * budget, 9: 0.2 * budget},
        "type_budgets": {"full_reduction": 0.3 * budget},
        "segments": segments,
        "min_coverage": {"new": 0.5},
        "roi_floor": 0.005,
    }
    lag = allocate(value, cost, budget, method="lagrangian", **kwargs)
    exact = allocate(value, cost, budget, method="highs", rel_gap=1e-6, **kwargs)
    assert lag.objective >= 0.97 * exact.objective
    assert lag.upper_bound >= exact.objective - 1e-6
    assert exact.coverage["new"] >= 0.5


def test_merchant_options_spend_merchant_budget_not_global() -> None:
    """Merchant coupons count against their merchant's budget, not the global one."""
    value, cost, budget = world(4)
    plan = allocate(
        value,
        cost,
        budget,
        option_types=TYPES,
        merchant_ids=MERCHANTS,
        merchant_budgets={7: 5.0, 9: 0.0},
        method="highs",
    )
    assert (plan.choice != 5).all()  # merchant 9 has no money
    assert plan.group_spend["merchant_budget[7]"] <= 5.0 + 1e-9
    g = np.array([t != "merchant" for t in TYPES])
    rows = np.nonzero(plan.choice >= 0)[0]
    spent = (cost[rows, plan.choice[rows]] * g[plan.choice[rows]]).sum()
    assert plan.spend == pytest.approx(spent) and plan.spend <= budget


@pytest.mark.parametrize("method", ["lagrangian", "highs"])
def test_duals_and_spends_are_keyed_by_the_budgets_names(method: str) -> None:
    """Dual prices, group spends and constraints use the caller's budget names (joinable)."""
    value, cost, budget = world(7)
    groups = {"merchant_7": ([4], 2.0), "merchant_9": ([5], 2.0)}
    problem = CouponProblem(
        value=value, cost=cost, budget=budget, budget_name="platform", budget_groups=groups,
        global_options=[True] * 4 + [False] * 2,
    )  # fmt: skip
    assert [c.name for c in problem.constraints] == ["platform", "merchant_7", "merchant_9"]
    from optimizers.coupons import solve

    plan = solve(problem, method)
    assert set(plan.group_spend) == set(groups)
    if method == "lagrangian":  # the exact MIP reports no duals
        assert set(plan.dual) == {"platform", *groups}
        assert plan.dual["platform"] > 0
    for name, (idx, amount) in groups.items():
        picked = np.isin(plan.choice, idx)
        spent = cost[np.flatnonzero(picked), plan.choice[picked]].sum()
        assert plan.group_spend[name] == pytest.approx(spent) and spent <= amount + 1e-9


# -- infeasibility and validation ------------------------------------------------------------
def test_infeasible_coverage_is_explained() -> None:
    """A coverage floor that costs more than the budget raises an error naming both."""
    value, cost, _ = world(0, n=100)
    segments = np.where(np.arange(100) < 40, "new", "active")
    need = float(np.sort(cost[:40].min(axis=1))[:20].sum())
    with pytest.raises(InfeasibleError, match=r"min_coverage\['new'\] needs at least .* budget is"):
        allocate(value, cost, 0.5 * need, segments=segments, min_coverage={"new": 0.5})
    plan = allocate(value, cost, need * 1.0001, segments=segments, min_coverage={"new": 0.5})
    assert plan.coverage["new"] >= 0.5


def test_infeasible_roi_with_coverage_is_explained() -> None:
    """An ROI floor that forced coverage cannot meet raises an error naming both."""
    value, cost, _ = world(0, n=100)
    segments = np.full(100, "new")
    with pytest.raises(InfeasibleError, match="roi_floor"):
        allocate(value, cost, 1e9, segments=segments, min_coverage={"new": 1.0}, roi_floor=10.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost": np.ones((3, 2))}, r"cost has shape \(3, 2\) but value has shape \(4, 3\)"),
        ({"value": np.array([[1.0, np.nan, 0]] * 4)}, "value is not finite .* row 0 option 1"),
        ({"cost": -np.ones((4, 3))}, r"cost must be >= 0; cost\[0, 0\]"),
        ({"budget": -1.0}, "budget must be a non-negative number"),
        ({"weight": 0.5}, "needs value2"),
        ({"min_coverage": {"new": 0.5}}, "needs segments"),
        ({"segments": ["a"] * 4, "min_coverage": {"new": 0.5}}, "no user has it"),
        ({"option_types": ["coupon"] * 3}, "option_types\\[0\\]"),
        ({"budget_groups": {"g": ([5], 1.0)}}, "option index outside"),
        ({"budget_groups": {"budget": ([0], 1.0)}}, "the global budget's name"),
        (
            {
                "budget_groups": {"type_budget[red_packet]": ([0], 1.0)},
                "type_budgets": {"red_packet": 1.0},
            },
            r"two budgets are called 'type_budget\[red_packet\]'",
        ),
        ({"method": "simplex"}, "method must be one of"),
    ],
)
def test_validation_errors_name_the_fault(kwargs: dict, message: str) -> None:
    """Bad input raises ValueError naming the argument, shape, row or option at fault."""
    args = {"value": np.ones((4, 3)), "cost": np.ones((4, 3)), "budget": 1.0} | kwargs
    with pytest.raises(ValueError, match=message):
        allocate(**args)


# -- Pareto front ------------------------------------------------------------------------
def test_pareto_points_are_non_dominated_and_span_the_trade_off() -> None:
    """Pareto points are mutually non-dominated and sorted by value, GMV decreasing."""
    value, cost, budget = world(6, n=150)
    gmv = np.random.default_rng(3).uniform(0, 50, size=value.shape) * (FACE[::-1] / 10)
    front = pareto_front(value, gmv, cost, budget, n_points=7, method="lagrangian")
    assert len(front) >= 2
    for p in front:
        for q in front:
            if p is not q:
                assert not (q.value >= p.value and q.value2 >= p.value2)
    assert [p.value for p in front] == sorted(p.value for p in front)
    assert all(p.allocation.spend <= budget for p in front)


def test_non_dominated_filter_drops_dominated_points() -> None:
    """The filter keeps exactly the points no other point beats in both totals."""
    dummy = None
    pts = [ParetoPoint(0, 1, 5, dummy), ParetoPoint(0, 2, 4, dummy), ParetoPoint(0, 1.5, 3, dummy)]  # type: ignore[arg-type]
    kept = non_dominated(pts)
    assert [(p.value, p.value2) for p in kept] == [(1, 5), (2, 4)]


# -- online ------------------------------------------------------------------------------
def test_online_decide_takes_best_priced_option_within_budget() -> None:
    """decide picks argmax value - price*cost, -1 when none is positive, never overspends."""
    pacer = OnlineAllocator(0.1, budget=5.0, horizon=1)
    assert pacer.decide([0.2, 0.6, 0.1], [1.0, 4.0, 0.5]) == 1  # scores 0.1, 0.2, 0.05
    assert pacer.decide(np.array([0.01, 0.02]), np.array([1.0, 1.0])) == -1
    assert pacer.decide([5.0], [2.0]) == -1  # only 1.0 of budget left
    assert pacer.spent == pytest.approx(4.0)


def test_online_pacing_raises_price_after_overspending() -> None:
    """The PI controller raises the price when spend runs ahead of the plan."""
    pacer = OnlineAllocator(1.0, budget=100.0, horizon=4)
    for _ in range(40):
        pacer.decide([2.0], [1.0])  # 40 spent vs 25 planned
    pacer.end_period()
    assert pacer.price > 1.0


@pytest.mark.parametrize("price_error", [1.0, 0.5, 2.0])
def test_online_simulation_tracks_budget(price_error: float) -> None:
    """A replayed day never exceeds the budget and ends within a few % of it."""
    value, cost, budget = world(7, n=6000, budget_share=0.3)
    report = simulate_day(value, cost, budget, price_error=price_error, seed=1)
    assert report.spend <= budget + 1e-9
    assert report.spend_pct >= 93.0
    assert report.value_pct >= 90.0 and report.value <= report.offline_bound + 1e-9
    assert report.us_per_request < 200.0  # loose: 2 shared cores


def test_module_docstring_example_runs() -> None:
    """The documented example of optimizers.coupons runs as written."""
    import doctest

    import optimizers.certificate
    import optimizers.coupons
    import optimizers.coupons.online

    for mod in (optimizers.coupons, optimizers.certificate, optimizers.coupons.online):
        result = doctest.testmod(mod)
        assert result.failed == 0 and result.attempted > 0


def test_exact_methods_honour_groups_coverage_and_roi() -> None:
    """CP-SAT and HiGHS plans satisfy every side constraint and agree on the optimum."""
    value, cost, budget = world(11, n=120)
    segments = np.where(np.arange(120) < 30, "new", "active")
    problem = typed_problem(
        value,
        cost,
        budget,
        merchant_budgets={7: 0.1 * budget, 9: 0.1 * budget},
        type_budgets={"full_reduction": 0.2 * budget},
        segments=segments,
        min_coverage={"new": 0.6},
        roi_floor=0.005,
    )
    from optimizers.coupons import solve

    highs = solve(problem, "highs", rel_gap=1e-6)
    cpsat = solve(problem, "cpsat", rel_gap=1e-6, time_limit_s=20)
    for plan in (highs, cpsat):
        assert_feasible(problem, plan)
        assert plan.coverage["new"] >= 0.6
    assert cpsat.objective == pytest.approx(highs.objective, rel=1e-3)


def test_auto_method_adds_the_exact_mip_only_where_the_lagrangian_misses_the_gap() -> None:
    """method='auto': the Lagrangian plan when it certifies ``rel_gap``; on a small instance
    where it does not (100 users), the exact MIP's better plan and bound."""
    value, cost, budget = world(12, n=100)
    lag = allocate(value, cost, budget, method="lagrangian")
    auto = allocate(value, cost, budget)
    assert lag.gap > 1e-4 and auto.method == "highs" and auto.gap <= 1e-4
    value, cost, budget = world(12, n=2500)
    assert allocate(value, cost, budget).method == "lagrangian"


def test_summary_and_frame_describe_the_plan() -> None:
    """describe() reports the certificate, summary() is JSON-safe, to_frame() has a row per user."""
    value, cost, budget = world(13, n=50)
    plan = allocate(value, cost, budget, method="lagrangian")
    text = plan.describe()
    assert "lagrangian" in text and "gap=" in text and "budget=" in text
    summary = plan.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["method"] == "lagrangian" and summary["dual"] == plan.dual
    frame = plan.to_frame()
    assert list(frame.columns) == ["user", "option"] and len(frame) == 50
    np.testing.assert_array_equal(frame["option"].to_numpy(), plan.choice)
    assert sum(plan.option_counts.values()) == 50


@pytest.mark.slow
def test_million_users_single_budget_is_tight() -> None:
    """1e6 users x 6 options, one budget: within 0.1% of the bound (speed: see benchmarks)."""
    value, cost, _ = world(0, n=1_000_000)
    budget = 0.3 * float(cost.min(axis=1).sum())
    plan = allocate(value, cost, budget, method="lagrangian")
    assert plan.gap < 1e-3 and plan.spend <= budget


def test_several_budgets_on_a_large_instance_stay_feasible_and_tight() -> None:
    """Above the subsample size the warm-started multi-budget dual keeps every budget and a tight gap."""
    rng = np.random.default_rng(3)
    n = 120_000  # > 2 x the subsample, so the warm start runs
    value = rng.uniform(0.0, 0.05, size=(n, 6))
    cost = rng.uniform(0.2, 3.0, size=(n, 6)) * (1.0 + 10.0 * value)
    groups = {"merchant_0": ([4], 300.0), "merchant_1": ([5], 300.0)}
    plan = allocate(
        value,
        cost,
        2_000.0,
        global_options=np.array([True, True, True, True, False, False]),
        budget_groups=groups,
        method="lagrangian",
    )
    picked = plan.choice >= 0
    spent = cost[np.flatnonzero(picked), plan.choice[picked]]
    option = plan.choice[picked]
    assert spent[option < 4].sum() <= 2_000.0 + 1e-6
    for name, (idx, amount) in groups.items():
        assert spent[np.isin(option, idx)].sum() <= amount + 1e-6, name
    assert plan.upper_bound >= plan.objective - 1e-9
    assert plan.gap < 1e-3


def test_fill_without_constraints_gives_every_user_their_best_option():
    """With no budget at all, fill takes each user's most valuable positive option."""
    import math

    from optimizers.coupons.problem import CouponProblem
    from optimizers.coupons.repair import fill

    rng = np.random.default_rng(0)
    value = rng.normal(0.0, 1.0, (500, 3))
    problem = CouponProblem(value=value, cost=rng.random((500, 3)), budget=math.inf)
    assert not problem.constraints
    choice = fill(problem, np.full(500, -1))
    best = np.where(value.max(axis=1) > 0, value.argmax(axis=1), -1)
    np.testing.assert_array_equal(choice, best)
