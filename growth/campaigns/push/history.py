"""What the logs tell about each user: the hours they are active and open at, the industries they open.

Pushes in the log go out at random hours, so the hours at which a user opened
say when that user is active.  With a handful of pushes per user the evidence
is thin, so every estimate is shrunk towards the user's lifecycle segment (and
the segment's towards the whole population).  For a user ``u`` with logged
pushes ``i`` (hour ``h_i``, opened ``y_i``) and the circular Gaussian kernel
``K`` (sd ``bandwidth`` hours, ``K(0) = 1``; active hours are bumps a few hours
wide, so an open at 21h says something about 20h and 22h)::

    O_u(h) = sum_i y_i K(h - h_i)        N_u(h) = sum_i K(h - h_i)
    r_s(h) = (O_s(h) + c r(h)) / (N_s(h) + c)       segment s's open rate at h
    r_u = (opens_u + b r_s) / (pushes_u + b)         the user's open rate
    q_u(h) = r_u r_s(h) / r_s                        the user's rate, segment's hours
    hour_affinity(u, h) = (O_u(h) + a q_u(h)) / (N_u(h) + a) / q_u(h)

``O_s``, ``N_s`` sum over the segment's users, ``r(h)`` is the population's
rate, ``r_s`` the segment's overall rate and ``a``, ``b``, ``c`` prior
strengths in pushes.  The affinity is relative to the user's own rate, so it
says *when* a user opens, apart from *how often* (``user_open_rate``).  A user
without history has affinity 1 and the segment's rate: the segment profile,
which the model sees as ``segment_hour_rate``.  The industry affinity is built
the same way from the opens of the industry's messages.  A row of the log itself is described
from the user's earlier pushes only (:meth:`PushHistory.past_features`), so the
model never learns from a feature that contains its label.

App activity says when a user is awake and on the phone far more often than a
handful of pushes can: every logged impression (shop or payments app) at hour
``e_j`` adds one unit of mass spread by the normalised kernel ``K~``::

    A_u(h) = sum_j K~(h - e_j)          n_u = number of events
    p_s(h) = (sum_{u in s} A_u(h) + c p(h)) / (sum_{u in s} n_u + c)
    p_u(h) = (A_u(h) + d p_s(h)) / (n_u + d)
    activity_hour(u, h) = log(24 p_u(h))

``d`` is the prior strength in events and ``p(h)`` the population's share of
activity at ``h``.  That is the fallback: where enough users have enough events,
``p_u`` is instead the posterior mean under a prior of day profiles learnt from the
users themselves (:mod:`growth.campaigns.push.active_hours`), which knows that days
have shapes many people share, not only that hours near an event are likely.  The
activity log carries no push outcome, so every row (past or present) reads the whole
activity log: a user's active hours are a trait, not an outcome, computed once per log
(:func:`activity_hours`) and shared by its histories.  With no timestamps' hours (date-only logs), every ``p_u`` is flat and
the column says nothing, which the model learns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from growth.campaigns.push.active_hours import ActivityPrior, activity_shares
from growth.campaigns.push.audience import HOURS

HISTORY_COLUMNS = (
    "hour_affinity",
    "segment_hour_rate",
    "user_open_rate",
    "industry_affinity",
    "history_pushes",
    "activity_hour",
    "activity_events",
)
"""The open model's columns from :class:`PushHistory`, in order."""


@dataclass(frozen=True)
class HistoryPriors:
    """Kernel width (hours) and prior strengths (pseudo-pushes) of :class:`PushHistory`;
    ``activity_prior`` the learnt prior of users' active hours (``library`` 0: the kernel
    and segment estimate with prior strength ``activity`` events)."""

    bandwidth: float = 1.5
    hour: float = 2.0
    user: float = 5.0
    industry: float = 3.0
    segment: float = 200.0
    activity: float = 3.0
    activity_prior: ActivityPrior = field(default_factory=ActivityPrior)

    def __post_init__(self) -> None:
        for name in ("bandwidth", "hour", "user", "industry", "segment", "activity"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HistoryPriors.{name} must be > 0; got {getattr(self, name)}")


def hour_kernel(bandwidth: float) -> np.ndarray:
    """(24, 24) circular Gaussian weights ``K[h_i, h]`` with ``K(0) = 1``.

    >>> k = hour_kernel(1.5)
    >>> float(k[0, 0]), float(round(k[23, 0], 3)) == float(round(k[1, 0], 3))
    (1.0, True)
    """
    hours = np.arange(HOURS)
    dist = np.abs(hours[:, None] - hours[None, :])
    dist = np.minimum(dist, HOURS - dist)
    return np.exp(-0.5 * (dist / bandwidth) ** 2)


def _shrunk(opens, pushes, prior_rate, strength):
    """(opens + strength * prior_rate) / (pushes + strength)."""
    return (opens + strength * prior_rate) / (pushes + strength)


@dataclass(frozen=True)
class ActivityHours:
    """``activity_hour`` (users, 24): log of 24 times each user's share of activity by hour;
    ``events`` (users,): their logged events (module docstring)."""

    hour: np.ndarray
    events: np.ndarray


def activity_hours(
    user_pos: np.ndarray, hour: np.ndarray, *, segment: np.ndarray, priors: HistoryPriors
) -> ActivityHours:
    """The :class:`ActivityHours` of logged events at (``user_pos``, ``hour``), ``segment``
    every user's lifecycle segment: the learnt prior's posterior where the log allows it,
    else the kernel-smoothed share shrunk to the segment's (module docstring)."""
    names, seg = np.unique(np.asarray(segment, str), return_inverse=True)
    kernel = hour_kernel(priors.bandwidth)
    events = np.zeros((len(seg), HOURS))
    np.add.at(events, (np.asarray(user_pos, np.int64), np.asarray(hour, np.int64)), 1.0)
    n_events = events.sum(axis=1)
    learnt = activity_shares(events, kernel, priors.activity_prior)
    if learnt is not None:
        return ActivityHours(np.log(HOURS * learnt), n_events)
    c, d = priors.segment, priors.activity
    spread = events @ (kernel / kernel.sum(axis=1, keepdims=True))
    total = n_events.sum()
    population = spread.sum(0) / total if total > 0 else np.full(HOURS, 1.0 / HOURS)
    seg_mass = np.zeros((len(names), HOURS))
    seg_events = np.zeros(len(names))
    np.add.at(seg_mass, seg, spread)
    np.add.at(seg_events, seg, n_events)
    segment_share = (seg_mass + c * population) / (seg_events[:, None] + c)
    share = (spread + d * segment_share[seg]) / (n_events[:, None] + d)
    return ActivityHours(np.log(HOURS * share), n_events)


class PushHistory:
    """Kernel-smoothed, shrunk open statistics per user, from logged pushes.

    ``user_pos`` (rows of the users table), ``hour``, ``industry`` (codes in
    ``[0, n_industries)``) and ``opened`` describe the logged pushes;
    ``segment`` is every user's lifecycle segment (users-table order);
    ``activity`` the users' logged app activity as (user positions, hours), if any, or
    its :class:`ActivityHours` computed once (:func:`activity_hours`).
    """

    def __init__(
        self,
        user_pos: np.ndarray,
        hour: np.ndarray,
        industry: np.ndarray,
        opened: np.ndarray,
        *,
        segment: np.ndarray,
        n_industries: int,
        priors: HistoryPriors | None = None,
        activity: tuple[np.ndarray, np.ndarray] | ActivityHours | None = None,
    ) -> None:
        self.priors = priors or HistoryPriors()
        self.kernel = hour_kernel(self.priors.bandwidth)
        n = len(segment)
        user_pos, hour, industry = (np.asarray(a, np.int64) for a in (user_pos, hour, industry))
        opened = np.asarray(opened, np.float64)
        self.segment_names, self.segment = np.unique(np.asarray(segment, str), return_inverse=True)
        pushes_uh = np.zeros((n, HOURS))
        opens_uh = np.zeros((n, HOURS))
        np.add.at(pushes_uh, (user_pos, hour), 1.0)
        np.add.at(opens_uh, (user_pos, hour), opened)
        self.pushes_hour = pushes_uh @ self.kernel  # (users, 24) kernel-weighted pushes around h
        self.opens_hour = opens_uh @ self.kernel
        self.pushes = pushes_uh.sum(axis=1)
        self.opens = opens_uh.sum(axis=1)
        self.pushes_k = np.zeros((n, n_industries))
        self.opens_k = np.zeros((n, n_industries))
        np.add.at(self.pushes_k, (user_pos, industry), 1.0)
        np.add.at(self.opens_k, (user_pos, industry), opened)
        self._segment_rates(n_industries)
        if not isinstance(activity, ActivityHours):
            empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            activity = activity_hours(*(activity or empty), segment=segment, priors=self.priors)
        self.activity_hour, self.activity_events = activity.hour, activity.events

    def _segment_rates(self, n_industries: int) -> None:
        """Each segment's rate by hour, overall and by industry, shrunk to the population's."""
        c = self.priors.segment
        seg = self.segment
        n_seg = len(self.segment_names)

        def by_segment(values: np.ndarray) -> np.ndarray:
            out = np.zeros((n_seg, *values.shape[1:]))
            np.add.at(out, seg, values)
            return out

        total_rate = self.opens.sum() / max(self.pushes.sum(), 1.0)
        pop_hour = _shrunk(self.opens_hour.sum(0), self.pushes_hour.sum(0), total_rate, c)
        pop_ind = _shrunk(self.opens_k.sum(0), self.pushes_k.sum(0), total_rate, c)
        self.segment_hour = _shrunk(
            by_segment(self.opens_hour), by_segment(self.pushes_hour), pop_hour, c
        )
        self.segment_rate = _shrunk(by_segment(self.opens), by_segment(self.pushes), total_rate, c)
        self.segment_industry = _shrunk(
            by_segment(self.opens_k), by_segment(self.pushes_k), pop_ind, c
        )

    def features(
        self, user_pos: np.ndarray, hour: np.ndarray, industry: np.ndarray
    ) -> dict[str, np.ndarray]:
        """:data:`HISTORY_COLUMNS` of aligned (user, hour, industry) rows from the whole history.

        An unknown industry (code -1) has affinity 1.
        """
        u, h, k = (np.asarray(a, np.int64) for a in (user_pos, hour, industry))
        kk = np.maximum(k, 0)
        sums = (
            self.opens_hour[u, h],
            self.pushes_hour[u, h],
            self.opens[u],
            self.pushes[u],
            self.opens_k[u, kk],
            self.pushes_k[u, kk],
        )
        return self._columns(u, h, k, sums)

    def past_features(
        self, user_pos: np.ndarray, hour: np.ndarray, industry: np.ndarray, opened: np.ndarray
    ) -> dict[str, np.ndarray]:
        """:data:`HISTORY_COLUMNS` of logged pushes in time order, each from the user's earlier pushes only.

        The rows of the log a model learns from must not see their own outcome
        (nor, through a leave-one-out total, its complement), so each row's sums
        run over the same user's pushes before it, as they stood when it was sent.
        The segment rates are the whole history's.
        """
        u, h, k = (np.asarray(a, np.int64) for a in (user_pos, hour, industry))
        y = np.asarray(opened, np.float64)
        order = np.argsort(u, kind="stable")  # by user, time order kept within a user
        su, sh, sk, sy = u[order], h[order], k[order], y[order]
        sums = np.zeros((6, len(su)))
        for d in range(1, _longest_run(su)):
            i = np.flatnonzero(su[d:] == su[:-d]) + d  # rows with a same-user push d before
            j = i - d
            kern = self.kernel[sh[j], sh[i]]
            same = (sk[j] == sk[i]) & (sk[i] >= 0)
            sums[:, i] += np.stack([sy[j] * kern, kern, sy[j], np.ones(len(i)), sy[j] * same, same])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return self._columns(u, h, k, tuple(sums[:, back]))

    def _columns(self, u, h, k, sums) -> dict[str, np.ndarray]:
        """The shrunk columns from a row's sums ``(opens_h, pushes_h, opens, pushes, opens_k, pushes_k)``."""
        opens_h, pushes_h, opens, pushes, opens_k, pushes_k = sums
        s = self.segment[u]
        known = k >= 0
        seg_hour = self.segment_hour[s, h]
        seg_ind = self.segment_industry[s, np.maximum(k, 0)]
        p = self.priors
        seg_rate = self.segment_rate[s]
        user_rate = _shrunk(opens, pushes, seg_rate, p.user)
        # priors: the user's own rate shaped like the segment's hours (industries)
        hour_prior = user_rate * seg_hour / seg_rate
        industry_prior = user_rate * seg_ind / seg_rate
        return {
            "hour_affinity": _shrunk(opens_h, pushes_h, hour_prior, p.hour) / hour_prior,
            "segment_hour_rate": seg_hour,
            "user_open_rate": user_rate,
            "industry_affinity": np.where(
                known,
                _shrunk(opens_k, pushes_k, industry_prior, p.industry) / industry_prior,
                1.0,
            ),
            "history_pushes": pushes,
            "activity_hour": self.activity_hour[u, h],
            "activity_events": self.activity_events[u],
        }


def _longest_run(sorted_ids: np.ndarray) -> int:
    """Length of the longest run of equal values in a sorted array (0 when empty)."""
    if len(sorted_ids) == 0:
        return 0
    edges = np.flatnonzero(np.diff(sorted_ids)) + 1
    bounds = np.concatenate([[0], edges, [len(sorted_ids)]])
    return int(np.diff(bounds).max())
