"""Push campaign: learn open probabilities from the push log, schedule a day, score it.

The open model is LightGBM on the user's features, the message's industry and
the recommender's relevance, the hour, and how many pushes the user already
received that day.  For the schedule it is evaluated with no prior push; the
fatigue decay the optimizer applies to later pushes is the model's own average
ratio ``p(prior = 1) / p(prior = 0)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.campaigns.settings import PushSettings
from growth.data.schema import Lifecycle
from growth.modeling.features import ConversionFeatures
from optimizers.push import PushProblem, PushSchedule, schedule_push
from predictors.lgbm import LightGBMModel
from predictors.metrics import binary_metrics

log = logging.getLogger(__name__)
HOURS = 24


@dataclass
class PushAudience:
    """Users to push to and their candidate messages, padded to a rectangle."""

    user_pos: np.ndarray  # (n,) positions in the users table
    user_ids: np.ndarray  # (n,)
    message_ids: np.ndarray  # (n, m) message ids, -1 for padding
    relevance: np.ndarray  # (n, m)
    industry: np.ndarray  # (n, m) industry labels ('' for padding)
    mask: np.ndarray  # (n, m) True for a real candidate


@dataclass
class PushPlan:
    audience: PushAudience
    schedule: PushSchedule
    decay: float
    open_model_auc: float

    def frame(self) -> pd.DataFrame:
        """The schedule as store rows: user_id, message_id, industry, hour, expected_open."""
        p = self.schedule.pushes
        users, slots = p["user"].to_numpy(), p["message"].to_numpy()
        return pd.DataFrame(
            {
                "user_id": self.audience.user_ids[users],
                "message_id": self.audience.message_ids[users, slots],
                "industry": self.audience.industry[users, slots],
                "hour": p["hour"].to_numpy(),
                "expected_open": p["value"].to_numpy(),
            }
        )


class OpenModel:
    """Open-probability model over (user, candidate message, hour, prior pushes today)."""

    def __init__(self, features: ConversionFeatures, *, seed: int = 0) -> None:
        self.features = features
        self.seed = seed
        cols = [c for c in features.user_table.columns if "__" not in c or c.endswith("__len")]
        self.user_columns = cols
        self._user = features.user_table[cols].to_numpy(np.float32)
        industries = features.dataset.push_messages["industry"].astype(str)
        self.industries = sorted(industries.unique())
        self.columns = [*cols, "relevance", "industry", "hour", "prior_pushes_today"]
        self.model: LightGBMModel | None = None

    def frame(self, user_pos, relevance, industry, hour, prior) -> pd.DataFrame:
        block = np.empty((len(user_pos), len(self.columns)), dtype=np.float32)
        a = self._user.shape[1]
        np.take(self._user, user_pos, axis=0, out=block[:, :a])
        block[:, a] = relevance
        block[:, a + 1] = pd.Index(self.industries).get_indexer(np.asarray(industry, dtype=str))
        block[:, a + 2] = hour
        block[:, a + 3] = prior
        return pd.DataFrame(block, columns=self.columns, copy=False)

    def fit(self, holdout_fraction: float = 0.2) -> float:
        """Fit on the older push log, return AUC on the newest pushes."""
        ds = self.features.dataset
        logp = ds.push_log.sort_values("timestamp", kind="stable")
        rel = ds.push_candidates.set_index(["user_id", "message_id"])["relevance"]
        key = pd.MultiIndex.from_arrays([logp["user_id"], logp["message_id"]])
        relevance = rel.reindex(key).to_numpy(
            np.float32
        )  # NaN if the pushed message was not a candidate
        industry = (
            ds.push_messages.set_index("message_id")["industry"]
            .reindex(logp["message_id"])
            .astype(str)
            .to_numpy()
        )
        X = self.frame(
            self.features.user_positions(logp["user_id"].to_numpy(), what="push log user ids"),
            relevance,
            industry,
            logp["hour"].to_numpy(),
            logp["prior_pushes_today"].to_numpy(),
        )
        y = logp["opened"].to_numpy()
        cut = int((1 - holdout_fraction) * len(y))
        self.model = LightGBMModel(seed=self.seed, n_estimators=200).fit(
            X.iloc[:cut], y[:cut], categorical=["industry"]
        )
        p = self.model.predict_proba(X.iloc[cut:])[:, 1]
        auc = binary_metrics(y[cut:], p)["auc"]
        # Fatigue decay implied by the model: the same pushes as a second push of the day.
        sample = X.iloc[:cut].sample(min(cut, 20_000), random_state=self.seed)
        p0 = self.model.predict_proba(sample.assign(prior_pushes_today=0.0))[:, 1]
        p1 = self.model.predict_proba(sample.assign(prior_pushes_today=1.0))[:, 1]
        self.decay_ = float(np.clip(p1.mean() / max(p0.mean(), 1e-12), 0.05, 1.0))
        log.info("open model: holdout AUC %.4f, implied fatigue decay %.3f", auc, self.decay_)
        return auc

    def predict_hours(self, audience: PushAudience) -> np.ndarray:
        """Open probability with no prior push, shape (users, candidates, 24); 0 on padding."""
        n, m = audience.message_ids.shape
        out = np.zeros((n, m, HOURS), dtype=np.float64)
        chunk = max(1, 200_000 // (m * HOURS))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            k = (hi - lo) * m
            user = np.repeat(audience.user_pos[lo:hi], m)
            rel = audience.relevance[lo:hi].ravel()
            ind = audience.industry[lo:hi].ravel()
            X = self.frame(
                np.repeat(user, HOURS),
                np.repeat(rel, HOURS),
                np.repeat(ind, HOURS),
                np.tile(np.arange(HOURS), k),
                np.zeros(k * HOURS),
            )
            out[lo:hi] = self.model.predict_proba(X)[:, 1].reshape(hi - lo, m, HOURS)
        return out * audience.mask[:, :, None]


def push_audience(features: ConversionFeatures, *, max_users: int | None, seed: int):
    """Installed users (not 'potential') with candidates; a seeded sample when over ``max_users``."""
    ds = features.dataset
    cand = ds.push_candidates.merge(
        ds.push_messages[["message_id", "industry"]], on="message_id", how="left"
    )
    installed = features.user_ids[features.lifecycle != Lifecycle.POTENTIAL.value]
    users = np.intersect1d(installed, cand["user_id"].unique())
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    cand = cand[cand["user_id"].isin(users)].sort_values(
        ["user_id", "relevance"], ascending=[True, False]
    )
    slot = cand.groupby("user_id").cumcount().to_numpy()
    row = np.searchsorted(users, cand["user_id"].to_numpy())
    m = int(slot.max()) + 1 if len(slot) else 1
    n = len(users)
    message_ids = np.full((n, m), -1, dtype=np.int64)
    relevance = np.zeros((n, m), dtype=np.float32)
    industry = np.full((n, m), "", dtype=object)
    message_ids[row, slot] = cand["message_id"].to_numpy()
    relevance[row, slot] = cand["relevance"].to_numpy()
    industry[row, slot] = cand["industry"].astype(str).to_numpy()
    return PushAudience(
        user_pos=features.user_positions(users),
        user_ids=users,
        message_ids=message_ids,
        relevance=relevance,
        industry=industry.astype(str),
        mask=message_ids >= 0,
    )


def push_problem(
    audience: PushAudience, open_prob: np.ndarray, decay: float, settings: PushSettings
):
    industries = sorted(set(audience.industry[audience.mask].tolist()))
    share = {ind: settings.industry_min_share for ind in industries}
    if settings.industry_min_share * len(industries) > 1:
        raise ValueError(
            f"push.industry_min_share={settings.industry_min_share} for each of "
            f"{len(industries)} industries sums above 1; lower it"
        )
    industry = np.where(audience.mask, audience.industry, industries[0] if industries else "")
    return PushProblem(
        open_prob,
        industry,
        fatigue_cap=settings.fatigue_cap,
        min_gap=settings.min_gap,
        capacity=np.floor(settings.capacity_share * len(audience.user_ids)),
        industry_share=share,
        decay=decay,
        candidate_mask=audience.mask,
    )


def plan_push(features: ConversionFeatures, settings: PushSettings, *, seed: int) -> PushPlan:
    """Fit the open model, build the day's problem for the audience and solve it."""
    model = OpenModel(features, seed=seed)
    auc = model.fit()
    audience = push_audience(features, max_users=settings.max_users, seed=seed)
    problem = push_problem(audience, model.predict_hours(audience), model.decay_, settings)
    schedule = schedule_push(problem, time_limit_s=settings.time_limit_s, seed=seed)
    return PushPlan(audience=audience, schedule=schedule, decay=model.decay_, open_model_auc=auc)


def true_push_value(world, audience: PushAudience, pushes: pd.DataFrame) -> float:
    """Expected opens of a schedule under the world's true open probability and fatigue."""
    users = pushes["user"].to_numpy()
    return float(
        world.open_prob(
            audience.user_ids[users],
            audience.message_ids[users, pushes["message"].to_numpy()],
            pushes["hour"].to_numpy(),
            pushes["position"].to_numpy(),
        ).sum()
    )


def score_push_against_truth(world, plan: PushPlan, settings: PushSettings, *, seed: int):
    """Expected true opens of the platform's schedule and of the oracle's (solved on the truth)."""
    a = plan.audience
    n, m = a.message_ids.shape
    users = np.repeat(np.arange(n), m * HOURS)
    msgs = np.where(a.mask, a.message_ids, 0)
    true_p = (
        world.open_prob(
            a.user_ids[users],
            np.repeat(msgs.ravel(), HOURS),
            np.tile(np.arange(HOURS), n * m),
            np.zeros(n * m * HOURS, dtype=np.int64),
        ).reshape(n, m, HOURS)
        * a.mask[:, :, None]
    )
    oracle = schedule_push(
        push_problem(a, true_p, world.config.fatigue_decay, settings),
        time_limit_s=settings.time_limit_s,
        seed=seed,
    )
    return {
        "platform": true_push_value(world, a, plan.schedule.pushes),
        "oracle": true_push_value(world, a, oracle.pushes),
        "platform_pushes": len(plan.schedule.pushes),
        "oracle_pushes": len(oracle.pushes),
    }
