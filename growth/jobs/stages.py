"""One clock for the stages of a job: it times them, logs them, says them on the console
and keeps the rows of ``run_stages``.

A job names the stages it plans, then runs each inside ``with clock(name) as stage:``;
the body may set ``stage.detail`` (counts, the model chosen) for the console line
that closes the stage.  A stage that raises is kept with status ``'failed'``, so a
failed run records how far it got.

>>> clock = StageClock(["load", "solve"])
>>> with clock("load") as stage:
...     stage.detail = "3 users"
>>> clock.skip("solve", "nothing to solve")
>>> list(clock.timings), [(row.stage, row.status) for row in clock.rows]
(['load'], [('load', 'succeeded')])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console

from growth.store import StageTiming

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """A stage while it runs: ``detail`` is what it achieved, said when it ends."""

    name: str
    label: str  # "stage 2/8 train"
    detail: str = ""


class StageClock:
    """Times named stages; logs and (with a ``console``) prints each as it starts and ends.

    Args:
        planned: the stages the job means to run, in order (numbers them "2/8").
        console: a rich console for one line per stage start and end; ``None``: quiet.
        on_start: called with a stage's name as it starts (a test pauses there).
    """

    def __init__(
        self,
        planned: Sequence[str] = (),
        *,
        console: Console | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> None:
        self.planned = list(planned)
        self.console = console
        self.on_start = on_start
        self.timings: dict[str, float] = {}
        """Seconds of every finished stage, in the order they ran."""
        self._rows: list[StageTiming] = []

    @property
    def rows(self) -> list[StageTiming]:
        """The ``run_stages`` rows: every stage begun, the one that raised marked failed."""
        return list(self._rows)

    def _label(self, name: str) -> str:
        if name not in self.planned:
            return f"stage {name}"
        return f"stage {self.planned.index(name) + 1}/{len(self.planned)} {name}"

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def skip(self, name: str, reason: str) -> None:
        """A planned stage that will not run, and why."""
        log.info("stage %s skipped: %s", name, reason, extra={"event": "stage_skipped"})
        self._say(f"{self._label(name)} skipped: {reason}")

    @contextmanager
    def __call__(self, name: str) -> Iterator[Stage]:
        stage = Stage(name, self._label(name))
        started_at = datetime.now(UTC)
        log.info("stage %s started", name, extra={"event": "stage_started", "stage": name})
        self._say(f"{stage.label} ...")
        start = time.perf_counter()
        if self.on_start is not None:
            self.on_start(name)
        try:
            yield stage
        except BaseException:
            seconds = time.perf_counter() - start
            self._rows.append(StageTiming(name, started_at, seconds, "failed"))
            log.error(
                "stage %s failed after %.3f s",
                name,
                seconds,
                extra={"event": "stage_failed", "stage": name, "duration_s": seconds},
            )
            self._say(f"{stage.label} failed after {seconds:.1f} s")
            raise
        seconds = time.perf_counter() - start
        self.timings[name] = seconds
        self._rows.append(StageTiming(name, started_at, seconds))
        log.info(
            "stage %s done in %.3f s",
            name,
            seconds,
            extra={"event": "stage_done", "stage": name, "duration_s": seconds},
        )
        detail = f": {stage.detail}" if stage.detail else ""
        self._say(f"{stage.label} done in {seconds:.1f} s{detail}")
