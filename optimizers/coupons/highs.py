"""Running HiGHS on the coupon MIP or LP of :mod:`optimizers.coupons.model`."""

from __future__ import annotations

import highspy
import numpy as np

from optimizers.coupons.model import Columns, build_highs_model


def run_highs(
    cols: Columns,
    *,
    relax: bool,
    time_limit_s: float,
    mip_rel_gap: float = 1e-4,
    threads: int | None = None,
    options: dict[str, object] | None = None,
    start: np.ndarray | None = None,
) -> highspy.Highs:
    """Pass the model of ``cols`` to a fresh HiGHS instance, run it and return the instance.

    ``start`` (one value per column) is a feasible plan the MIP search starts from.

    ``threads`` is left to HiGHS by default: HiGHS fixes its thread pool the first
    time any solve in the process runs (Pyomo's included), and a later request
    for a different count makes ``run()`` fail without a status.
    """
    lp = build_highs_model(cols, relax=relax, inf=highspy.kHighsInf)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    for name, value in (options or {}).items():
        h.setOptionValue(name, value)
    a = lp.matrix
    h.passModel(
        cols.size,
        a.shape[0],
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise.value),
        int(highspy.ObjSense.kMaximize.value),
        0.0,
        lp.obj,
        np.zeros(cols.size),
        np.ones(cols.size),
        lp.row_lower,
        lp.row_upper,
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        lp.integrality,
    )
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=np.float64).tolist()
        h.setSolution(sol)
    h.run()
    return h
