"""A small, generic result certificate shared by every decision optimizer.

Each optimizer in :mod:`optimizers` maximises an objective and returns a result
object that *carries its own proof of quality*: the objective of the plan it
returns, a valid upper bound on the best achievable objective, the relative gap
between the two, the solver status, the method used and the wall time.  Concrete
results (e.g. :class:`optimizers.coupons.CouponAllocation`) subclass
:class:`Certificate` and add the plan itself.

Conventions: problems are maximisations; ``upper_bound`` is a bound proven by the
method (an LP/Lagrangian dual value or a MIP solver's dual bound), so
``objective <= optimum <= upper_bound`` holds up to solver tolerances.

Example
-------
>>> from optimizers.certificate import Certificate
>>> c = Certificate(status="feasible", objective=99.0, upper_bound=100.0,
...                 solve_time_s=0.1, method="lagrangian")
>>> round(c.gap, 4)
0.01
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["optimal", "feasible", "infeasible", "unknown"]
STATUSES: tuple[str, ...] = ("optimal", "feasible", "infeasible", "unknown")


class InfeasibleError(ValueError):
    """Raised when the constraints provably admit no plan; the message names them."""


@dataclass(kw_only=True)
class Certificate:
    """What a solver proves about the plan it returns.

    Attributes
    ----------
    status: ``'optimal'`` (proven within the solver's gap tolerance), ``'feasible'``
        (satisfies every constraint, optimality not proven), ``'infeasible'``
        (no plan satisfies the constraints; see ``message``) or ``'unknown'``.
    objective: objective value of the returned plan (maximised).
    upper_bound: proven upper bound on the optimum (``inf`` when none is known).
    solve_time_s: wall-clock seconds spent building and solving.
    method: name of the algorithm that produced the plan.
    dual: constraint name -> shadow price (objective units per constraint unit).
    message: human-readable note (why infeasible, which limit was hit, ...).
    """

    status: str
    objective: float
    upper_bound: float
    solve_time_s: float
    method: str
    dual: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def gap(self) -> float:
        """Relative optimality gap ``(upper_bound - objective) / max(|upper_bound|, 1e-9)``.

        ``0`` means proven optimal; ``inf`` when infeasible or no bound is known.
        Tiny negative values from floating point are clipped to ``0``.
        """
        if self.status == "infeasible" or not math.isfinite(self.upper_bound):
            return math.inf
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
