"""Choosing the conversion model: auto's candidates, the holdout Qini and the rule that picks one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from growth.data.schema import NO_COUPON
from growth.modeling.features import ConversionFeatures, ExposureFrame
from growth.modeling.sampling import sample_rows
from predictors.metrics import qini_coefficient
from predictors.registry import predictor_names

log = logging.getLogger(__name__)

AUTO = "auto"
"""Predictor name resolved per dataset by :func:`candidate_predictors` and the holdout."""

CROSS_DOMAIN_PREDICTOR = "csde"
"""The cross-domain model ``auto`` trains when the dataset has source-domain features and
no benchmark evidence names another (:func:`choose_cross_domain`)."""

EVIDENCE = "evidence"
"""``auto_challenger`` setting: the cross-domain model follows from benchmark metrics
(:func:`choose_cross_domain`)."""

EVIDENCE_METRIC = "auc"
"""Metric (higher is better; ties: lower ``logloss``) by which the evidence ranks models."""

FALLBACK_PREDICTOR = "lightgbm"
"""The tabular model ``auto`` always trains (alone when there is no source domain)."""

SELECTION_METRIC = "qini"
"""Holdout metric (segment ``all``, higher is better) by which ``auto`` picks its model.

The coupon plan ranks users by predicted *incremental* conversion, so ``auto``
compares models by how well they rank uplift on the randomised coupon holdout
(:func:`holdout_qini`) rather than by conversion log loss.
"""

SELECTION_FOLDS = 10
"""User folds of the holdout over which :func:`choose_model` measures the Qini difference's noise."""

SELECTION_Z = 2.0
"""A challenger replaces ``auto``'s default model only when its holdout Qini is higher by at
least this many standard errors of the paired per-fold difference (:func:`choose_model`)."""

QINI_MAX_ROWS = 300_000
"""Holdout rows (a seeded sample) :func:`holdout_qini` scores, to bound its cost at 1M users."""


def available_predictors() -> list[str]:
    """Every predictor name ``train_models`` accepts: ``auto`` and the registered conversion models."""
    return [AUTO, *predictor_names("conversion")]


def has_source_domain(features: ConversionFeatures) -> bool:
    """True when some user has a non-missing source-domain field (``src_*`` columns).

    Missing is NaN for numbers and NaN or ``""`` for strings (empty tags or sequences).
    Only the users table's fields count: a count derived from the log
    (:func:`~growth.modeling.features.logged_activity`) is not the payments app's profile.
    """
    users = features.dataset.users
    names = [f.name for f in features.spec.of_domain("source") if f.name in users]
    for name in names:
        column = users[name]
        present = column.notna()
        if not pd.api.types.is_numeric_dtype(column):
            present &= column.astype(str) != ""
        if present.any():
            return True
    return False


def candidate_predictors(
    predictor: str, features: ConversionFeatures, *, cross_domain: str = CROSS_DOMAIN_PREDICTOR
) -> list[str]:
    """The models to train: ``predictor`` itself, or for ``auto`` ``cross_domain`` and LightGBM.

    ``auto`` is default/challenger: with a source domain the cross-domain model
    (``cross_domain``: CSDE unless the job passes the one the benchmark evidence
    names, :func:`choose_cross_domain`) is the default and LightGBM the challenger,
    which replaces it only when it ranks uplift clearly better on the holdout
    (:func:`choose_model`); without a source domain there is nothing to transfer
    and LightGBM trains alone.  The first name returned is the default.
    """
    if predictor != AUTO:
        return [predictor]
    source = has_source_domain(features) and cross_domain in predictor_names()
    chosen = [cross_domain, FALLBACK_PREDICTOR] if source else [FALLBACK_PREDICTOR]
    log.info(
        "predictor auto -> %s (%s)",
        " vs ".join(chosen),
        "source-domain features present" if source else "no source-domain features",
    )
    return chosen


def cross_domain_names() -> list[str]:
    """The registered conversion models ``auto`` may train beside its fallback."""
    return [n for n in predictor_names("conversion") if n != FALLBACK_PREDICTOR]


@dataclass(frozen=True)
class CrossDomainChoice:
    """The cross-domain model ``auto`` trains, and the evidence it was chosen by."""

    name: str
    reason: str  # one sentence: where the name came from
    run_id: int | None = None  # the benchmark run read (None: no evidence used)
    metric: str | None = None
    value: float | None = None  # the chosen model's mean ``metric`` there
    scope: str | None = None  # "target scene <name>" or "target domain"

    def summary(self) -> dict[str, Any]:
        """JSON-safe form for the run summary."""
        return {
            "name": self.name,
            "reason": self.reason,
            "run_id": self.run_id,
            "metric": self.metric,
            "value": None if self.value is None else round(self.value, 5),
            "scope": self.scope,
        }


def choose_cross_domain(
    metrics: pd.DataFrame | None, decision_scene: str, *, run_id: int | None = None
) -> CrossDomainChoice:
    """The cross-domain model with the best benchmark AUC on the decision scene; else CSDE.

    ``metrics`` are one benchmark run's ``model_metrics`` rows (columns model, domain,
    scene, segment, metric, value).  Among :func:`cross_domain_names` the rule takes
    the target domain's ``decision_scene`` rows of segment ``all`` (none: the target
    domain's rows without a scene), averages each model's :data:`EVIDENCE_METRIC`
    over datasets and seeds and picks the highest (ties: lower mean log loss).  No
    such rows, or fewer than two models in ``metrics``: :data:`CROSS_DOMAIN_PREDICTOR`.
    """
    default = f"{CROSS_DOMAIN_PREDICTOR} is the default"
    if metrics is None or metrics.empty or metrics["model"].nunique() < 2:
        return CrossDomainChoice(
            CROSS_DOMAIN_PREDICTOR, f"{default}: no benchmark run of two models"
        )
    rows = metrics[
        metrics["model"].isin(cross_domain_names())
        & (metrics["domain"] == "target")
        & (metrics["segment"] == "all")
        & metrics["value"].notna()
    ]
    scene = rows[rows["scene"] == decision_scene]
    scope = f"target scene {decision_scene}"
    if scene.empty:
        scene, scope = rows[rows["scene"].fillna("") == ""], "target domain"
    table = scene.pivot_table(index="model", columns="metric", values="value", aggfunc="mean")
    if EVIDENCE_METRIC not in table:
        return CrossDomainChoice(
            CROSS_DOMAIN_PREDICTOR,
            f"{default}: benchmark run {run_id} has no {EVIDENCE_METRIC} of a cross-domain "
            f"model on the target domain",
            run_id=run_id,
        )
    keys = [EVIDENCE_METRIC] + (["logloss"] if "logloss" in table else [])
    ranked = table.dropna(subset=[EVIDENCE_METRIC]).sort_values(
        keys, ascending=[False] + [True] * (len(keys) - 1), kind="stable"
    )
    name, value = str(ranked.index[0]), float(ranked[EVIDENCE_METRIC].iloc[0])
    return CrossDomainChoice(
        name,
        f"best mean {EVIDENCE_METRIC} {value:.4f} on the {scope} in benchmark run {run_id} "
        f"(of {len(ranked)} cross-domain models)",
        run_id=run_id,
        metric=EVIDENCE_METRIC,
        value=value,
        scope=scope,
    )


@dataclass(frozen=True)
class HoldoutQini:
    """:func:`holdout_qini` on every sampled holdout row (``value``) and on each user fold."""

    value: float
    folds: np.ndarray  # (SELECTION_FOLDS,), NaN where a fold lacks an experiment


@dataclass
class FittedCandidate:
    """One conversion model fitted on the older rows and scored on the holdout."""

    name: str
    model: Any  # a registered conversion estimator
    metrics: pd.DataFrame
    n_train: int
    qini: HoldoutQini
    holdout_p: np.ndarray | None = None  # (holdout rows,) conversion probabilities
    others: pd.DataFrame | None = None  # metrics on the other domains' and scenes' newest rows


def choose_model(fitted: list[FittedCandidate]) -> tuple[FittedCandidate, str]:
    """The default (first) model unless a challenger ranks uplift clearly better; and why.

    A challenger wins when the mean of its per-fold Qini minus the current
    choice's exceeds :data:`SELECTION_Z` standard errors of that paired
    difference (the folds split the same holdout by user, so both models are
    compared on the same experiments).  A near tie keeps the default, because a
    holdout Qini difference inside its noise says nothing about which plan is
    better (the measurements behind the rule are in ``benchmarks/README.md``).
    """
    best, reasons = fitted[0], [f"{fitted[0].name} is the default"]
    for challenger in fitted[1:]:
        diff = challenger.qini.folds - best.qini.folds
        diff = diff[np.isfinite(diff)]
        if len(diff) < 2:
            reasons.append(f"{challenger.name}: too few holdout folds to compare")
            continue
        mean, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
        wins = mean > SELECTION_Z * se
        reasons.append(
            f"{challenger.name} Qini {mean:+.6f} +- {se:.6f} (se) vs {best.name}: "
            + ("clearly better, chosen" if wins else f"not {SELECTION_Z:g} se better")
        )
        if wins:
            best = challenger
    return best, "; ".join(reasons)


Counterfactual = Callable[[np.ndarray, int], np.ndarray]
"""``predict(rows, option)``: probabilities of exposure rows ``rows`` had ``option`` been shown."""


def counterfactual(
    model: Any, features: ConversionFeatures, frame: ExposureFrame
) -> Counterfactual:
    """:data:`Counterfactual` of a fitted conversion model: its grouped scorer (users
    encoded once) re-targets the logged rows to another coupon option."""
    scorer = model.grouped_scorer(features.user_frame, features.option_columns)

    def predict(rows: np.ndarray, option: int) -> np.ndarray:
        i = frame.item_pos[rows]
        logged = scorer.rows(
            frame.user_pos[rows], features.context_frame(i, frame.option_pos[rows])
        )
        other = features.context_frame(i, np.full(len(rows), option), options_only=True)
        return logged.predict_variants(np.arange(len(rows)), other)

    return predict


def holdout_qini(
    predict: Counterfactual,
    features: ConversionFeatures,
    frame: ExposureFrame,
    holdout: np.ndarray,
    p_holdout: np.ndarray,
    *,
    max_rows: int = QINI_MAX_ROWS,
    n_folds: int = SELECTION_FOLDS,
    seed: int = 0,
) -> HoldoutQini:
    """Treated-row-weighted mean Qini coefficient of the coupon options on the holdout.

    The exposure log's coupons are randomised, so for option ``k`` its rows and
    the 'none' rows form an experiment: rank both by the predicted uplift
    ``p(k) - p(none)`` of the same (user, item) and score the ranking with
    :func:`predictors.metrics.qini_coefficient`.  ``p_holdout`` are the model's
    probabilities of the holdout rows under their logged options (already
    computed for the holdout metrics); ``predict`` gives the other option of
    each pair (:func:`counterfactual`).  A merchant coupon on another merchant's
    item has uplift 0 by the scoring rule.  At most ``max_rows`` holdout rows
    (seeded sample) are used.  The same score on each of ``n_folds`` seeded
    user folds measures its noise (:func:`choose_model`).
    """
    none = features.option_ids.index(NO_COUPON)
    held = np.flatnonzero(holdout)
    idx = sample_rows(held, max_rows, seed=seed)
    u, i, t, y = frame.user_pos[idx], frame.item_pos[idx], frame.option_pos[idx], frame.y[idx]
    p_logged = np.asarray(p_holdout, dtype=np.float64)[np.searchsorted(held, idx)]
    user_fold = np.random.default_rng(seed).integers(0, n_folds, size=len(features.user_ids))
    fold = user_fold[u]
    control = t == none
    p_none = p_logged.copy()
    p_none[~control] = predict(idx[~control], none)
    experiments = []  # (rows, treated, uplift) per coupon option
    for k in range(len(features.option_ids)):
        rows = np.flatnonzero((t == k) | control)
        if k == none or not (t[rows] == k).any():
            continue
        p_k = p_logged[rows].copy()
        p_k[control[rows]] = predict(idx[rows[control[rows]]], k)
        uplift = p_k - p_none[rows]
        uplift[features.inapplicable(i[rows], np.full(len(rows), k))] = 0.0
        experiments.append((rows, t[rows] == k, uplift))

    def score(in_fold: np.ndarray | None) -> float:
        total, weight = 0.0, 0
        for rows, treated, uplift in experiments:
            keep = slice(None) if in_fold is None else in_fold[rows]
            n_treated = int(treated[keep].sum())
            if n_treated == 0 or n_treated == len(treated[keep]):
                continue
            total += qini_coefficient(y[rows][keep], treated[keep], uplift[keep]) * n_treated
            weight += n_treated
        return total / weight if weight else float("nan")

    return HoldoutQini(
        value=score(None), folds=np.array([score(fold == f) for f in range(n_folds)])
    )
