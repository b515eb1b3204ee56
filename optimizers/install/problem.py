"""The install-control problem: the operator's limits and the validated data of one split.

Decision: daily spend ``s[c]`` per acquisition channel ``c``, with expected
installs ``f_c(s[c])`` on the channel's Hill curve and logins / retained users in
fixed proportion.  The operator's side constraints are one parameter object,
:class:`ChannelLimits` (named as in the models: ``min_spend[c]``, ``max_spend[c]``,
``cpi_cap[c]`` for spend <= cpi_max * installs, ``cpi_cap_total`` and
``target[metric]``); :func:`make_problem` resolves them against the channels
into an :class:`InstallProblem`, arrays in channel order.

Example
-------
>>> limits = ChannelLimits(min_spend={"a": 10.0}, cpi_max=3.0, targets={"retained": 5.0})
>>> limits.targets
{'retained': 5.0}
>>> ChannelLimits(min_spend={"a": 50.0}, max_spend={"a": 10.0})
Traceback (most recent call last):
...
ValueError: min_spend (50.0) exceeds max_spend (10.0) for channel 'a'
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Literal

import numpy as np

from optimizers.install.curves import METRICS, ChannelModels, HillCurve

Objective = Literal["installs", "logins", "retained", "spend"]
PerChannel = Mapping[Hashable, float] | float | None
SATURATION_SHARE = 0.99  # default spend cap: where a channel reaches 99% of vmax ...
SATURATION_K_CAP = 1000.0  # ... but at most 1000 * k


def _check_per_channel(name: str, value: PerChannel, *, positive: bool = False) -> PerChannel:
    """A scalar or per-channel mapping of non-negative (or positive) numbers; names the channel."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        items = [(f"channel {c!r}", v) for c, v in value.items()]
    else:
        items = [("every channel", value)]
    for where, v in items:
        v = float(v)
        if math.isnan(v) or v < 0 or (positive and v == 0):
            raise ValueError(f"{name} for {where} must be {'> 0' if positive else '>= 0'}, got {v}")
    return dict(value) if isinstance(value, Mapping) else float(value)


def _bound(value: PerChannel, channel: Hashable, default: float) -> float:
    """The bound ``value`` sets for ``channel`` (``default`` when it sets none)."""
    if value is None:
        return default
    if isinstance(value, Mapping):
        return float(value.get(channel, default))
    return float(value)


@dataclass(frozen=True)
class ChannelLimits:
    """The operator's side constraints on a budget split, validated once.

    ``min_spend``, ``max_spend``, ``cpi_max``: per channel (mapping channel ->
    value) or one value for every channel (scalar); ``None`` or a missing channel
    means no bound.  ``cpi_max_total`` caps total spend / total installs;
    ``targets`` asks for at least so many installs, logins or retained users.
    Raises ``ValueError`` naming the bound and channel at fault (negative or NaN
    values, a non-positive CPI cap, ``min_spend > max_spend``, an unknown metric).
    """

    min_spend: PerChannel = None
    max_spend: PerChannel = None
    cpi_max: PerChannel = None
    cpi_max_total: float | None = None
    targets: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: store the normalised values once
        put(self, "min_spend", _check_per_channel("min_spend", self.min_spend))
        put(self, "max_spend", _check_per_channel("max_spend", self.max_spend))
        put(self, "cpi_max", _check_per_channel("cpi_max", self.cpi_max, positive=True))
        named = {c for v in (self.min_spend, self.max_spend) if isinstance(v, Mapping) for c in v}
        cases = [(f"channel {c!r}", c) for c in sorted(named, key=repr)]
        for where, channel in [*cases, ("every other channel", None)]:
            lo = _bound(self.min_spend, channel, 0.0)
            hi = _bound(self.max_spend, channel, math.inf)
            if lo > hi:
                raise ValueError(f"min_spend ({lo}) exceeds max_spend ({hi}) for {where}")
        if self.cpi_max_total is not None and not (self.cpi_max_total > 0):
            raise ValueError(f"cpi_max_total must be > 0, got {self.cpi_max_total}")
        targets = dict(self.targets or {})
        for metric, value in targets.items():
            if metric not in METRICS:
                raise ValueError(f"unknown target metric {metric!r}; choose from {METRICS}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"target for {metric!r} must be finite and >= 0, got {value}")
        put(self, "targets", targets)

    def with_targets(self, targets: Mapping[str, float]) -> ChannelLimits:
        """The same bounds with other targets."""
        return replace(self, targets=dict(targets))

    def per_channel(self, name: str, channels: tuple[Hashable, ...]) -> np.ndarray:
        """Bound ``name`` (min_spend, max_spend or cpi_max) for each of ``channels``.

        Missing bounds are 0 (min_spend) or ``inf``; names channels it does not know.
        """
        value = getattr(self, name)
        default = 0.0 if name == "min_spend" else math.inf
        if isinstance(value, Mapping):
            unknown = [c for c in value if c not in set(channels)]
            if unknown:
                raise ValueError(
                    f"{name} names unknown channel(s) {unknown}; known: {channels[:20]}"
                )
        return np.array([_bound(value, c, default) for c in channels], dtype=float)


@dataclass(frozen=True)
class InstallProblem:
    """Validated data of one install-control problem, arrays in ``channels`` order.

    ``budget`` is ``None`` when spend is minimised (:func:`cheapest_budget`);
    ``hi`` is each channel's spend domain end (``min(max_spend, budget)`` or the
    saturation cap); ``cpi_max`` is ``inf`` where no cost-per-install cap applies.
    """

    channels: tuple[Hashable, ...]
    curves: tuple[HillCurve, ...]
    weights: Mapping[str, np.ndarray]  # metric -> units per install, (n_channels,)
    objective: Objective
    budget: float | None
    min_spend: np.ndarray
    max_spend: np.ndarray  # inf where uncapped
    hi: np.ndarray
    cpi_max: np.ndarray
    cpi_max_total: float | None
    targets: Mapping[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def sense(self) -> Literal["max", "min"]:
        """``'min'`` when spend is minimised, otherwise ``'max'``."""
        return "min" if self.objective == "spend" else "max"

    def with_targets(self, targets: Mapping[str, float]) -> InstallProblem:
        """The same problem with other operator targets."""
        return replace(self, targets=dict(targets))

    def without_budget(self) -> InstallProblem:
        """Spend minimisation with the same side constraints and no budget."""
        hi = np.array(
            [
                m if math.isfinite(m) else saturation_cap(c)
                for m, c in zip(self.max_spend, self.curves, strict=True)
            ]
        )
        return replace(self, objective="spend", budget=None, hi=hi)

    def funnel(self, spend: np.ndarray) -> dict[str, np.ndarray]:
        """Installs, logins and retained users per channel of ``spend`` on the true curves."""
        installs = np.array([c(x) for c, x in zip(self.curves, spend, strict=True)], dtype=float)
        return {k: installs * self.weights[k] for k in METRICS}

    def broken_constraint(self, spend: np.ndarray) -> str:
        """Names a constraint ``spend`` breaks on the true curves, or ''.

        Exact: every sum and product is a ``Fraction`` and every limit is the posed one,
        with no tolerance (the curves themselves are evaluated in floating point, and a
        metric is its channels' float weights times their float curve values).
        """
        s = np.asarray(spend, dtype=float)
        if s.shape != (self.n,) or not np.all(np.isfinite(s)):
            return "spend (not a finite split over the channels)"
        for name, bad in (("min_spend", s < self.min_spend), ("max_spend", s > self.hi)):
            if bad.any():
                return f"{name}[{self.channels[int(np.argmax(bad))]}]"
        f = self.funnel(s)
        paid = sum(map(Fraction, s.tolist()), Fraction(0))
        if self.budget is not None and paid > Fraction(self.budget):
            return "budget"
        for k, v in self.targets.items():
            if exact_dot(self.weights[k], f["installs"]) < Fraction(v):
                return f"target[{k}]"
        for c in np.flatnonzero(np.isfinite(self.cpi_max)):
            if cpi_room(float(self.cpi_max[c]), float(f["installs"][c]), float(s[c])) < 0:
                return f"cpi_cap[{self.channels[int(c)]}]"
        cpi_t = self.cpi_max_total
        if cpi_t is not None and paid > Fraction(cpi_t) * exact_sum(f["installs"]):
            return "cpi_cap_total"
        return ""

    def within_bounds(self, spend: np.ndarray) -> np.ndarray:
        """``spend`` clipped to each channel's spend bounds and, if it overspends, its spend
        above the minimums scaled down until the compensated sum is at most the budget
        (a solver's last digits); left as it is when the minimums alone overspend."""
        s = np.clip(np.asarray(spend, dtype=float), self.min_spend, self.hi)
        if self.budget is None or exact_sum(s) <= Fraction(self.budget):
            return s
        lo = self.min_spend
        room, extra = self.budget - math.fsum(lo), math.fsum(s - lo)
        if room < 0 or extra <= 0:
            return s
        s = lo + (s - lo) * (room / extra)
        for _ in range(64):  # a few float steps at most
            if exact_sum(s) <= Fraction(self.budget):
                break
            s = np.maximum(np.nextafter(s, 0.0), lo)
        return s


def saturation_cap(curve: HillCurve) -> float:
    """Spend where ``curve`` reaches 99% of ``vmax`` (at most ``1000 * k``)."""
    return min(curve.spend_at_share(SATURATION_SHARE), SATURATION_K_CAP * curve.k)


def make_problem(
    models: ChannelModels,
    budget: float | None,
    *,
    objective: Objective = "retained",
    limits: ChannelLimits | None = None,
) -> InstallProblem:
    """Resolve the operator's ``limits`` against the channels into an :class:`InstallProblem`.

    Raises ``ValueError`` naming the fault: negative budget, unknown objective,
    a bound on an unknown channel (bad values are refused by :class:`ChannelLimits`).
    """
    if not isinstance(models, ChannelModels):
        raise TypeError(f"models must be ChannelModels, got {type(models).__name__}")
    if objective not in (*METRICS, "spend"):
        raise ValueError(f"objective must be one of {(*METRICS, 'spend')}, got {objective!r}")
    if budget is not None and (not math.isfinite(budget) or budget < 0):
        raise ValueError(f"budget must be a finite number >= 0, got {budget}")
    if budget is None and objective != "spend":
        raise ValueError("a budget is required unless spend itself is minimised")
    lim = limits or ChannelLimits()
    channels = models.channels
    lo = lim.per_channel("min_spend", channels)
    mx = lim.per_channel("max_spend", channels)
    cpi = lim.per_channel("cpi_max", channels)
    curves = tuple(models[c].curve for c in channels)
    if budget is not None:
        hi = np.minimum(mx, budget)
    else:
        hi = np.array(
            [
                m if math.isfinite(m) else saturation_cap(cv)
                for m, cv in zip(mx, curves, strict=True)
            ]
        )
    return InstallProblem(
        channels=channels,
        curves=curves,
        weights={m: models.weights(m) for m in METRICS},
        objective=objective,
        budget=None if budget is None else float(budget),
        min_spend=lo,
        max_spend=mx,
        hi=hi,
        cpi_max=cpi,
        cpi_max_total=lim.cpi_max_total,
        targets=dict(lim.targets),
    )


def exact_sum(values: np.ndarray) -> Fraction:
    """The exact sum of float ``values``."""
    return sum(map(Fraction, np.asarray(values, dtype=float).tolist()), Fraction(0))


def exact_dot(weights: np.ndarray, values: np.ndarray) -> Fraction:
    """The exact ``sum_c weights[c] * values[c]`` of floats."""
    pairs = zip(
        np.asarray(weights, float).tolist(), np.asarray(values, float).tolist(), strict=True
    )
    return sum((Fraction(w) * Fraction(v) for w, v in pairs), Fraction(0))


def cpi_room(cpi: float, installs: float, spend: float) -> Fraction:
    """``cpi * installs - spend`` in exact arithmetic: a CPI cap holds when it is >= 0."""
    return Fraction(cpi) * Fraction(installs) - Fraction(spend)
