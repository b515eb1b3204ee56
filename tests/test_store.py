"""Tests of the SQL store: schema, atomic runs, validation, views, read-only access."""

from __future__ import annotations

import doctest
import json
import re
import sqlite3
import threading
from datetime import UTC, date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateIndex, CreateTable

import growth.store.runs as run_rows
from growth.store import (
    EXAMPLE_QUERIES,
    RESULT_TABLES,
    TABLE_NAMES,
    VIEW_NAMES,
    Base,
    RunFailed,
    Store,
    code_version,
    normalise_rows,
)

DAY = date(2026, 11, 26)

COUPONS = pd.DataFrame(
    {
        "user_id": [1, 2, 3, 4],
        "segment": ["active", "active", "active", "new"],
        "option_id": ["rp5", "rp5", "none", "fr10"],
        "coupon_type": ["red_packet", "red_packet", "none", "full_reduction"],
        "face_value": [5.0, 5.0, 0.0, 10.0],
        "expected_value": [0.10, 0.20, 0.0, 0.30],
        "expected_cost": [2.0, 3.0, 0.0, 4.0],
        "expected_gmv": [30.0, 40.0, 10.0, np.nan],
    }
)
PUSHES = pd.DataFrame(
    {
        "user_id": [1, 2, 1, 3],
        "message_id": [11, 11, 12, 12],
        "industry": ["fashion", "fashion", "food", "food"],
        "hour": [9, 9, 12, 9],
        "expected_open": [0.2, 0.3, 0.5, 0.1],
    }
)
CHANNELS = [
    {
        "plan": "max_retained",
        "channel_id": 1,
        "channel_name": "app_store",
        "spend": 100.0,
        "installs": 50.0,
        "logins": 40.0,
        "retained": 20.0,
        "installs_lo": 45.0,
        "installs_hi": 55.0,
    },
    {
        "plan": "max_retained",
        "channel_id": 2,
        "channel_name": "ad_network",
        "spend": 0.0,
        "installs": 0.0,
        "logins": 0.0,
        "retained": 0.0,
    },
]
PARETO = pd.DataFrame(
    {
        "front": ["coupons"] * 3,
        "point_id": [0, 1, 2],
        "spend": [0.0, 5.0, 9.0],
        "conversions": [0.0, 0.3, 0.6],
        "chosen": [False, True, False],
    }
)
METRICS = [
    {"model": "lgbm", "dataset": "sim", "segment": "all", "metric": "auc", "value": 0.7, "seed": 0},
    {"model": "lgbm", "dataset": "sim", "segment": "all", "metric": "auc", "value": 0.8, "seed": 1},
    {
        "model": "lgbm",
        "dataset": "sim",
        "segment": "new",
        "metric": "auc",
        "value": np.nan,
        "seed": 0,
    },
]

ESTIMATES = [
    {
        "plan": "coupons",
        "quantity": q,
        "estimator": e,
        "estimate": 10.0,
        "lower": 8.0,
        "upper": 12.0,
        "n_rows": 500,
        "n_users": 120,
    }
    for q in ("value", "spend:platform")
    for e in ("ips", "dr")
]


def _write_all(store: Store, **run_kwargs: object) -> int:
    with store.run(
        kind="nightly", config={"budget": 10.0}, operator="test", campaign_date=DAY, **run_kwargs
    ) as run:
        run.add_coupon_allocations(COUPONS)
        run.add_push_schedule(PUSHES)
        run.add_channel_plan(CHANNELS)
        run.add_pareto_points(PARETO)
        run.add_model_metrics(METRICS)
        run.add_plan_estimates(ESTIMATES)
        run.summary = {"objective": np.float64(0.6), "n_users": np.int64(4)}
    return run.id


def _result_row_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(tbl)).scalar_one()
            for tbl in RESULT_TABLES.values()
        )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'growth.db'}")


@pytest.fixture
def populated(store: Store) -> tuple[Store, int]:
    return store, _write_all(store)


def test_tables_and_views_created_idempotently(tmp_path: Path) -> None:
    """Store() creates every table and view, and opening the same database again is harmless."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    first = Store(url)
    Store(url)  # second open: create-if-missing must not fail or duplicate anything
    insp = inspect(first.engine)
    assert set(TABLE_NAMES) <= set(insp.get_table_names())
    assert set(VIEW_NAMES) == set(insp.get_view_names())
    assert {"ix_coupon_allocations_run_id"} <= {
        ix["name"] for ix in insp.get_indexes("coupon_allocations")
    }


def test_ddl_compiles_for_postgresql() -> None:
    """The table DDL is portable: every table and index compiles for PostgreSQL."""
    dialect = postgresql.dialect()
    for tbl in Base.metadata.sorted_tables:
        ddl = str(CreateTable(tbl).compile(dialect=dialect))
        assert f"CREATE TABLE {tbl.name}" in ddl
        for index in tbl.indexes:
            str(CreateIndex(index).compile(dialect=dialect))
    runs_ddl = str(CreateTable(Base.metadata.tables["runs"]).compile(dialect=dialect))
    assert "TIMESTAMP WITH TIME ZONE" in runs_ddl
    assert "ck_runs_status" in runs_ddl


def test_successful_run_views_aggregate(populated: tuple[Store, int]) -> None:
    """A succeeded run's rows are stored and every view aggregates them to the right numbers."""
    store, run_id = populated
    run = store.get_run(run_id)
    assert run["status"] == "succeeded" and run["error"] is None
    assert run["campaign_date"] == DAY and run["started_at"].tzinfo is not None
    assert run["config"] == {"budget": 10.0}

    coupons = store.read("v_coupon_by_segment_type", run_id=run_id)
    got = {(r.segment, r.coupon_type): r for r in coupons.itertuples()}
    assert set(got) == {("active", "none"), ("active", "red_packet"), ("new", "full_reduction")}
    rp = got[("active", "red_packet")]
    assert (rp.users, rp.spend, rp.expected_gmv) == (2, 5.0, 70.0)
    assert rp.expected_incremental_conversions == pytest.approx(0.3)
    assert rp.cost_per_incremental_conversion == pytest.approx(5.0 / 0.3)
    assert pd.isna(got[("active", "none")].cost_per_incremental_conversion)  # 0 conversions
    assert pd.isna(got[("new", "full_reduction")].expected_gmv)  # only NULL gmv
    assert (coupons["campaign_date"] == pd.Timestamp(DAY)).all()

    push = store.read("v_push_by_hour_industry", run_id=run_id)
    by_key = {(r.hour, r.industry): r for r in push.itertuples()}
    assert set(by_key) == {(9, "fashion"), (9, "food"), (12, "food")}
    fashion = by_key[(9, "fashion")]
    assert (fashion.pushes, fashion.users) == (2, 2)
    assert fashion.expected_opens == pytest.approx(0.5)
    assert fashion.expected_open_rate == pytest.approx(0.25)

    plans = store.read("v_channel_plans", run_id=run_id).set_index("channel_id")
    assert plans.loc[1, "cost_per_install"] == pytest.approx(2.0)
    assert plans.loc[1, "cost_per_retained"] == pytest.approx(5.0)
    assert plans.loc[1, "installs_lo"] == 45.0
    assert pd.isna(plans.loc[2, "cost_per_install"]) and pd.isna(plans.loc[2, "installs_hi"])

    pareto = store.read("v_pareto_points", run_id=run_id)
    assert pareto["point_id"].tolist() == [0, 1, 2]
    assert pareto["chosen"].tolist() == [False, True, False]
    assert pareto["installs"].isna().all()  # not applicable to a coupon front

    metrics = store.read("v_model_metrics", run_id=run_id).set_index("segment")
    assert metrics.loc["all", "value"] == pytest.approx(0.75)
    assert (metrics.loc["all", "min_value"], metrics.loc["all", "max_value"]) == (0.7, 0.8)
    assert metrics.loc["all", "n_values"] == 2
    assert pd.isna(metrics.loc["new", "value"]) and metrics.loc["new", "n_values"] == 0

    raw = store.read("coupon_allocations", run_id=run_id)
    assert len(raw) == 4 and (raw["run_id"] == run_id).all()
    assert raw["user_id"].tolist() == [1, 2, 3, 4]


def test_plan_estimates_are_written_with_the_run_and_read_back(
    populated: tuple[Store, int],
) -> None:
    """A plan's off-policy estimates land in plan_estimates under the run, typed on read."""
    store, run_id = populated
    rows = store.read("plan_estimates", run_id=run_id)
    assert len(rows) == len(ESTIMATES) and (rows["run_id"] == run_id).all()
    assert set(rows["quantity"]) == {"value", "spend:platform"}
    assert rows["n_rows"].dtype.kind == "i" and (rows["lower"] <= rows["upper"]).all()


def test_exception_mid_run_leaves_no_rows_and_a_failed_run(store: Store) -> None:
    """An exception in the body propagates, persists no result rows and records the run failed."""
    with (
        pytest.raises(RuntimeError, match="solver exploded"),
        store.run(kind="coupons", operator="test") as run,
    ):
        run.add_coupon_allocations(COUPONS)
        run.add_push_schedule(PUSHES)
        run.summary = {"stage": "solve"}
        raise RuntimeError("solver exploded")
    assert _result_row_count(store) == 0
    failed = store.get_run(run.id)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("RuntimeError: solver exploded")
    assert "Traceback" in failed["error"]
    assert failed["finished_at"] is not None and failed["duration_s"] >= 0
    assert failed["summary"] == {"stage": "solve"}
    with pytest.raises(RuntimeError, match="closed"):
        run.add_push_schedule(PUSHES)


def test_interrupt_mid_run_is_recorded_failed(store: Store) -> None:
    """A KeyboardInterrupt (not an Exception) still closes the run as failed and propagates."""
    with pytest.raises(KeyboardInterrupt), store.run(kind="push", operator="t") as run:
        run.add_push_schedule(PUSHES)
        raise KeyboardInterrupt
    assert _result_row_count(store) == 0
    assert store.get_run(run.id)["error"].startswith("KeyboardInterrupt")


def test_failure_while_writing_rolls_back_every_table(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results are written in one transaction: a failure after the first table keeps nothing."""
    real_insert = run_rows.insert_frame
    calls: list[str] = []

    def insert_then_fail(conn, tbl, frame, run_id):  # type: ignore[no-untyped-def]
        calls.append(tbl.name)
        if len(calls) > 1:
            raise OSError("disk full")
        real_insert(conn, tbl, frame, run_id)

    monkeypatch.setattr(run_rows, "insert_frame", insert_then_fail)
    with pytest.raises(RunFailed, match="disk full") as info:
        _write_all(store)
    assert len(calls) == 2  # the first table really was inserted before the failure
    assert _result_row_count(store) == 0
    run = store.get_run(info.value.run_id)
    assert run["status"] == "failed" and "OSError: disk full" in run["error"]


@pytest.mark.parametrize(
    ("method", "rows", "message"),
    [
        (
            "add_coupon_allocations",
            COUPONS.assign(colour="red"),
            r"coupon_allocations: column 'colour': unknown column\(s\) \['colour'\]",
        ),
        (
            "add_coupon_allocations",
            COUPONS.drop(columns="expected_cost"),
            r"coupon_allocations: column 'expected_cost': missing required column\(s\) \['expected_cost'\]",
        ),
        (
            "add_coupon_allocations",
            COUPONS.assign(run_id=1),
            r"coupon_allocations: column 'run_id': set by the store",
        ),
        (
            "add_coupon_allocations",
            COUPONS.assign(expected_cost=[1.0, np.nan, 1.0, 1.0]),
            r"coupon_allocations: column 'expected_cost', row 1: missing value .*\(1 missing in all\)",
        ),
        (
            "add_coupon_allocations",
            COUPONS.assign(expected_cost=[1.0, 1.0, -0.5, 1.0]),
            r"coupon_allocations: column 'expected_cost', row 2: value -0\.5 is below the minimum 0$",
        ),
        (
            "add_push_schedule",
            PUSHES.assign(hour=[9, 9, 24, 9]),
            r"push_schedules: column 'hour', row 2: value 24 is above the maximum 23",
        ),
        (
            "add_push_schedule",
            PUSHES.assign(user_id=[1, 2, 3.5, 4]),
            r"push_schedules: column 'user_id', row 2: value 3\.5 is not an integer",
        ),
        (
            "add_channel_plan",
            [{**CHANNELS[0], "spend": "lots"}],
            r"channel_plans: column 'spend', row 0: value 'lots' is not a number",
        ),
        (
            "add_model_metrics",
            [{**METRICS[0], "segment": "churned"}],
            r"model_metrics: column 'segment', row 0: value 'churned' is not one of",
        ),
        (
            "add_push_schedule",
            PUSHES.assign(hour=[True, False, True, False]),
            r"push_schedules: column 'hour', row 0: booleans given for a numeric column",
        ),
        (
            "add_coupon_allocations",
            COUPONS.assign(expected_value=[0.1, np.inf, 0.0, 0.3]),
            r"coupon_allocations: column 'expected_value', row 1: value inf is not finite",
        ),
        (
            "add_channel_plan",
            [CHANNELS[1], {**CHANNELS[0], "channel_name": "x" * 129}],
            r"channel_plans: column 'channel_name', row 1: value 'x+' is longer than 128 characters",
        ),
        (
            "add_channel_plan",
            [{**CHANNELS[1], "installs_lo": ""}],
            r"channel_plans: column 'installs_lo', row 0: value '' is not a number",
        ),
        (
            "add_pareto_points",
            pd.concat([PARETO, PARETO[["spend"]]], axis=1),
            r"pareto_points: column 'spend': column appears more than once",
        ),
        (
            "add_pareto_points",
            PARETO.assign(chosen=["yes", "no", "no"]),
            r"pareto_points: column 'chosen', row 0: value 'yes' is not a bool",
        ),
    ],
)
def test_bad_rows_raise_clear_error_before_writing(
    store: Store, method: str, rows: object, message: str
) -> None:
    """Bad rows fail when added, naming table, column (and row); nothing of the run is written."""
    with pytest.raises(ValueError, match=message), store.run(kind="test", operator="t") as run:
        run.add_model_metrics(METRICS)  # valid rows buffered first must not be written either
        getattr(run, method)(rows)
    assert _result_row_count(store) == 0
    assert store.get_run(run.id)["status"] == "failed"


def test_list_of_dicts_defaults_and_nulls(store: Store) -> None:
    """Records may omit nullable/defaulted columns: they are stored as NULL / the default."""
    with store.run(kind="install", operator="t") as run:
        assert run.add_pareto_points([{"front": "install", "point_id": 0, "spend": 1.0}]) == 1
        assert run.add_pareto_points([]) == 0
    points = store.read("pareto_points", run_id=run.id)
    assert points["gmv"].dtype == np.float64 and points["chosen"].dtype == bool  # all-NULL column
    row = points.iloc[0]
    assert not row["chosen"] and np.isnan(row["gmv"]) and row["spend"] == 1.0


def test_normalised_rows_keep_the_insert_dtypes() -> None:
    """Validated rows come back in the dtypes the insert path hands to the driver."""
    metrics = normalise_rows("model_metrics", [{**METRICS[0], "seed": None}, METRICS[1]])
    assert str(metrics["seed"].dtype) == "Int64" and metrics["seed"].isna().tolist() == [
        True,
        False,
    ]
    assert metrics["value"].dtype == np.float64
    pushes = normalise_rows("push_schedules", PUSHES)
    assert pushes["hour"].dtype == np.int64 and pushes["user_id"].dtype == np.int64
    points = normalise_rows("pareto_points", [{"front": "f", "point_id": 0}])
    assert points.columns.tolist() == [c.name for c in RESULT_TABLES["pareto_points"].columns][2:]
    assert points.loc[0, "chosen"] is False and points.loc[0, "gmv"] is None


def test_growth_db_url_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store() with no URL uses $GROWTH_DB_URL, else sqlite:///data/growth.db under the CWD."""
    url = f"sqlite:///{tmp_path / 'from_env.db'}"
    monkeypatch.setenv("GROWTH_DB_URL", url)
    assert Store().url == url
    assert (tmp_path / "from_env.db").exists()

    monkeypatch.delenv("GROWTH_DB_URL")
    monkeypatch.delenv("GROWTH_DATA_ROOT", raising=False)  # the default data root: ./data
    monkeypatch.chdir(tmp_path)
    default = Store()
    assert default.url == "sqlite:///data/growth.db"
    assert (tmp_path / "data" / "growth.db").exists()


def test_views_exclude_failed_runs(populated: tuple[Store, int]) -> None:
    """Result views show only succeeded runs, even if rows of a failed run exist in a table."""
    store, good_id = populated
    with pytest.raises(KeyError), store.run(kind="nightly", operator="t") as run:
        raise KeyError("missing feature")
    # rows a failed run could only have through a foreign writer: views must still hide them
    with store.engine.begin() as conn:
        rows = COUPONS.assign(run_id=run.id).replace({np.nan: None}).to_dict("records")
        conn.execute(insert(RESULT_TABLES["coupon_allocations"]), rows)
    assert len(store.read("coupon_allocations", run_id=run.id)) == 4
    assert set(store.read("v_coupon_by_segment_type")["run_id"]) == {good_id}
    for view in VIEW_NAMES:
        if view != "v_runs":
            assert run.id not in set(store.read(view)["run_id"])
    history = store.runs()
    assert history["run_id"].tolist() == [run.id, good_id]  # newest first, failed included
    assert history["status"].tolist() == ["failed", "succeeded"]


def test_runs_history_has_utc_times_and_duration(populated: tuple[Store, int]) -> None:
    """runs() reads v_runs: UTC timestamps, a non-negative duration, and honours limit."""
    store, _ = populated
    _write_all(store)
    history = store.runs(limit=1)
    assert len(history) == 1
    row = history.iloc[0]
    assert str(row["started_at"].tz) == "UTC"
    assert row["finished_at"] >= row["started_at"] and row["duration_s"] >= 0
    assert row["code_version"] and row["operator"] == "test"
    with pytest.raises(ValueError, match="limit"):
        store.runs(limit=0)


def test_read_refuses_names_outside_allow_list(populated: tuple[Store, int]) -> None:
    """read() only accepts store tables/views; anything else raises and touches nothing."""
    store, _ = populated
    for name in ("sqlite_master", "runs; DROP TABLE runs", "v_runs --"):
        with pytest.raises(ValueError, match="not a table or view of the store"):
            store.read(name)
    assert len(store.read("runs")) == 1


def test_query_binds_params_and_is_read_only(populated: tuple[Store, int]) -> None:
    """query() binds values as parameters and cannot modify the database."""
    store, run_id = populated
    sql = "SELECT run_id, kind FROM v_runs WHERE kind = :kind"
    assert store.query(sql, {"kind": "nightly"})["run_id"].tolist() == [run_id]
    assert store.query(sql, {"kind": "x' OR '1'='1"}).empty  # injection is just a value
    with pytest.raises(ValueError, match="read-only"):
        store.query("DELETE FROM runs")
    with pytest.raises(OperationalError, match="readonly"):
        store.query("WITH doomed AS (SELECT id FROM runs) DELETE FROM runs")
    assert len(store.runs()) == 1
    with store.run(kind="after", operator="t"):  # connection is writable again afterwards
        pass
    assert len(store.runs()) == 2


def test_numpy_summary_is_serialised(store: Store) -> None:
    """numpy scalars/arrays, NaN and dates in a summary are stored as plain JSON."""
    with store.run(kind="push", operator="t", config={"seed": np.int64(7)}) as run:
        run.summary = {
            "objective": np.float64(1.5),
            "users": np.int32(3),
            "feasible": np.bool_(True),
            "duals": np.array([0.25, 0.5]),
            "gap": float("nan"),
            "day": DAY,
            "by_segment": {"new": np.float32(0.5)},
        }
    stored = store.query("SELECT summary, config FROM runs WHERE id = :id", {"id": run.id})
    summary = json.loads(stored.loc[0, "summary"])
    assert summary == {
        "objective": 1.5,
        "users": 3,
        "feasible": True,
        "duals": [0.25, 0.5],
        "gap": None,
        "day": "2026-11-26",
        "by_segment": {"new": 0.5},
    }
    assert json.loads(stored.loc[0, "config"]) == {"seed": 7}
    with pytest.raises(TypeError, match=r"summary\['bad'\]: value of type object"):
        run.summary = {"bad": object()}


def test_example_queries_run_on_populated_store(populated: tuple[Store, int]) -> None:
    """Each documented example query runs against a populated store and returns rows."""
    store, run_id = populated
    params = {
        "coupon_plan_latest_run": {},
        "push_best_hour_per_industry": {"run_id": run_id},
        "model_metric_history": {"model": "lgbm", "metric": "auc"},
    }
    assert set(params) == set(EXAMPLE_QUERIES)
    results = {name: store.query(sql, params[name]) for name, sql in EXAMPLE_QUERIES.items()}
    assert results["coupon_plan_latest_run"]["spend"].tolist() == [5.0, 4.0, 0.0]
    best = results["push_best_hour_per_industry"].set_index("industry")["hour"].to_dict()
    assert best == {"fashion": 9, "food": 12}
    history = results["model_metric_history"]
    assert history["segment"].tolist() == ["all", "new"]
    assert history.loc[0, "value"] == pytest.approx(0.75)


def test_package_docstring_example_runs() -> None:
    """The usage example in growth.store's docstring runs and prints what it claims."""
    import growth.store

    assert doctest.testmod(growth.store).failed == 0


def test_code_version_is_git_sha_or_package_version() -> None:
    """code_version() names the running code: a git short sha (maybe -dirty) or a version."""
    version = code_version()
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|\d+\.\d+\.\d+.*", version), version


def test_run_arguments_validated(store: Store) -> None:
    """Bad run arguments fail before any run row is inserted."""
    with pytest.raises(ValueError, match="kind"), store.run(kind=""):
        pass
    with (
        pytest.raises(ValueError, match="campaign_date"),
        store.run(kind="x", campaign_date="26/11"),
    ):
        pass
    with (
        pytest.raises(TypeError, match="config must be a mapping"),
        store.run(kind="x", config=[1]),
    ):  # type: ignore[arg-type]
        pass
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM runs")).scalar_one() == 0


@pytest.mark.slow
def test_bulk_write_of_a_million_coupon_rows(store: Store) -> None:
    """1,000,000 coupon allocations are written completely in one run (speed: see benchmarks)."""
    n = 1_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "segment": rng.choice(["active", "new", "lost", "potential"], n),
            "option_id": rng.choice(["none", "rp5", "fr10"], n),
            "coupon_type": rng.choice(["none", "red_packet", "full_reduction"], n),
            "face_value": rng.choice([0.0, 5.0, 10.0], n),
            "expected_value": rng.random(n) * 0.1,
            "expected_cost": rng.random(n),
            "expected_gmv": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 50),
        }
    )
    with store.run(kind="coupons", operator="bench") as run:
        run.add_coupon_allocations(frame)
    totals = store.query(
        "SELECT COUNT(*) AS n, SUM(expected_cost) AS cost, COUNT(expected_gmv) AS with_gmv "
        "FROM coupon_allocations WHERE run_id = :id",
        {"id": run.id},
    )
    assert totals.loc[0, "n"] == n
    assert totals.loc[0, "cost"] == pytest.approx(frame["expected_cost"].sum())
    assert totals.loc[0, "with_gmv"] == frame["expected_gmv"].notna().sum()
    assert store.get_run(run.id)["started_at"].tzinfo == UTC


def test_run_that_cannot_commit_on_a_locked_database_is_recorded_failed(tmp_path: Path) -> None:
    """Another connection holds SQLite's write lock past the busy timeout: the results are
    not written, and the run is recorded 'failed' as soon as the lock goes (not left
    'running' until the next run finds it stale)."""
    path = tmp_path / "growth.db"
    store = Store(f"sqlite:///{path}?timeout=0.2")
    blocker = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def release() -> None:
        blocker.execute("ROLLBACK")
        blocker.close()

    opened = store.run(kind="nightly", operator="t", campaign_date=DAY, campaign="c")
    with pytest.raises(RunFailed, match="locked"), opened as run:
        run.add_coupon_allocations(COUPONS)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock ...
        threading.Timer(1.5, release).start()  # ... for longer than the busy timeout
    got = store.get_run(run.id)
    assert got["status"] == "failed" and "locked" in got["error"]
    assert store.read("coupon_allocations").empty
