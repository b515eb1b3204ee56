"""What a nightly run leaves beside its SQL rows: the models it planned with and its coupon scores.

The app plans on the same predictions as the nightly job: where a succeeded run
of the same world exists, it loads that run's models and scores instead of
training its own.  A run's folder, ``<data root>/artifacts/runs/<date>-<campaign>-run<id>-<random>/`` (its path
is in the run's summary)::

    manifest.json          predictor name, world fingerprint
    coupon_options.json    the coupon options of the scores, 'none' first
    conversion/            the chosen conversion model (the estimator's own save format)
    basket/                the basket-size model
    coupon_scores.parquet  every user's predicted conversion, redemption and GMV per option
    spend_calibration.parquet  the holdout's spend bias per option x segment (the buffer's)
    value_fold<k>/         per cross-fit fold of the holdout's users: the scores and spend
                           bias under the calibrators fitted without it (in the manifest), so the
                           app's plans are valued cross-fitted as the nightly's are

Models are saved by their estimators (weights and JSON, never pickles) and read
back through :func:`predictors.registry.load_model`.

>>> import tempfile
>>> import numpy as np
>>> from growth.campaigns.coupons.decision import CouponDecision
>>> d = CouponDecision(user_ids=np.array([7, 9]), segment=np.array(["new", "active"]),
...     option_ids=["none", "rp5"], option_types=["none", "red_packet"],
...     face_value=np.array([0.0, 5.0]), merchant_id=np.array([-1, -1]),
...     conversion=np.array([[0.1, 0.2], [0.3, 0.35]]), redemption=np.array([[0.0, 0.2],
...     [0.0, 0.35]]), gmv=np.array([[4.0, 8.0], [12.0, 14.0]]))
>>> folder = Path(tempfile.mkdtemp())
>>> write_scores(folder, d)
>>> again = read_scores(folder)
>>> again.option_ids, bool((again.conversion == d.conversion).all())
(['none', 'rp5'], True)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.modeling.recalibration import GroupCalibrator
from predictors.registry import load_model

MANIFEST = "manifest.json"
SCORES = "coupon_scores.parquet"
SPEND_CALIBRATION = "spend_calibration.parquet"
MATRICES = ("conversion", "redemption", "gmv")


@dataclass
class RunArtifacts:
    """The models and coupon scores of one run, as saved."""

    predictor: str  # the conversion model's registered name
    conversion: Any  # a fitted conversion estimator
    basket: Any  # the fitted basket-size estimator
    decision: CouponDecision
    world_fingerprint: str | None  # WorldConfig.fingerprint() of a simulated world
    calibrator: GroupCalibrator | None = None  # the conversion calibration the scores used
    reach_calibrator: GroupCalibrator | None = None  # the threshold reach's calibration
    value_folds: list[ValueFold] = field(default_factory=list)  # training's ``value_folds``
    calibration: pd.DataFrame | None = None  # the holdout's spend bias the plan's buffer read


@dataclass(frozen=True)
class ValueFold:
    """One fold of a plan's cross-fitted value (:func:`growth.modeling.training.holdout_folds`):
    the calibrators fitted without that fold's holdout users and the scores they give (None:
    not scored yet)."""

    calibrator: GroupCalibrator | None
    reach_calibrator: GroupCalibrator | None
    decision: CouponDecision | None = None
    calibration: pd.DataFrame | None = None  # the spend bias of these calibrators' predictions


def save_run_artifacts(
    folder: Path,
    *,
    predictor: str,
    conversion: Any,
    basket: Any,
    decision: CouponDecision,
    world_fingerprint: str | None,
    calibrator: GroupCalibrator | None = None,
    reach_calibrator: GroupCalibrator | None = None,
    value_folds: list[ValueFold] = (),
    calibration: pd.DataFrame | None = None,
) -> Path:
    """Write a run's models, scores and manifest into ``folder`` (replacing what is there)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    conversion.save(folder / "conversion")
    basket.save(folder / "basket")
    write_scores(folder, decision)
    write_spend_calibration(folder, calibration)
    manifest = {"predictor": predictor, "world_fingerprint": world_fingerprint}
    if calibrator is not None:
        manifest["calibrator"] = calibrator.to_json()
    if reach_calibrator is not None:
        manifest["reach_calibrator"] = reach_calibrator.to_json()
    manifest["value_folds"] = []
    for k, fold in enumerate(value_folds):
        (folder / f"value_fold{k}").mkdir()
        if fold.decision is not None:
            write_scores(folder / f"value_fold{k}", fold.decision)
        write_spend_calibration(folder / f"value_fold{k}", fold.calibration)
        manifest["value_folds"].append(
            {key: _to_json(getattr(fold, key)) for key in ("calibrator", "reach_calibrator")}
        )
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def load_run_artifacts(folder: Path) -> RunArtifacts:
    """Read back what :func:`save_run_artifacts` wrote; names the missing file when incomplete."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} is missing: not a complete run folder")
    manifest = json.loads(manifest_path.read_text())
    return RunArtifacts(
        predictor=str(manifest["predictor"]),
        conversion=load_model(folder / "conversion"),
        basket=load_model(folder / "basket"),
        decision=read_scores(folder),
        world_fingerprint=manifest.get("world_fingerprint"),
        calibrator=_calibrator(manifest, "calibrator"),
        reach_calibrator=_calibrator(manifest, "reach_calibrator"),
        value_folds=[
            ValueFold(
                _calibrator(fold, "calibrator"),
                _calibrator(fold, "reach_calibrator"),
                read_scores(folder / f"value_fold{k}")
                if (folder / f"value_fold{k}" / SCORES).is_file()
                else None,
                read_spend_calibration(folder / f"value_fold{k}"),
            )
            for k, fold in enumerate(manifest.get("value_folds", []))
        ],
        calibration=read_spend_calibration(folder),
    )


def write_spend_calibration(folder: Path, calibration: pd.DataFrame | None) -> None:
    """The spend bias per option x segment (:func:`growth.modeling.calibration.spend_calibration`)
    as a parquet table beside the scores; nothing without one."""
    if calibration is not None:
        calibration.reset_index().to_parquet(folder / SPEND_CALIBRATION, index=False)


def read_spend_calibration(folder: Path) -> pd.DataFrame | None:
    """What :func:`write_spend_calibration` wrote (None: a run that saved none)."""
    path = folder / SPEND_CALIBRATION
    if not path.is_file():
        return None
    return pd.read_parquet(path).set_index(["option_id", "segment"])


def _calibrator(manifest: dict, key: str) -> GroupCalibrator | None:
    """The calibrator saved under ``key`` (None: the run saved none)."""
    found = manifest.get(key)
    return None if found is None else GroupCalibrator.from_json(found)


def _to_json(calibrator: GroupCalibrator | None) -> dict | None:
    return None if calibrator is None else calibrator.to_json()


def write_scores(folder: Path, decision: CouponDecision) -> None:
    """The decision's matrices as one parquet table (a column per matrix and option)."""
    columns: dict[str, Any] = {"user_id": decision.user_ids, "segment": decision.segment}
    for matrix in MATRICES:
        values = getattr(decision, matrix)
        for k, option in enumerate(decision.option_ids):
            columns[f"{matrix}:{option}"] = values[:, k]
    options = pd.DataFrame(
        {
            "option_id": decision.option_ids,
            "type": decision.option_types,
            "face_value": decision.face_value,
            "merchant_id": decision.merchant_id,
        }
    )
    pd.DataFrame(columns).to_parquet(folder / SCORES, index=False)
    options.to_json(folder / "coupon_options.json", orient="records", indent=2)


def read_scores(folder: Path) -> CouponDecision:
    """The :class:`CouponDecision` written by :func:`write_scores`."""
    table = pd.read_parquet(folder / SCORES)
    options = pd.read_json(folder / "coupon_options.json", orient="records", dtype=False)
    ids = options["option_id"].astype(str).tolist()
    return CouponDecision(
        user_ids=table["user_id"].to_numpy(),
        segment=table["segment"].astype(str).to_numpy(),
        option_ids=ids,
        option_types=options["type"].astype(str).tolist(),
        face_value=options["face_value"].to_numpy(np.float64),
        merchant_id=options["merchant_id"].to_numpy(np.int64),
        **{m: table[[f"{m}:{o}" for o in ids]].to_numpy(np.float64) for m in MATRICES},
    )
