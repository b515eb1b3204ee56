"""The store on SQLite and PostgreSQL: migrations, idempotent runs, leases, views, roles.

PostgreSQL tests need ``$GROWTH_TEST_PG_URL`` (``eval "$(scripts/start-postgres.sh)"``);
each test gets its own schema, so pytest-xdist workers never collide.
"""

from __future__ import annotations

import ast
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

import growth.jobs.pipeline
from growth.cli import main
from growth.exit_codes import ExitCode
from growth.store import (
    EXAMPLE_QUERIES,
    VIEWS,
    Base,
    ReadOnlyStore,
    RunInProgress,
    RunLockRow,
    StageTiming,
    Store,
    alembic_config,
    head_revision,
)
from growth.store.migrations.frozen_views import VIEWS_V3

PG_ENV = "GROWTH_TEST_PG_URL"
DAY = date(2026, 11, 26)
COUPONS = pd.DataFrame(
    {
        "user_id": [1, 2, 3],
        "segment": ["active", "active", "new"],
        "option_id": ["rp5", "rp5", "fr10"],
        "coupon_type": ["red_packet", "red_packet", "full_reduction"],
        "face_value": [5.0, 5.0, 10.0],
        "expected_value": [0.1, 0.2, 0.3],
        "expected_cost": [2.0, 3.0, 4.0],
    }
)


def _pg_schema_url(base: str, schema: str) -> str:
    url = make_url(base)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'growth.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need ${PG_ENV} (run scripts/start-postgres.sh)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _add_run(store: Store, campaign: str | None = "default", rows: pd.DataFrame = COUPONS) -> int:
    with store.run(kind="nightly", operator="t", campaign_date=DAY, campaign=campaign) as run:
        run.add_coupon_allocations(rows)
    return run.id


def test_fresh_database_migrates_to_head_matching_the_models(db_url: str) -> None:
    """A new database is migrated to head; its schema equals the models and views.py."""
    store = Store(db_url)
    assert store.revision == head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
        assert diff == []
        assert set(VIEWS) <= set(inspect(conn).get_view_names())
    assert {k: v.select.strip() for k, v in VIEWS.items()} == {
        k: v.strip() for k, v in VIEWS_V3.items()
    }
    Store(db_url)  # re-opening is a no-op
    store.close()


def test_old_database_is_upgraded_in_place_without_losing_rows(db_url: str) -> None:
    """A database made before migrations (revision 0001, unstamped) keeps its rows."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        command.upgrade(alembic_config(connection=conn), "0001")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (kind, campaign_date, status, started_at, config,"
                " code_version, operator) VALUES ('nightly', :day, 'succeeded', :now, '{}',"
                " 'v0', 'old')"
            ),
            {"day": DAY, "now": now.replace(tzinfo=None)},
        )
        conn.execute(
            text(
                "INSERT INTO coupon_allocations (run_id, user_id, segment, option_id,"
                " coupon_type, face_value, expected_value, expected_cost)"
                " SELECT MAX(id), 1, 'active', 'rp5', 'red_packet', 5, 0.1, 2 FROM runs"
            )
        )
        old_id = conn.execute(text("SELECT MAX(id) FROM runs")).scalar_one()
        conn.exec_driver_sql("DROP TABLE alembic_version")  # as create_all left it
    engine.dispose()
    store = Store(db_url)
    assert store.revision == head_revision()
    runs = store.runs()
    assert runs["run_id"].tolist() == [old_id] and runs["campaign"].isna().all()
    view = store.read("v_coupon_by_segment_type")
    assert view["run_id"].tolist() == [old_id] and view["spend"].tolist() == [2.0]
    new_id = _add_run(store)  # the upgraded schema takes new runs
    assert new_id > old_id
    with store.engine.connect() as conn:
        command.downgrade(alembic_config(connection=conn), "0001")
        command.upgrade(alembic_config(connection=conn), "head")
    assert len(store.read("coupon_allocations")) == 1 + len(COUPONS)
    store.close()


def test_rerun_of_a_campaign_supersedes_the_earlier_run(db_url: str) -> None:
    """Same kind/date/campaign: the new run supersedes the old; views show it only."""
    store = Store(db_url)
    first = _add_run(store)
    other = _add_run(store, campaign="spring")
    second = _add_run(store, rows=COUPONS.iloc[:1])
    runs = store.runs().set_index("run_id")
    assert runs.loc[first, "status"] == "superseded"
    assert runs.loc[first, "superseded_by"] == second
    assert runs.loc[other, "status"] == runs.loc[second, "status"] == "succeeded"
    view = store.read("v_coupon_by_segment_type")
    assert sorted(view["run_id"].unique()) == [other, second]
    assert view.loc[view["run_id"] == second, "users"].sum() == 1
    assert len(store.read("coupon_allocations", run_id=first)) == len(COUPONS)  # kept for audit
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # one succeeded per key
        conn.execute(text("UPDATE runs SET status = 'succeeded' WHERE id = :id"), {"id": first})
    for _ in range(2):  # runs without a campaign are never superseded
        _add_run(store, campaign=None)
    assert (store.runs()["campaign"].isna() & (store.runs()["status"] == "succeeded")).sum() == 2
    store.close()


def test_views_and_example_queries_run(db_url: str) -> None:
    """Every view reads and every README example query runs on this backend."""
    store = Store(db_url)
    run_id = _add_run(store)
    store.record_stages(
        run_id,
        [
            StageTiming("data", datetime.now(UTC), 0.5),
            StageTiming("store", datetime.now(UTC), 0.1, "failed"),
        ],
    )
    assert store.read("run_stages", run_id=run_id)["stage"].tolist() == ["data", "store"]
    for name in VIEWS:
        store.read(name)
    params = {"run_id": run_id, "model": "lightgbm", "metric": "auc"}
    for sql in EXAMPLE_QUERIES.values():
        store.query(sql, params)
    out = store.query(EXAMPLE_QUERIES["coupon_plan_latest_run"])
    assert out["spend"].sum() == pytest.approx(COUPONS["expected_cost"].sum())
    store.close()


def test_lease_is_exclusive_and_stale_leases_are_taken_over(db_url: str) -> None:
    """A live lease refuses a second holder; dead-pid and expired leases are replaced."""
    store = Store(db_url)
    with store.lock("nightly", DAY, "default", lease_s=30) as lease:
        with pytest.raises(RunInProgress, match="in progress") as info:
            store.lock("nightly", DAY, "default").acquire()
        assert info.value.holder["pid"] == os.getpid()
        with store.lock("nightly", DAY, "other"):  # other campaigns are independent
            pass
        assert lease.held
    assert store.read("run_locks").empty
    now = datetime.now(UTC)
    locks = RunLockRow.__table__
    stale = [  # a dead process here; a silent holder elsewhere whose lease ran out
        ("a", socket.gethostname(), 2**22 + 7, now + timedelta(hours=1)),
        ("b", "elsewhere", 1, now - timedelta(seconds=1)),
    ]
    with store.engine.begin() as conn:
        for campaign, host, pid, expires in stale:
            conn.execute(
                insert(locks).values(
                    kind="nightly",
                    campaign_date=DAY,
                    campaign=campaign,
                    token=campaign,
                    host=host,
                    pid=pid,
                    acquired_at=now,
                    heartbeat_at=now,
                    expires_at=expires,
                )
            )
        conn.execute(
            insert(locks).values(
                kind="nightly",
                campaign_date=DAY,
                campaign="c",
                token="c",
                host="elsewhere",
                pid=1,
                acquired_at=now,
                heartbeat_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
    for campaign, reason in (("a", "is gone"), ("b", "expired")):
        with store.lock("nightly", DAY, campaign) as lease:
            assert reason in lease.took_over["reason"]
    with pytest.raises(RunInProgress, match="elsewhere"):  # live on another host
        store.lock("nightly", DAY, "c").acquire()
    store.close()


def test_stale_running_runs_are_failed(db_url: str) -> None:
    """Runs left 'running' for a key are closed 'failed'; other keys are untouched."""
    store = Store(db_url)
    with store.engine.begin() as conn:
        for campaign in ("default", "other"):
            conn.execute(
                text(
                    "INSERT INTO runs (kind, campaign_date, campaign, status, started_at, config,"
                    " code_version, operator) VALUES ('nightly', :day, :c, 'running', :now,"
                    " '{}', 'v', 'x')"
                ),
                {"day": DAY, "c": campaign, "now": datetime.now(UTC).replace(tzinfo=None)},
            )
    assert len(store.fail_stale_runs("nightly", DAY, "default", "stale: test")) == 1
    status = store.runs().set_index("campaign")["status"]
    assert status["default"] == "failed" and status["other"] == "running"
    store.close()


def test_analyst_role_reads_views_and_nothing_else(db_url: str) -> None:
    """PostgreSQL: the analyst role selects from views, not base tables, and cannot write."""
    if not db_url.startswith("postgresql"):
        pytest.skip("roles and grants are a PostgreSQL feature")
    analyst_base = os.environ.get("GROWTH_TEST_PG_ANALYST_URL")
    role = os.environ.get("GROWTH_TEST_PG_ANALYST_ROLE", "growth_analyst")
    if not analyst_base:
        pytest.skip("needs $GROWTH_TEST_PG_ANALYST_URL (scripts/start-postgres.sh sets it)")
    store = Store(db_url, analyst_role=role)
    _add_run(store)
    schema = make_url(db_url).query["options"].split("=", 1)[1]
    analyst = create_engine(_pg_schema_url(analyst_base, schema))
    try:
        with analyst.connect() as conn:
            for name in VIEWS:
                conn.execute(text(f"SELECT * FROM {name}")).fetchall()
        denied = [
            "SELECT * FROM runs",
            "SELECT * FROM coupon_allocations",
            "UPDATE v_runs SET operator = 'x'",
            "DELETE FROM v_runs",
            "INSERT INTO runs (kind) VALUES ('x')",
            "CREATE TABLE mine (x int)",
        ]
        for sql in denied:
            with analyst.connect() as conn, pytest.raises(Exception, match="permission denied"):
                conn.execute(text(sql))
    finally:
        analyst.dispose()
        store.close()
    with pytest.raises(ValueError, match="must match"):
        store.grant_analyst("x; DROP TABLE runs")


def test_store_sql_is_parameterised() -> None:
    """No SQL in growth/store is built from runtime values except quoted identifiers.

    f-strings and ``%``/``.format`` SQL may only appear in the listed functions,
    which format constant view names or identifiers checked and quoted first.
    """
    allowed = {"create_sql", "create_views", "grant_analyst", "_drop_views", "_create_views"}
    allowed.add("begin_within")  # an int() of milliseconds: PRAGMA takes no bound parameter
    allowed_upgrades = {"upgrade", "downgrade"}  # migrations: frozen constant view names
    root = Path(__file__).resolve().parents[1] / "growth" / "store"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name not in ("text", "execute", "exec_driver_sql"):
                    continue
                dynamic = any(
                    isinstance(a, ast.JoinedStr | ast.BinOp)
                    or (isinstance(a, ast.Call) and getattr(a.func, "attr", "") == "format")
                    for a in node.args[:1]
                )
                in_migration = "migrations" in path.parts and func.name in allowed_upgrades
                if dynamic and func.name not in allowed and not in_migration:
                    offenders.append(f"{path.name}:{node.lineno} in {func.name}")
    assert offenders == []


def _statuses(store: Store) -> list[str]:
    return store.runs()["status"].tolist()


def test_query_runs_one_statement_on_a_connection_that_cannot_write(db_url: str) -> None:
    """Whatever the text, query() runs one statement on a connection that cannot write:
    `SELECT 1; COMMIT; UPDATE ...` (the simple-query protocol would run all three), DDL after
    a COMMIT, and a session switched back to read-write all change nothing."""
    store = Store(db_url)
    _add_run(store)
    several = [
        "SELECT 1; COMMIT; UPDATE runs SET status = 'failed'",
        "SELECT 1; COMMIT; CREATE TABLE mine (x int)",
        "SELECT 1; COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE;"
        " UPDATE runs SET status = 'failed'",
        "SELECT 1 /* ; */; UPDATE runs SET status = 'failed' -- ;",
    ]
    for sql in several:
        with pytest.raises(ValueError, match="exactly one statement"):
            store.query(sql)
    if db_url.startswith("postgresql"):  # a single statement cannot make the session writable
        store.query("SELECT set_config('default_transaction_read_only', 'off', false)")
        with pytest.raises(Exception, match="read-only transaction"):
            store.query(
                "WITH d AS (UPDATE runs SET status = 'failed' RETURNING id) SELECT * FROM d"
            )
        with pytest.raises(Exception, match="read-only transaction"):
            store.query("SELECT nextval(pg_get_serial_sequence('runs', 'id'))")
    assert _statuses(store) == ["succeeded"]
    with store.engine.connect() as conn:
        assert "mine" not in inspect(conn).get_table_names()
    store.close()


def _analyst_url(db_url: str) -> str:
    analyst_base = os.environ.get("GROWTH_TEST_PG_ANALYST_URL")
    if not db_url.startswith("postgresql") or not analyst_base:
        pytest.skip("needs PostgreSQL and $GROWTH_TEST_PG_ANALYST_URL (scripts/start-postgres.sh)")
    schema = make_url(db_url).query["options"].split("=", 1)[1]
    return _pg_schema_url(analyst_base, schema)


def test_analyst_role_uses_the_read_only_commands(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The analyst role (views only, no alembic_version) runs `growth runs` and `growth
    query`; a read-only store needs no owner's rights, and base tables stay closed."""
    analyst = _analyst_url(db_url)
    role = os.environ.get("GROWTH_TEST_PG_ANALYST_ROLE", "growth_analyst")
    store = Store(db_url, analyst_role=role)
    run_id = _add_run(store)
    reader = Store(analyst, read_only=True)
    assert reader.runs()["run_id"].tolist() == [run_id]
    assert reader.query(EXAMPLE_QUERIES["coupon_plan_latest_run"])["users"].sum() == len(COUPONS)
    with pytest.raises(ReadOnlyStore), reader.run(kind="nightly"):
        pass
    reader.close()
    assert main(["runs", "--db", analyst]) == ExitCode.OK
    assert main(["query", "coupon_plan_latest_run", "--db", analyst]) == ExitCode.OK
    out = capsys.readouterr().out
    assert str(run_id) in out and "active" in out
    assert main(["query", "SELECT * FROM runs", "--db", analyst]) == ExitCode.FAILED
    assert "permission denied" in capsys.readouterr().err
    store.close()


def test_database_passwords_are_hidden_everywhere(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The nightly's console, its error, its JSON log and the stored error show the URL with
    its password hidden, also when an error message quotes the URL; so do a store's repr
    and a password given as a URL parameter."""
    password = make_url(db_url).password
    if not password:
        pytest.skip("this backend's URL has no password")

    def unreachable(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"feature store {db_url} refused the connection")

    monkeypatch.setattr(growth.jobs.pipeline, "train_models", unreachable)
    logs = tmp_path / "logs"
    scenario = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "small.toml"
    argv = ["nightly", "--scenario", str(scenario), "--users", "200", "--db", db_url]
    assert main([*argv, "--log-dir", str(logs), "--date", DAY.isoformat()]) == ExitCode.FAILED
    out, err = capsys.readouterr()
    assert "growth_app:***@" in out and "refused the connection" in err
    log = "".join(p.read_text() for p in logs.glob("*.jsonl"))
    assert "refused the connection" in log
    store = Store(db_url)
    error = store.runs()["error"].iloc[0]
    assert "refused the connection" in error
    for shown in (out, err, log, error, repr(store), store.display_url):
        assert password not in shown
    url = make_url(db_url)
    in_query = url.set(password=None).update_query_dict({"password": password})
    other = Store(in_query.render_as_string(hide_password=False))
    assert password not in repr(other) and other.runs()["status"].tolist() == ["failed"]
    other.close()
    store.close()
