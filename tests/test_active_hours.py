"""Users' active hours under a prior learnt from every user (growth.campaigns.push.active_hours)."""

from __future__ import annotations

import numpy as np
import pytest

from growth.campaigns.push.active_hours import ActivityPrior, activity_shares
from growth.campaigns.push.history import HistoryPriors, PushHistory, hour_kernel

HOURS = np.arange(24)


def _bump(centre: float, width: float = 1.5) -> np.ndarray:
    dist = np.abs(HOURS - centre)
    dist = np.minimum(dist, 24 - dist)
    p = 0.01 + np.exp(-0.5 * (dist / width) ** 2)
    return p / p.sum()


def _population(n: int, events: np.ndarray, seed: int):
    """Morning people (08h, plus a bump at 13h) and night owls (22h): (true profiles, counts
    of ``events[u]`` draws each, counts of 20 fresh draws each)."""
    rng = np.random.default_rng(seed)
    morning = 0.7 * _bump(8) + 0.3 * _bump(13)
    profiles = np.where((rng.random(n) < 0.5)[:, None], morning, _bump(22))
    draw = lambda k: np.stack([rng.multinomial(k[u], profiles[u]) for u in range(n)])  # noqa: E731
    return profiles, draw(events).astype(float), draw(np.full(n, 20)).astype(float)


def _kernel_shares(counts: np.ndarray) -> np.ndarray:
    """The fallback estimate: kernel-smoothed and shrunk to the segment (one segment)."""
    user, hour = np.nonzero(counts)
    reps = counts[user, hour].astype(int)
    history = PushHistory(
        [],
        [],
        [],
        [],
        segment=np.zeros(len(counts)),
        n_industries=1,
        priors=HistoryPriors(activity_prior=ActivityPrior(library=0)),
        activity=(np.repeat(user, reps), np.repeat(hour, reps)),
    )
    return np.exp(history.activity_hour) / 24


def test_the_learnt_prior_predicts_a_users_next_events_better_than_the_kernel():
    """With 2-3 events per user (and a fifth of users with 10), the posterior under the
    learnt prior knows a morning person's 13h from one event at 8h; held-out events are
    likelier under it than under the kernel-and-segment estimate, and its error to the true
    profile is smaller."""
    n = 2000
    rng = np.random.default_rng(1)
    events = np.where(rng.random(n) < 0.2, 10, rng.integers(2, 4, size=n))
    truth, counts, fresh = _population(n, events, seed=2)
    learnt = activity_shares(counts, hour_kernel(1.5), ActivityPrior(), seed=0)
    kernel = _kernel_shares(counts)
    assert learnt.shape == (n, 24)
    np.testing.assert_allclose(learnt.sum(axis=1), 1.0, rtol=1e-9)
    few = events < 10
    loglik = {name: (fresh[few] * np.log(s[few])).sum() / fresh[few].sum() for name, s in
              (("learnt", learnt), ("kernel", kernel))}  # fmt: skip
    assert loglik["learnt"] > loglik["kernel"] + 0.1, loglik
    error = {name: np.abs(s[few] - truth[few]).sum(axis=1).mean() for name, s in
             (("learnt", learnt), ("kernel", kernel))}  # fmt: skip
    assert error["learnt"] < 0.75 * error["kernel"], error


def test_a_user_without_events_gets_the_priors_mean_and_the_fit_is_seeded():
    n = 600
    events = np.where(np.arange(n) < 500, 8, 0)
    _, counts, _ = _population(n, events, seed=3)
    a = activity_shares(counts, hour_kernel(1.5), ActivityPrior(), seed=4)
    b = activity_shares(counts, hour_kernel(1.5), ActivityPrior(), seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[500:], np.broadcast_to(a[500], (100, 24)), rtol=1e-12)
    day = a[500]  # the population's day: both peaks, the quiet hours between
    assert min(day[8], day[22]) > 3 * max(day[3], day[17])


def test_without_a_population_the_history_keeps_its_kernel_estimate():
    """No prior when fewer than two users have enough events, or when the library is 0; the
    history then uses the kernel-and-segment shares as before."""
    counts = np.zeros((5, 24))
    counts[0, 21] = 8
    assert activity_shares(counts, hour_kernel(1.5), ActivityPrior()) is None
    counts[1, 9] = 8
    assert activity_shares(counts, hour_kernel(1.5), ActivityPrior(library=0)) is None
    assert activity_shares(counts, hour_kernel(1.5), ActivityPrior()) is not None
    shares = _kernel_shares(counts)
    assert shares[0, 21] > shares[0, 9] and shares[1, 9] > shares[1, 21]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"library": -1}, "library >= 0"),
        ({"min_events": 0}, "min_events >= 1"),
        ({"floor": 0.05}, "floor must lie in"),
        ({"fit_users": 0}, "fit_users and chunk"),
    ],
)
def test_bad_prior_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActivityPrior(**kwargs)
