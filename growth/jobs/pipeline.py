"""The nightly batch job: data -> predictors -> decisions -> SQL, with a summary.

Stages (each timed and logged):

1. ``data``: generate the simulated world from a scenario, or read dataset files;
2. ``train``: fit the conversion and basket models on the older exposures and
   evaluate them by lifecycle segment on the newest ones (``predictor="auto"``:
   with source-domain features CSDE, unless LightGBM, trained beside it, ranks
   the holdout's uplift clearly better; else LightGBM alone);
3. ``score``: predict every user's conversion and redemption under each coupon;
4. ``coupons``: allocate coupons under the budgets (certificate included);
5. ``truth`` (simulated world only): score the plan, a random plan and the
   oracle plan (solved on the true response) against the world's ground truth;
6. ``push``: learn open probabilities from the push log, schedule the day
   under fatigue caps, gaps, hourly capacity and industry shares;
7. ``install``: fit channel response curves from history, split the
   acquisition budget, trace the installs-versus-retention Pareto front;
8. ``store``: write the run and all its rows in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from growth.campaigns.coupons.plan import (
    CouponPlan,
    coupon_pareto_frame,
    solve_coupon_plan,
)
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.campaigns.coupons.truth import score_against_truth
from growth.campaigns.install import InstallOutcome, plan_install, score_install_against_truth
from growth.campaigns.push.plan import PushPlan, plan_push
from growth.campaigns.push.truth import score_push_against_truth
from growth.data.dataset import Dataset
from growth.jobs.config import NightlyConfig
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import train_models
from growth.store import Store

log = logging.getLogger(__name__)


@dataclass
class NightlyResult:
    """What one nightly run produced (also written to SQL under ``run_id``)."""

    run_id: int
    config: NightlyConfig
    segments: pd.Series  # users per lifecycle segment
    metrics: pd.DataFrame  # model metrics by segment
    plan: CouponPlan
    truth: pd.DataFrame | None  # plans scored by the world's ground truth (simulated data)
    push: PushPlan | None = None
    push_truth: dict[str, float] | None = None
    install: InstallOutcome | None = None
    install_truth: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    predictor: str = ""  # the conversion model trained (``config.predictor`` with auto resolved)

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run."""
        out: dict[str, Any] = {
            "predictor": self.predictor,
            "holdout": holdout_summary(self.metrics),
            "users_per_segment": {k: int(v) for k, v in self.segments.items()},
            "coupons": self.plan.summary(),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if self.truth is not None:
            out["truth"] = self.truth.reset_index().to_dict(orient="records")
        if self.push is not None:
            sched = self.push.schedule
            out["push"] = {
                **sched.certificate_dict(),
                "pushes": len(sched.pushes),
                "audience": len(self.push.audience.user_ids),
                "open_model_auc": self.push.open_model_auc,
                "fatigue_decay": self.push.decay,
                "truth": self.push_truth,
            }
        if self.install is not None:
            p = self.install.plan
            out["install"] = {
                **p.certificate_dict(),
                "objective_name": p.objective_name,
                "budget_dual": p.budget_dual,
                "totals": p.totals,
                "pareto_points": len(self.install.front),
            }
            if self.install_truth is not None:
                out["install"]["truth"] = self.install_truth.reset_index().to_dict(orient="records")
        return out


def holdout_summary(metrics: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Holdout AUC, log loss and Qini over all rows of every model trained (auto trains two)."""
    rows = metrics.query("segment == 'all' and metric in ('auc', 'logloss', 'qini')")
    return {
        model: {m: round(float(v), 5) for m, v in zip(g["metric"], g["value"], strict=True)}
        for model, g in rows.groupby("model")
    }


class StageTimer:
    """Times named stages and logs them; ``timings`` keeps seconds per stage."""

    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.report = report

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        log.info("stage %s: started", name)
        if self.report:
            self.report(name)
        yield
        self.timings[name] = time.perf_counter() - start
        log.info("stage %s: done in %.2f s", name, self.timings[name])


def load_data(config: NightlyConfig, *, progress: bool = False):
    """The dataset and, for a simulated world, the world itself (else ``None``)."""
    if config.data_dir is not None:
        from growth.data.io import read_dataset

        return read_dataset(config.data_dir), None
    from growth.world import WorldConfig, generate_world

    overrides = {"n_users": config.n_users, "seed": config.seed}
    world_config = WorldConfig.from_toml(
        config.scenario, **{k: v for k, v in overrides.items() if v is not None}
    )
    world = generate_world(world_config, progress=progress)
    return world.dataset, world


def run_nightly(
    config: NightlyConfig,
    *,
    store: Store | None = None,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> NightlyResult:
    """Run the whole job and write it to ``store`` (default: ``Store()``) in one transaction."""
    store = store or Store()
    timer = StageTimer(report)
    with store.run(
        kind="nightly",
        config=config.model_dump(mode="json"),
        operator=config.operator,
        campaign_date=config.campaign_date,
        campaign=config.campaign,
    ) as run:
        with timer("data"):
            dataset, world = load_data(config, progress=progress)
            segments = dataset.users["lifecycle"].value_counts().sort_index()
        with timer("train"):
            features = ConversionFeatures(dataset)
            seed = world.config.seed if world is not None else (config.seed or 0)
            models = train_models(
                features,
                predictor=config.predictor,
                holdout_fraction=config.holdout_fraction,
                max_train_rows=config.max_train_rows,
                torch_threads=config.torch_threads,
                seed=seed,
                progress=progress,
            )
        with timer("score"):
            decision = predicted_coupon_decision(
                features,
                models.conversion,
                models.basket,
                progress=progress,
                torch_threads=config.torch_threads,
            )
        with timer("coupons"):
            plan = solve_coupon_plan(decision, config.coupons)
            coupon_front = coupon_pareto_frame(decision, config.coupons)
        truth = None
        if world is not None:
            with timer("truth"):
                truth = score_against_truth(world, decision, plan, config)
        push = push_truth = None
        if config.push.enabled and dataset.push_candidates is not None:
            with timer("push"):
                push = plan_push(features, config.push, seed=seed)
                if world is not None:
                    push_truth = score_push_against_truth(world, push, config.push, seed=seed)
        install = install_truth = None
        if config.install.enabled and dataset.channel_history is not None:
            with timer("install"):
                install = plan_install(dataset, config.install, seed=seed)
                if world is not None:
                    install_truth = score_install_against_truth(world, install, config.install)
        with timer("store"):
            metrics = models.metrics.assign(dataset=_dataset_name(dataset, config), seed=seed)
            run.add_model_metrics(
                metrics[["model", "dataset", "segment", "metric", "value", "seed"]]
            )
            run.add_coupon_allocations(decision.plan_frame(plan.choice))
            run.add_pareto_points(coupon_front)
            if push is not None:
                run.add_push_schedule(push.frame())
            if install is not None:
                run.add_channel_plan(install.channel_plan_frame())
                run.add_pareto_points(install.pareto_frame())
            result = NightlyResult(
                run_id=run.id,
                config=config,
                segments=segments,
                metrics=models.metrics,
                plan=plan,
                truth=truth,
                push=push,
                push_truth=push_truth,
                install=install,
                install_truth=install_truth,
                timings=timer.timings,
                predictor=models.predictor,
            )
            run.summary = result.summary()
    return result


def _dataset_name(dataset: Dataset, config: NightlyConfig) -> str:
    """A short label for model metrics (the store keeps at most 64 characters)."""
    if config.data_dir is not None:
        return f"files:{dataset.name or config.data_dir.name}"[:64]
    return f"world:{config.scenario.stem}"[:64]
