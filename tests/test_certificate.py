"""The one certificate rule every optimizer's result obeys (optimizers/certificate.py)."""

from __future__ import annotations

import math

import pytest

from optimizers.certificate import OPTIMAL_RTOL, Certificate, CertificateError


def cert(status: str, objective: float, bound: float, **kw) -> Certificate:
    return Certificate(
        status=status, objective=objective, upper_bound=bound, solve_time_s=0.0, method="t", **kw
    )


@pytest.mark.parametrize("claimed", ["optimal", "feasible"])
def test_optimal_only_within_the_stated_tolerance(claimed):
    """A solver's own label does not decide: the gap against OPTIMAL_RTOL does (install
    control used to call a 1 % gap optimal)."""
    assert cert(claimed, 100.0 * (1 - OPTIMAL_RTOL / 2), 100.0).status == "optimal"
    assert cert(claimed, 99.0, 100.0).status == "feasible"
    assert cert(claimed, 99.0, 100.0, rtol=0.02).status == "optimal"


@pytest.mark.parametrize("bound", [math.inf, math.nan])
def test_a_missing_bound_is_a_missing_gap(bound):
    """``max(0, nan)`` used to report a gap of 0 for a plan without a bound."""
    c = cert("optimal", 5.0, bound)
    assert math.isnan(c.gap) and c.status == "feasible"


def test_no_plan_has_no_gap():
    assert math.isnan(cert("infeasible", math.nan, -math.inf).gap)


def test_an_objective_above_its_bound_raises_instead_of_a_gap_of_zero():
    """A plan worth more than its proven bound means the plan or the bound is wrong."""
    with pytest.raises(CertificateError, match="exceeds its upper bound"):
        cert("optimal", 100.0556, 100.0)
    assert cert("optimal", 100.0 * (1 + 1e-12), 100.0).gap == 0.0  # float noise only
