"""Services behind the operators' Streamlit app (``app/``): every computation the app shows.

The app only lays out widgets and charts and calls these functions, one module
per page (:mod:`~growth.services.install`, :mod:`~growth.services.coupons`,
:mod:`~growth.services.push`, :mod:`~growth.services.models`,
:mod:`~growth.services.runs`) plus what every page shares
(:mod:`~growth.services.session`: the world, the store, the predictors).  They
call the platform's own code (campaigns, modeling, the store); nothing here
imports Streamlit, so the services are testable without a browser.  Pages use
them as ``from growth import services as svc``.
"""

from growth.campaigns.coupons.decision import CouponDecision
from growth.campaigns.settings import CouponSettings, InstallSettings, PushSettings
from growth.services.coupons import (
    allocation_by_segment,
    answer,
    coupon_front,
    coupon_tables,
    plan_coupons,
    plan_estimates,
    plan_for,
    plan_pacer,
    value_vs_budget,
)
from growth.services.experiments import (
    LEARNERS,
    ExperimentSettings,
    analyse,
    comparison,
    experiment_config,
    experiment_from_files,
    experiment_tables,
    save_experiment,
    world_experiment,
)
from growth.services.install import (
    InstallPlan,
    channel_table,
    cheapest_install_budget,
    clean_targets,
    fit_channel_models,
    limits_from_table,
    plan_install,
    response_curves,
)
from growth.services.models import (
    calibration_frame,
    csde_attention,
    csde_available,
    option_calibration_frame,
    stored_model_metrics,
    uplift_scale_frame,
)
from growth.services.push import fatigue_stats, open_model_quality, plan_push, push_heatmap
from growth.services.runs import PLAN_TABLES, RUN_KINDS, run_plan, save_run, to_csv
from growth.services.session import (
    Predictors,
    app_users,
    conversion_features,
    default_scenario,
    lifecycle_segments,
    load_predictors,
    load_world,
    scenarios,
    score_coupons,
    store,
    store_url,
    stored_run,
    train_predictors,
    world_config,
)
from growth.world import World

__all__ = [
    "LEARNERS",
    "PLAN_TABLES",
    "RUN_KINDS",
    "CouponDecision",
    "CouponSettings",
    "ExperimentSettings",
    "InstallPlan",
    "InstallSettings",
    "Predictors",
    "PushSettings",
    "World",
    "allocation_by_segment",
    "analyse",
    "answer",
    "app_users",
    "calibration_frame",
    "channel_table",
    "cheapest_install_budget",
    "clean_targets",
    "comparison",
    "conversion_features",
    "coupon_front",
    "coupon_tables",
    "csde_attention",
    "csde_available",
    "default_scenario",
    "experiment_config",
    "experiment_from_files",
    "experiment_tables",
    "fatigue_stats",
    "fit_channel_models",
    "lifecycle_segments",
    "limits_from_table",
    "load_predictors",
    "load_world",
    "open_model_quality",
    "option_calibration_frame",
    "plan_coupons",
    "plan_estimates",
    "plan_for",
    "plan_install",
    "plan_pacer",
    "plan_push",
    "push_heatmap",
    "response_curves",
    "run_plan",
    "save_experiment",
    "save_run",
    "scenarios",
    "score_coupons",
    "store",
    "store_url",
    "stored_model_metrics",
    "stored_run",
    "to_csv",
    "train_predictors",
    "uplift_scale_frame",
    "value_vs_budget",
    "world_config",
    "world_experiment",
]
