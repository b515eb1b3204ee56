"""Time the 100-channel, 20-point install Pareto front under refinement settings (ours only).

Usage: .venv/bin/python benchmarks/bench_install_settings.py
Prints seconds, points kept and the largest certified gap per setting; no peer is run, the
peer comparison lives in bench_install.py.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_install import make_instance

from optimizers.install import SolverConfig, pareto_front

SETTINGS = ({}, {"max_refinements": 1}, {"refine_tol": 1e-2}, {"max_refinements": 0})


def main() -> None:
    print(f"{'S-shaped':>8} {'setting':<26} {'seconds':>8} {'points':>6} {'max gap':>8}")
    for s_share in (0.3, 1.0):
        inst = make_instance(100, s_share, 0)
        for kw in SETTINGS:
            start = time.perf_counter()
            front = pareto_front(inst.models, inst.budget, n_points=20, config=SolverConfig(**kw))
            seconds = time.perf_counter() - start
            gap = front.to_frame()["gap"].max()
            label = str(kw or "default")
            print(f"{s_share:>8.0%} {label:<26} {seconds:>8.2f} {len(front):>6} {gap:>8.4f}")


if __name__ == "__main__":
    main()
