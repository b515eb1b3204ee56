"""Off-policy estimators (predictors/off_policy.py): unbiased, intervals that cover, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.off_policy import cluster_se, policy_estimates, unseen_events_bound

ARMS = 3


def synthetic_log(rng: np.random.Generator, n: int, *, propensity: np.ndarray | None = None):
    """A randomised log with known potential outcomes: (y, arm, e, x, truth table)."""
    x = rng.random(n)
    mean = np.column_stack([0.1 + 0.1 * x, 0.15 + 0.2 * x, 0.3 - 0.1 * x])  # (n, arms)
    e = np.full((n, ARMS), 1.0 / ARMS) if propensity is None else np.tile(propensity, (n, 1))
    arm = (rng.random(n)[:, None] > np.cumsum(e, axis=1)).sum(axis=1)
    y = (rng.random(n) < mean[np.arange(n), arm]).astype(float)
    return y, arm, e[np.arange(n), arm], x, mean


def policy(x: np.ndarray) -> np.ndarray:
    """A targeting rule: arm 1 for high x, arm 2 for low x."""
    return np.where(x > 0.5, 1, 2)


def test_estimators_are_unbiased_for_a_known_contrast():
    """Averaged over many seeded logs, IPS and DR (and nearly SNIPS) hit the true uplift over arm 0."""
    rng = np.random.default_rng(1)
    found = {"ips": [], "snips": [], "dr": []}
    truths = []
    for _ in range(300):
        y, arm, e, x, mean = synthetic_log(rng, 2_000, propensity=np.array([0.5, 0.3, 0.2]))
        pi = policy(x)
        truths.append((mean[np.arange(len(x)), pi] - mean[:, 0]).mean())
        wrong_model = np.full((len(x), ARMS), 0.2)  # DR stays unbiased with a poor model
        est = policy_estimates(y, arm, e, pi, predictions=wrong_model, baseline=0)
        for k in found:
            found[k].append(est[k].value)
    truth = float(np.mean(truths))
    for k, values in found.items():
        se_of_mean = np.std(values) / np.sqrt(len(values))
        assert abs(np.mean(values) - truth) < 3 * se_of_mean + 1e-4, k


def test_intervals_cover_at_their_level():
    """On seeded logs the 95 % intervals of every estimator cover the truth 90-99 % of the time."""
    rng = np.random.default_rng(2)
    covered = {"ips": 0, "snips": 0, "dr": 0}
    reps = 300
    for _ in range(reps):
        y, arm, e, x, mean = synthetic_log(rng, 1_500)
        pi = policy(x)
        truth = (mean[np.arange(len(x)), pi] - mean[:, 0]).mean()
        est = policy_estimates(y, arm, e, pi, predictions=mean, baseline=0)
        for k in covered:
            covered[k] += est[k].covers(truth)
    for k, hits in covered.items():
        assert 0.90 <= hits / reps <= 0.99, (k, hits)


def test_a_good_model_narrows_the_doubly_robust_interval():
    """DR with the true mean as its direct method is tighter than IPS on the same revenue log."""
    rng = np.random.default_rng(3)
    _, arm, e, x, mean = synthetic_log(rng, 20_000)
    revenue = 50 * mean[np.arange(len(x)), arm] + rng.normal(0.0, 1.0, len(x))
    est = policy_estimates(revenue, arm, e, policy(x), predictions=50 * mean, baseline=0)
    assert est["dr"].se < 0.5 * est["ips"].se


def test_a_direct_total_from_elsewhere_replaces_the_rows_direct_part():
    """With direct_total, DR is that total plus the rows' IPS correction of the residuals
    (the standard DR less its direct part on the rows), with the correction's interval."""
    y, arm, e, x, mean = synthetic_log(np.random.default_rng(7), 2_000)
    q = mean + 0.05  # a biased model
    pi = policy(x)
    rows = np.arange(len(x))
    on_rows = float((q[rows, pi] - q[:, 0]).mean())
    standard = policy_estimates(y, arm, e, pi, predictions=q, baseline=0)["dr"]
    given = policy_estimates(y, arm, e, pi, predictions=q, baseline=0, direct_total=3.0)["dr"]
    assert given.value == pytest.approx(3.0 + standard.value - on_rows)
    assert given.se <= standard.se * 1.5 and given.lower < given.value < given.upper


def test_rows_where_target_equals_baseline_contribute_nothing():
    """A policy identical to its baseline is worth exactly zero, with zero width."""
    y, arm, e, _, mean = synthetic_log(np.random.default_rng(4), 500)
    est = policy_estimates(y, arm, e, 1, predictions=mean, baseline=1)
    for e_ in est.values():
        assert e_.value == 0.0 and e_.upper - e_.lower == 0.0


def test_weights_set_the_estimand_total():
    """Weights summing to N turn the per-row mean into a total over N."""
    y, arm, e, _, _ = synthetic_log(np.random.default_rng(5), 1_000)
    mean_est = policy_estimates(y, arm, e, 1)["ips"].value
    total = policy_estimates(y, arm, e, 1, weights=np.full(1_000, 7.0))["ips"].value
    assert total == pytest.approx(7_000 * mean_est)


def test_clustered_rows_widen_the_interval():
    """A user's repeated rows count once: duplicated rows do not shrink the clustered se."""
    rng = np.random.default_rng(6)
    terms = rng.normal(size=500)
    naive, _ = cluster_se(np.repeat(terms, 4) / 4)
    clustered, groups = cluster_se(np.repeat(terms, 4) / 4, np.repeat(np.arange(500), 4))
    assert groups == 500
    assert clustered == pytest.approx(2 * naive, rel=0.01)


def test_bad_propensity_is_named():
    """A propensity outside (0, 1] is refused with its row."""
    with pytest.raises(ValueError, match=r"row 2 has 0\.0"):
        policy_estimates([1, 0, 1], [0, 1, 1], [0.5, 0.5, 0.0], 1)
    with pytest.raises(ValueError, match="target must be 3 integer arms"):
        policy_estimates([1, 0, 1], [0, 1, 1], 0.5, [1.0, 0.0, 1.0])


def test_a_total_without_events_is_bounded_by_the_unseen_events_not_zero_width():
    """A rare redemption (face value 10, probability 0.004 under the target arm): most logs
    show none, and IPS's per-row terms are then all 0.  The interval from the unseen events'
    bound still covers the true total at its level; the zero-width one would not."""
    rng = np.random.default_rng(11)
    n, p, face = 300, 0.004, 10.0
    truth = p * face  # the mean spend per row under the target arm
    covered, zero_event_logs = {"ips": 0, "snips": 0}, 0
    for _ in range(400):
        arm = rng.integers(0, 2, n)
        y = face * ((arm == 1) & (rng.random(n) < p))
        est = policy_estimates(y, arm, 0.5, 1, outcome_max=face)
        zero_event_logs += est["ips"].n_events == 0
        for k in covered:
            covered[k] += est[k].covers(truth)
        if est["ips"].n_events == 0:
            bare = policy_estimates(y, arm, 0.5, 1)["ips"]
            assert bare.upper == bare.lower == 0.0  # what the bound replaces
            assert est["ips"].upper == pytest.approx(-np.log(0.025) * face / n / 0.5)
    assert zero_event_logs > 100
    assert all(hits / 400 >= 0.95 for hits in covered.values()), covered


def test_the_unseen_events_bound_counts_each_row_at_most_once():
    """Three rows at propensity 0.5 cannot hide more than their three events (weights 10, 1,
    1: a total of at most 12), however large -ln(alpha / 2) / e is; with many rows the
    bound spends the -ln(0.025) = 3.69 expected events on the heaviest rows first."""
    one = np.ones(3)
    assert unseen_events_bound(np.array([10.0, 1.0, 1.0]), 0.5 * one, one, 0.95) == 12.0
    many = np.array([10.0] + [1.0] * 99)
    expected = 10.0 + (-np.log(0.025) - 0.5) / 0.5 * 1.0
    assert unseen_events_bound(many, np.full(100, 0.5), np.ones(100), 0.95) == pytest.approx(
        expected
    )
