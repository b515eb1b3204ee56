"""Work on each candidate model side by side: one thread per candidate.

The nightly trains and scores two models, a torch one on ``torch_threads`` threads
(one by default) and a LightGBM one.  Done one after the other, the torch model
leaves a core idle for most of the train and score stages; side by side, LightGBM
works while torch does.  Both release the GIL in their numeric kernels, so threads
suffice, and each candidate's work reads only its own model and seed: the results
are the same as in sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def side_by_side(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[work(x) for x in items]``, each item in its own thread; results in ``items``' order,
    the first error raised as it would be in sequence."""
    items = list(items)
    if len(items) < 2:
        return [work(x) for x in items]
    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="candidate") as pool:
        futures = [pool.submit(work, x) for x in items]
        return [f.result() for f in futures]
