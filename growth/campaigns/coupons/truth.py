"""A coupon plan scored against the world's ground truth as it would play out.

Honest scoring: every plan (the platform's, the baselines, the oracle) is played
out on the world's true response under the campaign's budgets
(:func:`~growth.campaigns.coupons.playout.play_out`): coupon holders arrive in a
random order, each redemption charges its face value to every budget its coupon
draws on, a coupon is honoured only while those budgets can pay it, and what
could not be paid is lost.  The play-out is repeated over seeds (the same
arrivals for every plan) and reported as mean and standard deviation.

- ``platform``: the plan under test;
- ``random``: random targeting, ``best_single``: everyone gets the single option
  that plays out best (:mod:`~growth.campaigns.coupons.baselines`), both sized on
  the true expected costs under the same coverage floors and the oracle's
  effective budgets (the same chance rule), played out under the full budgets;
- ``oracle``: planned under the same settings on the true response, held to the
  same budgets by the same play-out and to the same chance rule (each budget
  kept with probability ``spend_confidence``; it knows the response, so its
  buffer covers only the redemption draws, not a model's miscalibration).

"% of oracle" is the per-seed ratio of a plan's honoured incremental conversions
to the oracle's, at the same budgets and arrivals.  ``all_paid_conversions`` is
the old figure: the plan's expected incremental conversions if every redemption
were paid, whatever it costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.baselines import random_targeting, single_option
from growth.campaigns.coupons.buffer import BudgetRisk
from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import Budget, CouponPlan, plan_coupons
from growth.campaigns.coupons.playout import Arrivals, PlayOut, play_out

DEFAULT_SEEDS = 20
"""Play-outs per plan: arrival seeds ``0 .. DEFAULT_SEEDS - 1``."""


def true_coupon_decision(world) -> CouponDecision:
    """The world's ground-truth response as a :class:`CouponDecision` (users-table order)."""
    truth = world.coupon_truth()
    users = world.dataset.users
    coupons = world.dataset.coupons.set_index("option_id").loc[world.option_ids]
    return CouponDecision(
        user_ids=np.asarray(truth.user_ids),
        segment=users["lifecycle"].astype(str).to_numpy(),
        option_ids=list(world.option_ids),
        option_types=coupons["type"].astype(str).tolist(),
        face_value=coupons["face_value"].to_numpy(np.float64),
        merchant_id=coupons["merchant_id"].fillna(-1).to_numpy(np.int64),
        conversion=truth.conversion,
        redemption=truth.redemption,
        gmv=truth.gmv,
    )


@dataclass(frozen=True)
class CouponTruthScore:
    """Plans played out on the truth (see the module docstring).

    ``plans``: one row per plan (``platform``, ``random``, ``best_single``,
    ``oracle``): users with a coupon, honoured incremental conversions (mean and
    sd over seeds), % of oracle (mean and sd of the per-seed ratio), incremental
    GMV, redemptions paid and lost, and ``all_paid_conversions`` (the old scoring).
    ``spend``: one row per plan and budget group: the budget, ``paid`` (mean),
    ``demand`` (mean spend had every redemption been paid), ``held`` (share of
    seeds whose demand stayed within the budget), ``worst_excess_pct`` and, for the
    platform and the oracle, the ``effective_budget`` their solver saw and the
    ``predicted_p_within`` (the plan's own P(spend <= budget); NaN for baselines).
    ``by_segment``: % of oracle per lifecycle segment (plans x segments).
    """

    plans: pd.DataFrame
    spend: pd.DataFrame
    by_segment: pd.DataFrame
    best_single_option: str
    seeds: tuple[int, ...]

    def pct_of_oracle(self, plan: str = "platform") -> float:
        """Mean over seeds of ``plan``'s honoured incremental conversions over the oracle's, in %."""
        return float(self.plans.loc[plan, "pct_of_oracle"])

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run (the nightly's ``truth`` key)."""
        return {
            "scoring": "played out: random arrival, honoured while every budget can pay",
            "seeds": len(self.seeds),
            "best_single_option": self.best_single_option,
            "plans": _records(self.plans.reset_index()),
            "spend": _records(self.spend),
            "pct_of_oracle_by_segment": {
                plan: {k: _num(v) for k, v in row.items()}
                for plan, row in self.by_segment.iterrows()
            },
        }


def _sized_like(budgets: Sequence[Budget], risk: Mapping[str, BudgetRisk]) -> list[Budget]:
    """The budgets a baseline fills: each cut to the oracle's effective budget, the margin
    that known spend needs to hold with the campaign's probability (no margin without one).

    Filled to the full expected budget a baseline would break it about half the time and
    count redemptions a plan held to the chance rule leaves on the table.
    """
    return [
        replace(b, amount=min(b.amount, risk[b.name].effective_budget)) if b.name in risk else b
        for b in budgets
    ]


def score_against_truth(
    world, plan: CouponPlan, *, n_seeds: int = DEFAULT_SEEDS
) -> CouponTruthScore:
    """The plan, random targeting, the best single option and the oracle, played out on the truth.

    Deterministic: the baselines are seeded by the world's seed, the play-outs by
    ``0 .. n_seeds - 1``.
    """
    campaign = plan.campaign
    truth = true_coupon_decision(world)
    if not np.array_equal(truth.user_ids, campaign.decision.user_ids):
        raise ValueError("the world's users and the decision's users are not in the same order")
    budgets, floors = campaign.budgets, campaign.settings.min_coverage
    seed = int(world.config.seed)
    arrivals = Arrivals.sample(truth.n_users, range(n_seeds))
    oracle = plan_coupons(truth, campaign.settings)  # the same chance rule, on known spend
    sized = _sized_like(budgets, oracle.risk)
    singles = [
        single_option(truth, sized, floors, k, seed=seed) for k in range(truth.value.shape[1])
    ]
    played = [play_out(truth, c, budgets, arrivals) for c in singles]
    best = int(np.argmax([p.value.mean() for p in played]))
    choices = {
        "platform": plan.choice,
        "random": random_targeting(truth, sized, floors, seed=seed),
        "best_single": singles[best],
        "oracle": oracle.choice,
    }
    outs = {name: play_out(truth, c, budgets, arrivals) for name, c in choices.items()}
    outs["best_single"] = played[best]
    return CouponTruthScore(
        plans=_plans_frame(truth, choices, outs),
        spend=_spend_frame(outs, {"platform": plan.risk, "oracle": oracle.risk}),
        by_segment=_segment_frame(outs),
        best_single_option=truth.option_ids[best + 1],
        seeds=arrivals.seeds,
    )


def _plans_frame(
    truth: CouponDecision, choices: dict[str, np.ndarray], outs: dict[str, PlayOut]
) -> pd.DataFrame:
    oracle = np.maximum(outs["oracle"].value, 1e-12)
    rows = {}
    for name, out in outs.items():
        ratio = 100.0 * out.value / oracle
        rows[name] = {
            "users_with_coupon": int((choices[name] >= 0).sum()),
            "incremental_conversions": out.value.mean(),
            "incremental_conversions_sd": out.value.std(ddof=1) if len(out.value) > 1 else 0.0,
            "pct_of_oracle": ratio.mean(),
            "pct_of_oracle_sd": ratio.std(ddof=1) if len(ratio) > 1 else 0.0,
            "incremental_gmv": out.gmv.mean(),
            "redemptions_paid": out.redeemed.mean(),
            "redemptions_lost": out.lost.mean(),
            "all_paid_conversions": truth.evaluate(choices[name])["incremental_conversions"],
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "plan"
    return frame


def _spend_frame(outs: dict[str, PlayOut], risks: dict[str, dict[str, BudgetRisk]]) -> pd.DataFrame:
    rows = []
    for name, out in outs.items():
        for g, b in enumerate(out.budgets):
            risk = risks.get(name, {}).get(b.name)
            demand = out.demand[:, g]
            excess = (
                100.0 * (demand / b.amount - 1.0)
                if b.amount > 0
                else np.where(demand > 0, np.inf, 0.0)
            )
            rows.append(
                {
                    "plan": name,
                    "budget_group": b.name,
                    "budget": b.amount,
                    "paid": out.paid[:, g].mean(),
                    "demand": demand.mean(),
                    "held": float((demand <= b.amount + 1e-9).mean()),
                    "worst_excess_pct": float(np.max(excess)),
                    "effective_budget": risk.effective_budget if risk else np.nan,
                    "predicted_p_within": risk.p_within if risk else np.nan,
                }
            )
    return pd.DataFrame(rows)


def _segment_frame(outs: dict[str, PlayOut]) -> pd.DataFrame:
    oracle = outs["oracle"]
    denom = np.maximum(oracle.value_by_segment.mean(axis=0), 1e-12)
    frame = pd.DataFrame(
        {name: 100.0 * out.value_by_segment.mean(axis=0) / denom for name, out in outs.items()},
        index=list(oracle.segments),
    ).T
    frame.index.name = "plan"
    return frame


def _num(v: Any) -> Any:
    """A JSON-safe scalar: numpy numbers as Python's, infinities and NaN as ``None``."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _num(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
