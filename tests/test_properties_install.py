"""Property-based checks of install control against an independent exact search.

Random instances of one to three channels (concave and S-shaped Hill curves,
saturation levels and half-saturation spends over seven orders of magnitude,
zero budgets, min/max spends, CPI caps, targets up to and beyond what the
budget can buy) are solved by ``optimize_installs`` / ``pareto_front`` /
``cheapest_budget`` and searched by :mod:`exact_install` on the true curves.
Properties:

* a returned plan is feasible in exact arithmetic against each limit itself;
* the reported upper bound is at least the value of the best exactly feasible
  plan the search finds (for a Pareto point: of its own epsilon problem);
* the status agrees with the gap and the objective is the plan's own;
* 'infeasible' comes with the conflicting constraints, and only when no plan exists;
* ``cheapest_budget``'s lower bound is at most a budget that provably suffices.
"""

from __future__ import annotations

import math

import numpy as np
from exact_install import METRICS, InstallInstance, best_plan, saturation, total, violations
from hypothesis import assume, example, given
from hypothesis import strategies as st
from property_checks import (
    assert_bound_holds,
    assert_certificate_agrees,
    noise,
    property_settings,
)

from optimizers.install import HillCurve, cheapest_budget, optimize_installs, pareto_front

SETTINGS = property_settings(max_examples=20)
RATES = (0.125, 0.25, 0.5, 0.75, 1.0)  # dyadic: l * r is exact in floats too

# cheapest_budget at mixed scales (a channel saturating at 1e4 beside one at 2): the plan
# buys 0.00149 installs for a target of 0.00188 and is called 'feasible'.
CHEAPEST_MISSES_TARGET = InstallInstance(
    curves=[(0.01, 10.0, 0.3), (0.01, 0.1, 1.5)],
    login_rate=[0.125, 0.125],
    retention_rate=[0.125, 0.125],
    budget=0.0,
)
# A channel pinned at min_spend = max_spend = 0.0009000000000000001: the plan spends an ulp more.
PINNED_SPEND = InstallInstance(
    curves=[(0.01, 0.1, 0.3)],
    login_rate=[0.125],
    retention_rate=[0.125],
    budget=0.001,
    min_spend={"c0": 0.0009000000000000001},
    max_spend={"c0": 0.0009000000000000001},
)
# Three equal channels under a total CPI cap: the plan breaks it by 1.6e-12 of its spend.
OVER_CPI_TOTAL = InstallInstance(
    curves=[(0.01, 0.1, 0.3)] * 3,
    login_rate=[0.125] * 3,
    retention_rate=[0.125] * 3,
    budget=0.09000000000000001,
    cpi_max_total=5.000000000000001,
)
# No budget, any positive target: the status reads 'unknown', not 'infeasible'.
NOTHING_TO_SPEND = InstallInstance(
    curves=[(0.01, 0.1, 0.3)], login_rate=[0.125], retention_rate=[0.125], budget=0.0
)
# A target beyond reach beside a CPI conflict: the target's slack (in units of the mean
# vmax, 5e4) falls below the conflict threshold and is not named.
HIDDEN_TARGET_CONFLICT = InstallInstance(
    curves=[(0.01, 0.1, 0.3), (100000.0, 0.1, 0.3)],
    login_rate=[0.125, 0.125],
    retention_rate=[0.125, 0.125],
    budget=0.002,
    min_spend={"c0": 0.0002},
    max_spend={"c1": 0.0},
    cpi_max_total=9.999999000000102e-07,
)
# Two equal tiny channels: the middle point of the installs-logins front spends the budget
# plus an ulp.
FRONT_OVER_BUDGET = InstallInstance(
    curves=[(0.01, 0.1, 0.3), (0.01, 0.1, 0.3)],
    login_rate=[0.125, 0.125],
    retention_rate=[0.125, 0.125],
    budget=0.002,
)


# --------------------------------------------------------------------------- strategies
@st.composite
def install_instances(draw: st.DrawFn, *, targets: bool = True) -> InstallInstance:
    """One to three channels at any scale, with any of the operator's limits."""
    n = draw(st.integers(1, 3))
    curves = [
        (
            draw(st.sampled_from([0.01, 1.0, 50.0, 1e3, 1e5])) * draw(st.sampled_from([1.0, 1.7])),
            draw(st.sampled_from([0.1, 10.0, 1e3, 1e5])),
            draw(st.sampled_from([0.3, 0.5, 0.8, 1.0, 1.5, 2.5, 4.0])),
        )
        for _ in range(n)
    ]
    inst = InstallInstance(
        curves=curves,
        login_rate=[draw(st.sampled_from(RATES)) for _ in range(n)],
        retention_rate=[draw(st.sampled_from(RATES)) for _ in range(n)],
        budget=sum(k for _, k, _ in curves) * draw(st.sampled_from([0.0, 0.01, 0.3, 1.0, 5.0])),
        objective=draw(st.sampled_from(METRICS)),
    )
    c = draw(st.sampled_from(inst.names))
    vmax, k, _ = curves[inst.names.index(c)]
    if draw(st.booleans()):
        inst.min_spend = {c: inst.budget * draw(st.sampled_from([0.1, 0.5, 0.9]))}
    if draw(st.booleans()):
        d = draw(st.sampled_from(inst.names))
        top = inst.budget * draw(st.sampled_from([0.0, 0.2, 0.6]))
        inst.max_spend = {d: max(top, inst.min_spend.get(d, 0.0))}
    if draw(st.booleans()):
        inst.cpi_max = {c: k / vmax * draw(st.sampled_from([0.5, 1.0, 2.0, 5.0]))}
    if draw(st.booleans()):
        ratio = sum(cv[1] for cv in curves) / sum(cv[0] for cv in curves)
        inst.cpi_max_total = ratio * draw(st.sampled_from([0.5, 1.0, 3.0]))
    if targets and draw(st.booleans()):
        metric = draw(st.sampled_from(METRICS))
        share = draw(st.sampled_from([0.1, 0.5, 0.9, 1.0 - 1e-9]))
        inst.targets = {metric: float(_reachable(inst, metric)) * share}
    return inst


def _reachable(inst: InstallInstance, metric: str) -> float:
    """``metric`` with every channel at its largest allowed spend (no plan gets more)."""
    top = [min(inst.max_spend.get(c, math.inf), inst.budget) for c in inst.names]
    return float(total(inst, np.array(top), metric))


# --------------------------------------------------------------------------- helpers
def _reference(inst: InstallInstance, metric: str, targets: dict) -> tuple[object, str]:
    """Value and description of the best exactly feasible split found (or None)."""
    value, spend = best_plan(inst, metric, budget=inst.budget, targets=targets)
    return value, "" if spend is None else f"split {spend.tolist()}"


def _optimize(inst: InstallInstance):
    return optimize_installs(
        inst.models(), inst.budget, objective=inst.objective, limits=inst.limits()
    )


# --------------------------------------------------------------------------- properties
@SETTINGS
@example(inst=PINNED_SPEND)
@example(inst=OVER_CPI_TOTAL)
@given(inst=install_instances())
def test_install_plan_is_feasible_in_exact_arithmetic(inst):
    """Every plan that is not declared infeasible keeps every limit exactly."""
    plan = _optimize(inst)
    assume(plan.status != "infeasible")
    spend = plan.spend.to_numpy()
    broken = violations(inst, spend, budget=inst.budget, targets=inst.targets)
    assert not broken, f"plan {spend.tolist()} ({plan.status}) breaks {broken}: {plan.message}"
    assert plan.status in ("optimal", "feasible"), plan.message


@SETTINGS
@given(inst=install_instances())
def test_install_bound_is_at_least_the_optimum(inst):
    """The upper bound is at least the value of every exactly feasible split found."""
    plan = _optimize(inst)
    assume(plan.status != "infeasible")
    best, where = _reference(inst, inst.objective, inst.targets)
    assume(best is not None)
    assert_bound_holds(plan.upper_bound, best, where)


@SETTINGS
@given(inst=install_instances())
def test_install_status_agrees_with_gap(inst):
    """'optimal' only within OPTIMAL_RTOL; NaN gap without a bound; objective is the plan's."""
    plan = _optimize(inst)
    if plan.status == "infeasible":
        assert math.isnan(plan.gap)
        return
    value = total(inst, plan.spend.to_numpy(), inst.objective)
    assert_certificate_agrees(plan, value, lambda: _reference(inst, inst.objective, inst.targets))


@SETTINGS
@example(inst=NOTHING_TO_SPEND, beyond=1.5)
@example(inst=HIDDEN_TARGET_CONFLICT, beyond=1.5)
@given(inst=install_instances(), beyond=st.sampled_from([None, 1.5, 1.0 + 1e-9]))
def test_install_infeasible_names_conflicts_and_only_without_a_plan(inst, beyond):
    """'infeasible' carries its conflicts and a NaN gap, and only when no split exists.

    ``beyond`` sets a target above what every channel at its largest spend buys.
    """
    if beyond is not None:
        metric = inst.objective
        inst.targets = {metric: _reachable(inst, metric) * beyond + 1e-12}
    plan = _optimize(inst)
    if beyond is not None:
        assert plan.status == "infeasible", f"target beyond reach, yet {plan.status}"
    if plan.status != "infeasible":
        return
    assert math.isnan(plan.gap)
    assert plan.conflicts, plan.message
    for conflict in plan.conflicts:
        assert conflict.name in plan.message
    if beyond is not None:
        assert f"target[{inst.objective}]" in [c.name for c in plan.conflicts], plan.message
    value, spend = best_plan(inst, inst.objective, budget=inst.budget, targets=inst.targets)
    assert value is None, f"declared infeasible, but {spend.tolist()} meets every limit"


@property_settings(max_examples=10)
@example(inst=FRONT_OVER_BUDGET, pair=("installs", "logins"))
@given(inst=install_instances(), pair=st.permutations(METRICS).map(lambda p: tuple(p[:2])))
def test_pareto_points_certify_their_epsilon_problems(inst, pair):
    """Each front point is exactly feasible for its epsilon problem and its bound holds."""
    first, second = pair
    try:
        front = pareto_front(inst.models(), inst.budget, pair, n_points=3, limits=inst.limits())
    except ValueError as err:
        assert "no feasible plan" in str(err)
        return
    for eps, point in zip(front.epsilons, front.points, strict=True):
        targets = {**inst.targets, second: max(float(eps), inst.targets.get(second, 0.0))}
        spend = point.spend.to_numpy()
        broken = violations(inst, spend, budget=inst.budget, targets=targets)
        assert not broken, f"point at epsilon {eps!r}: {spend.tolist()} breaks {broken}"
        best, where = _reference(inst, first, targets)
        if best is not None:
            assert_bound_holds(point.upper_bound, best, f"{where} (epsilon {eps!r})")


CHEAPEST_CASES = {
    "inst": install_instances(targets=False),
    "metric": st.sampled_from(METRICS),
    "share": st.sampled_from([0.1, 0.5, 0.9]),
}


def _cheapest(inst: InstallInstance, metric: str, share: float):
    """``cheapest_budget`` for ``share`` of what the channels can buy, and the targets posed."""
    inst.max_spend = {c: max(v, 1.0) for c, v in inst.max_spend.items()}
    inst.min_spend = {}
    goal = {metric: float(_reachable_unbudgeted(inst, metric)) * share}
    plan = cheapest_budget(inst.models(), goal, limits=inst.limits(targets={}))
    return plan, {**inst.targets, **goal}


@SETTINGS
@example(inst=CHEAPEST_MISSES_TARGET, metric="installs", share=0.1)
@given(**CHEAPEST_CASES)
def test_cheapest_budget_plan_meets_its_targets_exactly(inst, metric, share):
    """The cheapest plan keeps every limit and meets every target in exact arithmetic."""
    plan, targets = _cheapest(inst, metric, share)
    assume(plan.status != "infeasible")
    spend = plan.spend.to_numpy()
    broken = violations(inst, spend, budget=None, targets=targets)
    assert not broken, f"cheapest plan {spend.tolist()} ({plan.status}) breaks {broken}"


@SETTINGS
@given(**CHEAPEST_CASES)
def test_cheapest_budget_lower_bound_is_below_the_least_budget(inst, metric, share):
    """The lower bound is at most the spend of every exactly feasible split found."""
    plan, targets = _cheapest(inst, metric, share)
    value, best = best_plan(inst, "spend", budget=None, targets=targets)
    if plan.status == "infeasible":
        assert value is None, f"declared infeasible, but {best.tolist()} meets the targets"
        return
    assert plan.lower_bound <= plan.min_budget
    if value is not None:
        assert plan.lower_bound <= float(value) + noise(value), (
            f"lower bound {plan.lower_bound!r} > {float(value)!r}, the spend of the exactly "
            f"feasible split {best.tolist()}"
        )


def _reachable_unbudgeted(inst: InstallInstance, metric: str) -> float:
    """``metric`` with every channel at its max_spend or its saturation cap (no budget)."""
    top = [
        inst.max_spend.get(c, saturation(k, a))
        for c, (_, k, a) in zip(inst.names, inst.curves, strict=True)
    ]
    return float(total(inst, np.array(top), metric))


def test_reference_search_finds_known_optima():
    """The exact search reaches optima known in closed form (its own check)."""
    one = InstallInstance(
        curves=[(100.0, 50.0, 0.8)], login_rate=[1.0], retention_rate=[1.0], budget=600.0
    )
    value, _ = best_plan(one, "installs", budget=600.0, targets={})
    assert float(value) == float(HillCurve(100.0, 50.0, 0.8)(600.0))
    two = InstallInstance(
        curves=[(100.0, 50.0, 0.8)] * 2,
        login_rate=[1.0] * 2,
        retention_rate=[1.0] * 2,
        budget=600.0,
    )
    value, _ = best_plan(two, "installs", budget=600.0, targets={})
    assert float(value) >= 2 * float(HillCurve(100.0, 50.0, 0.8)(300.0)) * (1 - 1e-9)
    least = 50.0 * (40.0 / 60.0) ** (1 / 0.8)  # f(s) = 40 installs
    value, spend = best_plan(one, "spend", budget=None, targets={"installs": 40.0})
    assert least * (1 - 1e-12) <= float(value) <= least * (1 + 1e-9)
    assert not violations(one, spend, budget=None, targets={"installs": 40.0})
