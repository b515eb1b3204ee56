"""What an operator sets for each campaign: coupon budgets, push limits, the acquisition budget.

Plain pydantic models, so validating a config reads no data and imports no model
or solver: a wrong setting (a share above 1, an unknown segment or method, an
infinite budget) is refused before the job reads anything.

>>> CouponSettings(min_coverage={"new": 0.2}).min_coverage
{'new': 0.2}
>>> CouponSettings(min_coverage={"new": 1.5})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for CouponSettings
min_coverage
  Value error, min_coverage['new'] = 1.5 is not a share in [0, 1] ...
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from growth.data.schema import COUPON_TYPES, LIFECYCLES, NO_COUPON

OPTION_TYPES: tuple[str, ...] = tuple(t for t in COUPON_TYPES if t != NO_COUPON)
"""Coupon types an operator can cap (every type but the control)."""
COUPON_METHODS: tuple[str, ...] = ("auto", "lagrangian", "cpsat", "highs")
"""Coupon allocation methods (:func:`optimizers.coupons.allocate`)."""

_SETTINGS = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Unknown keys and NaN or infinite numbers are refused in every section."""
MAX_BUDGET = 1e12
"""The largest budget, in currency units: float64 sums of amounts this size keep cent
precision, and the LP solvers would read a larger right-hand side as no limit at all."""


class CouponSettings(BaseModel):
    """Coupon campaign: the platform's budget, merchants' budgets, coverage floors."""

    model_config = _SETTINGS

    budget: float = Field(
        20_000.0, ge=0.0, le=MAX_BUDGET, description="platform budget, currency units"
    )
    merchant_budget: float = Field(
        2_000.0, ge=0.0, le=MAX_BUDGET, description="budget each merchant funds for its own coupons"
    )
    type_budgets: dict[str, float] = Field(
        default_factory=dict,
        description="coupon type -> cap on its expected spend, e.g. {'red_packet': 8000}",
    )
    min_coverage: dict[str, float] = Field(
        default_factory=dict,
        description=f"lifecycle segment ({', '.join(LIFECYCLES)}) -> minimum share of its "
        "users with a coupon, in [0, 1]",
    )
    method: Literal[COUPON_METHODS] = Field(  # type: ignore[valid-type]
        "auto", description=" | ".join(COUPON_METHODS)
    )
    spend_confidence: float | None = Field(
        0.99,
        gt=0.0,
        lt=1.0,
        description="probability, in (0, 1), that each budget's random spend stays within it: "
        "the plan sees each budget less a buffer for spend's variance and the models' "
        "miscalibration (none: plan to the expected spend, no buffer). The buffer's model "
        "does not see how the plan's selection moves a merchant's spend, so the level it "
        "delivers on merchant budgets is lower: 0.99 is the smallest level at which every "
        "budget's expected true spend stayed within it on the tuning worlds "
        "(benchmarks/README.md, 'Users' logged activity as features')",
    )

    @field_validator("type_budgets")
    @classmethod
    def _known_types(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if name not in OPTION_TYPES:
                raise ValueError(f"type_budgets key {name!r} is not one of {OPTION_TYPES}")
            if not amount >= 0.0:  # also rejects NaN
                raise ValueError(f"type_budgets[{name!r}] must be >= 0, got {amount}")
            if amount > MAX_BUDGET:
                raise ValueError(f"type_budgets[{name!r}] must be <= {MAX_BUDGET:g}, got {amount}")
        return value

    @field_validator("min_coverage")
    @classmethod
    def _known_segments(cls, value: dict[str, float]) -> dict[str, float]:
        for segment, share in value.items():
            if segment not in LIFECYCLES:
                raise ValueError(
                    f"min_coverage key {segment!r} is not a lifecycle segment {LIFECYCLES}"
                )
            if not 0.0 <= share <= 1.0:
                raise ValueError(
                    f"min_coverage[{segment!r}] = {share} is not a share in [0, 1] "
                    "(the share of the segment's users that get a coupon)"
                )
        return value


class PushSettings(BaseModel):
    """Push campaign for one day."""

    model_config = _SETTINGS

    enabled: bool = True
    fatigue_cap: int = Field(2, ge=0)
    min_gap: int = Field(3, ge=1)
    capacity_share: float = Field(
        0.08, gt=0.0, le=1.0, description="hourly sending capacity as a share of users"
    )
    industry_min_share: float = Field(
        0.05, ge=0.0, le=1.0, description="minimum share of pushes for every industry"
    )
    max_users: int | None = Field(
        20_000, ge=1, description="push audience cap (a seeded sample of installed users)"
    )
    iterations: int = Field(
        200,
        ge=1,
        le=10_000,
        description="subgradient iterations of the large-audience schedule (its plan then "
        "does not depend on the machine's load; the time limit is a safety net)",
    )
    repair_every: int = Field(
        5,
        ge=1,
        le=10_000,
        description="the large-audience schedule repairs its Lagrangian solution into a "
        "schedule every this many iterations (and on the last): repair costs more than a step",
    )
    time_limit_s: float = Field(600.0, gt=0.0)


class InstallSettings(BaseModel):
    """Acquisition budget across channels."""

    model_config = _SETTINGS

    enabled: bool = True
    budget: float = Field(60_000.0, gt=0.0, le=MAX_BUDGET, description="daily acquisition budget")
    objective: str = Field("retained", pattern="^(installs|logins|retained)$")
    pareto_points: int = Field(12, ge=2, le=100)
