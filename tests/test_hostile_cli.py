"""The command line against careless and hostile input: names that would escape a folder,
markup and escape codes in data, bad options and settings. Every case exits with the
README's code (2: bad input, named) and a message, never a traceback, and writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

import growth.jobs.pipeline
import growth.world
from growth.cli import main
from growth.exit_codes import ExitCode
from growth.store import Store

REPO = Path(__file__).resolve().parents[1]
SMALL = str(REPO / "data" / "scenarios" / "small.toml")
ESC = "\x1b[2J\x1b[31m"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'g.db'}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def _insert_run(store: Store, operator: str, kind: str = "nightly") -> None:
    """A run row written behind the store's back (as an older version or a person might)."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (kind, status, started_at, config, code_version, operator)"
                " VALUES (:kind, 'succeeded', :now, '{}', 'v', :operator)"
            ),
            {"kind": kind, "now": datetime.now(UTC).replace(tzinfo=None), "operator": operator},
        )


# -- names at the boundary --------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--campaign", "../../../escaped", "campaign"),
        ("--campaign", "spring/2026", "campaign"),
        ("--campaign", "[/x]", "campaign"),
        ("--operator", f"mallory{ESC}", "operator"),
    ],
)
def test_nightly_refuses_names_before_any_file_is_touched(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str], option: str, value: str, field: str
) -> None:
    """A campaign that is not a name (a path, markup) or an operator with escape codes exits 2
    naming the field, before the log file, the store or the data are touched."""
    logs = tmp_path / "a" / "b" / "logs"
    code, _, err = _run(
        capsys, "nightly", "--scenario", SMALL, option, value, "--db", db, "--log-dir", str(logs)
    )
    assert code == ExitCode.BAD_INPUT and field in err
    assert not (tmp_path / "g.db").exists() and not (tmp_path / "a").exists()
    assert list(tmp_path.rglob("*.jsonl")) == []


def test_store_refuses_path_like_campaigns_and_kinds(db: str) -> None:
    """The store's own boundary applies the same rule (the app and the API reach it too)."""
    store = Store(db)
    for kwargs in ({"campaign": "../x"}, {"campaign": "a/b"}, {"kind": "../nightly"}):
        args = {"kind": "nightly", "campaign_date": "2026-11-26", **kwargs}
        with pytest.raises(ValueError, match="is not a name"), store.run(**args):
            pass
    with pytest.raises(ValueError, match="control character"), store.run("push", operator=ESC):
        pass
    with pytest.raises(ValueError, match="is not a name"):
        store.lock("nightly", "2026-11-26", "../../x")
    assert store.runs().empty


# -- data printed as text ---------------------------------------------------------------


def test_runs_and_query_print_markup_and_escape_codes_as_text(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator '[/x]' (valid text) and one with raw escape codes (written behind the
    store's back) print as text: no crash, no escape sequence reaches the terminal."""
    store = Store(db)
    with store.run(kind="push", operator="[/x] [bold]"):
        pass
    _insert_run(store, f"eve{ESC}")
    code, out, _ = _run(capsys, "runs", "--db", db)
    assert code == ExitCode.OK and "\x1b" not in out
    code, out, _ = _run(capsys, "query", "SELECT operator FROM v_runs ORDER BY run_id", "--db", db)
    assert code == ExitCode.OK and "\x1b" not in out
    assert "[/x] [bold]" in out and "eve\\x1b[2J\\x1b[31m" in out


def test_validate_names_a_markup_value_without_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lifecycle value '[/x]' is refused (exit 2) and shown as it is in the message."""
    folder = tmp_path / "ds"
    code, _, _ = _run(
        capsys, "generate", str(folder), "--scenario", SMALL, "--users", "200", "--format", "csv"
    )
    assert code == ExitCode.OK
    users = pd.read_csv(folder / "users.csv")
    users.loc[0, "lifecycle"] = "[/x]"
    users.to_csv(folder / "users.csv", index=False)
    code, _, err = _run(capsys, "validate", str(folder))
    assert code == ExitCode.BAD_INPUT and "[/x]" in err and "lifecycle" in err


# -- exit codes ------------------------------------------------------------------------


def test_bad_store_urls_exit_2_naming_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--db notaurl`, an unknown dialect or a missing database file exits 2, never a traceback."""
    for argv in (["runs"], ["query", "coupon_plan_latest_run"], ["nightly", "--scenario", SMALL]):
        code, _, err = _run(capsys, *argv, "--db", "notaurl")
        assert code == ExitCode.BAD_INPUT and "notaurl" in err and "URL" in err
    code, _, err = _run(capsys, "runs", "--db", "nosuchdialect://x/y")
    assert code == ExitCode.BAD_INPUT and "nosuchdialect" in err
    missing = tmp_path / "nothing-here.db"
    code, _, err = _run(capsys, "runs", "--db", f"sqlite:///{missing}")
    assert code == ExitCode.BAD_INPUT and str(missing) in err
    assert not missing.exists()  # a read-only command creates no database


def test_bad_files_and_options_exit_2_before_any_work(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder as --config or --scenario, a scenario that is not TOML, out-of-range options
    and an unknown format exit 2 naming what is wrong; nothing is generated or stored."""

    def no_world(*args: object, **kwargs: object) -> None:
        raise AssertionError("the world was generated before the options were checked")

    monkeypatch.setattr(growth.world, "generate_world", no_world)
    not_toml = tmp_path / "scenario.toml"
    not_toml.write_text("this is [not TOML\n")
    cases = [
        (["nightly", "--config", str(tmp_path)], "folder"),
        (["nightly", "--scenario", str(tmp_path)], "folder"),
        (["nightly", "--scenario", str(not_toml)], "not valid TOML"),
        (["nightly", "--data-dir", str(not_toml)], "data_dir"),
        (["generate", str(tmp_path / "w"), "--scenario", str(tmp_path)], "folder"),
        (["generate", str(tmp_path / "w"), "--scenario", str(not_toml)], "not valid TOML"),
        (["generate", str(tmp_path / "w"), "--format", "xml"], "xml"),
        (["generate", str(not_toml)], "not a folder"),
        (["runs", "--limit", "0"], "--limit"),
        (["app", "--port", "0"], "--port"),
        (["app", "--port", "70000"], "--port"),
        (["app", "--db", "notaurl"], "notaurl"),
    ]
    for argv, expected in cases:
        code, out, err = _run(capsys, *argv, *(["--db", db] if argv[0] == "nightly" else []))
        assert code == ExitCode.BAD_INPUT, (argv, out, err)
        assert expected in err, (argv, err)
    assert not (tmp_path / "g.db").exists() and not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("[coupons]\nmin_coverage = { new = 1.5 }", "min_coverage"),
        ("[coupons]\nmin_coverage = { vip = 0.1 }", "min_coverage"),
        ('[coupons]\nmethod = "simplex"', "method"),
        ("[coupons]\nbudget = inf", "budget"),
        ("[coupons]\ntype_budgets = { red_packet = nan }", "type_budgets"),
        ("[install]\nbudget = inf", "budget"),
        ("holdout_fraction = nan", "holdout_fraction"),
    ],
)
def test_wrong_settings_are_refused_before_any_data_is_read(
    tmp_path: Path,
    db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    section: str,
    field: str,
) -> None:
    """A share above 1, an unknown segment or method, an infinite or NaN amount: exit 2
    naming the field, before the store is opened or any data read."""

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("data was read before the settings were checked")

    monkeypatch.setattr(growth.jobs.pipeline, "load_data", no_data)
    config = tmp_path / "nightly.toml"
    config.write_text(f'scenario = "{SMALL}"\n{section}\n')
    code, _, err = _run(capsys, "nightly", "--config", str(config), "--db", db)
    assert code == ExitCode.BAD_INPUT and field in err and str(config) in err
    assert not (tmp_path / "g.db").exists()


def test_query_refuses_what_is_not_one_read_only_statement(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Writes and several statements exit 2 and change nothing (SQLite; PostgreSQL in
    test_store_postgres.py)."""
    store = Store(db)
    with store.run(kind="push", operator="t"):
        pass
    for sql in (
        "DELETE FROM runs",
        "SELECT 1; UPDATE runs SET status = 'failed'",
        "SELECT 1; COMMIT; UPDATE runs SET status = 'failed'",
    ):
        code, _, err = _run(capsys, "query", sql, "--db", db)
        assert code == ExitCode.BAD_INPUT and "refused" in err, sql
    assert store.runs()["status"].tolist() == ["succeeded"]


def test_runs_config_hides_database_passwords(db: str) -> None:
    """A URL with a password inside a run's config is stored with the password hidden."""
    from growth.store import redact_url

    store = Store(db)
    secret = "pw-" + "x7Qz9" * 2
    config = {"sources": [f"postgresql+psycopg://app:{secret}@db/growth"]}
    with store.run(kind="push", operator="t", config=config) as run:
        pass
    stored = json.dumps(store.get_run(run.id)["config"])
    assert "postgresql+psycopg://app:***@db/growth" in stored and secret not in stored
    assert secret not in redact_url(f"postgresql+psycopg://app@db/growth?password={secret}")
