"""Services behind the operators' Streamlit app (``app/``): every computation the app shows.

The app only lays out widgets and charts; it calls these functions, which in
turn call the platform's own code (:mod:`growth.world`, :mod:`growth.modeling.training`,
:mod:`growth.campaigns.coupons.plan`, :mod:`growth.campaigns.push.plan`, :mod:`growth.campaigns.install`,
:mod:`optimizers.install`, :class:`growth.store.Store`).  Nothing here imports
Streamlit, so the services are testable and reusable; the app caches them.

Environment:

- ``GROWTH_DB_URL``: the SQL store (default: the embedded SQLite database);
- ``GROWTH_APP_SCENARIO``: the scenario selected first (default ``small``);
- ``GROWTH_APP_USERS``: overrides the scenario's number of users (tests use it);
- ``GROWTH_APP_MAX_TRAIN_ROWS``: exposure rows the predictors train on at most
  (a seeded sample; default 500,000; 0 = the whole log).

At 1M users the world (about 30 s), the predictors (trained on the sample) and
the coupon scores (only when an operator first solves coupons) are computed
once per (scenario, users) and cached by the app; widget changes never re-train.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os
import socket
import subprocess
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.coupons.plan import CouponPlan, coupon_pareto_frame, solve_coupon_plan
from growth.campaigns.coupons.scoring import predicted_coupon_decision
from growth.campaigns.install import InstallOutcome
from growth.campaigns.push.plan import PushPlan, plan_push
from growth.campaigns.settings import CouponSettings, InstallSettings, PushSettings
from growth.data.dataset import Dataset
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import TrainedModels, chronological_split, sample_rows, train_models
from growth.paths import default_db_url, scenario_names, scenario_path
from growth.store import ENV_VAR, Store
from growth.world import World, WorldConfig, generate_world
from optimizers.install import (
    BudgetPlan,
    ChannelModels,
    InstallPlan,
    ParetoFront,
    cheapest_budget,
    fit_channels,
    optimize_installs,
    pareto_front,
)

SCENARIO_ENV = "GROWTH_APP_SCENARIO"
USERS_ENV = "GROWTH_APP_USERS"
DEFAULT_SCENARIO = "small"
MAX_TRAIN_ROWS_ENV = "GROWTH_APP_MAX_TRAIN_ROWS"
DEFAULT_MAX_TRAIN_ROWS = 500_000
"""Exposure rows the app's predictors train on at most (a seeded sample beyond that)."""
RUN_KINDS = ("coupons", "push", "install")
PLAN_TABLES = ("coupon_allocations", "push_schedules", "channel_plans", "pareto_points")
CHANNEL_COLUMNS = ("channel_id", "name", "kind", "min_spend", "max_spend", "max_cpi")


# -- data and models ---------------------------------------------------------------


def scenarios() -> list[str]:
    """Scenario names (TOML stems in ``data/scenarios``), the default first."""
    names = scenario_names()
    if not names:
        raise FileNotFoundError("no scenario files (*.toml) in the data root's scenarios folder")
    first = default_scenario()
    return [first, *(n for n in names if n != first)] if first in names else names


def default_scenario() -> str:
    """``$GROWTH_APP_SCENARIO`` or ``small``."""
    return os.environ.get(SCENARIO_ENV, DEFAULT_SCENARIO)


def app_users() -> int | None:
    """``$GROWTH_APP_USERS`` as a positive integer, or ``None`` when unset."""
    raw = os.environ.get(USERS_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{USERS_ENV} must be an integer, got {raw!r}") from None
    if value < 10:
        raise ValueError(f"{USERS_ENV} must be at least 10, got {value}")
    return value


def world_config(scenario: str, n_users: int | None = None, seed: int | None = None) -> WorldConfig:
    """The scenario's :class:`WorldConfig`, with ``n_users``/``seed`` overrides when given."""
    try:
        path = scenario_path(scenario)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    overrides = {k: v for k, v in (("n_users", n_users), ("seed", seed)) if v is not None}
    return WorldConfig.from_toml(path, **overrides)


def load_world(scenario: str, n_users: int | None = None, seed: int | None = None) -> World:
    """Generate the simulated world of a scenario (deterministic given the seed)."""
    return generate_world(world_config(scenario, n_users, seed))


def max_train_rows() -> int | None:
    """``$GROWTH_APP_MAX_TRAIN_ROWS`` (0 = no cap) or :data:`DEFAULT_MAX_TRAIN_ROWS`."""
    raw = os.environ.get(MAX_TRAIN_ROWS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_TRAIN_ROWS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_TRAIN_ROWS_ENV} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{MAX_TRAIN_ROWS_ENV} must be >= 0 (0 = no cap), got {value}")
    return value or None


def conversion_features(world: World) -> ConversionFeatures:
    """The world's user, item and coupon encodings (no model, no exposure rows yet)."""
    return ConversionFeatures(world.dataset)


def sample_exposures(
    features: ConversionFeatures, max_rows: int | None, *, seed: int
) -> ConversionFeatures:
    """A view of ``features`` whose exposure log is a seeded sample of at most ``max_rows`` rows.

    The encodings (users, items, coupons) are shared, only the log the models
    learn from shrinks, so a 1M-user world trains in seconds instead of minutes.
    Returns ``features`` itself when the log already fits (or ``max_rows`` is None).
    """
    log = features.dataset.exposures
    rows = sample_rows(np.arange(len(log)), max_rows, seed=seed)
    if len(rows) == len(log):
        return features
    dataset = copy.copy(features.dataset)
    dataset.exposures = log.iloc[rows].reset_index(drop=True)
    view = copy.copy(features)
    view.dataset = dataset
    return view


@dataclass
class Predictors:
    """The world's features and the predictors trained on (a sample of) its exposure log.

    ``features`` encode the whole world (used to score every user);
    ``train_features`` is the same encoding over the exposure rows the models
    learnt from (the holdout metrics and calibration use its chronological holdout).
    """

    features: ConversionFeatures
    train_features: ConversionFeatures
    models: TrainedModels
    seed: int

    @property
    def n_rows(self) -> int:
        """Exposure rows the models saw (training plus holdout)."""
        return self.models.n_train + self.models.n_holdout


def train_predictors(
    world: World,
    *,
    features: ConversionFeatures | None = None,
    max_rows: int | None = DEFAULT_MAX_TRAIN_ROWS,
) -> Predictors:
    """Train the conversion and basket models on a seeded sample of the world's exposure log.

    ``max_rows`` caps the exposure rows (None: the whole log); the sample is
    drawn with the world's seed, so the models are deterministic.
    """
    features = features if features is not None else conversion_features(world)
    seed = world.config.seed
    train_features = sample_exposures(features, max_rows, seed=seed)
    models = train_models(train_features, seed=seed)
    return Predictors(features, train_features, models, seed)


def score_coupons(predictors: Predictors, *, chunk_users: int = 20_000) -> CouponDecision:
    """Predicted conversion, redemption and GMV of every user under every coupon option.

    The expensive step at scale (users x candidates x options model calls), so
    the app runs it only when an operator first solves coupons, then caches it.
    """
    return predicted_coupon_decision(
        predictors.features,
        predictors.models.conversion,
        predictors.models.basket,
        chunk_users=chunk_users,
    )


def lifecycle_segments(features: ConversionFeatures) -> list[str]:
    """The lifecycle segments present in the world, sorted."""
    return sorted(pd.unique(features.lifecycle).tolist())


def store_url() -> str:
    """The store URL the app uses: ``$GROWTH_DB_URL`` or the embedded SQLite default."""
    return os.environ.get(ENV_VAR) or default_db_url()


def store(url: str | None = None) -> Store:
    """The platform's store: ``url``, ``$GROWTH_DB_URL`` or the embedded SQLite database."""
    return Store(url)


# -- install control ---------------------------------------------------------------


def channel_table(dataset: Dataset) -> pd.DataFrame:
    """The editable channels table: id, name, kind and (unset) spend bounds and CPI cap."""
    if dataset.channels is None:
        raise ValueError("this dataset has no channels table; install control needs one")
    ch = dataset.channels
    return pd.DataFrame(
        {
            "channel_id": ch["channel_id"].astype(int).to_numpy(),
            "name": ch["name"].astype(str).to_numpy(),
            "kind": ch["kind"].astype(str).to_numpy() if "kind" in ch else "",
            "min_spend": 0.0,
            "max_spend": np.nan,
            "max_cpi": np.nan,
        }
    )


def fit_channel_models(dataset: Dataset) -> ChannelModels:
    """Hill response curves with intervals, fitted from ``channel_history``."""
    if dataset.channel_history is None:
        raise ValueError("this dataset has no channel_history; install control needs one")
    return fit_channels(dataset.channel_history)


def response_curves(
    models: ChannelModels,
    names: Mapping[Hashable, str],
    max_spend: float,
    *,
    n_points: int = 25,
    level: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """Fitted installs-vs-spend curve of every channel with its ``level`` interval.

    Long frame: channel, spend, installs, installs_lo, installs_hi (from
    :meth:`ChannelModels.forecast`, seeded Monte Carlo over the fit uncertainty).
    """
    if not math.isfinite(max_spend) or max_spend <= 0:
        raise ValueError(f"max_spend must be a positive number, got {max_spend}")
    frames = []
    for spend in np.linspace(max_spend / n_points, max_spend, n_points):
        fc = models.forecast(
            dict.fromkeys(models.channels, float(spend)), level=level, n_samples=300, seed=seed
        ).drop(index="total")
        frames.append(
            pd.DataFrame(
                {
                    "channel": [names.get(c, str(c)) for c in fc.index],
                    "spend": float(spend),
                    "installs": fc["installs"].to_numpy(),
                    "installs_lo": fc["installs_lo"].to_numpy(),
                    "installs_hi": fc["installs_hi"].to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class ChannelLimits:
    """Per-channel bounds from the operator's table (missing entries: no bound)."""

    min_spend: dict[int, float] = field(default_factory=dict)
    max_spend: dict[int, float] = field(default_factory=dict)
    cpi_max: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> ChannelLimits:
        """Read ``min_spend``, ``max_spend``, ``max_cpi``; raises naming a bad row and column."""
        missing = [c for c in ("channel_id", "min_spend", "max_spend", "max_cpi") if c not in table]
        if missing:
            raise ValueError(f"channels table lacks column(s) {missing}")
        out: dict[str, dict[int, float]] = {"min_spend": {}, "max_spend": {}, "cpi_max": {}}
        for pos, row in enumerate(table.itertuples(index=False)):
            cid = int(row.channel_id)
            values = {
                "min_spend": row.min_spend,
                "max_spend": row.max_spend,
                "cpi_max": row.max_cpi,
            }
            for key, raw in values.items():
                value = _optional_float(raw)
                if value is None:
                    continue
                column = "max_cpi" if key == "cpi_max" else key
                if value < 0 or (key == "cpi_max" and value == 0):
                    raise ValueError(
                        f"channels table row {pos} (channel {cid}): {column} must be "
                        f"{'> 0' if key == 'cpi_max' else '>= 0'}, got {value}"
                    )
                out[key][cid] = value
            lo, hi = out["min_spend"].get(cid), out["max_spend"].get(cid)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(
                    f"channels table row {pos} (channel {cid}): min_spend {lo} > max_spend {hi}"
                )
        out["min_spend"] = {k: v for k, v in out["min_spend"].items() if v > 0}
        return cls(**out)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`optimize_installs` / :func:`cheapest_budget`."""
        return {
            "min_spend": self.min_spend or None,
            "max_spend": self.max_spend or None,
            "cpi_max": self.cpi_max or None,
        }


def _optional_float(raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    value = float(raw)
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def clean_targets(targets: Mapping[str, float | None]) -> dict[str, float]:
    """Positive targets only (0 or empty means 'no target'); names must be funnel metrics."""
    out = {}
    for name, raw in targets.items():
        if name not in ("installs", "logins", "retained"):
            raise ValueError(f"unknown target {name!r}; use installs, logins or retained")
        value = _optional_float(raw)
        if value is not None and value < 0:
            raise ValueError(f"target {name} must be >= 0, got {value}")
        if value:
            out[name] = value
    return out


@dataclass
class InstallResult:
    """An operator's install solve: the plan, the Pareto front and store-ready rows."""

    outcome: InstallOutcome
    settings: InstallSettings
    limits: ChannelLimits
    targets: dict[str, float]

    @property
    def plan(self) -> InstallPlan:
        return self.outcome.plan

    @property
    def feasible(self) -> bool:
        return self.plan.status != "infeasible"

    def split(self) -> pd.DataFrame:
        """The chosen split per channel (with install intervals when feasible)."""
        frame = self.plan.to_frame()
        frame.insert(0, "channel", [self.outcome.channel_names[int(c)] for c in frame.index])
        if self.feasible:
            fc = self.outcome.forecast
            frame["installs_lo"] = fc.loc[frame.index, "installs_lo"].to_numpy()
            frame["installs_hi"] = fc.loc[frame.index, "installs_hi"].to_numpy()
        return frame

    def front_frame(self) -> pd.DataFrame:
        """Pareto points: spend, installs, logins, retained and certificate, one row each."""
        frame = self.outcome.front.to_frame()
        frame.insert(0, "point_id", np.arange(len(frame)))
        return frame

    def point_split(self, point_id: int) -> pd.DataFrame:
        """The channel split of Pareto point ``point_id``."""
        points = self.outcome.front.points
        if not 0 <= point_id < len(points):
            raise ValueError(f"point_id must be in [0, {len(points) - 1}], got {point_id}")
        frame = points[point_id].to_frame()
        frame.insert(0, "channel", [self.outcome.channel_names[int(c)] for c in frame.index])
        return frame

    def conflicts(self) -> pd.DataFrame:
        """Violated constraints of an infeasible request and their shortfall."""
        return pd.DataFrame(
            [(c.name, c.shortfall) for c in self.plan.conflicts],
            columns=["constraint", "shortfall"],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary stored with the run."""
        p = self.plan
        return {
            **p.certificate_dict(),
            "objective_name": p.objective_name,
            "budget_dual": p.budget_dual,
            "totals": p.totals,
            "pareto_points": len(self.outcome.front),
            "targets": self.targets,
            "conflicts": [{"name": c.name, "shortfall": c.shortfall} for c in p.conflicts],
            "min_budget": p.min_budget,
        }


def solve_install(
    models: ChannelModels,
    names: Mapping[int, str],
    settings: InstallSettings,
    *,
    table: pd.DataFrame | None = None,
    targets: Mapping[str, float | None] | None = None,
    seed: int = 0,
) -> InstallResult:
    """Optimise the budget split under the operator's bounds and targets; trace the front.

    An infeasible request is not an error: the result carries the plan's
    ``conflicts`` and ``min_budget`` (and an empty front) for the app to explain.
    """
    limits = ChannelLimits.from_table(table) if table is not None else ChannelLimits()
    goals = clean_targets(targets or {})
    kwargs = {**limits.kwargs(), "targets": goals or None}
    plan = optimize_installs(models, settings.budget, objective=settings.objective, **kwargs)
    if plan.status == "infeasible":
        front = ParetoFront(
            objectives=("installs", "retained"),
            points=[],
            epsilons=np.zeros(0),
            n_dominated_removed=0,
            solve_time_s=0.0,
        )
        forecast = pd.DataFrame()
    else:
        front = pareto_front(
            models,
            settings.budget,
            ("installs", "retained"),
            n_points=settings.pareto_points,
            **kwargs,
        )
        forecast = models.forecast(plan.spend.to_dict(), seed=seed)
    outcome = InstallOutcome(models, plan, front, forecast, {int(k): v for k, v in names.items()})
    return InstallResult(outcome, settings, limits, goals)


def cheapest_install_budget(
    models: ChannelModels,
    targets: Mapping[str, float | None],
    *,
    table: pd.DataFrame | None = None,
) -> BudgetPlan:
    """The least total daily spend meeting ``targets`` under the table's bounds."""
    goals = clean_targets(targets)
    if not goals:
        raise ValueError("give at least one positive target (installs, logins or retained)")
    limits = ChannelLimits.from_table(table) if table is not None else ChannelLimits()
    return cheapest_budget(models, goals, **limits.kwargs())


# -- coupons -------------------------------------------------------------------------


def solve_coupons(decision: CouponDecision, settings: CouponSettings) -> CouponPlan:
    """The certified coupon allocation under the platform and merchant budgets."""
    return solve_coupon_plan(decision, settings)


def allocation_by_segment(decision: CouponDecision, plan: CouponPlan) -> pd.DataFrame:
    """Users, expected cost and incremental conversions per lifecycle segment and coupon type."""
    rows = decision.plan_frame(plan.choice)
    if rows.empty:
        return pd.DataFrame(columns=["segment", "coupon_type", "users", "cost", "conversions"])
    return (
        rows.groupby(["segment", "coupon_type"], as_index=False)
        .agg(
            users=("user_id", "size"),
            cost=("expected_cost", "sum"),
            conversions=("expected_value", "sum"),
        )
        .sort_values(["segment", "coupon_type"], ignore_index=True)
    )


def value_vs_budget(
    decision: CouponDecision,
    settings: CouponSettings,
    *,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5),
) -> pd.DataFrame:
    """Incremental conversions and the budget's dual price at several platform budgets.

    The dual price is the marginal value of the next unit of platform budget
    (conversions per currency unit): the Lagrangian method's multiplier of the
    budget constraint at that budget (the method that certifies the bound).
    Budgets are solved in increasing order, each starting from the previous
    one's prices (a warm start); each row carries its own certificate.
    """
    rows = []
    warm: dict[str, float] | None = None
    for frac in sorted(fractions):
        s = settings.model_copy(update={"budget": settings.budget * frac, "method": "lagrangian"})
        plan = solve_coupon_plan(decision, s, warm_start=warm)
        a = plan.allocation
        warm = a.dual
        rows.append(
            {
                "budget": s.budget,
                "conversions": float(a.objective),
                "upper_bound": float(a.upper_bound),
                "marginal_value": float(a.dual.get("budget", math.nan)),
                "status": a.status,
            }
        )
    return pd.DataFrame(rows)


def coupon_front(decision: CouponDecision, settings: CouponSettings, n_points: int = 5):
    """The conversions-versus-GMV front under the same budgets (store-ready rows)."""
    return coupon_pareto_frame(decision, settings, n_points=n_points)


# -- push ----------------------------------------------------------------------------


def solve_push(features: ConversionFeatures, settings: PushSettings, *, seed: int) -> PushPlan:
    """Fit the open model and schedule the day under caps, gaps, capacity and shares."""
    return plan_push(features, settings, seed=seed)


def push_heatmap(plan: PushPlan) -> pd.DataFrame:
    """Pushes per hour (rows 0..23) and industry (columns)."""
    frame = plan.frame()
    table = pd.crosstab(frame["hour"], frame["industry"]).reindex(range(24), fill_value=0)
    table.index.name = "hour"
    return table


def fatigue_stats(plan: PushPlan) -> pd.DataFrame:
    """Users by number of pushes received in the day, with their share of the audience."""
    counts = np.asarray(plan.schedule.pushes_per_user)
    total = max(int(counts.sum()), 1)
    return pd.DataFrame(
        {"pushes": np.arange(len(counts)), "users": counts, "share": counts / total}
    )


# -- models --------------------------------------------------------------------------


def calibration_frame(predictors: Predictors, *, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table on the chronological holdout: per segment and probability bin,
    the mean predicted probability, the observed rate and the number of rows.

    The holdout is that of the (sampled) exposure rows the models were trained on."""
    features, models = predictors.train_features, predictors.models
    frame = features.exposure_frame()
    holdout = chronological_split(frame, 0.2)
    p = models.conversion.predict_proba(frame.X.loc[holdout])[:, 1]
    data = pd.DataFrame(
        {"segment": frame.segment[holdout], "p": p, "y": frame.y[holdout].astype(float)}
    )
    data = pd.concat([data.assign(segment="all"), data], ignore_index=True)
    data["bin"] = np.minimum((data["p"] * n_bins).astype(int), n_bins - 1)
    return (
        data.groupby(["segment", "bin"], as_index=False)
        .agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
        .sort_values(["segment", "bin"], ignore_index=True)
    )


def stored_model_metrics(db: Store) -> pd.DataFrame:
    """Model metrics by run, model, segment and metric from the store's ``v_model_metrics``."""
    return db.read("v_model_metrics")


def csde_available() -> bool:
    """Whether the CSDE predictor is registered."""
    from predictors.registry import predictor_names

    return "csde" in predictor_names("conversion")


def csde_attention(
    features: ConversionFeatures, *, seed: int = 0, max_rows: int = 20_000, epochs: int = 2
) -> pd.DataFrame:
    """Mean CSDE domain-attention weight (target, source, csde) per lifecycle segment.

    A small CSDE model is trained on (at most ``max_rows`` of) the world's raw
    exposure rows; the weights say how much each user's prediction relies on
    its own target-domain history, its source-domain history and the generated
    cross-domain embedding.
    """
    from predictors.registry import get_predictor, predictor_names

    if "csde" not in predictor_names("conversion"):
        raise LookupError("the CSDE predictor is not registered in predictors.registry.REGISTRY")
    features = sample_exposures(features, max_rows, seed=seed)  # never encode the whole log
    frame = features.exposure_frame()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(frame.y), size=min(max_rows, len(frame.y)), replace=False))
    X = frame.X.iloc[rows].reset_index(drop=True)
    y = frame.y[rows]
    csde = get_predictor("csde")
    params = {**csde.tiny_params, "epochs": epochs, "seed": seed}
    model = csde(features.spec, **params).fit(X, y)
    weights = model.attention_weights(X)
    weights["segment"] = frame.segment[rows]
    table = weights.groupby("segment").mean()
    table["n"] = weights.groupby("segment").size()
    return table.reset_index()


# -- runs ----------------------------------------------------------------------------


def save_run(
    db: Store,
    kind: str,
    operator: str,
    config: Mapping[str, Any],
    *,
    tables: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
) -> int:
    """Store an operator's solve as a run (one transaction) and return its id.

    ``tables`` maps a result table (one of :data:`PLAN_TABLES`) to its rows.
    """
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind must be one of {RUN_KINDS}, got {kind!r}")
    if not operator or not operator.strip():
        raise ValueError("operator name is empty; type your name to save the run")
    unknown = sorted(set(tables) - set(PLAN_TABLES))
    if unknown:
        raise ValueError(f"unknown result table(s) {unknown}; expected some of {PLAN_TABLES}")
    with db.run(kind=kind, config=dict(config), operator=operator.strip()) as run:
        for name, frame in tables.items():
            if frame is not None and len(frame):
                run.add(name, frame)
        run.summary = dict(summary)
    return run.id


def install_tables(result: InstallResult) -> dict[str, pd.DataFrame]:
    """Store rows of an install solve: the channel plans and the Pareto points."""
    if not result.feasible:
        return {}
    return {
        "channel_plans": result.outcome.channel_plan_frame(),
        "pareto_points": result.outcome.pareto_frame(),
    }


def coupon_tables(
    decision: CouponDecision, plan: CouponPlan, front: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """Store rows of a coupon solve: the allocation (and the front when traced)."""
    out = {"coupon_allocations": decision.plan_frame(plan.choice)}
    if front is not None:
        out["pareto_points"] = front
    return out


def push_summary(plan: PushPlan) -> dict[str, Any]:
    """JSON-safe summary of a push schedule."""
    return {
        **plan.schedule.certificate_dict(),
        "pushes": len(plan.schedule.pushes),
        "audience": len(plan.audience.user_ids),
        "open_model_auc": plan.open_model_auc,
        "fatigue_decay": plan.decay,
    }


def run_plan(db: Store, run_id: int) -> dict[str, pd.DataFrame]:
    """Every non-empty result table of one run, by table name."""
    db.get_run(run_id)  # raises LookupError naming a missing run
    out = {}
    for name in PLAN_TABLES:
        frame = db.read(name, run_id=run_id)
        if len(frame):
            out[name] = frame
    return out


def to_csv(frame: pd.DataFrame) -> bytes:
    """A frame as UTF-8 CSV bytes (for downloads)."""
    return frame.to_csv(index=False).encode("utf-8")


# -- launching -----------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_entry() -> Path:
    """The app's main script, ``Home.py`` of the installed ``app`` package."""
    spec = importlib.util.find_spec("app")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the operators' app (package 'app') is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "Home.py"


def app_command(port: int) -> list[str]:
    """The ``streamlit run`` command line of the app on ``port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_entry()),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]


def launch_app(port: int | None = None, db: str | None = None) -> int:
    """Run the app with ``streamlit run`` until it stops; returns its exit code.

    ``port``: default 8501; ``db``: store URL (sets ``GROWTH_DB_URL`` for the app).
    """
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    env = dict(os.environ)
    if db:
        env[ENV_VAR] = db
    cmd = app_command(port or 8501)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
