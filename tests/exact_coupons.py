"""Exact reference for the coupon allocation problem, independent of ``optimizers/``.

The maths, from the problem statement.  Users ``u``, options ``k``; ``x[u, k] in {0, 1}``
with ``sum_k x[u, k] <= 1`` (no coupon is allowed).  With ``g[k]`` = "option ``k``
spends the global budget" (default: its type is not ``'merchant'``)::

    maximise    sum_uk v[u, k] x[u, k]
    subject to  sum_uk c[u, k] g[k] x[u, k]   <= B                       budget
                sum_u sum_{k in J} c[u, k] x  <= b_J     every budget group, type_budget[t],
                                                          merchant_budget[m]
                sum_{u in s} sum_k x[u, k]    >= ceil(f_s |s|)           min_coverage['s']
                sum_uk (v - rho g c)[u, k] x  >= 0                       roi_floor

Every quantity is read as the exact rational value of the float given (so
``ceil(f_s |s|)`` is exact: the property tests draw coverage fractions for which
no convention about float fractions decides the floor).  :func:`violations` checks
a plan in exact arithmetic against each limit itself (never limit + tolerance);
:func:`reference_optimum` solves the MIP above with HiGHS (:mod:`exact_mip`) and
returns an exactly feasible plan; :func:`brute_force` enumerates every plan of a
tiny instance (the check of the MIP itself).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from exact_mip import BinaryMip, Row, Verified, exact, tighten, verified_optimum


@dataclass
class CouponInstance:
    """The arguments of ``optimizers.coupons.allocate`` (besides the method)."""

    value: np.ndarray  # (n, K)
    cost: np.ndarray  # (n, K), >= 0
    budget: float
    option_types: tuple[str, ...] | None = None
    merchant_ids: tuple[int | None, ...] | None = None
    budget_groups: dict[str, tuple[tuple[int, ...], float]] | None = None
    type_budgets: dict[str, float] | None = None
    merchant_budgets: dict[int, float] | None = None
    segments: tuple[str, ...] | None = None
    min_coverage: dict[str, float] | None = None
    roi_floor: float | None = None

    def kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``allocate(**kwargs, method=...)``."""
        out: dict[str, object] = {"value": self.value, "cost": self.cost, "budget": self.budget}
        for name in (
            "option_types",
            "merchant_ids",
            "budget_groups",
            "type_budgets",
            "merchant_budgets",
            "segments",
            "min_coverage",
            "roi_floor",
        ):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def __repr__(self) -> str:
        """Pasteable: ``CouponInstance(value=np.array([...]), ...)`` with exact float reprs."""
        extra = {k: v for k, v in self.kwargs().items() if k not in ("value", "cost", "budget")}
        parts = [
            f"value=np.array({self.value.tolist()!r})",
            f"cost=np.array({self.cost.tolist()!r})",
            f"budget={self.budget!r}",
            *(f"{k}={v!r}" for k, v in extra.items()),
        ]
        return "CouponInstance(" + ", ".join(parts) + ")"


@dataclass
class Limit:
    """``sum_u coef[u, choice_u] (<= or >=) rhs``, named as the optimizer names it."""

    name: str
    coef: np.ndarray  # (n, K) floats (the ROI row is rebuilt exactly from v, rho, c)
    upper: bool  # True: <= rhs, False: >= rhs
    rhs: Fraction


def global_mask(inst: CouponInstance) -> np.ndarray:
    """``g[k]``: options that spend the global budget (non-merchant types)."""
    k = inst.value.shape[1]
    types = inst.option_types or ("red_packet",) * k
    return np.array([t != "merchant" for t in types], dtype=bool)


def limits(inst: CouponInstance) -> list[Limit]:
    """Every coupling constraint of ``inst``, in the problem's own names."""
    n, k = inst.value.shape
    g = global_mask(inst)
    out: list[Limit] = []
    if math.isfinite(inst.budget):
        out.append(Limit("budget", inst.cost * g, True, exact(inst.budget)))
    for name, (idx, amount) in (inst.budget_groups or {}).items():
        mask = np.zeros(k, dtype=bool)
        mask[list(idx)] = True
        out.append(Limit(name, inst.cost * mask, True, exact(amount)))
    types = np.array(inst.option_types or ("red_packet",) * k)
    for t, amount in (inst.type_budgets or {}).items():
        out.append(Limit(f"type_budget[{t}]", inst.cost * (types == t), True, exact(amount)))
    mids = np.array([-1 if m is None else m for m in (inst.merchant_ids or (None,) * k)])
    for m, amount in (inst.merchant_budgets or {}).items():
        out.append(Limit(f"merchant_budget[{m}]", inst.cost * (mids == m), True, exact(amount)))
    seg = np.array(inst.segments if inst.segments is not None else ("",) * n)
    for s, frac in (inst.min_coverage or {}).items():
        members = seg == s
        need = math.ceil(exact(frac) * int(members.sum()))
        coef = np.repeat(members[:, None].astype(float), k, axis=1)
        out.append(Limit(f"min_coverage[{s!r}]", coef, False, Fraction(need)))
    if inst.roi_floor is not None:
        out.append(
            Limit("roi_floor", inst.value - inst.roi_floor * inst.cost * g, False, Fraction(0))
        )
    return out


def _exact_lhs(inst: CouponInstance, lim: Limit, choice: np.ndarray) -> Fraction:
    """Exact ``sum_u coef[u, choice_u]``; the ROI row is rebuilt from v, rho and c."""
    total = Fraction(0)
    g = global_mask(inst)
    for u, k in enumerate(choice):
        if k < 0:
            continue
        if lim.name == "roi_floor":
            rho = exact(inst.roi_floor) if g[k] else Fraction(0)
            total += exact(inst.value[u, k]) - rho * exact(inst.cost[u, k])
        else:
            total += exact(lim.coef[u, k])
    return total


def violations(inst: CouponInstance, choice: np.ndarray) -> dict[str, Fraction]:
    """Limit name -> exact amount by which ``choice`` breaks it (broken limits only)."""
    out: dict[str, Fraction] = {}
    for lim in limits(inst):
        lhs = _exact_lhs(inst, lim, choice)
        over = lhs - lim.rhs if lim.upper else lim.rhs - lhs
        if over > 0:
            out[lim.name] = over
    return out


def objective(inst: CouponInstance, choice: np.ndarray) -> Fraction:
    """Exact ``sum_u v[u, choice_u]``."""
    return sum((exact(inst.value[u, k]) for u, k in enumerate(choice) if k >= 0), Fraction(0))


def _mip(inst: CouponInstance, margins: dict[str, float]) -> BinaryMip:
    """Data -> variables x[u, k] (column u*K + k) -> rows -> objective."""
    n, k = inst.value.shape
    cols = np.arange(n * k).reshape(n, k)
    rows = [Row(f"one_coupon[{u}]", cols[u], np.ones(k), upper=1.0) for u in range(n)]
    for lim in limits(inst):
        a = lim.coef.reshape(-1)
        nz = np.flatnonzero(a)
        rhs = float(lim.rhs)
        margin = margins.get(lim.name, 0.0)
        if lim.upper:
            rows.append(Row(lim.name, nz, a[nz], upper=tighten(rhs, margin, upper=True)))
        else:
            rows.append(Row(lim.name, nz, a[nz], lower=tighten(rhs, margin, upper=False)))
    return BinaryMip(objective=inst.value.reshape(-1).astype(np.float64), rows=rows)


def _choice(inst: CouponInstance, x: np.ndarray) -> np.ndarray:
    """Plan (n,) of a 0/1 column vector: option of each user, -1 = none."""
    n, k = inst.value.shape
    on = x.reshape(n, k)
    return np.where(on.any(axis=1), on.argmax(axis=1), -1)


def reference_optimum(inst: CouponInstance) -> tuple[Verified, np.ndarray | None]:
    """HiGHS's optimum of the MIP, checked exactly; returns (answer, plan or None)."""
    ans = verified_optimum(
        lambda margins: _mip(inst, margins),
        lambda x: {k: float(v) for k, v in violations(inst, _choice(inst, x)).items()},
        lambda x: objective(inst, _choice(inst, x)),
    )
    return ans, None if ans.x is None else _choice(inst, ans.x)


def brute_force(inst: CouponInstance) -> tuple[Fraction | None, np.ndarray | None]:
    """The exact optimum of a tiny instance by enumerating all ``(K + 1)^n`` plans."""
    n, k = inst.value.shape
    best: tuple[Fraction | None, np.ndarray | None] = (None, None)
    for plan in itertools.product(range(-1, k), repeat=n):
        choice = np.array(plan)
        if violations(inst, choice):
            continue
        val = objective(inst, choice)
        if best[0] is None or val > best[0]:
            best = (val, choice)
    return best
