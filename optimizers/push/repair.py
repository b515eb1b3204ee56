"""Primal repair for push schedules: from per-user-feasible pushes to a schedule that breaks nothing.

The decomposition's per-user DP respects ``fatigue_cap``, ``min_gap`` and
``once`` but not the coupling constraints.  :func:`repair` fixes those in
three steps, each keeping every constraint that already holds:

1. ``capacity[h]``: in every over-full hour drop the pushes that lose least
   (a drop also moves the user's later pushes up one position);
2. ``industry_share[k]``: swap a push to an unused candidate of the short
   industry at the same user and hour (cheapest loss first), else drop pushes
   of industries that keep their own floor (every floor is checked exactly, on
   integer counts: :meth:`PushProblem.floor_counts`);
3. fill: insert each user's best feasible push into spare capacity, at most
   one per user and round, never breaking a share floor.
"""

from __future__ import annotations

import numpy as np

from optimizers.push.problem import PushProblem


def _drop_losses(problem: PushProblem, u: np.ndarray, m: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Objective lost by removing each push (later pushes of the user move up one place)."""
    _, val = problem.position_values(u, m, h)
    d = problem.decay
    gain_if_moved_up = val / d * (1 - d) if d < 1 else np.zeros_like(val)
    order = np.lexsort((-h, u))  # per user, latest first
    g = gain_if_moved_up[order]
    su = u[order]
    csum = np.cumsum(g)
    start = np.r_[True, su[1:] != su[:-1]]
    offset = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    base = np.where(offset > 0, csum[offset - 1], 0.0)
    later = np.empty_like(g)
    later[order] = csum - base - g  # strictly later pushes of the same user
    return val - later


def _repair_capacity(problem: PushProblem, u, m, h):
    """Drop the pushes that lose least in every hour over capacity."""
    cap = np.floor(problem.capacity)
    load = np.bincount(h, minlength=problem.n_hours)
    over = load - np.minimum(cap, load)
    if not (over > 0).any():
        return u, m, h
    loss = _drop_losses(problem, u, m, h)
    order = np.lexsort((loss, h))
    sh = h[order]
    first = np.searchsorted(sh, np.arange(problem.n_hours))
    rank = np.arange(len(sh)) - first[sh]
    keep = np.ones(len(u), dtype=bool)
    keep[order[rank < over[sh]]] = False
    return u[keep], m[keep], h[keep]


def _repair_shares(problem: PushProblem, u, m, h, max_rounds: int = 200):
    """Meet every share floor by swapping messages, else dropping pushes; never breaks others."""
    p = problem
    for _ in range(max_rounds):
        codes = p.industry_code[u, m]
        counts = np.bincount(codes, minlength=p.n_industries)
        total = len(u)
        room = counts - p.floor_counts(total)  # pushes each industry may lose (< 0: short)
        short = np.flatnonzero(room < 0)
        if len(short) == 0:
            return u, m, h
        k = int(short[np.argmin(room[short] / p.share[short])])
        need = int(-room[k])
        # -- swaps: same user and hour, an unused candidate of industry k
        used = np.zeros((p.n_users, p.n_msgs), dtype=bool)
        used[u, m] = True
        pos, val = p.position_values(u, m, h)
        eligible_src = (codes != k) & (room[codes] >= 1)
        alt = (p.industry_code[u] == k) & p.candidate_mask[u] & ~used[u]  # (n_push, n_msgs)
        alt &= eligible_src[:, None]
        if alt.any():
            alt_val = np.where(alt, p.open_prob[u, :, h] * (p.decay**pos)[:, None], -np.inf)
            best_alt = alt_val.argmax(axis=1)
            loss = val - alt_val[np.arange(len(u)), best_alt]
            cand = np.flatnonzero(np.isfinite(loss))
            cand = cand[np.argsort(loss[cand], kind="stable")]
            taken_from = np.zeros(p.n_industries, dtype=np.int64)
            seen: set[tuple[int, int]] = set()
            chosen = []
            for i in cand:
                ci = codes[i]
                key = (int(u[i]), int(best_alt[i]))
                if taken_from[ci] + 1 > room[ci] or key in seen:
                    continue
                seen.add(key)
                taken_from[ci] += 1
                chosen.append(i)
                if len(chosen) >= need:
                    break
            if chosen:
                m = m.copy()
                m[chosen] = best_alt[chosen]
                continue
        # -- drops: the cheapest push of an industry that keeps its floor after the drop
        keeps_floor = counts - 1 >= p.floor_counts(total - 1)
        can_drop = (codes != k) & keeps_floor[codes]
        if not can_drop.any():
            can_drop = codes != k
        if not can_drop.any():
            return u[:0], m[:0], h[:0]
        # fewest drops D with count_k >= s_k (T - D): T - D <= floor(count_k / s_k)
        floor = p.share_floor[k]
        n_drop = total - (int(counts[k]) * floor.denominator) // floor.numerator
        n_drop = min(max(n_drop, 1), int(can_drop.sum()))
        loss = _drop_losses(p, u, m, h)
        idx = np.flatnonzero(can_drop)
        drop = idx[np.argsort(loss[idx], kind="stable")[:n_drop]]
        keep = np.ones(total, dtype=bool)
        keep[drop] = False
        u, m, h = u[keep], m[keep], h[keep]
    # a safe fallback: the empty schedule meets every constraint
    return u[:0], m[:0], h[:0]


def _insertion_gains(
    p: PushProblem, u: np.ndarray, m: np.ndarray, h: np.ndarray, users: np.ndarray, spare
) -> np.ndarray:
    """Objective gain of inserting each (user, message, hour) push, shape (users, msgs, hours).

    ``-inf`` where the push is impossible: message used or padding, hour within
    ``min_gap`` of one of the user's pushes, or no spare capacity.  The gain is
    the new push's decayed value minus what the user's later pushes lose by
    moving one position down.
    """
    n_h, gap = p.n_hours, p.min_gap
    # per candidate user: hours blocked by gap, pushes before each hour, later-loss
    row = np.full(p.n_users, -1, dtype=np.int64)
    row[users] = np.arange(len(users))
    sel = row[u] >= 0
    ru, rh, rm = row[u[sel]], h[sel], m[sel]
    _, val = p.position_values(u[sel], rm, rh)
    blocked = np.zeros((len(users), n_h), dtype=bool)
    for d in range(-(gap - 1), gap):
        hh = rh + d
        ok = (hh >= 0) & (hh < n_h)
        blocked[ru[ok], hh[ok]] = True
    blocked |= (spare <= 0)[None, :]
    before = np.zeros((len(users), n_h + 1))
    np.add.at(before, (ru, rh + 1), 1.0)
    before = np.cumsum(before, axis=1)[:, :n_h]  # pushes strictly before hour
    # loss of later pushes moving down one place if a push is inserted before them
    shift = np.zeros((len(users), n_h + 1))
    if p.decay < 1:
        np.add.at(shift, (ru, rh), val * (1 - p.decay))
    later_loss = np.cumsum(shift[:, ::-1], axis=1)[:, ::-1][:, :n_h]  # at hours >= h
    used = np.zeros((len(users), p.n_msgs), dtype=bool)
    used[ru, rm] = True
    avail = p.candidate_mask[users] & ~used  # (users, msgs)
    gain = p.open_prob[users] * (p.decay**before)[:, None, :] - later_loss[:, None, :]
    return np.where(avail[:, :, None] & ~blocked[:, None, :], gain, -np.inf)


def _best_insertions(
    p: PushProblem, users: np.ndarray, gain: np.ndarray, floors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each user's best positive insertion (per industry when a share floor exists).

    Returns ``(rows, msg, hour, gain)``, ``rows`` indexing ``users``, best gain first.
    """
    n_h = p.n_hours
    if len(floors):
        groups = p.industry_code[users]
    else:
        groups = np.zeros((len(users), p.n_msgs), dtype=np.int64)
    cu, cm, ch, cg = [], [], [], []
    for k in range(p.n_industries if len(floors) else 1):
        flat = np.where((groups == k)[:, :, None], gain, -np.inf).reshape(len(users), -1)
        best = flat.argmax(axis=1)
        best_gain = flat[np.arange(len(users)), best]
        ok = np.flatnonzero(best_gain > 0)
        cu.append(ok)
        bm_k, bh_k = np.divmod(best[ok], n_h)
        cm.append(bm_k)
        ch.append(bh_k)
        cg.append(best_gain[ok])
    rows, bm, bh, bgain = (np.concatenate(c) for c in (cu, cm, ch, cg))
    order = np.argsort(-bgain, kind="stable")
    return rows[order], bm[order], bh[order], bgain[order]


def _pick_insertions(
    p: PushProblem,
    codes_now: np.ndarray,
    rows: np.ndarray,
    codes: np.ndarray,
    bh: np.ndarray,
    n_users: int,
    spare: np.ndarray,
    floors: np.ndarray,
) -> np.ndarray:
    """Which of the sorted insertions to make: at most one per user, within spare capacity.

    Without share floors: the best per hour, up to its spare slots.  With floors:
    greedily in gain order, skipping any insertion that would break a floor
    (``codes_now``: industries of the current pushes; ``codes``: of the insertions).
    ``spare`` is consumed.
    """
    add = np.zeros(len(rows), dtype=bool)
    if len(floors) == 0:  # only capacity: the best per hour, up to its spare slots
        by_hour = np.lexsort((np.arange(len(rows)), bh))
        first = np.searchsorted(bh[by_hour], np.arange(p.n_hours))
        rank = np.arange(len(rows)) - first[bh[by_hour]]
        add[by_hour[rank < spare[bh[by_hour]]]] = True
        return add
    counts = np.bincount(codes_now, minlength=p.n_industries)
    total = len(codes_now)
    need = p.floor_counts(total + 1)  # the floors one more push must meet
    done = np.zeros(n_users, dtype=bool)
    left = float(spare[spare > 0].sum())
    for i in range(len(rows)):
        hh = bh[i]
        if left <= 0:
            break
        if spare[hh] <= 0 or done[rows[i]]:
            continue
        counts[codes[i]] += 1
        if np.any(counts < need):
            counts[codes[i]] -= 1
            continue
        total += 1
        need = p.floor_counts(total + 1)
        spare[hh] -= 1
        left -= 1
        done[rows[i]] = True
        add[i] = True
    return add


def _fill(problem: PushProblem, u, m, h, rounds: int):
    """Greedily add the best feasible push per user into spare capacity (shares kept)."""
    p = problem
    floors = np.flatnonzero(p.share > 0)
    for _ in range(rounds):
        spare = np.floor(p.capacity) - np.bincount(h, minlength=p.n_hours)
        if not (spare > 0).any():
            break
        users = np.flatnonzero(np.bincount(u, minlength=p.n_users) < p.max_pushes_per_user)
        if len(users) == 0:
            break
        gain = _insertion_gains(p, u, m, h, users, spare)
        rows, bm, bh, _ = _best_insertions(p, users, gain, floors)
        if len(rows) == 0:
            break
        bu = users[rows]
        codes = p.industry_code[bu, bm]
        add = _pick_insertions(p, p.industry_code[u, m], rows, codes, bh, len(users), spare, floors)
        if not add.any():
            break
        u = np.concatenate([u, bu[add]])
        m = np.concatenate([m, bm[add]])
        h = np.concatenate([h, bh[add]])
    return u, m, h


def repair(problem: PushProblem, u, m, h, fill_rounds: int = 3):
    """Turn per-user-feasible pushes into a schedule that meets every constraint."""
    u, m, h = _repair_capacity(problem, u, m, h)
    u, m, h = _repair_shares(problem, u, m, h)
    return _fill(problem, u, m, h, fill_rounds)
