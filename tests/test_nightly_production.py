"""The production nightly job: idempotent re-runs, kill mid-run, exclusivity, exit codes, logs."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import growth.jobs.pipeline
import growth.jobs.production
import growth.store.engine
import growth.store.locks
import growth.store.runs
from growth.campaigns.coupons import choice
from growth.cli import main
from growth.exit_codes import ExitCode
from growth.jobs.production import JobHooks, JobInterrupted, load_config, run_nightly_job
from growth.jobs.stages import StageClock
from growth.store import LeaseLost, RunFailed, Store

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-11-26"
TINY = """
campaign_date = "2026-11-26"
campaign = "{campaign}"
scenario = "{scenario}"
n_users = 300
predictor = "lightgbm"
[coupons]
budget = 40.0
merchant_budget = 4.0
method = "lagrangian"
[push]
enabled = false
[install]
enabled = false
"""
RESULT_VIEWS = ("v_coupon_by_segment_type", "v_model_metrics", "v_pareto_points")


def _config(tmp_path: Path, campaign: str = "default") -> Path:
    path = tmp_path / f"nightly-{campaign}.toml"
    scenario = REPO / "data" / "scenarios" / "small.toml"
    path.write_text(TINY.format(campaign=campaign, scenario=scenario))
    return path


def _visible_runs(store: Store) -> set[int]:
    return {int(r) for view in RESULT_VIEWS for r in store.read(view)["run_id"]}


def test_rerun_replaces_results_and_logs_json_with_stage_timings(tmp_path: Path) -> None:
    """Re-running a date+campaign supersedes the earlier run; logs and stages are recorded."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    logs = tmp_path / "logs"
    first = run_nightly_job(load_config(_config(tmp_path)), store=store, log_dir=logs)
    other = run_nightly_job(load_config(_config(tmp_path, "spring")), store=store, log_dir=logs)
    second = run_nightly_job(load_config(_config(tmp_path)), store=store, log_dir=logs)
    assert _visible_runs(store) == {other.run_id, second.run_id}
    status = store.runs().set_index("run_id")["status"]
    assert status[first.run_id] == "superseded"
    coupons = store.read("v_coupon_by_segment_type")
    assert coupons.groupby("campaign")["run_id"].nunique().to_dict() == {"default": 1, "spring": 1}
    stages = store.read("run_stages", run_id=second.run_id)
    assert stages["stage"].tolist() == list(second.timings)
    assert stages["duration_s"].tolist() == pytest.approx(list(second.timings.values()))
    summary = store.get_run(second.run_id)["summary"]
    assert set(summary["timings_s"]) | {"store"} == set(second.timings)  # summary precedes store
    calibration = summary["calibration"]  # conversion per option x segment, before and after
    assert {"option_id", "segment", "rows", "ece_before", "ece_after"} <= set(calibration[0])
    assert {"ratio_before", "ratio_after"} <= set(calibration[0])
    assert sum(r["rows"] for r in calibration if r["segment"] == "all") > 0
    stretch = summary["uplift_scale"]  # the coupon effects' slope and factor per segment
    assert {"segment", "rows", "beta", "se", "factor"} <= set(stretch[0])
    assert all(r["factor"] >= 1.0 for r in stretch)
    records = [json.loads(line) for line in (logs / f"nightly-{DAY}-default.jsonl").open()]
    done = [r for r in records if r.get("event") == "job_succeeded"]
    assert [r["run_id"] for r in done] == [first.run_id, second.run_id]
    assert done[-1]["superseded"] == [first.run_id]
    assert {r["stage"] for r in records if r.get("event") == "stage_done"} == set(second.timings)
    assert store.read("run_locks").empty


def _start(config: Path, db: str, tmp_path: Path, pause: str | None) -> subprocess.Popen:
    """The job in a new process: paused at ``pause`` (tests/paused_nightly.py), else the CLI."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if pause:
        script = REPO / "tests" / "paused_nightly.py"
        cmd = [sys.executable, str(script), str(config), db, str(tmp_path / "paused"), pause]
    else:
        cmd = [sys.executable, "-m", "growth", "nightly", "--config", str(config), "--db", db]
        cmd += ["--log-dir", str(tmp_path / "logs")]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_paused(proc: subprocess.Popen, marker: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"job exited ({proc.returncode}) before pausing:\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("job did not reach its pause point in time")
        time.sleep(0.1)


@pytest.mark.parametrize("pause", ["score", "commit"])
def test_killed_run_leaves_nothing_visible_and_is_failed_by_the_next(
    tmp_path: Path, pause: str
) -> None:
    """SIGKILL mid-run (in a stage, or inside the result transaction): views keep the old run."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    config = _config(tmp_path)
    store = Store(db)
    before = run_nightly_job(load_config(config), store=store, log_dir=None)
    proc = _start(config, db, tmp_path, pause)
    try:
        _wait_paused(proc, tmp_path / "paused")
        if pause == "score":  # a second process for the same date+campaign is refused
            rival = _start(config, db, tmp_path, None)
            _, err = rival.communicate(timeout=120)
            assert rival.returncode == ExitCode.BUSY, err
            assert "in progress" in err and str(proc.pid) in err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _visible_runs(store) == {before.run_id}
    killed = store.runs().query("status == 'running'")["run_id"].tolist()
    assert len(killed) == 1
    assert store.read("coupon_allocations", run_id=killed[0]).empty
    after = run_nightly_job(load_config(config), store=store, log_dir=None)
    status = store.runs().set_index("run_id")["status"]
    assert status[killed[0]] == "failed" and "stale" in store.get_run(killed[0])["error"]
    assert status[before.run_id] == "superseded" and status[after.run_id] == "succeeded"
    assert _visible_runs(store) == {after.run_id}


def test_exit_codes_for_bad_input_and_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad config exits 2; a stage that raises exits 1, recorded failed, lease released."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    bad = tmp_path / "bad.toml"
    bad.write_text('campaign_date = "26/11/2026"\n')
    assert main(["nightly", "--config", str(bad), "--db", db]) == ExitCode.BAD_INPUT
    assert "campaign_date" in capsys.readouterr().err
    missing = str(tmp_path / "missing.toml")
    assert main(["nightly", "--config", missing, "--db", db]) == ExitCode.BAD_INPUT

    def broken(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(growth.jobs.pipeline, "plan_candidates", broken)
    config = _config(tmp_path)
    job = ["nightly", "--config", str(config), "--db", db, "--log-dir", str(tmp_path)]
    assert main(job) == ExitCode.FAILED
    assert "solver exploded" in capsys.readouterr().err
    store = Store(db)
    run = store.runs().iloc[0]
    assert run["status"] == "failed" and "solver exploded" in run["error"]
    stages = store.read("run_stages", run_id=int(run["run_id"]))
    assert stages["stage"].tolist()[-1] == "coupons"
    assert stages["status"].tolist()[-1] == "failed"
    assert store.read("run_locks").empty
    monkeypatch.undo()
    assert main(job) == ExitCode.OK


def test_stage_clock_numbers_times_and_fails_stages() -> None:
    """The one stage clock numbers planned stages on the console and keeps a failed stage's row."""
    out = io.StringIO()
    clock = StageClock(["data", "push", "train"], console=Console(file=out, width=200))
    started: list[str] = []
    clock.on_start = started.append
    with clock("data") as stage:
        stage.detail = "3 users"
    clock.skip("push", "the data has no push candidates")
    with pytest.raises(RuntimeError, match="diverged"), clock("train"):
        raise RuntimeError("diverged")
    lines = out.getvalue().splitlines()
    assert lines[0] == "stage 1/3 data ..." and lines[1].startswith("stage 1/3 data done in")
    assert lines[1].endswith(": 3 users")
    assert lines[2] == "stage 2/3 push skipped: the data has no push candidates"
    assert lines[4].startswith("stage 3/3 train failed after")
    assert started == ["data", "train"] and list(clock.timings) == ["data"]
    assert [(r.stage, r.status) for r in clock.rows] == [("data", "succeeded"), ("train", "failed")]


def _status(store: Store, run_id: int) -> str:
    return str(store.runs().set_index("run_id").loc[run_id, "status"])


def test_sigterm_records_the_run_failed_and_releases_the_lease(tmp_path: Path) -> None:
    """SIGTERM mid-run stops the job as SIGINT does: the run is recorded 'failed' (saying
    why), the lease is released, the views keep the earlier run."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    config = _config(tmp_path)
    store = Store(db)
    before = run_nightly_job(load_config(config), store=store, log_dir=None)
    proc = _start(config, db, tmp_path, "score")
    try:
        _wait_paused(proc, tmp_path / "paused")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "SIGTERM" in err
    run = store.runs().iloc[0]
    assert run["status"] == "failed" and "SIGTERM" in run["error"]
    assert store.read("run_locks").empty
    assert _visible_runs(store) == {before.run_id}


def _tamper_with_lease(store: Store, how: str) -> None:
    """Another process takes the lease over (``takeover``), or its row vanishes (``delete``)."""
    with store.engine.begin() as conn:
        if how == "delete":
            conn.exec_driver_sql("DELETE FROM run_locks")
        else:
            conn.exec_driver_sql(
                "UPDATE run_locks SET token = 'theirs', pid = 4242, host = 'elsewhere'"
            )


@pytest.mark.parametrize("how", ["delete", "takeover"])
def test_a_job_that_lost_its_lease_stops_at_its_next_heartbeat(tmp_path: Path, how: str) -> None:
    """The heartbeat that finds the lease gone stops the job in its main thread (here while
    a stage waits); the run is recorded failed and commits nothing."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    waited: list[float] = []

    def lose_lease(name: str) -> None:
        if name == "score":
            _tamper_with_lease(store, how)
            start = time.monotonic()
            try:
                time.sleep(30)  # a long stage: the heartbeat (every 0.25 s) interrupts it
            finally:
                waited.append(time.monotonic() - start)

    config = load_config(_config(tmp_path))
    with pytest.raises(BaseException, match="lost the lease") as info:
        run_nightly_job(config, store=store, log_dir=None, lease_s=1.0, hooks=JobHooks(lose_lease))
    assert isinstance(info.value, JobInterrupted | LeaseLost)
    assert waited and waited[0] < 10
    run = store.runs().iloc[0]
    assert run["status"] == "failed" and "lost the lease" in run["error"]
    assert ("vanished" if how == "delete" else "pid 4242 on elsewhere") in run["error"]
    assert store.read("coupon_allocations", run_id=int(run["run_id"])).empty


def test_a_job_that_lost_its_lease_never_commits(tmp_path: Path) -> None:
    """A takeover the heartbeat has not seen yet is caught inside the result transaction:
    the run is recorded failed, its rows are not written, the earlier plan stays visible."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    config = load_config(_config(tmp_path))
    before = run_nightly_job(config, store=store, log_dir=None)

    def take_over(name: str) -> None:  # after the job's own check as the stage starts
        if name == "store":
            _tamper_with_lease(store, "takeover")

    hooks = JobHooks(stage_started=take_over)
    with pytest.raises(RunFailed, match="lost the lease"):
        run_nightly_job(config, store=store, log_dir=None, hooks=hooks)
    lost = int(store.runs().iloc[0]["run_id"])
    assert _status(store, lost) == "failed" and _status(store, before.run_id) == "succeeded"
    assert _visible_runs(store) == {before.run_id}
    assert store.read("coupon_allocations", run_id=lost).empty


def _no_uplift(original):
    """The scoring stage, with every option predicted to convert like no coupon at all (every
    calibration's decision: the plan's and the value folds')."""

    def score(*args, **kwargs):
        flat = [
            dataclasses.replace(
                d, conversion=np.repeat(d.conversion[:, :1], len(d.option_ids), axis=1)
            )
            for d in original(*args, **kwargs)
        ]
        return flat

    return score


def test_an_empty_plan_never_supersedes_a_good_one_without_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan that gives nobody a coupon under a positive budget fails the run (exit 1, the
    message says why and names the flag); the day's good plan stays in the views. With
    --allow-empty-plan it is stored and supersedes it."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    config = _config(tmp_path)
    store = Store(db)
    good = run_nightly_job(load_config(config), store=store, log_dir=None)
    original = choice.predicted_coupon_decisions
    monkeypatch.setattr(choice, "predicted_coupon_decisions", _no_uplift(original))
    job = ["nightly", "--config", str(config), "--db", db, "--log-dir", str(tmp_path)]
    assert main(job) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "coupon plan is empty" in err and "--allow-empty-plan" in err
    assert _visible_runs(store) == {good.run_id} and _status(store, good.run_id) == "succeeded"
    assert main([*job, "--allow-empty-plan"]) == ExitCode.OK
    assert _status(store, good.run_id) == "superseded"
    assert store.read("v_coupon_by_segment_type").empty


def test_a_database_locked_to_the_end_fails_the_job_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds SQLite's lock from the store stage on and never lets go: the job
    raises RunFailed ('locked') after one busy timeout for the commit and the bounded retry
    of the failure, not one busy timeout more for each clean-up write (stage timings, the
    lease's heartbeat and release), which held the harness's job past 120 s."""
    monkeypatch.setattr(growth.store.runs, "FAILURE_RETRY_S", 1.0)
    for module in (growth.store.engine, growth.store.locks, growth.jobs.production):
        monkeypatch.setattr(module, "CLEANUP_WAIT_S", 0.5, raising=False)
    config = _config(tmp_path)
    path = tmp_path / "g.db"
    store = Store(f"sqlite:///{path}?timeout=3")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locked_at: list[float] = []

    def lock(stage: str) -> None:
        if stage == "store":
            blocker.execute("BEGIN EXCLUSIVE")
            locked_at.append(time.monotonic())

    hooks = JobHooks(stage_started=lock)
    try:
        with pytest.raises(RunFailed, match="locked"):
            run_nightly_job(load_config(config), store=store, log_dir=None, hooks=hooks)
        elapsed = time.monotonic() - locked_at[0]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert elapsed < 8.0, f"the job took {elapsed:.1f} s to give up on a locked database"


def test_ctrl_c_stops_the_job_as_sigterm_does_with_exit_1(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) mid-run: the run is recorded 'failed' saying SIGINT, the lease is
    released, and the command exits 1 (the README's 'the run failed'), not 130 from an
    uncaught KeyboardInterrupt."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    out = tmp_path / "stdout.txt"
    job = ["nightly", "--config", str(_config(tmp_path)), "--db", db, "--log-dir", str(tmp_path)]
    with out.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "growth", *job],
            cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "stage 2/" not in out.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.FAILED and "SIGINT" in err, (proc.returncode, err)
    store = Store(db)
    run = store.runs().iloc[0]
    assert run["status"] == "failed" and "SIGINT" in run["error"]
    assert store.read("run_locks").empty
