"""A small, generic result certificate shared by every decision optimizer.

Each optimizer in :mod:`optimizers` maximises an objective and returns a result
object that *carries its own proof of quality*: the objective of the plan it
returns, a valid upper bound on the best achievable objective, the relative gap
between the two, the solver status, the method used and the wall time.  Concrete
results (e.g. :class:`optimizers.coupons.CouponAllocation`) subclass
:class:`Certificate` and add the plan itself.

Conventions: problems are maximisations; ``upper_bound`` is a bound proven by the
method (an LP/Lagrangian dual value or a MIP solver's dual bound), so
``objective <= optimum <= upper_bound``.  One status rule for every optimizer:
a plan is ``'optimal'`` only within :data:`OPTIMAL_RTOL` of its bound, else
``'feasible'`` with its gap; without a bound the gap is NaN.

Example
-------
>>> from optimizers.certificate import Certificate
>>> c = Certificate(status="optimal", objective=99.0, upper_bound=100.0,
...                 solve_time_s=0.1, method="lagrangian")
>>> c.status, round(c.gap, 4)
('feasible', 0.01)
>>> Certificate(status="feasible", objective=99.0, upper_bound=float("inf"),
...             solve_time_s=0.1, method="greedy").gap
nan
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

STATUSES: tuple[str, ...] = ("optimal", "feasible", "infeasible", "unknown")
OPTIMAL_RTOL = 1e-6
"""A plan is called optimal only when its relative gap to the proven bound is at most this."""
BOUND_NOISE = 1e-9
"""Relative float noise allowed between an objective and a bound that are equal in exact
arithmetic but summed differently; an objective above its bound by more is a bug."""


class InfeasibleError(ValueError):
    """Raised when the constraints provably admit no plan; the message names them."""


class CertificateError(RuntimeError):
    """A certificate contradicts itself (a plan's objective above its proven bound): a bug."""


@dataclass(kw_only=True)
class Certificate:
    """What a solver proves about the plan it returns.

    Attributes
    ----------
    status: ``'optimal'`` (the plan satisfies every constraint and its gap to the
        bound is at most ``rtol``), ``'feasible'`` (it satisfies every constraint;
        its gap says how far from optimal it may be), ``'infeasible'`` (no plan
        satisfies the constraints; see ``message``) or ``'unknown'``.  A solver
        reports ``'optimal'`` or ``'feasible'``; the certificate settles which by
        the one rule above, the same for every optimizer.
    objective: objective value of the returned plan (maximised).
    upper_bound: proven upper bound on the optimum (``inf`` or NaN when none is known).
    solve_time_s: wall-clock seconds spent building and solving.
    method: name of the algorithm that produced the plan.
    dual: constraint name -> shadow price (objective units per constraint unit).
    message: human-readable note (why infeasible, which limit was hit, ...).
    rtol: the relative gap within which the plan counts as optimal.

    Raises :class:`CertificateError` when the objective exceeds a finite bound
    by more than float noise (:data:`BOUND_NOISE`): the bound or the plan is wrong.
    """

    status: str
    objective: float
    upper_bound: float
    solve_time_s: float
    method: str
    dual: dict[str, float] = field(default_factory=dict)
    message: str = ""
    rtol: float = OPTIMAL_RTOL

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status not in ("optimal", "feasible"):
            return
        bound, objective = float(self.upper_bound), float(self.objective)
        if math.isfinite(bound):
            noise = BOUND_NOISE * max(1.0, abs(bound))
            if objective > bound + noise:
                raise CertificateError(
                    f"{self.method}: the plan's objective {objective!r} exceeds its upper "
                    f"bound {bound!r}; the bound or the plan's feasibility is wrong"
                )
        self.status = "optimal" if self.gap <= self.rtol else "feasible"

    @property
    def gap(self) -> float:
        """Relative optimality gap ``(upper_bound - objective) / max(|upper_bound|, 1e-9)``.

        ``0`` means proven optimal; NaN when there is no plan (infeasible, unknown)
        or no finite bound: a missing bound is a missing gap, never 0.  Float
        noise below zero (see :data:`BOUND_NOISE`) reads as 0.
        """
        if self.status not in ("optimal", "feasible") or not math.isfinite(self.upper_bound):
            return math.nan
        denom = max(abs(self.upper_bound), 1e-9)
        return max(0.0, (self.upper_bound - self.objective) / denom)

    def certificate_dict(self) -> dict[str, object]:
        """The certificate fields as a flat dict (for logs, tables and the SQL store)."""
        return {
            "status": self.status,
            "objective": self.objective,
            "upper_bound": self.upper_bound,
            "gap": self.gap,
            "solve_time_s": self.solve_time_s,
            "method": self.method,
            "message": self.message,
        }
