"""Lagrangian duality on the true Hill curves: the dual function and its valid bounds.

Every install problem (:mod:`optimizers.install.problem`) has the form

    maximise    sum_c w0[c] f_c(s[c]) - kappa * sum_c s[c]
    subject to  sum_c (sigma[r] s[c] - W[r, c] f_c(s[c])) <= rhs[r]      for each row r
                s[c] in D[c]

with one row per coupling constraint (``budget``: sigma 1, W 0, rhs B;
``target[metric]``: sigma 0, W the metric's weights, rhs -T; ``cpi_cap_total``:
sigma 1, W cpi_max_total, rhs 0) and ``kappa = 1`` only when spend itself is
minimised.  ``D[c]`` is ``{0}`` (when the channel may stay silent) united with an
interval ``[lo[c], hi[c]]`` that already holds ``min_spend``, ``max_spend`` and the
channel's CPI cap (on a Hill curve ``s <= cpi * f(s)`` is an interval of spend).

For prices ``y >= 0`` (one per row) the dual function

    L(y) = sum_r y[r] rhs[r] + sum_c max_{s in D[c]} (a[c] f_c(s) - b s),
    a[c] = w0[c] + sum_r y[r] W[r, c],   b = kappa + sum_r y[r] sigma[r]

bounds the optimum from above for *every* ``y`` (weak duality), and each inner
maximum is one-dimensional on a known curve: at an end of the domain or where
``f_c'(s) = b / a[c]`` on the concave side of the curve.  :func:`evaluate` computes
it rigorously: a tangent bound covers the root's last digits and
:data:`BOUND_SAFETY` the float rounding of the sums.  Minimising ``L`` lives in
:mod:`optimizers.install.newton`, branching on its open choices in
:mod:`optimizers.install.bnb`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize

from optimizers.install.curves import HillArrays, HillCurve
from optimizers.install.problem import InstallProblem, cpi_room

BOUND_SAFETY = 1e-12
"""Relative allowance for float rounding added to every dual value used as a bound."""
PLAN_MARGIN = 1e-9
"""Relative margin by which the pattern problem tightens every row, so the plan read from
its prices meets the posed rows exactly despite the last digits of the Newton solve."""


@dataclass(frozen=True)
class Relaxation:
    """The data of the dual (see the module docstring), arrays in channel order.

    ``lo``/``hi``: each channel's spend interval; ``zero_ok``: whether ``s = 0`` is
    allowed besides it.  ``W`` has shape ``(rows, channels)``.
    """

    curves: HillArrays
    w0: np.ndarray
    kappa: float
    names: tuple[str, ...]
    sigma: np.ndarray
    W: np.ndarray
    rhs: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    zero_ok: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of priced rows."""
        return len(self.names)

    def row_activity(self, s: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``sum_c sigma[r] s[c] - W[r, c] f[c]`` per row (compensated sums)."""
        return np.array(
            [math.fsum(self.sigma[r] * s - self.W[r] * f) for r in range(self.n_rows)], dtype=float
        )

    @property
    def top(self) -> np.ndarray:
        """Each channel's largest spend in its domain (0 where only silence is left)."""
        return np.where(self.lo <= self.hi, self.hi, 0.0)

    @property
    def lowest_objective(self) -> float:
        """No plan's objective is lower (curves and weights are non-negative): a dual value
        below it proves the domains admit no plan at all."""
        return -self.kappa * float(np.sum(np.where(np.isfinite(self.hi), self.hi, 0.0)))

    def coefficients(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """``a[c]`` and ``b`` at prices ``y``."""
        return self.w0 + y @ self.W, float(self.kappa + y @ self.sigma)

    def pattern(self, spend: np.ndarray) -> Relaxation:
        """The same problem restricted to the pattern of ``spend`` (every domain concave).

        A silent S-shaped channel stays silent, a spending one stays on the concave side
        of its inflection (one spending below it keeps its spend); concave channels keep
        their domain.  Every plan of the pattern is a plan of the problem.
        """
        x0 = self.curves.inflection
        s_shaped = self.curves.alpha > 1.0
        off = s_shaped & self.zero_ok & (spend <= 0.0)
        below = s_shaped & ~off & (spend < x0)
        on_lo = np.where(s_shaped, np.maximum(self.lo, x0), self.lo)
        lo = np.where(off, 0.0, np.where(below, spend, on_lo))
        hi = np.where(off, 0.0, np.where(below, spend, self.hi))
        return replace(self, lo=lo, hi=hi, zero_ok=self.zero_ok & ~s_shaped)

    def split(self, c: int) -> tuple[Relaxation, Relaxation] | None:
        """Two restrictions of channel ``c``'s domain that together cover it, or None.

        A domain with a concave piece and something below it splits at the start of that
        piece (on / below); one that is convex throughout splits at its middle; silence
        or a single spend splits into the two.  Each side's dual bound is lower, and the
        larger of them bounds the problem.
        """
        lo, hi, zero = float(self.lo[c]), float(self.hi[c]), bool(self.zero_ok[c])
        start = min(max(float(self.curves.inflection[c]), lo), hi)  # of the concave piece
        if lo > hi:
            return None
        if start < hi and (start > lo or (zero and start > 0.0)):
            cut = start
        elif start >= hi and hi - lo > 1e-9 * max(hi, 1e-300):
            cut = 0.5 * (lo + hi)
        elif zero and lo > 0.0:
            cut = lo
        else:
            return None
        below = self._with(c, lo=min(lo, cut), hi=cut if cut > lo else 0.0, zero_ok=zero)
        above = self._with(c, lo=cut, hi=hi, zero_ok=False)
        return below, above

    def _with(self, c: int, *, lo: float, hi: float, zero_ok: bool) -> Relaxation:
        """The same problem with channel ``c``'s domain replaced."""
        arrays = {"lo": self.lo.copy(), "hi": self.hi.copy(), "zero_ok": self.zero_ok.copy()}
        arrays["lo"][c], arrays["hi"][c], arrays["zero_ok"][c] = lo, hi, zero_ok
        return replace(self, **arrays)


def relaxation(p: InstallProblem, *, bound_side: bool) -> Relaxation:
    """The dual data of ``p``: for bounds (``bound_side``) or for plans.

    For bounds the CPI-cap intervals are rounded outwards, so every feasible spend
    stays in its domain; for plans they are rounded inwards, so every spend in the
    domain meets its cap, and a spend limit equal to the budget is widened (the
    budget row holds it).
    """
    curves = HillArrays.of(p.curves)
    names, sigma, w_rows, rhs = [], [], [], []
    if p.budget is not None:
        names.append("budget"), sigma.append(1.0), w_rows.append(np.zeros(p.n))
        rhs.append(p.budget)
    for metric, target in p.targets.items():
        if target > 0:
            names.append(f"target[{metric}]"), sigma.append(0.0)
            w_rows.append(np.asarray(p.weights[metric], dtype=float)), rhs.append(-target)
    if p.cpi_max_total is not None:
        names.append("cpi_cap_total"), sigma.append(1.0)
        w_rows.append(np.full(p.n, p.cpi_max_total)), rhs.append(0.0)
    lo, hi = p.min_spend.astype(float), p.hi.astype(float)
    if not bound_side and p.budget is not None:
        # A spend limit that is the budget itself is no constraint of its own: leave it to
        # the budget row, so the budget's price is its marginal value.
        hi = np.minimum(p.max_spend, 2.0 * p.budget)
    zero_ok = lo <= 0.0
    for c in np.flatnonzero(np.isfinite(p.cpi_max)):
        c_lo, c_hi = _cpi_interval(p.curves[c], float(p.cpi_max[c]), float(hi[c]), bound_side)
        lo[c], hi[c] = max(lo[c], c_lo), min(hi[c], c_hi)
    spend_min = p.objective == "spend"
    w0 = np.zeros(p.n) if spend_min else np.asarray(p.weights[p.objective], dtype=float)
    return Relaxation(
        curves=curves,
        w0=w0,
        kappa=1.0 if spend_min else 0.0,
        names=tuple(names),
        sigma=np.array(sigma, dtype=float),
        W=np.array(w_rows, dtype=float).reshape(len(names), p.n),
        rhs=np.array(rhs, dtype=float),
        lo=lo,
        hi=hi,
        zero_ok=zero_ok,
    )


def _cpi_interval(curve: HillCurve, cpi: float, hi: float, outward: bool) -> tuple[float, float]:
    """The spends in ``[0, hi]`` with ``s <= cpi * f(s)`` besides 0, as an interval.

    ``cpi * f(s) - s`` is largest where ``f'(s) = 1 / cpi`` and falls on both sides of
    that peak, so the set is one interval around it (``(0, 0)`` when only silence
    meets the cap).  Its ends are found by Brent's method and then moved by single
    floats: outwards (``outward``) until they fail the cap, inwards until they meet it.
    """

    def room(s: float) -> float:
        return cpi * float(curve(s)) - s

    def holds(s: float) -> bool:  # the cap at ``s``, in exact arithmetic
        return cpi_room(cpi, float(curve(s)), s) >= 0

    peak = min(float(HillArrays.of((curve,)).slope_root(np.array([1.0 / cpi]))[0]), hi)
    if peak <= 0.0 or not holds(peak):
        return 0.0, 0.0
    left = 0.0 if curve.alpha <= 1.0 else _edge(room, holds, peak * 1e-12, peak, outward, True)
    right = hi if holds(hi) else _edge(room, holds, peak, hi, outward, False)
    return left, right


def _edge(room, holds, a: float, b: float, outward: bool, left: bool) -> float:
    """The root of ``room`` in ``[a, b]``, moved by floats out of (``outward``) or into the
    set where the cap ``holds``."""
    x = optimize.brentq(room, a, b, xtol=1e-15 * b, rtol=1e-15)
    step = -np.inf if left == outward else np.inf
    while holds(x) == outward:
        x = float(np.nextafter(x, step))
    return x


@dataclass(frozen=True)
class Candidates:
    """Each channel's two candidates at prices ``y``: the best of its concave piece ("on")
    and, where the domain has one, the best point outside it ("alt": silence, or the
    lower end of a convex piece)."""

    a: np.ndarray
    b: float
    on_s: np.ndarray
    on_g: np.ndarray
    on_upper: np.ndarray  # on_g plus the tangent allowance for the root's last digits
    on_w: np.ndarray  # 1 / (a |f''|) where on_s is an interior stationary point, else 0
    clip_w: np.ndarray  # 1 / (a |f''|) where on_s sits at an end of its piece, else 0
    alt_s: np.ndarray
    alt_g: np.ndarray  # -inf where there is no alternative


def candidates(rel: Relaxation, y: np.ndarray) -> Candidates:
    """The candidates of every channel (see :class:`Candidates`) at prices ``y``."""
    a, b = rel.coefficients(y)
    h = rel.curves
    empty = rel.lo > rel.hi
    lo, hi = np.where(empty, 0.0, rel.lo), np.where(empty, 0.0, rel.hi)
    p = np.clip(h.inflection, lo, hi)  # the concave piece is [p, hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        root = h.slope_root(np.where(a > 0, b / np.where(a > 0, a, 1.0), np.inf))
    root = np.where(b <= 0.0, hi, np.where(a > 0, root, lo))
    on_s = np.clip(root, p, hi)

    def g(s: np.ndarray) -> np.ndarray:
        return a * h.value(s) - b * s

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        on_g = g(on_s)
        d = a * h.slope(on_s) - b
        on_upper = on_g + np.maximum(d * (hi - on_s), d * (p - on_s))
        curv = np.abs(h.curvature(on_s))
        curved = (a > 0) & (curv > 0) & np.isfinite(curv)
        interior = curved & (on_s > p) & (on_s < hi)
        on_w = np.where(interior, 1.0 / np.where(interior, a * curv, 1.0), 0.0)
        clip_w = np.where(curved & ~interior, 1.0 / np.where(curved, a * curv, 1.0), 0.0)
    on_upper = np.where(hi > p, np.maximum(on_upper, on_g), on_g)
    convex_lo = lo < p  # a convex piece [lo, p) lies below the concave one
    zero = rel.zero_ok & (p > 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        lo_g = np.where(convex_lo, g(lo), -np.inf)
    zero_g = np.where(zero, 0.0, -np.inf)
    alt_g = np.maximum(lo_g, zero_g)
    alt_s = np.where(lo_g >= zero_g, lo, 0.0)
    on_g = np.where(empty, -np.inf, on_g)
    on_upper = np.where(empty, -np.inf, on_upper)
    alt_g = np.where(empty & rel.zero_ok, 0.0, np.where(empty, -np.inf, alt_g))
    alt_s = np.where(empty, 0.0, alt_s)
    return Candidates(a, b, on_s, on_g, on_upper, on_w, clip_w, alt_s, alt_g)


@dataclass(frozen=True)
class DualPoint:
    """The dual function at prices ``y``: a valid bound, the maximisers and the row slacks."""

    y: np.ndarray
    value: float  # L(y) rounded up: an upper bound on the optimum
    spend: np.ndarray  # a maximiser of every channel's term
    slack: np.ndarray  # rhs - row activity at ``spend`` (a subgradient of L)


def evaluate(rel: Relaxation, y: np.ndarray) -> DualPoint:
    """``L(y)`` rounded up by :data:`BOUND_SAFETY`, the channels' maximisers and the slacks."""
    y = np.maximum(np.asarray(y, dtype=float), 0.0)
    pc = candidates(rel, y)
    upper = np.maximum(pc.on_upper, pc.alt_g)
    spend = np.where(pc.on_g >= pc.alt_g, pc.on_s, pc.alt_s)
    const = float(y @ rel.rhs)
    f = rel.curves.value(spend)
    size = float(np.sum(np.abs(pc.a * f) + np.abs(pc.b * spend))) + abs(const)
    if np.all(np.isfinite(upper)):
        value = math.fsum([const, *upper.tolist()]) + BOUND_SAFETY * size
    else:
        value = -math.inf  # a channel has no feasible spend: the problem is infeasible
    return DualPoint(y=y, value=value, spend=spend, slack=rel.rhs - rel.row_activity(spend, f))
