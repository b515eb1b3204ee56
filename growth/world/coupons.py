"""The coupon catalogue: the campaign's treatment options.

Seven options, in table order (index 0 is always the control ``none``):

=====  ==============  ==============  =====  =========  ========
index  option_id       type            face   threshold  merchant
=====  ==============  ==============  =====  =========  ========
0      none            none            0      0          -
1      rp_3            red_packet      3      0          -
2      rp_8            red_packet      8      0          -
3      fr_50_10        full_reduction  10     50         -
4      fr_100_25       full_reduction  25     100        -
5      merchant_0_10   merchant        10     0          0
6      merchant_1_15   merchant        15     0          1
=====  ==============  ==============  =====  =========  ========

A coupon is *applicable* to an order when: red packet - always; full reduction -
the expected basket reaches the threshold; merchant - the item belongs to that
merchant.  Merchant coupons are paid by the merchant (``paid_by_platform`` is
false), the others by the platform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.data.schema import CouponType

TYPE_CODES: tuple[str, ...] = (
    CouponType.NONE.value,
    CouponType.RED_PACKET.value,
    CouponType.FULL_REDUCTION.value,
    CouponType.MERCHANT.value,
)
NONE, RED_PACKET, FULL_REDUCTION, MERCHANT = range(4)


@dataclass(frozen=True)
class CouponCatalogue:
    """Coupon options as parallel arrays, in coupons-table order."""

    option_ids: tuple[str, ...]
    type_code: np.ndarray  # (K+1,) int index into TYPE_CODES
    face_value: np.ndarray  # (K+1,) float, currency units off the order
    threshold: np.ndarray  # (K+1,) float, basket needed (full reduction), else 0
    merchant: np.ndarray  # (K+1,) int, merchant id for merchant coupons, else -1

    @property
    def n_options(self) -> int:
        """K + 1: the options including ``none``."""
        return len(self.option_ids)

    @property
    def paid_by_platform(self) -> np.ndarray:
        """(K+1,) bool: whose budget pays the face value (merchant coupons: the merchant)."""
        return self.type_code != MERCHANT

    def applicable(
        self, option: np.ndarray, basket: np.ndarray, item_merchant: np.ndarray
    ) -> np.ndarray:
        """Whether option ``option`` discounts an order of value ``basket`` on that merchant's item.

        Arguments broadcast; ``none`` is never applicable.
        """
        t = self.type_code[option]
        return (
            (t == RED_PACKET)
            | ((t == FULL_REDUCTION) & (basket >= self.threshold[option]))
            | ((t == MERCHANT) & (item_merchant == self.merchant[option]))
        )

    def table(self) -> pd.DataFrame:
        """The ``coupons`` table in the schema's format."""
        merchant = pd.array(
            [None if m < 0 else int(m) for m in self.merchant.tolist()], dtype="Int64"
        )
        return pd.DataFrame(
            {
                "option_id": np.array(self.option_ids, dtype=object),
                "type": np.array(TYPE_CODES, dtype=object)[self.type_code],
                "face_value": self.face_value.astype(np.float64),
                "threshold": self.threshold.astype(np.float64),
                "merchant_id": merchant,
            }
        )


def default_catalogue() -> CouponCatalogue:
    """The seven-option catalogue documented in this module."""
    rows = [
        ("none", NONE, 0.0, 0.0, -1),
        ("rp_3", RED_PACKET, 3.0, 0.0, -1),
        ("rp_8", RED_PACKET, 8.0, 0.0, -1),
        ("fr_50_10", FULL_REDUCTION, 10.0, 50.0, -1),
        ("fr_100_25", FULL_REDUCTION, 25.0, 100.0, -1),
        ("merchant_0_10", MERCHANT, 10.0, 0.0, 0),
        ("merchant_1_15", MERCHANT, 15.0, 0.0, 1),
    ]
    return CouponCatalogue(
        option_ids=tuple(r[0] for r in rows),
        type_code=np.array([r[1] for r in rows], dtype=np.int64),
        face_value=np.array([r[2] for r in rows]),
        threshold=np.array([r[3] for r in rows]),
        merchant=np.array([r[4] for r in rows], dtype=np.int64),
    )
