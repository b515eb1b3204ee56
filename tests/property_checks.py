"""What every optimizer's certificate must satisfy, checked against a reference, in one place.

Used by the property suites (``test_properties_*.py``).  ``value`` arguments are
exact (``Fraction``) values computed by the independent models (``exact_*.py``):
the plan's own objective, and the objective of a plan the reference proved
feasible in exact arithmetic (a certain lower bound on the optimum).  The only
allowance is :data:`~optimizers.certificate.BOUND_NOISE`, the relative float
noise between two sums of the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

from hypothesis import HealthCheck, settings

from optimizers.certificate import BOUND_NOISE, OPTIMAL_RTOL, Certificate


def property_settings(max_examples: int) -> settings:
    """Deterministic examples (the same in CI every time), no deadline, no database."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def noise(x: float) -> float:
    """Float noise allowed around ``x``."""
    return BOUND_NOISE * max(1.0, abs(float(x)))


def assert_bound_holds(bound: float, best: Fraction, where: str) -> None:
    """``bound`` is at least ``best``, the exact value of a feasible plan (``where`` says which)."""
    assert bound >= float(best) - noise(best), (
        f"upper bound {bound!r} < {float(best)!r}, the value of the exactly feasible {where}"
    )


def assert_certificate_agrees(
    cert: Certificate,
    value: Fraction,
    reference: Callable[[], tuple[Fraction | None, str]],
    *,
    scale: float = 0.0,
) -> None:
    """The status, gap and objective of ``cert`` agree with each other and with the plan.

    ``value``: the plan's exact objective.  ``reference()`` (called only for an
    'optimal' claim) returns the value of an exactly feasible plan and its
    description, or ``(None, '')``.  Checks: the objective is the plan's own; no
    finite bound means a NaN gap and no 'optimal'; the objective is never above
    the bound; 'optimal' exactly when the gap is within ``OPTIMAL_RTOL``; and an
    'optimal' plan is within that gap of every feasible plan.  ``scale`` (the sum of
    the plan's terms' magnitudes) sizes the float error allowed in the objective's sum.
    """
    assert cert.status in ("optimal", "feasible"), (cert.status, cert.message)
    err = 1e-12 * max(abs(float(value)), scale)
    assert math.isclose(cert.objective, float(value), rel_tol=0.0, abs_tol=err), (
        f"reported objective {cert.objective!r} but the plan is worth {float(value)!r}"
    )
    bound = cert.upper_bound
    if not math.isfinite(bound):
        assert math.isnan(cert.gap) and cert.status == "feasible", (cert.status, cert.gap)
        return
    assert float(value) <= bound + noise(bound), f"objective {float(value)!r} above bound {bound!r}"
    assert (cert.status == "optimal") == (cert.gap <= OPTIMAL_RTOL), (cert.status, cert.gap)
    if cert.status == "optimal":
        best, where = reference()
        if best is not None:
            assert float(best) <= cert.objective + OPTIMAL_RTOL * abs(bound) + noise(bound), (
                f"'optimal' {cert.objective!r} (bound {bound!r}), but the exactly feasible "
                f"{where} is worth {float(best)!r}"
            )
