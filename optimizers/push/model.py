"""The exact push model: the per-user day graph and its CP-SAT path formulation.

Formulation: each user's day is a path in the graph of the per-user dynamic
programme (the same graph :mod:`optimizers.push.decomposition` solves).  A
node ``(h, S)`` is "hour ``h``, messages ``S`` already sent, free to push";
its arcs are

* ``wait``: ``(h, S) -> (h + 1, S)``, value 0;
* ``push m``: ``(h, S) -> (min(h + gap, H), S + {m})`` for ``m not in S`` and
  ``|S| < cap``, value ``open_prob[u, m, h] * decay**|S|`` (``|S|`` is the
  position of this push in the day, so the decay is exact).

Paths from ``(0, {})`` to the layer ``h = H`` are exactly the schedules that
meet ``fatigue_cap``, ``min_gap`` and ``once``.  With ``y[u, a] in {0, 1}``
(user ``u`` uses arc ``a``) and ``x[u, m, h] = sum of push-m arcs at h``::

    flow[u, node]:      sum_in y - sum_out y = -1 at (0, {}), 0 inside, free at h = H
    capacity[h]:        sum_{u, m} x[u, m, h] <= capacity[h]
    industry_share[k]:  q_k * sum_{(u, m) in k} x - p_k * sum x >= 0
    maximise            sum ceil(scale * value[u, a]) * y[u, a]

This extended formulation is much tighter than a time-indexed one with
big-M position constraints: its LP relaxation equals the Lagrangian bound of
the decomposition.  Rounding the coefficients up makes the solver's bound,
divided by ``scale`` (a power of two, as large as the solver's integers allow,
so the bound is within about 1e-9 of the optimum), a valid upper bound on the
true optimum; the reported objective is recomputed from the schedule.  The
share floors are posed exactly: ``p_k / q_k`` is the least fraction ``>= s_k``
whose denominator is at most the most pushes a schedule can hold
(:meth:`PushProblem.model_floors`), so on integer counts it admits exactly what
``s_k`` admits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from optimizers.push.problem import PushProblem

MAX_SCALE = 2.0**30  # at most this many objective units per expected open ...
MAX_OBJECTIVE = 2.0**52  # ... and no objective the integer model can reach above this


@dataclass(frozen=True)
class DayGraph:
    """The per-user DP graph shared by all users (values differ per user).

    ``push_arcs`` rows are ``(tail, head, msg, hour, position)``; ``wait_arcs``
    rows are ``(tail, head)``.  Nodes are numbered ``h * n_masks + mask_index``;
    only nodes reachable from ``(0, {})`` are used.
    """

    source: int
    sink_nodes: np.ndarray
    push_arcs: np.ndarray
    wait_arcs: np.ndarray


def build_day_graph(n_msgs: int, n_hours: int, max_push: int, min_gap: int) -> DayGraph:
    """Enumerate the reachable states and arcs of one user's day."""
    masks = [s for s in range(1 << n_msgs) if bin(s).count("1") <= max_push]
    index = {s: i for i, s in enumerate(masks)}
    n_s = len(masks)

    def node(h: int, s: int) -> int:
        return h * n_s + index[s]

    reach = {(0, 0)}
    push, wait = [], []
    for h in range(n_hours):
        for s in masks:
            if (h, s) not in reach:
                continue
            wait.append((node(h, s), node(h + 1, s)))
            reach.add((h + 1, s))
            pc = bin(s).count("1")
            if pc >= max_push:
                continue
            nh = min(h + min_gap, n_hours)
            for m in range(n_msgs):
                if not s >> m & 1:
                    push.append((node(h, s), node(nh, s | 1 << m), m, h, pc))
                    reach.add((nh, s | 1 << m))
    sinks = np.array(sorted(node(n_hours, s) for s in masks if (n_hours, s) in reach))
    return DayGraph(
        source=node(0, 0),
        sink_nodes=sinks,
        push_arcs=np.array(push, dtype=np.int64).reshape(-1, 5),
        wait_arcs=np.array(wait, dtype=np.int64).reshape(-1, 2),
    )


@dataclass
class CpSatPushModel:
    """A built CP-SAT model, the push-arc variables needed to read its solution, and
    ``scale``: objective units per expected open."""

    model: cp_model.CpModel
    push: dict[tuple[int, int, int, int], cp_model.IntVar]  # (user, msg, hour, arc) -> y
    scale: float


def objective_scale(problem: PushProblem) -> float:
    """The largest power of two up to :data:`MAX_SCALE` that keeps every reachable objective
    of the integer model below :data:`MAX_OBJECTIVE` (so the solver's bound is exact in a
    double and its division by the scale too)."""
    best = problem.open_prob.reshape(problem.n_users, -1).max(axis=1, initial=0.0)
    reach = float(
        best @ np.minimum(problem.candidate_mask.sum(axis=1), problem.max_pushes_per_user)
    )
    reach += float(problem.open_prob.size)  # each coefficient rounds up by less than 1
    exponent = np.floor(np.log2(MAX_OBJECTIVE / max(reach, 1.0)))
    return float(min(MAX_SCALE, 2.0 ** min(exponent, 1023)))


def build_cpsat_model(problem: PushProblem) -> CpSatPushModel:
    """Build the DP-graph (path) CP-SAT model; a pure function of the data."""
    # --- data
    n_u = problem.n_users
    max_push = problem.max_pushes_per_user
    cap_h = np.floor(problem.capacity)
    graph = build_day_graph(problem.n_msgs, problem.n_hours, max_push, problem.min_gap)
    arcs = graph.push_arcs
    usable = cap_h[arcs[:, 3]] > 0  # closed hours get no push arcs
    arcs = arcs[usable]
    decay_pow = problem.decay ** np.arange(max(max_push, 1))
    model = cp_model.CpModel()

    # --- variables: y[u, a] = 1 iff user u's day follows arc a
    push: dict[tuple[int, int, int, int], cp_model.IntVar] = {}
    inflow: dict[tuple[int, int], list] = {}
    outflow: dict[tuple[int, int], list] = {}
    for u in range(n_u):
        for a, (tail, head, m, h, _pc) in enumerate(arcs):
            if not problem.candidate_mask[u, m]:
                continue
            y = model.new_bool_var(f"push[{u},{m},{h},{a}]")
            push[u, int(m), int(h), a] = y
            outflow.setdefault((u, int(tail)), []).append(y)
            inflow.setdefault((u, int(head)), []).append(y)
        for a, (tail, head) in enumerate(graph.wait_arcs):
            y = model.new_bool_var(f"wait[{u},{a}]")
            outflow.setdefault((u, int(tail)), []).append(y)
            inflow.setdefault((u, int(head)), []).append(y)

    # --- constraints
    sinks = set(graph.sink_nodes.tolist())
    nodes = {key for key in (*inflow, *outflow)}
    for u, v in sorted(nodes):
        if v in sinks:
            continue
        supply = 1 if v == graph.source else 0
        model.add(sum(outflow.get((u, v), [])) - sum(inflow.get((u, v), [])) == supply).with_name(
            f"flow[{u},{v}]"
        )
    by_hour: dict[int, list] = {}
    for (_u, _m, h, _a), y in push.items():
        by_hour.setdefault(h, []).append(y)
    for h, ys in by_hour.items():
        if np.isfinite(cap_h[h]) and len(ys) > cap_h[h]:
            model.add(sum(ys) <= int(cap_h[h])).with_name(f"capacity[{h}]")
    total = sum(push.values())
    for k, frac in problem.model_floors().items():
        in_k = sum(y for (u, m, _h, _a), y in push.items() if problem.industry_code[u, m] == k)
        model.add(frac.denominator * in_k - frac.numerator * total >= 0).with_name(
            f"industry_share[{problem.industries[k]}]"
        )

    # --- objective: values rounded up (one float step first, so never below the value)
    scale = objective_scale(problem)
    terms = []
    for (u, m, h, a), y in push.items():
        value = scale * problem.open_prob[u, m, h] * decay_pow[arcs[a, 4]]
        c = int(np.ceil(np.nextafter(value, np.inf))) if value > 0 else 0
        if c:
            terms.append(c * y)
    model.maximize(sum(terms))
    return CpSatPushModel(model=model, push=push, scale=scale)
