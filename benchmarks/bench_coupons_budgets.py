"""Coupon allocation with several budgets (3 and 10) against HiGHS MIP and CP-SAT in one run.

Usage: .venv/bin/python benchmarks/bench_coupons_budgets.py [--sizes N ...] [--budgets B ...]
           [--exact-max N] [--time-limit S] [--shapes world correlated]

Instances: K = 6 options; "world" (small incremental values, costs that grow with the value,
the nightly job's shape) and "correlated" (value proportional to cost plus noise, the classic
hard knapsack shape).  Budgets: 3 = the platform budget over options 0-3 (20 % of what they
would cost if every user took their best option) and two coupon-type budgets inside it (options
0-1 and 2-3, 15 % each): prices that substitute for each other, where coordinate descent
stalled; 10 = those, a budget for each merchant option 4 and 5, one for both, and one for each of
options 0-3 alone (30 % of its spend).

For each size, every method solves the same instance in this process: the Lagrangian method,
``auto``, and (up to ``--exact-max`` users) the HiGHS MIP and CP-SAT.  Columns: time, the
method's claimed (certified) gap, and the true gap measured against the best plan any method
found and the smallest bound any method proved ("gap to best" = (best objective - objective) /
best objective, a lower estimate of the true gap; "claimed" is an upper bound of it).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from optimizers.coupons import allocate

OPTIONS = 6


def instance(n: int, shape: str, budgets: int, seed: int) -> dict:
    """The keyword arguments of ``allocate`` (value, cost, budget, groups) for one instance."""
    rng = np.random.default_rng(seed)
    if shape == "world":
        value = rng.uniform(0, 0.05, size=(n, OPTIONS))
        cost = rng.uniform(0.2, 3.0, size=(n, OPTIONS)) * (1 + value * 10)
    else:
        cost = rng.uniform(0.5, 3.0, size=(n, OPTIONS))
        value = 0.01 * cost + rng.uniform(0, 0.002, size=(n, OPTIONS))
    best = np.argmax(value, axis=1)
    spend = np.bincount(best, weights=cost[np.arange(n), best], minlength=OPTIONS)  # (K,)
    glob = np.array([True, True, True, True, False, False])
    total = float(spend[glob].sum())
    groups = {"red_packet": ([0, 1], 0.15 * total), "full_reduction": ([2, 3], 0.15 * total)}
    if budgets == 10:
        groups |= {f"merchant_{k}": ([k], 0.3 * spend[k]) for k in (4, 5)}
        groups |= {f"option_{k}": ([k], 0.3 * spend[k]) for k in range(4)}
        groups["merchants"] = ([4, 5], 0.5 * (spend[4] + spend[5]))
    elif budgets != 3:
        raise ValueError("--budgets takes 3 or 10")
    return {
        "value": value,
        "cost": cost,
        "budget": 0.2 * total,
        "global_options": glob,
        "budget_groups": groups,
    }


def run(kwargs: dict, method: str, time_limit: float) -> dict:
    """One solve: its time, objective, bound and claimed gap (or the error it raised)."""
    start = time.perf_counter()
    try:
        plan = allocate(**kwargs, method=method, time_limit_s=time_limit)
    except Exception as err:  # a peer's failure is a row of the table
        return {"method": method, "time": time.perf_counter() - start, "error": str(err)[:60]}
    return {
        "method": method,
        "time": time.perf_counter() - start,
        "objective": plan.objective,
        "bound": plan.upper_bound,
        "gap": plan.gap,
        "status": plan.status,
        "note": plan.message[:40],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000, 1_000_000])
    parser.add_argument("--budgets", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--shapes", nargs="+", default=["world", "correlated"])
    parser.add_argument("--exact-max", type=int, default=10_000)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| shape | budgets | n | method | objective | claimed gap % | gap to best % | time s |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        for budgets in args.budgets:
            for n in args.sizes:
                kwargs = instance(n, shape, budgets, args.seed)
                methods = ["lagrangian", "auto"]
                if n <= args.exact_max:
                    methods += ["highs", "cpsat"]
                rows = [run(kwargs, m, args.time_limit) for m in methods]
                best = max((r["objective"] for r in rows if "objective" in r), default=math.nan)
                for r in rows:
                    head = f"| {shape} | {budgets} | {n:,} | {r['method']} |"
                    if "error" in r:
                        print(f"{head} failed: {r['error']} | | | {r['time']:.2f} |")
                        continue
                    to_best = 100 * (best - r["objective"]) / abs(best) if best else 0.0
                    print(
                        f"{head} {r['objective']:.6g} | {100 * r['gap']:.4f} | {to_best:.4f} | "
                        f"{r['time']:.2f} |"
                    )


if __name__ == "__main__":
    main()
