"""Polish a PWL plan on the true curves with SLSQP, inside the basin the MILP chose.

The PWL models find the global basin (which channels spend, and on which side
of their inflection); within it the problem on the true curves is convex, so a
local method reaches its optimum.  The polished plan is kept only when it is
feasible on the true curves and better.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from optimizers.install.curves import METRICS
from optimizers.install.problem import InstallProblem


def polish(p: InstallProblem, spend: np.ndarray, max_channels: int) -> np.ndarray:
    """Local refinement of a plan on the true curves, inside the basin the MILP chose.

    Spending channels keep spending (S-shaped ones past their inflection, where
    the curve is concave), silent ones stay silent, so the subproblem is convex
    and SLSQP reaches its optimum.  Returns the better of ``spend`` and the
    polished plan (feasibility checked on the true curves).
    """
    active = np.flatnonzero(spend > 1e-9 * max(float(spend.sum()), 1.0))
    if active.size == 0 or active.size > max_channels or p.sense != "max":
        return spend
    curves = [p.curves[i] for i in active]
    vmax = np.array([c.vmax for c in curves])
    k = np.array([c.k for c in curves])
    a = np.array([c.alpha for c in curves])
    infl = np.array([c.inflection for c in curves])
    lo = np.maximum(p.min_spend[active], np.where(spend[active] >= infl, infl, 0.0))
    hi = p.hi[active]
    scale = max(float(spend.sum()), 1e-9)

    def inst(x: np.ndarray) -> np.ndarray:
        u = np.power(np.maximum(x * scale, 0.0) / k, a)
        return vmax * u / (1.0 + u)

    def dinst(x: np.ndarray) -> np.ndarray:
        s = np.maximum(x * scale, 1e-12 * k)
        u = np.power(s / k, a)
        return vmax * a * u / (s * (1.0 + u) ** 2) * scale

    w = {m: p.weights[m][active] for m in METRICS}
    wo = w[p.objective]
    cons: list[dict[str, object]] = []
    if p.budget is not None:
        cons.append({"type": "ineq", "fun": lambda x: p.budget / scale - x.sum()})
    for metric, target in p.targets.items():
        wm = w[metric]
        cons.append(
            {
                "type": "ineq",
                "fun": lambda x, wm=wm, tg=target: (inst(x) @ wm - tg) / max(tg, 1.0),
                "jac": lambda x, wm=wm, tg=target: dinst(x) * wm / max(tg, 1.0),
            }
        )
    cpi = p.cpi_max[active]
    capped = np.isfinite(cpi)
    if capped.any():
        cons.append({"type": "ineq", "fun": lambda x: (cpi * inst(x) - x * scale)[capped]})
    if p.cpi_max_total is not None:
        cons.append(
            {"type": "ineq", "fun": lambda x: p.cpi_max_total * inst(x).sum() - x.sum() * scale}
        )
    norm = max(float(inst(spend[active] / scale) @ wo), 1e-9)
    x0 = np.clip(spend[active], lo, hi) / scale
    res = optimize.minimize(
        lambda x: -float(inst(x) @ wo) / norm,
        x0,
        jac=lambda x: -dinst(x) * wo / norm,
        method="SLSQP",
        bounds=list(zip(lo / scale, hi / scale, strict=True)),
        constraints=cons,
        options={"maxiter": 200, "ftol": 1e-10},
    )
    cand = spend.copy()
    cand[active] = np.clip(res.x * scale, lo, hi)
    if p.budget is not None and cand.sum() > p.budget:
        cand *= p.budget / cand.sum()
        cand[active] = np.maximum(cand[active], p.min_spend[active])
    f_old, f_new = p.funnel(spend), p.funnel(cand)
    better = f_new[p.objective].sum() > f_old[p.objective].sum()
    if better and not p.broken_constraint(cand, strict=True):
        return cand
    return spend
