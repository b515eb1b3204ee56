"""Configuration of the nightly job (a TOML file or keyword arguments)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from growth.campaigns.settings import CouponSettings, InstallSettings, PushSettings
from growth.modeling.sampling import HOLDOUT_FRACTION, HOLDOUT_MIN_ROWS
from growth.paths import check_name, read_toml, scenario_path
from growth.store.runs import check_label

KIND = "nightly"
TRAINING_OPTIONS = {
    "predictor",
    "holdout_fraction",
    "holdout_min_rows",
    "max_train_rows",
    "max_source_rows",
    "torch_threads",
    "value_folds",
}
"""Fields of :class:`NightlyConfig` that are keyword arguments of ``train_models``."""
"""The ``kind`` of the nightly job's runs and of its lease."""


class NightlyConfig(BaseModel):
    """Everything one nightly run needs; ``scenario`` or ``data_dir`` says where data comes from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    campaign_date: dt.date = Field(default_factory=dt.date.today)
    campaign: str = Field(
        "default",
        description="campaign name (one run per date and campaign; part of file names): "
        "letters, digits, '_' and '-'",
    )
    operator: str = Field("nightly", description="who runs it (free text, no control characters)")
    scenario: Path | None = Field(
        Path("default"),
        description="world scenario: a name in <data root>/scenarios (growth.paths) or a TOML "
        "path relative to the working directory",
    )
    data_dir: Path | None = None
    n_users: int | None = Field(None, ge=10, description="overrides the scenario's n_users")
    seed: int | None = Field(None, ge=0, description="overrides the scenario's seed")
    predictor: str = Field(
        "auto",
        description="conversion model by name; auto: with source-domain features the "
        "cross-domain model of auto_challenger and lightgbm, each planned under the run's "
        "budgets, keeping the one whose plan's value estimated off-policy on the randomised "
        "holdout is higher (growth.campaigns.coupons.choice), else lightgbm",
    )
    auto_challenger: str = Field(
        "evidence",
        description="the cross-domain model auto trains beside lightgbm: evidence (the "
        "registered model with the best mean AUC on the target domain's decision scene in "
        "the store's newest benchmark run of at least two models, "
        "growth.modeling.selection.choose_cross_domain; csde without one) or a registered "
        "conversion model's name to pin it",
    )
    max_train_rows: int | None = Field(
        200_000,
        ge=0,
        description="a model that trains on a sample (the torch models) learns from a seeded "
        "sample of at most this many of the older exposures (0 or None: all); the holdout "
        "is always whole. 200,000 kept the demo under 5 minutes on 2 cores as measured "
        "(300,000: +1.2 points of the oracle, +60 s of CSDE; benchmarks/README.md)",
    )
    max_source_rows: int = Field(
        50_000,
        ge=0,
        description="the models also learn from a seeded sample of at most this many "
        "source-domain (payments app) exposures logged before the holdout (0: none): they "
        "help most where the shop knows little, and beyond this they cost training time",
    )
    torch_threads: int | None = Field(
        1,
        ge=1,
        description="torch threads while training and scoring (None: torch's default, all "
        "cores); LightGBM states its own thread count",
    )
    holdout_fraction: float = Field(
        HOLDOUT_FRACTION,
        gt=0.0,
        lt=0.5,
        description="the randomised holdout (what calibration, the spend buffer, the model "
        "choice and the off-policy estimates read) is the newest share of the decision "
        "scene's rows; the models learn from the older ones",
    )
    holdout_min_rows: int = Field(
        HOLDOUT_MIN_ROWS,
        ge=0,
        description="the holdout holds at least this many of the newest rows (at most half "
        "the log; 0: the share alone): a small log's share is too few rows to calibrate "
        "each coupon option x segment on (benchmarks/README.md, 'A holdout sized to the log')",
    )
    value_folds: int = Field(
        2,
        ge=0,
        le=10,
        description="the plan's value and spend are estimated cross-fitted over this many "
        "folds of the holdout's users: a plan calibrated without a fold is valued on that "
        "fold, so the rows that shaped a plan never judge it (0 or 1: in-sample, on the rows "
        "that also calibrated the plan, which flatters it; costs one scoring pass's "
        "calibration and one coupon solve per fold and candidate)",
    )
    stretch_effects: bool = Field(
        True,
        description="multiply the model's effects of the platform's coupons, per lifecycle "
        "segment, by the share the whole randomised log shows (at least 1) on the plan's "
        "value side (growth/campaigns/coupons/uplift.py): a model shrinks the effects it "
        "learns from few rows. The spend of the segments it moves the plan to is "
        "under-predicted as the effects were, which the buffer absorbs at the default "
        "spend_confidence 0.99 but not at 0.95 (benchmarks/README.md, 'The coupon effects "
        "the model shrinks'); the slopes are measured and reported either way",
    )
    allow_empty_plan: bool = Field(
        False,
        description="store a run whose plan decides nothing (no coupon under a positive "
        "budget, no push for an audience) and let it supersede the day's plan; without it "
        "such a run fails",
    )
    coupons: CouponSettings = Field(default_factory=CouponSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    install: InstallSettings = Field(default_factory=InstallSettings)

    def training_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`growth.modeling.training.train_models` it sets."""
        return self.model_dump(include=TRAINING_OPTIONS)

    @field_validator("predictor")
    @classmethod
    def _known_predictor(cls, value: str) -> str:
        from growth.modeling.selection import available_predictors  # names only: no torch

        names = available_predictors()
        if value not in names:
            raise ValueError(f"unknown predictor {value!r}; choose one of {names}")
        return value

    @field_validator("auto_challenger")
    @classmethod
    def _known_challenger(cls, value: str) -> str:
        from growth.modeling.selection import EVIDENCE, cross_domain_names  # names only

        names = [EVIDENCE, *cross_domain_names()]
        if value not in names:
            raise ValueError(f"unknown auto_challenger {value!r}; choose one of {names}")
        return value

    @field_validator("campaign")
    @classmethod
    def _campaign_name(cls, value: str) -> str:
        return check_name(value, "campaign")

    @field_validator("operator")
    @classmethod
    def _operator_label(cls, value: str) -> str:
        return check_label(value, "operator", 128)

    @field_validator("max_train_rows")
    @classmethod
    def _zero_is_no_cap(cls, value: int | None) -> int | None:
        return value or None  # TOML and the CLI have no None: 0 means the whole log

    @model_validator(mode="after")
    def _one_source(self) -> NightlyConfig:
        if self.data_dir is not None:
            self.scenario = None
        if self.scenario is None and self.data_dir is None:
            raise ValueError("give either scenario (simulated world) or data_dir (dataset files)")
        return self

    def check_sources(self) -> NightlyConfig:
        """Check, before any data is read, that the data source exists and parses: the
        scenario file (with the ``n_users``/``seed`` overrides) or the dataset folder.
        Raises ``ValueError``/``FileNotFoundError`` naming the field and the file."""
        if self.data_dir is not None:
            if not self.data_dir.is_dir():
                raise FileNotFoundError(f"data_dir {self.data_dir} is not a dataset folder")
            return self
        from growth.world.config import WorldConfig  # pydantic only: no data is generated

        path = scenario_path(self.scenario)
        overrides = {
            k: v for k, v in (("n_users", self.n_users), ("seed", self.seed)) if v is not None
        }
        try:
            WorldConfig.from_toml(path, **overrides)
        except ValidationError as exc:
            raise ValueError(f"scenario {path}: {exc}") from None
        return self

    @classmethod
    def from_overrides(cls, **overrides) -> NightlyConfig:
        """Defaults plus ``overrides`` (``"section.field"`` keys reach into a section)."""
        return cls.model_validate(apply_overrides({}, overrides))

    @classmethod
    def from_toml(cls, path: str | Path, **overrides) -> NightlyConfig:
        """Read a TOML file; keyword ``overrides`` (e.g. from the CLI) win over the file."""
        path = Path(path)
        data = apply_overrides(read_toml(path, "nightly config"), overrides)
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def apply_overrides(data: dict, overrides: dict) -> dict:
    """``data`` with every non-``None`` override set; ``"coupons.budget"`` sets a section field."""
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition(".")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[key] = value
    return data
