"""The sources' own comparisons, run on a :class:`benchmarks.harness.BenchmarkResult`.

- **WE-CAN** (:data:`WECAN_ORDER`): its paper ranks self-train < fine-tune < DANN <
  Wasserstein transfer < WE-CAN on the target domain, with larger gains on cold items:
  :func:`ordering_table` and the gains over self-train by popularity bin
  (:func:`benchmarks.tables.gains` with ``by="popularity"``).
- **CDAnet**: its gain over MMOE, and that gain against the share of training rows
  (:func:`share_table`, from the ``model@share`` rows of :func:`claim_variants`).
- **PLE / STAR**: against one model per scene (``self_train_per_scene``) on the cold
  scene, the target scene with the fewest test rows (:func:`cold_scene_table`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from benchmarks.harness import BenchmarkResult, ModelVariant
from benchmarks.tables import format_table, gains

WECAN_ORDER = ("self_train", "finetune", "dann", "wasserstein_transfer", "wecan")
"""WE-CAN's paper's ordering on the target domain, worst first."""
SHARE_MODELS = ("mmoe", "cdanet")
PER_SCENE = "self_train_per_scene"
MULTI_SCENE = ("ple", "star")


def share_label(name: str, share: float) -> str:
    """The row of ``name`` trained on ``share`` of the training rows (the model's own name at 1)."""
    return name if share == 1.0 else f"{name}@{share:.0%}"


def claim_variants(
    registry: Mapping[str, type],
    params: Mapping[str, Mapping[str, Any]],
    shares: Sequence[float],
) -> list[ModelVariant]:
    """The rows the comparisons add to the default ones: one self-train model per scene, and
    MMOE and CDAnet on each share of the training rows below 1."""
    out = []
    if "self_train" in registry:
        extra = dict(params.get("self_train", {}))
        out.append(ModelVariant(PER_SCENE, "self_train", None, extra, per_scene=True))
    for share in (s for s in shares if s < 1.0):
        for name in (n for n in SHARE_MODELS if n in registry):
            extra = dict(params.get(name, {}))
            out.append(ModelVariant(share_label(name, share), name, None, extra, train_share=share))
    return out


def _target_auc(result: BenchmarkResult, dataset: str) -> pd.Series:
    m = result.metrics
    m = m[(m["dataset"] == dataset) & (m["by"] == "domain") & (m["group"] == "target")]
    return m[m["metric"] == "auc"].groupby("model")["value"].mean()


def ordering_table(result: BenchmarkResult, dataset: str) -> tuple[pd.DataFrame, str]:
    """Target-domain AUC and log loss of :data:`WECAN_ORDER`'s models, and a sentence on
    which adjacent pairs of the claimed ordering hold on the means."""
    table = format_table(result, dataset, by="domain", models=WECAN_ORDER, throughput=False)
    auc = _target_auc(result, dataset)
    present = [m for m in WECAN_ORDER if m in auc]
    pairs = [
        f"{a} < {b}: {'yes' if auc[a] < auc[b] else 'no'}" for a, b in itertools.pairwise(present)
    ]
    return table, "; ".join(pairs)


def share_table(result: BenchmarkResult, dataset: str, shares: Sequence[float]) -> pd.DataFrame:
    """Per share of training rows: MMOE's and CDAnet's target AUC and CDAnet's paired gain."""
    auc = _target_auc(result, dataset)
    rows = []
    for share in sorted(shares):
        mmoe, cdanet = share_label("mmoe", share), share_label("cdanet", share)
        if mmoe not in auc or cdanet not in auc:
            continue
        gain = gains(result, dataset, by="domain", base=mmoe, models=[cdanet])
        rows.append(
            {
                "share": f"{share:.0%}",
                "mmoe AUC": f"{auc[mmoe]:.4f}",
                "cdanet AUC": f"{auc[cdanet]:.4f}",
                "cdanet - mmoe": gain.loc[cdanet, "target"],
            }
        )
    return pd.DataFrame(rows).set_index("share") if rows else pd.DataFrame()


def cold_scene(result: BenchmarkResult, dataset: str) -> str:
    """The target scene with the fewest test rows."""
    m = result.metrics
    n = m[(m["dataset"] == dataset) & (m["by"] == "scene") & (m["metric"] == "n")]
    n = n[n["group"].map(result.scene_domain) == "target"].groupby("group")["value"].mean()
    if n.empty:
        raise ValueError(f"no target scenes in {dataset!r}")
    return str(n.idxmin())


def cold_scene_table(result: BenchmarkResult, dataset: str) -> tuple[str, pd.DataFrame]:
    """The cold scene and, on its test rows, the AUC / log loss of PLE, STAR, one
    self-train model per scene and one self-train model for all scenes, with each one's
    paired AUC gain over the per-scene models."""
    scene = cold_scene(result, dataset)
    models = [*MULTI_SCENE, PER_SCENE, "self_train"]
    table = format_table(result, dataset, by="scene", models=models, throughput=False)
    table = table[[c for c in table if c.startswith(f"{scene} ")]]
    gain = gains(result, dataset, by="scene", base=PER_SCENE, models=models)
    table[f"AUC - {PER_SCENE}"] = [
        gain.loc[m, scene] if m in gain.index else "" for m in table.index
    ]
    return scene, table
