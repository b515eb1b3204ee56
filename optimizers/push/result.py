"""The push schedule returned by every method, carrying its certificate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizers.certificate import Certificate
from optimizers.push.problem import PushProblem


@dataclass(kw_only=True)
class PushSchedule(Certificate):
    """A push schedule and its certificate (:class:`optimizers.certificate.Certificate`).

    ``pushes`` has one row per push: ``user``, ``message``, ``hour``,
    ``position`` (0-based push index in the user's day), ``industry`` (label)
    and ``value`` (``open_prob * decay**position``).  ``objective`` is the
    sum of ``value``; ``upper_bound`` is a proven bound on the optimum, so the
    optimum lies in ``[objective, upper_bound]``.  ``dual_capacity[h]``
    (expected opens per extra push of capacity in hour ``h``; ``inf`` for a
    closed hour) and ``dual_industry`` (price of each share floor) are the
    Lagrange prices that certify the bound (NaN when the method gives none);
    ``dual`` holds the same prices keyed ``capacity[h]`` and
    ``industry_share[label]``.  ``pushes_per_user[n]`` counts users with
    ``n`` pushes (the fatigue histogram).
    """

    pushes: pd.DataFrame
    dual_capacity: np.ndarray
    dual_industry: dict[Any, float]
    pushes_per_user: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _drop_worthless(
    problem: PushProblem, users: np.ndarray, msgs: np.ndarray, hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remove zero-value pushes one by one while every share floor still holds."""
    worthless = np.flatnonzero(problem.open_prob[users, msgs, hours] <= 0)
    if len(worthless) == 0:
        return users, msgs, hours
    counts = np.bincount(problem.industry_code[users, msgs], minlength=problem.n_industries)
    total = len(users)
    keep = np.ones(len(users), dtype=bool)
    for i in worthless:
        k = problem.industry_code[users[i], msgs[i]]
        new = counts.copy()
        new[k] -= 1
        if problem.floors_met(new, total - 1):
            counts, total = new, total - 1
            keep[i] = False
    return users[keep], msgs[keep], hours[keep]


def make_schedule(
    problem: PushProblem,
    users: np.ndarray,
    msgs: np.ndarray,
    hours: np.ndarray,
    *,
    upper_bound: float,
    status: str,
    solve_time_s: float,
    method: str,
    dual_capacity: np.ndarray,
    dual_industry: np.ndarray,
    info: dict[str, Any] | None = None,
) -> PushSchedule:
    """Assemble a :class:`PushSchedule` from push arrays, computing values and stats.

    Pushes worth nothing (``open_prob == 0``) only add fatigue, so they are
    dropped unless a share floor needs them; dropping never breaks a
    constraint and never lowers the objective.
    """
    users = np.asarray(users, dtype=np.int64)
    msgs = np.asarray(msgs, dtype=np.int64)
    hours = np.asarray(hours, dtype=np.int64)
    users, msgs, hours = _drop_worthless(problem, users, msgs, hours)
    order = np.lexsort((hours, users))
    users, msgs, hours = users[order], msgs[order], hours[order]
    pos, value = problem.position_values(users, msgs, hours)
    pushes = pd.DataFrame(
        {
            "user": users,
            "message": msgs,
            "hour": hours,
            "position": pos,
            "industry": problem.industries[problem.industry_code[users, msgs]],
            "value": value,
        }
    )
    objective = float(value.sum())
    per_user = np.bincount(users, minlength=problem.n_users)
    hist = np.bincount(per_user, minlength=problem.max_pushes_per_user + 1)
    labels = [lab.item() if hasattr(lab, "item") else lab for lab in problem.industries]
    dual_cap = np.asarray(dual_capacity, dtype=np.float64)
    dual_ind = {labels[k]: float(dual_industry[k]) for k in range(problem.n_industries)}
    dual = {f"capacity[{h}]": float(v) for h, v in enumerate(dual_cap)}
    dual.update({f"industry_share[{lab}]": v for lab, v in dual_ind.items()})
    return PushSchedule(
        pushes=pushes,
        objective=objective,
        upper_bound=float(upper_bound),
        status=status,
        solve_time_s=float(solve_time_s),
        method=method,
        dual=dual,
        dual_capacity=dual_cap,
        dual_industry=dual_ind,
        pushes_per_user=hist,
        info=dict(info or {}),
    )
