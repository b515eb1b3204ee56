"""Validated data of a coupon allocation problem (a multiple-choice knapsack).

The maths.  Users ``u = 1..n``, coupon options ``k = 1..K``; ``x[u, k] in {0, 1}``
is 1 when user ``u`` gets option ``k`` (at most one per user; no coupon is always
allowed and encoded as choice ``-1``).  With ``obj = (1 - weight) * value +
weight * value2``::

    maximise    sum_uk obj[u, k] x[u, k]
    subject to  sum_k x[u, k] <= 1                                   (one coupon per user)
                sum_uk cost[u, k] g[k] x[u, k] <= budget             (budget_name; g = global_options)
                sum_uk cost[u, k] m_j[k] x[u, k] <= amount_j         (group j, type_budget[t],
                                                                      merchant_budget[m])
                sum_{u in s} sum_k x[u, k] >= ceil(f_s |s|)          (min_coverage[s])
                sum_uk (value[u, k] - roi g[k] cost[u, k]) x[u, k] >= 0   (roi_floor)

Every coupling constraint is stored in the uniform form ``sum_u A[u, choice_u] <= rhs``
(:class:`LinearConstraint`, ``A[u, -1] = 0``) so that the Lagrangian method, the
repair heuristic and the MIP builders treat them alike.  A constraint's name is
the name of what it limits: the global budget is called ``budget_name`` and a
budget group by its key in ``budget_groups``, so the dual prices, the spends and
the caller's own budget table join on the same names.  ``cost`` is the *expected*
cost (face value x redemption probability), in currency units.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from optimizers.certificate import InfeasibleError
from optimizers.coupons.exact import exact_sum, exact_sums, round_up

OPTION_TYPES: tuple[str, ...] = ("red_packet", "full_reduction", "merchant")


@dataclass(frozen=True)
class LinearConstraint:
    """``sum_u coef[u, choice_u] <= rhs`` (no coupon contributes 0), where

        coef[u, k] = cost_weight[k] * cost[u, k] + value_weight * value[u, k] + user_weight[u]

    Budgets and groups weigh the cost of their options (``cost_weight`` 1 or 0),
    a coverage floor counts its users (``user_weight`` -1 in the segment, ``rhs`` =
    minus the users needed), the ROI floor weighs ``roi * cost - value``.  Keeping
    this structure (instead of an (n, K) matrix per constraint) lets the methods
    price every constraint in one pass and sum usages exactly;
    :attr:`coef` builds the matrix when a solver needs it.  ``kind`` is one of
    ``'budget'``, ``'group'``, ``'coverage'``, ``'roi'``.
    """

    name: str
    kind: str
    rhs: float
    cost_weight: np.ndarray  # (K,) weight of each option's cost
    value_weight: float  # weight of the value matrix
    user_weight: np.ndarray | None  # (n,) added to every option of a user; None = 0
    cost: np.ndarray = field(repr=False)  # (n, K) the problem's cost (shared, not copied)
    value: np.ndarray = field(repr=False)  # (n, K) the problem's value (shared)

    def at(self, users: np.ndarray, options: np.ndarray) -> np.ndarray:
        """``coef[users, options]`` for options in ``0..K-1`` (float64, like :attr:`coef`)."""
        out = self.cost_weight[options] * self.cost[users, options]
        if self.value_weight:
            out = out + self.value_weight * self.value[users, options]
        if self.user_weight is not None:
            out = out + self.user_weight[users]
        return out

    @property
    def coef(self) -> np.ndarray:
        """The (n, K) coefficient matrix (built on each call)."""
        out = self.cost * self.cost_weight[None, :]
        if self.value_weight:
            out = out + self.value_weight * self.value
        if self.user_weight is not None:
            out = out + self.user_weight[:, None]
        return out


def _row_lower_bounds(c: LinearConstraint) -> np.ndarray:
    """(n, K) floats at most the exact ``coef`` of ``c`` (float ``coef`` minus its rounding error).

    ``coef`` rounds twice at most (``w * cost``, then ``+ value_weight * value``); each
    rounding errs by at most ``2**-53`` of its result, so ``2**-51`` of the absolute
    terms covers both, and the subtraction of that margin rounds down.
    """
    coef = c.coef
    if not c.value_weight and np.isin(c.cost_weight, (0.0, 1.0)).all():
        return coef  # costs times 0 or 1 (plus integer user weights): exact
    terms = np.abs(c.cost * c.cost_weight[None, :]) + np.abs(c.value_weight * c.value)
    return np.nextafter(coef - 2.0**-51 * terms, -np.inf)


def _as_matrix(name: str, x: object, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Convert ``x`` to a finite float (n, K) matrix; name the first bad cell."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_users, n_options) matrix, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape} but value has shape {shape}; they must match")
    bad = ~np.isfinite(a)
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} is not finite ({a[i, k]}) in row {i} option {k}")
    return a


def _check_amount(name: str, amount: float) -> float:
    amount = float(amount)
    if math.isnan(amount) or amount < 0:
        raise ValueError(f"{name} must be a non-negative number, got {amount}")
    return amount


@dataclass
class CouponProblem:
    """A validated coupon allocation instance; see the module docstring for the maths.

    Parameters
    ----------
    value: (n, K) predicted incremental value of each option over no coupon
        (conversions or GMV); may be negative.
    cost: (n, K) expected cost >= 0 (currency units).
    budget: global budget (currency units, >= 0; ``math.inf`` for none).
    value2: optional second (n, K) value matrix (e.g. GMV when ``value`` is conversions).
    weight: objective is ``(1 - weight) * value + weight * value2``; needs ``value2``
        when > 0.
    option_types: K labels from :data:`OPTION_TYPES` (default: all ``'red_packet'``).
    merchant_ids: K merchant ids (``None``/-1 for non-merchant options).
    global_options: (K,) bool, which options spend the global budget.  Default:
        every option whose type is not ``'merchant'`` (merchant coupons spend the
        merchant's money, bounded by ``merchant_budgets``/``budget_groups``).
    budget_groups: name -> (option indices, amount): extra budgets on the summed
        cost of those options; the constraint, its dual price and its spend are
        called ``name``.
    type_budgets: option type -> amount (shorthand for a budget group per type).
    merchant_budgets: merchant id -> amount (shorthand for a group per merchant).
    segments: (n,) segment label of each user (e.g. lifecycle ``'new'``).
    min_coverage: segment label -> fraction in [0, 1] of its users that must get
        some coupon.
    roi_floor: total ``value`` >= ``roi_floor`` x total global spend.
    budget_name: name of the global budget's constraint (and of its dual price).

    ``segment_masks`` (segment -> (n,) bool, one per ``min_coverage`` entry) is
    derived at construction; results read coverage from it.
    """

    value: np.ndarray
    cost: np.ndarray
    budget: float
    value2: np.ndarray | None = None
    weight: float = 0.0
    option_types: Sequence[str] | None = None
    merchant_ids: Sequence[int | None] | None = None
    global_options: np.ndarray | Sequence[bool] | None = None
    budget_groups: Mapping[str, tuple[Sequence[int], float]] | None = None
    type_budgets: Mapping[str, float] | None = None
    merchant_budgets: Mapping[int, float] | None = None
    segments: np.ndarray | Sequence[object] | None = None
    min_coverage: Mapping[str, float] | None = None
    roi_floor: float | None = None
    budget_name: str = "budget"
    constraints: list[LinearConstraint] = field(init=False, repr=False)
    segment_masks: dict[str, np.ndarray] = field(init=False, repr=False)
    objective_matrix: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.value = _as_matrix("value", self.value)
        k = self.value.shape[1]
        if k == 0:
            raise ValueError("value has no options (0 columns); give at least one coupon option")
        self.cost = _as_matrix("cost", self.cost, self.value.shape)
        neg = self.cost < 0
        if neg.any():
            i, j = (int(v) for v in np.argwhere(neg)[0])
            raise ValueError(f"cost must be >= 0; cost[{i}, {j}] = {self.cost[i, j]}")
        self.budget = _check_amount("budget", self.budget)
        self._check_objective()
        self._check_options()
        self.constraints = self._build_constraints()
        self.check_feasibility()

    # -- validation -------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self.value.shape[0])

    @property
    def n_options(self) -> int:
        return int(self.value.shape[1])

    def with_weight(self, weight: float) -> CouponProblem:
        """The same constraints with objective ``(1 - weight) * value + weight * value2``.

        Shares the validated data and constraints (no re-validation), so a sweep
        over weights builds the problem once.
        """
        out = copy.copy(self)
        out.weight = weight
        out._check_objective()
        return out

    def _check_objective(self) -> None:
        w = float(self.weight)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {w}")
        self.weight = w
        if self.value2 is None:
            if w > 0:
                raise ValueError(f"weight={w} needs value2 (the second value matrix)")
            self.objective_matrix = self.value
            return
        self.value2 = _as_matrix("value2", self.value2, self.value.shape)
        self.objective_matrix = (1.0 - w) * self.value + w * self.value2

    def _check_options(self) -> None:
        k = self.n_options
        if self.option_types is None:
            self.option_types = ("red_packet",) * k
        types = tuple(str(t) for t in self.option_types)
        if len(types) != k:
            raise ValueError(f"option_types has {len(types)} entries but value has {k} options")
        for j, t in enumerate(types):
            if t not in OPTION_TYPES:
                raise ValueError(f"option_types[{j}] = {t!r} is not one of {OPTION_TYPES}")
        self.option_types = types
        if self.merchant_ids is not None:
            mids = tuple(
                None
                if m is None or (isinstance(m, float) and math.isnan(m)) or int(m) < 0
                else int(m)
                for m in self.merchant_ids
            )
            if len(mids) != k:
                raise ValueError(f"merchant_ids has {len(mids)} entries but value has {k} options")
            self.merchant_ids = mids
        if self.global_options is None:
            g = np.array([t != "merchant" for t in types], dtype=bool)
        else:
            g = np.asarray(self.global_options, dtype=bool)
            if g.shape != (k,):
                raise ValueError(f"global_options has shape {g.shape} but value has {k} options")
        self.global_options = g

    # -- constraints ----------------------------------------------------------------
    def _group_masks(self) -> dict[str, tuple[np.ndarray, float]]:
        """Budget name -> (option mask, amount) of every budget group and shorthand."""
        k = self.n_options
        groups: dict[str, tuple[np.ndarray, float]] = {}

        def add(name: str, mask: np.ndarray, amount: float) -> None:
            if name in groups:
                raise ValueError(f"two budgets are called {name!r}; budget names must be unique")
            groups[name] = (mask, amount)

        for name, spec in (self.budget_groups or {}).items():
            try:
                idx, amount = spec
            except (TypeError, ValueError):
                raise ValueError(
                    f"budget_groups[{name!r}] must be (option indices, amount), got {spec!r}"
                ) from None
            idx = np.asarray(idx, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= k):
                raise ValueError(f"budget_groups[{name!r}] has option index outside 0..{k - 1}")
            mask = np.zeros(k, dtype=bool)
            mask[idx] = True
            add(str(name), mask, _check_amount(f"budget_groups[{name!r}] amount", amount))
        types = np.asarray(self.option_types)
        for t, amount in (self.type_budgets or {}).items():
            if t not in OPTION_TYPES:
                raise ValueError(f"type_budgets key {t!r} is not one of {OPTION_TYPES}")
            add(f"type_budget[{t}]", types == t, _check_amount(f"type_budgets[{t!r}]", amount))
        if self.merchant_budgets:
            if self.merchant_ids is None:
                raise ValueError(
                    "merchant_budgets needs merchant_ids (the merchant of each option)"
                )
            mids = np.array([-1 if m is None else m for m in self.merchant_ids])
            for m, amount in self.merchant_budgets.items():
                mask = mids == int(m)
                if not mask.any():
                    raise ValueError(f"merchant_budgets names merchant {m} but no option has it")
                add(
                    f"merchant_budget[{int(m)}]",
                    mask,
                    _check_amount(f"merchant_budgets[{m}]", amount),
                )
        return groups

    def _segment_masks(self) -> dict[str, np.ndarray]:
        if not self.min_coverage:
            return {}
        if self.segments is None:
            raise ValueError("min_coverage needs segments (the segment label of each user)")
        seg = np.asarray(self.segments).astype(str)
        if seg.shape != (self.n_users,):
            raise ValueError(
                f"segments has shape {seg.shape} but value has {self.n_users} users (rows)"
            )
        out = {}
        for s, frac in self.min_coverage.items():
            frac = float(frac)
            if not 0.0 <= frac <= 1.0:
                raise ValueError(f"min_coverage[{s!r}] must be a fraction in [0, 1], got {frac}")
            mask = seg == str(s)
            if not mask.any():
                raise ValueError(f"min_coverage names segment {s!r} but no user has it")
            out[str(s)] = mask
        return out

    def _build_constraints(self) -> list[LinearConstraint]:
        g = np.asarray(self.global_options, dtype=np.float64)
        cons: list[LinearConstraint] = []

        def add(name: str, kind: str, rhs: float, w: np.ndarray, vw: float = 0.0, uw=None) -> None:
            cons.append(LinearConstraint(name, kind, float(rhs), w, vw, uw, self.cost, self.value))

        if math.isfinite(self.budget):
            add(self.budget_name, "budget", self.budget, g)
        groups = self._group_masks()
        if self.budget_name in groups:
            raise ValueError(
                f"budget group {self.budget_name!r} has the global budget's name; "
                "rename the group or pass another budget_name"
            )
        for name, (mask, amount) in groups.items():
            add(name, "group", amount, mask.astype(np.float64))
        self.segment_masks = self._segment_masks()
        no_cost = np.zeros(self.n_options)
        for s, mask in self.segment_masks.items():
            # at least a fraction f of the segment: count >= ceil(f |s|), in exact arithmetic
            need = math.ceil(Fraction(float(self.min_coverage[s])) * int(mask.sum()))  # type: ignore[index]
            add(f"min_coverage[{s!r}]", "coverage", -float(need), no_cost, 0.0, -mask.astype(float))
        if self.roi_floor is not None:
            roi = _check_amount("roi_floor", self.roi_floor)
            self.roi_floor = roi
            add("roi_floor", "roi", 0.0, roi * g, -1.0)  # roi * global spend - value <= 0
        return cons

    # -- feasibility ----------------------------------------------------------------
    def check_feasibility(self) -> None:
        """Raise :class:`InfeasibleError` when coverage floors provably cannot be met.

        Checks, for every budget, the cheapest spend that meets all coverage floors
        (the ``need`` cheapest users of each segment at their cheapest option), and
        for the ROI floor the best achievable ``value - roi * spend`` under coverage.
        These are exact for each constraint paired with the coverage floors; joint
        conflicts among several budgets are reported by the solvers.
        """
        cov = [c for c in self.constraints if c.kind == "coverage"]
        if not cov:
            return
        needs = {c.name: (c.user_weight < 0, int(-c.rhs)) for c in cov}  # type: ignore[operator]
        for c in self.constraints:
            if c.kind not in ("budget", "group", "roi"):
                continue
            low = _row_lower_bounds(c).min(axis=1)  # (n,) <= the exact cheapest option's usage
            parts = [cname for cname, (_, need) in needs.items() if need > 0]
            total = exact_sum(np.minimum(low, 0.0))  # options that reduce the usage
            for mask, need in needs.values():
                cheapest = np.sort(low[mask])
                total += exact_sum(
                    cheapest[cheapest >= 0][: max(0, need - int((cheapest < 0).sum()))]
                )
            if total > Fraction(c.rhs):  # exact: even the cheapest coverage breaks the limit
                names = " and ".join(parts)
                if c.kind == "roi":
                    raise InfeasibleError(
                        f"{names} cannot hold together with roi_floor={self.roi_floor}: the best "
                        f"achievable value - roi_floor*spend is {-float(total):.6g} < 0"
                    )
                raise InfeasibleError(
                    f"{names} needs at least {float(total):.6g} of spend but {c.name} is {c.rhs:.6g}"
                )

    # -- evaluation -----------------------------------------------------------------
    def gather(self, matrix: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """``matrix[u, choice[u]]`` with 0 where ``choice[u] == -1``; shape (n,)."""
        chosen = choice >= 0
        out = np.zeros(choice.shape[0], dtype=np.float64)
        rows = np.nonzero(chosen)[0]
        out[rows] = matrix[rows, choice[rows]]
        return out

    def exact_usage(self, choice: np.ndarray) -> list[Fraction]:
        """Left-hand side ``sum_u coef[u, choice_u]`` of every constraint, in exact arithmetic.

        In constraint order; computed from per-option exact sums of the chosen
        costs (and values, for the ROI floor), never from rounded partial sums.
        """
        rows = np.flatnonzero(choice >= 0)
        return self.exact_terms(rows, choice[rows])

    def exact_terms(
        self, users: np.ndarray, options: np.ndarray, sign: np.ndarray | None = None
    ) -> list[Fraction]:
        """Exact ``sum_i sign_i coef[users_i, options_i]`` of every constraint (options >= 0).

        ``sign`` (+1 / -1 per entry, default +1) lets a change of plan (new minus old
        choices) be summed exactly in one pass.
        """
        s = np.ones(users.size) if sign is None else sign
        spend = exact_sums(s * self.cost[users, options], options, self.n_options)
        value = Fraction(0)
        if any(c.value_weight for c in self.constraints):
            value = exact_sum(s * self.value[users, options])
        out = []
        for c in self.constraints:
            lhs = sum(
                (Fraction(w) * t for w, t in zip(c.cost_weight, spend, strict=True) if w),
                Fraction(0),
            )
            if c.value_weight:
                lhs += Fraction(c.value_weight) * value
            if c.user_weight is not None:
                lhs += exact_sum(s * c.user_weight[users])
            out.append(lhs)
        return out

    def usage(self, choice: np.ndarray) -> dict[str, float]:
        """Left-hand side ``sum_u coef[u, choice_u]`` of every constraint (exact, then rounded)."""
        return {
            c.name: float(u)
            for c, u in zip(self.constraints, self.exact_usage(choice), strict=True)
        }

    def violations(self, choice: np.ndarray) -> dict[str, float]:
        """Constraint name -> amount by which ``choice`` breaks it (only broken ones).

        Exact: a constraint is broken when its exact left-hand side exceeds its
        limit by any amount, with no tolerance; the excess is rounded up.
        """
        out = {}
        for c, lhs in zip(self.constraints, self.exact_usage(choice), strict=True):
            if lhs > Fraction(c.rhs):
                out[c.name] = round_up(lhs - Fraction(c.rhs))
        return out

    def check_choice(self, choice: np.ndarray) -> np.ndarray:
        """Validate a plan: (n,) ints in ``-1..K-1``."""
        ch = np.asarray(choice)
        if ch.shape != (self.n_users,):
            raise ValueError(f"choice has shape {ch.shape}, expected ({self.n_users},)")
        if ch.size and (ch.min() < -1 or ch.max() >= self.n_options):
            raise ValueError(f"choice entries must be in -1..{self.n_options - 1}")
        return ch.astype(np.int64)
