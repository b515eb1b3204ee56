"""The nightly batch job: data -> predictors -> decisions -> SQL, with a summary.

Stages (each timed and logged):

1. ``data``: generate the simulated world from a scenario, or read dataset files;
2. ``train``: fit the conversion and basket models on the older exposures and
   evaluate them by lifecycle segment on the newest ones (``predictor="auto"``:
   with source-domain features CSDE and LightGBM, else LightGBM alone);
3. ``score``: predict every user's conversion and redemption under each coupon,
   by each candidate model;
4. ``coupons``: allocate coupons under the budgets (certificate included), one
   plan per candidate model; keep the plan whose value, estimated off-policy on
   the randomised holdout, is higher (:mod:`growth.campaigns.coupons.choice`); the
   plan's estimated value and spend, with intervals, cross-fitted over folds of the
   holdout's users (``value_folds``), go to the summary and ``plan_estimates``;
5. ``truth`` (simulated world only): play the plan out on the world's ground
   truth under its budgets (coupons honoured in a random arrival order until a
   budget runs out, over seeds), beside random targeting, the best single option
   for everyone and the oracle plan (solved on the true response), all held to
   the same budgets (:mod:`growth.campaigns.coupons.truth`);
6. ``push``: learn open probabilities from the push log, schedule the day
   under fatigue caps, gaps, hourly capacity and industry shares;
7. ``install``: fit channel response curves from history, split the
   acquisition budget, trace the installs-versus-retention Pareto front;
8. ``store``: hand the run's rows and summary to the run writer, which writes them
   in one transaction when the run closes.

The pipeline writes into a run it is given (:func:`run_pipeline`): the code that
opens the run owns it (:func:`growth.jobs.production.run_nightly_job` opens it under
the lease; :func:`run_nightly` opens one without a lease).  Each stage says on the
console what it does and how far it got (a :class:`~growth.jobs.stages.StageClock`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console

from growth.campaigns import coupons as coupon_campaign
from growth.campaigns import install as install_campaign
from growth.campaigns import push as push_campaign
from growth.campaigns.coupons import CouponPlan, CouponTruthScore
from growth.campaigns.coupons.choice import (
    Candidate,
    PlanChoice,
    plan_candidates,
    score_candidates,
)
from growth.campaigns.coupons.uplift import with_uplift_scale
from growth.campaigns.coupons.value import COUPON_PLAN, plan_estimate_rows
from growth.campaigns.install import InstallPlan, channel_names, fit_channel_models, plan_install
from growth.campaigns.push import PushPlan, plan_push
from growth.data.dataset import Dataset
from growth.jobs.artifacts import ValueFold, save_run_artifacts
from growth.jobs.config import KIND, NightlyConfig
from growth.jobs.stages import StageClock
from growth.modeling.features import ConversionFeatures
from growth.modeling.selection import (
    AUTO,
    CROSS_DOMAIN_PREDICTOR,
    EVIDENCE,
    CrossDomainChoice,
    choose_cross_domain,
)
from growth.modeling.training import TrainedModels, train_models
from growth.paths import artifacts_dir
from growth.store import RunLease, RunWriter, Store, newest_benchmark_metrics

if TYPE_CHECKING:
    from growth.world import World

log = logging.getLogger(__name__)


@dataclass
class NightlyResult:
    """What one nightly run produced (also written to SQL under ``run_id``)."""

    run_id: int
    config: NightlyConfig
    segments: pd.Series  # users per lifecycle segment
    metrics: pd.DataFrame  # model metrics by segment
    plan: CouponPlan
    truth: CouponTruthScore | None  # plans played out on the world's truth (simulated data)
    push: PushPlan | None = None
    push_truth: dict[str, float] | None = None
    install: InstallPlan | None = None
    install_truth: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    predictor: str = ""  # the conversion model trained (``config.predictor`` with auto resolved)
    world_fingerprint: str | None = None  # WorldConfig.fingerprint() of a simulated world
    artifacts: Path | None = None  # the folder of the run's models and coupon scores
    calibration: list[dict] | None = None  # conversion's and redemption's ECE per option x segment
    uplift: list[dict] | None = None  # per segment: the coupon effects' slope on the log, factor
    choice: PlanChoice | None = None  # the candidates' plans, their estimates, the model chosen
    cross_domain: CrossDomainChoice | None = None  # auto's cross-domain model and its evidence

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run."""
        out: dict[str, Any] = {
            "predictor": self.predictor,
            "holdout": holdout_summary(self.metrics),
            "users_per_segment": {k: int(v) for k, v in self.segments.items()},
            "coupons": self.plan.summary(),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "world_fingerprint": self.world_fingerprint,
            "artifacts": None if self.artifacts is None else str(self.artifacts),
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration
        if self.uplift is not None:
            out["uplift_scale"] = self.uplift
        if self.cross_domain is not None:
            out["cross_domain"] = self.cross_domain.summary()
        if self.choice is not None:
            out["coupons"]["estimates"] = self.choice.chosen.value.summary()
            out["model_choice"] = self.choice.summary()
        if self.truth is not None:
            out["truth"] = self.truth.summary()
        if self.push is not None:
            out["push"] = {**self.push.summary(), "truth": self.push_truth}
        if self.install is not None:
            out["install"] = self.install.summary()
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


def load_data(
    config: NightlyConfig, *, progress: bool = False, dataset: Dataset | None = None
) -> tuple[Dataset, World | None]:
    """The dataset and, for a simulated world, the world itself (else ``None``);
    ``dataset``: the files of ``config.data_dir``, already read and validated."""
    if dataset is not None:
        return dataset, None
    if config.data_dir is not None:
        from growth.data.io import read_dataset

        return read_dataset(config.data_dir), None
    from growth.world import generate_world, load_scenario

    world_config = load_scenario(config.scenario, n_users=config.n_users, seed=config.seed)
    world = generate_world(world_config, progress=progress)
    return world.dataset, world


def planned_stages(config: NightlyConfig) -> list[str]:
    """The stages a run of ``config`` means to run, in order (a stage may still be skipped
    when the data lacks its tables)."""
    stages = ["data", "train", "score", "coupons"]
    if config.data_dir is None:
        stages.append("truth")
    if config.push.enabled:
        stages.append("push")
    if config.install.enabled:
        stages.append("install")
    return [*stages, "store"]


def open_run(
    store: Store,
    config: NightlyConfig,
    *,
    before_commit: Callable[[], None] | None = None,
    lease: RunLease | None = None,
) -> AbstractContextManager[RunWriter]:
    """The nightly run of ``config`` in ``store`` (see :meth:`growth.store.Store.run`),
    committed only while ``lease`` (if given) is still held."""
    return store.run(
        kind=KIND,
        config=config.model_dump(mode="json"),
        operator=config.operator,
        campaign_date=config.campaign_date,
        campaign=config.campaign,
        before_commit=before_commit,
        lease=lease,
    )


def run_nightly(
    config: NightlyConfig,
    *,
    store: Store | None = None,
    progress: bool = False,
    console: Console | None = None,
) -> NightlyResult:
    """Open a run in ``store`` (default: ``Store()``) and run the whole job into it.

    No lease is taken: the production entry point is
    :func:`growth.jobs.production.run_nightly_job`.
    """
    store = store or Store()
    clock = StageClock(planned_stages(config), console=console)
    evidence = cross_domain_evidence(store, config)
    with open_run(store, config) as run:
        return run_pipeline(config, run, clock, progress=progress, evidence=evidence)


Evidence = tuple[int | None, pd.DataFrame]
"""A benchmark run's id and its ``model_metrics`` rows (:func:`newest_benchmark_metrics`)."""


def cross_domain_evidence(store: Store, config: NightlyConfig) -> Evidence | None:
    """The benchmark metrics ``auto``'s cross-domain model follows; None where ``config``
    needs none (a named predictor, or ``auto_challenger`` pins the model).  Read before
    the run opens, so the read never shares the run's transaction."""
    if config.predictor != AUTO or config.auto_challenger != EVIDENCE:
        return None
    return newest_benchmark_metrics(store.reader)


def cross_domain_model(
    config: NightlyConfig, evidence: Evidence | None, decision_scene: str
) -> CrossDomainChoice | None:
    """The cross-domain model ``auto`` trains: pinned by ``auto_challenger``, else the one
    the evidence names (:func:`choose_cross_domain`); None for a named predictor."""
    if config.predictor != AUTO:
        return None
    if config.auto_challenger != EVIDENCE:
        return CrossDomainChoice(config.auto_challenger, "pinned by auto_challenger")
    run_id, metrics = evidence if evidence is not None else (None, None)
    return choose_cross_domain(metrics, decision_scene, run_id=run_id)


def _train(
    config: NightlyConfig,
    dataset: Dataset,
    evidence: Evidence | None,
    *,
    seed: int,
    progress: bool,
) -> tuple[ConversionFeatures, CrossDomainChoice | None, TrainedModels]:
    """The features, ``auto``'s cross-domain model (logged; None for a named predictor)
    and the trained models."""
    features = ConversionFeatures(dataset)
    cross, models = train_configured(config, features, evidence, seed=seed, progress=progress)
    return features, cross, models


def train_configured(
    config: NightlyConfig,
    features: ConversionFeatures,
    evidence: Evidence | None,
    *,
    seed: int,
    progress: bool = False,
) -> tuple[CrossDomainChoice | None, TrainedModels]:
    """The models ``config`` trains on ``features``: ``auto``'s cross-domain model as the
    ``evidence`` names it (:func:`cross_domain_model`; logged), and the trained models with
    their coupon effects' slopes per segment on the whole log, applied to the plan's value
    side if ``config.stretch_effects`` (:func:`~growth.campaigns.coupons.uplift.with_uplift_scale`)."""
    cross = cross_domain_model(config, evidence, features.decision_scene)
    if cross is not None:
        log.info("auto cross-domain model %s: %s", cross.name, cross.reason)
    models = train_models(
        features,
        **config.training_options(),
        cross_domain=CROSS_DOMAIN_PREDICTOR if cross is None else cross.name,
        seed=seed,
        progress=progress,
    )
    return cross, with_uplift_scale(models, apply=config.stretch_effects)


def run_pipeline(
    config: NightlyConfig,
    run: RunWriter,
    clock: StageClock,
    *,
    progress: bool = False,
    dataset: Dataset | None = None,
    evidence: Evidence | None = None,
) -> NightlyResult:
    """Run every stage of ``config`` under ``clock``, handing the rows and summary to ``run``.

    ``progress``: bars inside the long stages; ``dataset``: its files, read and checked
    before the run; ``evidence``: what auto's cross-domain model follows (:func:`_train`).
    """
    with clock("data") as stage:
        dataset, world = load_data(config, progress=progress, dataset=dataset)
        segments = dataset.users["lifecycle"].value_counts().sort_index()
        stage.detail = f"{len(dataset.users):,} users, {len(dataset.exposures):,} exposures"
    seed = world.config.seed if world is not None else (config.seed or 0)
    with clock("train") as stage:
        features, cross, models = _train(config, dataset, evidence, seed=seed, progress=progress)
        stage.detail = "conversion models " + ", ".join(m.predictor for m in models.candidates())
    with clock("score") as stage:
        scores = score_candidates(
            features, models, progress=progress, torch_threads=config.torch_threads
        )
        first = scores[0].decision
        stage.detail = f"{first.n_users:,} users x {len(first.option_ids)} coupon options"
    with clock("coupons") as stage:
        choice = plan_candidates(models, scores, config.coupons)
        models, decision, plan = choice.chosen.models, choice.chosen.decision, choice.chosen.plan
        refuse_empty_coupons(plan, config)
        coupon_front = plan.campaign.front()
        stage.detail = f"{int((plan.choice >= 0).sum()):,} users get a coupon"
    result = NightlyResult(
        run_id=run.id,
        config=config,
        segments=segments,
        metrics=models.metrics,
        plan=plan,
        truth=None,
        timings=clock.timings,
        predictor=models.predictor,
        world_fingerprint=None if world is None else world.config.fingerprint(),
        calibration=models.calibration_summary() or None,
        uplift=None if models.uplift is None else models.uplift.to_dict(orient="records"),
        choice=choice,
        cross_domain=cross,
    )
    if world is not None:
        with clock("truth"):
            result.truth = coupon_campaign.score_against_truth(world, plan)
    _push_and_install(result, dataset, features, world, clock, seed)
    with clock("store") as stage:
        metrics = models.metrics_by_sample()  # the decision scene's, then per domain and scene
        metrics = metrics.assign(dataset=_dataset_name(dataset, config), seed=seed)
        run.add_model_metrics(
            metrics[["model", "dataset", "domain", "scene", "segment", "metric", "value", "seed"]]
        )
        run.add_coupon_allocations(decision.plan_frame(plan.choice))
        run.add_pareto_points(coupon_front)
        run.add_plan_estimates(plan_estimate_rows(choice.chosen.value, COUPON_PLAN))
        if result.push is not None:
            run.add_push_schedule(result.push.frame())
        if result.install is not None:
            run.add_channel_plan(result.install.channel_plan_frame())
            run.add_pareto_points(result.install.pareto_frame())
        result.artifacts = _save_artifacts(run_folder(config, run.id), choice.chosen, result)
        run.summary = result.summary()
        stage.detail = f"{sum(run.row_counts().values()):,} result rows"
    return result


def _save_artifacts(folder: Path, chosen: Candidate, result: NightlyResult) -> Path:
    """The chosen model's files, scores and calibrators, and its value folds', in ``folder``."""
    models = chosen.models
    return save_run_artifacts(
        folder,
        predictor=models.predictor,
        conversion=models.conversion,
        basket=models.basket,
        decision=chosen.decision,
        world_fingerprint=result.world_fingerprint,
        calibrator=models.calibrator,
        reach_calibrator=models.reach_calibrator,
        value_folds=[
            ValueFold(m.calibrator, m.reach_calibrator, d, m.calibration)
            for m, d in zip(models.value_folds, chosen.fold_decisions, strict=True)
        ],
        calibration=models.calibration,
    )


class EmptyPlan(RuntimeError):
    """A plan that decides nothing: stored, it would replace the day's plan in the views."""


_ALLOW = "rerun with --allow-empty-plan (allow_empty_plan = true) to store it anyway"


def refuse_empty_coupons(plan: CouponPlan, config: NightlyConfig) -> None:
    """Raise :class:`EmptyPlan` when the coupon plan is degenerate (unless allowed):
    no user to plan for, or no coupon for anyone although a budget is positive."""
    if config.allow_empty_plan:
        return
    users = len(plan.choice)
    budget = sum(plan.budgets.values())
    if users == 0 or (budget > 0 and not (plan.choice >= 0).any()):
        raise EmptyPlan(
            f"the coupon plan is empty: none of {users:,} users gets a coupon under a total "
            f"budget of {budget:,.2f} (no candidate users, or no predicted uplift); it would "
            f"supersede the day's plan, so the run fails; {_ALLOW}"
        )


def refuse_empty_push(push: PushPlan, config: NightlyConfig) -> None:
    """Raise :class:`EmptyPlan` when the push schedule sends nothing although users may
    receive pushes (``fatigue_cap > 0``), unless allowed."""
    audience = len(push.audience.user_ids)
    if config.allow_empty_plan or config.push.fatigue_cap == 0:
        return
    if len(push.schedule.pushes) == 0:
        raise EmptyPlan(
            f"the push schedule is empty: no push for any of {audience:,} users; it would "
            f"supersede the day's schedule, so the run fails; {_ALLOW}"
        )


def run_folder(config: NightlyConfig, run_id: int) -> Path:
    """A fresh folder for a run's files (run ids repeat across databases), as an absolute
    path: the run summary records it for readers that may start elsewhere."""
    name = f"{config.campaign_date}-{config.campaign}-run{run_id}-{secrets.token_hex(4)}"
    return (artifacts_dir() / "runs" / name).resolve()


def _push_and_install(
    result: NightlyResult,
    dataset: Dataset,
    features: ConversionFeatures,
    world: World | None,
    clock: StageClock,
    seed: int,
) -> None:
    """Plan the day's pushes and the acquisition split into ``result`` (each scored against
    the world's truth when there is a world), if enabled and the data has their tables."""
    config = result.config
    if config.push.enabled and _has(clock, "push", dataset.push_candidates, "push candidates"):
        with clock("push") as stage:
            result.push = plan_push(features, config.push, seed=seed)
            refuse_empty_push(result.push, config)
            if world is not None:
                result.push_truth = push_campaign.score_against_truth(world, result.push)
            stage.detail = f"{len(result.push.schedule.pushes):,} pushes"
    if config.install.enabled and _has(
        clock, "install", dataset.channel_history, "channel history"
    ):
        with clock("install") as stage:
            result.install = plan_install(
                fit_channel_models(dataset), channel_names(dataset), config.install, seed=seed
            )
            if not result.install.feasible:
                raise ValueError(f"install control is infeasible: {result.install.split.message}")
            if world is not None:
                result.install_truth = install_campaign.score_against_truth(world, result.install)
            stage.detail = f"{len(result.install.front)} Pareto points"


def _has(clock: StageClock, stage: str, table: pd.DataFrame | None, what: str) -> bool:
    """Whether the data has the table ``stage`` needs; if not, the stage is skipped."""
    if table is None:
        clock.skip(stage, f"the data has no {what}")
    return table is not None


def _dataset_name(dataset: Dataset, config: NightlyConfig) -> str:
    """A short label for model metrics (the store keeps at most 64 characters)."""
    if config.data_dir is not None:
        return f"files:{dataset.name or config.data_dir.name}"[:64]
    return f"world:{config.scenario.stem}"[:64]
