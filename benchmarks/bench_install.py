"""Benchmark: certified Pareto fronts (Pyomo + HiGHS) vs scipy SLSQP with random restarts.

For each instance (random mixes of concave and S-shaped Hill curves; 20, 100 and
500 channels) we trace a 20-point installs-vs-retained front with
:func:`optimizers.install.pareto_front`, then ask SLSQP (what popular media-mix
budget allocators use) to solve the same epsilon problems: maximise installs
subject to budget and retained >= epsilon, from the equal split plus random
Dirichlet splits.  We report, per instance: both wall times, how many points ours
is at least as good (never worse) and strictly better (> 0.1%), the mean and worst
objective ratio ours / SLSQP, and our largest certified gap.

SLSQP with restarts is slow on many channels (minutes per front at 100), so
``--peer-points K`` compares on K evenly spaced points of our front only, and
``--restarts`` sets the peer's random restarts (besides the equal split).

Run:  .venv/bin/python benchmarks/bench_install.py [--sizes 20 100 500] [--points 20]
      [--restarts 4] [--peer-points K]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from optimizers.install import ChannelModels, HillCurve, pareto_front


@dataclass(frozen=True)
class Instance:
    name: str
    models: ChannelModels
    budget: float


def make_instance(n: int, s_share: float, seed: int) -> Instance:
    """``n`` channels, a share ``s_share`` of them S-shaped; budget = 40% of sum of k."""
    rng = np.random.default_rng(seed)
    curves: dict[int, HillCurve] = {}
    for c in range(n):
        alpha = rng.uniform(1.5, 4.0) if rng.random() < s_share else rng.uniform(0.3, 1.0)
        curves[c] = HillCurve(rng.uniform(100, 1000), rng.uniform(300, 3000), alpha)
    models = ChannelModels.from_curves(
        curves,
        login_rate={c: rng.uniform(0.3, 0.9) for c in range(n)},
        retention_rate={c: rng.uniform(0.2, 0.6) for c in range(n)},
    )
    budget = 0.4 * sum(c.k for c in curves.values())
    return Instance(f"n={n} S={int(100 * s_share)}%", models, budget)


def slsqp_point(
    models: ChannelModels, budget: float, eps: float, restarts: int, rng: np.random.Generator
) -> float:
    """Best installs SLSQP finds with retained >= eps (-inf when no start ends feasible)."""
    curves = [models[c].curve for c in models.channels]
    vmax = np.array([c.vmax for c in curves])
    k = np.array([c.k for c in curves])
    a = np.array([c.alpha for c in curves])
    w = models.weights("retained")
    n = len(curves)

    def f(x: np.ndarray) -> np.ndarray:
        u = np.power(np.maximum(x, 0.0) / k, a)
        return vmax * u / (1.0 + u)

    def df(x: np.ndarray) -> np.ndarray:
        xs = np.maximum(x, 1e-9 * budget)
        u = np.power(xs / k, a)
        return vmax * a * u / (xs * (1.0 + u) ** 2)

    cons = [
        {"type": "ineq", "fun": lambda x: budget - x.sum(), "jac": lambda x: -np.ones(n)},
        {"type": "ineq", "fun": lambda x: f(x) @ w - eps, "jac": lambda x: df(x) * w},
    ]
    starts = [np.full(n, budget / n)] + [
        rng.dirichlet(np.ones(n)) * budget for _ in range(restarts)
    ]
    best = -np.inf
    for x0 in starts:
        res = optimize.minimize(
            lambda x: -f(x).sum(),
            x0,
            jac=lambda x: -df(x),
            method="SLSQP",
            bounds=[(0.0, budget)] * n,
            constraints=cons,
            options={"maxiter": 300, "ftol": 1e-9},
        )
        x = np.clip(res.x, 0.0, budget)
        feasible = x.sum() <= budget * (1 + 1e-6) and f(x) @ w >= eps * (1 - 1e-6)
        if feasible:
            best = max(best, float(f(x).sum()))
    return best


def run(
    sizes: list[int], n_points: int, restarts: int, seed: int, peer_points: int | None = None
) -> list[dict[str, object]]:
    """Trace each instance's front, solve its points with SLSQP and print one row per instance."""
    rows = []
    for n in sizes:
        for s_share in (0.3, 1.0):
            inst = make_instance(n, s_share, seed + n)
            t0 = time.perf_counter()
            front = pareto_front(inst.models, inst.budget, ("installs", "retained"), n_points)
            t_ours = time.perf_counter() - t0
            rng = np.random.default_rng(seed)
            idx = np.arange(len(front))
            if peer_points is not None and peer_points < len(front):
                idx = np.unique(np.linspace(0, len(front) - 1, peer_points).round().astype(int))
            t0 = time.perf_counter()
            theirs = np.array(
                [
                    slsqp_point(inst.models, inst.budget, float(front.epsilons[i]), restarts, rng)
                    for i in idx
                ]
            )
            t_slsqp = time.perf_counter() - t0
            ours = front.values()[idx, 0]
            ok = np.isfinite(theirs)
            ratio = ours[ok] / theirs[ok]
            rows.append(
                {
                    "instance": inst.name,
                    "points": len(front),
                    "compared": len(idx),
                    "ours_s": t_ours,
                    "slsqp_s": t_slsqp,
                    "never_worse": int(np.sum(ours >= theirs * (1 - 1e-6))),
                    "strictly_better": int(np.sum(ours > theirs * (1 + 1e-3))),
                    "slsqp_infeasible": int((~ok).sum()),
                    "mean_ratio": float(ratio.mean()) if ratio.size else float("nan"),
                    "min_ratio": float(ratio.min()) if ratio.size else float("nan"),
                    "mean_gap": float(np.mean([p.gap for p in front.points])),
                    "max_gap": float(max(p.gap for p in front.points)),
                }
            )
            print(_fmt(rows[-1]), flush=True)
    return rows


COLUMNS = (
    ("instance", "{:<12}"),
    ("points", "{:>6}"),
    ("compared", "{:>8}"),
    ("ours_s", "{:>8.2f}"),
    ("slsqp_s", "{:>8.2f}"),
    ("never_worse", "{:>11}"),
    ("strictly_better", "{:>15}"),
    ("slsqp_infeasible", "{:>16}"),
    ("mean_ratio", "{:>10.4f}"),
    ("min_ratio", "{:>9.4f}"),
    ("mean_gap", "{:>8.4f}"),
    ("max_gap", "{:>8.4f}"),
)


def _fmt(row: dict[str, object]) -> str:
    return " ".join(fmt.format(row[k]) for k, fmt in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 500])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--peer-points",
        type=int,
        default=None,
        help="compare with SLSQP on this many evenly spaced front points (default: all)",
    )
    args = parser.parse_args()
    if args.peer_points is not None and args.peer_points < 1:
        parser.error("--peer-points must be >= 1")
    header = " ".join(
        f"{k:>{len(fmt.format(0 if k != 'instance' else ''))}}" if k != "instance" else f"{k:<12}"
        for k, fmt in COLUMNS
    )
    print(header)
    run(args.sizes, args.points, args.restarts, args.seed, args.peer_points)


if __name__ == "__main__":
    main()
