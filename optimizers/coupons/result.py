"""The plan returned by every coupon method, carrying its certificate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizers.certificate import Certificate
from optimizers.coupons.problem import CouponProblem


@dataclass(kw_only=True)
class CouponAllocation(Certificate):
    """A coupon plan and its certificate.

    Attributes (besides :class:`~optimizers.certificate.Certificate`'s)
    ----------
    choice: (n,) int option index per user, ``-1`` = no coupon.
    spend: spend counted against the global budget (currency units).
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
        """Evaluate ``choice`` on ``problem`` and wrap it with its certificate."""
        choice = problem.check_choice(choice)
        g = np.asarray(problem.global_options)
        spend = float(problem.gather(problem.cost * g[None, :], choice).sum())
        groups = {
            c.name: float(problem.gather(c.coef, choice).sum())
            for c in problem.constraints
            if c.kind == "group"
        }
        coverage = {
            s: float((choice[mask] >= 0).mean()) for s, mask in problem.segment_masks.items()
        }
        objective = float(problem.gather(problem.objective_matrix, choice).sum())
        v2 = None if problem.value2 is None else float(problem.gather(problem.value2, choice).sum())
        counts = np.bincount(choice + 1, minlength=problem.n_options + 1)
        return cls(
            status=status,
            objective=objective,
            upper_bound=max(float(upper_bound), objective)
            if status == "optimal"
            else float(upper_bound),
            solve_time_s=solve_time_s,
            method=method,
            dual=dict(dual or {}),
            message=message,
            choice=choice,
            spend=spend,
            group_spend=groups,
            coverage=coverage,
            value_total=float(problem.gather(problem.value, choice).sum()),
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
