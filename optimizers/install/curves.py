"""Hill response curves per acquisition channel, and forecasts of a budget split.

A channel turns daily spend ``s`` into expected installs through a Hill curve

    installs(s) = vmax * s**alpha / (s**alpha + k**alpha),   alpha in [0.3, 4]

(``vmax``: saturation level in installs/day, ``k``: spend at half saturation,
``alpha``: shape; concave for ``alpha <= 1``, S-shaped for ``alpha > 1``).  Installs
turn into logins at a per-channel ``login_rate`` and logins into next-day retained
users at a ``retention_rate``.  :class:`ChannelModels` holds every channel's curve
and rates (fitted by :func:`optimizers.install.fitting.fit_channels` or given) and
forecasts a split with intervals from the fit's uncertainty.

Example
-------
>>> curve = HillCurve(vmax=500.0, k=800.0, alpha=1.8)
>>> float(curve(800.0))
250.0
>>> round(curve.spend_at_share(0.5), 6)
800.0
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

ALPHA_MIN = 0.3
ALPHA_MAX = 4.0
METRICS: tuple[str, ...] = ("installs", "logins", "retained")


# --------------------------------------------------------------------------- curve
@dataclass(frozen=True)
class HillCurve:
    """Expected installs per day as a function of daily spend (see module docstring).

    ``vmax`` > 0 (installs/day), ``k`` > 0 (spend units), ``alpha`` in [0.3, 4].
    """

    vmax: float
    k: float
    alpha: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.vmax) and self.vmax > 0):
            raise ValueError(f"HillCurve.vmax must be a positive number, got {self.vmax}")
        if not (math.isfinite(self.k) and self.k > 0):
            raise ValueError(f"HillCurve.k must be a positive number, got {self.k}")
        if not ALPHA_MIN - 1e-9 <= self.alpha <= ALPHA_MAX + 1e-9:
            raise ValueError(
                f"HillCurve.alpha must lie in [{ALPHA_MIN}, {ALPHA_MAX}], got {self.alpha}"
            )

    def __call__(self, spend: np.ndarray | float) -> np.ndarray:
        """Expected installs at ``spend`` (array-like, >= 0)."""
        u = np.power(np.maximum(np.asarray(spend, dtype=float), 0.0) / self.k, self.alpha)
        return self.vmax * u / (1.0 + u)

    def derivative(self, spend: np.ndarray | float) -> np.ndarray:
        """Marginal installs per unit of spend, ``d installs / d spend`` (``inf`` at 0 if alpha < 1)."""
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        u = np.power(s / self.k, self.alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = self.vmax * self.alpha * u / (s * (1.0 + u) ** 2)
        if self.alpha > 1.0:
            at_zero = 0.0
        elif self.alpha == 1.0:
            at_zero = self.vmax / self.k
        else:
            at_zero = math.inf
        return np.where(s > 0, d, at_zero)

    def second_derivative(self, spend: np.ndarray | float) -> np.ndarray:
        """Curvature ``d2 installs / d spend2`` (negative where the curve is concave)."""
        s = np.maximum(np.asarray(spend, dtype=float), 1e-300)
        u = np.power(s / self.k, self.alpha)
        a = self.alpha
        return self.vmax * a * u * ((a - 1.0) - (a + 1.0) * u) / (s**2 * (1.0 + u) ** 3)

    def spend_at_share(self, share: float) -> float:
        """Spend where the curve reaches ``share`` of ``vmax`` (share in [0, 1); the inverse curve)."""
        if not 0.0 <= share < 1.0:
            raise ValueError(f"share must lie in [0, 1), got {share}")
        r = share / (1.0 - share)
        return float(self.k * r ** (1.0 / self.alpha))

    @property
    def is_concave(self) -> bool:
        """True when the curve is concave on all of ``[0, inf)`` (``alpha <= 1``)."""
        return self.alpha <= 1.0

    @property
    def inflection(self) -> float:
        """Spend where an S-shaped curve turns from convex to concave (0 when concave)."""
        if self.is_concave:
            return 0.0
        a = self.alpha
        return float(self.k * ((a - 1.0) / (a + 1.0)) ** (1.0 / a))


@dataclass(frozen=True)
class HillArrays:
    """Hill curves of all channels as arrays: ``f(s) = vmax u / (1 + u)``, ``u = (s / k)**alpha``."""

    vmax: np.ndarray
    k: np.ndarray
    alpha: np.ndarray

    @classmethod
    def of(cls, curves: tuple[HillCurve, ...]) -> HillArrays:
        """The arrays of ``curves``."""
        return cls(
            np.array([c.vmax for c in curves], dtype=float),
            np.array([c.k for c in curves], dtype=float),
            np.array([c.alpha for c in curves], dtype=float),
        )

    @property
    def inflection(self) -> np.ndarray:
        """Spend where an S-shaped curve turns concave (0 for concave curves)."""
        a = self.alpha
        ratio = np.where(a > 1.0, (a - 1.0) / (a + 1.0), 0.0)
        return self.k * np.power(ratio, 1.0 / a)

    def value(self, s: np.ndarray) -> np.ndarray:
        """Installs ``f(s)`` per channel."""
        u = np.power(np.maximum(s, 0.0) / self.k, self.alpha)
        return self.vmax * u / (1.0 + u)

    def slope(self, s: np.ndarray) -> np.ndarray:
        """``f'(s)`` per channel (``s > 0``)."""
        s = np.maximum(s, 1e-300)
        u = np.power(s / self.k, self.alpha)
        return self.vmax * self.alpha * u / (s * (1.0 + u) ** 2)

    def curvature(self, s: np.ndarray) -> np.ndarray:
        """``f''(s)`` per channel (``s > 0``; negative on the concave side)."""
        s = np.maximum(s, 1e-300)
        u = np.power(s / self.k, self.alpha)
        a = self.alpha
        return self.vmax * a * u * ((a - 1.0) - (a + 1.0) * u) / (s**2 * (1.0 + u) ** 3)

    def slope_root(self, r: np.ndarray) -> np.ndarray:
        """Spend on the concave side where ``f'(s) = r`` (the inflection when ``r`` is higher).

        In ``z = log u``, ``log f'`` is ``c + (1 - 1/alpha) z - 2 log(1 + e^z)``: concave and
        decreasing beyond the inflection, so Newton's method started right of the root
        converges monotonically (only the channels still moving are iterated).
        ``r <= 0`` gives ``inf``.
        """
        a, c = self.alpha, np.log(self.vmax * self.alpha / self.k)
        with np.errstate(divide="ignore"):
            t = np.log(np.maximum(r, 0.0))
            z0 = np.where(a > 1.0, np.log(np.where(a > 1.0, (a - 1.0) / (a + 1.0), 1.0)), -np.inf)
        top = np.where(a > 1.0, _log_slope(np.where(a > 1.0, z0, 0.0), a, c), np.inf)
        top = np.where(a == 1.0, c, top)  # alpha = 1: f'(0) = vmax / k is the supremum
        has_root = (t < top) & np.isfinite(t)
        z = np.maximum(z0, (c - np.where(has_root, t, 0.0)) / (1.0 + 1.0 / a))
        moving = np.flatnonzero(has_root)
        for _ in range(60):
            if moving.size == 0:
                break
            zm, am = z[moving], a[moving]
            with np.errstate(divide="ignore", invalid="ignore"):
                step = (_log_slope(zm, am, c[moving]) - t[moving]) / (
                    (1.0 - 1.0 / am) - 2.0 * special.expit(zm)
                )
            step = np.where(np.isfinite(step), step, 0.0)  # at the inflection: a double root
            z[moving] = np.maximum(zm - step, z0[moving])
            moving = moving[np.abs(step) > 1e-14 * (1.0 + np.abs(zm))]
        s = np.where(has_root, self.k * np.exp(z / a), self.inflection)
        return np.where(r <= 0.0, np.inf, s)


def _log_slope(z: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``log f'`` at ``u = e^z`` for curves of shape ``a`` and ``c = log(vmax a / k)``."""
    return c + (1.0 - 1.0 / a) * z - 2.0 * np.logaddexp(0.0, z)


# --------------------------------------------------------------------------- channel models
@dataclass(frozen=True)
class ChannelModel:
    """Everything known about one channel's funnel: curve, rates and their uncertainty.

    ``theta_cov`` is the covariance of ``(log vmax, log k, alpha)`` (zeros when the
    curve was given rather than fitted); ``logins_obs/installs_obs`` and
    ``retained_obs/logins_obs`` are the counts behind the two rates (their Beta
    posteriors drive the forecast intervals).
    """

    channel_id: Hashable
    curve: HillCurve
    login_rate: float
    retention_rate: float
    theta_cov: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    installs_obs: float = 0.0
    logins_obs: float = 0.0
    retained_obs: float = 0.0
    login_interval: tuple[float, float] = (math.nan, math.nan)
    retention_interval: tuple[float, float] = (math.nan, math.nan)
    rmse: float = math.nan
    n_days: int = 0

    def __post_init__(self) -> None:
        for name in ("login_rate", "retention_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"channel {self.channel_id!r}: {name} must lie in [0, 1], got {v}")

    @property
    def retained_per_install(self) -> float:
        """Next-day retained users per install (``login_rate * retention_rate``)."""
        return self.login_rate * self.retention_rate

    def weight(self, metric: str) -> float:
        """Units of ``metric`` (installs, logins or retained) per install."""
        if metric == "installs":
            return 1.0
        if metric == "logins":
            return self.login_rate
        if metric == "retained":
            return self.retained_per_install
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")


class ChannelModels(Mapping[Hashable, ChannelModel]):
    """Read-only mapping ``channel_id -> ChannelModel`` with forecasting.

    Build it with :func:`fit_channels` or directly from curves with
    :meth:`from_curves` (for simulations and tests).
    """

    def __init__(self, models: Mapping[Hashable, ChannelModel]) -> None:
        if not models:
            raise ValueError("ChannelModels needs at least one channel")
        self._models = dict(models)

    @classmethod
    def from_curves(
        cls,
        curves: Mapping[Hashable, HillCurve],
        login_rate: Mapping[Hashable, float] | float = 1.0,
        retention_rate: Mapping[Hashable, float] | float = 1.0,
    ) -> ChannelModels:
        """Models with known curves and rates (no uncertainty)."""

        def pick(v: Mapping[Hashable, float] | float, c: Hashable) -> float:
            return float(v[c]) if isinstance(v, Mapping) else float(v)

        return cls(
            {
                c: ChannelModel(
                    channel_id=c,
                    curve=cur,
                    login_rate=pick(login_rate, c),
                    retention_rate=pick(retention_rate, c),
                )
                for c, cur in curves.items()
            }
        )

    def __getitem__(self, channel: Hashable) -> ChannelModel:
        try:
            return self._models[channel]
        except KeyError:
            raise KeyError(
                f"unknown channel {channel!r}; known channels: {list(self._models)[:20]}"
            ) from None

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    @property
    def channels(self) -> tuple[Hashable, ...]:
        """Channel ids in a fixed order."""
        return tuple(self._models)

    def weights(self, metric: str) -> np.ndarray:
        """Units of ``metric`` per install for every channel, shape ``(n_channels,)``."""
        return np.array([m.weight(metric) for m in self._models.values()])

    def to_frame(self) -> pd.DataFrame:
        """One row per channel: curve parameters, rates and their intervals."""
        rows = []
        for c, m in self._models.items():
            rows.append(
                {
                    "channel_id": c,
                    "vmax": m.curve.vmax,
                    "k": m.curve.k,
                    "alpha": m.curve.alpha,
                    "shape": "concave" if m.curve.is_concave else "s_shaped",
                    "login_rate": m.login_rate,
                    "login_lo": m.login_interval[0],
                    "login_hi": m.login_interval[1],
                    "retention_rate": m.retention_rate,
                    "retention_lo": m.retention_interval[0],
                    "retention_hi": m.retention_interval[1],
                    "rmse": m.rmse,
                    "n_days": m.n_days,
                }
            )
        return pd.DataFrame(rows).set_index("channel_id")

    def check_spend(self, spend: Mapping[Hashable, float]) -> np.ndarray:
        """A spend mapping as an array in :attr:`channels` order (missing channels spend 0).

        Raises ``ValueError`` naming an unknown channel or a negative / non-finite spend.
        """
        unknown = [c for c in spend if c not in self._models]
        if unknown:
            raise ValueError(f"spend names unknown channel(s) {unknown}; known: {self.channels}")
        out = np.zeros(len(self))
        for i, c in enumerate(self.channels):
            v = float(spend.get(c, 0.0))
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"spend for channel {c!r} must be finite and >= 0, got {v}")
            out[i] = v
        return out

    def expected(self, spend: np.ndarray) -> dict[str, np.ndarray]:
        """Point forecasts per channel for a spend array in :attr:`channels` order."""
        installs = np.array(
            [m.curve(x) for m, x in zip(self._models.values(), spend, strict=True)], dtype=float
        )
        logins = installs * self.weights("logins")
        retained = installs * self.weights("retained")
        return {"installs": installs, "logins": logins, "retained": retained}

    def forecast(
        self,
        spend: Mapping[Hashable, float],
        *,
        level: float = 0.9,
        n_samples: int = 2000,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Expected installs, logins and next-day retained users for a daily budget split.

        Returns one row per channel plus a ``'total'`` row, with the point forecast
        and a ``level`` interval (``*_lo``, ``*_hi``) on the *expected* value.  The
        intervals come from ``n_samples`` seeded Monte Carlo draws of the curve
        parameters (normal with the fit covariance, alpha clipped to its range) and
        of the two rates (Jeffreys Beta posteriors); channels are independent.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {level}")
        if n_samples < 10:
            raise ValueError(f"n_samples must be >= 10, got {n_samples}")
        x = self.check_spend(spend)
        rng = np.random.default_rng(seed)
        point = self.expected(x)
        samples = {m: np.zeros((len(self), n_samples)) for m in METRICS}
        for i, m in enumerate(self._models.values()):
            c = m.curve
            theta = np.array([math.log(c.vmax), math.log(c.k), c.alpha])
            draws = rng.multivariate_normal(theta, m.theta_cov, size=n_samples, method="eigh")
            a = np.clip(draws[:, 2], ALPHA_MIN, ALPHA_MAX)
            u = np.power(x[i] / np.exp(draws[:, 1]), a)
            inst = np.exp(draws[:, 0]) * u / (1.0 + u)
            lr = _rate_draws(rng, m.logins_obs, m.installs_obs, m.login_rate, n_samples)
            rr = _rate_draws(rng, m.retained_obs, m.logins_obs, m.retention_rate, n_samples)
            samples["installs"][i] = inst
            samples["logins"][i] = inst * lr
            samples["retained"][i] = inst * lr * rr
        q = (0.5 - level / 2.0, 0.5 + level / 2.0)
        frame: dict[str, np.ndarray] = {"spend": np.append(x, x.sum())}
        for metric in METRICS:
            draws = np.vstack([samples[metric], samples[metric].sum(axis=0, keepdims=True)])
            frame[metric] = np.append(point[metric], point[metric].sum())
            frame[f"{metric}_lo"] = np.quantile(draws, q[0], axis=1)
            frame[f"{metric}_hi"] = np.quantile(draws, q[1], axis=1)
        index = pd.Index([*self.channels, "total"], name="channel_id", dtype=object)
        return pd.DataFrame(frame, index=index)


def _rate_draws(
    rng: np.random.Generator, successes: float, trials: float, rate: float, n: int
) -> np.ndarray:
    """Jeffreys-posterior draws of a rate, or the fixed ``rate`` when no counts are known."""
    if trials <= 0:
        return np.full(n, rate)
    return rng.beta(successes + 0.5, trials - successes + 0.5, size=n)
