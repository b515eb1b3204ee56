"""auto's cross-domain model follows the store's benchmark evidence (issue 14)."""

from __future__ import annotations

import pandas as pd
import pytest

from growth.jobs.config import NightlyConfig
from growth.jobs.pipeline import cross_domain_evidence, cross_domain_model, run_nightly
from growth.modeling.selection import CROSS_DOMAIN_PREDICTOR, choose_cross_domain
from growth.store import Store, newest_benchmark_metrics

SMALL = "data/scenarios/small.toml"
SCENE = "coupon_centre"  # the small world's decision scene (its most frequent target scene)


def metric_rows(rows: list[tuple], seeds: tuple[int, ...] = (1,)) -> pd.DataFrame:
    """Long metrics from (model, domain, scene, segment, auc, logloss), once per seed."""
    out = []
    for seed in seeds:
        for model, domain, scene, segment, auc, logloss in rows:
            for metric, value in (("auc", auc), ("logloss", logloss)):
                out.append(
                    {
                        "model": model,
                        "dataset": "world",
                        "domain": domain,
                        "scene": scene,
                        "segment": segment,
                        "metric": metric,
                        "value": value,
                        "seed": seed,
                    }
                )
    return pd.DataFrame(out)


EVIDENCE = metric_rows(
    [
        ("csde", "target", SCENE, "all", 0.68, 0.30),
        ("dann", "target", SCENE, "all", 0.72, 0.31),
        ("mlp", "target", SCENE, "all", 0.70, 0.29),
        ("lightgbm", "target", SCENE, "all", 0.90, 0.20),  # the fallback is no challenger
        ("csde", "target", "home_feed", "all", 0.95, 0.10),  # another scene
        ("mlp", "source", SCENE, "all", 0.99, 0.05),  # another domain, same scene name
        ("csde", "target", SCENE, "new", 0.97, 0.05),  # a segment, not all users
        ("csde", "target", "", "all", 0.99, 0.05),  # the domain overall: only without scene rows
    ]
)


def test_the_best_auc_on_the_decision_scene_is_chosen_and_other_rows_ignored():
    choice = choose_cross_domain(EVIDENCE, SCENE, run_id=7)
    assert choice.name == "dann"
    assert (choice.run_id, choice.metric, choice.value) == (7, "auc", pytest.approx(0.72))
    assert choice.scope == f"target scene {SCENE}"
    assert "benchmark run 7" in choice.reason


def test_ties_go_to_the_lower_log_loss_and_seeds_are_averaged():
    rows = metric_rows(
        [("mlp", "target", SCENE, "all", 0.7, 0.30), ("dann", "target", SCENE, "all", 0.7, 0.25)],
        seeds=(1, 2),
    )
    assert choose_cross_domain(rows, SCENE).name == "dann"
    rows.loc[
        (rows["model"] == "mlp") & (rows["metric"] == "auc") & (rows["seed"] == 2), "value"
    ] = 0.8
    assert choose_cross_domain(rows, SCENE).name == "mlp"  # mean AUC 0.75 beats 0.7


def test_without_scene_rows_the_target_domain_overall_decides():
    choice = choose_cross_domain(EVIDENCE, "search")
    assert choice.name == "csde" and choice.scope == "target domain"


def test_without_evidence_csde_stays_and_the_reason_says_so():
    for metrics in (None, EVIDENCE.iloc[:0], EVIDENCE[EVIDENCE["model"] == "csde"]):
        choice = choose_cross_domain(metrics, SCENE)
        assert choice.name == CROSS_DOMAIN_PREDICTOR and choice.run_id is None
        assert "no benchmark run of two models" in choice.reason


def _store_with_runs() -> tuple[Store, int]:
    """A store with benchmark runs: a good one, then a newer one of one model, then a failed one."""
    store = Store("sqlite://")
    store.create_schema()
    with store.run(kind="benchmark", config={}) as run:
        run.add_model_metrics(EVIDENCE)
        good = run.id
    with store.run(kind="benchmark", config={}) as run:
        run.add_model_metrics(EVIDENCE[EVIDENCE["model"] == "csde"])
    with pytest.raises(RuntimeError), store.run(kind="benchmark", config={}) as run:
        run.add_model_metrics(EVIDENCE)
        raise RuntimeError("benchmark failed")
    return store, good


def test_the_store_gives_the_newest_succeeded_benchmark_run_of_two_models():
    store, good = _store_with_runs()
    run_id, metrics = newest_benchmark_metrics(store.reader)
    assert run_id == good and len(metrics) == len(EVIDENCE)
    assert set(metrics["model"]) == set(EVIDENCE["model"])
    empty = Store("sqlite://")
    empty.create_schema()
    run_id, metrics = newest_benchmark_metrics(empty.reader)
    assert run_id is None and metrics.empty


def test_auto_challenger_pins_the_model_and_reads_no_evidence():
    store, _ = _store_with_runs()
    pinned = NightlyConfig(scenario=SMALL, auto_challenger="mlp")
    assert cross_domain_evidence(store, pinned) is None
    choice = cross_domain_model(pinned, None, SCENE)
    assert choice.name == "mlp" and "pinned" in choice.reason
    named = NightlyConfig(scenario=SMALL, predictor="lightgbm")
    assert cross_domain_model(named, None, SCENE) is None
    with pytest.raises(ValueError, match="auto_challenger"):
        NightlyConfig(scenario=SMALL, auto_challenger="lightgbm")  # the fallback itself
    with pytest.raises(ValueError, match="auto_challenger"):
        NightlyConfig(scenario=SMALL, auto_challenger="nope")


def store_naming_mlp(tmp_path) -> tuple[Store, int]:
    """A store whose one benchmark run ranks mlp above csde on the decision scene, and its id."""
    store = Store(f"sqlite:///{tmp_path / 'growth.db'}")
    store.create_schema()
    evidence = metric_rows(
        [("csde", "target", SCENE, "all", 0.60, 0.3), ("mlp", "target", SCENE, "all", 0.70, 0.3)]
    )
    with store.run(kind="benchmark", config={}) as run:
        run.add_model_metrics(evidence)
        return store, run.id


def test_nightly_trains_the_challenger_the_benchmark_evidence_names(tmp_path):
    """A fake benchmark run ranks mlp first on the decision scene: auto trains mlp, not csde."""
    store, bench = store_naming_mlp(tmp_path)
    config = NightlyConfig(
        scenario=SMALL,
        n_users=600,
        coupons={"budget": 100.0},
        campaign_date="2026-11-26",
        allow_empty_plan=True,
    )
    result = run_nightly(config, store=store)
    summary = store.get_run(result.run_id)["summary"]
    assert summary["cross_domain"]["name"] == "mlp"
    assert summary["cross_domain"]["run_id"] == bench
    assert summary["cross_domain"]["value"] == pytest.approx(0.70)
    assert set(result.metrics["model"]) == {"mlp", "lightgbm"}


def test_cli_auto_challenger_flag_reaches_the_config(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import growth.cli
    from growth.cli import app

    seen = []
    monkeypatch.setattr(growth.cli, "_run_job", lambda cfg, *a, **k: seen.append(cfg))
    db = f"sqlite:///{tmp_path / 'growth.db'}"
    args = ["nightly", "--scenario", SMALL, "--db", db, "--auto-challenger"]
    ok = CliRunner().invoke(app, [*args, "dann"])
    assert ok.exit_code == 0, ok.output
    assert [c.auto_challenger for c in seen] == ["dann"]
    bad = CliRunner().invoke(app, [*args, "nope"])
    assert bad.exit_code == 2 and "auto_challenger" in bad.output


def test_the_app_trains_the_challenger_the_benchmark_evidence_names(tmp_path):
    """Without a stored nightly run the app trains as the job would: the cross-domain model
    the store's benchmark evidence names (mlp here), not the default csde."""
    from growth import services as svc

    store, _ = store_naming_mlp(tmp_path)
    world = svc.load_world("small", 600)
    predictors = svc.load_predictors(world, store)
    assert predictors.run_id is None
    assert set(predictors.metrics["model"]) == {"mlp", "lightgbm"}
