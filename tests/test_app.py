"""The operators' Streamlit app, driven headless with streamlit.testing.v1.AppTest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from streamlit.testing.v1 import AppTest

from growth import cli
from growth import services as svc
from growth.campaigns.coupons import CouponCampaign, plan_coupons, true_coupon_decision
from growth.campaigns.settings import CouponSettings, InstallSettings
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.services.session import holdout_logs
from growth.store import Store

APP = Path(__file__).resolve().parents[1] / "app"
SCENARIOS = APP.parent / "data" / "scenarios"
PAGES = ["Home.py", *(f"pages/{p.name}" for p in sorted((APP / "pages").glob("*.py")))]
TIMEOUT = 300  # the first page in a process trains, scores and plans both candidates (cached)


@pytest.fixture
def app_env(tmp_path, monkeypatch) -> str:
    """A tmp SQLite store and a small world for the app."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("GROWTH_DB_URL", url)
    monkeypatch.setenv("GROWTH_APP_SCENARIO", "small")
    monkeypatch.setenv("GROWTH_APP_USERS", "1500")
    return url


def _run(page: str) -> AppTest:
    at = AppTest.from_file(str(APP / page), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, f"{page} raised: {[e.message for e in at.exception]}"
    return at


def _save(at: AppTest, key: str, operator: str) -> None:
    """Type the operator's name and press the page's "Save as run" button."""
    at.text_input(key=f"operator_name_{key}").input(operator)
    next(b for b in at.button if b.label == "Save as run").click().run()
    assert not at.exception
    assert at.success and "Saved as run" in at.success[-1].value


def test_every_page_renders(app_env):
    """Every page of the app renders on a fresh store without an exception."""
    for page in PAGES:
        at = _run(page)
        assert at.title, f"{page} has no title"
    assert len(PAGES) == 7


def test_install_solve_changes_chart_and_saves_run(app_env):
    """Entering a budget and solving changes the split chart; saving stores a run with its plan."""
    at = _run("pages/1_Install_control.py")
    at.number_input(key="install_budget").set_value(2_000.0)
    at.slider(key="pareto_points").set_value(3)
    at.button(key="install_solve").click().run()
    assert not at.exception
    split_small = at.get("plotly_chart")[1].proto.spec
    assert at.slider(key="pareto_pick")  # the front's point picker
    at.number_input(key="install_budget").set_value(8_000.0)
    at.button(key="install_solve").click().run()
    assert not at.exception
    split_large = at.get("plotly_chart")[1].proto.spec
    assert split_small != split_large

    _save(at, "install", "ana")
    runs = Store(app_env).runs()
    assert runs.loc[0, "kind"] == "install" and runs.loc[0, "operator"] == "ana"
    plan = svc.run_plan(Store(app_env), int(runs.loc[0, "run_id"]))
    assert plan["channel_plans"]["spend"].groupby(plan["channel_plans"]["plan"]).sum().max() <= (
        8_000.0 * 1.001
    )


def test_install_infeasible_targets_explained(app_env):
    """Unreachable targets show the conflicting constraint and the smallest budget instead of a plan."""
    at = _run("pages/1_Install_control.py")
    at.number_input(key="install_budget").set_value(100.0)
    at.number_input(key="t_retained").set_value(1e6)
    at.button(key="install_solve").click().run()
    assert not at.exception
    assert at.error, "no error message for infeasible targets"
    assert "cannot all hold" in at.error[0].value
    conflicts = at.dataframe[-1].value
    assert "target[retained]" in conflicts["constraint"].tolist()


def test_coupon_solve_and_runs_page_exports(app_env):
    """A coupon solve shows the plan's off-policy estimates; saved by an operator, the plan
    and its estimates appear in the store and on the Runs page with a CSV download."""
    at = _run("pages/2_Coupons.py")
    at.number_input(key="coupon_budget").set_value(200.0)
    at.button(key="coupon_solve").click().run()
    assert not at.exception
    assert at.get("plotly_chart"), "no allocation chart after solving"
    shown = next(d.value for d in at.dataframe if "estimator" in d.value.columns)
    assert {"value", "gmv", "spend:platform"} <= set(shown["quantity"])
    _save(at, "coupons", "bo")
    runs = Store(app_env).runs()
    assert runs.loc[0, "kind"] == "coupons" and runs.loc[0, "operator"] == "bo"
    saved = Store(app_env).read("plan_estimates", run_id=int(runs.loc[0, "run_id"]))
    assert len(saved) == len(shown) and set(saved["estimator"]) == {"ips", "snips", "dr"}
    summary = Store(app_env).get_run(int(runs.loc[0, "run_id"]))["summary"]
    assert summary["budgets"]["platform"] == pytest.approx(200.0)

    page = _run("pages/5_Runs.py")
    assert any("coupon_allocations" in m.value for m in page.markdown)
    assert page.get("download_button"), "no CSV export on the Runs page"


def test_channel_limits_name_the_bad_row():
    """A negative bound or min above max in the channels table names the row and column."""
    table = pd.DataFrame(
        {
            "channel_id": [0, 1],
            "min_spend": [0.0, 5.0],
            "max_spend": [None, 1.0],
            "max_cpi": [None, None],
        }
    )
    with pytest.raises(ValueError, match=r"row 1 .*min_spend 5\.0 > max_spend 1\.0"):
        svc.limits_from_table(table)
    table.loc[1, "min_spend"] = -1.0
    with pytest.raises(ValueError, match=r"row 1 .*min_spend must be >= 0"):
        svc.limits_from_table(table)
    with pytest.raises(ValueError, match="unknown target 'gmv'"):
        svc.clean_targets({"gmv": 1.0})


def test_value_vs_budget_is_monotone(app_env):
    """More platform budget never buys fewer conversions, and the dual price is non-negative."""
    world = svc.load_world("small", 1500)
    pred = svc.train_predictors(world)
    from growth.campaigns.settings import CouponSettings

    decision = svc.score_coupons(pred)
    curve = svc.value_vs_budget(decision, CouponSettings(budget=200.0, merchant_budget=20.0))
    assert curve["conversions"].is_monotonic_increasing
    assert (curve["marginal_value"].dropna() >= 0).all()
    assert curve["marginal_value"].notna().any()


def test_launch_command_and_settings():
    """The launch command runs the app's entry headless on the requested port."""
    cmd = cli.app_command(8765)
    assert cmd[-8:] == [
        "--server.headless", "true", "--server.port", "8765",
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    assert Path(cmd[4]).is_file()
    with pytest.raises(ValueError, match="port"):
        cli.launch_app(port=70_000)
    assert InstallSettings(budget=1.0).objective == "retained"


def test_push_solve_shows_heatmap_and_fatigue(app_env):
    """Solving the push day draws the hour x industry heatmap, the open model's held-out
    quality by hour and segment, and respects the fatigue cap."""
    at = _run("pages/3_Push.py")
    at.number_input(key="max_users").set_value(300)
    at.number_input(key="fatigue_cap").set_value(1)
    at.button(key="push_solve").click().run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 4, "expected the heatmap, the open model by hour (2) and fatigue"
    assert '"heatmap"' in charts[0].proto.spec
    assert "AUC by hour" in charts[1].proto.spec, "no open-model quality by hour"
    assert len(at.dataframe) >= 1, "no open-model table by segment"
    assert any("pushes to" in c.value for c in at.caption), "no schedule summary"
    _save(at, "push", "cy")
    run = Store(app_env).runs().iloc[0]
    assert run["kind"] == "push"
    rows = svc.run_plan(Store(app_env), int(run["run_id"]))["push_schedules"]
    assert rows.groupby("user_id").size().max() <= 1


@pytest.mark.slow
def test_models_page_shows_csde_attention(app_env):
    """The Models page shows the coupon effects per segment (the log against the model, and
    the stretch applied), trains a small CSDE model on demand and charts attention by segment."""
    if not svc.csde_available():
        pytest.skip("the CSDE predictor is not registered")
    at = _run("pages/4_Models.py")
    assert len(at.get("plotly_chart")) >= 1  # calibration
    stretch = [df.value for df in at.dataframe if "beta" in df.value.columns]
    assert stretch and len(stretch[0]) > 0, "no coupon effects per segment"
    assert (stretch[0]["factor"] >= 1.0).all()
    assert (stretch[0]["applied"] == stretch[0]["factor"]).all()  # stretch_effects is on
    at.button(key="csde_button").click().run()
    assert not at.exception
    assert '"csde"' in at.get("plotly_chart")[-1].proto.spec


def test_coupon_type_budget_in_app_solve(app_env):
    """A red-packet budget typed on the Coupons page caps the saved plan's red-packet spend."""
    at = _run("pages/2_Coupons.py")
    at.number_input(key="coupon_budget").set_value(300.0)
    at.button(key="coupon_solve").click().run()
    assert not at.exception
    uncapped = at.session_state["coupon_result"][1].spend
    assert at.session_state["coupon_result"][1].allocation.status != "infeasible"
    at.number_input(key="type_budget_red_packet").set_value(25.0)
    at.button(key="coupon_solve").click().run()
    assert not at.exception
    _save(at, "coupons", "di")
    run = Store(app_env).runs().iloc[0]
    summary = Store(app_env).get_run(int(run["run_id"]))["summary"]
    assert summary["budgets"]["type[red_packet]"] == pytest.approx(25.0)
    assert summary["spend"]["type[red_packet]"] <= 25.0 * (1 + 1e-6)
    rows = svc.run_plan(Store(app_env), int(run["run_id"]))["coupon_allocations"]
    red_spend = rows.loc[rows["coupon_type"] == "red_packet", "expected_cost"].sum()
    assert red_spend <= 25.0 * (1 + 1e-6)
    assert "type[red_packet]" not in uncapped  # no cap typed: no type budget


def test_coupon_type_budget_in_nightly_plan():
    """The nightly config's [coupons.type_budgets] caps that type's spend in the plan and front."""
    text = (Path(__file__).resolve().parents[1] / "data" / "nightly.toml").read_text()
    assert "# [coupons.type_budgets]" in text  # the documented example
    world = svc.load_world("small", 1500)
    truth = true_coupon_decision(world)
    base = CouponSettings(budget=200.0, merchant_budget=20.0, method="lagrangian")
    free = plan_coupons(truth, base)
    red_free = truth.plan_frame(free.choice).query("coupon_type == 'red_packet'")
    cap = 0.25 * float(red_free["expected_cost"].sum())
    assert cap > 1.0, "the uncapped plan must spend on red packets for the cap to bind"

    config = NightlyConfig(
        scenario=None, data_dir=Path("unused"),
        coupons={**base.model_dump(), "type_budgets": {"red_packet": cap}},
    )  # fmt: skip
    plan = plan_coupons(truth, config.coupons)
    spent = truth.plan_frame(plan.choice).query("coupon_type == 'red_packet'")
    assert spent["expected_cost"].sum() <= cap * (1 + 1e-6)
    assert plan.spend["type[red_packet]"] == pytest.approx(spent["expected_cost"].sum())
    assert plan.summary()["budgets"]["type[red_packet]"] == pytest.approx(cap)
    assert plan.spend["platform"] <= base.budget * (1 + 1e-6)
    front = CouponCampaign(truth, config.coupons).front(n_points=3)
    assert (front["spend"] <= base.budget + 40.0 + 1e-6).all()

    with pytest.raises(ValueError, match="type_budgets key 'coffee'"):
        CouponSettings(type_budgets={"coffee": 1.0})
    with pytest.raises(ValueError, match=r"type_budgets\['red_packet'\] must be >= 0"):
        CouponSettings(type_budgets={"red_packet": -1.0})


def test_app_plans_with_the_nightly_runs_models_and_scores(tmp_path, monkeypatch):
    """Without a stored run the app trains as the nightly job does (the same predictor choice
    at the same budgets, keeping the chosen model's scores); with a succeeded nightly run of
    the same world it reuses that run's models, scores, spend bias and value folds: at the
    nightly's settings it makes the nightly's plan and values it the same way."""
    world = svc.load_world("small", 800)
    other = svc.load_world("small", 800, seed=world.config.seed + 1)
    db = Store(f"sqlite:///{tmp_path / 'g.db'}")
    monkeypatch.setenv("GROWTH_DATA_ROOT", str(tmp_path / "data"))  # the run's files go here
    trained = svc.load_predictors(world, db)
    assert trained.run_id is None and "trained in the app" in trained.source
    assert svc.score_coupons(trained).n_users == len(world.dataset.users)

    config = NightlyConfig(
        scenario=SCENARIOS / "small.toml",
        n_users=800,
        push={"enabled": False},
        install={"enabled": False},
    )  # the default budgets, under which the app chooses its model too
    result = run_nightly(config, store=db)
    stored = svc.load_predictors(world, db)
    assert stored.run_id == result.run_id and f"nightly run {result.run_id}" in stored.source
    assert stored.predictor == result.predictor == trained.predictor
    assert svc.score_coupons(stored) is stored.decision
    again = replace(stored, decision=None)
    rescored = svc.score_coupons(again)  # the saved model, re-scored
    np.testing.assert_allclose(rescored.conversion, stored.decision.conversion, rtol=1e-6)
    # the cross-fit's folds travel with the run: calibrators and scores, re-scored alike
    assert len(stored.value_folds) == 2 and len(again.value_folds) == 2
    for saved, redone in zip(stored.value_folds, again.value_folds, strict=True):
        assert saved.calibrator == redone.calibrator
        np.testing.assert_allclose(redone.decision.conversion, saved.decision.conversion, rtol=1e-6)
        assert not np.allclose(saved.decision.conversion, stored.decision.conversion)
    plan = svc.plan_for(stored, config.coupons)  # as the nightly plans: its buffer's spend bias
    np.testing.assert_array_equal(plan.choice, result.plan.choice)
    nightly_bias = result.choice.chosen.models.calibration
    pd.testing.assert_frame_equal(stored.calibration, nightly_bias)
    tight = config.coupons.model_copy(update={"budget": 40.0})  # a buffer that binds
    spend_sd = plan_coupons(stored.decision, tight).risk["platform"].spend_sd
    assert svc.plan_for(stored, tight).risk["platform"].spend_sd > spend_sd
    rows = svc.plan_estimates(stored, plan)
    nightly = db.read("plan_estimates", run_id=result.run_id)
    keys = ["quantity", "estimator"]
    both = rows.merge(nightly, on=keys, suffixes=("", "_nightly"))
    assert len(both) == len(rows) == len(nightly)  # the app values a plan as the nightly did
    np.testing.assert_allclose(both["estimate"], both["estimate_nightly"], rtol=1e-4, atol=1e-6)
    rows_of = [len(log.arm) for log in holdout_logs(stored)]  # the whole holdout, each fold
    assert rows_of[1] > 0 and rows_of[2] > 0 and rows_of[1] + rows_of[2] == rows_of[0]
    assert (rows["n_rows"] == rows_of[0]).all()  # each fold valued on its own rows
    columns = ["model", "domain", "scene", "segment", "metric", "value"]
    decision = stored.metrics.query("domain == 'target' and scene == 'coupon_centre'")
    pd.testing.assert_frame_equal(
        decision.reset_index(drop=True), result.metrics[columns].reset_index(drop=True)
    )
    assert set(stored.metrics["scene"]) == {"coupon_centre", "home_feed", "search", "offers"}
    assert svc.stored_run(db, other.config.fingerprint()) is None


def test_experiment_page_analyses_the_world_log_and_saves_a_run(app_env, monkeypatch):
    """Analysing the world's log shows the comparison and both charts; saving stores the run."""
    monkeypatch.setenv("GROWTH_APP_USERS", "2500")  # arms of ~300 rows each
    at = AppTest.from_file(str(APP / "pages/6_Experiment.py"), default_timeout=240)
    at.run()
    assert not at.exception and at.title[0].value == "Experiment"
    at.number_input(key="experiment_budget").set_value(150.0)
    at.multiselect(key="experiment_learners").set_value(["t_lightgbm", "x"])
    at.button(key="experiment_analyse").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    assert (
        "Uplift by arm" in charts[0].proto.spec
        and "Value per user vs budget" in charts[1].proto.spec
    )
    table = at.dataframe[0].value
    assert {"plan", "random", "best_arm", "control"} <= set(table["policy"])
    why = next(c.value for c in at.caption if c.value.startswith("Why: "))
    assert "t_lightgbm first (the incumbent)" in why and "x's plan" in why
    at.text_input(key="operator_name_experiment").input("ana")
    next(b for b in at.button if b.label == "Save as run").click().run()
    assert not at.exception
    assert at.success and "Saved as run" in at.success[-1].value
    runs = Store(app_env).runs()
    assert runs.loc[0, "kind"] == "experiment" and runs.loc[0, "operator"] == "ana"


def test_experiment_page_says_why_it_cannot_analyse(app_env):
    """Upload chosen but no files given: an error, no exception, nothing stored."""
    at = _run("pages/6_Experiment.py")
    at.radio(key="experiment_source").set_value("Upload files")
    at.button(key="experiment_analyse").click().run()
    assert not at.exception
    assert at.error and "upload the log and arms files first" in at.error[0].value
    assert Store(app_env).runs().empty
