"""From dataset tables to model inputs: (user, item, coupon option) rows.

A row is a user's feature columns as they are, joined with the item's and the
coupon option's columns and a few cross features that a human analyst would
also compute (coupon face value relative to the item price, whether a merchant
coupon matches the item's merchant).  Every model reads these rows and encodes
them itself; the item, option and cross columns are gathers from small tables,
so building millions of (user, candidate, option) rows is a matter of indexing.

Exposure rows also carry their sample columns :data:`SAMPLE_COLUMNS`, ``domain``
(``source``: the payments app, ``target``: the shop) and ``scene`` (where in that app
the row was shown), so a model can learn from labelled samples of every domain and
scene.  The coupon decision is for one scene, :attr:`ConversionFeatures.decision_scene`:
the most frequent target scene, the one a model answers for when a row names no scene
(scoring frames built by :meth:`ConversionFeatures.raw_frame` carry no sample columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from growth.data.dataset import Dataset, decision_scene, exposure_scenes
from growth.data.schema import NO_COUPON, SOURCE_PREFIX, TARGET_PREFIX
from predictors.features import FeatureSpec
from predictors.scoring import join_rows
from predictors.tabular import encode_tabular

USER_DOMAINS = {
    SOURCE_PREFIX: "source",
    TARGET_PREFIX: "target",
    "region": "user",
    "age_band": "user",
    "gender": "user",
    "lifecycle": "user",
    "has_source": "user",
}
ITEM_COLUMNS = ("category", "price", "price_level", "merchant_id", "brand_tier", "sales_bucket")
ITEM_CATEGORICAL = ("category", "merchant_id")
COUPON_TYPE_CODES = {"none": 0, "red_packet": 1, "full_reduction": 2, "merchant": 3}
CROSS_COLUMNS = ("coupon_face_over_price", "coupon_threshold_over_price", "coupon_merchant_match")
SAMPLE_COLUMNS = ("domain", "scene")
"""A model row's sample columns: its domain and scene (the label is for that domain and scene)."""


ACTIVITY_COLUMNS = (f"{TARGET_PREFIX}log_impressions", f"{SOURCE_PREFIX}log_impressions")
"""Derived user columns: ``log(1 + impressions)`` the user has in each app's log."""


def logged_activity(
    exposures: pd.DataFrame, users: pd.Index, has_source: pd.Series | None
) -> dict[str, np.ndarray]:
    """Each user's ``log(1 + n)`` of logged impressions in the shop and in the payments app
    (:data:`ACTIVITY_COLUMNS`; NaN in the payments app for users it does not know): a
    snapshot at the log's end, as the users table is.  A dataset whose user fields are
    as of each row's instant brings its own (MovieLens: ``growth.data.movielens``).

    How often a user is in an app is the plainest measure of how active they are, and
    activity moves conversion: without it the models over-predict the users seen least and
    under-predict those seen most (on the default world's tuning seeds the true coupon spend
    is 0.45-0.75 of the calibrated prediction for active users with 1-9 shop impressions and
    1.3 for those with 25 or more; ``benchmarks/README.md``).  Impressions, not their
    outcomes: a count of exposures carries no label.
    """
    pos = users.get_indexer(exposures["user_id"])
    out = {}
    for column, domain in zip(ACTIVITY_COLUMNS, ("target", "source"), strict=True):
        mine = (exposures["domain"] == domain).to_numpy() & (pos >= 0)
        count = np.bincount(pos[mine], minlength=len(users)).astype(np.float32)
        out[column] = np.log1p(count)
    if has_source is not None:
        known = pd.to_numeric(has_source).to_numpy() > 0
        out[ACTIVITY_COLUMNS[1]] = np.where(known, out[ACTIVITY_COLUMNS[1]], np.nan).astype(
            np.float32
        )
    return out


@dataclass(frozen=True)
class ExposureFrame:
    """Exposure-log rows, in timestamp order: labels, segments, positions, domain and scene.

    The model rows themselves are built on demand (:meth:`rows`), only for the
    rows a model trains or is evaluated on.
    """

    features: ConversionFeatures
    y: np.ndarray
    segment: np.ndarray  # lifecycle of the user, per row
    timestamp: np.ndarray  # datetime64[ns], per row
    user_pos: np.ndarray  # row position of the user in ``users``
    order_value: np.ndarray  # NaN where not converted or not logged
    item_pos: np.ndarray  # row position of the item in ``items``
    option_pos: np.ndarray  # coupons-table position of the logged treatment
    propensity: np.ndarray | None = None  # P(logged treatment); None: uniform over the options
    domain: np.ndarray | None = None  # per row; None: every row is a target row
    scene: np.ndarray | None = None  # per row; None: every row is in the decision scene

    def rows(self, index: np.ndarray | slice = slice(None)) -> pd.DataFrame:
        """:meth:`ConversionFeatures.raw_frame` rows of ``index`` (positions in this frame),
        with the sample columns ``domain`` and ``scene``."""
        X = self.features.raw_frame(
            self.user_pos[index], self.item_pos[index], self.option_pos[index]
        )
        n = len(X)
        X["domain"] = np.full(n, "target", object) if self.domain is None else self.domain[index]
        X["scene"] = (
            np.full(n, self.features.decision_scene, object)
            if self.scene is None
            else self.scene[index]
        )
        return X

    def __len__(self) -> int:
        return len(self.y)

    def concat(self, other: ExposureFrame) -> ExposureFrame:
        """This frame's rows, then ``other``'s (positions of this frame stay the same)."""
        if other.features is not self.features:
            raise ValueError("cannot concatenate exposure frames of different features")

        def both(a: np.ndarray | None, b: np.ndarray | None, fill: object) -> np.ndarray:
            a = np.full(len(self), fill, object) if a is None else a
            b = np.full(len(other), fill, object) if b is None else b
            return np.concatenate([a, b])

        scene = self.features.decision_scene
        uniform = 1.0 / len(self.features.option_ids)
        return ExposureFrame(
            features=self.features,
            **{
                name: np.concatenate([getattr(self, name), getattr(other, name)])
                for name in (
                    "y",
                    "segment",
                    "timestamp",
                    "user_pos",
                    "order_value",
                    "item_pos",
                    "option_pos",
                )
            },
            propensity=both(self.propensity, other.propensity, uniform).astype(np.float64),
            domain=both(self.domain, other.domain, "target"),
            scene=both(self.scene, other.scene, scene),
        )

    @cached_property
    def X(self) -> pd.DataFrame:
        """Every row (:meth:`rows` of all)."""
        return self.rows()


class ConversionFeatures:
    """Encodes a dataset's users, items and coupon options for conversion models.

    A model row is a user's feature columns as they are (:attr:`user_frame`)
    joined with *context* columns: the item's ``item_*`` columns, the coupon
    option's ``coupon_*`` columns and the cross features (:meth:`context_frame`).
    :attr:`spec` describes those rows; its vocabularies are learned from the
    users, items and coupons tables, so they do not depend on which rows a model
    trains on.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        users = dataset.users.reset_index(drop=True)
        self.user_ids = users["user_id"].to_numpy()
        self._user_pos = pd.Index(self.user_ids)
        self.lifecycle = users["lifecycle"].astype(str).to_numpy()
        activity = logged_activity(dataset.exposures, self._user_pos, users.get("has_source"))
        self.user_frame = users.drop(columns="user_id").assign(
            **{k: v for k, v in activity.items() if k not in users}  # the dataset's own first
        )

        items = dataset.items.reset_index(drop=True)
        self.item_ids = items["item_id"].to_numpy()
        self._item_pos = pd.Index(self.item_ids)
        item_cols = [c for c in ITEM_COLUMNS if c in items.columns]
        self.item_table = pd.DataFrame(
            {f"item_{c}": pd.to_numeric(items[c]).to_numpy(np.float32) for c in item_cols}
        )
        self._item_price = (
            items["price"].to_numpy(np.float64) if "price" in items else np.ones(len(items))
        )
        self._item_merchant = (
            items["merchant_id"].fillna(-1).to_numpy(np.int64)
            if "merchant_id" in items
            else np.full(len(items), -1)
        )

        coupons = dataset.coupons.reset_index(drop=True)
        self.option_ids = coupons["option_id"].astype(str).tolist()
        if NO_COUPON not in self.option_ids:
            raise ValueError(f"coupons table has no '{NO_COUPON}' option: {self.option_ids}")
        self.coupons = coupons
        self.option_type = coupons["type"].astype(str).to_numpy()
        self.face_value = coupons["face_value"].to_numpy(np.float64)
        self.threshold = coupons["threshold"].to_numpy(np.float64)
        self.coupon_merchant = coupons["merchant_id"].fillna(-1).to_numpy(np.int64)
        self.coupon_table = pd.DataFrame(
            {
                "coupon_type": coupons["type"].map(COUPON_TYPE_CODES).to_numpy(np.float32),
                "coupon_face": self.face_value.astype(np.float32),
                "coupon_threshold": self.threshold.astype(np.float32),
            }
        )
        self._item_matrix = self.item_table.to_numpy(np.float32)
        self._coupon_matrix = self.coupon_table.to_numpy(np.float32)
        every_option = np.arange(len(self.option_ids))
        self.spec = self._unfitted_spec().fit(
            self.user_frame, self.item_table, self.context_frame(every_option * 0, every_option)
        )
        user_fields = self.spec.select(lambda f: f.name in self.user_frame.columns)
        self.user_table = encode_tabular(user_fields, self.user_frame)
        """The user fields of :attr:`spec` encoded by :func:`~predictors.tabular.encode_tabular`."""

    # positions -------------------------------------------------------------
    def user_positions(self, user_ids: np.ndarray, *, what: str = "user ids") -> np.ndarray:
        """Rows of ``user_ids`` in the users table; a KeyError names unknown ones (``what``)."""
        return _positions(self._user_pos, user_ids, f"unknown {what}", "the users table")

    def item_positions(self, item_ids: np.ndarray) -> np.ndarray:
        """Rows of ``item_ids`` in the items table; a KeyError names unknown ones."""
        return _positions(self._item_pos, item_ids, "unknown item ids", "the items table")

    def option_positions(self, option_ids: np.ndarray) -> np.ndarray:
        """Rows of ``option_ids`` in the coupons table; a KeyError names unknown ones."""
        ids = np.asarray(option_ids).astype(str)
        return _positions(
            pd.Index(self.option_ids), ids, "unknown coupon options", "the coupons table"
        )

    # frames ----------------------------------------------------------------
    @property
    def user_columns(self) -> list[str]:
        """Columns of :meth:`raw_frame` copied from the users table as they are."""
        return list(self.user_frame.columns)

    @property
    def context_columns(self) -> list[str]:
        """Columns of :meth:`context_frame`: item, coupon option and cross columns."""
        return [*self.item_table.columns, *self.option_columns]

    @property
    def option_columns(self) -> list[str]:
        """Columns of :meth:`context_frame` that depend on the coupon option."""
        return [*self.coupon_table.columns, *CROSS_COLUMNS]

    def applicable(self, item_pos: np.ndarray, option_pos: np.ndarray) -> np.ndarray:
        """1.0 where the option can apply to the item at all (merchant coupons: same merchant)."""
        is_merchant = self.option_type[option_pos] == "merchant"
        match = self.coupon_merchant[option_pos] == self._item_merchant[item_pos]
        return np.where(is_merchant, match, self.option_type[option_pos] != "none").astype(float)

    def inapplicable(self, item_pos: np.ndarray, option_pos: np.ndarray) -> np.ndarray:
        """True where a coupon can never apply to the item: a merchant coupon on another
        merchant's item.  Such a coupon cannot change the order, so by rule its
        conversion probability is the 'none' option's for that (user, item).
        """
        return (self.option_type[option_pos] == "merchant") & (
            self.coupon_merchant[option_pos] != self._item_merchant[item_pos]
        )

    def context_frame(
        self, item_pos: np.ndarray, option_pos: np.ndarray, *, options_only: bool = False
    ) -> pd.DataFrame:
        """float32 context columns of aligned item and option positions.

        ``options_only`` gives only :attr:`option_columns` (a row re-targeted to
        another coupon option changes nothing else).
        """
        n = len(option_pos)
        a = 0 if options_only else self._item_matrix.shape[1]
        block = np.empty((n, a + len(self.option_columns)), dtype=np.float32)
        if a:
            np.take(self._item_matrix, item_pos, axis=0, out=block[:, :a])
        price = np.maximum(self._item_price[item_pos], 1e-6)
        np.take(self._coupon_matrix, option_pos, axis=0, out=block[:, a : a + 3])
        block[:, a + 3] = self.face_value[option_pos] / price
        block[:, a + 4] = self.threshold[option_pos] / price
        block[:, a + 5] = self.applicable(item_pos, option_pos)
        columns = self.option_columns if options_only else self.context_columns
        return pd.DataFrame(block, columns=columns, copy=False)

    def raw_frame(
        self, user_pos: np.ndarray, item_pos: np.ndarray, option_pos: np.ndarray
    ) -> pd.DataFrame:
        """Model rows of aligned user, item and option positions (described by :attr:`spec`).

        Columns: the users table's feature columns as they are (``src_*``,
        ``tgt_*`` including ``|``-strings, demographics, lifecycle), then
        :meth:`context_frame`'s.
        """
        return join_rows(self.user_frame, user_pos, self.context_frame(item_pos, option_pos))

    def _unfitted_spec(self) -> FeatureSpec:
        """Spec of :meth:`raw_frame`: domains source, target, user, item, treatment.

        Every ``*_seq`` user field names ``item_category`` as its target field:
        the schema shares their tokens with the items' ``category``.
        """
        zero = np.zeros(1, np.int64)
        probe = self.raw_frame(zero, zero, zero)
        domains = {
            **USER_DOMAINS,
            **{c: "item" for c in self.item_table.columns},
            **{c: "treatment" for c in self.option_columns},
        }
        categorical = [
            "has_source",
            *(f"item_{c}" for c in ITEM_CATEGORICAL if f"item_{c}" in self.item_table),
            "coupon_type",
        ]
        # the schema's *_seq tokens are item categories: link them for target attention
        targets = {c: "item_category" for c in self.user_columns if c.endswith("_seq")}
        return FeatureSpec.infer(probe, domains, categorical=categorical, targets=targets)

    @cached_property
    def _log(self) -> pd.DataFrame:
        """The exposure log in timestamp order, with ``scene`` filled where absent
        (every row in its domain's one scene, named after the domain)."""
        log = self.dataset.exposures
        return log.assign(scene=exposure_scenes(log)).sort_values("timestamp", kind="stable")

    @cached_property
    def decision_scene(self) -> str:
        """The scene the coupon decision is for: the most frequent target scene
        (:func:`growth.data.dataset.decision_scene`)."""
        scene = decision_scene(self.dataset.exposures)
        if scene is None:
            raise ValueError("the exposure log has no rows for domain 'target'")
        return scene

    def exposure_frame(self, *, domain: str = "target", scene: str | None = None) -> ExposureFrame:
        """Rows (:meth:`raw_frame`) of the exposure log's ``domain`` and ``scene``, in
        timestamp order; by default the decision scene's target rows (:attr:`decision_scene`).

        ``scene=None`` with ``domain="source"`` takes every source scene.  The propensity
        of each row's treatment is the log's ``propensity`` column, else the design's
        constant: every coupon option (``none`` included) equally likely.
        """
        if scene is None and domain == "target":
            scene = self.decision_scene
        log = self._log
        keep = log["domain"] == domain
        if scene is not None:
            keep &= log["scene"] == scene
        return self._frame(log[keep], f"domain {domain!r}, scene {scene!r}")

    def transfer_frame(self, start: np.datetime64, *, newer: bool = False) -> ExposureFrame:
        """The labelled samples beside the decision scene's, logged before ``start`` (or
        from ``start`` on, ``newer``): every other target scene's rows and the source
        domain's, in timestamp order."""
        log = self._log
        when = log["timestamp"] >= start if newer else log["timestamp"] < start
        keep = when & ((log["domain"] == "source") | (log["scene"] != self.decision_scene))
        return self._frame(log[keep], "source and other scenes", allow_empty=True)

    def _frame(self, log: pd.DataFrame, what: str, *, allow_empty: bool = False) -> ExposureFrame:
        """The :class:`ExposureFrame` of ``log``'s rows (already in timestamp order)."""
        if log.empty and not allow_empty:
            raise ValueError(f"the exposure log has no rows for {what}")
        user_pos = self.user_positions(log["user_id"].to_numpy(), what="exposure user ids")
        item_pos = self.item_positions(log["item_id"].to_numpy())
        option_pos = self.option_positions(log["treatment"].to_numpy())
        order_value = (
            log["order_value"].to_numpy(np.float64)
            if "order_value" in log
            else np.full(len(log), np.nan)
        )
        propensity = (
            log["propensity"].to_numpy(np.float64)
            if "propensity" in log
            else np.full(len(log), 1.0 / len(self.option_ids))
        )
        return ExposureFrame(
            features=self,
            y=log["label"].to_numpy(np.int8),
            segment=self.lifecycle[user_pos],
            timestamp=log["timestamp"].to_numpy(),
            user_pos=user_pos,
            order_value=order_value,
            item_pos=item_pos,
            option_pos=option_pos,
            propensity=propensity,
            domain=log["domain"].astype(str).to_numpy(object),
            scene=log["scene"].astype(str).to_numpy(object),
        )


def _positions(index: pd.Index, keys: np.ndarray, what: str, table: str) -> np.ndarray:
    """Positions of ``keys`` in ``index``; a KeyError names up to five keys it lacks."""
    pos = index.get_indexer(np.asarray(keys))
    if (pos < 0).any():
        bad = np.asarray(keys)[pos < 0][:5]
        raise KeyError(f"{what}: {bad.tolist()} are not in {table}")
    return pos
