"""Online coupon decisions with the nightly dual price and a pacing controller.

Overnight, :func:`optimizers.coupons.allocate` prices the budget: its dual
``lam`` (value per currency unit) is the exchange rate at which a coupon is
worth its cost.  During the day each request is answered by
``argmax_k value[k] - lam * cost[k]`` (no coupon if no score is positive, and
never an option whose cost exceeds what is left of the budget).  Because the
day's traffic differs from the forecast, a PI controller on ``log(lam)`` runs at
the end of each pacing period::

    e_t   = spent / planned_t - 1                 (planned_t = budget * share of traffic so far)
    lam_t = lam_0 * exp(kp * e_t + ki * sum_{s<=t} e_s)

so overspending raises the price and underspending lowers it.

Example
-------
>>> import numpy as np
>>> from optimizers.coupons.online import OnlineAllocator
>>> pacer = OnlineAllocator(0.5, budget=10.0, horizon=2)
>>> pacer.decide([0.2, 1.0], [1.0, 1.0])
1
>>> pacer.end_period()
>>> round(pacer.spent, 2)
1.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optimizers.coupons.solve import allocate

DAILY_TRAFFIC: tuple[float, ...] = (
    0.20, 0.12, 0.08, 0.06, 0.06, 0.10, 0.25, 0.50, 0.80, 0.90, 1.00, 1.00,
    1.10, 1.00, 0.90, 0.90, 0.95, 1.00, 1.10, 1.30, 1.40, 1.30, 0.90, 0.50,
)  # fmt: skip
"""Relative request volume per hour of a typical day (shape only; normalised when used)."""


class OnlineAllocator:
    """Answer coupon requests one at a time while pacing spend to a budget.

    Parameters
    ----------
    dual_prices: the nightly price of the budget (value per currency unit), or the
        ``dual`` dict of a :class:`~optimizers.coupons.CouponAllocation` (its
        ``budget_name`` key).  Every option spends this one budget.
    budget: the day's budget (currency units); never exceeded.
    horizon: pacing periods in the day (the horizon; e.g. 24 hours).
    traffic_shape: expected relative traffic per period (default: uniform, or
        :data:`DAILY_TRAFFIC` when ``horizon == 24``).
    kp, ki: proportional and integral gains on the relative spend error.
    max_factor: the price stays within ``[lam_0 / max_factor, lam_0 * max_factor]``.
    budget_name: the key of the budget's price when ``dual_prices`` is a dict.
    """

    def __init__(
        self,
        dual_prices: float | Mapping[str, float],
        budget: float,
        horizon: int = 24,
        *,
        traffic_shape: Sequence[float] | None = None,
        kp: float = 0.5,
        ki: float = 0.2,
        max_factor: float = 20.0,
        budget_name: str = "budget",
    ) -> None:
        price = dual_prices[budget_name] if isinstance(dual_prices, Mapping) else dual_prices
        price = float(price)
        if not math.isfinite(price) or price < 0:
            raise ValueError(f"dual price must be a finite number >= 0, got {price}")
        budget = float(budget)
        if not math.isfinite(budget) or budget < 0:
            raise ValueError(f"budget must be a finite number >= 0, got {budget}")
        shape = _traffic(horizon, traffic_shape)
        if max_factor < 1:
            raise ValueError(f"max_factor must be >= 1, got {max_factor}")
        self.base_price = price
        self.budget = budget
        self.horizon = int(horizon)
        self.kp, self.ki, self.max_factor = float(kp), float(ki), float(max_factor)
        self.planned = np.cumsum(shape / shape.sum()) * budget  # (periods,) cumulative plan
        self.price = price
        self.spent = 0.0
        self.value = 0.0
        self.period = 0
        self.n_requests = 0
        self._integral = 0.0

    def decide(self, value_row: Sequence[float], cost_row: Sequence[float]) -> int:
        """Best option for one request (``-1`` = no coupon); records its cost as spent.

        Plain Python on the K numbers: on a handful of options a loop costs less
        than numpy calls on tiny arrays.
        """
        if isinstance(value_row, np.ndarray):
            value_row = value_row.tolist()
        if isinstance(cost_row, np.ndarray):
            cost_row = cost_row.tolist()
        lam = self.price
        left = self.budget - self.spent
        best = 0.0
        pick = -1
        for k, (v, c) in enumerate(zip(value_row, cost_row, strict=True)):
            if c <= left:
                s = v - lam * c
                if s > best:
                    best, pick = s, k
        self.n_requests += 1
        if pick >= 0:
            self.spent += cost_row[pick]
            self.value += value_row[pick]
        return pick

    def end_period(self) -> None:
        """Close the current pacing period and update the price (PI on log price)."""
        if self.period >= self.horizon:
            raise RuntimeError(f"the day has only {self.horizon} periods; all are closed")
        planned = self.planned[self.period]
        self.period += 1
        if planned <= 0 or self.base_price == 0.0:
            return
        err = float(np.clip(self.spent / planned - 1.0, -1.0, 1.0))
        self._integral += err
        self.price = self.base_price * pi_factor(
            err, self._integral, self.kp, self.ki, self.max_factor
        )


def pi_factor(err, integral, kp: float, ki: float, max_factor: float):
    """The PI controller's price factor ``exp(kp * err + ki * integral)``, kept within
    ``[1 / max_factor, max_factor]`` (scalars or arrays)."""
    cap = math.log(max_factor)
    return np.exp(np.clip(kp * np.asarray(err) + ki * np.asarray(integral), -cap, cap))


class BudgetPacer:
    """Answer coupon requests under several budgets: priced by the nightly dual prices, each
    budget's spend paced to a target, none ever paid beyond its cap.

    A request is answered by ``argmax_k value[k] - (sum_g lam_g member[k, g]) cost[k]``
    (no coupon if no score is positive) among the options whose face value every budget
    they draw on can still pay (``paid_g + face_k <= cap_g``); a redemption is then
    charged with :meth:`settle`.  At the end of each pacing period each budget's price
    follows the PI rule of :class:`OnlineAllocator` on its *realised* spend against the
    target's share of the day, so a day whose redemptions run above the forecast
    raises the prices.  A budget whose nightly price is 0 was slack overnight and is
    not priced during the day; its cap still holds.

    Parameters
    ----------
    prices: (G,) nightly dual price per budget (value per currency unit).
    member: (K, G) bool, option ``k`` draws on budget ``g``.
    face: (K,) what a redemption of option ``k`` charges each of its budgets.
    targets: (G,) what each budget should spend over the day (the plan's effective budgets).
    caps: (G,) the posed budgets: never paid beyond.
    horizon, traffic_shape, kp, ki, max_factor: as :class:`OnlineAllocator`.

    >>> pacer = BudgetPacer([0.1], [[True], [True]], [4.0, 2.0], [5.0], [6.0], horizon=1)
    >>> pacer.offer([1.0, 0.5], [2.0, 1.0]), pacer.settle(0, redeemed=True)
    (0, True)
    >>> pacer.offer([1.0, 0.5], [2.0, 1.0])  # 4 paid: only option 1 still fits the cap of 6
    1
    """

    def __init__(
        self,
        prices: Sequence[float],
        member: Sequence[Sequence[bool]],
        face: Sequence[float],
        targets: Sequence[float],
        caps: Sequence[float],
        horizon: int = 24,
        *,
        traffic_shape: Sequence[float] | None = None,
        kp: float = 0.5,
        ki: float = 0.2,
        max_factor: float = 20.0,
    ) -> None:
        self.member = np.asarray(member, dtype=bool)
        n_options, n_budgets = self.member.shape
        self.base_price = _checked("prices", prices, n_budgets)
        self.face = _checked("face", face, n_options)
        self.targets = _checked("targets", targets, n_budgets)
        self.caps = _checked("caps", caps, n_budgets)
        if (self.targets > self.caps + 1e-9).any():
            raise ValueError(f"targets must lie within caps, got {self.targets} over {self.caps}")
        shape = _traffic(horizon, traffic_shape)
        self.horizon = int(horizon)
        self.kp, self.ki, self.max_factor = float(kp), float(ki), float(max_factor)
        self.share = np.cumsum(shape / shape.sum())  # (periods,) of the day's traffic
        self.price = self.base_price.copy()
        self.paid = np.zeros(n_budgets)
        self.period = 0
        self.n_offers = 0
        self._integral = np.zeros(n_budgets)

    def offer(self, value_row: Sequence[float], cost_row: Sequence[float]) -> int:
        """The option to offer one request (``-1`` = none): the best priced score among the
        options every budget they draw on can still pay."""
        room = self.caps - self.paid
        fits = ~(self.member & (self.face[:, None] > room[None, :] + 1e-9)).any(axis=1)
        score = np.asarray(value_row) - (self.member @ self.price) * np.asarray(cost_row)
        score = np.where(fits, score, 0.0)
        pick = int(np.argmax(score))
        if score[pick] <= 0.0:
            return -1
        self.n_offers += 1
        return pick

    def settle(self, option: int, *, redeemed: bool) -> bool:
        """Charge a redemption of ``option`` to its budgets; False (nothing paid) when it was
        not redeemed or a budget could not pay it."""
        if option < 0 or not redeemed:
            return False
        charge = self.member[option] * self.face[option]
        if (self.paid + charge > self.caps + 1e-9).any():
            return False
        self.paid += charge
        return True

    def end_period(self) -> None:
        """Close the pacing period: each priced budget's price follows its spend error."""
        if self.period >= self.horizon:
            raise RuntimeError(f"the day has only {self.horizon} periods; all are closed")
        planned = self.targets * self.share[self.period]
        self.period += 1
        live = planned > 0
        err = np.clip(self.paid[live] / planned[live] - 1.0, -1.0, 1.0)
        self._integral[live] += err
        factor = pi_factor(err, self._integral[live], self.kp, self.ki, self.max_factor)
        self.price[live] = self.base_price[live] * factor


def _checked(name: str, values: Sequence[float], n: int) -> np.ndarray:
    """``values`` as (n,) finite non-negative floats, else a ValueError naming ``name``."""
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (n,) or not np.isfinite(out).all() or (out < 0).any():
        raise ValueError(f"{name} must be {n} finite numbers >= 0, got {values!r}")
    return out


def _traffic(horizon: int, traffic_shape: Sequence[float] | None) -> np.ndarray:
    """The day's relative traffic per period (default: :data:`DAILY_TRAFFIC` over 24 periods,
    else uniform), checked."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if traffic_shape is None:
        traffic_shape = DAILY_TRAFFIC if horizon == 24 else (1.0,) * horizon
    shape = np.asarray(traffic_shape, dtype=np.float64)
    if shape.shape != (horizon,) or (shape < 0).any() or shape.sum() <= 0:
        raise ValueError(
            f"traffic_shape must be {horizon} non-negative numbers with a positive sum"
        )
    return shape


@dataclass
class DayReport:
    """Outcome of :func:`simulate_day`."""

    n_requests: int
    budget: float
    spend: float
    value: float
    offline_value: float
    offline_bound: float
    us_per_request: float
    price_start: float
    price_end: float

    @property
    def spend_pct(self) -> float:
        """Spend as a percentage of the budget."""
        return 100.0 * self.spend / self.budget if self.budget > 0 else 0.0

    @property
    def value_pct(self) -> float:
        """Online value as a percentage of the offline optimum on the same users."""
        return 100.0 * self.value / self.offline_value if self.offline_value > 0 else 0.0


def simulate_day(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    horizon: int = 24,
    traffic_shape: Sequence[float] | None = None,
    dual_price: float | None = None,
    price_error: float = 1.0,
    kp: float = 0.5,
    ki: float = 0.2,
    seed: int = 0,
) -> DayReport:
    """Replay the rows of ``value``/``cost`` as a day of requests and compare to offline.

    Users arrive in random order, split into periods by ``traffic_shape``.  The
    starting price is ``dual_price`` (default: the offline Lagrangian price on the
    same users) times ``price_error`` (e.g. 2.0 to mimic a forecast that was off);
    the offline optimum is the Lagrangian plan on the same users.
    """
    value = np.asarray(value, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    offline = allocate(value, cost, budget, method="lagrangian", seed=seed)
    price = (offline.dual.get("budget", 0.0) if dual_price is None else dual_price) * price_error
    pacer = OnlineAllocator(price, budget, horizon, traffic_shape=traffic_shape, kp=kp, ki=ki)
    rng = np.random.default_rng(seed)
    order = rng.permutation(value.shape[0])
    values, costs = value[order].tolist(), cost[order].tolist()
    shape = (
        pacer.planned / pacer.planned[-1] if budget > 0 else np.linspace(1 / horizon, 1, horizon)
    )
    ends = np.round(shape * len(values)).astype(int)  # (periods,) last request of each
    decide = pacer.decide
    start = 0
    elapsed = 0.0
    for end in ends:
        t0 = time.perf_counter()
        for i in range(start, int(end)):
            decide(values[i], costs[i])
        elapsed += time.perf_counter() - t0
        pacer.end_period()
        start = int(end)
    return DayReport(
        n_requests=pacer.n_requests,
        budget=float(budget),
        spend=pacer.spent,
        value=pacer.value,
        offline_value=offline.objective,
        offline_bound=offline.upper_bound,
        us_per_request=1e6 * elapsed / max(pacer.n_requests, 1),
        price_start=price,
        price_end=pacer.price,
    )
