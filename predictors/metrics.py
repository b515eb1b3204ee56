"""Evaluation metrics, overall and by group (lifecycle segment, domain, scene)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-mass bins, weighted by bin size."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(y)))
    return float(sum(len(b) * abs(y[b].mean() - p[b].mean()) for b in bins if len(b)) / len(y))


def qini_coefficient(y: np.ndarray, treated: np.ndarray, uplift: np.ndarray) -> float:
    """Area between the Qini curve of ``uplift`` and random targeting, per treated row.

    Rows (treated and control, from a randomised experiment) are ranked by
    predicted ``uplift``; the Qini curve at each cut is the treated conversions
    minus the control conversions scaled to the treated count,
    ``Y_t - Y_c * N_t / N_c``.  Its mean height above the straight line to the
    final value, divided by the number of treated rows, is larger for a model
    that ranks by true incremental effect better (0: no better than random).
    NaN without both groups.
    """
    y = np.asarray(y, dtype=np.float64)
    treated = np.asarray(treated, dtype=bool)
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    if n_t == 0 or n_c == 0:
        return float("nan")
    order = np.argsort(-np.asarray(uplift, dtype=np.float64), kind="stable")
    t, yy = treated[order], y[order]
    cum_t, cum_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(yy * t), np.cumsum(yy * ~t)
    curve = y_t - y_c * np.divide(cum_t, cum_c, out=np.zeros(len(y)), where=cum_c > 0)
    share = np.arange(1, len(y) + 1) / len(y)
    return float(np.mean(curve - share * curve[-1]) / n_t)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC (NaN when one class only), log loss, calibration error, positive rate, count."""
    y = np.asarray(y)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    both = 0 < y.sum() < len(y)
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "logloss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "n": float(len(y)),
    }


def segment_metrics(y: np.ndarray, p: np.ndarray, segments: np.ndarray) -> pd.DataFrame:
    """Long frame ``segment, metric, value`` for ``all`` and every segment present."""
    table = metrics_by(y, p, {"segment": segments})
    return table.drop(columns="by").rename(columns={"group": "segment"})


def metrics_by(y: np.ndarray, p: np.ndarray, groups: Mapping[str, Any]) -> pd.DataFrame:
    """Long frame ``by, group, metric, value``: all rows (``by = group = "all"``), then every
    value of every grouping in ``groups`` (a name -> one label per row, e.g. ``domain``,
    ``scene``, ``lifecycle``), in sorted order.

    >>> table = metrics_by([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.4], {"domain": ["s", "s", "t", "t"]})
    >>> table[table.metric == "auc"][["by", "group", "value"]].to_numpy().tolist()
    [['all', 'all', 1.0], ['domain', 's', 1.0], ['domain', 't', 1.0]]
    """
    y, p = np.asarray(y), np.asarray(p)
    masks = [("all", "all", np.ones(len(y), dtype=bool))]
    for by, labels in groups.items():
        labels = np.asarray(labels).astype(str)
        if labels.shape != y.shape:
            raise ValueError(f"grouping {by!r} has {labels.shape[0]} labels for {len(y)} rows")
        masks += [(by, name, labels == name) for name in sorted(set(labels))]
    rows = [
        {"by": by, "group": name, "metric": metric, "value": value}
        for by, name, mask in masks
        for metric, value in binary_metrics(y[mask], p[mask]).items()
    ]
    return pd.DataFrame(rows)


def target_feature_ablation(model: Any, X: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """AUC, log loss, ... (:func:`binary_metrics`) of a translation model on ``(X, y)`` scored
    with the real target features, with them removed and with them generated, one row each
    (index ``target_features``).

    The evaluation of CSDE-cycle's source paper (0.6494 / 0.6056 / 0.6293 AUC there): how
    much of what the target features give the model the generated ones recover.  ``model``
    has ``target_feature_scores(X, how)``
    (:meth:`predictors.models.csde_cycle.CSDECycleModel.target_feature_scores`).
    """
    rows = {
        how: binary_metrics(y, model.target_feature_scores(X, how))
        for how in ("real", "removed", "generated")
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("target_features")
