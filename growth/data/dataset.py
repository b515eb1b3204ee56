"""An in-memory dataset: one pandas DataFrame per table of :mod:`growth.data.schema`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd


@dataclass
class Dataset:
    """The tables of one dataset.  Optional tables (push, channels) may be ``None``.

    Build it from the simulated world (``World.dataset``), the MovieLens adapter,
    or ``growth.data.io.read_dataset(folder)``; validate it with
    ``growth.data.validation.validate_dataset``.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    coupons: pd.DataFrame
    candidates: pd.DataFrame
    exposures: pd.DataFrame
    push_messages: pd.DataFrame | None = None
    push_candidates: pd.DataFrame | None = None
    push_log: pd.DataFrame | None = None
    channels: pd.DataFrame | None = None
    channel_history: pd.DataFrame | None = None
    name: str = "dataset"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that are present, by table name, in schema order."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "name" and getattr(self, f.name) is not None
        }
