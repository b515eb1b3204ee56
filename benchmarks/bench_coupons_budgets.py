"""Coupon allocation with several budgets at scale (platform + two merchant budgets).

Usage: .venv/bin/python benchmarks/bench_coupons_budgets.py [--users N]
Prints the Lagrangian's time, objective, certified bound, gap and spend per budget; the peer
comparison against exact solvers lives in bench_coupons.py (they do not scale to 1e6).
"""

import argparse
import time

import numpy as np

from optimizers.coupons import allocate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    value = rng.uniform(0, 0.05, size=(args.users, 6))
    cost = rng.uniform(0.2, 3.0, size=(args.users, 6)) * (1 + value * 10)
    scale = args.users / 1_000_000
    groups = {"merchant_0": ([4], 3000.0 * scale), "merchant_1": ([5], 3000.0 * scale)}
    start = time.perf_counter()
    plan = allocate(
        value,
        cost,
        20000.0 * scale,
        global_options=np.array([True, True, True, True, False, False]),
        budget_groups=groups,
        method="lagrangian",
    )
    seconds = time.perf_counter() - start
    print(
        f"users {args.users:,}  time {seconds:.2f} s  objective {plan.objective:.4f}  "
        f"bound {plan.upper_bound:.4f}  gap {plan.gap:.2e}  platform spend {plan.spend:.1f}  "
        f"{plan.group_spend}"
    )


if __name__ == "__main__":
    main()
