"""What install control returns: a certified budget split, a cheapest budget, conflicts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizers.certificate import OPTIMAL_RTOL, Certificate, CertificateError
from optimizers.install.problem import InstallProblem


@dataclass(frozen=True)
class Conflict:
    """A constraint that cannot hold together with the others, and by how much it fails.

    ``name`` is the model's constraint name (``target[retained]``,
    ``min_spend[3]``, ``cpi_cap[3]``, ``cpi_cap_total``); ``shortfall`` is the
    relaxation needed, in the constraint's own units (users, spend).
    """

    name: str
    shortfall: float


@dataclass(kw_only=True)
class BudgetSplit(Certificate):
    """A daily budget split and its certificate (maximisation of ``objective_name``).

    ``spend``, ``installs``, ``logins``, ``retained``: per-channel Series (the
    last three on the true curves).  ``objective`` is the true-curve value of the
    plan, ``upper_bound`` the lowest valid bound found (the Lagrangian dual on the
    true curves, branched, or the outer PWL model's dual bound; ``message`` says
    which).  ``dual``: the prices of the coupling rows (``budget``,
    ``target[metric]``, ``cpi_cap_total``) on the plan's pattern; ``budget_dual``:
    extra ``objective_name`` per extra unit of budget.  When ``status == 'infeasible'``, ``spend`` is the least-violating
    plan, ``conflicts`` lists the violated constraints and ``min_budget`` the
    smallest budget meeting them all (``None`` if no budget does).
    """

    objective_name: str
    spend: pd.Series
    installs: pd.Series
    logins: pd.Series
    retained: pd.Series
    budget_dual: float = math.nan
    conflicts: tuple[Conflict, ...] = ()
    min_budget: float | None = None

    @property
    def totals(self) -> dict[str, float]:
        """Total spend, installs, logins and retained users of the plan."""
        return {
            "spend": float(self.spend.sum()),
            "installs": float(self.installs.sum()),
            "logins": float(self.logins.sum()),
            "retained": float(self.retained.sum()),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per channel: spend and its expected funnel."""
        return pd.DataFrame(
            {
                "spend": self.spend,
                "installs": self.installs,
                "logins": self.logins,
                "retained": self.retained,
            }
        )


@dataclass(kw_only=True)
class BudgetPlan:
    """Answer to "what is the least total spend that meets these targets?".

    ``min_budget`` is the total spend of the returned split (feasible on the true
    curves); ``lower_bound`` is proven (the Lagrangian dual on the true curves), so
    the true minimum lies in
    ``[lower_bound, min_budget]``.  Kept separate from :class:`Certificate`, whose
    convention is maximisation, but labelled by the same rule: ``'optimal'`` only
    within :data:`~optimizers.certificate.OPTIMAL_RTOL` of the bound, else
    ``'feasible'``.
    """

    status: str
    min_budget: float
    lower_bound: float
    spend: pd.Series
    installs: pd.Series
    logins: pd.Series
    retained: pd.Series
    solve_time_s: float
    method: str
    conflicts: tuple[Conflict, ...] = ()
    message: str = ""

    def __post_init__(self) -> None:
        if self.status in ("optimal", "feasible"):
            if self.lower_bound > self.min_budget:
                raise CertificateError(
                    f"{self.method}: the lower bound {self.lower_bound!r} exceeds the plan's "
                    f"spend {self.min_budget!r}; the bound or the plan is wrong"
                )
            self.status = "optimal" if self.gap <= OPTIMAL_RTOL else "feasible"

    @property
    def gap(self) -> float:
        """Relative gap ``(min_budget - lower_bound) / min_budget`` (NaN without a plan or bound)."""
        if self.status not in ("optimal", "feasible") or not math.isfinite(self.lower_bound):
            return math.nan
        return max(0.0, (self.min_budget - self.lower_bound) / max(self.min_budget, 1e-9))


def funnel_series(problem: InstallProblem, spend: np.ndarray) -> dict[str, pd.Series]:
    """``spend`` and its installs, logins and retained users (true curves), per channel."""
    index = pd.Index(problem.channels, name="channel_id")
    f = problem.funnel(spend)
    columns = {"spend": spend, "installs": f["installs"], "logins": f["logins"]}
    columns["retained"] = f["retained"]
    return {name: pd.Series(v, index=index, name=name) for name, v in columns.items()}


def relative_gap(objective: float, upper: float) -> float:
    """Relative certified gap ``(upper - objective) / upper`` (``inf`` without a bound)."""
    if not math.isfinite(upper):
        return math.inf
    return max(0.0, (upper - objective) / max(abs(upper), 1e-9))
