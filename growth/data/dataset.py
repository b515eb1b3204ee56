"""An in-memory dataset: one pandas DataFrame per table of :mod:`growth.data.schema`,
and the scenes of its exposure log (:func:`exposure_scenes`, :func:`decision_scene`)."""

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


def exposure_scenes(exposures: pd.DataFrame) -> pd.Series:
    """Each exposure's scene: its ``scene`` column, else its domain's one scene, named
    after the domain (the column is optional in the dataset format)."""
    column = exposures["scene"] if "scene" in exposures else exposures["domain"]
    return column.astype(str)


def decision_scene(exposures: pd.DataFrame) -> str | None:
    """The scene the coupon decision is for: the most frequent target scene (ties: the
    first by name); None when the log has no target rows.

    >>> log = pd.DataFrame({"domain": ["target", "target", "source"], "scene": ["a", "a", "b"]})
    >>> decision_scene(log), decision_scene(log.drop(columns="scene"))
    ('a', 'target')
    """
    scenes = exposure_scenes(exposures)[(exposures["domain"] == "target").to_numpy()]
    if scenes.empty:
        return None
    counts = scenes.value_counts()
    return str(counts.index[counts.to_numpy() == counts.max()].sort_values()[0])
