"""Tables of a :class:`benchmarks.harness.BenchmarkResult`: mean and spread over seeds, paired
gains over a baseline model, and the SQL store's ``model_metrics`` rows.

Every table reads the result's long ``metrics`` frame (dataset, model, seed, by, group,
metric, value), where ``by`` names a grouping of the test rows (``all``, ``domain``,
``scene``, ``segment``, ``popularity``) and ``group`` one of its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from benchmarks.harness import BenchmarkResult

SEGMENT_ORDER = ("active", "new", "lost", "potential", "source")
TABLE_METRICS = ("auc", "logloss")
KEYS = ["dataset", "model", "by", "group", "metric"]


def summarize(result: BenchmarkResult) -> pd.DataFrame:
    """Mean, standard deviation and seed count per (dataset, model, by, group, metric)."""
    grouped = result.metrics.groupby(KEYS, sort=False)
    return grouped["value"].agg(mean="mean", std="std", n_seeds="count").reset_index()


def _cell(mean: float, std: float) -> str:
    return f"{mean:.4f}±{0.0 if np.isnan(std) else std:.4f}"


def _group_order(groups: Sequence[str], by: str) -> list[str]:
    if by == "segment":
        return [g for g in SEGMENT_ORDER if g in groups] + sorted(set(groups) - set(SEGMENT_ORDER))
    return sorted(groups)


def format_table(
    result: BenchmarkResult,
    dataset: str,
    *,
    by: str = "domain",
    metrics: Sequence[str] = TABLE_METRICS,
    models: Sequence[str] | None = None,
    throughput: bool = True,
) -> pd.DataFrame:
    """Rows = models, columns = ``group metric`` (every group of grouping ``by``) as
    ``mean±std`` over seeds, then the seed count and (``throughput``) training samples/s."""
    summary = summarize(result)
    summary = summary[
        (summary["dataset"] == dataset) & (summary["by"] == by) & summary["metric"].isin(metrics)
    ]
    if summary.empty:
        raise ValueError(f"no {by!r} metrics for dataset {dataset!r}")
    models = [m for m in (models or dict.fromkeys(summary["model"])) if m in set(summary["model"])]
    cells = summary.set_index(["model", "group", "metric"])
    table = pd.DataFrame(index=pd.Index(models, name="model"))
    for group in _group_order(list(dict.fromkeys(summary["group"])), by):
        for metric in metrics:
            table[f"{group} {metric}"] = [
                _cell(*cells.loc[(m, group, metric), ["mean", "std"]])
                if (m, group, metric) in cells.index
                else ""
                for m in models
            ]
    seeds = summary.groupby("model")["n_seeds"].max()
    table["seeds"] = [int(seeds[m]) for m in models]
    if throughput:
        speed = result.throughput[result.throughput["dataset"] == dataset]
        rate = speed.groupby("model")["samples_per_s"].mean()
        table["samples/s"] = [f"{rate.get(m, np.nan):,.0f}" for m in models]
    return table


def gains(
    result: BenchmarkResult,
    dataset: str,
    *,
    by: str,
    base: str,
    metric: str = "auc",
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``metric`` of each model minus ``base``'s, paired by seed, per group of ``by``:
    rows = models, columns = groups, cells ``mean±std`` of the per-seed differences."""
    m = result.metrics
    m = m[(m["dataset"] == dataset) & (m["by"] == by) & (m["metric"] == metric)]
    wide = m.pivot_table(index=["seed", "group"], columns="model", values="value", aggfunc="first")
    if base not in wide:
        raise ValueError(f"no {metric} of base model {base!r} on {dataset!r}")
    diff = wide.sub(wide[base], axis=0).drop(columns=base).stack().rename("value").reset_index()
    stats = diff.groupby(["model", "group"])["value"].agg(["mean", "std"])
    models = [
        x for x in (models or stats.index.unique("model")) if x in stats.index.unique("model")
    ]
    groups = _group_order(list(stats.index.unique("group")), by)
    return pd.DataFrame(
        {
            g: [_cell(*stats.loc[(x, g)]) if (x, g) in stats.index else "" for x in models]
            for g in groups
        },
        index=pd.Index(models, name=f"{metric} - {base}"),
    )


def _store_rows(result: BenchmarkResult) -> pd.DataFrame:
    """The metrics the store's ``model_metrics`` can hold: per domain, per scene (with its
    domain) and per target segment; the mixed ``all`` rows and popularity bins stay out."""
    m = result.metrics.assign(value=result.metrics["value"].astype(float))
    m = m.replace({"value": {np.inf: np.nan, -np.inf: np.nan}})
    parts = [
        m[m["by"] == "domain"].assign(domain=lambda f: f["group"], scene="", segment="all"),
        m[m["by"] == "scene"].assign(
            domain=lambda f: f["group"].map(result.scene_domain), scene=lambda f: f["group"],
            segment="all",
        ),
        m[(m["by"] == "segment") & (m["group"] != "source")].assign(
            domain="target", scene="", segment=lambda f: f["group"]
        ),
    ]  # fmt: skip
    columns = ["model", "dataset", "domain", "scene", "segment", "metric", "value", "seed"]
    return pd.concat(parts, ignore_index=True)[columns]


def store_benchmark(result: BenchmarkResult, store: Any, config: Mapping[str, Any]) -> int:
    """Write the metrics (:func:`_store_rows`: one row per dataset, model, domain, scene,
    segment, metric, seed) as a 'benchmark' run."""
    with store.run(kind="benchmark", config=dict(config)) as run:
        run.add_model_metrics(_store_rows(result))
        run.summary = {
            "failures": [list(f) for f in result.failures],
            "samples_per_s": {
                f"{d}/{m}": float(v)
                for (d, m), v in result.throughput.groupby(["dataset", "model"])["samples_per_s"]
                .mean()
                .items()
            },
        }
        return run.id
