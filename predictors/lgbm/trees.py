"""A binary LightGBM model's trees split by whether they read some columns.

Rows that differ only in those columns (one user and item under several coupon
options) share the other trees' score, so it is computed once per group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np


@dataclass(frozen=True)
class TreeSplit:
    """A binary LightGBM model's trees in two raw-score parts: ``fixed`` never splits on
    the ``varying`` columns, ``varying`` holds every other tree.

    ``p = sigmoid(raw_fixed(base) + raw_varying(row))`` equals the model's
    probability up to float rounding (the trees' sum is only regrouped).
    Inputs are float blocks whose columns are in ``feature_names`` order.
    """

    fixed: lgb.Booster | None  # None when every tree reads a varying column
    varying: lgb.Booster | None  # None when no tree does
    feature_names: list[str]
    sigmoid: float  # LightGBM's ``sigmoid`` parameter of the binary objective

    @property
    def n_fixed_trees(self) -> int:
        return 0 if self.fixed is None else self.fixed.num_trees()

    @property
    def n_varying_trees(self) -> int:
        return 0 if self.varying is None else self.varying.num_trees()

    def raw_fixed(self, X: np.ndarray) -> np.ndarray:
        """(n,) summed leaf values of the fixed trees (log-odds units)."""
        return _raw(self.fixed, X)

    def raw_varying(self, X: np.ndarray) -> np.ndarray:
        """(n,) summed leaf values of the trees that read a varying column."""
        return _raw(self.varying, X)

    def proba(self, raw: np.ndarray) -> np.ndarray:
        """Probability from a total raw score, as LightGBM's binary objective computes it."""
        return np.clip(1.0 / (1.0 + np.exp(-self.sigmoid * raw)), 0.0, 1.0)


def split_trees(
    booster: lgb.Booster, feature_names: list[str], varying: Sequence[str], num_iteration: int
) -> TreeSplit:
    """Split the trees of a binary ``booster`` (up to ``num_iteration``) by whether they
    split on a column of ``varying``."""
    unknown = [c for c in varying if c not in feature_names]
    if unknown:
        raise ValueError(f"varying columns {unknown} are not columns the model was fitted on")
    text = booster.model_to_string(num_iteration=num_iteration)
    objective = re.search(r"^objective=binary sigmoid:(\S+)$", text, flags=re.M)
    if objective is None:
        raise ValueError("split_trees needs a model with LightGBM's binary objective")
    start, end = text.index("\nTree=") + 1, text.index("end of trees")
    header = re.sub(r"^tree_sizes=.*\n", "", text[:start], flags=re.M)
    tail = text[end:]
    blocks = re.split(r"^Tree=\d+\n", text[start:end], flags=re.M)[1:]
    cols = {feature_names.index(c) for c in varying}
    reads = [re.search(r"^split_feature=(.*)$", b, flags=re.M) for b in blocks]  # None: a leaf
    uses = [r is not None and bool(cols & {int(f) for f in r.group(1).split()}) for r in reads]
    return TreeSplit(
        fixed=_tree_subset(header, [b for b, u in zip(blocks, uses, strict=True) if not u], tail),
        varying=_tree_subset(header, [b for b, u in zip(blocks, uses, strict=True) if u], tail),
        feature_names=list(feature_names),
        sigmoid=float(objective.group(1)),
    )


def _raw(booster: lgb.Booster | None, X: np.ndarray) -> np.ndarray:
    if booster is None:
        return np.zeros(len(X))
    return np.asarray(booster.predict(X, raw_score=True), dtype=np.float64)


def _tree_subset(header: str, trees: list[str], tail: str) -> lgb.Booster | None:
    """A booster of the given ``Tree=`` blocks of a model string (renumbered from 0)."""
    if not trees:
        return None
    body = "".join(f"Tree={t}\n{block}" for t, block in enumerate(trees))
    return lgb.Booster(model_str=header + body + tail)
