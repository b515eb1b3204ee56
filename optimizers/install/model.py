"""The install-control model: PWL envelopes of the curves as a matrix MILP for HiGHS.

Decision: daily spend ``s[c]`` per acquisition channel ``c``.  Each channel's
expected installs ``v[c]`` follow a Hill curve, represented by a PWL envelope
(:mod:`optimizers.install.pwl`) in the *incremental* formulation:

    s[c] = sum_j d[c, j],            0 <= d[c, j] <= L[c, j]      (spend_def)
    v[c] <= base[c] + sum_j m[c, j] * d[c, j]                     (curve)

Concave segments (slopes decreasing) need nothing more: maximising fills them in
order.  The convex segments of S-shaped curves get ordering binaries
``y[c, j]`` (``d[c, j] >= L[c, j] y[c, j]``, ``d[c, j+1] <= L[c, j+1] y[c, j]``),
whose LP relaxation is the concave envelope, so branch-and-bound closes quickly.
Side constraints: ``budget``, ``min_spend[c]``, ``cpi_cap[c]`` (spend <=
cpi_max * installs), ``cpi_cap_total`` and ``target[metric]`` (installs / logins /
retained >= X).  Internally spend is in units of ``spend_scale`` and installs in
units of ``value_scale`` so the solver sees numbers near 1.  ``s[c]`` and
``v[c]`` are substituted out (every constraint reads them through ``d``), so the
columns are the ``d[c, j]`` and ``y[c, j]`` alone.

The inner (plan) model tightens the rows a plan must meet on the true curves
(targets and CPI caps) by ``PLAN_SLACK``, so HiGHS's feasibility tolerance can
never carry a plan over them.  :func:`linearise` turns an
:class:`~optimizers.install.problem.InstallProblem` into the data of its inner and
outer models; :func:`build_model` turns that into a :class:`LinearModel` (a pure
function of the data, no solving), built with numpy in milliseconds so a
refinement simply rebuilds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from optimizers.install.curves import METRICS
from optimizers.install.problem import InstallProblem
from optimizers.install.pwl import PiecewiseLinear, hill_envelopes

Envelope = Literal["inner", "outer"]
PLAN_SLACK = 1e-6  # relative tightening of targets and CPI caps in the inner (plan) model


@dataclass(frozen=True)
class Approximation:
    """How finely the curves are linearised (segments of the PWL envelopes)."""

    n_convex: int = 2
    n_concave: int = 24

    def __post_init__(self) -> None:
        if self.n_convex < 2 or self.n_concave < 2:
            raise ValueError(
                f"Approximation needs n_convex >= 2 and n_concave >= 2, got "
                f"{self.n_convex} and {self.n_concave}"
            )


@dataclass(frozen=True)
class ModelData:
    """Numbers the matrix model is built from: one PWL envelope per channel, scaled."""

    problem: InstallProblem
    envelopes: tuple[PiecewiseLinear, ...]
    envelope: Envelope
    spend_scale: float
    value_scale: float


def linearise(
    problem: InstallProblem,
    approx: Approximation | None = None,
    extra: Sequence[np.ndarray] | None = None,
) -> tuple[ModelData, ModelData]:
    """The ``(inner, outer)`` model data of ``problem`` (see :mod:`optimizers.install.pwl`).

    ``extra[c]``: additional breakpoints of channel ``c`` (adaptive refinement).
    """
    ap = approx or Approximation()
    if extra is not None and len(extra) != problem.n:
        raise ValueError(f"extra breakpoints given for {len(extra)} channels, expected {problem.n}")
    pairs = [
        hill_envelopes(
            c,
            float(h),
            n_convex=ap.n_convex,
            n_concave=ap.n_concave,
            extra=None if extra is None else extra[i],
        )
        for i, (c, h) in enumerate(zip(problem.curves, problem.hi, strict=True))
    ]
    spend_scale = float(problem.budget or 0.0) or float(problem.hi.sum()) or 1.0
    value_scale = float(sum(c.vmax for c in problem.curves)) / max(problem.n, 1)
    inner = ModelData(problem, tuple(p[0] for p in pairs), "inner", spend_scale, value_scale)
    outer = ModelData(problem, tuple(p[1] for p in pairs), "outer", spend_scale, value_scale)
    return inner, outer


@dataclass(frozen=True)
class LinearModel:
    """``max (or min) obj @ x + offset`` s.t. ``row_lo <= A x <= row_hi``, ``col_lo <= x <= col_hi``.

    ``integer[j]`` marks binaries.  ``seg[c]`` lists the columns ``d[c, :]`` of channel
    ``c`` (its spend is their sum, in units of ``spend_scale``); ``rows`` and
    ``slacks`` map constraint names (``budget``, ``target[retained]``, ``min_spend[c]``,
    ...) to their row and, in the elastic model, to their slack column.
    """

    data: ModelData
    sense: Literal["max", "min"]
    obj: np.ndarray
    offset: float
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    A: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    seg: tuple[np.ndarray, ...]
    rows: dict[str, int]
    slacks: dict[str, int]
    base: np.ndarray  # v[c] at zero spend (units of value_scale)
    tight: float  # relative tightening of targets and CPI caps (PLAN_SLACK or 0)

    def target_lo(self, metric: str, target: float) -> float:
        """Lower limit of row ``target[metric]`` for a target of ``target`` users."""
        return _target_lo(self.data, self.base, self.tight, metric, target)

    @property
    def is_mip(self) -> bool:
        """Whether any column is a binary (some curve is S-shaped)."""
        return bool(self.integer.any())

    def spend(self, x: np.ndarray) -> np.ndarray:
        """Spend per channel (original units) of a column vector ``x`` (below 1e-9 of the
        spend scale: 0, a solver's noise on a silent channel)."""
        S = self.data.spend_scale
        scaled = np.array(
            [
                float(x[cols[: e.n_segments]].sum())
                for cols, e in zip(self.seg, self.data.envelopes, strict=True)
            ]
        )
        return np.where(scaled > 1e-9, scaled, 0.0) * S

    def columns_of(self, spend: np.ndarray) -> np.ndarray:
        """Column values of a spend split: segments filled in order, binaries set to match."""
        x = np.zeros(self.obj.size)
        S = self.data.spend_scale
        for c, cols in enumerate(self.seg):
            d_cols = cols[: self.data.envelopes[c].n_segments]
            lengths = self.col_hi[d_cols]
            before = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
            x[d_cols] = np.clip(spend[c] / S - before, 0.0, lengths)
            y_cols = cols[self.data.envelopes[c].n_segments :]
            x[y_cols] = (x[d_cols[: y_cols.size]] >= lengths[: y_cols.size]).astype(float)
        return x


def _target_lo(
    data: ModelData, base: np.ndarray, tight: float, metric: str, target: float
) -> float:
    """``sum_c w[c] (v[c] - base[c]) >= target (1 + tight) / V - sum_c w[c] base[c]``."""
    w = data.problem.weights[metric]
    return target * (1.0 + tight) / data.value_scale - float(w @ base)


class _Builder:
    """Columns and rows appended in order (the model reads like the maths)."""

    def __init__(self) -> None:
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.obj: list[float] = []
        self.integer: list[bool] = []
        self.entries: list[tuple[int, int, float]] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []

    def var(self, lo: float, hi: float, *, integer: bool = False) -> int:
        self.lo.append(lo), self.hi.append(hi), self.obj.append(0.0)
        self.integer.append(integer)
        return len(self.lo) - 1

    def row(self, terms: dict[int, float], lo: float, hi: float) -> int:
        r = len(self.row_lo)
        self.entries.extend((r, j, v) for j, v in terms.items() if v != 0.0)
        self.row_lo.append(lo), self.row_hi.append(hi)
        return r


def build_model(data: ModelData, *, elastic: bool = False) -> LinearModel:
    """The matrix model of ``data`` (a pure function of the data; nothing is solved).

    With ``elastic=True`` the soft constraints (targets, min spends, CPI caps) get
    non-negative slack columns and the objective minimises their normalised sum:
    the constraints whose slack stays positive are the ones in conflict.  Target
    rows exist for every metric (limit 0 when unset) so a sweep only moves bounds.
    """
    p, env = data.problem, data.envelopes
    S, V = data.spend_scale, data.value_scale
    tight = PLAN_SLACK if data.envelope == "inner" and not elastic else 0.0
    inf = math.inf
    b = _Builder()

    # ---- data: segment lengths (spend / S), slopes (installs / V per spend / S), bases
    length = [e.lengths / S for e in env]
    slope = [e.slopes * S / V for e in env]
    base = np.array([e.values[0] / V for e in env])

    # ---- variables: d[c, j] spend in segment j, y[c, j] = 1 when convex segment j is full
    d = [np.array([b.var(0.0, float(L)) for L in length[c]], dtype=int) for c in range(p.n)]
    y = [
        np.array([b.var(0.0, 1.0, integer=True) for _ in range(e.n_convex)], dtype=int) for e in env
    ]

    def value(c: int, w: float) -> dict[int, float]:  # w * v[c] without its base
        return {int(j): w * float(m) for j, m in zip(d[c], slope[c], strict=True)}

    def spend_terms(cs: range | list[int], coef: float = 1.0) -> dict[int, float]:
        return {int(j): coef for c in cs for j in d[c]}

    # ---- constraints: ordering of the convex segments (fill_full, fill_next, fill_rest)
    for c, e in enumerate(env):
        for j in range(e.n_convex):
            b.row({int(d[c][j]): 1.0, int(y[c][j]): -float(length[c][j])}, 0.0, inf)
            for jj in [j + 1] if j + 1 < e.n_convex else range(j + 1, e.n_segments):
                b.row({int(d[c][jj]): 1.0, int(y[c][j]): -float(length[c][jj])}, -inf, 0.0)
    rows: dict[str, int] = {}
    soft: dict[str, tuple[float, float]] = {}  # name -> (sign of its slack, objective weight)
    if p.budget is not None:
        rows["budget"] = b.row(spend_terms(range(p.n)), -inf, p.budget / S)
    for c in np.flatnonzero(p.min_spend > 0):
        rows[f"min_spend[{p.channels[c]}]"] = b.row(spend_terms([c]), p.min_spend[c] / S, inf)
        soft[f"min_spend[{p.channels[c]}]"] = (1.0, S / p.min_spend[c])
    for c in np.flatnonzero(np.isfinite(p.cpi_max)):
        cpi = p.cpi_max[c] * (1.0 - tight)  # S s <= cpi V v
        terms = {j: S - cpi * V * m for j, m in value(c, 1.0).items()}
        rows[f"cpi_cap[{p.channels[c]}]"] = b.row(terms, -inf, cpi * V * base[c])
        soft[f"cpi_cap[{p.channels[c]}]"] = (-1.0, 1.0 / max(p.budget or S, 1e-9))
    if p.cpi_max_total is not None:
        cpi = p.cpi_max_total * (1.0 - tight)
        terms = {j: S - cpi * V * m for c in range(p.n) for j, m in value(c, 1.0).items()}
        rows["cpi_cap_total"] = b.row(terms, -inf, cpi * V * float(base.sum()))
        soft["cpi_cap_total"] = (-1.0, 1.0 / max(p.budget or S, 1e-9))
    for k in METRICS:
        w = p.weights[k]
        terms = {j: v for c in range(p.n) for j, v in value(c, float(w[c])).items()}
        lim = _target_lo(data, base, tight, k, p.targets.get(k, 0.0))
        rows[f"target[{k}]"] = b.row(terms, lim, inf)
        soft[f"target[{k}]"] = (1.0, 1.0 / max(p.targets.get(k, 0.0) / V, 1e-9))

    # ---- objective
    slacks: dict[str, int] = {}
    offset = 0.0
    if elastic:
        for name, (sign, weight) in soft.items():
            slacks[name] = b.var(0.0, inf)
            b.entries.append((rows[name], slacks[name], sign))
            b.obj[slacks[name]] = weight
        sense = "min"
    elif p.objective == "spend":
        for j in spend_terms(range(p.n)):
            b.obj[j] = 1.0
        sense = "min"
    else:
        w = p.weights[p.objective]
        for c in range(p.n):
            for j, v in value(c, float(w[c])).items():
                b.obj[j] = v
        offset = float(w @ base)
        sense = "max"
    n_rows, n_cols = len(b.row_lo), len(b.lo)
    r, j, v = (np.array(t) for t in zip(*b.entries, strict=True)) if b.entries else ([], [], [])
    return LinearModel(
        data=data,
        sense=sense,
        obj=np.array(b.obj),
        offset=offset,
        col_lo=np.array(b.lo),
        col_hi=np.array(b.hi),
        integer=np.array(b.integer, dtype=bool),
        A=sp.csc_matrix((v, (r, j)), shape=(n_rows, n_cols)),
        row_lo=np.array(b.row_lo),
        row_hi=np.array(b.row_hi),
        seg=tuple(np.concatenate([d[c], y[c]]) for c in range(p.n)),
        rows=rows,
        slacks=slacks,
        base=base,
        tight=tight,
    )
