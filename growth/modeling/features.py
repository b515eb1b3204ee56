"""From dataset tables to model inputs: (user, item, coupon option) rows.

User, item and coupon features are encoded once per table; a row of a training
or scoring frame is then a gather of the three encodings plus a few
cross features that a human analyst would also compute (coupon face value
relative to the item price, whether a merchant coupon matches the item's
merchant).  Everything is vectorised, so scoring millions of
(user, candidate, option) rows is a matter of indexing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.data.dataset import Dataset
from growth.data.schema import NO_COUPON, SOURCE_PREFIX, TARGET_PREFIX
from predictors.features import FeatureSpec
from predictors.tabular import encode_tabular, tabular_columns

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


@dataclass(frozen=True)
class ExposureFrame:
    """A training/evaluation frame built from the exposure log."""

    X: pd.DataFrame
    y: np.ndarray
    segment: np.ndarray  # lifecycle of the user, per row
    timestamp: np.ndarray  # datetime64[ns], per row
    user_pos: np.ndarray  # row position of the user in ``users``
    order_value: np.ndarray  # NaN where not converted or not logged
    item_pos: np.ndarray | None = None  # row position of the item in ``items``
    option_pos: np.ndarray | None = None  # coupons-table position of the logged treatment


class ConversionFeatures:
    """Encodes a dataset's users, items and coupon options for conversion models.

    ``user_domains`` selects which users-table columns are features (a prefix or
    an exact name mapped to a domain name); pass a subset (e.g. only
    ``{"src_": "source"}``) to train on one domain.
    """

    def __init__(self, dataset: Dataset, *, user_domains: dict[str, str] | None = None) -> None:
        self.dataset = dataset
        users = dataset.users.reset_index(drop=True)
        self.user_ids = users["user_id"].to_numpy()
        self._user_pos = pd.Index(self.user_ids)
        self.lifecycle = users["lifecycle"].astype(str).to_numpy()
        domains = USER_DOMAINS if user_domains is None else user_domains
        self.user_spec = FeatureSpec.infer(users, domains, categorical=("has_source",)).fit(users)
        self.user_table = encode_tabular(self.user_spec, users).reset_index(drop=True)

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
                "coupon_type": coupons["type"].map(COUPON_TYPE_CODES).to_numpy(np.int32),
                "coupon_face": self.face_value.astype(np.float32),
                "coupon_threshold": self.threshold.astype(np.float32),
            }
        )
        user_cols, user_cat = tabular_columns(self.user_spec)
        self.columns = [
            *user_cols,
            *self.item_table.columns,
            *self.coupon_table.columns,
            *CROSS_COLUMNS,
        ]
        self._user_matrix = self.user_table.to_numpy(np.float32)
        self._item_matrix = self.item_table.to_numpy(np.float32)
        self._coupon_matrix = self.coupon_table.to_numpy(np.float32)
        self.categorical = [
            *user_cat,
            *(f"item_{c}" for c in ITEM_CATEGORICAL if f"item_{c}" in self.item_table),
            "coupon_type",
        ]

    # positions -------------------------------------------------------------
    def user_positions(self, user_ids: np.ndarray, *, what: str = "user ids") -> np.ndarray:
        pos = self._user_pos.get_indexer(np.asarray(user_ids))
        if (pos < 0).any():
            bad = np.asarray(user_ids)[pos < 0][:5]
            raise KeyError(f"unknown {what}: {bad.tolist()} are not in the users table")
        return pos

    def item_positions(self, item_ids: np.ndarray) -> np.ndarray:
        pos = self._item_pos.get_indexer(np.asarray(item_ids))
        if (pos < 0).any():
            bad = np.asarray(item_ids)[pos < 0][:5]
            raise KeyError(f"unknown item ids: {bad.tolist()} are not in the items table")
        return pos

    def option_positions(self, option_ids: np.ndarray) -> np.ndarray:
        index = pd.Index(self.option_ids)
        pos = index.get_indexer(np.asarray(option_ids).astype(str))
        if (pos < 0).any():
            bad = np.asarray(option_ids)[pos < 0][:5]
            raise KeyError(f"unknown coupon options: {bad.tolist()}")
        return pos

    # frames ----------------------------------------------------------------
    @property
    def option_columns(self) -> list[str]:
        """Columns of :meth:`frame` that depend on the coupon option (the rest are user/item)."""
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

    def frame(
        self, user_pos: np.ndarray, item_pos: np.ndarray, option_pos: np.ndarray
    ) -> pd.DataFrame:
        """Feature rows for aligned arrays of user, item and option positions.

        The result is one float32 block (categorical codes are whole numbers), so
        building it is a few gathers and models read it without conversion.
        """
        block = np.empty((len(user_pos), len(self.columns)), dtype=np.float32)
        a, b = self._user_matrix.shape[1], self._item_matrix.shape[1]
        np.take(self._user_matrix, user_pos, axis=0, out=block[:, :a])
        np.take(self._item_matrix, item_pos, axis=0, out=block[:, a : a + b])
        self._write_option_columns(block, item_pos, option_pos)
        return pd.DataFrame(block, columns=self.columns, copy=False)

    def option_rows(
        self, base: np.ndarray, rows: np.ndarray, item_pos: np.ndarray, option_pos: np.ndarray
    ) -> np.ndarray:
        """The :meth:`frame` block of ``base[rows]`` re-targeted to other coupon options.

        ``base`` is a (m, F) :meth:`frame` block; ``rows`` (r,) picks its rows,
        ``item_pos``/``option_pos`` (r,) are their items and the new options.  Only
        the option columns are recomputed, so scoring every option of one
        (user, item) gathers the user and item features once.
        """
        block = np.take(base, rows, axis=0)  # (r, F)
        self._write_option_columns(block, item_pos, option_pos)
        return block

    def _write_option_columns(
        self, block: np.ndarray, item_pos: np.ndarray, option_pos: np.ndarray
    ) -> None:
        """Fill the coupon and cross columns (the last six) of a (n, F) float32 block."""
        price = np.maximum(self._item_price[item_pos], 1e-6)
        c = len(self.columns) - len(CROSS_COLUMNS) - self._coupon_matrix.shape[1]
        np.take(self._coupon_matrix, option_pos, axis=0, out=block[:, c : c + 3])
        block[:, c + 3] = self.face_value[option_pos] / price
        block[:, c + 4] = self.threshold[option_pos] / price
        block[:, c + 5] = self.applicable(item_pos, option_pos)

    def raw_frame(
        self, user_pos: np.ndarray, item_pos: np.ndarray, option_pos: np.ndarray
    ) -> pd.DataFrame:
        """Un-encoded rows for models that embed fields themselves (the torch predictors).

        Columns: the users table's feature columns as they are (``src_*``, ``tgt_*``
        including ``|``-strings, demographics, lifecycle), ``item_*`` and
        ``coupon_*`` columns and the cross features; describe them with
        :meth:`raw_spec`.
        """
        frame = self.dataset.users[self.raw_user_columns].take(user_pos).reset_index(drop=True)
        tab = self.frame(user_pos, item_pos, option_pos)
        for col in self.raw_context_columns:
            frame[col] = tab[col].to_numpy()
        return frame

    @property
    def raw_user_columns(self) -> list[str]:
        """Columns of :meth:`raw_frame` copied from the users table as they are."""
        return [c for c in self.dataset.users.columns if c != "user_id"]

    @property
    def raw_context_columns(self) -> list[str]:
        """Columns of :meth:`raw_frame` taken from :meth:`frame` (item, coupon, cross)."""
        return [*self.item_table.columns, *self.coupon_table.columns, *CROSS_COLUMNS]

    def raw_spec(self) -> FeatureSpec:
        """Unfitted spec of :meth:`raw_frame`: domains source, target, user, item, treatment.

        Every ``*_seq`` user field names ``item_category`` as its target field:
        the schema shares their tokens with the items' ``category``.
        """
        zero = np.zeros(1, np.int64)
        probe = self.raw_frame(zero, zero, zero)
        domains = {
            **USER_DOMAINS,
            **{c: "item" for c in self.item_table.columns},
            **{c: "treatment" for c in (*self.coupon_table.columns, *CROSS_COLUMNS)},
        }
        categorical = [
            "has_source",
            *(f"item_{c}" for c in ITEM_CATEGORICAL if f"item_{c}" in self.item_table),
            "coupon_type",
        ]
        # the schema's *_seq tokens are item categories: link them for target attention
        targets = {c: "item_category" for c in self.raw_user_columns if c.endswith("_seq")}
        return FeatureSpec.infer(probe, domains, categorical=categorical, targets=targets)

    def exposure_frame(self, *, domain: str = "target", raw: bool = False) -> ExposureFrame:
        """Training rows from the exposure log of one domain, in timestamp order.

        ``raw=True`` gives :meth:`raw_frame` rows instead of the tabular encoding.
        """
        log = self.dataset.exposures
        log = log[log["domain"] == domain].sort_values("timestamp", kind="stable")
        if log.empty:
            raise ValueError(f"the exposure log has no rows for domain {domain!r}")
        user_pos = self.user_positions(log["user_id"].to_numpy(), what="exposure user ids")
        item_pos = self.item_positions(log["item_id"].to_numpy())
        option_pos = self.option_positions(log["treatment"].to_numpy())
        order_value = (
            log["order_value"].to_numpy(np.float64)
            if "order_value" in log
            else np.full(len(log), np.nan)
        )
        build = self.raw_frame if raw else self.frame
        return ExposureFrame(
            X=build(user_pos, item_pos, option_pos),
            y=log["label"].to_numpy(np.int8),
            segment=self.lifecycle[user_pos],
            timestamp=log["timestamp"].to_numpy(),
            user_pos=user_pos,
            order_value=order_value,
            item_pos=item_pos,
            option_pos=option_pos,
        )
