"""Run the nightly job and pause it at a named point, so a test can kill it there.

``python tests/paused_nightly.py CONFIG DB MARKER POINT``: POINT is a stage name
(paused as the stage starts) or ``commit`` (paused inside the result transaction,
just before the run is marked succeeded).  At the point the process writes
``MARKER`` ("<pid> <point>") and sleeps for a minute.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from growth.jobs.production import JobHooks, load_config, run_nightly_job
from growth.store import Store


def main(config: str, db: str, marker: str, point: str) -> None:
    def pause(name: str) -> None:
        if name == point:
            Path(marker).write_text(f"{os.getpid()} {name}\n")
            time.sleep(60)

    hooks = JobHooks(stage_started=pause, before_commit=lambda: pause("commit"))
    run_nightly_job(load_config(Path(config)), store=Store(db), hooks=hooks)


if __name__ == "__main__":
    main(*sys.argv[1:])
