"""The handle of one open run: it buffers validated result rows and the run's summary.

:meth:`growth.store.Store.run` opens the run and yields a :class:`RunWriter`; the
rows it holds are written in one transaction when the run's ``with`` block ends.
The writer is also how the code that opened a run learns what happened to it: its
``id``, and after a successful commit the ids of the runs it ``superseded``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Table

from growth.store.jsonable import to_jsonable
from growth.store.models import RESULT_TABLES
from growth.store.rows import Rows, normalise_rows


class RunFailed(RuntimeError):
    """A run's results could not be written; the run is recorded as failed."""

    def __init__(self, run_id: int, message: str) -> None:
        super().__init__(f"run {run_id}: {message}")
        self.run_id = run_id


class RunWriter:
    """Collects one run's result rows and summary; :meth:`Store.run` writes them at exit.

    Rows are validated when added (see :func:`growth.store.rows.normalise_rows`), so
    a bad column fails at the line that added it, before anything is written.
    """

    def __init__(
        self, run_id: int, kind: str, campaign_date: date | None, campaign: str | None = None
    ) -> None:
        self.id = run_id
        self.kind = kind
        self.campaign_date = campaign_date
        self.campaign = campaign
        self.superseded: list[int] = []
        self._frames: dict[str, list[pd.DataFrame]] = {name: [] for name in RESULT_TABLES}
        self._summary: dict[str, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"RunWriter(id={self.id}, kind={self.kind!r}, rows={self.row_counts()})"

    @property
    def summary(self) -> dict[str, Any]:
        """JSON summary stored with the run (dict; numpy scalars are converted)."""
        return self._summary

    @summary.setter
    def summary(self, value: Mapping[str, Any]) -> None:
        if not isinstance(value, Mapping):
            raise TypeError(f"run summary must be a mapping (dict), got {type(value).__name__}")
        self._summary = to_jsonable(value, "summary")

    def row_counts(self) -> dict[str, int]:
        """Rows buffered so far per result table."""
        return {name: sum(len(f) for f in frames) for name, frames in self._frames.items()}

    def add(self, table_name: str, rows: Rows) -> int:
        """Validate and buffer rows for ``table_name``; returns the number of rows added."""
        if self._closed:
            raise RuntimeError(f"run {self.id} is closed; add rows inside its `with` block")
        frame = normalise_rows(table_name, rows)
        if len(frame):
            self._frames[table_name].append(frame)
        return len(frame)

    def add_model_metrics(self, rows: Rows) -> int:
        """Rows of ``model_metrics``: model, dataset, segment, metric, value[, seed]."""
        return self.add("model_metrics", rows)

    def add_coupon_allocations(self, rows: Rows) -> int:
        """Rows of ``coupon_allocations``: user_id, segment, option_id, coupon_type,
        face_value, expected_value, expected_cost[, expected_gmv]."""
        return self.add("coupon_allocations", rows)

    def add_push_schedule(self, rows: Rows) -> int:
        """Rows of ``push_schedules``: user_id, message_id, industry, hour, expected_open."""
        return self.add("push_schedules", rows)

    def add_channel_plan(self, rows: Rows) -> int:
        """Rows of ``channel_plans``: plan, channel_id, channel_name, spend, installs,
        logins, retained[, installs_lo, installs_hi]."""
        return self.add("channel_plans", rows)

    def add_pareto_points(self, rows: Rows) -> int:
        """Rows of ``pareto_points``: front, point_id[, spend, installs, logins, retained,
        conversions, gmv, chosen]."""
        return self.add("pareto_points", rows)

    def add_plan_estimates(self, rows: Rows) -> int:
        """Rows of ``plan_estimates``: plan, quantity, estimator, estimate, lower, upper,
        n_rows, n_users (a plan's off-policy estimates, :mod:`growth.campaigns.coupons.value`)."""
        return self.add("plan_estimates", rows)

    def close(self) -> None:
        """No more rows: the run's ``with`` block has ended."""
        self._closed = True

    def tables(self) -> Iterator[tuple[Table, pd.DataFrame]]:
        """Each result table with its buffered rows, in write order (tables with rows only)."""
        for name, frames in self._frames.items():
            if frames:
                yield RESULT_TABLES[name], pd.concat(frames, ignore_index=True)
