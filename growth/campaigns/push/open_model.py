"""The open-probability model of push messages, learnt from the push log."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from growth.campaigns.push.audience import HOURS, PushAudience
from growth.modeling.features import ConversionFeatures
from predictors.lgbm import LightGBMModel
from predictors.metrics import binary_metrics

log = logging.getLogger(__name__)


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
