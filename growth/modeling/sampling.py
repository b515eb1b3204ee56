"""Which exposure rows a model learns from and is judged on: seeded samples, the chronological holdout."""

from __future__ import annotations

import numpy as np

from growth.modeling.features import ExposureFrame


def sample_rows(rows: np.ndarray, max_rows: int | None, *, seed: int) -> np.ndarray:
    """A seeded sample of at most ``max_rows`` of ``rows``, in their original order.

    Returns ``rows`` itself when they already fit (or ``max_rows`` is None).
    """
    if max_rows is None or len(rows) <= max_rows:
        return rows
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1 (or None for no cap), got {max_rows}")
    rng = np.random.default_rng(seed)
    return rows[np.sort(rng.choice(len(rows), size=max_rows, replace=False))]


def chronological_split(frame: ExposureFrame, holdout_fraction: float) -> np.ndarray:
    """Boolean mask of the holdout: the latest ``holdout_fraction`` of rows by timestamp."""
    n = len(frame.y)
    cut = int(np.floor((1.0 - holdout_fraction) * n))
    holdout = np.zeros(n, dtype=bool)
    holdout[cut:] = True  # frame rows are already in timestamp order
    return holdout
