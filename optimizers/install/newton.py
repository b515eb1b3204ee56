"""Minimising the dual function of :mod:`optimizers.install.lagrange` by projected Newton steps.

``L(y)`` has one price per coupling row (a handful), so Newton's method on it is
cheap: its gradient is the rows' slack at the channels' maximisers and its
Hessian ``sum_c v v^T / (a[c] |f_c''|)`` (``v = sigma - W f_c'``) comes from
differentiating the stationarity condition ``a[c] f_c'(s) = b``.

* On a *pattern* (every channel's domain concave, :meth:`Relaxation.pattern`) ``L``
  is differentiable and strong duality holds: :func:`solve_pattern` returns the
  exact optimum of the pattern and its prices (the budget's is the marginal value
  of budget).
* On the full domains each S-shaped channel chooses between two candidates, which
  makes ``L`` kinked; :func:`best_bound` smooths that choice
  (``max(g1, g2) ~ g2 + tau log(1 + e^((g1 - g2) / tau))``) for a few decreasing
  ``tau``, and evaluates every point it reaches exactly, so what it returns is a
  valid bound whatever the smoothing did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from optimizers.install.lagrange import PLAN_MARGIN, DualPoint, Relaxation, candidates, evaluate


@dataclass(frozen=True)
class _Local:
    """``L`` (smoothed) near ``y``: value, gradient, Hessian, a stand-in curvature per row
    (the Hessian's diagonal as if no channel sat at an end of its domain: the scale of a
    step where the true Hessian vanishes), and the point of the unsmoothed maximisers."""

    value: float
    grad: np.ndarray
    hess: np.ndarray
    stand_in: np.ndarray
    point: DualPoint


def _smoothed(rel: Relaxation, y: np.ndarray, tau: float) -> _Local:
    """:class:`_Local` of ``L`` with each channel's choice between its two candidates
    smoothed (``tau > 0``: ``max(g1, g2) ~ g2 + tau log(1 + e^((g1 - g2) / tau))``)."""
    pc = candidates(rel, y)
    h = rel.curves
    has_alt = np.isfinite(pc.alt_g)
    with np.errstate(invalid="ignore", over="ignore"):  # -inf - -inf, huge / tiny tau
        diff = np.where(has_alt, pc.on_g - pc.alt_g, np.inf)
        z = diff / tau if tau > 0 else diff
    if tau > 0:  # the softplus in its stable form (no inf for a huge diff / tau)
        share = special.expit(z)
        soft = np.maximum(pc.on_g, pc.alt_g) + tau * np.log1p(np.exp(-np.abs(z)))
        terms = np.where(has_alt, soft, pc.on_g)
    else:
        share = (diff >= 0).astype(float)
        terms = np.maximum(pc.on_g, pc.alt_g)
    f_on, f_alt = h.value(pc.on_s), h.value(pc.alt_s)
    u_on = rel.W * f_on - rel.sigma[:, None] * pc.on_s  # (rows, channels): d g_on / d y
    u_alt = rel.W * f_alt - rel.sigma[:, None] * pc.alt_s
    grad = rel.rhs + u_on @ share + u_alt @ (1.0 - share)
    with np.errstate(invalid="ignore"):  # a channel at 0 with alpha < 1 has slope inf
        v = rel.sigma[:, None] - rel.W * h.slope(pc.on_s)[None, :]
    v = np.where(np.isfinite(v), v, 0.0)  # ... and no curvature weight: it adds nothing
    hess = (v * (share * pc.on_w)) @ v.T
    if tau > 0:
        du = u_on - u_alt
        hess += (du * np.where(has_alt, share * (1.0 - share) / tau, 0.0)) @ du.T
    weight = share * (pc.on_w + pc.clip_w)
    stand_in = np.where(weight > 0.0, v, 0.0) ** 2 @ weight
    value = float(y @ rel.rhs + terms.sum())
    spend = np.where(diff >= 0, pc.on_s, pc.alt_s)
    slack = rel.rhs - rel.row_activity(spend, h.value(spend))
    return _Local(
        value, grad, hess, stand_in, DualPoint(y=y, value=value, spend=spend, slack=slack)
    )


def row_scale(rel: Relaxation) -> np.ndarray:
    """A magnitude per row for relative tolerances: its limit plus the largest curve terms
    the domains allow (a channel held at 0 adds nothing, however large its curve)."""
    top = np.where(rel.lo > rel.hi, 0.0, rel.hi)
    reach = np.where(np.isfinite(top), rel.curves.value(np.where(np.isfinite(top), top, 0.0)), 1.0)
    reach = np.where(np.isfinite(top), reach, rel.curves.vmax)
    return np.abs(rel.rhs) + np.abs(rel.W) @ reach + 1e-300


def minimise(
    rel: Relaxation, y0: np.ndarray, *, tau: float = 0.0, max_iter: int = 60, tol: float = 1e-12
) -> tuple[DualPoint, bool]:
    """Minimise ``L`` (smoothed by ``tau``) over ``y >= 0`` by projected Newton steps.

    Returns the last point (its ``value`` is the smoothed one: use :func:`evaluate` for a
    bound) and whether it converged: every priced row's slack within ``tol`` of its
    :func:`row_scale`, every unpriced row's slack non-negative.  It stops unconverged as
    soon as ``L`` falls below :attr:`Relaxation.lowest_objective`: the domains admit no
    plan (the prices would grow without end).
    """
    scale = row_scale(rel)
    y = np.maximum(np.asarray(y0, dtype=float), 0.0)
    here = _smoothed(rel, y, tau)
    for _ in range(max_iter):
        grad = here.grad
        free = ~((y <= 0.0) & (grad >= 0.0))
        if np.all(np.abs(grad[free]) <= tol * scale[free]):
            return here.point, True
        d = np.zeros_like(y)
        d[free] = _newton_step(here, free)
        for _ in range(60):  # Armijo backtracking on the projected step
            y_new = np.maximum(y + d, 0.0)
            trial = _smoothed(rel, y_new, tau)
            if trial.value <= here.value + 1e-4 * float(grad @ (y_new - y)):
                break
            d *= 0.5
        else:
            return here.point, False
        if np.array_equal(y_new, y) or not trial.value >= rel.lowest_objective:
            return here.point, False
        y, here = y_new, trial
    return here.point, False


def _newton_step(here: _Local, free: np.ndarray) -> np.ndarray:
    """Newton's step on the free prices; rows without curvature use their stand-in."""
    h = here.hess[np.ix_(free, free)].copy()
    diag = np.diag(h).copy()
    stand_in = here.stand_in[free]
    flat = diag <= 1e-12 * stand_in
    h[np.diag_indices_from(h)] = np.where(flat, diag + stand_in, diag)
    h[np.diag_indices_from(h)] += 1e-12 * max(float(np.trace(h)), 1e-300)
    g = here.grad[free]
    with np.errstate(all="ignore"):
        try:
            step = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            step = np.full_like(g, np.nan)
    if not np.all(np.isfinite(step)):  # no curvature at all: a unit-free gradient step
        step = -g / max(float(np.abs(g).max()), 1e-300)
    return step


def solve_pattern(rel: Relaxation, y0: np.ndarray) -> tuple[DualPoint, bool]:
    """The exact optimum of a pattern (every domain concave) from its minimising prices.

    The rows are tightened by :data:`PLAN_MARGIN` of their scale first, so a converged
    point's spend meets the posed rows although Newton stops at a 1e-12 residual.
    """
    tight = replace(rel, rhs=rel.rhs - PLAN_MARGIN * row_scale(rel))
    return minimise(tight, y0)


def best_bound(
    rel: Relaxation,
    y0: np.ndarray,
    value_scale: float,
    *,
    levels: tuple[float, ...] = (1e-3, 1e-5, 1e-7),
    max_iter: int = 30,
) -> DualPoint:
    """A low valid bound: the best of ``L`` at ``y0`` and along smoothed minimisations from it.

    Each of ``levels`` times ``value_scale`` (a typical objective) smooths the channels'
    on/off choices for one minimisation, started where the previous one ended; every
    point is then evaluated exactly, so the result is a valid bound whatever happened.
    """
    best = evaluate(rel, y0)
    y = best.y
    for rho in levels:
        tau = rho * max(abs(value_scale), 1e-300)
        point, _ = minimise(rel, y, tau=tau, max_iter=max_iter, tol=1e-9)
        y = point.y
        trial = evaluate(rel, y)
        if trial.value < best.value:
            best = trial
    return best
