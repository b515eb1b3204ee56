"""The plan returned by every coupon method, carrying its certificate."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from optimizers.certificate import Certificate, CertificateError
from optimizers.coupons.exact import exact_sum, round_up
from optimizers.coupons.problem import CouponProblem


@dataclass(kw_only=True)
class CouponAllocation(Certificate):
    """A coupon plan and its certificate.

    Attributes (besides :class:`~optimizers.certificate.Certificate`'s)
    ----------
    choice: (n,) int option index per user, ``-1`` = no coupon.
    spend: spend counted against the global budget (currency units).
    Totals (``objective``, ``spend``, ...) are exact sums rounded to the nearest float.
    group_spend: budget group name (as in ``dual``) -> spend of its options.
    coverage: segment -> fraction of its users that got a coupon.
    value_total / value2_total: totals of ``value`` / ``value2`` over the plan.
    option_counts: option (-1 = none) -> number of users who get it.
    """

    choice: np.ndarray
    spend: float
    group_spend: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    value_total: float = 0.0
    value2_total: float | None = None
    option_counts: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_choice(
        cls,
        problem: CouponProblem,
        choice: np.ndarray,
        *,
        upper_bound: float,
        status: str,
        method: str,
        solve_time_s: float,
        dual: dict[str, float] | None = None,
        message: str = "",
    ) -> CouponAllocation:
        """Evaluate ``choice`` on ``problem`` and wrap it with its certificate.

        Totals are exact sums rounded to the nearest float.  A plan reported as
        ``'optimal'`` or ``'feasible'`` must satisfy every constraint in exact
        arithmetic; one that does not raises
        :class:`~optimizers.certificate.CertificateError` (the method is wrong).
        """
        choice = problem.check_choice(choice)
        usage = problem.exact_usage(choice)
        broken = {
            c.name: round_up(u - Fraction(c.rhs))
            for c, u in zip(problem.constraints, usage, strict=True)
            if u > Fraction(c.rhs)
        }
        if broken and status in ("optimal", "feasible"):
            raise CertificateError(f"{method}: the plan breaks {broken} (exact excess)")
        rows = np.flatnonzero(choice >= 0)
        opt = choice[rows]
        g = np.asarray(problem.global_options)
        by_name = {c.name: float(u) for c, u in zip(problem.constraints, usage, strict=True)}
        if problem.budget_name in by_name:
            spend = by_name[problem.budget_name]
        else:
            spend = float(exact_sum(problem.cost[rows, opt] * g[opt]))
        counts = np.bincount(choice + 1, minlength=problem.n_options + 1)
        v2 = None if problem.value2 is None else float(exact_sum(problem.value2[rows, opt]))
        return cls(
            status=status,
            objective=float(exact_sum(problem.objective_matrix[rows, opt])),
            upper_bound=float(upper_bound),
            solve_time_s=solve_time_s,
            method=method,
            dual=dict(dual or {}),
            message=message,
            choice=choice,
            spend=spend,
            group_spend={c.name: by_name[c.name] for c in problem.constraints if c.kind == "group"},
            coverage={
                s: float((choice[mask] >= 0).mean()) for s, mask in problem.segment_masks.items()
            },
            value_total=float(exact_sum(problem.value[rows, opt])),
            value2_total=v2,
            option_counts={k - 1: int(c) for k, c in enumerate(counts)},
        )

    def summary(self) -> dict[str, object]:
        """JSON-safe summary: the certificate, spends, coverage and dual prices."""
        return {
            **self.certificate_dict(),
            "dual": {k: float(v) for k, v in self.dual.items()},
            "spend": float(self.spend),
            "group_spend": {k: float(v) for k, v in self.group_spend.items()},
            "coverage": {k: float(v) for k, v in self.coverage.items()},
            "users_with_coupon": int((self.choice >= 0).sum()),
            "users": int(self.choice.size),
        }

    def describe(self) -> str:
        """A few lines for logs: objective, bound, gap, spend, coverage and duals."""
        lines = [
            f"{self.method}: status={self.status} objective={self.objective:.6g} "
            f"upper_bound={self.upper_bound:.6g} gap={self.gap:.3%} time={self.solve_time_s:.3f}s",
            f"spend={self.spend:.6g} users_with_coupon={int((self.choice >= 0).sum())}"
            f"/{self.choice.size}",
        ]
        for name, s in self.group_spend.items():
            lines.append(f"{name}: spend={s:.6g}")
        for seg, frac in self.coverage.items():
            lines.append(f"coverage[{seg}]={frac:.3%}")
        if self.dual:
            lines.append("dual: " + ", ".join(f"{k}={v:.6g}" for k, v in self.dual.items()))
        if self.message:
            lines.append(self.message)
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per user: ``user`` (row index of the input) and ``option`` (-1 = none)."""
        return pd.DataFrame({"user": np.arange(self.choice.size), "option": self.choice})
