"""The rows of the push open-rate model, built from the push log and the audience.

A row is a user's encoded features (token shares left out, sequence lengths
kept) joined with the message's relevance and industry, the hour and the
pushes the user already received that day.  The model itself is the registered
:class:`~predictors.open_rate.OpenRateModel`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from growth.campaigns.push.audience import HOURS, PushAudience
from growth.modeling.features import ConversionFeatures
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.open_rate import OpenRateModel
from predictors.scoring import join_rows

log = logging.getLogger(__name__)

PUSH_COLUMNS = ("relevance", "industry", "hour", "prior_pushes_today")


class OpenRateRows:
    """Builds open-rate model rows: the users' columns plus :data:`PUSH_COLUMNS`.

    User categoricals enter as their codes (numeric); ``industry`` is a
    categorical code of the push messages' sorted industries.
    """

    def __init__(self, features: ConversionFeatures) -> None:
        self.features = features
        cols = [c for c in features.user_table.columns if "__" not in c or c.endswith("__len")]
        self.users = features.user_table[cols]
        industries = features.dataset.push_messages["industry"].astype(str)
        self.industries = sorted(industries.unique())
        probe = self.rows(np.zeros(1, np.int64), [0.0], self.industries[:1], [0], [0])
        domains = {**dict.fromkeys(cols, "user"), **dict.fromkeys(PUSH_COLUMNS, "push")}
        self.spec = FeatureSpec.infer(probe, domains, categorical=["industry"]).fit(probe)

    def context(self, relevance, industry, hour, prior) -> pd.DataFrame:
        """float32 push columns of aligned arrays (an unknown industry is code -1)."""
        code = pd.Index(self.industries).get_indexer(np.asarray(industry, dtype=str))
        return pd.DataFrame(
            {
                name: np.asarray(values, dtype=np.float32)
                for name, values in zip(PUSH_COLUMNS, (relevance, code, hour, prior), strict=True)
            }
        )

    def rows(self, user_pos, relevance, industry, hour, prior) -> pd.DataFrame:
        """Model rows of aligned user positions and push columns."""
        return join_rows(self.users, user_pos, self.context(relevance, industry, hour, prior))

    def fit(self, *, seed: int = 0, holdout_fraction: float = 0.2) -> tuple[OpenRateModel, float]:
        """Fit on the older push log; return the model and its AUC on the newest pushes."""
        ds = self.features.dataset
        logp = ds.push_log.sort_values("timestamp", kind="stable")
        rel = ds.push_candidates.set_index(["user_id", "message_id"])["relevance"]
        key = pd.MultiIndex.from_arrays([logp["user_id"], logp["message_id"]])
        relevance = rel.reindex(key).to_numpy(np.float32)  # NaN if pushed without candidacy
        industry = (
            ds.push_messages.set_index("message_id")["industry"]
            .reindex(logp["message_id"])
            .astype(str)
            .to_numpy()
        )
        users = self.features.user_positions(logp["user_id"].to_numpy(), what="push log user ids")
        X = self.rows(
            users, relevance, industry, logp["hour"].to_numpy(), logp["prior_pushes_today"]
        )
        y = logp["opened"].to_numpy()
        cut = int((1 - holdout_fraction) * len(y))
        model = OpenRateModel(self.spec, seed=seed).fit(X.iloc[:cut], y[:cut])
        auc = binary_metrics(y[cut:], model.predict_proba(X.iloc[cut:])[:, 1])["auc"]
        log.info("open model: holdout AUC %.4f, implied fatigue decay %.3f", auc, model.decay_)
        return model, auc

    def predict_hours(self, model: OpenRateModel, audience: PushAudience) -> np.ndarray:
        """Open probability with no prior push, shape (users, candidates, 24); 0 on padding."""
        scorer = model.grouped_scorer(self.users)
        n, m = audience.message_ids.shape
        out = np.zeros((n, m, HOURS), dtype=np.float64)
        chunk = max(1, 200_000 // (m * HOURS))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            k = (hi - lo) * m
            user = np.repeat(audience.user_pos[lo:hi], m)
            context = self.context(
                np.repeat(audience.relevance[lo:hi].ravel(), HOURS),
                np.repeat(audience.industry[lo:hi].ravel(), HOURS),
                np.tile(np.arange(HOURS), k),
                np.zeros(k * HOURS),
            )
            p = scorer.rows(np.repeat(user, HOURS), context).predict()
            out[lo:hi] = p.reshape(hi - lo, m, HOURS)
        return out * audience.mask[:, :, None]
