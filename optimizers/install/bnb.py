"""Lagrangian branch-and-bound over the S-shaped channels' on/off choices.

The dual bound of :mod:`optimizers.install.lagrange` lets every channel pick the
better side of its inflection for itself, which the coupling rows may not allow
together: that is its duality gap, and it sits in the few channels whose choice
the prices leave open.  Branching on such a channel (:meth:`Relaxation.split`:
its concave piece, or the spend below the inflection; then halves of a convex
piece) splits the problem in two whose bounds are both lower; the larger of them
bounds the problem.  Nodes are
expanded best first, so the bound at any time is the largest over the open nodes
(and the nodes that cannot be branched further).  Every node also offers the
pattern of its maximisers as a plan (``improve``), and a node whose bound is not
above the incumbent is closed for good.

A channel whose choice is not open needs no branch: forcing it to the other
side lowers ``L`` by the difference of its two candidates, and where that brings
``L`` below the incumbent that side holds no better plan.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from optimizers.install.lagrange import DualPoint, Relaxation, candidates, evaluate
from optimizers.install.newton import best_bound


def open_choices(rel: Relaxation, point: DualPoint, incumbent: float) -> np.ndarray:
    """Channels whose choice between their two candidates the prices at ``point`` leave
    open, most open first."""
    cand = candidates(rel, point.y)
    both = np.isfinite(cand.alt_g) & np.isfinite(cand.on_g)
    delta = np.abs(np.where(both, cand.on_g - cand.alt_g, np.inf))
    open_ = np.flatnonzero(delta < point.value - incumbent)
    return open_[np.argsort(delta[open_], kind="stable")]


def branch_and_bound(
    rel: Relaxation,
    root: DualPoint,
    incumbent: float,
    improve: Callable[[DualPoint], float],
    *,
    rtol: float,
    max_nodes: int,
    value_scale: float,
) -> float:
    """A valid bound at most ``root.value``, branching until it is within ``rtol`` of the
    incumbent (``improve(point)`` offers a node's plan and returns the new incumbent)
    or ``max_nodes`` nodes have been branched."""
    heap: list[tuple[float, int, Relaxation, DualPoint]] = [(-root.value, 0, rel, root)]
    settled = -math.inf  # the largest bound of nodes closed without branching
    count = 0
    while heap:
        bound = max(-heap[0][0], settled)
        if bound - incumbent <= rtol * abs(bound) or count >= max_nodes:
            break
        _, _, node, point = heapq.heappop(heap)
        incumbent = max(incumbent, improve(point))
        children = next(
            (pair for c in open_choices(node, point, incumbent) if (pair := node.split(int(c)))),
            None,
        )
        if children is None:
            settled = max(settled, point.value)
            continue
        count += 1
        for side, child in enumerate(children):
            here = evaluate(child, point.y)
            if here.value > incumbent:
                here = best_bound(child, point.y, value_scale, levels=(1e-5, 1e-7), max_iter=15)
            if here.value > incumbent:
                heapq.heappush(heap, (-here.value, count * 2 + side, child, here))
            else:
                settled = max(settled, here.value)
    tops = [-item[0] for item in heap]
    return min(root.value, max([settled, *tops]))
