"""Exact sums of float arrays, so that feasibility and bounds hold in exact arithmetic.

A float is ``m * 2**e`` with an integer ``m`` of at most 53 bits, so a sum of
floats is an exact rational number.  :func:`exact_sums` computes such sums
vectorised: it splits every mantissa into two 26/27-bit integer halves, adds the
halves per (group, exponent) with ``np.bincount`` (float64 holds these integer
partial sums exactly) and assembles the result as a :class:`fractions.Fraction`.
Budgets are then checked as ``Fraction(spend) <= Fraction(budget)``: never against
a budget plus a tolerance.  :func:`round_up` turns an exact bound into the
smallest float at least as large, so a reported bound stays a bound.

>>> import numpy as np
>>> x = np.array([0.1] * 10)
>>> float(sum(x.tolist())) == 1.0, exact_sum(x) == sum(map(Fraction, x.tolist()))
(False, True)
>>> exact_sum(np.array([1e16, 1.0, -1e16]))
Fraction(1, 1)
>>> [float(s) for s in exact_sums(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]), 3)]
[4.0, 2.0, 0.0]
>>> round_down(Fraction(1, 3)) < Fraction(1, 3) < round_up(Fraction(1, 3))
True
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

_CHUNK = 1 << 25
"""Entries per bincount: 2**25 halves below 2**27 sum below 2**52, exact in float64."""


def exact_sums(x: np.ndarray, groups: np.ndarray, n_groups: int) -> list[Fraction]:
    """Exact sum of ``x`` (finite floats) within each group ``0..n_groups-1``.

    ``groups`` (same shape as ``x``) holds each entry's group.  The result is exact
    whatever the magnitudes and signs; the work is a few vector passes over ``x``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    groups = np.asarray(groups, dtype=np.int64).ravel()
    totals = [0] * n_groups  # integer numerators over 2**-shift
    keep = x != 0.0
    x, groups = x[keep], groups[keep]
    if not x.size:
        return [Fraction(0)] * n_groups
    if not np.isfinite(x).all():
        raise ValueError("exact sums need finite numbers")
    mant, expo = np.frexp(x)  # x = mant * 2**expo, 0.5 <= |mant| < 1
    q = (mant * 2.0**53).astype(np.int64)  # exact: x = q * 2**(expo - 53)
    hi, lo = q >> 26, q & ((1 << 26) - 1)  # q = hi * 2**26 + lo, 0 <= lo < 2**26
    low = int(expo.min())
    width = int(expo.max()) - low + 1
    key = groups * width + (expo - low)
    shift = 53 - low  # every entry is an integer multiple of 2**-shift
    for start in range(0, x.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        s_hi = np.bincount(key[part], weights=hi[part], minlength=n_groups * width)
        s_lo = np.bincount(key[part], weights=lo[part], minlength=n_groups * width)
        for idx in np.flatnonzero((s_hi != 0) | (s_lo != 0)):
            g, e = divmod(int(idx), width)
            totals[g] += ((int(s_hi[idx]) << 26) + int(s_lo[idx])) << e
    return [Fraction(t, 1 << shift) if shift >= 0 else Fraction(t << -shift) for t in totals]


def exact_sum(x: np.ndarray) -> Fraction:
    """Exact sum of the finite floats ``x``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return exact_sums(x, np.zeros(x.size, dtype=np.int64), 1)[0]


def round_up(value: Fraction) -> float:
    """The smallest float >= ``value``."""
    f = float(value)
    return f if Fraction(f) >= value else math.nextafter(f, math.inf)


def round_down(value: Fraction) -> float:
    """The largest float <= ``value``."""
    f = float(value)
    return f if Fraction(f) <= value else math.nextafter(f, -math.inf)
