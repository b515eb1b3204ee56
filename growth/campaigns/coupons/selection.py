"""The holdout's rows where the plan buys: the evidence of its selection's spend bias.

The plan buys a selected part of each option's users, the users whose predicted
conversions per unit cost are best, and there the calibrated predictions may err more than
on the option's users at large (:mod:`growth.campaigns.coupons.buffer`).  The randomised
holdout shows it: a row whose logged option is the one the plan gives its user is a row
where the plan buys.  :class:`SpendEvidence` keeps each holdout row's user, logged option and
redemption observed and predicted (in redemptions, so that a count's Poisson error applies),
and :meth:`SpendEvidence.plan_rows` sums them per option for a plan.

>>> import numpy as np
>>> rows = SpendEvidence(
...     user=np.array([0, 0, 1, 2]), option=np.array([0, 1, 0, -1]),
...     observed=np.array([1.0, 0.0, 0.0, 1.0]), predicted=np.array([0.5, 0.2, 0.5, 0.3]))
>>> [a.tolist() for a in rows.plan_rows(np.array([0, -1, 1]), 2)]
[[1.0, 0.0], [0.5, 0.0], [1.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from growth.campaigns.coupons.decision import CouponDecision


@dataclass(frozen=True)
class SpendEvidence:
    """The holdout's redemptions as the buffer reads them, one entry per row: the decision
    user, the logged option (0..K-1 in the decision's order; -1 for 'none' or an option the
    decision lacks), and the redemption observed (0/1) and predicted (the calibrated
    probability the plan reads)."""

    user: np.ndarray
    option: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray

    @classmethod
    def from_log(cls, decision: CouponDecision, log: Any) -> SpendEvidence:
        """From a :class:`~growth.campaigns.coupons.value.HoldoutLog` of the models whose
        decision is ``decision`` (its rows' users are users-table positions, the decision's
        order); its spend is divided by each option's face value."""
        position = {o: k for k, o in enumerate(decision.option_ids[1:])}
        option = np.array([position.get(o, -1) for o in log.option_ids])[log.arm]
        face = np.where(option >= 0, decision.face_value[1:][np.maximum(option, 0)], 1.0)
        predicted = log.p_cost[np.arange(len(log.arm)), log.arm]
        return cls(np.asarray(log.user_pos), option, log.cost / face, predicted / face)

    def plan_rows(
        self, choice: np.ndarray, n_options: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per option (``n_options``,): the redemptions observed and predicted on its rows
        whose user ``choice`` (-1 = none) gives it (where the plan buys it), and the ratio
        observed / predicted over all its rows (1 where nothing is predicted)."""
        logged = self.option >= 0
        option = np.where(logged, self.option, 0)
        mine = logged & (choice[self.user] == self.option)
        sums = [
            np.bincount(option, np.where(rows, x, 0.0), minlength=n_options)
            for rows in (mine, logged)
            for x in (self.observed, self.predicted)
        ]
        level = np.divide(sums[2], sums[3], out=np.ones(n_options), where=sums[3] > 0.0)
        return sums[0], sums[1], level
