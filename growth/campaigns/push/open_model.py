"""The rows of the push open-rate model, built from the push log and the audience.

A row is a user's encoded features (token shares left out, sequence lengths
kept) joined with the message's relevance and industry, the hour, the pushes
the user already received that day and what the log says of the user
(:mod:`growth.campaigns.push.history`: active hours from the opens and from the
app activity in the exposure log, open rate, industry affinity, each shrunk to
the lifecycle segment), so a predicted open rate is
per user x message x hour.  The model itself is the registered
:class:`~predictors.open_rate.OpenRateModel`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.push.audience import HOURS, PushAudience
from growth.campaigns.push.history import (
    HISTORY_COLUMNS,
    ActivityHours,
    HistoryPriors,
    PushHistory,
    activity_hours,
)
from growth.modeling.features import ConversionFeatures
from predictors.features import FeatureSpec
from predictors.metrics import binary_metrics
from predictors.open_rate import OpenRateModel
from predictors.scoring import join_rows

log = logging.getLogger(__name__)

PUSH_COLUMNS = ("relevance", "industry", "hour", "prior_pushes_today", *HISTORY_COLUMNS)
METRIC_COLUMNS = ("auc", "logloss", "ece", "positive_rate", "mean_predicted", "n")


def holdout_metrics(
    y: np.ndarray, p: np.ndarray, segment: np.ndarray, hour: np.ndarray
) -> pd.DataFrame:
    """Open-model metrics on held-out pushes: overall, by lifecycle segment and by hour.

    One row per group (``by`` in ``all``, ``segment``, ``hour``; ``group`` its
    name): AUC, log loss, calibration error, observed open rate,
    mean prediction and count.
    """
    y, p = np.asarray(y), np.asarray(p, np.float64)
    groups = [("all", "all", np.ones(len(y), bool))]
    groups += [("segment", s, segment == s) for s in sorted(set(np.asarray(segment, str)))]
    groups += [("hour", str(h), hour == h) for h in range(HOURS) if (hour == h).any()]
    rows = []
    for by, name, mask in groups:
        m = binary_metrics(y[mask], p[mask])
        rows.append({"by": by, "group": name, **m, "mean_predicted": float(p[mask].mean())})
    return pd.DataFrame(rows, columns=["by", "group", *METRIC_COLUMNS])


class OpenRateRows:
    """Builds open-rate model rows: the users' columns plus :data:`PUSH_COLUMNS`.

    User categoricals enter as their codes (numeric); ``industry`` is a
    categorical code of the push messages' sorted industries.  :meth:`fit`
    leaves :attr:`history` (the whole log's) for scoring the day.
    """

    def __init__(self, features: ConversionFeatures, priors: HistoryPriors | None = None) -> None:
        self.features = features
        self.priors = priors or HistoryPriors()
        self.history: PushHistory | None = None
        cols = [c for c in features.user_table.columns if "__" not in c or c.endswith("__len")]
        self.users = features.user_table[cols]
        industries = features.dataset.push_messages["industry"].astype(str)
        self.industries = sorted(industries.unique())
        history = dict.fromkeys(HISTORY_COLUMNS, np.ones(1))
        probe = self.rows(np.zeros(1, np.int64), [0.0], self.industries[:1], [0], [0], history)
        domains = {**dict.fromkeys(cols, "user"), **dict.fromkeys(PUSH_COLUMNS, "push")}
        self.spec = FeatureSpec.infer(probe, domains, categorical=["industry"]).fit(probe)

    def industry_code(self, industry) -> np.ndarray:
        """Codes of industry labels in :attr:`industries`; -1 for an unknown one (padding)."""
        return pd.Index(self.industries).get_indexer(np.asarray(industry, dtype=str))

    def context(self, relevance, industry, hour, prior, history) -> pd.DataFrame:
        """float32 push columns of aligned arrays and :data:`HISTORY_COLUMNS` (``history``)."""
        values = (relevance, self.industry_code(industry), hour, prior)
        columns = dict(zip(PUSH_COLUMNS, values, strict=False))
        columns.update({name: history[name] for name in HISTORY_COLUMNS})
        return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in columns.items()})

    def rows(self, user_pos, relevance, industry, hour, prior, history) -> pd.DataFrame:
        """Model rows of aligned user positions, push columns and history columns."""
        return join_rows(
            self.users, user_pos, self.context(relevance, industry, hour, prior, history)
        )

    def _history(self, user_pos, hour, code, opened) -> PushHistory:
        """:class:`PushHistory` of logged pushes and the users' app activity (the exposure
        log's moments), segments from the users table."""
        return PushHistory(
            user_pos,
            hour,
            code,
            opened,
            segment=self.features.lifecycle,
            n_industries=len(self.industries),
            priors=self.priors,
            activity=self._activity_hours,
        )

    @functools.cached_property
    def _activity_hours(self) -> ActivityHours:
        """The users' active hours from the whole activity log, once for every history."""
        user_pos, hour = self._activity
        return activity_hours(user_pos, hour, segment=self.features.lifecycle, priors=self.priors)

    @functools.cached_property
    def _activity(self) -> tuple[np.ndarray, np.ndarray]:
        """(user positions, hours) of every logged impression, in either app."""
        exposures = self.features.dataset.exposures
        users = self.features.user_positions(
            exposures["user_id"].to_numpy(), what="exposure user ids"
        )
        return users, pd.to_datetime(exposures["timestamp"]).dt.hour.to_numpy()

    def _log_columns(self, push_log: pd.DataFrame) -> dict[str, np.ndarray]:
        """The columns of a push log in time order: user positions, message and moment, outcome."""
        ds = self.features.dataset
        logp = push_log.sort_values("timestamp", kind="stable")
        rel = ds.push_candidates.set_index(["user_id", "message_id"])["relevance"]
        key = pd.MultiIndex.from_arrays([logp["user_id"], logp["message_id"]])
        industry = (
            ds.push_messages.set_index("message_id")["industry"]
            .reindex(logp["message_id"])
            .astype(str)
            .to_numpy()
        )
        return {
            "user": self.features.user_positions(
                logp["user_id"].to_numpy(), what="push log user ids"
            ),
            "relevance": rel.reindex(key).to_numpy(np.float32),  # NaN: pushed without candidacy
            "industry": industry,
            "code": self.industry_code(industry),
            "hour": logp["hour"].to_numpy(),
            "prior": logp["prior_pushes_today"].to_numpy(),
            "opened": logp["opened"].to_numpy(),
        }

    def history_of(self, push_log: pd.DataFrame) -> PushHistory:
        """The :class:`PushHistory` of a push log (the dataset's schema)."""
        c = self._log_columns(push_log)
        return self._history(c["user"], c["hour"], c["code"], c["opened"])

    def fit(
        self, *, seed: int = 0, holdout_fraction: float = 0.2, **params: Any
    ) -> tuple[OpenRateModel, pd.DataFrame]:
        """Fit on the older push log; return the model and :func:`holdout_metrics` on the newest.

        ``params``: :class:`~predictors.open_rate.OpenRateConfig` fields other than the seed.

        Training rows see the user's earlier pushes, held-out rows the older
        log's history; :attr:`history` is then the whole log's.
        """
        c = self._log_columns(self.features.dataset.push_log)
        users, hour, code, y = c["user"], c["hour"], c["code"], c["opened"]
        cut = int((1 - holdout_fraction) * len(y))
        old, new = slice(None, cut), slice(cut, None)
        past = self._history(users[old], hour[old], code[old], y[old])

        def frame(part: slice, history: dict[str, np.ndarray]) -> pd.DataFrame:
            return self.rows(
                users[part],
                c["relevance"][part],
                c["industry"][part],
                hour[part],
                c["prior"][part],
                history,
            )

        train = frame(old, past.past_features(users[old], hour[old], code[old], y[old]))
        model = OpenRateModel(self.spec, seed=seed, **params).fit(train, y[old])
        held = frame(new, past.features(users[new], hour[new], code[new]))
        p = model.predict_proba(held)[:, 1]
        metrics = holdout_metrics(y[new], p, self.features.lifecycle[users[new]], hour[new])
        self.history = self._history(users, hour, code, y)
        auc = float(metrics["auc"].iloc[0])
        log.info("open model: holdout AUC %.4f, implied fatigue decay %.3f", auc, model.decay_)
        return model, metrics

    def predict_hours(self, model: OpenRateModel, audience: PushAudience) -> np.ndarray:
        """Open probability with no prior push, shape (users, candidates, 24); 0 on padding."""
        if self.history is None:
            raise RuntimeError("OpenRateRows.predict_hours needs fit() first (the log's history)")
        scorer = model.grouped_scorer(self.users)
        n, m = audience.message_ids.shape
        out = np.zeros((n, m, HOURS), dtype=np.float64)
        chunk = max(1, 200_000 // (m * HOURS))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            k = (hi - lo) * m
            user = np.repeat(np.repeat(audience.user_pos[lo:hi], m), HOURS)
            industry = np.repeat(audience.industry[lo:hi].ravel(), HOURS)
            hour = np.tile(np.arange(HOURS), k)
            history = self.history.features(user, hour, self.industry_code(industry))
            context = self.context(
                np.repeat(audience.relevance[lo:hi].ravel(), HOURS),
                industry,
                hour,
                np.zeros(k * HOURS),
                history,
            )
            p = scorer.rows(user, context).predict()
            out[lo:hi] = p.reshape(hi - lo, m, HOURS)
        return out * audience.mask[:, :, None]
