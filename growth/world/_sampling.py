"""Vectorised sampling and string helpers shared by the world's modules.

These exist because the world must generate a million users in well under a
minute: every per-user draw is done for all users at once, never in a Python
loop over users.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

FloatArray = np.ndarray
IntArray = np.ndarray


def sigmoid(x: FloatArray) -> FloatArray:
    """Numerically stable logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax_rows(logits: FloatArray) -> FloatArray:
    """Row-wise softmax of a 2-d array (in place on a copy)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def row_offset_cdf(probs: FloatArray) -> FloatArray:
    """Flattened row-offset CDF of an (R, C) probability array, for :func:`sample_rows`.

    Row r's cumulative probabilities are shifted into (r, r+1], so a single
    ``searchsorted`` serves every row.
    """
    n_rows = probs.shape[0]
    cdf = np.cumsum(probs, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    cdf += np.arange(n_rows, dtype=np.float64)[:, None]
    return cdf.ravel()


def sample_rows(
    rng: np.random.Generator, offset_cdf: FloatArray, n_cols: int, rows: IntArray
) -> IntArray:
    """Draw one column index per entry of ``rows`` from that row's categorical distribution.

    ``offset_cdf`` comes from :func:`row_offset_cdf`; ``rows`` is any int array of
    row indices (repeats allowed).  Cost O(len(rows) * log(R * C)) with no
    (len(rows), C) temporary.
    """
    u = rng.random(rows.shape[0]) + rows
    flat = np.searchsorted(offset_cdf, u, side="right")
    return np.clip(flat - rows * n_cols, 0, n_cols - 1)


def sample_within_groups(
    rng: np.random.Generator,
    group: IntArray,
    group_start: IntArray,
    member_cdf: FloatArray,
) -> IntArray:
    """Draw one member of each requested group, weighted.

    Members are stored sorted by group; ``group_start[g]`` is the position of
    group g's first member and ``member_cdf`` is each group's cumulative weight
    normalised to (0, 1] and offset by the group index (group g spans (g, g+1]).
    Returns positions into the sorted member array.
    """
    u = rng.random(group.shape[0]) + group
    pos = np.searchsorted(member_cdf, u, side="right")
    # Guard the upper edge of each group's interval against rounding.
    group_end = np.append(group_start[1:], member_cdf.shape[0]) - 1
    return np.clip(pos, group_start[group], group_end[group])


def sample_distinct(
    rng: np.random.Generator,
    n_rows: int,
    k: int,
    draw: Callable[[IntArray], IntArray],
    max_rounds: int = 20,
) -> IntArray:
    """An (n_rows, k) array whose rows hold k draws, re-drawing duplicates in a row.

    ``draw(rows)`` returns one draw for each entry of ``rows``.  After
    ``max_rounds`` rounds any remaining duplicates are kept (only possible when a
    row's distribution has fewer than k likely values).
    """
    rows = np.repeat(np.arange(n_rows), k)
    out = draw(rows).reshape(n_rows, k)
    for _ in range(max_rounds):
        order = np.argsort(out, axis=1, kind="stable")
        srt = np.take_along_axis(out, order, axis=1)
        dup_sorted = np.zeros_like(srt, dtype=bool)
        dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
        if not dup_sorted.any():
            break
        dup = np.zeros_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        r, c = np.nonzero(dup)
        out[r, c] = draw(r)
    return out


def join_tokens(tokens: IntArray, counts: IntArray) -> np.ndarray:
    """``"|"``-joined token strings, one per row, from a flat token array.

    ``tokens`` holds the rows' tokens back to back; ``counts[r]`` is row r's
    length (0 gives ``""``).  Builds one big string and splits it, which is far
    faster than a Python join per row.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.shape[0]
    if tokens.shape[0] != int(counts.sum()):
        raise ValueError(
            f"join_tokens: {tokens.shape[0]} tokens but counts sum to {int(counts.sum())}"
        )
    if n == 0:
        return np.array([], dtype=object)
    vocab = int(tokens.max()) + 1 if tokens.size else 1
    plain = np.array([str(t) for t in range(vocab)], dtype=object)
    piped = np.array(["|" + str(t) for t in range(vocab)], dtype=object)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    row_of_token = np.repeat(np.arange(n), counts)
    is_first = np.zeros(tokens.shape[0], dtype=bool)
    is_first[starts[counts > 0]] = True
    pieces = np.empty(tokens.shape[0] + n, dtype=object)
    token_pos = np.arange(tokens.shape[0]) + row_of_token
    pieces[token_pos] = np.where(is_first, plain[tokens], piped[tokens])
    pieces[starts + counts + np.arange(n)] = "\n"
    joined = "".join(pieces.tolist()).split("\n")
    out = np.empty(n, dtype=object)
    out[:] = joined[:n]
    return out


def str_column(
    codes: IntArray, labels: tuple[str, ...] | list[str]
) -> pd.api.extensions.ExtensionArray:
    """A pandas string column ``labels[codes]``, built through Arrow (far faster than Python objects).

    Gives pandas' default ``str`` dtype, the same as a column built from Python strings.
    """
    dictionary = pa.array(list(labels), type=pa.large_string())
    arr = pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), dictionary)
    return pd.array(arr.cast(pa.large_string()), dtype="str")
