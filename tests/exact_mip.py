"""A 0/1 MIP on HiGHS (highspy directly) whose answer is checked in exact arithmetic.

The reference models of the property suite (``exact_coupons``, ``exact_push``) are
written here from the problems' maths, independent of ``optimizers/``: they share
no builder, no scaling and no tolerance with the code under test.

HiGHS works in floating point with feasibility tolerances, so its plan can break
a row by a hair.  :func:`verified_optimum` therefore checks every plan against the
posed constraints in exact rational arithmetic (``fractions.Fraction`` over the
floats as given) and, if a row is broken, re-solves with that row tightened by
more than the excess.  What it returns is a plan that is feasible *exactly*, so
its exact value is a certain lower bound on the true optimum: any reported upper
bound below it is wrong, whatever the solver tolerances.  The dual bound of the
untightened solve (``mip_rel_gap = 0``) is kept as the reference's own upper
estimate (a claim within HiGHS's tolerances, used only for infeasibility).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import highspy
import numpy as np


def exact(x: float) -> Fraction:
    """The exact rational value of a float (``Fraction(0.1)`` is not ``1/10``)."""
    return Fraction(float(x))


def exact_sum(values: Iterable[float]) -> Fraction:
    """Exact sum of floats (no rounding at any step)."""
    return sum((Fraction(float(v)) for v in values), Fraction(0))


@dataclass
class Row:
    """``lower <= sum_i coef[i] * x[index[i]] <= upper`` (``±inf`` for a free side)."""

    name: str
    index: np.ndarray  # (nnz,) column indices
    coef: np.ndarray  # (nnz,) coefficients
    lower: float = -math.inf
    upper: float = math.inf


@dataclass
class BinaryMip:
    """``maximise objective @ x`` over ``x in {0, 1}^m`` subject to ``rows``."""

    objective: np.ndarray  # (m,)
    rows: list[Row] = field(default_factory=list)


@dataclass
class MipAnswer:
    """HiGHS's answer: ``'optimal'``, ``'infeasible'`` or ``'limit'``; ``x`` rounded to 0/1."""

    status: str
    x: np.ndarray | None
    dual_bound: float


FEAS_TOL = 1e-9
"""HiGHS's primal and MIP feasibility tolerance: a row may break by this much in its answer."""


def solve_mip(mip: BinaryMip, *, time_limit_s: float = 20.0) -> MipAnswer:
    """Solve ``mip`` to ``mip_rel_gap = 0`` with HiGHS's own tolerances tightened."""
    m = int(mip.objective.size)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.0)
    h.setOptionValue("mip_feasibility_tolerance", FEAS_TOL)
    h.setOptionValue("primal_feasibility_tolerance", FEAS_TOL)
    inf = highspy.kHighsInf
    zeros = np.zeros(m)
    h.addCols(
        m,
        np.asarray(mip.objective, dtype=np.float64),
        zeros,
        np.ones(m),
        0,
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros(0),
    )
    h.changeColsIntegrality(
        m, np.arange(m, dtype=np.int32), np.full(m, highspy.HighsVarType.kInteger)
    )
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    for r in mip.rows:
        lo = -inf if r.lower == -math.inf else float(r.lower)
        up = inf if r.upper == math.inf else float(r.upper)
        h.addRow(lo, up, int(r.index.size), r.index.astype(np.int32), r.coef.astype(np.float64))
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return MipAnswer("infeasible", None, -math.inf)
    info = h.getInfo()
    if info.primal_solution_status != 2:  # no feasible point found in time
        return MipAnswer("limit", None, math.inf)
    x = (np.asarray(h.getSolution().col_value) > 0.5).astype(np.int64)
    optimal = status == highspy.HighsModelStatus.kOptimal
    return MipAnswer("optimal" if optimal else "limit", x, float(info.mip_dual_bound))


@dataclass
class Verified:
    """A reference answer; ``x`` (when given) is feasible in exact arithmetic.

    ``status``: ``'optimal'`` (HiGHS's optimum of the posed model passed the exact
    check), ``'feasible'`` (the optimum of a tightened model did: ``x`` is feasible,
    perhaps not optimal), ``'infeasible'`` (HiGHS found the posed model infeasible,
    a claim within its tolerances) or ``'unknown'``.  ``value`` is the exact objective
    of ``x``, a certain lower bound on the optimum; ``dual_bound`` is HiGHS's bound
    of the posed (untightened) model.
    """

    status: str
    x: np.ndarray | None
    value: Fraction | None
    dual_bound: float


def verified_optimum(
    build: Callable[[dict[str, float]], BinaryMip],
    excess: Callable[[np.ndarray], dict[str, float]],
    value: Callable[[np.ndarray], Fraction],
    *,
    rounds: int = 6,
) -> Verified:
    """Solve ``build(margins)`` until its plan passes the exact check ``excess``.

    ``build(margins)`` returns the MIP with row ``name`` tightened by ``margins[name]``
    (in the row's units); ``excess(x)`` maps each row the plan breaks in exact
    arithmetic to the amount (> 0) by which it breaks it; ``value(x)`` is the exact
    objective.  Each round tightens a broken row by at least four times its excess (and at
    least twice HiGHS's tolerance, below which it takes a break for no break)
    (doubling the previous margin); ``build`` should move the limit by at least a
    few ulps (:func:`tighten`) so that a margin below float resolution still bites.
    """
    margins: dict[str, float] = {}
    first_bound = math.nan
    for i in range(rounds):
        ans = solve_mip(build(margins))
        if i == 0:
            first_bound = ans.dual_bound
            if ans.status == "infeasible":
                return Verified("infeasible", None, None, -math.inf)
        if ans.x is None:
            return Verified("unknown", None, None, first_bound)
        broken = excess(ans.x)
        if not broken:
            status = "optimal" if ans.status == "optimal" and not margins else "feasible"
            return Verified(status, ans.x, value(ans.x), first_bound)
        for name, amount in broken.items():  # HiGHS accepts breaks below its tolerance
            margins[name] = max(4.0 * float(amount), 2.0 * margins.get(name, 0.0), 2 * FEAS_TOL)
    return Verified("unknown", None, None, first_bound)


def tighten(limit: float, margin: float, *, upper: bool) -> float:
    """``limit`` moved inwards by ``margin`` (at least 4 ulps) when ``margin > 0``."""
    if margin <= 0 or not math.isfinite(limit):
        return limit
    step = max(margin, 4.0 * math.ulp(limit), 1e-300)
    return limit - step if upper else limit + step
