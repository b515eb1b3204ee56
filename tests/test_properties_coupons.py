"""Property-based checks of every coupon method against an independent exact model.

Random small instances (adversarial scales from 1e-6 to 1e7, ties, zeros, tight
budgets, every constraint kind) are solved by ``allocate`` and by the HiGHS model
of :mod:`exact_coupons`, written from the maths.  Properties, for every method:

* a returned plan is feasible in exact arithmetic against each limit itself;
* the reported upper bound is at least the value of the reference's exactly
  feasible optimum (so at least a certain lower bound on the true optimum);
* the status agrees with the gap: 'optimal' only within ``OPTIMAL_RTOL``, no bound
  gives a NaN gap, the objective is the plan's own and never above its bound;
* an infeasible instance raises ``InfeasibleError`` naming the conflicting
  constraints, and ``InfeasibleError`` is never raised when a plan exists.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from exact_coupons import CouponInstance, brute_force, objective, reference_optimum, violations
from exact_mip import exact
from hypothesis import assume, example, given
from hypothesis import strategies as st
from property_checks import assert_bound_holds, assert_certificate_agrees, property_settings

from optimizers.certificate import InfeasibleError
from optimizers.coupons import OPTION_TYPES, RepairFailedError, allocate

METHODS = ("lagrangian", "highs", "cpsat", "auto")
SETTINGS = property_settings(max_examples=40)
MAGNITUDES = (0.0, 1e-6, 1e-3, 0.25, 1.0, 3.0, 1e3, 1e7)


# The case: CP-SAT's rounded rows shrink the problem; optimum 100, bound was 10.00015.
_V, _C = np.ones((300, 1)), np.ones((300, 1))
_V[0, 0], _C[0, 0] = 1e-3, 1e7
CPSAT_SCALES = CouponInstance(value=_V, cost=_C, budget=100.0)
# One coupon costing the budget plus 5e-10 of it: taking it breaks the budget (a tolerance).
OVER_BY_TOLERANCE = CouponInstance(
    value=np.array([[1.0]]), cost=np.array([[1.0 + 5e-10]]), budget=1.0
)
# The same at a small scale: an absolute tolerance of 1e-9 is 1e-6 of this budget.
OVER_SMALL_BUDGET = CouponInstance(
    value=np.array([[1.0]]), cost=np.array([[1.5e-06]]), budget=1.4999985e-06
)
# Both users must get their coupon and 2.67 + 2.8 <= 5.47 exactly, yet CP-SAT's rounded
# rows make it "prove" that no plan exists.
CPSAT_FALSE_INFEASIBLE = CouponInstance(
    value=np.array([[1.0], [1.0]]),
    cost=np.array([[2.67], [2.8]]),
    budget=5.47,
    segments=("s", "s"),
    min_coverage={"s": 1.0},
)

# Covering the one user costs 1 > budget 1 - 1e-12: within the feasibility check's tolerance.
COVERAGE_OVER_BUDGET = CouponInstance(
    value=np.array([[1.0]]),
    cost=np.array([[1.0]]),
    budget=0.999999999999,
    segments=("new",),
    min_coverage={"new": 0.5},
)
# Covering the one user loses 1e-9 against the ROI floor (the Lagrangian's bound was -1.3e7).
COVERAGE_BELOW_ROI = CouponInstance(
    value=np.array([[0.999999999]]),
    cost=np.array([[1.0]]),
    budget=math.inf,
    segments=("new",),
    min_coverage={"new": 0.5},
    roi_floor=1.0,
)


# --------------------------------------------------------------------------- strategies
def _cells(draw: st.DrawFn, shape: tuple[int, int], scale: str, signed: bool) -> np.ndarray:
    """A matrix of one scale: 'unit' floats, 'ties' (few values) or 'adversarial' magnitudes."""
    if scale == "unit":
        cell = st.floats(0.01, 10.0, allow_nan=False, allow_infinity=False)
    elif scale == "ties":
        cell = st.sampled_from([0.0, 1.0, 2.0])
    else:
        cell = st.builds(
            lambda m, f: m * f,
            st.sampled_from(MAGNITUDES),
            st.sampled_from([1.0, 1.5, 1.0 + 5e-10, 1.0 - 1e-12]),
        )
    flat = draw(st.lists(cell, min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]))
    out = np.array(flat, dtype=np.float64).reshape(shape)
    if signed:
        signs = draw(
            st.lists(st.sampled_from([1.0, 1.0, 1.0, -1.0]), min_size=out.size, max_size=out.size)
        )
        out = out * np.array(signs).reshape(shape)
    return out


def _amount(draw: st.DrawFn, coef: np.ndarray) -> float:
    """A limit for rows ``coef``: a share of the total, or tight at a random plan's usage."""
    mode = draw(st.sampled_from(["share", "tight", "tight"]))
    if mode == "share":
        total = float(np.abs(coef).max(axis=1).sum())
        return total * draw(st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.5]))
    n, k = coef.shape
    picks = draw(st.lists(st.integers(-1, k - 1), min_size=n, max_size=n))
    used = sum((exact(coef[u, j]) for u, j in enumerate(picks) if j >= 0), Fraction(0))
    return float(used) * draw(st.sampled_from([1.0, 1.0 - 1e-12, 1.0 - 5e-10, 1.0 + 5e-10]))


@st.composite
def coupon_instances(draw: st.DrawFn, max_users: int = 8, max_options: int = 3) -> CouponInstance:
    """A random small instance with any of the constraint kinds."""
    n = draw(st.integers(1, max_users))
    k = draw(st.integers(1, max_options))
    scale = draw(st.sampled_from(["unit", "ties", "adversarial"]))
    value = _cells(draw, (n, k), scale, signed=draw(st.booleans()))
    cost = _cells(draw, (n, k), draw(st.sampled_from(["unit", "ties", "adversarial"])), False)
    inst = CouponInstance(value=value, cost=cost, budget=0.0)
    if draw(st.booleans()):  # option types, merchants and their budgets
        types = tuple(draw(st.lists(st.sampled_from(OPTION_TYPES), min_size=k, max_size=k)))
        inst.option_types = types
        inst.merchant_ids = tuple(
            draw(st.sampled_from([7, 8])) if t == "merchant" else None for t in types
        )
        t = draw(st.sampled_from(types))
        inst.type_budgets = {t: _amount(draw, cost * (np.array(types) == t))}
        merchants = sorted({m for m in inst.merchant_ids if m is not None})
        if merchants:
            m = draw(st.sampled_from(merchants))
            mask = np.array([mid == m for mid in inst.merchant_ids])
            inst.merchant_budgets = {m: _amount(draw, cost * mask)}
    if draw(st.booleans()):
        idx = tuple(sorted(set(draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k)))))
        mask = np.zeros(k, dtype=bool)
        mask[list(idx)] = True
        inst.budget_groups = {"group_a": (idx, _amount(draw, cost * mask))}
    if draw(st.booleans()):  # coverage floors whose ceil no float convention decides
        seg = draw(st.lists(st.sampled_from(["new", "active"]), min_size=n, max_size=n))
        inst.segments = tuple(seg)
        s = draw(st.sampled_from(sorted(set(seg))))
        size = seg.count(s)
        need = draw(st.integers(0, size))
        inst.min_coverage = {
            s: draw(
                st.sampled_from(
                    [max(0.0, (need - 0.5) / size), need / size if size in (1, 2, 4, 8) else 0.0]
                )
            )
        }
    if draw(st.booleans()):
        inst.roi_floor = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e3]))
    g = np.array([t != "merchant" for t in inst.option_types or ("red_packet",) * k])
    inst.budget = math.inf if draw(st.integers(0, 9)) == 0 else _amount(draw, cost * g[None, :])
    return inst


@st.composite
def infeasible_floors(draw: st.DrawFn) -> CouponInstance:
    """Coverage that provably costs more than the budget, or cannot meet the ROI floor."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 3))
    cost = _cells(draw, (n, k), draw(st.sampled_from(["unit", "adversarial"])), False)
    cost = np.where(cost > 0, cost, 1.0)
    value = np.abs(_cells(draw, (n, k), "unit", False))
    need = draw(st.integers(1, n))
    cover = {"new": (need - 0.5) / n}
    segments = ("new",) * n
    if draw(st.booleans()):  # every coupon loses money against the ROI floor
        rho = draw(st.sampled_from([1.0, 2.0, 1e3]))
        value = cost * rho * draw(st.sampled_from([0.5, 1.0 - 1e-9]))
        assert all(
            exact(v) < exact(rho) * exact(c) for v, c in zip(value.flat, cost.flat, strict=True)
        )
        return CouponInstance(
            value, cost, math.inf, segments=segments, min_coverage=cover, roi_floor=rho
        )
    cheapest = sum(sorted(exact(c) for c in cost.min(axis=1))[:need], Fraction(0))
    budget = float(cheapest) * draw(st.sampled_from([0.0, 0.5, 1.0 - 1e-6, 1.0 - 1e-12, 1.0]))
    while exact(budget) >= cheapest:
        budget = float(np.nextafter(budget, -1.0))
    return CouponInstance(value, cost, max(budget, 0.0), segments=segments, min_coverage=cover)


# --------------------------------------------------------------------------- helpers
def _solve(inst: CouponInstance, method: str):
    """The allocation, or None when the method refused the instance as infeasible."""
    try:
        return allocate(**inst.kwargs(), method=method, time_limit_s=20.0)
    except (InfeasibleError, RepairFailedError):
        return None


def _reference(inst: CouponInstance) -> tuple[Fraction | None, str]:
    """Value and description of the reference's exactly feasible optimum (or None)."""
    ref, choice = reference_optimum(inst)
    return ref.value, "" if choice is None else f"plan {choice.tolist()}"


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@example(inst=OVER_BY_TOLERANCE)
@example(inst=OVER_SMALL_BUDGET)
@given(inst=coupon_instances())
def test_coupon_plan_is_feasible_in_exact_arithmetic(method, inst):
    """Every returned plan keeps every limit in exact arithmetic (never limit + tolerance)."""
    plan = _solve(inst, method)
    assume(plan is not None)
    broken = violations(inst, plan.choice)
    assert not broken, f"{method} plan {plan.choice.tolist()} breaks {broken} exactly"


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@example(inst=CPSAT_SCALES)
@given(inst=coupon_instances())
def test_coupon_bound_is_at_least_the_optimum(method, inst):
    """The reported upper bound is at least the value of an exactly feasible optimum."""
    plan = _solve(inst, method)
    assume(plan is not None)
    best, where = _reference(inst)
    assume(best is not None)
    assert_bound_holds(plan.upper_bound, best, where)


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@example(inst=CPSAT_SCALES)
@example(inst=OVER_BY_TOLERANCE)
@given(inst=coupon_instances())
def test_coupon_status_agrees_with_gap(method, inst):
    """'optimal' only within OPTIMAL_RTOL of a bound that holds; objective is the plan's own."""
    plan = _solve(inst, method)
    assume(plan is not None)
    scale = float(np.abs(inst.value).max(initial=0.0)) * inst.value.shape[0]
    value = objective(inst, plan.choice)
    assert_certificate_agrees(plan, value, lambda: _reference(inst), scale=scale)
    if plan.status == "optimal":
        assert not violations(inst, plan.choice), "an 'optimal' plan breaks a limit"


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@example(inst=CPSAT_FALSE_INFEASIBLE)
@given(inst=coupon_instances())
def test_coupon_infeasible_only_without_a_plan(method, inst):
    """InfeasibleError is raised only when no exactly feasible plan exists."""
    try:
        allocate(**inst.kwargs(), method=method, time_limit_s=20.0)
    except RepairFailedError:  # the Lagrangian's documented "no plan found", not a proof
        assert method == "lagrangian"
    except InfeasibleError as err:
        _, choice = reference_optimum(inst)
        assert choice is None, f"{method} raised {err} but {choice.tolist()} is feasible"


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@example(inst=COVERAGE_OVER_BUDGET)
@example(inst=COVERAGE_BELOW_ROI)
@given(inst=infeasible_floors())
def test_coupon_infeasible_floors_raise_naming_the_constraints(method, inst):
    """Coverage that costs more than the budget (or loses ROI) raises InfeasibleError naming both.

    The conflict is one budget (or the ROI floor) against the coverage floors, which the
    problem's own feasibility check promises to detect exactly, for every method.
    """
    try:
        plan = allocate(**inst.kwargs(), method=method, time_limit_s=20.0)
    except InfeasibleError as err:
        msg = str(err)
        assert "min_coverage" in msg and ("budget" in msg or "roi_floor" in msg), msg
        return
    pytest.fail(
        f"{method} returned a plan for an infeasible instance: {plan.choice.tolist()} "
        f"breaks {violations(inst, plan.choice)} (status {plan.status!r})"
    )


# HiGHS takes all three (0.01 * 3 breaks 0.03 by 6e-18, inside its tolerance): the
# reference must tighten past the tolerance, not by ulps, to reach the optimum of 2.
@property_settings(max_examples=60)
@given(inst=coupon_instances(max_users=4, max_options=2))
@example(inst=CouponInstance(value=np.ones((3, 1)), cost=np.full((3, 1), 0.01), budget=0.03))
def test_reference_mip_matches_brute_force(inst):
    """The reference MIP finds the exact optimum that enumerating every plan finds."""
    best, _ = brute_force(inst)
    ref, choice = reference_optimum(inst)
    if best is None:
        assert choice is None
        return
    assert choice is not None and not violations(inst, choice)
    tol = Fraction(1, 10**9) * max(
        Fraction(1), sum((abs(exact(v)) for v in inst.value.flat), Fraction(0))
    )
    assert ref.value >= best - tol
