"""The ``growth`` command line: generate data, validate it, run the nightly job, query runs.

Run it as ``growth ...`` (the installed script) or ``python -m growth ...``; tests call
:func:`main` in-process.  Exit codes: :class:`growth.exit_codes.ExitCode`.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.text import Text

from growth.exit_codes import ExitCode
from growth.store.engine import ENV_VAR, parse_url
from growth.terminal import (
    console,
    err_console,
    fail,
    frame_table,
    print_summary,
    printable,
    setup_logging,
)

MAX_RUNS_LISTED = 1_000_000
"""``growth runs --limit`` at most (a larger number overflowed SQLite's INTEGER, exit 1)."""

app = typer.Typer(
    help="Marketing decision platform for user growth.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals hold URLs with passwords
)


def _open_store(db: str | None, *, read_only: bool = False) -> Any:
    """The store at ``db`` (``$GROWTH_DB_URL``, the embedded default); a bad URL or a
    missing database file exits 2, an unreachable database 1, never a traceback."""
    from growth.exit_codes import exit_code
    from growth.store import Store

    try:
        return Store(db, read_only=read_only)
    except Exception as exc:
        raise fail(f"store: {exc}", exit_code(exc)) from None


@app.command()
def nightly(
    config: Annotated[Path | None, typer.Option(help="nightly TOML config")] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="world scenario: a TOML path or a name in <data root>/scenarios"),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="dataset folder instead of a world")] = None,
    users: Annotated[int | None, typer.Option(help="override the scenario's user count")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    budget: Annotated[float | None, typer.Option(help="platform coupon budget")] = None,
    merchant_budget: Annotated[float | None, typer.Option(help="each merchant's budget")] = None,
    spend_confidence: Annotated[
        float | None,
        typer.Option(help="probability in (0, 1) that each coupon budget's spend keeps it"),
    ] = None,
    date: Annotated[str | None, typer.Option(help="campaign date YYYY-MM-DD")] = None,
    operator: Annotated[str | None, typer.Option(help="who runs it")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign name (one run per date)")] = None,
    predictor: Annotated[
        str | None,
        typer.Option(
            help="conversion model by name: auto (default: with source-domain features "
            "--auto-challenger's model and lightgbm, keeping the one whose plan's estimated "
            "value on the randomised holdout is higher; else lightgbm), lightgbm, csde, mlp, ..."
        ),
    ] = None,
    auto_challenger: Annotated[
        str | None, typer.Option(help="auto's cross-domain model: evidence (default) or a name")
    ] = None,
    max_train_rows: Annotated[
        int | None,
        typer.Option(help="a torch predictor trains on a seeded sample of this many rows (0: all)"),
    ] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default $GROWTH_DB_URL)")] = None,
    allow_empty_plan: Annotated[
        bool,
        typer.Option(
            "--allow-empty-plan",
            help="store a plan that decides nothing (no coupon, no push) and let it supersede "
            "the day's plan; without it such a run fails",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each stage")] = False,
    log_json: Annotated[bool, typer.Option(help="also write JSON log lines to stderr")] = False,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="folder of the JSON-lines job logs (default: <data root>/logs)"),
    ] = None,
) -> None:
    """Run the nightly job: data, predictors, coupon allocation, SQL, summary."""
    from growth.exit_codes import BadInput
    from growth.jobs.production import load_config

    setup_logging(verbose)
    overrides = {
        "scenario": str(scenario) if scenario else None,
        "data_dir": str(data_dir) if data_dir else None,
        "n_users": users,
        "seed": seed,
        "coupons.budget": budget,
        "coupons.merchant_budget": merchant_budget,
        "coupons.spend_confidence": spend_confidence,
        "campaign_date": date,
        "operator": operator,
        "campaign": campaign,
        "predictor": predictor,
        "auto_challenger": auto_challenger,
        "max_train_rows": max_train_rows,
        "allow_empty_plan": allow_empty_plan or None,
    }
    try:
        cfg = load_config(config, **overrides)
    except BadInput as exc:
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    if log_dir is not None and not _can_be_folder(log_dir):
        raise fail(f"--log-dir {log_dir}: a file is in the way of a folder", ExitCode.BAD_INPUT)
    _run_job(cfg, db, log_json=log_json, log_dir=log_dir)


def _can_be_folder(path: Path) -> bool:
    """Whether ``path`` is a folder or can become one (its nearest existing part is a folder)."""
    for part in (path, *path.parents):
        if part.exists():
            return part.is_dir()
    return True


def _run_job(cfg: Any, db: str | None, *, log_json: bool, log_dir: Path | None) -> None:
    """Run the nightly job of ``cfg`` on the store at ``db``; print its summary or fail.

    Dataset files are read and checked first, before the store is opened or the lease
    taken: a dataset that cannot be planned is bad input (exit 2), not a failed run."""
    from growth.exit_codes import exit_code
    from growth.jobs.production import JobInterrupted, read_input, run_nightly_job
    from growth.paths import log_dir as default_log_dir

    try:
        dataset = read_input(cfg)
    except (ValueError, OSError) as exc:  # DataValidationError is a ValueError
        raise fail(str(exc), exit_code(exc)) from None
    store = _open_store(db)
    heading = Text.assemble(("nightly", "bold"), f" {cfg.campaign_date} ({cfg.campaign}) -> ")
    console.print(heading.append(printable(store.display_url)), soft_wrap=True)
    try:
        result = run_nightly_job(
            cfg,
            store=store,
            progress=True,
            console=console,
            log_stderr=log_json,
            log_dir=log_dir or default_log_dir(),
            dataset=dataset,
        )
    except (Exception, JobInterrupted) as exc:  # exit_code(): refused 3, bad input 2, failed 1
        raise fail(f"nightly: {exc}", exit_code(exc)) from None
    finally:
        store.close()
    print_summary(result)


class TableFormat(StrEnum):
    """File format of a written dataset's tables."""

    parquet = "parquet"
    csv = "csv"


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="folder to write the dataset into")],
    scenario: Annotated[
        str, typer.Option(help="world scenario: a TOML path or a name in <data root>/scenarios")
    ] = "default",
    users: Annotated[int | None, typer.Option(help="override the user count")] = None,
    seed: Annotated[int | None, typer.Option(help="override the seed")] = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="table file format")] = (
        TableFormat.parquet
    ),
    experiment: Annotated[
        bool,
        typer.Option(
            "--experiment",
            help="write the world's randomised exposure log as an experiment (log, arms) instead",
        ),
    ] = False,
) -> None:
    """Generate a simulated world and write it in the documented table format."""
    from growth.data.io import write_dataset
    from growth.experiments import world_experiment, write_experiment
    from growth.world import generate_world, load_scenario

    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a folder", ExitCode.BAD_INPUT)
    try:
        cfg = load_scenario(scenario, n_users=users, seed=seed)
    except (ValueError, OSError) as exc:
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    world = generate_world(cfg, progress=True)
    if experiment:
        exported = world_experiment(world)
        folder = write_experiment(exported.log, exported.arms, out, format=fmt.value)
        console.print(printable(f"wrote {folder}: {len(exported.log):,} users, an experiment"))
        return
    folder = write_dataset(world.dataset, out, format=fmt.value)
    rows = pd.DataFrame(
        {
            "table": list(world.dataset.tables()),
            "rows": [len(t) for t in world.dataset.tables().values()],
        }
    )
    console.print(frame_table(rows, f"Wrote {folder}"))


@app.command()
def validate(folder: Annotated[Path, typer.Argument(help="dataset folder")]) -> None:
    """Validate a dataset folder; exit code 2 and a precise message when it is bad."""
    from growth.data.io import read_dataset

    try:
        ds = read_dataset(folder)
    except (ValueError, OSError) as exc:  # DataValidationError is a ValueError
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    rows = pd.DataFrame(
        {"table": list(ds.tables()), "rows": [len(t) for t in ds.tables().values()]}
    )
    console.print(frame_table(rows, f"{folder} is valid"))


@app.command()
def movielens(
    out: Annotated[Path, typer.Argument(help="folder to write the two-domain dataset into")],
    source: Annotated[Path, typer.Option(help="folder with ml-100k.inter/.user/.item")] = Path(
        "data/cache/ml-100k"
    ),
) -> None:
    """Turn MovieLens-100k into a two-domain dataset (source Drama, target Comedy)."""
    from growth.data.io import write_dataset
    from growth.data.movielens import load_movielens

    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a folder", ExitCode.BAD_INPUT)
    try:
        ml = load_movielens(source)
    except (ValueError, OSError) as exc:  # DataValidationError is a ValueError
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    folder = write_dataset(ml.dataset, out)
    console.print(
        printable(f"wrote {folder}: {len(ml.dataset.users):,} users, split at {ml.split_time}")
    )


@app.command()
def experiment(
    folder: Annotated[Path, typer.Argument(help="experiment folder: log and arms (.csv/.parquet)")],
    budget: Annotated[float, typer.Option(help="total budget for all the log's users")],
    outcome: Annotated[
        str, typer.Option(help="outcome to maximise: conversion, revenue, visits")
    ] = ("conversion"),
    learner: Annotated[
        list[str] | None,
        typer.Option(
            help="uplift learner to choose among (repeat), the first the incumbent; default x, dr, t_lightgbm (t off conversion)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the split and the learners")] = 0,
    level: Annotated[float, typer.Option(help="interval level in (0, 1)")] = 0.95,
    operator: Annotated[str | None, typer.Option(help="who runs it")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default $GROWTH_DB_URL)")] = None,
    save: Annotated[bool, typer.Option(help="store the analysis as a run")] = True,
) -> None:
    """Analyse a randomised campaign log: uplift per arm, a certified plan under the budgets,
    its off-policy value against random targeting and the best single arm."""
    from growth.experiments import ExperimentSettings, read_experiment
    from growth.services.experiments import comparison_text, save_experiment
    from growth.store.runs import default_operator

    try:
        exp = read_experiment(folder)
        exp.outcome(outcome)
        settings = ExperimentSettings(
            budget=budget,
            outcome=outcome,
            learners=tuple(learner) if learner else None,
            seed=seed,
            level=level,
        )
    except (ValueError, OSError) as exc:  # DataValidationError is a ValueError
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    store = _open_store(db) if save else None
    console.print(printable(f"experiment {exp.name}: {len(exp.log):,} users, arms {exp.arm_ids}"))
    try:
        report = _analyse_with_progress(exp, settings)
        who = operator or default_operator()
        run_id = save_experiment(store, report, who) if store else None
    except Exception as exc:
        raise fail(f"experiment: {exc}", ExitCode.FAILED) from None
    finally:
        if store is not None:
            store.close()
    tables = comparison_text(report)
    console.print(printable("learner: " + "; ".join(report.summary["learner_choice"])))
    console.print(frame_table(tables["policies"], f"Test rows (learner {report.chosen})"))
    console.print(frame_table(tables["arms"], "Arms (uplift on test rows)"))
    cert = report.summary["certificate"]
    console.print(
        printable(
            f"plan: {cert['status']}, gap {cert['gap']:.2e}, spend "
            f"{cert['spend']:,.2f} of {budget:,.2f}"
            + (f"; saved as run {run_id}" if run_id else "")
        )
    )


def _analyse_with_progress(exp: Any, settings: Any) -> Any:
    """Run the analysis with a rich status line naming each stage."""
    from growth.experiments import analyse_experiment

    clock = time.perf_counter()

    def stage(name: str) -> None:
        console.print(printable(f"  {time.perf_counter() - clock:7.1f} s  {name}"))

    return analyse_experiment(exp, settings, stage=stage)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="how many runs", min=1, max=MAX_RUNS_LISTED)] = 20,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
) -> None:
    """Run history, newest first (read-only: the analyst role may run it)."""
    store = _open_store(db, read_only=True)
    try:
        frame = store.runs(limit=limit)
    except Exception as exc:  # the database's own message is the useful one
        raise fail(f"runs: {exc}", ExitCode.FAILED) from None
    finally:
        store.close()
    cols = ["run_id", "kind", "campaign_date", "status", "operator", "started_at", "duration_s"]
    console.print(frame_table(frame[cols], "Runs"))


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="an example query name, or SQL text")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="bound parameter NAME=VALUE")
    ] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
) -> None:
    """Run one of the README's example analyst queries (or one read-only statement) and
    print it (read-only: the analyst role may run it)."""
    from growth.store.views import EXAMPLE_QUERIES

    params: dict[str, object] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"--param must look like NAME=VALUE, got {item!r}", ExitCode.BAD_INPUT)
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    sql = EXAMPLE_QUERIES.get(name, name)
    store = _open_store(db, read_only=True)
    try:
        frame = store.query(sql, params)
    except ValueError as exc:  # refused before it ran: not one read-only statement
        raise fail(f"query refused: {exc}", ExitCode.BAD_INPUT) from None
    except Exception as exc:  # the database's own message is the useful one
        raise fail(f"query failed: {exc}", ExitCode.FAILED) from None
    finally:
        store.close()
    console.print(frame_table(frame, name if name in EXAMPLE_QUERIES else "query"))


@app.command("app")
def launch(
    port: Annotated[int, typer.Option(help="port to serve the app on", min=1, max=65535)] = 8501,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default $GROWTH_DB_URL)")] = None,
) -> None:
    """Start the operators' Streamlit app."""
    from growth.store import BadStoreURL

    if db is not None:
        try:
            parse_url(db)
        except BadStoreURL as exc:
            raise fail(str(exc), ExitCode.BAD_INPUT) from None
    raise typer.Exit(launch_app(port, db))


# -- the app's process ---------------------------------------------------------------


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: the process's arguments); the exit code.

    ``main(["nightly", "--config", "data/nightly.toml"])`` runs in-process, as tests do.
    """
    try:
        app(args=None if argv is None else list(argv), prog_name="growth")
    except SystemExit as exc:  # typer (click) always ends with SystemExit in standalone mode
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        err_console.print(printable(exc.code, newlines=True), soft_wrap=True)
        return ExitCode.FAILED
    except Exception as exc:  # a bug: its traceback, passwords hidden, and exit 1
        trace = "".join(traceback.format_exception(exc))
        err_console.print(printable(trace, newlines=True), soft_wrap=True)
        return ExitCode.FAILED
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
