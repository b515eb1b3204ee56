"""Lagrangian decomposition for large push-scheduling instances.

The coupling constraints ``capacity[h]`` and ``industry_share[k]`` are moved
into the objective with prices ``mu[h] >= 0`` and ``nu[k] >= 0``::

    L(mu, nu) = sum_h mu[h] * capacity[h]
              + sum_u max_{x_u feasible for user u} sum_{pushes} (
                    open_prob * decay**j - mu[h] + nu[k(u, m)] - sum_k nu[k] * s_k)

Every ``L(mu, nu)`` is an upper bound on the optimum (weak duality).  The
per-user problem (``fatigue_cap``, ``min_gap``, ``once`` and the decay by
position) is solved exactly by a backward dynamic programme over hours whose
state is the set of messages already sent (a bitmask; its popcount is the
push count, hence the position of the next push)::

    V_h(S) = max( V_{h+1}(S),                                   # no push at h
                  max_{m not in S} a[u, m, h, |S|] + V_{h+gap}(S + {m}) )

with ``V_h = 0`` for ``h >= n_hours`` and no push from a full ``S``.  The DP
runs for all users at once in numpy (arrays of shape ``(states, users)``).
Prices follow a deflected, projected subgradient method with Polyak steps
towards the best primal value; :func:`optimizers.push.repair.repair` turns each
Lagrangian solution into a schedule that breaks no constraint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optimizers.push.problem import PushProblem
from optimizers.push.repair import repair
from optimizers.push.result import PushSchedule, make_schedule


@dataclass(frozen=True)
class DecompositionConfig:
    """Stopping rules and step control of the subgradient method.

    ``tol`` is the relative gap ``(bound - objective) / bound`` at which to stop;
    ``time_limit_s`` bounds the wall time (checked between iterations);
    ``theta`` is the initial Polyak step factor, halved after ``patience``
    iterations without a better bound; ``deflection`` mixes the previous
    direction into the new one to damp zig-zagging.
    """

    tol: float = 1e-3
    max_iter: int = 300
    time_limit_s: float = 60.0
    theta: float = 1.0
    patience: int = 4
    deflection: float = 0.5
    fill_rounds: int = 3
    sample_users: int = 20_000
    sample_iter: int = 40
    theta_refine: float = 0.1
    seed: int = 0
    repair_every: int = 1

    def __post_init__(self) -> None:
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0; got {self.tol}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1; got {self.max_iter}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0; got {self.time_limit_s}")
        if not 0 < self.theta <= 2:
            raise ValueError(f"theta must be in (0, 2]; got {self.theta}")
        if not 0 <= self.deflection < 1:
            raise ValueError(f"deflection must be in [0, 1); got {self.deflection}")
        if self.repair_every < 1:
            raise ValueError(f"repair_every must be >= 1; got {self.repair_every}")


class _MaskSpace:
    """Message subsets with at most ``max_push`` members and their transitions."""

    def __init__(self, n_msgs: int, max_push: int) -> None:
        masks = [s for s in range(1 << n_msgs) if bin(s).count("1") <= max_push]
        self.masks = np.array(masks, dtype=np.int64)
        index = {s: i for i, s in enumerate(masks)}
        self.n = len(masks)
        self.popcount = np.array([bin(s).count("1") for s in masks], dtype=np.int64)
        self.src = np.flatnonzero(self.popcount < max_push)  # states that may still push
        # dst[i, m]: state after sending m from src[i]; self.n (an all -inf row) if not allowed
        dst = np.full((len(self.src), n_msgs), self.n, dtype=np.int64)
        for i, si in enumerate(self.src):
            s = masks[si]
            for m in range(n_msgs):
                if not s >> m & 1:
                    dst[i, m] = index[s | 1 << m]
        self.dst = dst
        self.dst_full = np.full((self.n, n_msgs), self.n, dtype=np.int64)
        self.dst_full[self.src] = dst


class _UserDP:
    """Vectorised exact per-user DP for given prices, over all users at once."""

    def __init__(self, problem: PushProblem, users: np.ndarray) -> None:
        self.problem = problem
        self.users = users
        self.n_users = len(users)
        self.max_push = problem.max_pushes_per_user
        self.space = _MaskSpace(problem.n_msgs, self.max_push)
        # (n_hours, n_msgs, users): contiguous rows per (hour, message)
        # float32 halves the memory traffic; solve() returns a rigorous rounding margin
        self.prob_t = np.ascontiguousarray(
            problem.open_prob[users].transpose(2, 1, 0), dtype=np.float32
        )
        self.codes_t = np.ascontiguousarray(problem.industry_code[users].T)  # (n_msgs, users)
        self.pad_t = ~problem.candidate_mask[users].T  # (n_msgs, users)
        self.decay_pow = (problem.decay ** np.arange(max(self.max_push, 1))).astype(np.float32)
        j = self.max_push
        sp = self.space
        m_idx = np.broadcast_to(np.arange(problem.n_msgs), sp.dst.shape)
        pc = sp.popcount[sp.src][:, None]
        self.a_rows = (m_idx * j + pc).ravel()  # row of a_h (flattened (msg, position))
        self.v_rows = sp.dst.ravel()

    def solve(
        self, mu: np.ndarray, nu: np.ndarray, share: np.ndarray
    ) -> tuple[float, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per-user optimal values, a float32 error margin on their sum, and the pushes.

        The pushes are ``(user, msg, hour)`` arrays of each user's optimal schedule at
        prices ``mu``, ``nu``.  Each value sums at most ``J`` terms, each rounded
        ``O(1)`` times, so ``|error| <= n_users * 4 (J + 1) J * max|a| * eps32``.
        """
        p = self.problem
        sp = self.space
        n_u, n_h, gap, j = self.n_users, p.n_hours, p.min_gap, self.max_push
        if j == 0:
            empty = np.zeros(0, dtype=np.int64)
            return 0.0, np.zeros(n_u), (empty, empty, empty)
        base = (nu[self.codes_t] - float(nu @ share)).astype(np.float32)  # (n_msgs, users)
        base[self.pad_t] = -np.inf
        zero = np.zeros((sp.n + 1, n_u), dtype=np.float32)
        zero[sp.n] = -np.inf
        values: list[np.ndarray] = [zero] * (gap + 1)  # values[d] = V_{h+d}; beyond day -> 0
        decision = np.full((n_h, sp.n, n_u), -1, dtype=np.int8)
        n_src, n_m = sp.dst.shape
        for h in range(n_h - 1, -1, -1):
            if np.isinf(mu[h]):
                v_h = values[0].copy()
            else:
                a = self.prob_t[h][:, None, :] * self.decay_pow[None, :j, None]
                a += (base - np.float32(mu[h]))[:, None, :]
                a = a.reshape(n_m * j, n_u)
                push = a[self.a_rows] + values[gap - 1][self.v_rows]  # (n_src * n_m, users)
                push = push.reshape(n_src, n_m, n_u)
                best_m = push.argmax(axis=1)  # (n_src, users)
                best = np.take_along_axis(push, best_m[:, None, :], axis=1)[:, 0, :]
                wait = values[0][sp.src]
                take = best > wait
                v_h = values[0].copy()
                v_h[sp.src] = np.where(take, best, wait)
                decision[h, sp.src] = np.where(take, best_m, -1)
            values = [v_h, *values[:gap]]
        user_value = values[0][0].astype(np.float64)
        finite_mu = mu[np.isfinite(mu)]
        a_max = 1.0 + float(np.abs(nu).sum()) * 2 + float(finite_mu.max(initial=0.0))
        margin = n_u * 4 * (j + 1) * j * a_max * float(np.finfo(np.float32).eps)
        # forward pass: follow the decisions from the empty set at hour 0
        state = np.zeros(n_u, dtype=np.int64)
        ready = np.zeros(n_u, dtype=np.int64)
        cols = np.arange(n_u)
        out_u, out_m, out_h = [], [], []
        for h in range(n_h):
            ch = decision[h, state, cols]
            go = (ready <= h) & (ch >= 0)
            idx = np.flatnonzero(go)
            if len(idx):
                msg = ch[idx].astype(np.int64)
                out_u.append(idx)
                out_m.append(msg)
                out_h.append(np.full(len(idx), h, dtype=np.int64))
                state[idx] = sp.dst_full[state[idx], msg]
                ready[idx] = h + gap
        if out_u:
            pushes = (np.concatenate(out_u), np.concatenate(out_m), np.concatenate(out_h))
            return margin, user_value, pushes
        empty = np.zeros(0, dtype=np.int64)
        return margin, user_value, (empty, empty, empty)


# ------------------------------------------------------------------- main loop
@dataclass
class _DualState:
    """Best bound, prices and schedule found so far by the subgradient method."""

    mu: np.ndarray
    nu: np.ndarray
    upper_bound: float = np.inf
    lower_bound: float = -np.inf
    schedule: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    iterations: int = 0


def _subgradient(
    problem: PushProblem,
    state: _DualState,
    *,
    theta: float,
    cfg: DecompositionConfig,
    max_iter: int,
    deadline: float,
) -> _DualState:
    """Projected, deflected subgradient steps (Polyak) on ``L(mu, nu)`` from ``state``'s prices."""
    p = problem
    cap = np.floor(p.capacity)
    priced = np.isfinite(cap) & (cap > 0)
    cap_term = np.where(priced, cap, 0.0)
    has_floor = p.share > 0
    dp = _UserDP(p, np.arange(p.n_users))
    mu, nu = state.mu.copy(), state.nu.copy()
    since_better = 0
    direction = np.zeros(p.n_hours + p.n_industries)
    for it in range(max_iter):
        state.iterations += 1
        margin, user_value, (u, m, h) = dp.solve(mu, nu, p.share)
        lag = float(user_value.sum() + np.where(priced, mu, 0.0) @ cap_term + margin)
        if lag < state.upper_bound:
            state.upper_bound, state.mu, state.nu = lag, mu.copy(), nu.copy()
            since_better = 0
        else:
            since_better += 1
            if since_better >= cfg.patience:
                theta, since_better = max(theta / 2, 1e-4), 0
        if it % cfg.repair_every == 0 or it == max_iter - 1:
            ru, rm, rh = repair(p, u, m, h, cfg.fill_rounds)
            obj = p.objective(ru, rm, rh)
            if obj > state.lower_bound:
                state.lower_bound, state.schedule = obj, (ru, rm, rh)
        ub, lb = state.upper_bound, state.lower_bound
        if ub <= 0 or ub - lb <= cfg.tol * ub or time.perf_counter() > deadline:
            break
        # subgradient of L: dL/dmu_h = cap_h - load_h ; dL/dnu_k = count_k - s_k * total
        load = np.bincount(h, minlength=p.n_hours)
        g_mu = np.where(priced, cap - load, 0.0)
        g_nu = np.where(has_floor, p.share_slack(p.industry_code[u, m]), 0.0)
        g = np.concatenate([g_mu, g_nu])
        price = np.concatenate([np.where(priced, mu, 0.0), nu])
        g[(price <= 0) & (g > 0)] = 0.0  # projection: prices stay at 0
        direction = g + cfg.deflection * direction
        norm2 = float(direction @ direction)
        if norm2 == 0:
            break
        step = theta * (lag - lb) / norm2
        price = np.maximum(0.0, price - step * direction)
        mu = np.where(priced, price[: p.n_hours], mu)
        nu = np.where(has_floor, price[p.n_hours :], 0.0)
    return state


def _sample_problem(problem: PushProblem, n_sample: int, seed: int) -> PushProblem:
    """A random subset of users with capacity scaled to their share of the population."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(problem.n_users, size=n_sample, replace=False))
    frac = n_sample / problem.n_users
    shares = {problem.industries[k]: float(s) for k, s in enumerate(problem.share) if s > 0}
    return PushProblem(
        problem.open_prob[idx],
        problem.industries[problem.industry_code[idx]],
        fatigue_cap=problem.fatigue_cap,
        min_gap=problem.min_gap,
        capacity=problem.capacity * frac,
        industry_share=shares,
        decay=problem.decay,
        candidate_mask=problem.candidate_mask[idx],
    )


def solve_decomposition(
    problem: PushProblem, config: DecompositionConfig | None = None
) -> PushSchedule:
    """Lagrangian decomposition with exact per-user DP, subgradient prices and repair.

    For more than ``config.sample_users`` users the prices are first tuned on a
    random sample (capacities scaled down), then refined on all users; the
    bound and the schedule always come from the full problem.
    """
    cfg = config or DecompositionConfig()
    t0 = time.perf_counter()
    deadline = t0 + cfg.time_limit_s
    p = problem
    cap = np.floor(p.capacity)
    mu0 = np.where(cap > 0, 0.0, np.inf)  # hours without capacity are simply closed
    nu0 = np.zeros(p.n_industries)
    theta = cfg.theta
    sample_iters = 0
    if p.n_users > cfg.sample_users:
        sub = _sample_problem(p, cfg.sample_users, cfg.seed)
        warm = _subgradient(
            sub,
            _DualState(mu=mu0, nu=nu0),
            theta=cfg.theta,
            cfg=cfg,
            max_iter=cfg.sample_iter,
            deadline=t0 + cfg.time_limit_s / 2,
        )
        mu0, nu0, theta = warm.mu, warm.nu, cfg.theta_refine
        sample_iters = warm.iterations
    state = _subgradient(
        p,
        _DualState(mu=mu0.copy(), nu=nu0.copy()),
        theta=theta,
        cfg=cfg,
        max_iter=cfg.max_iter,
        deadline=deadline,
    )
    assert state.schedule is not None  # at least one iteration always runs
    ru, rm, rh = state.schedule
    ub, lb = state.upper_bound, state.lower_bound
    gap = (ub - lb) / ub if ub > 0 else 0.0
    return make_schedule(
        p,
        ru,
        rm,
        rh,
        upper_bound=ub,
        status="optimal" if gap <= 1e-9 else "feasible",
        solve_time_s=time.perf_counter() - t0,
        method="decomposition",
        dual_capacity=state.mu,
        dual_industry=state.nu,
        info={"iterations": state.iterations, "sample_iterations": sample_iters},
    )
