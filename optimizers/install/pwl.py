"""Piecewise-linear envelopes of a Hill curve: one below it, one above it.

The optimiser never sees the true curve ``f``; it sees two continuous
piecewise-linear (PWL) functions on ``[0, hi]`` with ``inner <= f <= outer``:

* on the convex part ``[0, x0]`` of an S-shaped curve (``x0`` = inflection):
  ``inner`` is the maximum of tangents (below a convex function) and ``outer``
  interpolates ``f`` at the tangents' intersections (chords lie above it);
* on the concave part ``[x0, hi]``: ``inner`` interpolates ``f`` (chords lie
  below) and ``outer`` is the minimum of tangents (above).

A plan optimised against ``inner`` is feasible for the true curves (every
constraint of the form "installs >= ..." only gets easier), and the optimum
against ``outer`` bounds the true optimum from above: together they certify the
gap.  Breakpoints equidistribute ``sqrt(|f''|)``, which minimises the worst
interpolation error for a given number of segments.  Both envelopes of a curve
have the same number of segments (zero-length padding), and the leading
``n_convex`` segments (increasing slopes) are the only ones that need ordering
binaries in a MILP.

Adaptive refinement passes ``extra`` spend points (for example the incumbent
plan and the relaxation's solution): they become tangent points of ``inner`` on
the convex part, and chord *and* tangent points on the concave part, so both
envelopes touch ``f`` there and the gap around the incumbent closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizers.install.curves import HillCurve

MIN_SHARE = 0.02  # share of a uniform grid blended into every breakpoint set
MIN_SPACING = 1e-4  # extra points closer than this share of the domain to another are dropped


@dataclass(frozen=True)
class PiecewiseLinear:
    """Continuous PWL function through ``(breakpoints[i], values[i])``.

    ``breakpoints`` is non-decreasing and starts at 0 (spend units); ``values`` in
    installs.  The first ``n_convex`` segments have increasing slopes (they must
    be filled in order by a MILP); the rest have non-increasing slopes.
    """

    breakpoints: np.ndarray  # (n_segments + 1,)
    values: np.ndarray  # (n_segments + 1,)
    n_convex: int

    @property
    def lengths(self) -> np.ndarray:
        """Segment lengths in spend units, shape ``(n_segments,)``."""
        return np.diff(self.breakpoints)

    @property
    def slopes(self) -> np.ndarray:
        """Segment slopes in installs per spend unit (0 for zero-length segments)."""
        dx = self.lengths
        dy = np.diff(self.values)
        return np.divide(dy, dx, out=np.zeros_like(dy), where=dx > 0)

    @property
    def n_segments(self) -> int:
        """Number of segments (including zero-length padding)."""
        return int(self.breakpoints.size - 1)

    def __call__(self, spend: np.ndarray | float) -> np.ndarray:
        """Value of the PWL function at ``spend`` (clamped to its domain)."""
        return np.interp(spend, self.breakpoints, self.values)


def _equidistributed(curve: HillCurve, lo: float, hi: float, n: int) -> np.ndarray:
    """``n + 1`` points on ``[lo, hi]`` equidistributing ``sqrt(|f''|)`` (plus a uniform floor)."""
    if n <= 0 or hi <= lo:
        return np.array([lo, hi])
    grid = np.unique(
        np.concatenate(
            [np.linspace(lo, hi, 600), lo + np.geomspace((hi - lo) * 1e-7, hi - lo, 600)]
        )
    )
    dens = np.sqrt(np.abs(curve.second_derivative(np.maximum(grid, 1e-12 * curve.k))))
    dens = np.minimum(dens, np.quantile(dens, 0.999) * 10.0)
    dens = dens + 0.05 * np.trapezoid(dens, grid) / (hi - lo)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    pts = np.interp(np.linspace(0.0, cum[-1], n + 1), cum, grid)
    # Blend in 2% of a uniform grid: every segment gets >= 0.02 (hi - lo) / n, so no
    # segment falls below the LP solver's feasibility tolerance.
    pts = (1.0 - MIN_SHARE) * pts + MIN_SHARE * np.linspace(lo, hi, n + 1)
    pts[0], pts[-1] = lo, hi
    return pts


def _tangent_lines(curve: HillCurve, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of the tangents of ``curve`` at ``points``."""
    slope = curve.derivative(points)
    return slope, curve(points) - slope * points


def _kinks(slope: np.ndarray, icpt: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Where consecutive tangent lines cross (clipped to between their tangent points)."""
    ds = slope[:-1] - slope[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (icpt[1:] - icpt[:-1]) / ds
    mid = 0.5 * (points[:-1] + points[1:])
    z = np.where(np.abs(ds) > 1e-300, z, mid)
    z = np.where(np.isfinite(z), z, mid)
    return np.clip(z, points[:-1], points[1:])


def _merge(points: np.ndarray, extra: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``points`` plus the ``extra`` points strictly inside ``(lo, hi)``, sorted.

    Extra points within ``MIN_SPACING * (hi - lo)`` of a kept point are dropped, so
    no segment gets shorter than the LP solver's tolerances can represent.
    """
    gap = MIN_SPACING * (hi - lo)
    inside = np.sort(extra[(extra > lo + gap) & (extra < hi - gap)])
    if inside.size == 0:
        return points
    kept = list(points)
    for x in inside:
        if np.min(np.abs(np.asarray(kept) - x)) > gap:
            kept.append(float(x))
    return np.sort(np.asarray(kept, dtype=float))


def hill_envelopes(
    curve: HillCurve,
    hi: float,
    *,
    n_convex: int = 2,
    n_concave: int = 24,
    extra: np.ndarray | None = None,
) -> tuple[PiecewiseLinear, PiecewiseLinear]:
    """The ``(inner, outer)`` PWL envelopes of ``curve`` on ``[0, hi]`` (see module docstring).

    ``n_convex`` segments cover the convex part of an S-shaped curve, about
    ``n_concave`` the concave part.  Both envelopes get the same segment count.
    ``extra`` spend points (outside ``(0, hi)`` ignored) are added as tangent /
    chord points, making both envelopes exact there (adaptive refinement).
    """
    if not np.isfinite(hi) or hi < 0:
        raise ValueError(f"envelope domain end must be finite and >= 0, got {hi}")
    ext = np.zeros(0) if extra is None else np.asarray(extra, dtype=float).ravel()
    if not np.all(np.isfinite(ext)):
        raise ValueError("extra breakpoints of an envelope must be finite numbers")
    if hi == 0:
        zero = PiecewiseLinear(np.zeros(2), np.zeros(2), 0)
        return zero, zero
    x0 = min(curve.inflection, hi)
    in_x: list[np.ndarray] = []
    in_y: list[np.ndarray] = []
    out_x: list[np.ndarray] = []
    out_y: list[np.ndarray] = []
    nc = 0
    if x0 > 0:
        # Convex part: tangents (inner) and chords through their kinks (outer).
        t = _merge(_equidistributed(curve, 0.0, x0, max(n_convex - 1, 1)), ext, 0.0, x0)
        slope, icpt = _tangent_lines(curve, t)
        bx = np.concatenate([[0.0], _kinks(slope, icpt, t), [x0]])
        by = np.max(slope[None, :] * bx[:, None] + icpt[None, :], axis=1)
        by[0] = max(by[0], 0.0)
        by[-1] = float(curve(x0))
        in_x.append(bx)
        in_y.append(np.minimum(by, curve(bx)))
        out_x.append(bx)
        out_y.append(curve(bx))
        nc = bx.size - 1
    if x0 < hi:
        # Concave part: chords (inner) and tangents at the same points (outer).
        c = _merge(_equidistributed(curve, x0, hi, n_concave), ext, x0, hi)
        in_x.append(c[1:] if nc else c)
        in_y.append(curve(c[1:] if nc else c))
        tp = c.copy()
        if not np.isfinite(curve.derivative(tp[0])):  # alpha < 1: vertical tangent at 0
            tp[0] = tp[1] * 1e-2
        slope, icpt = _tangent_lines(curve, tp)
        bx = np.concatenate([[x0], _kinks(slope, icpt, tp), [hi]])
        by = np.min(slope[None, :] * bx[:, None] + icpt[None, :], axis=1)
        by = np.maximum(by, curve(bx))
        out_x.append(bx[1:] if nc else bx)
        out_y.append(by[1:] if nc else by)
    inner_x, inner_y = np.concatenate(in_x), np.concatenate(in_y)
    outer_x, outer_y = np.concatenate(out_x), np.concatenate(out_y)
    n = max(inner_x.size, outer_x.size)
    inner = PiecewiseLinear(_pad(inner_x, n), _pad(inner_y, n), nc)
    outer = PiecewiseLinear(_pad(outer_x, n), _pad(outer_y, n), nc)
    return inner, outer


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """Repeat the last point so the function gains zero-length segments at its end."""
    return np.concatenate([a, np.full(n - a.size, a[-1])])
