"""Bring-your-own-experiment: our uplift learners beside scikit-uplift's, on the same split.

Usage: .venv/bin/python benchmarks/bench_experiment.py [--scenario default] [--users 20000]
    [--seeds 1 2 3] [--budget-per-user 0.1]

Each seed's world exports its randomised exposure log in the experiment format (one row per
user, 7 arms, the control ``none``; :func:`growth.experiments.world_experiment`), split as
``growth experiment`` splits it (50 % training, 25 % validation, 25 % test, seeded).  On the
training rows every learner fits: ours (``t_lightgbm``: the registry's LightGBM per arm; ``x``;
``dr``) and the peer's (scikit-uplift 0.5.1: ``TwoModels`` and ``SoloModel`` with LightGBM
classifiers, each arm against the control on that pair's rows, since scikit-uplift models one
treatment at a time).  On the test rows, per learner:

* Qini AUC and uplift@30 % per arm against the control (scikit-uplift's own metrics, on the
  test rows of that arm and the control), averaged over the 6 arms;
* the plan at the same budget (``--budget-per-user`` x users, scaled to the test share) from the
  coupon knapsack, every learner priced by the same cost model (the registry's LightGBM per arm
  for p(conversion)): its DR estimate of conversions per user with the 95 % interval, and its
  true value (the world's conversion probability of each test row under its planned arm);
* ``chosen``: the plan of the learner of ours that ``growth experiment`` would choose (the
  incumbent, the X-learner, unless another's plan is worth more on the validation rows by more
  than 2 standard errors of the paired DR difference); ``chosen_highest``: the one the highest
  validation DR value would choose (the rule before);
* random targeting and the best single arm (chosen on validation) at the same budget.

No data is downloaded: no package on the registry bundles a public randomised marketing
experiment (scikit-uplift, causalml, pyuplift and causeinfer fetch Hillstrom, Criteo, X5 or
Lenta from the web at run time), so the simulated world's log stands in for one.
"""

from __future__ import annotations

import argparse
import time
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklift.metrics import qini_auc_score, uplift_at_k
from sklift.models import SoloModel, TwoModels

from growth.experiments import validate_experiment, world_experiment
from growth.experiments.analysis import choose_learner, split_rows
from growth.experiments.learners import LEARNERS, LearnerData, fit_learner
from growth.experiments.plan import expected_cost, plan_arms, random_targeting, single_arm
from growth.world import generate_world, load_scenario
from predictors.off_policy import policy_estimates

OURS = LEARNERS
PEERS = ("sklift_two_models", "sklift_solo_model")
PAIRED = (
    ("chosen", "chosen_highest"),
    ("chosen", "sklift_two_models"),
    ("chosen", "sklift_solo_model"),
    ("chosen", "random"),
    ("chosen", "best_arm"),
)


def _classifier(seed: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        n_jobs=1,
        verbose=-1,
        random_state=seed,
    )


def peer_uplift(name: str, data: LearnerData, test_table: pd.DataFrame, seed: int) -> np.ndarray:
    """(n_test, K) with column 0 zero and column k the peer's uplift of arm k over the control."""
    out = np.zeros((len(test_table), data.n_arms))
    for k in range(1, data.n_arms):
        pair = (data.arm == 0) | (data.arm == k)
        X, y, t = data.table[pair], data.y[pair], (data.arm[pair] == k).astype(int)
        if name == "sklift_two_models":
            model = TwoModels(_classifier(seed), _classifier(seed + 1), method="vanilla")
        else:
            model = SoloModel(_classifier(seed))
        model.fit(X, y, t)
        out[:, k] = model.predict(test_table)
    return out


def qini_and_uplift_at_k(y, arm, mu) -> tuple[float, float]:
    """Mean over arms of Qini AUC and uplift@30 % against the control (scikit-uplift's metrics)."""
    qini, at_k = [], []
    for k in range(1, mu.shape[1]):
        pair = (arm == 0) | (arm == k)
        tau = mu[pair, k] - mu[pair, 0]
        t = (arm[pair] == k).astype(int)
        qini.append(qini_auc_score(y[pair], tau, t))
        at_k.append(uplift_at_k(y[pair], tau, t, strategy="overall", k=0.3))
    return float(np.mean(qini)), float(np.mean(at_k))


def choose(models, X_valid, cost_valid, exp, valid, y, budget, outcome_model) -> tuple[str, str]:
    """Which of our learners ``growth experiment`` would choose (:func:`choose_learner`, the
    incumbent first, in ``LEARNERS`` order) and which the highest validation DR value would
    (the rule before it)."""
    share = len(valid) / len(exp.log)
    mu_valid = outcome_model.predict(X_valid)
    plans = {
        name: plan_arms(
            models[name].predict(X_valid), cost_valid, budget, exp.arm_ids, exp.budget, scale=share
        )[0]
        for name in LEARNERS
    }

    def difference(target, baseline=None):
        return policy_estimates(
            y[valid], exp.arm_index[valid], exp.propensity[valid], target,
            predictions=mu_valid, baseline=baseline,
        )["dr"]  # fmt: skip

    values = {name: difference(target).value for name, target in plans.items()}
    return choose_learner(plans, difference)[0], max(values, key=values.get)


def run_seed(scenario: str, users: int, seed: int, budget_per_user: float) -> list[dict]:
    """Every learner's ranking and plan on one world's test rows, and the baselines'."""
    world = generate_world(load_scenario(scenario, n_users=users, seed=seed))
    exported = world_experiment(world)
    exp = validate_experiment(exported.log, exported.arms)
    y = exp.outcome("conversion")
    train, valid, test = split_rows(len(exp.log), (0.5, 0.25, 0.25), seed)
    data = LearnerData.build(
        exp.features.iloc[train],
        exp.arm_index[train],
        y[train],
        exp.propensity[train],
        n_arms=exp.n_arms,
        categorical=exp.categorical,
    )
    X_test = exp.features.iloc[test].reset_index(drop=True)
    test_table = LearnerData.build(
        X_test,
        exp.arm_index[test],
        y[test],
        exp.propensity[test],
        n_arms=exp.n_arms,
        spec=data.spec,
    ).table
    budget, share = budget_per_user * len(exp.log), len(test) / len(exp.log)
    mus, times, models = {}, {}, {}
    for name in (*OURS, *PEERS):
        t0 = time.perf_counter()
        if name in OURS:
            model = models[name] = fit_learner(name, data, seed=seed)
            mus[name] = model.predict(X_test)
            if name == "t_lightgbm":
                cost_model = model
        else:
            mus[name] = peer_uplift(name, data, test_table, seed)
        times[name] = time.perf_counter() - t0
    conv = np.clip(cost_model.predict(X_test), 0, 1)
    cost = expected_cost(conv, exp.cost_per_conversion, exp.cost_per_treatment)
    arm, p, truth = exp.arm_index[test], exp.propensity[test], exported.truth[test]
    outcome_mu = mus["t_lightgbm"]  # the DR estimates' outcome model, the same for every plan
    X_valid = exp.features.iloc[valid].reset_index(drop=True)
    conv_valid = np.clip(cost_model.predict(X_valid), 0, 1)
    cost_valid = expected_cost(conv_valid, exp.cost_per_conversion, exp.cost_per_treatment)
    best = 1 + int(
        np.argmax(
            [
                policy_estimates(
                    y[valid],
                    exp.arm_index[valid],
                    exp.propensity[valid],
                    single_arm(
                        k,
                        cost_valid,
                        budget,
                        exp.budget,
                        scale=len(valid) / len(exp.log),
                        seed=seed,
                    ),
                    predictions=cost_model.predict(X_valid),
                )["dr"].value
                for k in range(1, exp.n_arms)
            ]
        )
    )
    plans = {
        name: plan_arms(mu, cost, budget, exp.arm_ids, exp.budget, scale=share)[0]
        for name, mu in mus.items()
    }
    chosen, highest = choose(models, X_valid, cost_valid, exp, valid, y, budget, cost_model)
    plans["chosen"], plans["chosen_highest"] = plans[chosen], plans[highest]
    plans["random"] = random_targeting(cost, budget, exp.budget, scale=share, seed=seed)
    plans["best_arm"] = single_arm(best, cost, budget, exp.budget, scale=share, seed=seed)
    plans["control"] = np.zeros(len(test), dtype=np.int64)
    rows = []
    for name, target in plans.items():
        dr = policy_estimates(y[test], arm, p, target, predictions=outcome_mu)["dr"]
        qini, at_k = (
            qini_and_uplift_at_k(y[test], arm, mus[name]) if name in mus else (np.nan, np.nan)
        )
        rows.append(
            {
                "seed": seed,
                "learner": name,
                "qini_auc": qini,
                "uplift_at_30": at_k,
                "dr_value": dr.value,
                "dr_lo": dr.lower,
                "dr_hi": dr.upper,
                "true_value": float(truth[np.arange(len(target)), target].mean()),
                "covered": dr.covers(truth[np.arange(len(target)), target].mean()),
                "pred_spend": float(cost[np.arange(len(target)), target].sum() / share),
                "fit_s": times.get(name, np.nan),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget-per-user", type=float, default=0.1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-uplift on scikit-learn 1.9
    rows = []
    for seed in args.seeds:
        print(f"seed {seed} ...", flush=True)
        rows += run_seed(args.scenario, args.users, seed, args.budget_per_user)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    control = table[table["learner"] == "control"].set_index("seed")["true_value"]
    table["true_uplift"] = table["true_value"] - table["seed"].map(control)
    best_arm = table[table["learner"] == "best_arm"].set_index("seed")["true_value"]
    table["beats_best_arm"] = table["true_value"] >= table["seed"].map(best_arm)
    mean = table.groupby("learner", sort=False).agg(
        qini_auc=("qini_auc", "mean"),
        uplift_at_30=("uplift_at_30", "mean"),
        dr_value=("dr_value", "mean"),
        true_value=("true_value", "mean"),
        true_uplift=("true_uplift", "mean"),
        true_uplift_sd=("true_uplift", "std"),
        beats_best_arm=("beats_best_arm", "mean"),
        covered=("covered", "mean"),
        pred_spend=("pred_spend", "mean"),
        fit_s=("fit_s", "mean"),
    )
    print(f"\nmean over seeds {args.seeds} (values are conversions per user on the test rows)")
    print("| learner | " + " | ".join(mean.columns) + " |")
    print("|---" * (len(mean.columns) + 1) + "|")
    for name, r in mean.iterrows():
        print(f"| {name} | " + " | ".join(f"{v:.4g}" for v in r.to_numpy()) + " |")
    true = table.pivot(index="seed", columns="learner", values="true_value")
    print("\n| comparison (true value, paired) | mean difference | seeds won | seeds lost |")
    print("|---|---|---|---|")
    for a, b in PAIRED:
        diff = true[a] - true[b]
        print(f"| {a} - {b} | {diff.mean():+.5f} | {(diff > 0).sum()} | {(diff < 0).sum()} |")


if __name__ == "__main__":
    main()
