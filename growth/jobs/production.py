"""The nightly job for production: exclusive, idempotent, atomic, observable.

:func:`run_nightly_job` owns the resources of a run and hands them down:

* **Exclusive**: it first takes the lease on ("nightly", campaign_date, campaign)
  (a ``run_locks`` row, see :mod:`growth.store.locks`); a second run for the same
  date and campaign is refused with :class:`RunInProgress` (exit code 3) while the
  first is alive.  A lease left by a killed process is detected (dead pid on this
  host, or heartbeat older than the lease) and taken over.
* **Stale runs**: holding the lease proves no live process writes a run for the
  key, so any run of it still 'running' was killed: it is closed as 'failed'.
* **Atomic**: it then opens the run itself and hands the run writer to the
  pipeline (:func:`growth.jobs.pipeline.run_pipeline`); the run's results and its
  'succeeded' status are written in one transaction, so a run killed at any point
  leaves nothing visible in the analyst views (they show succeeded runs only).
* **Idempotent**: re-running a date and campaign supersedes the earlier
  succeeded run in that same transaction (status 'superseded', rows kept for
  audit, hidden from the views); the writer says which runs it superseded.
* **Stoppable**: SIGTERM stops the job like Ctrl-C (SIGINT): the run is recorded
  'failed' and the lease released (:class:`JobInterrupted`).  A job that loses its
  lease (another process took it over as stale, or its row vanished) stops at the
  heartbeat that finds out, is checked again between stages, and its result
  transaction refuses to commit without the lease.
* **Observable**: JSON-lines logs (``<data root>/logs/nightly-<date>-<campaign>.jsonl``
  and/or stderr), one console line per stage, per-stage timings in ``run_stages``
  (for failed runs too) and in the run summary, the code version and config stored
  with the run.

The command line is ``growth nightly`` (:mod:`growth.cli`); its exit codes are
:class:`growth.exit_codes.ExitCode`.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from growth.exit_codes import BadInput, exit_code
from growth.jobs.config import KIND, NightlyConfig
from growth.jobs.logs import json_logging
from growth.jobs.stages import StageClock
from growth.store import RunInProgress, RunLease, Store
from growth.store.engine import CLEANUP_WAIT_S

if TYPE_CHECKING:
    from growth.data.dataset import Dataset
    from growth.jobs.pipeline import NightlyResult

log = logging.getLogger(__name__)


class JobInterrupted(BaseException):
    """The job was told to stop (SIGTERM, or a lost lease); its run is recorded failed.

    A ``BaseException``, like ``KeyboardInterrupt``, so no ``except Exception`` on the
    way swallows it.
    """


@dataclass(frozen=True)
class JobHooks:
    """Callbacks at fixed points of a job, for tests that stop a process there.

    ``stage_started`` gets each stage's name as it starts; ``before_commit`` runs
    inside the result transaction, just before the run is marked succeeded.
    """

    stage_started: Callable[[str], None] | None = None
    before_commit: Callable[[], None] | None = None


def load_config(path: Path | None = None, **overrides: Any) -> NightlyConfig:
    """The job's config from a TOML file (or the defaults), with keyword ``overrides``.

    ``None`` overrides are ignored; ``"coupons.budget"`` reaches into a section.
    The data source is checked too (:meth:`NightlyConfig.check_sources`), so bad
    input is refused before any data is read.  Raises
    :class:`~growth.exit_codes.BadInput` naming the file and field at fault.
    """
    try:
        if path is not None:
            return NightlyConfig.from_toml(path, **overrides).check_sources()
        return NightlyConfig.from_overrides(**overrides).check_sources()
    except (ValueError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from exc


def read_input(config: NightlyConfig) -> Dataset | None:
    """The dataset of ``config.data_dir``, read, validated and checked plannable
    (:func:`growth.data.io.read_dataset`), or ``None`` for a simulated world (generated in
    the job's data stage).  Raises :class:`~growth.data.table_check.DataValidationError`
    naming the file, column and row."""
    if config.data_dir is None:
        return None
    from growth.data.io import read_dataset

    return read_dataset(config.data_dir)


def run_nightly_job(
    config: NightlyConfig,
    *,
    store: Store,
    progress: bool = False,
    console: Console | None = None,
    log_dir: Path | None = None,
    log_stderr: bool = False,
    lease_s: float = 120.0,
    hooks: JobHooks | None = None,
    dataset: Dataset | None = None,
) -> NightlyResult:
    """Run the nightly job exclusively and idempotently for ``config``'s date and campaign.

    Raises :class:`RunInProgress` when another live run holds the date and
    campaign, and re-raises the job's error after recording the run 'failed'
    (:func:`growth.exit_codes.exit_code` maps either to the CLI's exit code).
    ``console`` gets one line per stage; ``progress`` shows progress bars inside
    the long stages.  ``dataset``: ``config.data_dir`` already read (:func:`read_input`);
    else the files are read here, before the lease: a dataset that cannot be planned
    is refused (:class:`~growth.data.table_check.DataValidationError`, exit 2) with no
    lease held, no run opened and no model trained.
    """
    if dataset is None:
        dataset = read_input(config)
    day, campaign = config.campaign_date, config.campaign
    fields: dict[str, Any] = {"job": KIND, "campaign_date": day.isoformat(), "campaign": campaign}
    log_file = None
    if log_dir is not None:
        log_file = Path(log_dir) / f"nightly-{day.isoformat()}-{campaign}.jsonl"
    lease = store.lock(KIND, day, campaign, lease_s=lease_s)
    with json_logging(fields, log_file=log_file, stderr=log_stderr), _stop_on_signal(lease):
        try:
            _acquire(lease)
            fields["pid"] = lease.pid
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
            return _run(
                config,
                store,
                lease,
                fields,
                progress=progress,
                console=console,
                hooks=hooks,
                dataset=dataset,
            )
        finally:
            lease.release()


@contextmanager
def _stop_on_signal(lease: RunLease) -> Iterator[None]:
    """While the job runs, SIGTERM, SIGINT (Ctrl-C) and a lost lease raise
    :class:`JobInterrupted` in the main thread (where the run's ``with`` block records the
    failure; the command exits 1).

    The lease's heartbeat thread reports a loss by sending SIGTERM to the main thread
    (a real signal: it also interrupts a blocking call); off the main thread no handler
    can be installed, and the job relies on its checks between stages and at commit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        reason = lease.lost_reason or f"stopped by {signal.Signals(signum).name}"
        raise JobInterrupted(reason)

    def lost() -> None:
        if installed.is_set():  # never a SIGTERM without this handler: it would kill
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    # SIGINT too (it would end the command with KeyboardInterrupt, exit 130, outside the
    # README's codes), unless it is ignored (a job started in the background keeps it so)
    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    installed.set()
    lease.on_lost = lost
    try:
        yield
    finally:
        lease.on_lost = None
        installed.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _acquire(lease: RunLease) -> None:
    """Take the lease; logs a refusal or a stale take-over."""
    try:
        lease.acquire()
    except RunInProgress as exc:
        log.error(str(exc), extra={"event": "refused", "holder": exc.holder})
        raise
    log.info("lease acquired", extra={"event": "lease_acquired", "pid": lease.pid})
    if lease.took_over is not None:
        log.warning(
            "took over a stale lease: %s",
            lease.took_over["reason"],
            extra={"event": "stale_lease", "stale_pid": lease.took_over["pid"]},
        )
    return lease


def _run(
    config: NightlyConfig,
    store: Store,
    lease: RunLease,
    fields: dict[str, Any],
    *,
    progress: bool,
    console: Console | None,
    hooks: JobHooks | None,
    dataset: Dataset | None,
) -> NightlyResult:
    """Open the run, hand it to the pipeline, record its stages (failed runs too)."""
    from growth.jobs.pipeline import (  # torch: only now
        cross_domain_evidence,
        open_run,
        planned_stages,
        run_pipeline,
    )

    hooks = hooks or JobHooks()

    def stage_started(name: str) -> None:
        lease.check()  # a job that lost its lease goes no further
        if hooks.stage_started is not None:
            hooks.stage_started(name)

    clock = StageClock(planned_stages(config), console=console, on_start=stage_started)

    log.info(
        "nightly job started",
        extra={"event": "job_started", "config": config.model_dump(mode="json")},
    )
    started = time.perf_counter()
    run_id: int | None = None
    evidence = cross_domain_evidence(store, config)  # before the run's transaction opens
    try:
        with open_run(store, config, before_commit=hooks.before_commit, lease=lease) as run:
            run_id = fields["run_id"] = run.id
            lease.set_run_id(run.id)
            log.info("run %d opened", run.id, extra={"event": "run_opened"})
            result = run_pipeline(
                config, run, clock, progress=progress, dataset=dataset, evidence=evidence
            )
    except BaseException as exc:
        if run_id is not None:
            _discard_artifacts(run.summary)
            try:
                store.record_stages(run_id, clock.rows, wait_s=CLEANUP_WAIT_S)
            except Exception as db_exc:  # keep the job's own error in front
                exc.add_note(f"also: could not record stage timings: {db_exc!r}")
        log.error(
            "nightly job failed: %s: %s",
            type(exc).__name__,
            exc,
            extra={"event": "job_failed", "exit_code": int(exit_code(exc))},
        )
        raise
    store.record_stages(run.id, clock.rows)
    log.info(
        "nightly job succeeded: run %d",
        run.id,
        extra={
            "event": "job_succeeded",
            "duration_s": time.perf_counter() - started,
            "timings_s": dict(clock.timings),
            "superseded": run.superseded,
        },
    )
    return result


def _discard_artifacts(summary: dict[str, Any]) -> None:
    """Remove the files of a run that failed: only succeeded runs' models are ever read."""
    folder = summary.get("artifacts")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
