"""Benchmark: install control at slider speed, checked against an exact grid DP and timed
against scipy SLSQP in the same run.

Hidden-style instances (:func:`bench_install.make_instance`: Hill curves, a given share
of them S-shaped, budget 40 % of the sum of half-saturation spends).  Per instance:

* ``front_s``: a 20-point installs-vs-retained Pareto front (:func:`pareto_front`, each
  point warm-started from its neighbour), its largest certified gap;
* ``point_s``: the mean time of one certified solve of a scalarised problem;
* quality: for a few weights ``lam``, the exact grid DP (spend in steps of budget /
  ``--grid``, every channel's curve tabulated) maximises installs + lam * retained
  under the budget; its plan is feasible for "maximise installs with retained >= the
  DP plan's retained", which ours then solves: ``ratio`` = ours / DP installs (>= 1
  up to the grid's resolution means ours reaches the global optimum).  The SLSQP peer
  (equal split plus ``--restarts`` random starts) solves the same epsilon problems:
  ``SLSQP s`` per problem, on how many problems a start ended feasible, and the
  worst ratio SLSQP / DP among those.

Run:  .venv/bin/python benchmarks/bench_install_front.py [--n 100] [--shares 0.3 0.8 1.0]
      [--grid 2000] [--lams 0 1 4] [--restarts 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_install import make_instance, slsqp_point

from optimizers.install import ChannelLimits, ChannelModels, optimize_installs, pareto_front


def grid_dp(
    models: ChannelModels, budget: float, lam: float, grid: int
) -> tuple[float, float, float]:
    """Exact DP over spends on the grid ``budget * i / grid``: the best installs + lam *
    retained; returns that plan's installs, retained and total spend."""
    steps = np.arange(grid + 1)
    x = budget * steps / grid
    take = steps[:, None] - steps[None, :]  # take[j, i]: budget left j, channel gets i
    best = np.zeros(grid + 1)
    choice = []
    retained_w = models.weights("retained")
    for c, ch in enumerate(models.channels):
        f = models[ch].curve(x)
        gain = f + lam * retained_w[c] * f
        total = np.where(take >= 0, best[np.clip(take, 0, None)] + gain[None, :], -np.inf)
        pick = np.argmax(total, axis=1)
        best = total[steps, pick]
        choice.append(pick)
    j, installs, retained = grid, 0.0, 0.0
    for c in reversed(range(len(choice))):
        i = choice[c][j]
        f = float(models[models.channels[c]].curve(x[i]))
        installs, retained, j = installs + f, retained + retained_w[c] * f, j - i
    return installs, retained, float(budget * (grid - j) / grid)


def run(
    n: int, share: float, grid: int, lams: list[float], seed: int, restarts: int
) -> dict[str, object]:
    """One instance's row (see the module docstring)."""
    inst = make_instance(n, share, seed)
    t0 = time.perf_counter()
    front = pareto_front(inst.models, inst.budget, ("installs", "retained"), 20)
    front_s = time.perf_counter() - t0
    ratios, slsqp_ratios, times, slsqp_times = [], [], [], []
    rng = np.random.default_rng(seed)
    for lam in lams:
        dp_installs, dp_retained, _ = grid_dp(inst.models, inst.budget, lam, grid)
        limits = ChannelLimits(targets={"retained": dp_retained})
        t0 = time.perf_counter()
        plan = optimize_installs(inst.models, inst.budget, objective="installs", limits=limits)
        times.append(time.perf_counter() - t0)
        ratios.append(plan.objective / dp_installs)
        t0 = time.perf_counter()
        theirs = slsqp_point(inst.models, inst.budget, dp_retained, restarts, rng)
        slsqp_times.append(time.perf_counter() - t0)
        slsqp_ratios.append(theirs / dp_installs)
    return {
        "instance": inst.name,
        "front_s": front_s,
        "points": len(front),
        "max_gap": max(p.gap for p in front.points),
        "point_s": float(np.mean(times)),
        "min_ratio": min(ratios),
        "slsqp_s": float(np.mean(slsqp_times)),
        "slsqp_feasible": sum(np.isfinite(slsqp_ratios)),
        "slsqp_min_ratio": min([r for r in slsqp_ratios if np.isfinite(r)], default=np.nan),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.3, 0.8, 1.0])
    parser.add_argument("--grid", type=int, default=2000)
    parser.add_argument("--lams", type=float, nargs="+", default=[0.0, 1.0, 4.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restarts", type=int, default=1)
    args = parser.parse_args()
    print(
        "| instance | front s | points | max gap | point s | min ratio vs DP "
        "| SLSQP s | SLSQP feasible | SLSQP min ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for share in args.shares:
        r = run(args.n, share, args.grid, args.lams, args.seed, args.restarts)
        print(
            f"| {r['instance']} | {r['front_s']:.2f} | {r['points']} | {r['max_gap']:.2e} "
            f"| {r['point_s']:.3f} | {r['min_ratio']:.5f} | {r['slsqp_s']:.2f} "
            f"| {r['slsqp_feasible']}/{len(args.lams)} | {r['slsqp_min_ratio']:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
