"""The nightly job for production: exclusive, idempotent, atomic, observable.

:func:`run_nightly_job` wraps :func:`growth.jobs.pipeline.run_nightly`:

* **Exclusive**: it first takes the lease on ("nightly", campaign_date, campaign)
  (a ``run_locks`` row, see :mod:`growth.store.locks`); a second run for the same
  date and campaign is refused with :class:`RunInProgress` (exit code 3) while the
  first is alive.  A lease left by a killed process is detected (dead pid on this
  host, or heartbeat older than the lease) and taken over.
* **Stale runs**: holding the lease proves no live process writes a run for the
  key, so any run of it still 'running' was killed: it is closed as 'failed'.
* **Atomic**: the run's results and its 'succeeded' status are written in one
  transaction by the store; killed at any point, nothing of the run is visible
  in the analyst views (they show succeeded runs only).
* **Idempotent**: re-running a date and campaign supersedes the earlier
  succeeded run in that same transaction (status 'superseded', rows kept for
  audit, hidden from the views): the views never show duplicates.
* **Observable**: JSON-lines logs (``data/logs/nightly-<date>-<campaign>.jsonl``
  and/or stderr), per-stage timings in ``run_stages`` and in the run summary,
  the code version and config stored with the run.

Exit codes of :func:`main` (``python -m growth.jobs.production``): 0 success, 1 the
run failed, 2 bad input (config, data), 3 refused (another run in progress).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select

from growth.data.validation import DataValidationError
from growth.jobs.config import NightlyConfig
from growth.jobs.logs import json_logging
from growth.paths import log_dir
from growth.store import Run, RunInProgress, StageTiming, Store
from growth.store.store import pause_for_test

if TYPE_CHECKING:
    from growth.jobs.pipeline import NightlyResult

log = logging.getLogger("growth.jobs.production")

KIND = "nightly"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BUSY = 3


class BadInput(ValueError):
    """The job's input (config file, dates, data) is invalid: exit code 2."""


def exit_code(exc: BaseException | None) -> int:
    """The process exit code for how a run ended (``None``: it succeeded)."""
    if exc is None:
        return EXIT_OK
    if isinstance(exc, RunInProgress):
        return EXIT_BUSY
    if isinstance(exc, BadInput | DataValidationError | FileNotFoundError | ValidationError):
        return EXIT_BAD_INPUT
    return EXIT_FAILED


# ------------------------------------------------------------------------- logging


# -------------------------------------------------------------------------- stages


@dataclass
class _StageClock:
    """Start times of stages as ``run_nightly`` reports them (for failed runs too)."""

    started: list[tuple[str, datetime, float]] = field(default_factory=list)

    def start(self, stage: str) -> None:
        self.started.append((stage, datetime.now(UTC), time.perf_counter()))

    def timings(self, durations: dict[str, float] | None, failed: bool) -> list[StageTiming]:
        """Stage rows: exact durations from the result if given, else up to now."""
        out = []
        now = time.perf_counter()
        for i, (stage, at, t0) in enumerate(self.started):
            last = i == len(self.started) - 1
            if durations is not None and stage in durations:
                seconds = durations[stage]
            else:
                seconds = (self.started[i + 1][2] if not last else now) - t0
            status = "failed" if failed and last else "succeeded"
            out.append(StageTiming(stage, at, max(seconds, 0.0), status))
        return out


# ---------------------------------------------------------------------------- job


def run_nightly_job(
    config: NightlyConfig,
    *,
    store: Store,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
    log_dir: Path | None = None,
    log_stderr: bool = False,
    lease_s: float = 120.0,
) -> NightlyResult:
    """Run the nightly job exclusively and idempotently for ``config``'s date and campaign.

    Raises :class:`RunInProgress` when another live run holds the date and
    campaign, and re-raises the job's error after recording the run 'failed'
    (use :func:`exit_code` to map either to the CLI's exit code).  ``report``
    gets each stage name as it starts (e.g. for a progress spinner).
    """
    day, campaign = config.campaign_date, config.campaign
    fields: dict[str, Any] = {"job": KIND, "campaign_date": day.isoformat(), "campaign": campaign}
    log_file = None
    if log_dir is not None:
        log_file = Path(log_dir) / f"nightly-{day.isoformat()}-{campaign}.jsonl"
    with json_logging(fields, log_file=log_file, stderr=log_stderr):
        lease = store.lock(KIND, day, campaign, lease_s=lease_s)
        try:
            lease.acquire()
        except RunInProgress as exc:
            log.error(str(exc), extra={"event": "refused", "holder": exc.holder})
            raise
        try:
            fields["pid"] = lease.pid
            log.info("lease acquired", extra={"event": "lease_acquired"})
            if lease.took_over is not None:
                log.warning(
                    "took over a stale lease: %s",
                    lease.took_over["reason"],
                    extra={"event": "stale_lease", "stale_pid": lease.took_over["pid"]},
                )
            stale = store.fail_stale_runs(
                KIND, day, campaign, "stale: its process died or stopped heartbeating"
            )
            if stale:
                log.warning(
                    "marked %d stale run(s) failed: %s",
                    len(stale),
                    stale,
                    extra={"event": "stale_runs_failed", "run_ids": stale},
                )
            return _run(config, store, lease, fields, progress=progress, report=report)
        finally:
            lease.release()


def _run(config, store, lease, fields, *, progress, report) -> NightlyResult:
    from growth.jobs.pipeline import run_nightly  # heavy imports (torch) only once we may run

    clock = _StageClock()

    def on_stage(stage: str) -> None:
        if not clock.started:  # the run row exists now: tell the lease and the logs
            run_id = _running_run_id(store, config)
            if run_id is not None:
                fields["run_id"] = run_id
                lease.set_run_id(run_id)
        clock.start(stage)
        log.info("stage %s started", stage, extra={"event": "stage_started", "stage": stage})
        if report is not None:
            report(stage)
        pause_for_test(stage)

    log.info(
        "nightly job started",
        extra={"event": "job_started", "config": config.model_dump(mode="json")},
    )
    started = time.perf_counter()
    try:
        result = run_nightly(config, store=store, progress=progress, report=on_stage)
    except BaseException as exc:
        run_id = fields.get("run_id")
        if run_id is not None:
            try:
                store.record_stages(run_id, clock.timings(None, failed=True))
            except Exception as db_exc:  # keep the job's own error in front
                exc.add_note(f"also: could not record stage timings: {db_exc!r}")
        log.error(
            "nightly job failed: %s: %s",
            type(exc).__name__,
            exc,
            extra={"event": "job_failed", "exit_code": exit_code(exc)},
        )
        raise
    fields["run_id"] = result.run_id
    stages = clock.timings(result.timings, failed=False)
    store.record_stages(result.run_id, stages)
    superseded = _superseded_by(store, result.run_id)
    for st in stages:
        log.info(
            "stage %s done in %.3f s",
            st.stage,
            st.duration_s,
            extra={"event": "stage_done", "stage": st.stage, "duration_s": st.duration_s},
        )
    log.info(
        "nightly job succeeded: run %d",
        result.run_id,
        extra={
            "event": "job_succeeded",
            "duration_s": time.perf_counter() - started,
            "timings_s": {st.stage: st.duration_s for st in stages},
            "superseded": superseded,
        },
    )
    return result


def _running_run_id(store: Store, config: NightlyConfig) -> int | None:
    runs = Run.__table__
    stmt = select(runs.c.id).where(
        runs.c.kind == KIND,
        runs.c.campaign_date == config.campaign_date,
        runs.c.campaign == config.campaign,
        runs.c.status == "running",
    )
    with store.engine.connect() as conn:
        return conn.execute(stmt.order_by(runs.c.id.desc()).limit(1)).scalar()


def _superseded_by(store: Store, run_id: int) -> list[int]:
    runs = Run.__table__
    stmt = select(runs.c.id).where(runs.c.superseded_by == run_id).order_by(runs.c.id)
    with store.engine.connect() as conn:
        return [int(i) for i in conn.execute(stmt).scalars()]


# ---------------------------------------------------------------------------- main


def load_config(
    path: Path | None, *, date: str | None = None, campaign: str | None = None
) -> NightlyConfig:
    """The job's config from a TOML file (or defaults), with ``date``/``campaign`` overrides.

    Raises :class:`BadInput` naming the file and field at fault.
    """
    overrides = {"campaign_date": date, "campaign": campaign}
    try:
        if path is not None:
            return NightlyConfig.from_toml(path, **overrides)
        return NightlyConfig.model_validate({k: v for k, v in overrides.items() if v})
    except (ValueError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m growth.jobs.production --date D --config FILE``: run once, return the exit code."""
    parser = argparse.ArgumentParser(prog="growth-nightly-job", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="nightly TOML config")
    parser.add_argument("--date", help="campaign date YYYY-MM-DD (default: the config's)")
    parser.add_argument("--campaign", help="campaign name (default: the config's)")
    parser.add_argument("--db", help="SQLAlchemy URL (default $GROWTH_DB_URL)")
    parser.add_argument("--log-dir", type=Path, default=None, help="JSON-lines logs")
    parser.add_argument("--log-json", action="store_true", help="JSON-lines logs on stderr too")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, date=args.date, campaign=args.campaign)
    except BadInput as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    store = Store(args.db)
    try:
        result = run_nightly_job(
            config, store=store, log_dir=args.log_dir or log_dir(), log_stderr=args.log_json
        )
    except Exception as exc:
        code = exit_code(exc)
        label = {EXIT_BUSY: "refused", EXIT_BAD_INPUT: "bad input"}.get(code, "failed")
        print(f"nightly {label}: {exc}", file=sys.stderr)
        return code
    finally:
        store.close()
    print(json.dumps({"run_id": result.run_id, "timings_s": result.timings}))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
