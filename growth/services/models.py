"""Models page: stored metrics, calibration on the holdout, CSDE domain attention."""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.modeling.features import ConversionFeatures
from growth.modeling.training import conversion_recalibration, reach_recalibration
from growth.services.session import Predictors
from growth.store import Store


def calibration_frame(predictors: Predictors, *, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table on the chronological holdout: per segment and probability bin,
    the mean predicted probability, the observed rate and the number of rows."""
    frame = predictors.features.exposure_frame()
    holdout = np.flatnonzero(predictors.holdout(frame))
    p = predictors.conversion.predict_proba(frame.rows(holdout))[:, 1]
    data = pd.DataFrame(
        {"segment": frame.segment[holdout], "p": p, "y": frame.y[holdout].astype(float)}
    )
    data = pd.concat([data.assign(segment="all"), data], ignore_index=True)
    data["bin"] = np.minimum((data["p"] * n_bins).astype(int), n_bins - 1)
    return (
        data.groupby(["segment", "bin"], as_index=False)
        .agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
        .sort_values(["segment", "bin"], ignore_index=True)
    )


def option_calibration_frame(predictors: Predictors) -> pd.DataFrame:
    """Conversion and redemption calibration per coupon option x lifecycle segment on the
    holdout: expected calibration error and observed/predicted ratio of the models'
    probabilities (before) and of the calibrated ones the coupon plan uses (after,
    cross-fitted: measured on rows the calibrator did not learn from).  ``quantity``
    says which: ``conversion``, or ``redemption`` (a threshold coupon's conversions
    that reach its threshold; no-threshold coupons always do)."""
    features, seed = predictors.features, predictors.seed
    frame = features.exposure_frame()
    holdout = predictors.holdout(frame)
    X = frame.rows(np.flatnonzero(holdout))
    p = predictors.conversion.predict_proba(X)[:, 1]
    both = (
        conversion_recalibration(features, frame, holdout, p, seed=seed),
        reach_recalibration(features, frame, holdout, X, predictors.basket, seed=seed),
    )
    return pd.concat([r.table.assign(quantity=r.quantity) for r in both], ignore_index=True)[
        ["quantity", *both[0].table.columns]
    ]


def uplift_scale_frame(predictors: Predictors) -> pd.DataFrame:
    """Per lifecycle segment, the platform's coupon effects on the randomised log over the
    model's (``beta`` and its ``se``; :mod:`growth.campaigns.coupons.uplift`), the factor they
    suggest and the one the coupon plan's value applies (1 where the nightly's
    ``stretch_effects`` is off).  Empty without fits (a run stored before them)."""
    if predictors.uplift is None:
        return pd.DataFrame(columns=["segment", "rows", "beta", "se", "factor", "applied"])
    scale = {} if predictors.calibrator is None else predictors.calibrator.uplift_scale
    fits = predictors.uplift[["segment", "rows", "beta", "se", "factor"]]
    return fits.assign(applied=[scale.get(str(s), 1.0) for s in fits["segment"]])


def stored_model_metrics(db: Store) -> pd.DataFrame:
    """Model metrics by run, model, domain, scene, segment and metric from the store's
    ``v_model_metrics`` (``scene`` is ``""`` on rows stored before scenes existed)."""
    return db.read("v_model_metrics")


def csde_available() -> bool:
    """Whether the CSDE predictor is registered."""
    from predictors.registry import predictor_names

    return "csde" in predictor_names("conversion")


def csde_attention(
    features: ConversionFeatures, *, seed: int = 0, max_rows: int = 20_000, epochs: int = 2
) -> pd.DataFrame:
    """Mean CSDE domain-attention weight (target, source, csde) per lifecycle segment.

    A small CSDE model is trained on (at most ``max_rows`` of) the world's raw
    exposure rows; the weights say how much each user's prediction relies on
    its own target-domain history, its source-domain history and the generated
    cross-domain embedding.
    """
    from predictors.registry import get_predictor, predictor_names

    if "csde" not in predictor_names("conversion"):
        raise LookupError("the CSDE predictor is not registered in predictors.registry.REGISTRY")
    frame = features.exposure_frame()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(frame.y), size=min(max_rows, len(frame.y)), replace=False))
    X = frame.rows(rows)  # only the sampled rows are built
    y = frame.y[rows]
    csde = get_predictor("csde")
    params = {**csde.tiny_params, "epochs": epochs, "seed": seed}
    model = csde(features.spec, **params).fit(X, y)
    weights = model.attention_weights(X)
    weights["segment"] = frame.segment[rows]
    table = weights.groupby("segment").mean()
    table["n"] = weights.groupby("segment").size()
    return table.reset_index()
