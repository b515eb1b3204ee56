"""How close to the oracle can a coupon plan built from what the platform observes get?

Usage: .venv/bin/python benchmarks/bench_coupon_ceiling.py [--users 20000] [--seeds 1 2 3]
    [--folds 5] [--scenario small --budget 500]

The oracle plans on each user's true response, which depends on hidden state (price
sensitivity, basket size, taste).  No predictor can do better than the expectation of that
response given the fields it sees.  This script estimates that ceiling on the default world:
per candidate (user, item), LightGBM regressors learn the *true* (noise-free) probabilities
from the observable fields (the users table's fields, the logged-activity features, the item's
fields, and how often the user clicked the item's category), cross-fitted over ``--folds``
folds of users, with no Bernoulli noise: a conversion model trained on labels can at best
approach them.  The per-user means make a :class:`CouponDecision`, planned like the oracle
(the default scenario: the nightly's budgets scaled to the world's size; another scenario:
``--budget`` and the nightly's merchant budget, as ``bench_truth_scoring.py``;
``spend_confidence`` 0.99, buffer from the draws alone) and played out on the truth (:func:`score_against_truth`, 20 arrival orders).

Rows printed per seed, % of the oracle's honoured incremental conversions at the same budgets:
- ``observed``: the fields the platform has;
- ``+ hidden``: the same learner also given the hidden state (a check of the method: it
  should come close to 100 %).
"""

from __future__ import annotations

import argparse

import lightgbm as lgb
import numpy as np
import pandas as pd

from growth.campaigns.coupons import plan_coupons, score_against_truth, true_coupon_decision
from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.settings import CouponSettings
from growth.modeling.features import ConversionFeatures
from growth.world import generate_world, load_scenario

TREES = {"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 63, "verbose": -1}


def pair_rows(world) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate (user, item) pair: ``(user index, item index)``, user-major."""
    n, f = world.candidates.shape
    return np.repeat(np.arange(n), f), world.candidates.ravel()


def observed_fields(world, user: np.ndarray, item: np.ndarray) -> pd.DataFrame:
    """What the platform sees of each pair, as LightGBM-ready columns."""
    features = ConversionFeatures(world.dataset)
    users = features.user_frame
    cols = {}
    for name in users.columns:
        column = users[name]
        if name.endswith(("_seq", "_tags")):
            tokens = column.fillna("").astype(str).str.split("|")
            cols[f"{name}_len"] = tokens.map(lambda t: len([x for x in t if x])).to_numpy()[user]
        elif pd.api.types.is_numeric_dtype(column):
            cols[name] = pd.to_numeric(column).to_numpy(np.float64)[user]
        else:
            cols[name] = pd.Categorical(column.astype(str)).codes[user]
    for name in features.item_table.columns:
        cols[name] = features.item_table[name].to_numpy()[item]
    # the user's clicks on the item's category: the signal the models read through the link
    category = world.items.category[item].astype(str)
    clicks = users["tgt_click_seq"].fillna("").astype(str).to_numpy()[user]
    cols["clicks_on_category"] = [
        s.split("|").count(c) if s else 0 for s, c in zip(clicks, category, strict=True)
    ]
    return pd.DataFrame(cols)


def hidden_fields(world, user: np.ndarray, item: np.ndarray) -> pd.DataFrame:
    """The world's hidden state behind each pair (for the method's check only)."""
    us, model = world.users, world.conversion
    return pd.DataFrame(
        {
            "price_sensitivity": us.price_sensitivity[user],
            "basket_multiplier": us.basket_multiplier[user],
            "activity": us.activity[user],
            "taste_match": model.taste_match(user, item),
            "scene_logit": model.scene_logit(user, item),
        }
    )


def true_targets(world, user: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True ``P(convert)`` and ``P(convert and the coupon applies)`` per pair and option."""
    k1 = world.coupons.n_options
    options = np.arange(k1)[None, :]
    p = world.conversion.prob(user[:, None], item[:, None], options)  # (pairs, K+1)
    basket = world.conversion.basket(user[:, None], item[:, None])
    ok = world.coupons.applicable(options, basket, world.items.merchant[item][:, None])
    return p, p * ok


def cross_fitted(X: pd.DataFrame, targets: np.ndarray, user: np.ndarray, folds: int, seed: int):
    """Each column of ``targets`` predicted for every row by a model not fitted on its user."""
    fold = np.random.default_rng(seed).integers(0, folds, user.max() + 1)[user]
    out = np.empty_like(targets)
    for f in range(folds):
        fit, predict = fold != f, fold == f
        for j in range(targets.shape[1]):
            model = lgb.LGBMRegressor(**TREES, random_state=seed, n_jobs=1)
            model.fit(X[fit], targets[fit, j])
            out[predict, j] = model.predict(X[predict])
    return out


def decision_from(truth: CouponDecision, user: np.ndarray, p: np.ndarray, red: np.ndarray):
    """The per-user means of predicted pair quantities as a decision (the truth's layout)."""
    count = np.bincount(user)[:, None]

    def mean(x: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(user, x[:, k]) for k in range(x.shape[1])], 1) / count

    return CouponDecision(
        user_ids=truth.user_ids,
        segment=truth.segment,
        option_ids=truth.option_ids,
        option_types=truth.option_types,
        face_value=truth.face_value,
        merchant_id=truth.merchant_id,
        conversion=np.clip(mean(p), 1e-6, 1.0),
        redemption=np.clip(mean(red), 0.0, 1.0),
        gmv=truth.gmv,
    )


def ceiling(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """One world seed's ceiling rows (% of the oracle)."""
    world = generate_world(load_scenario(args.scenario, n_users=args.users, seed=seed))
    truth = true_coupon_decision(world)
    if args.scenario == "default":
        scale = world.config.n_users / load_scenario("default").n_users
        settings = CouponSettings(budget=20_000 * scale, merchant_budget=2_000 * scale)
    else:
        settings = CouponSettings(budget=args.budget)
    folds = args.folds
    user, item = pair_rows(world)
    p, red = true_targets(world, user, item)
    # regress the base and each option's uplift (the quantity the plan ranks by) directly
    targets = np.column_stack([p[:, :1], p[:, 1:] - p[:, :1], red[:, 1:]])
    k = p.shape[1] - 1
    observed = observed_fields(world, user, item)
    out = {"seed": seed}
    for name, X in (
        ("observed", observed),
        ("+ hidden", observed.join(hidden_fields(world, user, item))),
    ):
        fit = cross_fitted(X, targets, user, folds, seed)
        p_hat = np.column_stack([fit[:, :1], fit[:, :1] + fit[:, 1 : k + 1]])
        red_hat = np.column_stack([np.zeros(len(user)), fit[:, k + 1 :]])
        plan = plan_coupons(decision_from(truth, user, p_hat, red_hat), settings)
        score = score_against_truth(world, plan)
        out[name] = float(score.plans.loc["platform", "pct_of_oracle"])
        out[f"{name} new"] = float(score.by_segment.loc["platform", "new"])
        print(
            f"seed {seed} {name}: {out[name]:.1f} % of the oracle (new users {out[f'{name} new']:.1f} %)",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--users", type=int, default=None, help="default scenario: 20,000")
    parser.add_argument("--budget", type=float, default=500.0, help="platform budget, not default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if args.users is None and args.scenario == "default":
        args.users = 20_000
    table = pd.DataFrame([ceiling(args, s) for s in args.seeds]).set_index("seed")
    table.loc["mean"] = table.mean()
    print(table.round(1).to_string())


if __name__ == "__main__":
    main()
