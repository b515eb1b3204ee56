"""A coupon plan's value and spend estimated off-policy on the randomised holdout.

The exposure log is a randomised trial (each impression's coupon option drawn by
the design, with a logged or constant propensity), and its newest rows are held
out from training (:func:`growth.modeling.sampling.chronological_split`).  A plan
gives each user one option; on a holdout row of user ``u`` the plan's arm is
``plan(u)`` and the baseline is ``none``.  :func:`predictors.off_policy.policy_estimates`
then estimates, with normal 95 % intervals from user-clustered standard errors
summed over the lifecycle segments (:func:`predictors.off_policy.cluster_se`):

- ``value``: incremental conversions over no coupon, the quantity the plan maximises;
- ``gmv``: incremental order value over no coupon;
- ``spend:<budget>``: the face value redeemed against each budget group (a redemption:
  the row converted and the coupon applied, its basket reaching any threshold).

Estimand: the plan's total over every user, each user's campaign being the mean
over the items the shop will show them (the ``candidates``), as the decision's
``conversion`` is.  A holdout row of user ``u`` in lifecycle segment ``s`` weighs
``N_s / (H_s n_u)``: ``N_s`` users in the segment, ``H_s`` of them with holdout rows,
``n_u`` rows of that user; so each segment is post-stratified to its size.

- ``dr`` (doubly robust): the model's prediction of the plan over every user's
  candidate items (the decision the plan was solved on) plus the holdout rows'
  IPS correction of the model's residuals under the plan's and the baseline's arms.
  It measures the plan on the items it was made for, and corrects the model where
  the log shows it wrong;
- ``ips`` / ``snips``: the plan's arms on the logged impressions alone.  They assume
  nothing of the model but measure the plan on the items users were shown in the
  past, not on the campaign's: a plan that matches a merchant's coupon to the users
  whose campaign shows that merchant's items is undervalued by them.

A spend no holdout row redeemed (a merchant's coupon the log never saw used on its items)
has IPS and SNIPS of 0 with per-row terms all 0; every estimator's interval then reaches
the bound the unseen redemptions allow (:func:`predictors.off_policy.unseen_events_bound`,
each row at most its arm's face value), instead of IPS's and SNIPS's zero width.  Where
no holdout row even holds the group's coupons under the plan (its users are all outside the
holdout), the log says nothing of that spend and the intervals reach the plan's most it could
be: every such coupon redeemed.

A segment with no holdout row (lost users' impressions are old) has no correction:
its part is the model's prediction, for IPS and SNIPS as well (``model_only_users``).

The plan is calibrated per option x segment on the same holdout
(:mod:`growth.modeling.recalibration`), so it picks the groups whose rows converted beyond
chance and valued on those rows it looks better than it is (about one standard error on
the chooser's worlds, ``benchmarks/README.md``).  The plan's estimates are therefore
cross-fitted (:func:`cross_fitted_value`): the holdout's users fall in folds, the models
are calibrated again without each fold, that decision is planned under the same settings
and valued on the fold's rows alone, and the folds' estimates are averaged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import Budget, CouponPlan, plan_coupons
from growth.campaigns.coupons.scoring import applied_with_reach, calibrate_reach
from growth.campaigns.settings import CouponSettings
from growth.data.schema import NO_COUPON
from growth.modeling.features import ExposureFrame
from growth.modeling.recalibration import GroupCalibrator
from growth.modeling.selection import counterfactual
from growth.modeling.training import TrainedModels
from predictors.basket import BasketSizeModel
from predictors.off_policy import Estimate, policy_estimates

LEVEL = 0.95
"""Confidence level of every plan estimate's interval."""

COUPON_PLAN = "coupons"
"""The ``plan`` name of the coupon plan's rows in ``plan_estimates``."""

VALUE, GMV = "value", "gmv"
"""Quantities of :func:`estimate_plan`; spend is ``spend:<budget name>``."""


@dataclass(frozen=True)
class HoldoutLog:
    """The holdout rows of one fitted model, as arrays (``r`` rows, ``K+1`` options in
    coupons-table order) and the per-arm predictions of that model."""

    user_pos: np.ndarray  # (r,) users-table position
    segment: np.ndarray  # (r,) lifecycle
    arm: np.ndarray  # (r,) coupons-table position of the logged option
    propensity: np.ndarray  # (r,)
    converted: np.ndarray  # (r,) 0/1
    gmv: np.ndarray  # (r,) order value (0 where none)
    cost: np.ndarray  # (r,) face value redeemed
    p: np.ndarray  # (r, K+1) calibrated P(convert) under each option, the threshold rule applied
    p_gmv: np.ndarray  # (r, K+1) expected order value
    p_cost: np.ndarray  # (r, K+1) expected face value redeemed
    option_ids: list[str]  # coupons-table order
    population: dict[str, int]  # users per segment
    face_value: np.ndarray | None = None  # (K+1,) a redemption's cost per option

    @cached_property
    def weights(self) -> np.ndarray:
        """Row weights ``N_s / (H_s n_u)`` (module docstring)."""
        rows_of_user = np.bincount(self.user_pos)[self.user_pos]
        w = np.zeros(len(self.user_pos))
        for s in np.unique(self.segment):
            mine = self.segment == s
            held = len(np.unique(self.user_pos[mine]))
            w[mine] = self.population.get(str(s), 0) / held / rows_of_user[mine]
        return w

    @property
    def none(self) -> int:
        return self.option_ids.index(NO_COUPON)


def holdout_log(models: TrainedModels) -> HoldoutLog:
    """The holdout of ``models`` with its conversion model's calibrated per-arm predictions."""
    return holdout_logs(models)[0]


def holdout_logs(models: TrainedModels) -> list[HoldoutLog]:
    """:func:`holdout_log` of ``models`` and of each of its value folds (each fold's rows
    through the calibrators fitted without them), the models predicting every row once."""
    if models.frame is None or models.holdout is None:
        raise ValueError("the trained models carry no holdout to estimate a plan's value on")
    parts = [(m.holdout, m.calibrator, m.reach_calibrator) for m in [models, *models.value_folds]]
    return model_holdout_logs(models.frame, models.conversion, models.basket, parts)


LogPart = tuple[np.ndarray, GroupCalibrator | None, GroupCalibrator | None]
"""Rows (a mask over the frame) and the (conversion, reach) calibrators of one holdout log."""


def model_holdout_logs(
    frame: ExposureFrame, conversion: Any, basket: BasketSizeModel, parts: list[LogPart]
) -> list[HoldoutLog]:
    """Per part: its rows of ``frame`` (rows, outcomes, propensities) with the
    ``conversion`` model's per-arm predictions through the part's calibrator (if any) and
    the ``basket`` model's reach through its reach calibrator, and basket, under the
    decision's rules (:mod:`growth.campaigns.coupons.scoring`): what :func:`estimate_plan`
    reads.  The models predict every row of the parts' union once (the costly step: every
    arm of every row)."""
    features = frame.features
    rows = np.flatnonzero(np.logical_or.reduce([mask for mask, _, _ in parts]))
    k1 = len(features.option_ids)
    predict = counterfactual(conversion, features, frame)
    p = np.column_stack([predict(rows, k) for k in range(k1)])  # (r, K+1)
    log_basket = basket.predict(frame.rows(rows))
    return [
        _holdout_log(frame, rows[mask[rows]], p[mask[rows]], log_basket[mask[rows]], basket, cal)
        for mask, *cal in parts
    ]


def _holdout_log(
    frame: ExposureFrame,
    rows: np.ndarray,
    p: np.ndarray,
    log_basket: np.ndarray,
    basket: BasketSizeModel,
    calibrators: list[GroupCalibrator | None],
) -> HoldoutLog:
    """The log of ``rows`` from the raw per-arm ``p`` and basket, through ``calibrators``."""
    features = frame.features
    calibrator, reach_calibrator = calibrators
    user, item, arm = frame.user_pos[rows], frame.item_pos[rows], frame.option_pos[rows]
    segment = frame.segment[rows]
    k1 = len(features.option_ids)
    if calibrator is not None:
        p = np.column_stack(
            [calibrator.apply(p[:, k], np.full(len(rows), k), segment) for k in range(k1)]
        )
    none = features.option_ids.index(NO_COUPON)
    options = np.arange(k1)
    neutral = features.inapplicable(item[:, None], options[None, :])
    p = np.where(neutral, p[:, [none]], p)  # rule: a coupon that cannot apply changes nothing
    reach = basket.reach_probability(log_basket[:, None], features.threshold[None, :])
    calibrate_reach(reach.T, options, segment, features, reach_calibrator)
    converts = applied_with_reach(p.T, reach.T, none=none).T  # 'none' where the threshold is missed
    if calibrator is not None:  # the value side's effects per segment
        converts = calibrator.stretch_uplift(converts, segment, options, none)
    applies = features.applicable(item[:, None], options[None, :])
    value = np.nan_to_num(frame.order_value[rows], nan=0.0)
    converted = frame.y[rows].astype(np.float64)
    logged_value = frame.order_value[rows]
    threshold = features.threshold[arm]
    at = np.arange(len(rows))
    reached = np.where(np.isfinite(logged_value), logged_value >= threshold, reach[at, arm])
    propensity = (
        np.full(len(rows), 1.0 / k1) if frame.propensity is None else frame.propensity[rows]
    )
    lifecycle, counts = np.unique(features.lifecycle, return_counts=True)
    return HoldoutLog(
        user_pos=user,
        segment=segment,
        arm=arm,
        propensity=propensity,
        converted=converted,
        gmv=converted * value,
        cost=features.face_value[arm] * converted * applies[at, arm] * reached,
        p=converts,
        p_gmv=converts * basket.expected_basket(log_basket)[:, None],
        p_cost=features.face_value[None, :] * p * applies * reach,
        option_ids=list(features.option_ids),
        population={str(s): int(c) for s, c in zip(lifecycle, counts, strict=True)},
        face_value=np.asarray(features.face_value, np.float64),
    )


def user_arms(decision: CouponDecision, choice: np.ndarray, option_ids: list[str]) -> np.ndarray:
    """(users,) coupons-table position of each user's option in ``choice`` (-1: ``none``)."""
    position = np.array([option_ids.index(o) for o in decision.option_ids[1:]], dtype=np.int64)
    choice = np.asarray(choice)
    return np.where(choice >= 0, position[np.maximum(choice, 0)], option_ids.index(NO_COUPON))


@dataclass(frozen=True)
class PlanValue:
    """Off-policy estimates of one plan: a row per quantity and estimator (``frame``).

    ``frame`` columns: ``quantity`` (``value``, ``gmv``, ``spend:<budget>``),
    ``estimator`` (``ips``, ``snips``, ``dr``), ``estimate``, ``lower``, ``upper``
    (``level`` interval), ``se``, ``n_rows`` and ``n_users`` (holdout rows and users),
    ``n_events`` (a spend's redemptions among the rows given the plan's arm; -1 for the
    contrasts ``value`` and ``gmv``).
    ``model_only_users``: users of segments the holdout lacks, whose part is the
    model's prediction (module docstring).
    """

    frame: pd.DataFrame
    model_only_users: int
    level: float = LEVEL
    folds: int = 0
    """Folds the estimates are cross-fitted over (:func:`cross_fitted_value`; 0: in-sample)."""

    def get(self, quantity: str = VALUE, estimator: str = "dr") -> pd.Series:
        """The row of ``quantity`` by ``estimator``."""
        row = self.frame.query("quantity == @quantity and estimator == @estimator")
        if row.empty:
            raise KeyError(f"no estimate of {quantity!r} by {estimator!r}")
        return row.iloc[0]

    def summary(self) -> dict[str, Any]:
        """JSON-safe: ``{quantity: {estimator: {estimate, lower, upper}}}`` and the method."""
        where = (
            f"cross-fitted over {self.folds} folds of the holdout's users"
            if self.folds
            else "in-sample (the rows that calibrated the plan value it: optimistic)"
        )
        out: dict[str, Any] = {
            "method": f"off-policy on the randomised holdout, {where}; normal intervals, "
            "user-clustered se",
            "folds": self.folds,
            "level": self.level,
            "model_only_users": self.model_only_users,
        }
        for r in self.frame.itertuples(index=False):
            out.setdefault(r.quantity, {})[r.estimator] = {
                "estimate": float(r.estimate),
                "lower": float(r.lower),
                "upper": float(r.upper),
                "n_rows": int(r.n_rows),
                **({"n_events": int(r.n_events)} if r.n_events >= 0 else {}),
            }
        return out


def _quantities(
    plan: CouponPlan, log: HoldoutLog, target: np.ndarray
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, Any, np.ndarray]]:
    """(name, outcome, predictions, target arms, baseline, direct-method per user) per quantity."""
    decision, choice = plan.campaign.decision, plan.choice
    users = np.arange(len(choice))
    picked = np.maximum(choice, 0)
    given = choice >= 0
    out = [
        (VALUE, log.converted, log.p, target, log.none, given * decision.value[users, picked]),
        (GMV, log.gmv, log.p_gmv, target, log.none, given * decision.gmv_value[users, picked]),
    ]
    option_of_row = choice[log.user_pos]
    for b in plan.campaign.budgets:
        mine = np.isin(option_of_row, b.options)
        in_budget = given & np.isin(choice, b.options)
        out.append(
            (
                spend_quantity(b),
                log.cost,
                log.p_cost,
                np.where(mine, target, log.none),
                None,
                in_budget * decision.cost[users, picked],
            )
        )
    return out


def spend_quantity(budget: Budget) -> str:
    """The quantity name of a budget group's spend."""
    return f"spend:{budget.name}"


def estimate_plan(plan: CouponPlan, log: HoldoutLog, *, level: float = LEVEL) -> PlanValue:
    """IPS, SNIPS and DR estimates (``level`` intervals) of the plan's value, GMV and spend
    per budget group on the holdout ``log`` (see the module docstring)."""
    arms = user_arms(plan.campaign.decision, plan.choice, log.option_ids)
    uncovered = ~np.isin(plan.campaign.decision.segment, np.unique(log.segment))
    rows = []
    for name, outcome, q, target, baseline, direct in _quantities(plan, log, arms[log.user_pos]):
        most, blind = None, 0.0  # a spend's row could cost at most its target's face value
        if baseline is None and log.face_value is not None:
            can = q[np.arange(len(target)), target] > 0
            most = np.where(can, log.face_value[target], 0.0)
            if not most.any():  # no holdout row holds the group's coupons: the log is blind
                blind = float(log.face_value[arms[direct > 0]].sum())
        estimates = policy_estimates(
            outcome,
            log.arm,
            log.propensity,
            target,
            predictions=q,
            baseline=baseline,
            clusters=log.user_pos,
            strata=log.segment,
            weights=log.weights,
            direct_total=float(direct.sum()),
            outcome_max=most,
            unseen_total=blind,
            level=level,
        )
        fill = float(direct[uncovered].sum())
        rows += [_row(name, e, 0.0 if e.estimator == "dr" else fill) for e in estimates.values()]
    return PlanValue(pd.DataFrame(rows), int(uncovered.sum()), level)


def cross_fit(
    settings: CouponSettings,
    folds: Iterable[tuple[CouponDecision, pd.DataFrame | None, HoldoutLog]],
) -> PlanValue:
    """Each fold's decision planned under ``settings`` (its buffers reading the fold's spend
    bias), valued on the fold's holdout log, the folds combined (:func:`cross_fitted_value`)."""
    return cross_fitted_value(
        [
            estimate_plan(plan_coupons(decision, settings, calibration=bias), log)
            for decision, bias, log in folds
        ]
    )


def cross_fitted_value(folds: list[PlanValue]) -> PlanValue:
    """One estimate from plans each valued on a fold of the holdout's users its own
    calibration never saw (:attr:`growth.modeling.training.TrainedModels.value_folds`).

    Each fold's estimate is of the whole population (its rows post-stratified to every
    segment's size), and the folds' rows are disjoint sets of users, so the mean is the
    estimate and its standard error ``sqrt(sum se_f^2) / F``; the interval is normal at
    the folds' level.  It values plans calibrated on ``(F-1)/F`` of the holdout, not the
    one calibrated on all of it, which on the tuning worlds was as good or better
    (``benchmarks/README.md``, "The plan-value estimates are optimistic"); in return no
    row that shaped a plan judges it.  The in-sample estimate, where the plan picks the
    groups whose holdout rows converted beyond chance, runs about one standard error high.
    """
    if not folds:
        raise ValueError("no fold estimates to cross-fit")
    keys = ["quantity", "estimator"]
    both = pd.concat([f.frame for f in folds], ignore_index=True)
    grouped = both.groupby(keys, sort=False)
    frame = grouped[["estimate"]].mean()
    frame["se"] = np.sqrt(grouped["se"].apply(lambda se: float(np.square(se).sum()))) / len(folds)
    half = NormalDist().inv_cdf(0.5 + folds[0].level / 2.0) * frame["se"]
    frame["lower"], frame["upper"] = frame["estimate"] - half, frame["estimate"] + half
    frame[["n_rows", "n_users"]] = grouped[["n_rows", "n_users"]].sum()
    frame["n_events"] = grouped["n_events"].sum().clip(lower=-1)  # -1: a contrast's
    columns = ["estimate", "lower", "upper", "se", "n_rows", "n_users", "n_events"]
    return PlanValue(
        frame[columns].reset_index(),
        int(np.mean([f.model_only_users for f in folds])),
        folds[0].level,
        folds=len(folds),
    )


def _row(quantity: str, e: Estimate, fill: float) -> dict[str, Any]:
    return {
        "quantity": quantity,
        "estimator": e.estimator,
        "estimate": e.value + fill,
        "lower": e.lower + fill,
        "upper": e.upper + fill,
        "se": e.se,
        "n_rows": e.n_rows,
        "n_users": e.n_clusters,
        "n_events": e.n_events,
    }


def value_difference(
    plans: tuple[CouponPlan, CouponPlan],
    logs: tuple[HoldoutLog, HoldoutLog],
    *,
    level: float = LEVEL,
) -> Estimate:
    """DR estimate of ``plans[0]``'s incremental conversions minus ``plans[1]``'s on the holdout.

    One paired contrast on the same rows (target: the first plan's arms, baseline:
    the second's), so the noise both plans share cancels; the direct method is the
    two models' mean prediction (over every user's candidate items, corrected on the
    holdout rows), so neither model's own optimism favours its plan.
    """
    return value_differences(plans, logs, level=level)["dr"]


def value_differences(
    plans: tuple[CouponPlan, CouponPlan],
    logs: tuple[HoldoutLog, HoldoutLog],
    *,
    level: float = LEVEL,
) -> dict[str, Estimate]:
    """The paired contrast of :func:`value_difference` by every estimator (IPS, SNIPS, DR)."""
    a, b = logs
    if not np.array_equal(a.user_pos, b.user_pos) or not np.array_equal(a.arm, b.arm):
        raise ValueError("the two plans' holdout logs are not the same rows")
    arms = [user_arms(p.campaign.decision, p.choice, a.option_ids)[a.user_pos] for p in plans]
    value = sum(p.campaign.decision.value for p in plans) / 2.0  # (users, K) mean prediction
    users = np.arange(value.shape[0])
    given = [(p.choice >= 0) * value[users, np.maximum(p.choice, 0)] for p in plans]
    return policy_estimates(
        a.converted,
        a.arm,
        a.propensity,
        arms[0],
        predictions=(a.p + b.p) / 2.0,
        baseline=arms[1],
        clusters=a.user_pos,
        strata=a.segment,
        weights=a.weights,
        direct_total=float(given[0].sum() - given[1].sum()),
        level=level,
    )


def plan_estimate_rows(value: PlanValue, plan: str = COUPON_PLAN) -> pd.DataFrame:
    """Rows of the store's ``plan_estimates`` for one plan's estimates."""
    columns = ["quantity", "estimator", "estimate", "lower", "upper", "n_rows", "n_users"]
    events = value.frame["n_events"].astype("Int64")
    return value.frame[columns].assign(n_events=events.where(events >= 0), plan=plan)
