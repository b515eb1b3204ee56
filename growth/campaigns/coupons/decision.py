"""Turn conversion predictions (or the world's truth) into a coupon decision problem.

For every user and coupon option the decision layer needs:

- ``conversion[u, k]``: probability that the user's campaign converts under
  option ``k`` (column 0 is "no coupon"), the mean over the user's candidate
  items of the per-item conversion probability;
- ``redemption[u, k]``: probability that the coupon is actually used (the user
  converts *and* the coupon applies: a merchant coupon on that merchant's item, a
  full-reduction coupon when the basket reaches its threshold);
- ``gmv[u, k]``: expected order value.

The optimizer then sees ``value = conversion[:, 1:] - conversion[:, :1]``
(incremental conversions) and ``cost = face_value * redemption[:, 1:]``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from growth.data.schema import NO_COUPON
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import uses_raw_frame
from predictors.lgbm import LightGBMModel, TreeSplit
from predictors.torch.inputs import Batch, FrameEncoder, take


@dataclass(frozen=True)
class CouponDecision:
    """Per-user, per-option expectations; options are in coupons-table order, 'none' first."""

    user_ids: np.ndarray  # (n,)
    segment: np.ndarray  # (n,) lifecycle label
    option_ids: list[str]  # (K+1,), option_ids[0] == 'none'
    option_types: list[str]  # (K+1,)
    face_value: np.ndarray  # (K+1,) currency units
    merchant_id: np.ndarray  # (K+1,) -1 where not a merchant coupon
    conversion: np.ndarray  # (n, K+1)
    redemption: np.ndarray  # (n, K+1)
    gmv: np.ndarray  # (n, K+1)

    def __post_init__(self) -> None:
        n, k1 = len(self.user_ids), len(self.option_ids)
        if self.option_ids[0] != NO_COUPON:
            raise ValueError(
                f"option_ids must start with {NO_COUPON!r}, got {self.option_ids[0]!r}"
            )
        for name in ("conversion", "redemption", "gmv"):
            shape = getattr(self, name).shape
            if shape != (n, k1):
                raise ValueError(f"{name} has shape {shape}, expected ({n}, {k1})")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def value(self) -> np.ndarray:
        """(n, K) incremental conversions of each real option over no coupon."""
        return self.conversion[:, 1:] - self.conversion[:, :1]

    @property
    def gmv_value(self) -> np.ndarray:
        """(n, K) incremental GMV of each real option over no coupon."""
        return self.gmv[:, 1:] - self.gmv[:, :1]

    @property
    def cost(self) -> np.ndarray:
        """(n, K) expected coupon cost = face value x redemption probability."""
        return self.face_value[None, 1:] * self.redemption[:, 1:]

    def evaluate(self, choice: np.ndarray) -> dict[str, float]:
        """Expected outcome of a plan under this decision's response (truth or prediction)."""
        choice = np.asarray(choice)
        rows = np.flatnonzero(choice >= 0)
        k = choice[rows]
        merchant = np.asarray(self.option_types[1:])[k] == "merchant"
        cost = self.cost[rows, k]
        return {
            "users_with_coupon": float(len(rows)),
            "conversions": float(self.conversion[:, 0].sum() + self.value[rows, k].sum()),
            "incremental_conversions": float(self.value[rows, k].sum()),
            "incremental_gmv": float(self.gmv_value[rows, k].sum()),
            "platform_spend": float(cost[~merchant].sum()),
            "merchant_spend": float(cost[merchant].sum()),
        }

    def plan_frame(self, choice: np.ndarray) -> pd.DataFrame:
        """Rows of users who get a coupon; ``choice`` is (n,) with -1 = none, else 0..K-1."""
        choice = np.asarray(choice)
        rows = np.flatnonzero(choice >= 0)
        k = choice[rows]
        return pd.DataFrame(
            {
                "user_id": self.user_ids[rows],
                "segment": self.segment[rows],
                "option_id": np.asarray(self.option_ids[1:])[k],
                "coupon_type": np.asarray(self.option_types[1:])[k],
                "face_value": self.face_value[1:][k],
                "expected_value": self.value[rows, k],
                "expected_cost": self.cost[rows, k],
                "expected_gmv": self.gmv_value[rows, k],
            }
        )


def _coupon_order(features: ConversionFeatures) -> np.ndarray:
    """Coupons-table positions with 'none' first and the rest in table order."""
    none = features.option_ids.index(NO_COUPON)
    return np.array([none, *(i for i in range(len(features.option_ids)) if i != none)])


class _ConversionScorer:
    """Conversion probabilities of chosen (row, option) pairs of one chunk of (user, item) rows.

    A LightGBM model is split once into trees that never read an option column
    (scored once per (user, item)) and the rest (scored per option), see
    :meth:`predictors.lgbm.LightGBMModel.split_trees`; a torch model's encoder
    encodes the users table once and each chunk gathers its users' tensors and
    encodes only the item, coupon and cross columns (the same tensors as
    encoding :meth:`ConversionFeatures.raw_frame` rows, without re-tokenising a
    user's strings for every item and option); any other model reads
    :meth:`frame` rows.
    """

    def __init__(self, features: ConversionFeatures, model) -> None:
        self.features = features
        self.model = model
        self.raw_rows = uses_raw_frame(model)
        self.trees: TreeSplit | None = None
        self.user_batch: Batch | None = None
        if isinstance(model, LightGBMModel) and model.feature_names_in_ == features.columns:
            self.trees = model.split_trees(features.option_columns)
        elif self.raw_rows:  # a torch model
            self._encode_users(model.encoder_)

    def _encode_users(self, encoder: FrameEncoder) -> None:
        """Encode the users table once (when the spec's fields are all user or context columns)."""
        f, names = self.features, set(encoder.spec.names)
        self.user_fields = [c for c in f.raw_user_columns if c in names]
        self.context_fields = [c for c in f.raw_context_columns if c in names]
        if len(self.user_fields) + len(self.context_fields) != len(names):
            return  # a spec with other columns: fall back to raw_frame rows
        self.context_index = [f.columns.index(c) for c in self.context_fields]
        users = f.dataset.users[self.user_fields].reset_index(drop=True)
        self.encoder = encoder
        self.user_batch = encoder.encode(users, fields=self.user_fields)

    def __call__(
        self,
        base: np.ndarray,
        u: np.ndarray,
        i: np.ndarray,
        rows: np.ndarray,
        opt: np.ndarray,
    ) -> np.ndarray:
        """(r,) probabilities of rows ``rows`` of the chunk under options ``opt``.

        ``base`` is the chunk's (m, F) :meth:`ConversionFeatures.frame` block under
        'none'; ``u``/``i`` (m,) its user and item positions.
        """
        f = self.features
        if self.trees is not None:
            fixed = self.trees.raw_fixed(base)  # (m,) shared by every option of a row
            varying = self.trees.raw_varying(f.option_rows(base, rows, i[rows], opt))
            return self.trees.proba(fixed[rows] + varying)
        if self.user_batch is not None:
            block = f.option_rows(base, rows, i[rows], opt)  # (r, F) tabular rows
            context = pd.DataFrame(block[:, self.context_index], columns=self.context_fields)
            batch = take(self.user_batch, torch.from_numpy(u[rows]))
            batch.update(self.encoder.encode(context, fields=self.context_fields))
            return self.model.predict_proba_encoded(batch)
        build = f.raw_frame if self.raw_rows else f.frame
        return self.model.predict_proba(build(u[rows], i[rows], opt))[:, 1]


def predicted_coupon_decision(
    features: ConversionFeatures,
    conversion_model,
    basket_model,
    *,
    chunk_users: int = 20_000,
    progress: bool = False,
) -> CouponDecision:
    """Score every (user, candidate item, option) with the models and average per user.

    ``conversion_model`` follows the estimator contract (``predict_proba``);
    ``basket_model`` gives ``prob_at_least`` and ``predict_log_basket``.
    Users without candidates get zero conversion under every option.

    Rule: a merchant coupon on another merchant's item cannot apply
    (:meth:`ConversionFeatures.inapplicable`), so its conversion probability is
    the 'none' option's for that (user, item) and those rows are not scored;
    its redemption is zero.  Every other row is scored by the model.
    """
    ds = features.dataset
    scorer = _ConversionScorer(features, conversion_model)
    order = _coupon_order(features)
    n, k1 = len(features.user_ids), len(order)
    cand = ds.candidates
    cand_user = features.user_positions(cand["user_id"].to_numpy(), what="candidate user ids")
    cand_item = features.item_positions(cand["item_id"].to_numpy())
    sort = np.argsort(cand_user, kind="stable")
    cand_user, cand_item = cand_user[sort], cand_item[sort]
    per_user = np.bincount(cand_user, minlength=n).astype(np.float64)

    conversion = np.zeros((n, k1))
    redemption = np.zeros((n, k1))
    gmv = np.zeros((n, k1))
    bounds = np.searchsorted(cand_user, np.arange(0, n + chunk_users, chunk_users))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring users x candidates x coupons", total=n)
        for lo, hi in itertools.pairwise(bounds):
            if hi <= lo:
                continue
            u, i = cand_user[lo:hi], cand_item[lo:hi]
            m = len(u)
            opt = np.repeat(order, m)  # (k1*m,) option-major
            ii = np.tile(i, k1)
            X_none = features.frame(u, i, opt[:m])  # (m, F) tabular rows under 'none'
            # score the rows no rule answers: 'none' first, then the options that can apply
            neutral = features.inapplicable(ii, opt).reshape(k1, m)
            scored = np.flatnonzero(~neutral.ravel())
            p = np.empty((k1, m))
            p.ravel()[scored] = scorer(X_none.to_numpy(), u, i, scored % m, opt[scored])
            p[neutral] = np.broadcast_to(p[0], (k1, m))[neutral]  # rule: same as 'none'
            applies = features.applicable(ii, opt).reshape(k1, m)
            # the basket does not depend on the coupon: predict it once per (user, item)
            log_basket = basket_model.predict_log_basket(X_none)
            reach = basket_model.reach_probability(
                log_basket[None, :], features.threshold[order][:, None]
            )  # (k1, m)
            basket = np.exp(log_basket + 0.5 * basket_model.sigma_**2)
            base, span = u[0], u[-1] - u[0] + 1  # users are sorted: a contiguous block
            rows = slice(base, base + span)
            for j in range(k1):
                conversion[rows, j] += np.bincount(u - base, weights=p[j], minlength=span)
                redemption[rows, j] += np.bincount(
                    u - base, weights=p[j] * applies[j] * reach[j], minlength=span
                )
                gmv[rows, j] += np.bincount(u - base, weights=p[j] * basket, minlength=span)
            bar.update(task, advance=len(np.unique(u)))
    denom = np.maximum(per_user, 1.0)[:, None]
    return CouponDecision(
        user_ids=features.user_ids,
        segment=features.lifecycle,
        option_ids=[features.option_ids[j] for j in order],
        option_types=[str(features.option_type[j]) for j in order],
        face_value=features.face_value[order],
        merchant_id=features.coupon_merchant[order],
        conversion=conversion / denom,
        redemption=redemption / denom,
        gmv=gmv / denom,
    )
