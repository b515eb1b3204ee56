"""The nightly job end to end on a small world, and the CLI around it."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from growth.campaigns.coupons.choice import CHOICE_Z
from growth.cli import app
from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import run_nightly
from growth.store import Store

SMALL = "data/scenarios/small.toml"


@pytest.fixture(scope="module")
def nightly_run(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('db') / 'growth.db'}")
    config = NightlyConfig(
        scenario=SMALL,
        coupons={"budget": 400.0, "merchant_budget": 40.0},
        campaign_date="2026-11-26",
    )
    return store, run_nightly(config, store=store)


def test_nightly_stores_a_certified_plan_within_budget(nightly_run):
    """A run stores its allocation, metrics and summary; spend never exceeds any budget."""
    store, result = nightly_run
    runs = store.runs()
    assert runs.iloc[0]["status"] == "succeeded"
    alloc = store.read("coupon_allocations", run_id=result.run_id)
    assert len(alloc) == int((result.plan.choice >= 0).sum()) > 0
    by_group = {
        "platform": alloc.loc[alloc["coupon_type"] != "merchant", "expected_cost"].sum(),
    }
    assert by_group["platform"] <= 400.0 + 1e-6
    for name, spend in result.plan.spend.items():
        assert spend <= result.plan.budgets[name] + 1e-6, name
    a = result.plan.allocation
    assert a.upper_bound >= a.objective - 1e-9
    metrics = store.read("model_metrics", run_id=result.run_id)
    assert {"auc", "logloss", "ece"} <= set(metrics["metric"])
    stages = {"data", "train", "score", "coupons", "truth", "push", "install", "store"}
    assert set(result.timings) == stages
    pushes = store.read("push_schedules", run_id=result.run_id)
    assert len(pushes) == len(result.push.schedule.pushes) > 0
    assert pushes.groupby("user_id").size().max() <= result.config.push.fatigue_cap
    plans = store.read("channel_plans", run_id=result.run_id)
    best = plans[plans["plan"] == "max_retained"]
    assert best["spend"].sum() <= result.config.install.budget * (1 + 1e-6)
    fronts = store.read("pareto_points", run_id=result.run_id)
    assert set(fronts["front"]) == {"coupon_conversions_vs_gmv", "installs_vs_retained"}
    for _, front in fronts.groupby("front"):
        a, b = ("conversions", "gmv") if front["gmv"].notna().all() else ("installs", "retained")
        for _, p in front.iterrows():  # no point dominates another
            dominated = (
                (front[a] >= p[a]) & (front[b] >= p[b]) & ((front[a] > p[a]) | (front[b] > p[b]))
            )
            assert not dominated.any()
    summary = store.get_run(result.run_id)["summary"]
    assert summary["coupons"]["spend"]["platform"] == pytest.approx(result.plan.spend["platform"])


def test_nightly_auto_predictor_trains_csde_and_lightgbm_on_a_two_domain_world(nightly_run):
    """The default (auto) trains both on a two-domain world, stores both; CSDE is the default."""
    store, result = nightly_run
    assert result.config.predictor == "auto" and result.predictor in {"csde", "lightgbm"}
    stored = store.read("model_metrics", run_id=result.run_id)
    assert set(stored["model"]) == {"csde", "lightgbm"}
    holdout = store.get_run(result.run_id)["summary"]["holdout"]
    assert store.get_run(result.run_id)["summary"]["predictor"] == result.predictor
    assert set(holdout) == {"csde", "lightgbm"}
    choice = store.get_run(result.run_id)["summary"]["model_choice"]
    assert choice["chosen"] == result.predictor
    assert set(choice["plan_value"]) == {"csde", "lightgbm"}


def test_nightly_stores_metrics_per_domain_and_scene_and_reads_them_back(nightly_run):
    """model_metrics holds every model's metrics per domain and scene (the decision scene's
    holdout, the other scenes' and the source's newest rows); the view groups by both."""
    store, result = nightly_run
    stored = store.read("model_metrics", run_id=result.run_id)
    samples = set(zip(stored["domain"], stored["scene"], strict=True))
    assert samples == {
        ("target", "coupon_centre"),
        ("target", "home_feed"),
        ("target", "search"),
        ("source", "offers"),
    }
    auc = stored.query("segment == 'all' and metric == 'auc'")
    assert auc.groupby("model").size().to_dict() == {"csde": 4, "lightgbm": 4}
    assert auc["value"].between(0.5, 1.0).all()
    view = store.read("v_model_metrics")
    assert {"domain", "scene"} <= set(view.columns)
    assert len(view.query("metric == 'auc' and segment == 'all'")) == 8


def test_nightly_chooses_the_model_whose_plan_is_estimated_higher(nightly_run):
    """auto keeps its default (CSDE, unless LightGBM ranks the holdout's uplift clearly
    better) unless the other model's plan is estimated higher by CHOICE_Z standard errors
    of the paired DR difference."""
    _, result = nightly_run
    diff = next(iter(result.choice.differences.values()))
    first, second = (c.name for c in result.choice.candidates)
    qini = result.metrics.query("segment == 'all' and metric == 'qini'").set_index("model")
    assert {first, second} == {"csde", "lightgbm"}
    assert first == "csde" or qini.loc[first, "value"] > qini.loc["csde", "value"]
    assert result.predictor == (second if diff.value > CHOICE_Z * diff.se else first)


def test_nightly_stores_the_plans_estimates_with_the_run(nightly_run):
    """The plan's off-policy value, GMV and spend per budget, by IPS, SNIPS and DR with
    intervals, are in plan_estimates under the run and in the summary."""
    store, result = nightly_run
    rows = store.read("plan_estimates", run_id=result.run_id)
    budgets = {f"spend:{b.name}" for b in result.plan.campaign.budgets}
    assert set(rows["quantity"]) == {"value", "gmv", *budgets}
    assert set(rows["estimator"]) == {"ips", "snips", "dr"}
    assert len(rows) == 3 * (2 + len(budgets))
    assert (rows["lower"] <= rows["estimate"]).all() and (rows["estimate"] <= rows["upper"]).all()
    assert (rows["n_rows"] > 0).all() and (rows["plan"] == "coupons").all()
    spend = rows["quantity"].str.startswith("spend:")
    assert rows.loc[~spend, "n_events"].isna().all()  # contrasts count no events
    assert (rows.loc[spend, "n_events"] >= 0).all()
    for r in rows[spend & (rows["n_events"] == 0)].itertuples():  # none seen: not a point
        assert r.upper > r.estimate, r
    estimates = store.get_run(result.run_id)["summary"]["coupons"]["estimates"]
    dr = rows.query("quantity == 'value' and estimator == 'dr'").iloc[0]
    assert estimates["value"]["dr"]["estimate"] == pytest.approx(dr["estimate"])
    # cross-fitted: the estimates are those of the plans calibrated without each fold
    assert estimates["folds"] == 2 and "cross-fitted" in estimates["method"]
    chosen = result.choice.chosen
    assert chosen.value.folds == 2 and chosen.in_sample.folds == 0
    assert dr["estimate"] != pytest.approx(chosen.in_sample.get()["estimate"])


def test_nightly_plan_beats_random_targeting_on_the_truth(nightly_run):
    """Played out on the world's ground truth under the same budgets, the platform's plan beats
    random targeting; the summary keeps each plan's spend per budget group within its budget."""
    store, result = nightly_run
    plans = result.truth.plans
    assert (
        plans.loc["platform", "incremental_conversions"]
        > plans.loc["random", "incremental_conversions"]
    )
    assert plans.loc["oracle", "pct_of_oracle"] == pytest.approx(100.0)
    truth = store.get_run(result.run_id)["summary"]["truth"]
    assert {r["plan"] for r in truth["plans"]} == {"platform", "random", "best_single", "oracle"}
    groups = {b.name: b.amount for b in result.plan.campaign.budgets}
    for row in truth["spend"]:
        assert row["budget"] == groups[row["budget_group"]]
        assert row["paid"] <= row["budget"] + 1e-6 and 0.0 <= row["held"] <= 1.0
    assert result.metrics.query("segment == 'all' and metric == 'auc'")["value"].iloc[0] > 0.7
    install = result.install_truth
    assert install.loc["platform", "retained"] > install.loc["equal_split", "retained"]
    assert install.loc["platform", "retained"] <= install.loc["oracle", "retained"] * (1 + 1e-6)


def test_failed_run_leaves_no_rows_and_is_recorded(tmp_path, monkeypatch):
    """A run that fails mid-way writes no result rows and is recorded as failed."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")

    def explode(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr("growth.jobs.pipeline.plan_candidates", explode)
    with pytest.raises(RuntimeError, match="solver exploded"):
        run_nightly(NightlyConfig(scenario=SMALL, n_users=600), store=store)
    runs = store.runs()
    assert runs.iloc[0]["status"] == "failed"
    assert "solver exploded" in runs.iloc[0]["error"]
    for table in ("coupon_allocations", "model_metrics", "plan_estimates"):
        assert store.read(table).empty


def test_cli_nightly_prints_summary_and_exit_codes(tmp_path):
    """`growth nightly` prints the summary and exits 0; a bad config exits 2 naming the field."""
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    ok = runner.invoke(
        app, ["nightly", "--scenario", SMALL, "--users", "800", "--budget", "100", "--db", db]
    )
    assert ok.exit_code == 0, ok.output
    assert "Plans scored by the world's ground truth" in ok.output
    assert "push schedule:" in ok.output and "Install plans on the true curves" in ok.output
    assert "run 1 stored" in ok.output
    assert "stage 1/8 data ..." in ok.output and "stage 2/8 train done in" in ok.output
    assert "stage 8/8 store done in" in ok.output  # every stage says when it ends
    assert "Conversion models on the newest exposures (chosen:" in ok.output  # auto: two
    bad = runner.invoke(app, ["nightly", "--scenario", SMALL, "--budget", "-5", "--db", db])
    assert bad.exit_code == 2
    assert "budget" in bad.output
    listed = runner.invoke(app, ["runs", "--db", db])
    assert listed.exit_code == 0 and "succeeded" in listed.output


def test_cli_generate_validate_round_trip(tmp_path):
    """`growth generate` writes a dataset `growth validate` accepts; corruption is named."""
    runner = CliRunner()
    out = tmp_path / "ds"
    gen = runner.invoke(
        app, ["generate", str(out), "--scenario", SMALL, "--users", "300", "--format", "csv"]
    )
    assert gen.exit_code == 0, gen.output
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    ex = pd.read_csv(out / "exposures.csv")
    ex.loc[3, "user_id"] = 10**9
    ex.to_csv(out / "exposures.csv", index=False)
    bad = runner.invoke(app, ["validate", str(out)])
    assert bad.exit_code == 2
    assert "exposures.csv" in bad.output and "user_id" in bad.output and "row 3" in bad.output


def test_nightly_reads_dataset_files(tmp_path):
    """The job runs on dataset files in the documented format (no world, so no truth table)."""
    from growth.data.io import write_dataset
    from growth.world import WorldConfig, generate_world

    world = generate_world(WorldConfig.from_toml(SMALL, n_users=1_500))
    folder = write_dataset(world.dataset, tmp_path / "files")
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    result = run_nightly(NightlyConfig(data_dir=folder, coupons={"budget": 100.0}), store=store)
    assert result.truth is None
    assert store.runs().iloc[0]["status"] == "succeeded"
    assert result.plan.spend["platform"] <= 100.0 + 1e-6
