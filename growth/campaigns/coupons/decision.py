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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.data.schema import NO_COUPON


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
