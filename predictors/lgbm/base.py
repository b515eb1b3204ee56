"""LightGBMEstimator: the base of the gradient-boosted-tree predictors.

A model reads the raw frame described by its feature spec and encodes it with
:func:`~predictors.tabular.encode_tabular` (categorical fields declared
categorical to LightGBM unless the model says otherwise).  Training, early
stopping on a seeded validation split, the progress bar, the grouped scorer and
save/load live here once; a model sets its objective, its ``Config`` defaults
and what it learns besides the trees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from predictors.base import Estimator, check_is_fitted
from predictors.features import FeatureSpec
from predictors.lgbm.trees import TreeSplit, split_trees
from predictors.tabular import encode_tabular, tabular_columns


class LightGBMConfig(BaseModel):
    """Hyper-parameters shared by the LightGBM models; each model sets its own defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.1, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(50, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    early_stopping_rounds: int = Field(30, ge=1)
    validation_fraction: float = Field(0.1, ge=0, lt=0.5)
    # a ridge-regularised linear model of the numeric columns in each leaf (LightGBM's
    # linear_tree): for a response whose log-odds is close to linear in a few inputs
    linear_tree: bool = False
    n_jobs: int = Field(0, ge=0)  # 0: OpenMP's default as the process started (see threads())
    seed: int = 0
    verbose: bool = False


def default_threads() -> int:
    """OpenMP's default thread count: ``$OMP_NUM_THREADS``, else the cores this process may use.

    A model resolves ``n_jobs=0`` to this explicit count, so torch's thread
    setting (which is OpenMP's too) never reaches LightGBM.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LightGBMEstimator(Estimator):
    """Base class: a LightGBM booster over the tabular encoding of the spec's raw frame.

    Learned state: ``booster_``, ``feature_spec_`` (the fitted spec),
    ``feature_names_in_`` (encoded column names), ``categorical_`` (those
    declared categorical), ``best_iteration_``, plus each model's
    ``extra_state`` attributes.
    """

    Config: ClassVar[type[LightGBMConfig]] = LightGBMConfig
    objective: ClassVar[str] = "binary"
    declare_categorical: ClassVar[bool] = True
    extra_state: ClassVar[tuple[str, ...]] = ()  # JSON-safe fitted attributes saved with the trees
    tiny_params: ClassVar[dict[str, Any]] = {"n_estimators": 40, "min_child_samples": 20}

    def __init__(self, feature_spec: FeatureSpec, **params: Any) -> None:
        super().__init__(feature_spec, **params)
        self.booster_: lgb.Booster | None = None
        self.feature_spec_: FeatureSpec | None = None
        self.feature_names_in_: list[str] | None = None
        self.categorical_: list[str] = []
        self.best_iteration_: int | None = None

    # -------------------------------------------------------------------- fit
    def _encode_for_fit(self, X: pd.DataFrame) -> pd.DataFrame:
        """Fit the spec (unless fitted) and record the encoded columns; the encoded frame."""
        spec = self.feature_spec if self.feature_spec.fitted else self.feature_spec.fit(X)
        spec.check_columns(X)
        table = encode_tabular(spec, X)
        names, categorical = tabular_columns(spec)
        self.feature_spec_, self.feature_names_in_ = spec, names
        self.categorical_ = categorical if self.declare_categorical else []
        return table

    def _train(
        self,
        cfg: LightGBMConfig,
        train: tuple[pd.DataFrame, np.ndarray],
        valid: tuple[pd.DataFrame, np.ndarray] | None,
    ) -> lgb.Booster:
        """Boost up to ``n_estimators`` rounds, early-stopping on ``valid`` when given."""
        params = {
            "objective": self.objective,
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples,
            "feature_fraction": cfg.feature_fraction,
            "num_threads": cfg.n_jobs or default_threads(),
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        if cfg.linear_tree:
            params.update(linear_tree=True, linear_lambda=1.0)
        categorical = list(self.categorical_) or "auto"
        dtrain = lgb.Dataset(*train, categorical_feature=categorical, free_raw_data=True)
        valid_sets, callbacks = [], []
        if valid is not None:
            valid_sets = [lgb.Dataset(*valid, reference=dtrain)]
            callbacks.append(lgb.early_stopping(cfg.early_stopping_rounds, verbose=False))
        with tqdm(
            total=cfg.n_estimators, desc=self.name, unit="tree", disable=not cfg.verbose
        ) as bar:
            callbacks.append(lambda env: bar.update(1))
            booster = lgb.train(
                params,
                dtrain,
                num_boost_round=cfg.n_estimators,
                valid_sets=valid_sets,
                callbacks=callbacks,
            )
        self.booster_ = booster
        self.best_iteration_ = booster.best_iteration or cfg.n_estimators
        return booster

    @staticmethod
    def _split(n: int, fraction: float, seed: int, *, at_least_one: bool = False) -> tuple:
        """Seeded ``(valid, train)`` row positions: ``fraction`` of ``n`` rows for validation."""
        order = np.random.default_rng(seed).permutation(n)
        n_valid = max(1, int(fraction * n)) if at_least_one else round(fraction * n)
        return order[:n_valid], order[n_valid:]

    # ---------------------------------------------------------------- predict
    def _encoded(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "booster_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        self.feature_spec_.check_columns(X)
        return encode_tabular(self.feature_spec_, X).to_numpy(np.float32)

    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        """The booster's output of an encoded float32 block: a probability (binary
        objective, clipped to [0, 1]) or a value."""
        out = self.booster_.predict(block, num_iteration=self.best_iteration_)
        out = np.asarray(out, dtype=np.float64)
        return np.clip(out, 0.0, 1.0) if self.objective == "binary" else out

    def grouped_scorer(
        self, entities: pd.DataFrame, varying: list[str] | tuple = ()
    ) -> TabularScorer:
        """A :class:`~predictors.scoring.GroupedScorer` that encodes ``entities`` once."""
        check_is_fitted(self, "booster_")
        return TabularScorer(self, entities, varying)

    def feature_importance(self) -> pd.Series:
        """Total gain per encoded column, largest first."""
        check_is_fitted(self, "booster_")
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_in_).sort_values(ascending=False)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``model.txt`` (LightGBM's text format) and ``config.json`` into folder ``path``."""
        check_is_fitted(self, "booster_")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / "model.txt"), num_iteration=self.best_iteration_)
        meta = {
            "model": self.name,
            "params": self._validated_config().model_dump(mode="json"),
            "feature_spec": self.feature_spec.to_dict(),
            "fitted_spec": self.feature_spec_.to_dict(),
            "categorical": self.categorical_,
            "best_iteration": self.best_iteration_,
            "state": {key: getattr(self, key) for key in self.extra_state},
        }
        (folder / "config.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> LightGBMEstimator:
        """Rebuild a saved model from ``model.txt`` and ``config.json``."""
        folder = Path(path)
        meta = json.loads((folder / "config.json").read_text())
        if meta.get("model") != cls.name:
            raise ValueError(f"{folder} holds a {meta.get('model')!r} model, not {cls.name!r}")
        spec = FeatureSpec.from_dict(meta["feature_spec"])
        model = cls(spec, **cls._saved_params(meta["params"]))
        model.booster_ = lgb.Booster(model_file=str(folder / "model.txt"))
        model.feature_spec_ = FeatureSpec.from_dict(meta["fitted_spec"])
        model.feature_names_in_ = tabular_columns(model.feature_spec_)[0]
        model.categorical_ = list(meta["categorical"])
        model.best_iteration_ = int(meta["best_iteration"])
        for key, value in meta["state"].items():
            setattr(model, key, value)
        return model


class TabularScorer:
    """:class:`~predictors.scoring.GroupedScorer` of a LightGBM model.

    The entity table is encoded once; base rows are float32 blocks gathered from
    it plus the encoded context.  For a binary model, variants use a
    :class:`~predictors.lgbm.trees.TreeSplit`: the trees that never read a
    varying column are evaluated once per base row.
    """

    def __init__(self, model: LightGBMEstimator, entities: pd.DataFrame, varying) -> None:
        spec, names = model.feature_spec_, model.feature_names_in_
        self.model = model
        entity_spec = spec.select(lambda f: f.name in entities.columns)
        self.context_spec = spec.select(lambda f: f.name not in entities.columns)
        self.entity_block = encode_tabular(entity_spec, entities).to_numpy(np.float32)
        self.entity_cols = _positions(names, tabular_columns(entity_spec)[0])
        self.context_cols = _positions(names, tabular_columns(self.context_spec)[0])
        self.varying_spec = spec.select(lambda f: f.name in set(varying))
        varying_names = tabular_columns(self.varying_spec)[0]
        self.varying_cols = _positions(names, varying_names)
        self.trees: TreeSplit | None = None
        if model.objective == "binary" and varying_names:
            self.trees = split_trees(model.booster_, names, varying_names, model.best_iteration_)

    def rows(self, entity_index: np.ndarray, context: pd.DataFrame) -> TabularRows:
        block = np.empty((len(entity_index), len(self.model.feature_names_in_)), dtype=np.float32)
        block[:, self.entity_cols] = np.take(self.entity_block, entity_index, axis=0)
        block[:, self.context_cols] = encode_tabular(self.context_spec, context).to_numpy(
            np.float32
        )
        return TabularRows(self, block)


class TabularRows:
    """Encoded base rows of a :class:`TabularScorer`."""

    def __init__(self, scorer: TabularScorer, block: np.ndarray) -> None:
        self.scorer, self.block = scorer, block
        self._fixed: np.ndarray | None = None

    def predict(self) -> np.ndarray:
        return self.scorer.model._predict_block(self.block)

    def predict_variants(self, rows: np.ndarray, replaced: pd.DataFrame) -> np.ndarray:
        s = self.scorer
        block = np.take(self.block, rows, axis=0)  # (r, F)
        block[:, s.varying_cols] = encode_tabular(s.varying_spec, replaced).to_numpy(np.float32)
        if s.trees is None:
            return s.model._predict_block(block)
        if self._fixed is None:  # (m,) shared by every variant of a base row
            self._fixed = s.trees.raw_fixed(self.block)
        return s.trees.proba(self._fixed[rows] + s.trees.raw_varying(block))


def _positions(names: list[str], subset: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[n] for n in subset], dtype=np.int64)
