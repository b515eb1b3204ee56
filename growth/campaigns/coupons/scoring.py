"""Score every user under every coupon option with the trained models: the predicted CouponDecision."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from growth.campaigns.coupons.decision import CouponDecision
from growth.data.schema import NO_COUPON
from growth.modeling.features import ConversionFeatures
from growth.modeling.training import uses_raw_frame
from predictors.lgbm import LightGBMModel, TreeSplit
from predictors.torch.inputs import Batch, FrameEncoder, take


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
