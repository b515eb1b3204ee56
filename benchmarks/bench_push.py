"""Benchmark push scheduling: decomposition vs CP-SAT vs the HiGHS LP relaxation.

Instances: ``n`` users x 24 hours x 5 candidate messages; open probability =
hourly activity profile x per-(user, message) relevance x noise; fatigue cap
3, min gap 2 h, decay 0.7, hourly capacity following the activity profile at
30% of unconstrained demand, share floors for two of five industries.

Methods (one row each):

* ``decomposition``: Lagrangian DP + subgradient + repair (objective, its own bound).
* ``cpsat``: the exact DP-graph model with a time limit; its model has about
  2,000 binaries per user at 5 messages, so it is only run up to
  ``--cpsat-max-users`` users (at 1e4 users the model, ~2e7 binaries, does not
  fit the time or memory of a 2-core machine: reported as "skipped").
* ``highs-lp``: HiGHS LP relaxation of the *time-indexed* formulation
  ``x[u, m, h] in [0, 1]`` **without decay** (every push at full value): once,
  fatigue_cap, min_gap windows, capacity, shares.  Ignoring the decay makes it
  a valid but looser upper bound; it is the classical bound one gets without
  the position-aware model.

Run:  .venv/bin/python benchmarks/bench_push.py            # 300, 1e4 and 1e5 users
"""

from __future__ import annotations

import argparse
import time

import highspy
import numpy as np
import scipy.sparse as sp

from optimizers.push import DecompositionConfig, PushProblem, solve_cpsat, solve_decomposition

INDUSTRIES = np.array(["fashion", "food", "games", "travel", "finance"])


def make_instance(n_users: int, seed: int = 0, n_msgs: int = 5) -> PushProblem:
    """A random day shaped like an hourly activity profile x message relevance."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    activity = (
        0.15
        + np.exp(-0.5 * ((hours - 12.5) / 2.5) ** 2)
        + 0.8 * np.exp(-0.5 * ((hours - 20) / 1.5) ** 2)
    )
    activity = activity / activity.max()
    relevance = rng.beta(2, 6, (n_users, n_msgs))
    noise = rng.lognormal(0.0, 0.3, (n_users, n_msgs, 24))
    p = np.clip(0.6 * relevance[:, :, None] * activity * noise, 0, 1)
    industry = rng.choice(INDUSTRIES, size=(n_users, n_msgs), p=[0.3, 0.25, 0.2, 0.15, 0.1])
    cap, gap = 3, 2
    demand = n_users * cap * activity / activity.sum()
    capacity = np.ceil(0.3 * demand)
    return PushProblem(
        p,
        industry,
        fatigue_cap=cap,
        min_gap=gap,
        capacity=capacity,
        industry_share={"travel": 0.2, "finance": 0.15},
        decay=0.7,
    )


def lp_relaxation_no_decay(problem: PushProblem, time_limit_s: float) -> tuple[float, str, float]:
    """HiGHS LP bound of the time-indexed model without decay: (bound, status, seconds)."""
    t0 = time.perf_counter()
    n_u, n_m, n_h = problem.n_users, problem.n_msgs, problem.n_hours
    n = n_u * n_m * n_h
    var = np.arange(n).reshape(n_u, n_m, n_h)  # x[u, m, h]
    rows: list[sp.csr_matrix] = []
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []

    def add(mat: sp.spmatrix, lo: np.ndarray, hi: np.ndarray) -> None:
        rows.append(sp.csr_matrix(mat))
        lower.append(np.asarray(lo, dtype=float))
        upper.append(np.asarray(hi, dtype=float))

    ones = np.ones(n)
    # once[u, m]
    add(
        sp.csr_matrix((ones, (var.reshape(-1) // n_h, var.reshape(-1))), shape=(n_u * n_m, n)),
        np.full(n_u * n_m, -np.inf),
        np.ones(n_u * n_m),
    )
    # fatigue_cap[u]
    add(
        sp.csr_matrix((ones, (var.reshape(-1) // (n_m * n_h), var.reshape(-1))), shape=(n_u, n)),
        np.full(n_u, -np.inf),
        np.full(n_u, problem.fatigue_cap),
    )
    # min_gap[u, window]
    g = problem.min_gap
    n_win = n_h - g + 1
    r, c = [], []
    for w in range(n_win):
        cols = var[:, :, w : w + g].reshape(n_u, -1)
        r.append(np.repeat(np.arange(n_u) * n_win + w, cols.shape[1]))
        c.append(cols.reshape(-1))
    rr, cc = np.concatenate(r), np.concatenate(c)
    add(
        sp.csr_matrix((np.ones(len(rr)), (rr, cc)), shape=(n_u * n_win, n)),
        np.full(n_u * n_win, -np.inf),
        np.ones(n_u * n_win),
    )
    # capacity[h]
    cap = np.floor(problem.capacity)
    hour_of = var.reshape(-1) % n_h
    add(
        sp.csr_matrix((ones, (hour_of, var.reshape(-1))), shape=(n_h, n)),
        np.full(n_h, -np.inf),
        np.where(np.isfinite(cap), cap, 1e30),
    )
    # industry_share[k]: sum_{in k} x - s_k sum x >= 0
    code = np.repeat(problem.industry_code.reshape(-1), n_h)
    for k, s in enumerate(problem.share):
        if s > 0:
            coef = (code == k).astype(float) - s
            add(sp.csr_matrix(coef[None, :]), np.zeros(1), np.full(1, np.inf))
    a = sp.vstack(rows).tocsr()
    lo, hi = np.concatenate(lower), np.concatenate(upper)
    lo[np.isneginf(lo)] = -highspy.kHighsInf
    hi[np.isposinf(hi)] = highspy.kHighsInf

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", 1)
    cost = problem.open_prob.reshape(-1)
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    h.addRows(
        a.shape[0], lo, hi, a.nnz, a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data
    )
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    bound = info.objective_function_value if status == "Optimal" else float("nan")
    return float(bound), status, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[300, 10_000, 100_000])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--cpsat-max-users", type=int, default=300)
    parser.add_argument("--lp-max-users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    header = f"{'users':>8} {'method':<14} {'objective':>12} {'bound':>12} {'gap %':>7} {'time s':>8}  note"
    print(header)
    print("-" * len(header))
    for n in args.users:
        prob = make_instance(n, args.seed)
        dec = solve_decomposition(
            prob, DecompositionConfig(tol=args.tol, time_limit_s=args.time_limit)
        )
        assert prob.violations(dec.pushes.user, dec.pushes.message, dec.pushes.hour) == []
        note = f"iters {dec.info['iterations']} (+{dec.info['sample_iterations']} on sample)"
        print(
            f"{n:>8} {'decomposition':<14} {dec.objective:>12.2f} {dec.upper_bound:>12.2f} "
            f"{100 * dec.gap:>7.3f} {dec.solve_time_s:>8.1f}  {note}"
        )
        if n <= args.cpsat_max_users:
            ex = solve_cpsat(prob, time_limit_s=args.time_limit)
            print(
                f"{n:>8} {'cpsat':<14} {ex.objective:>12.2f} {ex.upper_bound:>12.2f} "
                f"{100 * ex.gap:>7.3f} {ex.solve_time_s:>8.1f}  {ex.info['cpsat_status']}"
            )
        else:
            print(
                f"{n:>8} {'cpsat':<14} {'-':>12} {'-':>12} {'-':>7} {'-':>8}  skipped: "
                f"~{2000 * n:.0e} binaries, beyond a 2-core machine"
            )
        if n <= args.lp_max_users:
            bound, status, secs = lp_relaxation_no_decay(prob, args.time_limit * 3)
            gap = 100 * (bound - dec.objective) / bound if np.isfinite(bound) else float("nan")
            print(
                f"{n:>8} {'highs-lp':<14} {'-':>12} {bound:>12.2f} {gap:>7.3f} {secs:>8.1f}  "
                f"{status}; no-decay bound, gap vs decomposition plan"
            )
        else:
            print(
                f"{n:>8} {'highs-lp':<14} {'-':>12} {'-':>12} {'-':>7} {'-':>8}  skipped: "
                f"{n * 120:.0e} LP columns"
            )


if __name__ == "__main__":
    main()
