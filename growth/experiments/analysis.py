"""Analyse an experiment end to end: learn uplift, choose a learner, plan, value the plan.

:func:`analyse_experiment` splits the log (seeded) into training, validation and
test rows:

1. every learner (:mod:`growth.experiments.learners`) fits on the training rows, as
   does the cost model (the registry's LightGBM per arm, for p(conversion | arm)) and
   the outcome model the DR estimates use (a T-learner);
2. each learner plans the validation users (:func:`~growth.experiments.plan.plan_arms`,
   budgets scaled to their share of the log); the first learner stays chosen unless
   another's plan is worth more there by more than :data:`LEARNER_CHOICE_Z` standard
   errors of the paired DR difference (:func:`choose_learner`);
3. the chosen learner plans the test users, beside random targeting, the arm that was
   best for everyone on validation, and the control for everyone, all at the same
   budgets; each is valued and costed off-policy on the test rows (IPS, SNIPS, DR with
   intervals), rows no model learnt from and no choice was made on;
4. the plan for every user of the log at the full budgets, with its certificate.

Budgets are for the log's whole population; a plan for a share of it gets that
share of each budget.  Values are per user (multiply by the users for a total).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from growth.experiments.learners import (
    LEARNERS,
    FittedLearner,
    LearnerData,
    fit_learner,
    learner_names,
)
from growth.experiments.log import Experiment
from growth.experiments.plan import expected_cost, plan_arms, random_targeting, single_arm
from predictors.off_policy import Estimate, policy_estimates

LEARNER_CHOICE_Z = 2.0
"""A learner replaces the current choice only when its validation plan's DR value is higher
by more than this many standard errors of the paired difference (the rule of ``auto``'s
coupon chooser, :data:`growth.campaigns.coupons.choice.CHOICE_Z`).  On the simulated worlds'
logs the validation values' intervals are about five times the gaps between the learners'
plans, and taking the highest value chose worse plans than keeping the X-learner
(``benchmarks/README.md``, "Bring your own experiment")."""

BUDGET_FRACTIONS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
"""Budgets (as fractions of the operator's) of the value-vs-budget curve."""


@dataclass(frozen=True)
class ExperimentSettings:
    """What the operator sets: the total ``budget`` (currency, for all the log's users),
    the ``outcome`` to maximise, the ``learners`` to choose among, the training /
    validation / test ``split`` (fractions), the ``seed``, the interval ``level``."""

    budget: float
    outcome: str = "conversion"
    learners: tuple[str, ...] | None = (
        None  # None: LEARNERS, with ``t`` for ``t_lightgbm`` off conversion
    )
    split: tuple[float, float, float] = (0.5, 0.25, 0.25)
    seed: int = 0
    level: float = 0.95
    method: str = "auto"

    def __post_init__(self) -> None:
        if not np.isfinite(self.budget) or self.budget < 0:
            raise ValueError(f"budget must be a finite number >= 0, got {self.budget}")
        if len(self.split) != 3 or min(self.split) <= 0 or abs(sum(self.split) - 1) > 1e-9:
            raise ValueError(
                f"split must be three positive fractions summing to 1, got {self.split}"
            )
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")
        if self.learners is None:
            chosen = LEARNERS if self.outcome == "conversion" else ("x", "dr", "t")
            object.__setattr__(self, "learners", chosen)
        if not self.learners:
            raise ValueError("learners is empty; name at least one learner")
        binary_only = [n for n in self.learners if n.startswith("t_")]
        if binary_only and self.outcome != "conversion":
            raise ValueError(
                f"learner {binary_only[0]!r} predicts conversion only; for outcome "
                f"{self.outcome!r} use 't', 'x' or 'dr'"
            )
        unknown = [n for n in self.learners if n not in learner_names()]
        if unknown:
            raise ValueError(f"learner {unknown[0]!r} is unknown; learners: {learner_names()}")


@dataclass
class ExperimentReport:
    """What an analysis found; the frames are the rows the store keeps."""

    settings: ExperimentSettings
    chosen: str
    values: (
        pd.DataFrame
    )  # policy, split, estimator, budget, value(+lo/hi), spend(+lo/hi), uplift...
    arms: pd.DataFrame  # per arm: counts, costs, uplift on test (DR), predicted uplift, plan
    allocations: pd.DataFrame  # per user: arm, expected_uplift, expected_cost, conversion_prob
    curve: pd.DataFrame  # value vs budget: policy, budget, value, lo, hi, spend
    summary: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Split:
    exp: Experiment
    rows: np.ndarray  # positions in the log

    @property
    def share(self) -> float:
        return len(self.rows) / len(self.exp.log)

    @property
    def X(self) -> pd.DataFrame:
        return self.exp.features.iloc[self.rows].reset_index(drop=True)


def split_rows(n: int, split: Sequence[float], seed: int) -> list[np.ndarray]:
    """Seeded training / validation / test positions (sorted) of ``n`` rows."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(split)[:-1] * n).astype(int)
    return [np.sort(part) for part in np.split(order, cuts)]


class _Evaluator:
    """Values and costs plans on one split's rows with the models fitted on the training rows."""

    def __init__(
        self,
        part: _Split,
        y: np.ndarray,
        outcome_model: FittedLearner,
        conv_model: FittedLearner,
        level: float,
    ) -> None:
        exp, rows = part.exp, part.rows
        self.part, self.level = part, level
        self.y, self.arm, self.p = y[rows], exp.arm_index[rows], exp.propensity[rows]
        X = part.X
        self.mu = outcome_model.predict(X)
        self.conv = np.clip(conv_model.predict(X), 0.0, 1.0)
        self.cost = expected_cost(self.conv, exp.cost_per_conversion, exp.cost_per_treatment)
        conversion = exp.log["conversion"].to_numpy(dtype=np.float64)[rows]
        self.paid = (
            conversion * exp.cost_per_conversion[self.arm] + exp.cost_per_treatment[self.arm]
        )

    def rows(
        self, policy: str, target: np.ndarray, budget: float, truth: np.ndarray | None
    ) -> list[dict]:
        value = policy_estimates(
            self.y, self.arm, self.p, target, predictions=self.mu, level=self.level
        )
        spend = policy_estimates(
            self.paid, self.arm, self.p, target, predictions=self.cost, level=self.level
        )
        uplift = self.uplift(target)
        true = (
            None
            if truth is None
            else float(truth[self.part.rows][np.arange(len(target)), target].mean())
        )
        out = []
        for name, v in value.items():
            s = spend[name]
            out.append(
                {
                    "policy": policy,
                    "estimator": name,
                    "budget": budget,
                    "rows": len(target),
                    "value": v.value,
                    "value_lo": v.lower,
                    "value_hi": v.upper,
                    "spend": s.value * len(self.part.exp.log),
                    "spend_lo": s.lower * len(self.part.exp.log),
                    "spend_hi": s.upper * len(self.part.exp.log),
                    "uplift": uplift.value if name == "dr" else None,
                    "uplift_lo": uplift.lower if name == "dr" else None,
                    "uplift_hi": uplift.upper if name == "dr" else None,
                    "true_value": true,
                }
            )
        return out

    def uplift(self, target: np.ndarray) -> Estimate:
        """DR estimate of ``target``'s value over the control for everyone (paired rows)."""
        return policy_estimates(
            self.y, self.arm, self.p, target, predictions=self.mu, baseline=0, level=self.level
        )["dr"]

    def dr_value(self, target: np.ndarray) -> float:
        """DR estimate of ``target``'s value per row."""
        return self.difference(target).value

    def difference(self, target: np.ndarray, baseline: np.ndarray | None = None) -> Estimate:
        """DR estimate of ``target``'s value per row, less ``baseline``'s on the same rows."""
        return policy_estimates(
            self.y, self.arm, self.p, target, predictions=self.mu, baseline=baseline,
            level=self.level,
        )["dr"]  # fmt: skip


def _fit_models(
    exp: Experiment,
    train: _Split,
    y: np.ndarray,
    s: ExperimentSettings,
    stage: Callable[[str], None],
) -> tuple[dict[str, FittedLearner], FittedLearner, FittedLearner]:
    """The learners, the outcome model of the DR estimates and the conversion (cost) model."""
    rows = train.rows
    data = LearnerData.build(
        train.X,
        exp.arm_index[rows],
        y[rows],
        exp.propensity[rows],
        n_arms=exp.n_arms,
        categorical=exp.categorical,
    )
    learners = {}
    for name in s.learners:
        stage(f"fitting learner {name}")
        learners[name] = fit_learner(name, data, seed=s.seed)
    binary = data.binary
    outcome_name = "t_lightgbm" if binary else "t"
    outcome_model = learners.get(outcome_name) or fit_learner(outcome_name, data, seed=s.seed)
    if s.outcome == "conversion":
        return learners, outcome_model, outcome_model
    stage("fitting the conversion (cost) model")
    conv = exp.log["conversion"].to_numpy(dtype=np.float64)[rows]
    conv_data = LearnerData(
        data.X, data.table, data.spec, data.arm, conv, data.propensity, data.n_arms
    )
    return learners, outcome_model, fit_learner("t_lightgbm", conv_data, seed=s.seed)


def choose_learner(
    plans: dict[str, np.ndarray],
    difference: Callable[[np.ndarray, np.ndarray], Estimate],
    *,
    z: float = LEARNER_CHOICE_Z,
) -> tuple[str, list[str]]:
    """The learner whose plan to keep, and why: the first (the incumbent) unless a later one's
    plan is worth more by more than ``z`` standard errors of ``difference(plan, current)``
    (an estimate of the paired difference), each in turn against the current choice."""
    names = list(plans)
    if not names:
        raise ValueError("no learner plans to choose from")
    best, reasons = names[0], [f"{names[0]} first (the incumbent)"]
    for name in names[1:]:
        diff = difference(plans[name], plans[best])
        wins = diff.value > z * diff.se
        reasons.append(
            f"{name}'s plan {diff.value:+.5f} +- {diff.se:.5f} (se) per user against {best}'s: "
            + ("chosen" if wins else f"kept {best}")
        )
        best = name if wins else best
    return best, reasons


def _choose(
    learners: dict[str, FittedLearner],
    valid: _Evaluator,
    exp: Experiment,
    s: ExperimentSettings,
    truth: np.ndarray | None,
) -> tuple[str, list[str], list[dict], int]:
    """The learner kept by :func:`choose_learner` on the validation rows and why; the
    validation rows of every learner's plan; the best single arm."""
    rows: list[dict] = []
    plans = {}
    for name, model in learners.items():
        plans[name], _ = plan_arms(
            model.predict(valid.part.X),
            valid.cost,
            s.budget,
            exp.arm_ids,
            exp.budget,
            scale=valid.part.share,
            method=s.method,
        )
        rows += valid.rows(f"learner:{name}", plans[name], s.budget, truth)
    best, reasons = choose_learner(plans, valid.difference)
    arm_values = [
        valid.dr_value(
            single_arm(k, valid.cost, s.budget, exp.budget, scale=valid.part.share, seed=s.seed)
        )
        for k in range(1, exp.n_arms)
    ]
    return best, reasons, rows, 1 + int(np.argmax(arm_values))


def _test_policies(
    model: FittedLearner,
    test: _Evaluator,
    exp: Experiment,
    s: ExperimentSettings,
    best_arm: int,
    budget: float,
) -> dict[str, np.ndarray]:
    """Each compared policy's arm per test user at ``budget`` (scaled to the test share)."""
    share = test.part.share
    plan, _ = plan_arms(
        model.predict(test.part.X),
        test.cost,
        budget,
        exp.arm_ids,
        exp.budget,
        scale=share,
        method=s.method,
    )
    return {
        "plan": plan,
        "random": random_targeting(test.cost, budget, exp.budget, scale=share, seed=s.seed),
        "best_arm": single_arm(best_arm, test.cost, budget, exp.budget, scale=share, seed=s.seed),
        "control": np.zeros(len(test.part.rows), dtype=np.int64),
    }


def _arm_table(
    exp: Experiment, test: _Evaluator, mu_all: np.ndarray, target: np.ndarray, cost_all: np.ndarray
) -> pd.DataFrame:
    """Per arm: log counts, costs, DR uplift on the test rows, predicted uplift, the plan's use."""
    conversion = exp.log["conversion"].to_numpy()
    rows = []
    for k, arm in enumerate(exp.arm_ids):
        everyone = np.full(len(test.part.rows), k)
        up = test.uplift(everyone)
        mine = exp.arm_index == k
        rows.append(
            {
                "arm": arm,
                "control": k == 0,
                "rows": int(mine.sum()),
                "conversions": int(conversion[mine].sum()),
                "cost_per_conversion": float(exp.cost_per_conversion[k]),
                "cost_per_treatment": float(exp.cost_per_treatment[k]),
                "budget": float(exp.budget[k]) if np.isfinite(exp.budget[k]) else None,
                "uplift": up.value,
                "uplift_lo": up.lower,
                "uplift_hi": up.upper,
                "predicted_uplift": float((mu_all[:, k] - mu_all[:, 0]).mean()),
                "planned_users": int((target == k).sum()),
                "planned_cost": float(cost_all[target == k, k].sum()),
            }
        )
    return pd.DataFrame(rows)


def _curve(
    model: FittedLearner, test: _Evaluator, exp: Experiment, s: ExperimentSettings, best_arm: int
) -> pd.DataFrame:
    """DR value and spend of each policy at fractions of the budget, on the test rows."""
    rows = []
    for fraction in BUDGET_FRACTIONS:
        budget = s.budget * fraction
        for policy, target in _test_policies(model, test, exp, s, best_arm, budget).items():
            if policy == "control":
                continue
            r = next(r for r in test.rows(policy, target, budget, None) if r["estimator"] == "dr")
            rows.append(
                {k: r[k] for k in ("policy", "budget", "value", "value_lo", "value_hi", "spend")}
            )
    return pd.DataFrame(rows)


def analyse_experiment(
    exp: Experiment,
    settings: ExperimentSettings,
    *,
    truth: np.ndarray | None = None,
    stage: Callable[[str], None] | None = None,
) -> ExperimentReport:
    """Learn, choose, plan and value (see the module docstring).

    ``truth`` (simulated logs only): (rows, arms) true expected outcome of every row
    under every arm; each policy's true value on the rows it is valued on is reported
    beside the estimates (``true_value``).  ``stage`` is told each stage's name.
    """
    s, say = settings, stage or (lambda _: None)
    y = exp.outcome(s.outcome)
    train, valid, test = (_Split(exp, r) for r in split_rows(len(exp.log), s.split, s.seed))
    if min(len(train.rows), len(valid.rows), len(test.rows)) < exp.n_arms:
        raise ValueError(
            f"{len(exp.log)} rows are too few to split into training, validation and test"
        )
    learners, outcome_model, conv_model = _fit_models(exp, train, y, s, say)
    say("choosing the learner on the validation rows")
    valid_ev = _Evaluator(valid, y, outcome_model, conv_model, s.level)
    chosen, why, valid_rows, best_arm = _choose(learners, valid_ev, exp, s, truth)
    say("valuing the plan and the baselines on the test rows")
    test_ev = _Evaluator(test, y, outcome_model, conv_model, s.level)
    test_rows = []
    for policy, target in _test_policies(
        learners[chosen], test_ev, exp, s, best_arm, s.budget
    ).items():
        test_rows += test_ev.rows(policy, target, s.budget, truth)
    for name, model in learners.items():  # every learner on test too, for the record
        target, _ = plan_arms(
            model.predict(test.X),
            test_ev.cost,
            s.budget,
            exp.arm_ids,
            exp.budget,
            scale=test.share,
            method=s.method,
        )
        test_rows += test_ev.rows(f"learner:{name}", target, s.budget, truth)
    say("value against budget")
    curve = _curve(learners[chosen], test_ev, exp, s, best_arm)
    say("planning every user at the full budget")
    mu_all = learners[chosen].predict(exp.features)
    conv_all = np.clip(conv_model.predict(exp.features), 0.0, 1.0)
    cost_all = expected_cost(conv_all, exp.cost_per_conversion, exp.cost_per_treatment)
    target, result = plan_arms(mu_all, cost_all, s.budget, exp.arm_ids, exp.budget, method=s.method)
    values = pd.concat(
        [
            pd.DataFrame(valid_rows).assign(split="validation"),
            pd.DataFrame(test_rows).assign(split="test"),
        ],
        ignore_index=True,
    )
    rows = np.arange(len(target))
    allocations = pd.DataFrame(
        {
            "user_id": exp.log["user_id"].to_numpy(),
            "arm": np.asarray(exp.arm_ids, dtype=object)[target],
            "expected_uplift": mu_all[rows, target] - mu_all[:, 0],
            "expected_cost": cost_all[rows, target],
            "conversion_prob": conv_all[rows, target],
        }
    )
    summary = _summary(exp, s, chosen, best_arm, result, values, (train, valid, test))
    summary["learner_choice"] = why
    return ExperimentReport(
        s,
        chosen,
        values,
        _arm_table(exp, test_ev, mu_all, target, cost_all),
        allocations,
        curve,
        summary,
    )


def _summary(
    exp: Experiment,
    s: ExperimentSettings,
    chosen: str,
    best_arm: int,
    result,
    values: pd.DataFrame,
    parts: Sequence[_Split],
) -> dict:
    """The run's summary: settings, split, choice, the plan's certificate, the test values."""
    test = values[(values["split"] == "test") & (values["estimator"] == "dr")].set_index("policy")
    n = len(exp.log)
    return {
        "experiment": exp.name,
        "files": dict(exp.files),
        "users": n,
        "arms": list(exp.arm_ids),
        "budget": s.budget,
        "arm_budgets": {
            a: float(b) for a, b in zip(exp.arm_ids, exp.budget, strict=True) if np.isfinite(b)
        },
        "outcome": s.outcome,
        "split_rows": {
            name: len(p.rows)
            for name, p in zip(("train", "validation", "test"), parts, strict=True)
        },
        "learner": chosen,
        "best_single_arm": exp.arm_ids[best_arm],
        "certificate": {
            **result.certificate_dict(),
            "spend": result.spend,
            "group_spend": dict(result.group_spend),
        },
        "test_value_per_user": {
            p: {
                "value": float(r["value"]),
                "lo": float(r["value_lo"]),
                "hi": float(r["value_hi"]),
                "uplift": float(r["uplift"]),
                "spend": float(r["spend"]),
            }
            for p, r in test.iterrows()
            if not str(p).startswith("learner:")
        },
    }
