"""Point-in-time user features from a time-stamped rating log: what was known of a user then.

A feature row for ``(user, t)`` reads only that user's ratings *strictly before* ``t``.
Ratings at exactly ``t`` - the row's own and any other the user gave in the same second -
are never part of it, so a row's label cannot reach its own features whatever order the
log gives to ties, and nothing after ``t`` can either.  The adapters use it twice: once per
exposure (``t`` = the exposure's time) for training rows, once per user at a split instant
for the users table.

Example::

    >>> feats = features_as_of(log, users, times, prefix="tgt_", seq_name="click_seq", seq_len=10)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.data.schema import MULTI_SEPARATOR

__all__ = ["features_as_of"]

_NS_PER_DAY = 86_400 * 10**9


def features_as_of(
    log: pd.DataFrame,
    user_ids: np.ndarray,
    times: np.ndarray,
    *,
    prefix: str,
    seq_name: str,
    seq_len: int,
    genres: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One domain's history features of each ``(user_ids[k], times[k])``, from ratings before it.

    Args:
        log: one domain's ratings in time order (ties in the order a sequence should list
            them), with columns ``user_id``, ``timestamp`` (datetime64[ns]), ``rating``,
            ``label`` and ``category`` (a token).
        user_ids, times: the queries, aligned (``times`` as datetime64[ns]).
        prefix, seq_name: column names are ``{prefix}n_ratings``, ``{prefix}mean_rating``,
            ``{prefix}pos_rate``, ``{prefix}days_since_visit``, ``{prefix}{seq_name}``.
        seq_len: the sequence holds the last ``seq_len`` category tokens, oldest first.
        genres: per-``log``-row flags (columns = genre names) whose mean becomes
            ``{prefix}genre_share_<column>``.

    Returns:
        A frame with one row per query (NaN statistics and ``""`` sequence without history).
    """
    log_t = log["timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    at = np.asarray(times, dtype="datetime64[ns]").view(np.int64)
    users = pd.Index(np.unique(np.concatenate([log["user_id"].to_numpy(), user_ids])))
    log_u = users.get_indexer(log["user_id"].to_numpy())
    ask_u = users.get_indexer(np.asarray(user_ids))
    order = np.lexsort((log_t, log_u))  # by user, then time; stable for ties
    every_t = np.unique(np.concatenate([log_t, at]))
    width = len(every_t) + 1
    keys = log_u[order] * width + np.searchsorted(every_t, log_t[order])
    end = np.searchsorted(keys, ask_u * width + np.searchsorted(every_t, at), side="left")
    start = np.searchsorted(keys, ask_u * width, side="left")
    n = end - start
    seen = n > 0

    def mean_before(values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` (log order) over each query's history; NaN without one."""
        running = np.concatenate([[0.0], np.cumsum(values[order], dtype=np.float64)])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(seen, (running[end] - running[start]) / n, np.nan)

    pick = np.where(seen, end - 1, -1)  # -1: the sentinel appended below (no history)
    last = np.append(log_t[order], 0)[pick]
    out = {
        f"{prefix}n_ratings": n.astype(float),
        f"{prefix}mean_rating": mean_before(log["rating"].to_numpy(np.float64)),
        f"{prefix}pos_rate": mean_before(log["label"].to_numpy(np.float64)),
        f"{prefix}days_since_visit": np.where(seen, (at - last) / _NS_PER_DAY, np.nan),
    }
    if genres is not None:
        for name in genres.columns:
            out[f"{prefix}genre_share_{name}"] = mean_before(genres[name].to_numpy(np.float64))
    ending = _sequences(log["category"].to_numpy()[order], log_u[order], seq_len)
    out[f"{prefix}{seq_name}"] = np.append(ending, "")[pick]
    return pd.DataFrame(out)


def _sequences(tokens: np.ndarray, user: np.ndarray, seq_len: int) -> np.ndarray:
    """Per position ``i`` of a (user, time)-sorted log: the user's last ``seq_len`` tokens up
    to and including ``i``, oldest first, ``|``-joined."""
    text = [str(t) for t in tokens]
    out = np.empty(len(text), dtype=object)
    first = 0
    for i in range(len(text)):
        if i and user[i] != user[i - 1]:
            first = i
        out[i] = MULTI_SEPARATOR.join(text[max(first, i - seq_len + 1) : i + 1])
    return out
