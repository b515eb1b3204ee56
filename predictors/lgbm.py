"""LightGBM conversion model: the tabular baseline every deep model is compared with."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from predictors.base import check_columns, check_is_fitted, check_xy


@dataclass(frozen=True)
class LightGBMConfig:
    """Hyper-parameters; names equal the constructor's keyword arguments."""

    n_estimators: int = 300
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.9
    early_stopping_rounds: int = 30
    validation_fraction: float = 0.1
    n_jobs: int = 0  # 0: OpenMP's default (all cores, or $OMP_NUM_THREADS)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0 <= self.validation_fraction < 0.5:
            raise ValueError(
                f"validation_fraction must be in [0, 0.5), got {self.validation_fraction}"
            )


@dataclass(frozen=True)
class TreeSplit:
    """A binary LightGBM model's trees in two raw-score parts: ``fixed`` never splits on
    the ``varying`` columns, ``varying`` holds every other tree.

    Rows that differ only in the varying columns (one user and item under several
    coupon options) share the fixed part's score, so it is computed once per group:
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
        """Conversion probability from a total raw score, as LightGBM's binary objective."""
        return np.clip(1.0 / (1.0 + np.exp(-self.sigmoid * raw)), 0.0, 1.0)


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


class LightGBMModel:
    """Gradient-boosted trees on a numeric frame (see :func:`predictors.tabular.encode_tabular`).

    Example::

        model = LightGBMModel(n_estimators=100, seed=1).fit(X, y, categorical=["lifecycle"])
        p = model.predict_proba(X)[:, 1]
    """

    name = "lightgbm"

    def __init__(self, **params: float | int) -> None:
        self.params = params
        self.booster_: lgb.Booster | None = None
        self.feature_names_in_: list[str] | None = None
        self.categorical_: list[str] = []
        self.best_iteration_: int | None = None

    def _config(self) -> LightGBMConfig:
        unknown = set(self.params) - set(LightGBMConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"unknown LightGBMModel parameters {sorted(unknown)}; "
                f"valid ones are {sorted(LightGBMConfig.__dataclass_fields__)}"
            )
        return LightGBMConfig(**self.params)

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, *, categorical: list[str] | tuple[str, ...] = ()
    ) -> LightGBMModel:
        """Fit with early stopping on a random validation split of ``X``."""
        cfg = self._config()
        labels = check_xy(X, y)
        unknown = [c for c in categorical if c not in X.columns]
        if unknown:
            raise ValueError(f"categorical columns {unknown} are not columns of X")
        rng = np.random.default_rng(cfg.seed)
        n_valid = round(cfg.validation_fraction * len(X))
        order = rng.permutation(len(X))
        valid_idx, train_idx = order[:n_valid], order[n_valid:]
        lgb_params = {
            "objective": "binary",
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples,
            "feature_fraction": cfg.feature_fraction,
            "num_threads": cfg.n_jobs,
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        train = lgb.Dataset(
            X.iloc[train_idx],
            labels[train_idx],
            categorical_feature=list(categorical) or "auto",
            free_raw_data=True,
        )
        callbacks = []
        valid_sets = []
        if n_valid > 0:
            valid = lgb.Dataset(X.iloc[valid_idx], labels[valid_idx], reference=train)
            valid_sets = [valid]
            callbacks.append(lgb.early_stopping(cfg.early_stopping_rounds, verbose=False))
        self.booster_ = lgb.train(
            lgb_params,
            train,
            num_boost_round=cfg.n_estimators,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        self.best_iteration_ = self.booster_.best_iteration or cfg.n_estimators
        self.feature_names_in_ = list(X.columns)
        self.categorical_ = list(categorical)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities ``(n, 2)``; column 1 is the conversion probability."""
        check_is_fitted(self, "booster_")
        check_columns(X, self.feature_names_in_, type(self).__name__)
        p = self.booster_.predict(X[self.feature_names_in_], num_iteration=self.best_iteration_)
        p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def split_trees(self, varying: Sequence[str]) -> TreeSplit:
        """Split the trees (up to ``best_iteration_``) by whether they split on ``varying``.

        Scoring many rows that share all but the ``varying`` columns (coupon
        options of one user and item) then evaluates the fixed trees once per group.
        """
        check_is_fitted(self, "booster_")
        unknown = [c for c in varying if c not in self.feature_names_in_]
        if unknown:
            raise ValueError(f"varying columns {unknown} are not columns the model was fitted on")
        text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        objective = re.search(r"^objective=binary sigmoid:(\S+)$", text, flags=re.M)
        if objective is None:
            raise ValueError("split_trees needs a model with LightGBM's binary objective")
        start, end = text.index("\nTree=") + 1, text.index("end of trees")
        header = re.sub(r"^tree_sizes=.*\n", "", text[:start], flags=re.M)
        tail = text[end:]
        blocks = re.split(r"^Tree=\d+\n", text[start:end], flags=re.M)[1:]
        cols = {self.feature_names_in_.index(c) for c in varying}
        reads = [re.search(r"^split_feature=(.*)$", b, flags=re.M) for b in blocks]  # None: a leaf
        uses = [r is not None and bool(cols & {int(f) for f in r.group(1).split()}) for r in reads]
        return TreeSplit(
            fixed=_tree_subset(
                header, [b for b, u in zip(blocks, uses, strict=True) if not u], tail
            ),
            varying=_tree_subset(header, [b for b, u in zip(blocks, uses, strict=True) if u], tail),
            feature_names=list(self.feature_names_in_),
            sigmoid=float(objective.group(1)),
        )

    def feature_importance(self) -> pd.Series:
        """Total gain per input column, largest first."""
        check_is_fitted(self, "booster_")
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_in_).sort_values(ascending=False)

    def save(self, path: str | Path) -> Path:
        """Write ``model.txt`` (LightGBM's text format) and ``config.json`` into folder ``path``."""
        check_is_fitted(self, "booster_")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / "model.txt"), num_iteration=self.best_iteration_)
        meta = {
            "model": self.name,
            "params": asdict(self._config()),
            "feature_names_in": self.feature_names_in_,
            "categorical": self.categorical_,
            "best_iteration": self.best_iteration_,
        }
        (folder / "config.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> LightGBMModel:
        folder = Path(path)
        meta = json.loads((folder / "config.json").read_text())
        if meta.get("model") != cls.name:
            raise ValueError(f"{folder} holds a {meta.get('model')!r} model, not {cls.name!r}")
        model = cls(**meta["params"])
        model.booster_ = lgb.Booster(model_file=str(folder / "model.txt"))
        model.feature_names_in_ = list(meta["feature_names_in"])
        model.categorical_ = list(meta["categorical"])
        model.best_iteration_ = int(meta["best_iteration"])
        return model
