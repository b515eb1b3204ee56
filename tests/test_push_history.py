"""Personal send times: the push log's history per user, shrunk to the segment, in the open model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from growth.campaigns.push import plan_push, push_audience
from growth.campaigns.push.history import PushHistory
from growth.campaigns.push.open_model import OpenRateRows
from growth.campaigns.settings import PushSettings
from growth.modeling.features import ConversionFeatures
from growth.services import open_model_quality
from growth.world import generate_world, load_scenario


def _history(user, hour, industry, opened, segment, **kw) -> PushHistory:
    return PushHistory(
        np.array(user), np.array(hour), np.array(industry), np.array(opened),
        segment=np.array(segment), n_industries=2, **kw,
    )  # fmt: skip


def test_a_user_without_history_gets_the_segment_profile():
    """No logged push: hour and industry affinity 1, the segment's rate and hourly profile."""
    segment = ["active", "active", "active", "lost"]
    hist = _history([0, 0, 1, 1, 3], [21, 9, 21, 3, 12], [0, 1, 0, 1, 0], [1, 0, 1, 0, 0], segment)
    new = np.full(24, 2)  # user 2 (active) has no push in the log
    f = hist.features(new, np.arange(24), np.zeros(24, np.int64))
    np.testing.assert_allclose(f["hour_affinity"], 1.0)
    np.testing.assert_allclose(f["industry_affinity"], 1.0)
    np.testing.assert_allclose(f["history_pushes"], 0.0)
    np.testing.assert_allclose(f["segment_hour_rate"], hist.segment_hour[0])
    np.testing.assert_allclose(f["user_open_rate"], hist.segment_rate[0])
    rate = f["hour_affinity"] * f["segment_hour_rate"] * f["user_open_rate"] / hist.segment_rate[0]
    np.testing.assert_allclose(rate, hist.segment_hour[0])  # the user's hourly rate


def test_history_moves_a_user_away_from_the_segment_in_proportion_to_the_evidence():
    """Opens at 21h lift 21h above 9h, more with more pushes; the unknown industry stays 1."""
    segment = ["active"] * 3
    few = _history([0, 0, 2, 2], [21, 9, 12, 3], [0, 0, 0, 0], [1, 0, 0, 0], segment)
    many = _history([0] * 8 + [2, 2], [21] * 4 + [9] * 4 + [12, 3], [0] * 10,
                    [1] * 4 + [0] * 4 + [0, 0], segment)  # fmt: skip
    lift = []
    for hist in (few, many):
        f = hist.features(np.zeros(2, np.int64), np.array([21, 9]), np.array([0, -1]))
        assert f["hour_affinity"][0] > 1.0 > f["hour_affinity"][1]
        assert f["industry_affinity"][1] == 1.0
        lift.append(f["hour_affinity"][0] / f["hour_affinity"][1])
    assert lift[1] > lift[0]


def test_past_features_never_see_their_own_outcome():
    """A logged push's history columns come from the user's earlier pushes only."""
    user, hour, industry = [0, 0, 0, 1], [21, 21, 9, 21], [0, 0, 1, 0]
    opened = np.array([1, 0, 1, 1])
    hist = _history(user, hour, industry, opened, ["new", "new"])
    first = hist.past_features(user, hour, industry, opened)
    flipped = opened.copy()
    flipped[1] = 1
    second = hist.past_features(user, hour, industry, flipped)
    for name, values in first.items():
        assert values[1] == second[name][1], f"{name} of push 1 depends on its own outcome"
    assert first["history_pushes"].tolist() == [0, 1, 2, 0]
    assert first["hour_affinity"][2] != second["hour_affinity"][2]  # a later push sees it
    rate = hist.segment_rate[0]  # push 2 sees pushes 0 and 1: one open in two
    assert first["user_open_rate"][2] == pytest.approx((1 + 5 * rate) / (2 + 5))


def test_app_activity_moves_a_users_active_hours_in_proportion_to_the_evidence():
    """Impressions logged at 21h lift the user's activity share at 21h above 9h, more with
    more of them; a user with no activity has the segment's profile (that of users with it)."""
    segment = ["active"] * 3
    lift = []
    for events in (2, 8):
        activity = (np.array([0] * events + [1, 1]), np.array([21] * events + [9, 12]))
        hist = _history([0, 1], [3, 3], [0, 0], [0, 0], segment, activity=activity)
        f = hist.features(np.array([0, 0, 2, 2]), np.array([21, 9, 21, 9]), np.zeros(4, np.int64))
        assert f["activity_hour"][0] > f["activity_hour"][1]
        assert f["activity_events"].tolist() == [events, events, 0, 0]
        lift.append(f["activity_hour"][0] - f["activity_hour"][1])
        np.testing.assert_allclose(f["activity_hour"][2:], hist.activity_hour[2, [21, 9]])
        assert f["activity_hour"][2] > f["activity_hour"][3]  # the segment is active at 21h
    assert lift[1] > lift[0]
    plain = _history([0, 1], [3, 3], [0, 0], [0, 0], segment)
    np.testing.assert_allclose(plain.activity_hour, 0.0, atol=1e-12)  # no log: flat, log(1)


@pytest.fixture(scope="module")
def world():
    """A small world whose push log holds 12 pushes per user (the scenario's 4 teach the
    model little about hours at 3,000 users)."""
    config = load_scenario("small", n_users=3000, seed=3)
    return generate_world(config.model_copy(update={"pushes_per_user": 12.0}))


def _with_log(world, user_id: int, hours: list[int], opened: list[int]) -> pd.DataFrame:
    """The world's push log with ``user_id``'s pushes replaced by the given ones."""
    ds = world.dataset
    candidates = ds.push_candidates
    msg = int(candidates.loc[candidates["user_id"] == user_id, "message_id"].iloc[0])
    day = pd.Timestamp("2024-06-01")
    own = pd.DataFrame(
        {
            "user_id": user_id,
            "message_id": msg,
            "timestamp": [day + pd.Timedelta(days=i, hours=h) for i, h in enumerate(hours)],
            "hour": hours,
            "prior_pushes_today": 0,
            "opened": opened,
        }
    )
    return pd.concat([ds.push_log[ds.push_log["user_id"] != user_id], own], ignore_index=True)


def test_opens_at_21h_raise_the_predicted_open_rate_at_21h_against_9h(world):
    """The same user and model, with a log whose opens all fall at 21h, then one whose opens
    all fall at 9h: 21h is the likelier hour, and more so than after the 9h log (without the
    history both logs would give the same prediction)."""
    features = ConversionFeatures(world.dataset)
    rows = OpenRateRows(features)
    model, _ = rows.fit(seed=0)
    audience = push_audience(features, max_users=None, seed=0)
    pos, uid = 0, int(audience.user_ids[0])
    hours = [21, 9, 21, 9, 21, 9, 21, 9, 15, 3]
    p = {}
    for when in (21, 9):
        rows.history = rows.history_of(
            _with_log(world, uid, hours, [int(h == when) for h in hours])
        )
        p[when] = rows.predict_hours(model, audience)[pos, 0]
    assert p[21][21] > p[21][9], p
    assert p[21][21] / p[21][9] > p[9][21] / p[9][9], p


def test_the_plan_summary_carries_the_open_model_by_segment_and_hour(world):
    """Held-out AUC, log loss and calibration per lifecycle segment and per hour, in the
    summary stored with the run and on the push page's service."""
    plan = plan_push(ConversionFeatures(world.dataset), PushSettings(max_users=200), seed=0)
    quality = plan.summary()["open_model"]
    assert [r["group"] for r in quality["by_hour"]] == [str(h) for h in range(24)]
    assert {"active", "new", "lost"} <= {r["group"] for r in quality["by_segment"]}
    for record in (quality["all"], *quality["by_hour"], *quality["by_segment"]):
        assert {"auc", "logloss", "ece", "positive_rate", "mean_predicted", "n"} <= set(record)
    assert quality["all"]["auc"] == plan.open_model_auc
    hourly = open_model_quality(plan, "hour")
    assert hourly["hour"].tolist() == list(range(24))
    assert hourly["n"].sum() == quality["all"]["n"]
    assert open_model_quality(plan, "segment")["segment"].iloc[0] == "all"


def test_the_open_model_times_pushes_by_the_users_logged_app_activity(world):
    """Two users' impressions moved to 21h and 9h: with the same pushes, the model predicts
    each a higher open rate at their own active hour (the exposure log's moments feed it)."""
    features = ConversionFeatures(world.dataset)
    audience = push_audience(features, max_users=None, seed=0)
    night, morning = (int(u) for u in audience.user_ids[:2])
    ex = world.dataset.exposures
    moved = []
    for user, hour in ((night, 21), (morning, 9)):
        rows = ex[ex["user_id"] == ex["user_id"].iloc[0]].iloc[[0] * 30].copy()
        rows["user_id"] = user
        rows["timestamp"] = [pd.Timestamp("2024-06-01") + pd.Timedelta(days=d, hours=hour)
                             for d in range(30)]  # fmt: skip
        moved.append(rows)
    ex = pd.concat([ex[~ex["user_id"].isin([night, morning])], *moved], ignore_index=True)
    rows = OpenRateRows(ConversionFeatures(dataclasses.replace(world.dataset, exposures=ex)))
    model, _ = rows.fit(seed=0)
    p = rows.predict_hours(model, audience)
    assert p[0, 0, 21] > p[0, 0, 9], p[0, 0]
    assert p[1, 0, 9] > p[1, 0, 21], p[1, 0]


def test_the_open_models_log_odds_move_smoothly_with_the_users_share_of_activity(world):
    """Linear leaves: for one user and push, the log of the user's share of activity at the
    hour is swept over a range; the predicted open rate takes a distinct value at every point
    and rises over the range (constant leaves approximate that line in a few steps)."""
    features = ConversionFeatures(world.dataset)
    rows = OpenRateRows(features)
    model, _ = rows.fit(seed=0)
    sweep = np.linspace(-1.0, 1.0, 41)
    history = rows.history.features(np.zeros(1, np.int64), np.array([20]), np.zeros(1, np.int64))
    frame = rows.rows(np.zeros(1, np.int64), [0.5], rows.industries[:1], [20], [0], history)
    frame = frame.iloc[[0] * len(sweep)].assign(activity_hour=sweep.astype(np.float32))
    p = model.predict_proba(frame)[:, 1]
    assert len(np.unique(np.round(p, 12))) == len(sweep), p
    assert p[-1] > p[0], p
