"""TorchEstimator: the fat base class every PyTorch conversion model inherits.

A model file declares only its layers and its hyper-parameters (after FuxiCTR's
"thin model, fat base"); the constructor ``MyModel(feature_spec, *, <Config
fields>)`` is derived from ``Config`` (:class:`~predictors.base.Estimator`)::

    class MyModel(TorchEstimator):
        name = "my_model"
        network = MyNet                     # MyNet(spec, config) -> forward(batch) -> logits (batch,)

        class Config(MiniBatchConfig):      # the constructor's keyword arguments
            embedding_dim: int = Field(16, ge=1)

Everything else lives here once: config validation when ``fit`` starts, the
vocabulary/statistics fit (:class:`~predictors.torch.inputs.FrameEncoder`), a
seeded validation split, AdamW, shuffled in-memory mini-batches, early stopping
on validation log loss, progress bars, ``predict_proba``, ``save``/``load``.

Rows are (user, item, coupon option) triples: fields of domain ``treatment``
(coupon type, face value, threshold, merchant match) are ordinary fields, so
every model scores each coupon option of a user/item pair and the decision
layer asks for the probability under every option.  No model special-cases
treatments or domains; a missing domain (e.g. no source history) is just
absent fields (see :func:`~predictors.torch.layers.domain_present`).

Subclass hooks:

- ``network`` (required): the ``nn.Module`` class, built as ``network(spec, config_)``;
  ``module(batch)`` returns logits ``(batch,)``.  Or override ``build(spec)``.
- ``loss(module, batch, y, weight) -> scalar`` (optional): the training loss;
  the default is weighted binary cross-entropy on ``module(batch)``.  Override
  for multi-part losses (extra heads, regularisers).  Early stopping always uses
  plain log loss of ``module(batch)`` on the validation rows.
- ``on_epoch_start(module, epoch)`` (optional): e.g. schedules or freezing.
- ``training_rows(X, y, sample_weight, eval_set)`` (optional): the rows ``fit`` trains on.
- ``training_inputs(X, eval_set, cfg) -> (spec, X, eval_set)`` (optional): what
  ``fit`` encodes, e.g. an extra label column added to the spec.
- ``on_fit_end(X)`` (optional): fitted attributes computed from the fitted model.
- ``train_step(module, optimizer, cfg, rows, epoch) -> loss`` (optional): one
  mini-batch's updates (WE-CAN's critic steps go first).
- ``_train_epoch(module, optimizer, cfg, train, generator, epoch, context) -> mean loss``
  (rarely): one epoch's updates, each through ``_step``; MAML replaces the
  mini-batches with meta-steps (its tasks arrive as ``context``, handed to
  ``_fit_module``) and keeps the rest of the loop (early stopping, history,
  progress bar).

State that lives only while one ``fit`` runs travels as arguments (or on the
module being trained), never on the estimator: ``fit`` changes nothing but the
fitted attributes.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer
from tqdm.auto import tqdm

from predictors.base import Estimator, check_is_fitted, check_sample_weight, check_xy
from predictors.features import FeatureSpec
from predictors.torch.inputs import Batch, FrameEncoder, batch_size_of, chunks, take
from predictors.torch.scoring import BatchScorer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
PREDICT_BATCH = 16_384
Rows = tuple[Batch, torch.Tensor, torch.Tensor | None]
"""Training or validation rows: encoded batch, 0/1 targets ``(n,)``, weights ``(n,)`` or None."""


class TrainConfig(BaseModel):
    """Training hyper-parameters shared by every torch model; subclasses add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=1)
    validation_fraction: float = Field(0.1, ge=0, lt=0.5)
    seed: int = 0
    verbose: bool = False


class MiniBatchConfig(TrainConfig):
    """:class:`TrainConfig` of the models trained on shuffled mini-batches (all but MAML)."""

    batch_size: int = Field(1024, ge=1)


@contextmanager
def using_torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave torch's setting).

    The previous setting is restored afterwards.  torch's setting is OpenMP's
    too; the LightGBM models state their thread count explicitly, so the block
    does not reach them.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchEstimator(Estimator):
    """Base class: scikit-learn-like estimator around a ``build(spec)`` module.

    Learned state (all ``None``/empty before ``fit``): ``module_`` (the
    ``nn.Module``), ``encoder_`` (:class:`FrameEncoder`), ``feature_spec_`` (the
    fitted spec), ``config_`` (validated :class:`TrainConfig` subclass),
    ``history_`` (one ``{"epoch", "train_loss", "valid_loss"}`` dict per epoch),
    ``best_epoch_`` (1-based epoch whose weights were kept), ``calibration_``
    (Platt ``(a, b)`` applied to the module's logits; ``(1, 0)`` without
    validation rows).
    """

    Config: ClassVar[type[TrainConfig]] = MiniBatchConfig
    network: ClassVar[type[nn.Module] | None] = None  # built as network(spec, config_)
    max_tokens: ClassVar[int] = 32  # cap on the padded length of multi fields
    tiny_params: ClassVar[dict[str, Any]] = {"epochs": 2, "batch_size": 256}  # for tests
    trains_on_sample: ClassVar[bool] = True

    def __init__(self, feature_spec: FeatureSpec, **params: Any) -> None:
        super().__init__(feature_spec, **params)
        self.module_: nn.Module | None = None
        self.encoder_: FrameEncoder | None = None
        self.feature_spec_: FeatureSpec | None = None
        self.config_: TrainConfig | None = None
        self.history_: list[dict[str, float]] = []
        self.best_epoch_: int | None = None
        self.calibration_: tuple[float, float] = (1.0, 0.0)

    # ------------------------------------------------------------------ hooks
    def build(self, spec: FeatureSpec) -> nn.Module:
        """Return the network for fitted ``spec``; ``module(batch)`` gives logits ``(batch,)``."""
        if self.network is None:
            raise NotImplementedError(f"{type(self).__name__} must set network or implement build")
        return self.network(spec, self.config_)

    def loss(
        self, module: nn.Module, batch: Batch, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Training loss of one mini-batch (``y`` float ``(batch,)``, ``weight`` or None)."""
        return F.binary_cross_entropy_with_logits(module(batch), y, weight=weight)

    def on_epoch_start(self, module: nn.Module, epoch: int) -> None:
        """Called before every training epoch (``epoch`` is 1-based)."""

    def training_rows(
        self, X: pd.DataFrame, y: Any, sample_weight: Any, eval_set: tuple[pd.DataFrame, Any] | None
    ) -> tuple[pd.DataFrame, Any, Any, tuple[pd.DataFrame, Any] | None]:
        """The rows :meth:`fit` trains on, ``(X, y, sample_weight, eval_set)``: here all."""
        return X, y, sample_weight, eval_set

    def training_inputs(
        self, X: pd.DataFrame, eval_set: tuple[pd.DataFrame, Any] | None, cfg: TrainConfig
    ) -> tuple[FeatureSpec, pd.DataFrame, tuple[pd.DataFrame, Any] | None]:
        """What :meth:`fit` encodes: the spec, the training frame and ``eval_set`` (here as given)."""
        return self.feature_spec, X, eval_set

    def on_fit_end(self, X: pd.DataFrame) -> None:
        """Called when :meth:`fit` has set the fitted attributes, with the caller's ``X``."""

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        sample_weight: Any = None,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
    ) -> Self:
        """Train on raw frame ``X`` (the spec's columns) and 0/1 labels ``y``; return ``self``.

        ``eval_set=(X_valid, y_valid)`` replaces the internal seeded split of
        ``validation_fraction`` of ``X`` for early stopping.  ``sample_weight``
        (non-negative, one per row) weights the training loss and the internal
        validation loss.
        """
        X, y, sample_weight, eval_set = self.training_rows(X, y, sample_weight, eval_set)
        cfg = self._validated_config()
        spec, frame, eval_set = self.training_inputs(X, eval_set, cfg)
        encoder, _, train, valid, _ = self._prepare(frame, y, sample_weight, eval_set, cfg, spec)
        self._fit_module(cfg, encoder, train, valid)
        self.on_fit_end(X)
        return self

    def _prepare(
        self,
        X: pd.DataFrame,
        y: Any,
        sample_weight: Any,
        eval_set: tuple[pd.DataFrame, Any] | None,
        cfg: TrainConfig,
        spec: FeatureSpec | None = None,
    ) -> tuple[FrameEncoder, np.ndarray, Rows, Rows | None, np.random.Generator]:
        """Check and encode ``X`` (described by ``spec``, default ``feature_spec``), split
        off the validation rows.

        Returns the fitted encoder, the training rows' positions in ``X``, the
        training and validation ``(batch, target, weight)`` and the seeded numpy
        generator (already used by the split; subclasses may draw more from it).
        """
        labels = check_xy(X, y)
        weights = check_sample_weight(sample_weight, len(X))
        spec = self.feature_spec if spec is None else spec
        encoder = FrameEncoder.fit(spec, X, max_tokens=self.max_tokens)
        data = encoder.encode(X)
        target = torch.from_numpy(labels.astype(np.float32))
        w = None if weights is None else torch.from_numpy(weights)

        rng = np.random.default_rng(cfg.seed)
        train_idx, valid = self._validation_split(encoder, data, target, w, eval_set, cfg, rng)
        ti = torch.from_numpy(train_idx)
        train = (take(data, ti), target[ti], None if w is None else w[ti])
        return encoder, train_idx, train, valid, rng

    def _fit_module(
        self,
        cfg: TrainConfig,
        encoder: FrameEncoder,
        train: Rows,
        valid: Rows | None,
        context: Any = None,
    ) -> None:
        """Build the module and train it, seeded without touching the global torch RNG.

        ``context`` reaches every :meth:`_train_epoch` of this fit (e.g. MAML's tasks).
        """
        self.config_, self.encoder_, self.feature_spec_ = cfg, encoder, encoder.spec
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            generator = torch.Generator().manual_seed(cfg.seed)
            module = self.build(encoder.spec)
            self._train(module, cfg, train, valid, generator, context)
        self.module_ = module.eval()
        self.calibration_ = (1.0, 0.0) if valid is None else self._platt(module, *valid)

    def _platt(
        self, module: nn.Module, data: Batch, target: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[float, float]:
        """Platt scaling ``(a, b)``: ``sigmoid(a z + b)`` of the logits ``z`` minimises the
        validation log loss.

        Networks trained with dropout under-predict rare events at evaluation
        (the sigmoid is convex below 0.5, so the noise they were fitted under
        raised their mean probability), and a plan's real spend then overruns
        its budget (``benchmarks/README.md``).  Two parameters fitted on the
        validation rows remove that bias without changing the ranking (``a > 0``).
        """
        z = self._logits(module, data).double().numpy()
        y = target.double().numpy()
        w = np.ones_like(y) if weight is None else weight.double().numpy()
        if not 0 < (w * y).sum() < w.sum():
            return (1.0, 0.0)  # one class only: nothing to calibrate against

        def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
            u = params[0] * z + params[1]
            p = 1.0 / (1.0 + np.exp(-u))
            nll = np.logaddexp(0.0, u) - y * u  # -log likelihood per row
            g = w * (p - y)
            return float((w * nll).sum() / w.sum()), np.array([(g * z).sum(), g.sum()]) / w.sum()

        fit = minimize(
            loss, x0=[1.0, 0.0], jac=True, method="L-BFGS-B", bounds=[(0.05, 20.0), (-10.0, 10.0)]
        )
        return (float(fit.x[0]), float(fit.x[1])) if fit.success else (1.0, 0.0)

    @staticmethod
    def _validation_split(
        encoder: FrameEncoder,
        data: Batch,
        target: torch.Tensor,
        weight: torch.Tensor | None,
        eval_set: tuple[pd.DataFrame, Any] | None,
        cfg: TrainConfig,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, tuple[Batch, torch.Tensor, torch.Tensor | None] | None]:
        """Training row positions and the validation batch: ``eval_set`` when given, else a
        seeded ``validation_fraction`` of the rows (``None`` when that rounds to zero)."""
        if eval_set is not None:
            X_valid, y_valid = eval_set
            valid = (encoder.encode(X_valid), torch.from_numpy(check_xy(X_valid, y_valid)), None)
            return np.arange(len(target)), valid
        order = rng.permutation(len(target))
        n_valid = round(cfg.validation_fraction * len(order))
        valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        if n_valid == 0:
            return train_idx, None
        vi = torch.from_numpy(valid_idx)
        return train_idx, (take(data, vi), target[vi], None if weight is None else weight[vi])

    def _train(
        self,
        module: nn.Module,
        cfg: TrainConfig,
        train: Rows,
        valid: Rows | None,
        generator: torch.Generator,
        context: Any = None,
    ) -> None:
        """Epochs of :meth:`_train_epoch` with early stopping on the validation log loss."""
        optimizer = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        history: list[dict[str, float]] = []
        best_loss, best_state, best_epoch, stale = math.inf, None, cfg.epochs, 0
        bar = tqdm(range(1, cfg.epochs + 1), desc=self.name, disable=not cfg.verbose, unit="epoch")
        for epoch in bar:
            module.train()
            self.on_epoch_start(module, epoch)
            train_loss = self._train_epoch(module, optimizer, cfg, train, generator, epoch, context)
            record = {"epoch": epoch, "train_loss": train_loss, "valid_loss": math.nan}
            if valid is not None:
                record["valid_loss"] = self._log_loss(module, *valid)
            history.append(record)
            bar.set_postfix(
                train=f"{record['train_loss']:.4f}", valid=f"{record['valid_loss']:.4f}"
            )
            if valid is None:
                continue
            if record["valid_loss"] < best_loss - 1e-6:
                best_loss, best_epoch, stale = record["valid_loss"], epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        if best_state is not None:
            module.load_state_dict(best_state)
        self.history_ = history
        self.best_epoch_ = best_epoch if valid is not None else len(history)

    def _train_epoch(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        cfg: TrainConfig,
        train: Rows,
        generator: torch.Generator,
        epoch: int,
        context: Any = None,
    ) -> float:
        """One pass over the training rows in shuffled mini-batches; returns the mean loss."""
        data, target, weight = train
        n = len(target)
        perm = torch.randperm(n, generator=generator)
        shuffled = take(data, perm)  # one gather per epoch; mini-batches are views
        y_all, w_all = target[perm], None if weight is None else weight[perm]
        total, seen = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            rows = slice(start, start + cfg.batch_size)
            y_b, w_b = y_all[rows], None if w_all is None else w_all[rows]
            total += self.train_step(
                module, optimizer, cfg, (take(shuffled, rows), y_b, w_b), epoch
            ) * len(y_b)
            seen += len(y_b)
        return total / seen

    def train_step(
        self, module: nn.Module, optimizer: Optimizer, cfg: TrainConfig, rows: Rows, epoch: int
    ) -> float:
        """A mini-batch's update(s), e.g. critic steps before this one; returns the loss."""
        return self._step(optimizer, self.loss(module, *rows), cfg, epoch)

    def _step(
        self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, cfg: TrainConfig, epoch: int
    ) -> float:
        """One optimiser step on ``loss`` (refused when it is not finite); returns its value."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{type(self).__name__}: training loss became {loss.item()} at epoch "
                f"{epoch}; lower lr (now {cfg.lr}) or check the inputs"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    @torch.no_grad()
    def _log_loss(
        self, module: nn.Module, data: Batch, target: torch.Tensor, weight: torch.Tensor | None
    ) -> float:
        logits = self._logits(module, data)
        losses = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")
        if weight is None:
            return float(losses.mean())
        return float((losses * weight).sum() / weight.sum())

    def _logits(self, module: nn.Module, data: Batch) -> torch.Tensor:
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = [module(b) for b in chunks(data, PREDICT_BATCH)]
        finally:
            module.train(was_training)
        logits = torch.cat(out)
        if logits.shape != (batch_size_of(data),):
            raise RuntimeError(
                f"{type(self).__name__}.build() module must return logits of shape (batch,), "
                f"got {tuple(logits.shape)}"
            )
        return logits

    # ---------------------------------------------------------------- predict
    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated logits ``(n,)`` of the conversion probability (see :meth:`_platt`)."""
        check_is_fitted(self, "module_")
        batch = self.encoder_.encode(self.complete_frame(X))
        return self._calibrated(self._logits(self.module_, batch))

    def complete_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with any column prediction does not need added (hook; the base adds none)."""
        return X

    def _calibrated(self, logits: torch.Tensor) -> np.ndarray:
        a, b = self.calibration_
        return a * logits.numpy().astype(np.float64) + b

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities ``(n, 2)``; column 1 is the conversion probability."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict_proba_encoded(self, batch: Batch) -> np.ndarray:
        """Column 1 of :meth:`predict_proba` for rows already encoded by ``encoder_``.

        For scorers that encode each table once (``encoder_.encode(users,
        fields=...)``) and assemble batches by gathering rows: the model sees
        exactly the tensors :meth:`predict_proba` would build from the frame.
        """
        check_is_fitted(self, "module_")
        missing = [f.name for f in self.encoder_.spec.fields if f.name not in batch]
        if missing:
            raise ValueError(f"the encoded batch lacks the fields {missing}")
        return 1.0 / (1.0 + np.exp(-self._calibrated(self._logits(self.module_, batch))))

    def grouped_scorer(self, entities: pd.DataFrame, varying: Sequence[str] = ()) -> BatchScorer:
        """A :class:`~predictors.scoring.GroupedScorer` that encodes ``entities`` once and
        gathers their tensors per row (``varying`` needs no special treatment here)."""
        check_is_fitted(self, "module_")
        return BatchScorer(self, entities)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (model name, params, encoder incl. spec) and ``weights.pt``."""
        check_is_fitted(self, "module_")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": self.name,
            "params": self.config_.model_dump(mode="json"),
            "feature_spec": self.feature_spec_.to_dict(),
            "encoder": self.encoder_.to_dict(),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "calibration": list(self.calibration_),
        }
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2, allow_nan=True))
        torch.save(self.module_.state_dict(), folder / WEIGHTS_FILE)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> TorchEstimator:
        """Rebuild a saved model; weights load with ``weights_only=True`` (no arbitrary unpickling)."""
        folder = Path(path)
        meta = json.loads((folder / CONFIG_FILE).read_text())
        if meta.get("model") != cls.name:
            raise ValueError(f"{folder} holds a {meta.get('model')!r} model, not {cls.name!r}")
        encoder = FrameEncoder.from_dict(meta["encoder"])
        model = cls(encoder.spec, **cls._saved_params(meta["params"]))
        model.config_ = model._validated_config()
        model.encoder_, model.feature_spec_ = encoder, encoder.spec
        module = model.build(encoder.spec)
        state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
        model.module_ = module.eval()
        model.history_ = list(meta.get("history", []))
        model.best_epoch_ = meta.get("best_epoch")
        a, b = meta.get("calibration", (1.0, 0.0))
        model.calibration_ = (float(a), float(b))
        return model


__all__ = ["MiniBatchConfig", "TorchEstimator", "TrainConfig", "using_torch_threads"]
