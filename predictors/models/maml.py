"""MAML over user segments: a meta-learned initialisation that adapts to a cold segment.

After the Alipay ads user-segmentation transfer setting: every user segment
(e.g. region x age band x lifecycle) is a *task*.  Meta-training samples a few
tasks per step, splits each into a small support set and a query set, adapts
the network to the support set with ``inner_steps`` gradient steps, and updates
the initialisation so that the *adapted* network predicts the query set well
(Finn et al., 2017).  A cold segment then needs only its few labelled rows:
:meth:`MAMLModel.adapt` runs the same inner loop and returns an adapted copy.

The network is exactly :class:`~predictors.models.mlp.MLPNet`'s (shared
:class:`~predictors.torch.layers.FieldEmbedding` + :class:`~predictors.torch.layers.MLP`).
Only the MLP adapts in the inner loop (all weights learn in the outer loop):
the embedding tables are large and sparse, so a few-shot update to them mostly
overfits, while re-using the embeddings and adapting the head is what carries
MAML's gain (Raghu et al., 2020, "ANIL").  The embeddings of a meta-batch are
therefore computed once and the inner loop only re-runs the MLP.

- ``order="first"``: first-order MAML (the inner gradients are constants in the
  outer backward pass); ``order="second"`` back-propagates through them with
  ``torch.func.functional_call`` + ``torch.autograd.grad(create_graph=True)``.
- ``learn_inner_lr=True``: one learned step size per MLP tensor and inner step
  (MAML++'s LSLR, Antoniou et al., 2019), initialised at ``inner_lr``.

``predict_proba`` scores with the meta-initialisation (no adaptation), so the
estimator follows the plain contract; early stopping watches the
initialisation's log loss on the validation rows.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from predictors.base import check_is_fitted, check_sample_weight
from predictors.features import FeatureSpec
from predictors.torch.base import Rows, TorchEstimator, TrainConfig
from predictors.torch.inputs import Batch, take
from predictors.torch.layers import MLP, FieldEmbedding

SEGMENT_SEPARATOR = "|"
Params = dict[str, torch.Tensor]


class MAMLConfig(TrainConfig):
    """Hyper-parameters of :class:`MAMLModel`; names equal its constructor arguments.

    One epoch is ``ceil(train rows / (tasks_per_batch * (support_size + query_size)))``
    meta-steps, so it touches about as many rows as one epoch of the plain MLP.
    """

    embedding_dim: int = Field(16, ge=1)
    hidden: tuple[int, ...] = Field((128, 64), min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    segment_columns: tuple[str, ...] = ()
    inner_lr: float = Field(0.1, gt=0)
    inner_steps: int = Field(3, ge=1)
    learn_inner_lr: bool = True
    order: Literal["first", "second"] = "first"
    tasks_per_batch: int = Field(8, ge=1)
    support_size: int = Field(32, ge=1)
    query_size: int = Field(64, ge=1)


class MAMLNet(nn.Module):
    """Field embeddings -> flatten -> MLP -> one logit, plus the inner-loop step sizes.

    ``inner_log_lr[step, tensor]`` is the log step size of each MLP tensor at each
    inner step (fixed at ``log(inner_lr)`` unless ``learn_inner_lr``).
    """

    def __init__(self, spec: FeatureSpec, cfg: MAMLConfig) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(spec, cfg.embedding_dim)
        self.mlp = MLP(self.embedding.flat_dim, cfg.hidden, dropout=cfg.dropout, output_dim=1)
        n_tensors = len(list(self.mlp.parameters()))
        self.inner_log_lr = nn.Parameter(
            torch.full((cfg.inner_steps, n_tensors), math.log(cfg.inner_lr)),
            requires_grad=cfg.learn_inner_lr,
        )

    def features(self, batch: Batch) -> torch.Tensor:
        return self.embedding(batch).flatten(1)  # (batch, fields * dim)

    def head(self, x: torch.Tensor, params: Params | None = None) -> torch.Tensor:
        """Logits ``(batch,)`` of the MLP, with ``params`` (fast weights) when given."""
        out = self.mlp(x) if params is None else functional_call(self.mlp, params, (x,))
        return out.squeeze(-1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.features(batch))  # (batch,)

    def step_sizes(self, step: int) -> torch.Tensor:
        """Step sizes ``(tensors,)`` of inner step ``step`` (the last row repeats beyond it)."""
        return self.inner_log_lr[min(step, self.inner_log_lr.shape[0] - 1)].exp()


def inner_loop(
    net: MAMLNet,
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None,
    *,
    steps: int,
    lr: float | None = None,
    create_graph: bool = False,
) -> Params:
    """Fast MLP weights after ``steps`` full-batch gradient steps on features ``x``.

    ``lr=None`` uses the net's (learned) per-step sizes.  With
    ``create_graph=False`` the gradients are constants (first-order MAML), but
    the fast weights still depend on the initial weights and step sizes, so the
    outer loss trains both.
    """
    fast: Params = dict(net.mlp.named_parameters())
    for step in range(steps):
        loss = F.binary_cross_entropy_with_logits(net.head(x, fast), y, weight=weight)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=create_graph)
        sizes = net.step_sizes(step) if lr is None else torch.full((len(fast),), float(lr))
        fast = {
            name: p - sizes[i] * g
            for i, ((name, p), g) in enumerate(zip(fast.items(), grads, strict=True))
        }
    return fast


class MAMLModel(TorchEstimator):
    """Conversion probability from a meta-learned MLP that adapts to cold user segments.

    Segments come from ``fit(..., segments=labels)`` or, when not given, from
    ``segment_columns`` of ``X`` (joined with ``|``); with neither, all rows form
    one task and meta-training learns an initialisation that adapts fast to any
    small sample.

    Example:

    >>> from predictors.examples import two_domain_example
    >>> X, y, spec = two_domain_example(600)
    >>> model = MAMLModel(spec, segment_columns=("tgt_tier",), epochs=1, hidden=(16,), seed=1)
    >>> cold = model.fit(X, y).adapt(X.head(20), y[:20])  # a copy; model is unchanged
    >>> cold.predict_proba(X.tail(5)).shape
    (5, 2)
    """

    name = "maml"
    Config = MAMLConfig
    network = MAMLNet
    tiny_params: ClassVar[dict[str, Any]] = {
        "epochs": 3,
        "hidden": (32,),
        "segment_columns": ("tgt_tier",),
        "tasks_per_batch": 3,
        "support_size": 32,
        "query_size": 96,
    }

    def __init__(self, feature_spec: FeatureSpec, **params: Any) -> None:
        super().__init__(feature_spec, **params)
        self.n_tasks_: int | None = None

    # -------------------------------------------------------------- segments
    def segment_labels(self, X: pd.DataFrame) -> np.ndarray:
        """Segment of every row of ``X`` from ``segment_columns`` (e.g. ``"north|18-24|new"``)."""
        columns = tuple(self.segment_columns)
        if not columns:
            raise ValueError(
                f"{type(self).__name__} has no segment_columns; pass segments= to fit instead"
            )
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"segment columns {missing} are not columns of X")
        parts = [X[c].astype("string").fillna("<missing>").to_numpy(dtype=object) for c in columns]
        labels = parts[0]
        for part in parts[1:]:
            labels = labels + SEGMENT_SEPARATOR + part
        return labels.astype(str)

    def _task_codes(self, X: pd.DataFrame, segments: Any) -> np.ndarray:
        if segments is None:
            if not self.segment_columns:
                return np.zeros(len(X), dtype=np.int64)
            segments = self.segment_labels(X)
        labels = pd.Series(np.asarray(segments, dtype=object))
        if labels.shape != (len(X),):
            raise ValueError(
                f"segments must hold one label per row of X ({len(X)}), got {labels.shape}"
            )
        if labels.isna().any():
            row = int(np.flatnonzero(labels.isna().to_numpy())[0])
            raise ValueError(f"segments must not be missing; row {row} has no segment")
        return pd.factorize(labels.astype(str), sort=True)[0].astype(np.int64)

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        segments: Any = None,
        sample_weight: Any = None,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
    ) -> MAMLModel:
        """Meta-train on raw frame ``X`` and 0/1 labels ``y``; return ``self``.

        ``segments`` (one label per row) defines the tasks; otherwise
        ``segment_columns`` of ``X`` do.  Segments with fewer than two training
        rows cannot be split into support and query and are skipped.
        ``eval_set`` and ``sample_weight`` work as in :meth:`TorchEstimator.fit`.
        """
        cfg = self._validated_config()
        encoder, train_idx, train, valid, rng = self._prepare(X, y, sample_weight, eval_set, cfg)
        tasks = self._task_codes(X, segments)
        members = [idx for idx in _group_rows(tasks[train_idx]) if len(idx) >= 2]
        if not members:
            raise ValueError(
                "no segment has 2 or more training rows; MAML needs support and query rows per task"
            )
        self._fit_module(cfg, encoder, train, valid, context=(members, rng))
        self.n_tasks_ = len(members)
        return self

    def _train_epoch(
        self,
        module: MAMLNet,
        optimizer: torch.optim.Optimizer,
        cfg: MAMLConfig,
        train: Rows,
        generator: torch.Generator,
        epoch: int,
        context: tuple[list[np.ndarray], np.random.Generator] | None = None,
    ) -> float:
        """Meta-steps touching about as many rows as one pass; returns the mean query loss.

        ``context`` is ``(rows of each task, the fit's seeded generator)``."""
        members, rng = context
        data, target, weight = train
        per_step = cfg.tasks_per_batch * (cfg.support_size + cfg.query_size)
        steps_per_epoch = max(1, math.ceil(len(target) / per_step))
        total = 0.0
        for _ in range(steps_per_epoch):
            loss = self._meta_step(module, cfg, data, target, weight, members, rng)
            total += self._step(optimizer, loss, cfg, epoch)
        return total / steps_per_epoch

    def _meta_step(
        self,
        module: MAMLNet,
        cfg: MAMLConfig,
        data: Batch,
        target: torch.Tensor,
        weight: torch.Tensor | None,
        members: list[np.ndarray],
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Mean query loss over ``tasks_per_batch`` sampled tasks, each adapted on its support."""
        # fewer tasks than a meta-batch: some tasks repeat (with fresh support/query draws)
        repeat = len(members) < cfg.tasks_per_batch
        chosen = rng.choice(len(members), size=cfg.tasks_per_batch, replace=repeat)
        supports, queries = [], []
        for t in chosen:
            rows = members[t]
            n = min(len(rows), cfg.support_size + cfg.query_size)
            picked = rng.choice(rows, size=n, replace=False)
            share = cfg.support_size / (cfg.support_size + cfg.query_size)
            k = min(cfg.support_size, max(1, round(n * share)), n - 1)
            supports.append(picked[:k])
            queries.append(picked[k:])
        index = torch.from_numpy(np.concatenate([*supports, *queries]))
        x_all = module.features(take(data, index))  # one embedding pass for the meta-batch
        y_all = target[index]
        w_all = None if weight is None else weight[index]
        bounds = np.cumsum([0, *map(len, supports), *map(len, queries)])
        n_tasks = len(chosen)
        losses = []
        for i in range(n_tasks):
            s = slice(bounds[i], bounds[i + 1])
            q = slice(bounds[n_tasks + i], bounds[n_tasks + i + 1])
            fast = inner_loop(
                module,
                x_all[s],
                y_all[s],
                None if w_all is None else w_all[s],
                steps=cfg.inner_steps,
                create_graph=cfg.order == "second",
            )
            losses.append(
                F.binary_cross_entropy_with_logits(
                    module.head(x_all[q], fast),
                    y_all[q],
                    weight=None if w_all is None else w_all[q],
                )
            )
        return torch.stack(losses).mean()

    # ------------------------------------------------------------------ adapt
    def adapt(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        steps: int | None = None,
        lr: float | None = None,
        sample_weight: Any = None,
    ) -> MAMLModel:
        """A copy of this model whose MLP took ``steps`` gradient steps on ``(X, y)``.

        ``X, y`` are a cold segment's few labelled rows (both classes need not be
        present).  ``steps`` defaults to ``inner_steps`` and ``lr`` to the meta-learned
        step sizes (the last one repeats beyond ``inner_steps``).  The meta-model
        itself is left unchanged.
        """
        check_is_fitted(self, "module_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        labels = np.asarray(y)
        if labels.shape != (len(X),) or len(X) == 0:
            raise ValueError(
                f"y must be 1-D with one label per row of a non-empty X ({len(X)}), "
                f"got {labels.shape}"
            )
        if not np.isin(labels, (0, 1)).all():
            row = int(np.flatnonzero(~np.isin(labels, (0, 1)))[0])
            raise ValueError(f"y must hold 0/1 labels; row {row} has {labels[row].item()!r}")
        steps = self.config_.inner_steps if steps is None else int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if lr is not None and not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        weights = check_sample_weight(sample_weight, len(X))
        adapted = copy.deepcopy(self)
        net: MAMLNet = adapted.module_
        net.eval()
        with torch.no_grad():
            x = net.features(adapted.encoder_.encode(X))
        target = torch.from_numpy(labels.astype(np.float32))
        w = None if weights is None else torch.from_numpy(weights)
        fast = inner_loop(net, x, target, w, steps=steps, lr=lr)
        with torch.no_grad():
            for name, p in net.mlp.named_parameters():
                p.copy_(fast[name])
        adapted.calibration_ = (1.0, 0.0)  # the inner loop fitted the raw logits to the segment
        return adapted


def _group_rows(codes: np.ndarray) -> list[np.ndarray]:
    """Positions of each code's rows, in code order."""
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, cuts)


__all__ = ["MAMLConfig", "MAMLModel", "MAMLNet", "inner_loop"]
