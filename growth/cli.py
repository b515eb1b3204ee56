"""The ``growth`` command line: generate data, validate it, run the nightly job, query runs.

Run it as ``growth ...`` (the installed script) or ``python -m growth ...``; tests call
:func:`main` in-process.  Exit codes: :class:`growth.exit_codes.ExitCode`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from growth.exit_codes import ExitCode
from growth.store.engine import ENV_VAR

app = typer.Typer(
    help="Marketing decision platform for user growth.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )


def _fmt(value: object) -> str:
    """Numbers for people: thousands separators for large ones, 4 significant digits otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def _table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "fiu" else "left")
    for _, row in frame.iterrows():
        table.add_row(*(_fmt(v.item() if hasattr(v, "item") else v) for v in row.to_numpy()))
    return table


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


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
    date: Annotated[str | None, typer.Option(help="campaign date YYYY-MM-DD")] = None,
    operator: Annotated[str | None, typer.Option(help="who runs it")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign name (one run per date)")] = None,
    predictor: Annotated[
        str | None,
        typer.Option(
            help="conversion model by name: auto (default: with source-domain features "
            "csde, unless lightgbm, trained beside it, has a clearly better holdout Qini; else "
            "lightgbm), lightgbm, csde, mlp, ..."
        ),
    ] = None,
    max_train_rows: Annotated[
        int | None,
        typer.Option(help="a torch predictor trains on a seeded sample of this many rows (0: all)"),
    ] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default $GROWTH_DB_URL)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each stage")] = False,
    log_json: Annotated[bool, typer.Option(help="also write JSON log lines to stderr")] = False,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="folder of the JSON-lines job logs (default: <data root>/logs)"),
    ] = None,
) -> None:
    """Run the nightly job: data, predictors, coupon allocation, SQL, summary."""
    from growth.exit_codes import BadInput, exit_code
    from growth.jobs.production import load_config, run_nightly_job
    from growth.paths import log_dir as default_log_dir
    from growth.store import Store

    _setup_logging(verbose)
    overrides = {
        "scenario": str(scenario) if scenario else None,
        "data_dir": str(data_dir) if data_dir else None,
        "n_users": users,
        "seed": seed,
        "coupons.budget": budget,
        "coupons.merchant_budget": merchant_budget,
        "campaign_date": date,
        "operator": operator,
        "campaign": campaign,
        "predictor": predictor,
        "max_train_rows": max_train_rows,
    }
    try:
        cfg = load_config(config, **overrides)
    except BadInput as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None

    store = Store(db)
    console.print(f"[bold]nightly[/] {cfg.campaign_date} ({cfg.campaign}) -> {store.url}")
    try:
        result = run_nightly_job(
            cfg,
            store=store,
            progress=True,
            console=console,
            log_stderr=log_json,
            log_dir=log_dir or default_log_dir(),
        )
    except Exception as exc:  # exit_code() tells refused (3), bad input (2), failed (1)
        raise _fail(f"nightly: {exc}", exit_code(exc)) from None
    finally:
        store.close()
    print_summary(result)


def print_summary(result) -> None:
    """The nightly job's summary tables."""
    seg = result.segments.rename("users").reset_index()
    seg.columns = ["segment", "users"]
    console.print(_table(seg, "Users per lifecycle segment"))
    m = result.metrics.pivot_table(index=["model", "segment"], columns="metric", values="value")
    m = m.reindex(columns=["auc", "logloss", "ece", "qini", "positive_rate", "n"]).reset_index()
    console.print(
        _table(m, f"Conversion model ({result.predictor}) on the newest exposures")
        if m["model"].nunique() == 1
        else _table(m, f"Conversion models on the newest exposures (chosen: {result.predictor})")
    )
    plan = result.plan
    budgets = pd.DataFrame(
        {
            "budget": pd.Series(plan.budgets),
            "expected_spend": pd.Series(plan.spend),
        }
    )
    budgets["used_%"] = (
        100 * budgets["expected_spend"] / budgets["budget"].where(budgets["budget"] > 0)
    )
    console.print(_table(budgets.reset_index(names="budget_group"), "Coupon spend versus budget"))
    a = plan.allocation
    console.print(
        f"coupon plan: {int((plan.choice >= 0).sum()):,} users get a coupon; expected incremental "
        f"conversions {a.objective:,.2f} (upper bound {a.upper_bound:,.2f}, gap {a.gap:.3%}, "
        f"{a.method}, {a.solve_time_s:.2f} s)"
    )
    if result.truth is not None:
        t = result.truth.reset_index()
        console.print(_table(t, "Plans scored by the world's ground truth"))
        ratio = result.truth.loc["platform", "incremental_conversions"] / max(
            result.truth.loc["oracle", "incremental_conversions"], 1e-9
        )
        console.print(f"platform plan reaches {ratio:.1%} of the oracle's incremental conversions")
    if result.push is not None:
        sched = result.push.schedule
        console.print(
            f"push schedule: {len(sched.pushes):,} pushes to {len(result.push.audience.user_ids):,} "
            f"users; expected opens {sched.objective:,.1f} (upper bound {sched.upper_bound:,.1f}, "
            f"gap {sched.gap:.3%}, {sched.method}, {sched.solve_time_s:.1f} s); open model AUC "
            f"{result.push.open_model_auc:.3f}, fatigue decay {result.push.decay:.2f}"
        )
        if result.push_truth is not None:
            t = result.push_truth
            console.print(
                f"push scored by the truth: {t['platform']:,.1f} expected opens vs the oracle's "
                f"{t['oracle']:,.1f} ({t['platform'] / max(t['oracle'], 1e-9):.1%})"
            )
    if result.install is not None:
        p = result.install.split
        totals = p.totals
        console.print(
            f"install control: {totals['spend']:,.0f} spent for {totals['installs']:,.0f} installs, "
            f"{totals['logins']:,.0f} logins, {totals['retained']:,.0f} retained (max "
            f"{p.objective_name}, bound {p.upper_bound:,.1f}, gap {p.gap:.3%}); Pareto front of "
            f"{len(result.install.front)} points"
        )
        if result.install_truth is not None:
            console.print(
                _table(result.install_truth.reset_index(), "Install plans on the true curves")
            )
    timings = pd.DataFrame(
        {"stage": list(result.timings), "seconds": list(result.timings.values())}
    )
    console.print(_table(timings, "Stage timings"))
    console.print(f"[green]run {result.run_id} stored[/]")


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="folder to write the dataset into")],
    scenario: Annotated[
        str, typer.Option(help="world scenario: a TOML path or a name in <data root>/scenarios")
    ] = "default",
    users: Annotated[int | None, typer.Option(help="override the user count")] = None,
    seed: Annotated[int | None, typer.Option(help="override the seed")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Generate a simulated world and write it in the documented table format."""
    from growth.data.io import write_dataset
    from growth.world import generate_world, load_scenario

    try:
        cfg = load_scenario(scenario, n_users=users, seed=seed)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    world = generate_world(cfg, progress=True)
    folder = write_dataset(world.dataset, out, format=fmt)
    rows = pd.DataFrame(
        {
            "table": list(world.dataset.tables()),
            "rows": [len(t) for t in world.dataset.tables().values()],
        }
    )
    console.print(_table(rows, f"Wrote {folder}"))


@app.command()
def validate(folder: Annotated[Path, typer.Argument(help="dataset folder")]) -> None:
    """Validate a dataset folder; exit code 2 and a precise message when it is bad."""
    from growth.data.io import read_dataset
    from growth.data.validation import DataValidationError

    try:
        ds = read_dataset(folder)
    except (DataValidationError, FileNotFoundError) as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    rows = pd.DataFrame(
        {"table": list(ds.tables()), "rows": [len(t) for t in ds.tables().values()]}
    )
    console.print(_table(rows, f"{folder} is valid"))


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
    from growth.data.validation import DataValidationError

    try:
        ml = load_movielens(source)
    except (DataValidationError, FileNotFoundError) as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    folder = write_dataset(ml.dataset, out)
    console.print(f"wrote {folder}: {len(ml.dataset.users):,} users, split at {ml.split_time}")


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="how many runs")] = 20,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
) -> None:
    """Run history, newest first."""
    from growth.store import Store

    frame = Store(db).runs(limit=limit)
    cols = ["run_id", "kind", "campaign_date", "status", "operator", "started_at", "duration_s"]
    console.print(_table(frame[cols], "Runs"))


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="an example query name, or SQL text")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="bound parameter NAME=VALUE")
    ] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
) -> None:
    """Run one of the README's example analyst queries (or read-only SQL) and print it."""
    from growth.store import Store
    from growth.store.views import EXAMPLE_QUERIES

    params: dict[str, object] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--param must look like NAME=VALUE, got {item!r}", ExitCode.BAD_INPUT)
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    sql = EXAMPLE_QUERIES.get(name, name)
    try:
        frame = Store(db).query(sql, params)
    except Exception as exc:  # the database's own message is the useful one
        raise _fail(f"query failed: {exc}", ExitCode.FAILED) from None
    console.print(_table(frame, name if name in EXAMPLE_QUERIES else "query"))


@app.command("app")
def launch(
    port: Annotated[int, typer.Option(help="port to serve the app on")] = 8501,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default $GROWTH_DB_URL)")] = None,
) -> None:
    """Start the operators' Streamlit app."""
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
        err_console.print(str(exc.code), soft_wrap=True)
        return ExitCode.FAILED
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
