"""Exact reference for install control on the true Hill curves, independent of ``optimizers/``.

The maths, from the problem statement.  Channels ``c`` with installs
``f_c(s) = vmax s^a / (s^a + k^a)`` at daily spend ``s``, logins ``l_c f_c`` and
retained users ``l_c r_c f_c``::

    maximise    sum_c w_c f_c(s_c)                 (w: 1, l_c or l_c r_c by the objective)
    subject to  sum_c s_c <= B                                     budget
                min_spend[c] <= s_c <= max_spend[c]
                s_c <= cpi_max[c] f_c(s_c)                         cpi_cap[c]
                sum_c s_c <= cpi_max_total sum_c f_c(s_c)          cpi_cap_total
                sum_c w^t_c f_c(s_c) >= target[t]                  target[t]

and the cheapest budget: minimise ``sum_c s_c`` under the same side constraints.

The curve values ``f_c(s_c)`` are the given :class:`HillCurve`'s own evaluation
(the curve is the data); every sum, product and comparison over them is exact
(``fractions.Fraction``), against each limit itself.  :func:`best_plan` searches
a fine grid of splits (all combinations for up to three channels, plus the
budget's remainder on the last channel) and then a compass search, keeping only
plans that pass the exact check: its value is a certain lower bound on the
optimum (and, for spend, a certain upper bound on the least budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from exact_mip import exact

from optimizers.install import ChannelLimits, ChannelModels, HillCurve

METRICS = ("installs", "logins", "retained")
GRID_POINTS = {1: 4_001, 2: 401, 3: 41}  # points per channel, by number of channels


@dataclass
class InstallInstance:
    """Curves ``(vmax, k, alpha)`` and rates per channel ``c0, c1, ...``, budget and limits."""

    curves: list[tuple[float, float, float]]
    login_rate: list[float]
    retention_rate: list[float]
    budget: float
    objective: str = "installs"
    min_spend: dict[str, float] = field(default_factory=dict)
    max_spend: dict[str, float] = field(default_factory=dict)
    cpi_max: dict[str, float] = field(default_factory=dict)
    cpi_max_total: float | None = None
    targets: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.curves))]

    def models(self) -> ChannelModels:
        """The channels as the product takes them."""
        curves = {c: HillCurve(*cv) for c, cv in zip(self.names, self.curves, strict=True)}
        return ChannelModels.from_curves(
            curves,
            dict(zip(self.names, self.login_rate, strict=True)),
            dict(zip(self.names, self.retention_rate, strict=True)),
        )

    def limits(self, targets: dict[str, float] | None = None) -> ChannelLimits:
        """The operator's limits (with ``targets`` instead of the instance's when given)."""
        return ChannelLimits(
            min_spend=self.min_spend or None,
            max_spend=self.max_spend or None,
            cpi_max=self.cpi_max or None,
            cpi_max_total=self.cpi_max_total,
            targets=self.targets if targets is None else targets,
        )

    def weight(self, metric: str, c: int) -> Fraction:
        """Exact units of ``metric`` per install of channel ``c``."""
        if metric == "installs":
            return Fraction(1)
        if metric == "logins":
            return exact(self.login_rate[c])
        return exact(self.login_rate[c]) * exact(self.retention_rate[c])


def installs(inst: InstallInstance, spend: np.ndarray) -> list[float]:
    """``f_c(s_c)`` per channel: the given curve's own evaluation."""
    return [float(HillCurve(*cv)(s)) for cv, s in zip(inst.curves, spend, strict=True)]


def total(inst: InstallInstance, spend: np.ndarray, metric: str) -> Fraction:
    """Exact ``sum_c w_c f_c(s_c)`` of ``metric`` (or exact total spend for ``'spend'``)."""
    if metric == "spend":
        return sum((exact(s) for s in spend), Fraction(0))
    f = installs(inst, spend)
    return sum((inst.weight(metric, c) * exact(v) for c, v in enumerate(f)), Fraction(0))


def violations(
    inst: InstallInstance, spend: np.ndarray, *, budget: float | None, targets: dict[str, float]
) -> dict[str, Fraction]:
    """Constraint -> exact excess for every constraint ``spend`` breaks (``budget=None``: none)."""
    spend = np.asarray(spend, dtype=float)
    out: dict[str, Fraction] = {}
    f = installs(inst, spend)
    paid = total(inst, spend, "spend")
    if budget is not None and paid > exact(budget):
        out["budget"] = paid - exact(budget)
    for c, name in enumerate(inst.names):
        s = exact(spend[c])
        lo = exact(inst.min_spend.get(name, 0.0))
        if s < lo:
            out[f"min_spend[{name}]"] = lo - s
        if name in inst.max_spend and s > exact(inst.max_spend[name]):
            out[f"max_spend[{name}]"] = s - exact(inst.max_spend[name])
        if name in inst.cpi_max and s > exact(inst.cpi_max[name]) * exact(f[c]):
            out[f"cpi_cap[{name}]"] = s - exact(inst.cpi_max[name]) * exact(f[c])
    if inst.cpi_max_total is not None:
        allowed = exact(inst.cpi_max_total) * sum((exact(v) for v in f), Fraction(0))
        if paid > allowed:
            out["cpi_cap_total"] = paid - allowed
    for metric, target in targets.items():
        got = total(inst, spend, metric)
        if got < exact(target):
            out[f"target[{metric}]"] = exact(target) - got
    return out


def saturation(k: float, alpha: float) -> float:
    """Spend cap of a channel without ``max_spend`` when no budget is given: where the curve
    reaches 99 % of ``vmax`` (``k 99^(1/alpha)``), at most ``1000 k``; taken a hair inside."""
    return min(k * 99.0 ** (1.0 / alpha), 1000.0 * k) * (1.0 - 1e-12)


def _domain(inst: InstallInstance, budget: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel spend range ``[lo, hi]`` (``hi``: max_spend, the budget or the saturation)."""
    lo = np.array([inst.min_spend.get(c, 0.0) for c in inst.names])
    cap = [
        inst.max_spend.get(c, math.inf if budget is not None else saturation(k, a))
        for c, (_, k, a) in zip(inst.names, inst.curves, strict=True)
    ]
    hi = np.minimum(np.array(cap, dtype=float), math.inf if budget is None else budget)
    return lo, np.maximum(hi, lo)


def _vector_values(inst: InstallInstance, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Float installs/logins/retained/spend of each row of ``grid`` (rows x channels)."""
    f = np.stack([HillCurve(*cv)(grid[:, c]) for c, cv in enumerate(inst.curves)], axis=1)
    lr, rr = np.array(inst.login_rate), np.array(inst.retention_rate)
    return {
        "installs": f.sum(axis=1),
        "logins": (f * lr).sum(axis=1),
        "retained": (f * lr * rr).sum(axis=1),
        "spend": grid.sum(axis=1),
        "per_channel": f,
    }


def _float_ok(inst: InstallInstance, grid: np.ndarray, budget: float | None, targets) -> np.ndarray:
    """Rows of ``grid`` that look feasible in floats (the exact check decides later)."""
    v = _vector_values(inst, grid)
    ok = np.ones(grid.shape[0], dtype=bool)
    if budget is not None:
        ok &= v["spend"] <= budget
    for c, name in enumerate(inst.names):
        if name in inst.cpi_max:
            ok &= grid[:, c] <= inst.cpi_max[name] * v["per_channel"][:, c]
    if inst.cpi_max_total is not None:
        ok &= v["spend"] <= inst.cpi_max_total * v["installs"]
    for metric, target in targets.items():
        ok &= v[metric] >= target
    return ok


def _candidates(inst: InstallInstance, budget: float | None) -> np.ndarray:
    """Grid splits: every combination, the last channel also at the budget's remainder."""
    lo, hi = _domain(inst, budget)
    g = GRID_POINTS[len(inst.curves)]
    axes = [np.unique(np.r_[np.linspace(a, b, g), a, b]) for a, b in zip(lo, hi, strict=True)]
    grid = _product(axes)
    if budget is not None and len(axes) > 1:
        head = _product(axes[:-1])
        rest = np.clip(budget - head.sum(axis=1), lo[-1], hi[-1])
        grid = np.vstack([grid, np.column_stack([head, rest])])
    return grid


def _product(axes: list[np.ndarray]) -> np.ndarray:
    """Every combination of the axes' points, one row each."""
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _score(inst: InstallInstance, spend: np.ndarray, metric: str) -> Fraction:
    """Exact value to maximise: the metric, or minus the spend."""
    t = total(inst, spend, "spend" if metric == "spend" else metric)
    return -t if metric == "spend" else t


def _compass(inst, spend, metric, budget, targets) -> tuple[Fraction, np.ndarray]:
    """Improve an exactly feasible split by moves along and between channel axes."""
    lo, hi = _domain(inst, budget)
    n = len(spend)
    best, value = spend.copy(), _score(inst, spend, metric)
    step = float(max(hi - lo)) / GRID_POINTS[n]
    moves = [np.eye(n)[i] * sgn for i in range(n) for sgn in (1, -1)]
    moves += [np.eye(n)[i] - np.eye(n)[j] for i in range(n) for j in range(n) if i != j]
    for _ in range(60):
        improved = False
        for d in moves:
            cand = np.clip(best + step * d, lo, hi)
            if not _float_ok(inst, cand[None, :], budget, targets)[0]:
                continue
            if violations(inst, cand, budget=budget, targets=targets):
                continue
            cv = _score(inst, cand, metric)
            if cv > value:
                best, value, improved = cand, cv, True
        if not improved:
            step /= 2
            if step < 1e-12 * max(1.0, float(max(hi))):
                break
    return value, best


def best_plan(
    inst: InstallInstance,
    metric: str,
    *,
    budget: float | None,
    targets: dict[str, float],
) -> tuple[Fraction | None, np.ndarray | None]:
    """The best exactly feasible split found: (exact value, spend) or (None, None).

    ``metric`` is maximised (``'spend'`` is minimised and its value is the total spend).
    """
    grid = _candidates(inst, budget)
    ok = _float_ok(inst, grid, budget, targets)
    if not ok.any():
        return None, None
    grid = grid[ok]
    v = _vector_values(inst, grid)[metric]
    order = np.argsort(v if metric == "spend" else -v, kind="stable")
    for i in order[:50]:
        if not violations(inst, grid[i], budget=budget, targets=targets):
            value, spend = _compass(inst, grid[i], metric, budget, targets)
            return (-value if metric == "spend" else value), spend
    return None, None
