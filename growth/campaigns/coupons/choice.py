"""``auto``'s model choice by the value of each candidate's plan, estimated off-policy.

A model is worth what its plan is worth: each candidate conversion model (CSDE and
LightGBM when the data has a source domain) scores every user, its plan is solved
under the operator's real budgets and settings, and the two plans' incremental
conversions are compared on the randomised holdout by one paired doubly robust
contrast (:func:`~growth.campaigns.coupons.value.value_difference`).  The
challenger replaces the incumbent (the first candidate: ``auto``'s default
model, CSDE, unless LightGBM ranks the holdout's uplift clearly better,
:func:`growth.modeling.selection.choose_model`) when its plan's estimated value is
higher by more than :data:`CHOICE_Z` standard errors of that difference.  Every holdout score of the predictions (log loss, AUC, Qini) stays in
the metrics; the validation of this rule against them, on worlds not used to design
it, is ``benchmarks/bench_chooser.py`` (figures in ``benchmarks/README.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import CouponPlan, plan_coupons
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.campaigns.coupons.value import (
    HoldoutLog,
    PlanValue,
    estimate_plan,
    holdout_log,
    value_difference,
)
from growth.campaigns.settings import CouponSettings
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import TrainedModels
from predictors.off_policy import Estimate

log = logging.getLogger(__name__)

CHOICE_Z = 2.0
"""A challenger's plan must beat the incumbent's by more than this many standard errors of
the estimated difference to replace it.

The difference is unbiased but noisy: its standard error is many times the gap
between the two models' plans (figures in ``benchmarks/README.md``), so picking the
higher estimate follows the noise.  Within it the incumbent stays: ``auto``'s
default/challenger pick, CSDE on most worlds, whose plan was the better one on most of
the validation worlds.  The fall-back used to be the lower holdout log loss, but log
loss does not rank plans: on the small scenario's worlds (seeds 100-103, before issue
14's world change) LightGBM fitted the holdout better while its plans reached 46.8 % of
the oracle against CSDE's 66.8 %.  z = 0 (the higher estimate) was tried: it did better
on the tuning worlds (7 of 10 against 5 of 10) and worse on the report worlds (14 of 30
against 20 of 30), so 2 stays (``benchmarks/README.md``, "auto chooses by the plan's
estimated value")."""


@dataclass
class Candidate:
    """One model's decision, plan and off-policy estimates."""

    models: TrainedModels
    decision: CouponDecision
    plan: CouponPlan
    log: HoldoutLog
    value: PlanValue

    @property
    def name(self) -> str:
        return self.models.predictor


@dataclass
class PlanChoice:
    """The chosen candidate, every candidate, and the comparisons behind the choice."""

    chosen: Candidate
    candidates: list[Candidate]
    reasons: list[str] = field(default_factory=list)
    differences: dict[str, Estimate] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-safe: the rule, each candidate's DR value estimate, the comparisons."""
        return {
            "criterion": f"estimated plan value (DR, holdout), {CHOICE_Z:g} se; else "
            "auto's default",
            "chosen": self.chosen.name,
            "why": "; ".join(self.reasons),
            "plan_value": {
                c.name: {k: float(v) for k, v in c.value.get().items() if k in _FIELDS}
                for c in self.candidates
            },
        }


_FIELDS = ("estimate", "lower", "upper")


def candidate(
    models: TrainedModels, decision: CouponDecision, settings: CouponSettings
) -> Candidate:
    """Plan ``decision`` under ``settings`` and estimate the plan on ``models``' holdout."""
    plan = plan_coupons(decision, settings, calibration=models.calibration)
    held = holdout_log(models)
    return Candidate(models, decision, plan, held, estimate_plan(plan, held))


def score_candidates(
    features: ConversionFeatures,
    models: TrainedModels,
    *,
    progress: bool = False,
    torch_threads: int | None = None,
) -> list[CouponDecision]:
    """Each candidate's calibrated :class:`CouponDecision`, in ``models.candidates()`` order."""
    return [
        predicted_coupon_decision(
            features,
            m.conversion,
            m.basket,
            progress=progress,
            torch_threads=torch_threads,
            calibrator=m.calibrator,
            reach_calibrator=m.reach_calibrator,
        )
        for m in models.candidates()
    ]


def plan_candidates(
    models: TrainedModels, decisions: list[CouponDecision], settings: CouponSettings
) -> PlanChoice:
    """Plan each candidate's decision under ``settings`` and choose (:func:`choose_plan`)."""
    pairs = zip(models.candidates(), decisions, strict=True)
    return choose_plan([candidate(m, d, settings) for m, d in pairs])


def choose_plan(candidates: list[Candidate], *, z: float = CHOICE_Z) -> PlanChoice:
    """The candidate whose plan has the higher estimated value, by more than ``z`` standard
    errors; within the noise the incumbent, the first candidate (:data:`CHOICE_Z`).

    Each challenger in turn is compared with the current choice by
    :func:`~growth.campaigns.coupons.value.value_difference`.
    """
    if not candidates:
        raise ValueError("no candidate plans to choose from")
    best = candidates[0]
    choice = PlanChoice(best, candidates, [f"{best.name} first (auto's default)"])
    for challenger in candidates[1:]:
        diff = value_difference((challenger.plan, best.plan), (challenger.log, best.log))
        choice.differences[f"{challenger.name} - {best.name}"] = diff
        wins = diff.value > z * diff.se
        choice.reasons.append(
            f"{challenger.name}'s plan {diff.value:+.1f} +- {diff.se:.1f} (se) incremental "
            f"conversions vs {best.name}'s: " + ("chosen" if wins else "kept " + best.name)
        )
        if wins:
            best = challenger
    choice.chosen = best
    if len(candidates) > 1:
        log.info("auto: %s chosen by estimated plan value (%s)", best.name, choice.reasons)
    return choice
