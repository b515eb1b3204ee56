"""Hill response curves per acquisition channel: fitting, uncertainty and forecasts.

A channel turns daily spend ``s`` into expected installs through a Hill curve

    installs(s) = vmax * s**alpha / (s**alpha + k**alpha),   alpha in [0.3, 4]

(``vmax``: saturation level in installs/day, ``k``: spend at half saturation,
``alpha``: shape; concave for ``alpha <= 1``, S-shaped for ``alpha > 1``).  Installs
turn into logins at a per-channel ``login_rate`` and logins into next-day retained
users at a ``retention_rate``; both are binomial ratios with Wilson intervals.

:func:`fit_channels` fits all three from a channel history table (columns ``date,
channel_id, spend, installs, logins, retained``, one row per channel and day) with
bounded nonlinear least squares; the parameter covariance drives the forecast
intervals of :meth:`ChannelModels.forecast`.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> spend = rng.uniform(0, 2000, 120)
>>> curve = HillCurve(vmax=500.0, k=800.0, alpha=1.8)
>>> inst = rng.poisson(curve(spend))
>>> logins = rng.binomial(inst, 0.6)
>>> hist = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=120),
...     "channel_id": 1, "spend": spend, "installs": inst, "logins": logins,
...     "retained": rng.binomial(logins, 0.4)})
>>> models = fit_channels(hist)
>>> abs(models[1].curve.alpha - 1.8) < 0.3
True
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

ALPHA_MIN = 0.3
ALPHA_MAX = 4.0
HISTORY_COLUMNS: tuple[str, ...] = ("date", "channel_id", "spend", "installs", "logins", "retained")
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

    def inverse(self, installs: np.ndarray | float) -> np.ndarray:
        """Spend needed for ``installs`` expected installs (``inf`` at or above ``vmax``)."""
        y = np.asarray(installs, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(y < self.vmax, y / (self.vmax - y), np.inf)
        return self.k * np.power(np.maximum(r, 0.0), 1.0 / self.alpha)

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


# --------------------------------------------------------------------------- rates
def wilson_interval(successes: float, trials: float, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Returns ``(0, 1)`` when ``trials == 0`` (nothing is known).
    """
    if trials <= 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_channels`.

    ``min_days``: fewest days with positive spend a channel needs;
    ``loss``: ``scipy.optimize.least_squares`` loss (``'linear'`` gives the textbook
    covariance, ``'soft_l1'`` resists outlier days);
    ``level``: coverage of the reported rate intervals.
    """

    min_days: int = 5
    loss: str = "linear"
    level: float = 0.9

    def __post_init__(self) -> None:
        if self.min_days < 4:
            raise ValueError(f"FitConfig.min_days must be >= 4 (3 parameters), got {self.min_days}")
        if self.loss not in ("linear", "soft_l1", "huber", "cauchy"):
            raise ValueError(f"FitConfig.loss must be a least_squares loss, got {self.loss!r}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"FitConfig.level must lie in (0, 1), got {self.level}")


@dataclass(frozen=True)
class HillFit:
    """A fitted Hill curve with the covariance of ``theta = (log vmax, log k, alpha)``."""

    curve: HillCurve
    theta_cov: np.ndarray  # (3, 3)
    rmse: float
    n_obs: int


def _hill_residuals(theta: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    vmax, k, a = math.exp(theta[0]), math.exp(theta[1]), theta[2]
    u = np.power(s / k, a)
    return vmax * u / (1.0 + u) - y


def _hill_jacobian(theta: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    vmax, k, a = math.exp(theta[0]), math.exp(theta[1]), theta[2]
    r = s / k
    u = np.power(r, a)
    g = u / (1.0 + u)
    dg_du = 1.0 / (1.0 + u) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.where(r > 0, np.log(np.where(r > 0, r, 1.0)), 0.0)
    jac = np.empty((s.size, 3))
    jac[:, 0] = vmax * g  # d/d log vmax
    jac[:, 1] = -vmax * dg_du * u * a  # d/d log k  (du/dlogk = -a u)
    jac[:, 2] = vmax * dg_du * u * log_r  # d/d alpha (du/da = u log r; 0 at s = 0)
    return jac


def fit_hill(spend: np.ndarray, installs: np.ndarray, *, loss: str = "linear") -> HillFit:
    """Fit a Hill curve to daily ``(spend, installs)`` pairs by bounded least squares.

    Works in scaled units (spend / max spend, installs / max installs) so the
    starting points and bounds are scale free.  A coarse grid over ``(k, alpha)``
    with ``vmax`` solved in closed form picks three starting points; the best
    ``least_squares`` (trust-region reflective) run wins.  Zero-spend days are
    valid data (the curve passes through the origin).
    """
    s = np.asarray(spend, dtype=float)
    y = np.asarray(installs, dtype=float)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("spend and installs must be 1-D arrays of equal length")
    s_scale = float(s.max())
    y_scale = float(y.max())
    if s_scale <= 0 or y_scale <= 0:
        raise ValueError("cannot fit a response curve without positive spend and installs")
    sn, yn = s / s_scale, y / y_scale

    # Coarse grid: for fixed (k, alpha) the best vmax is linear least squares.
    ks = np.geomspace(0.02, 20.0, 16)
    alphas = np.linspace(ALPHA_MIN, ALPHA_MAX, 12)
    starts: list[tuple[float, np.ndarray]] = []
    for k in ks:
        for a in alphas:
            u = np.power(sn / k, a)
            g = u / (1.0 + u)
            gg = float(g @ g)
            if gg <= 0:
                continue
            vmax = min(max(float(g @ yn) / gg, 1e-3), 1e3)
            sse = float(np.sum((vmax * g - yn) ** 2))
            starts.append((sse, np.array([math.log(vmax), math.log(k), a])))
    starts.sort(key=lambda t: t[0])

    lower = np.array([math.log(1e-3), math.log(1e-3), ALPHA_MIN])
    upper = np.array([math.log(1e3), math.log(1e2), ALPHA_MAX])
    best = None
    for _, theta0 in starts[:3]:
        res = optimize.least_squares(
            _hill_residuals,
            np.clip(theta0, lower + 1e-9, upper - 1e-9),
            jac=_hill_jacobian,
            bounds=(lower, upper),
            args=(sn, yn),
            loss=loss,
            method="trf",
        )
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None  # the grid always yields starts when max(spend) > 0

    n = s.size
    resid = _hill_residuals(best.x, sn, yn)
    dof = max(n - 3, 1)
    sigma2 = float(resid @ resid) / dof
    jac = _hill_jacobian(best.x, sn, yn)
    cov = np.linalg.pinv(jac.T @ jac) * sigma2  # log shifts leave the covariance unchanged
    theta = best.x + np.array([math.log(y_scale), math.log(s_scale), 0.0])
    curve = HillCurve(vmax=math.exp(theta[0]), k=math.exp(theta[1]), alpha=float(theta[2]))
    return HillFit(curve=curve, theta_cov=cov, rmse=math.sqrt(sigma2) * y_scale, n_obs=n)


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
    max_spend_seen: float = math.nan
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

    def summary(self) -> pd.DataFrame:
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


def _check_history(history: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(history, pd.DataFrame):
        raise TypeError(f"history must be a pandas DataFrame, got {type(history).__name__}")
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(
            f"channel history is missing column(s) {missing}; expected {list(HISTORY_COLUMNS)}"
        )
    if history.empty:
        raise ValueError("channel history is empty")
    for col in ("spend", "installs", "logins", "retained"):
        values = pd.to_numeric(history[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float)) | (values.to_numpy(dtype=float) < 0)
        if bad.any():
            row = history.index[np.flatnonzero(bad)[0]]
            raise ValueError(
                f"channel history column {col!r} must be finite and >= 0; row {row!r} "
                f"has {history.loc[row, col]!r}"
            )
    for hi_col, lo_col in (("installs", "logins"), ("logins", "retained")):
        bad = history[lo_col].to_numpy() > history[hi_col].to_numpy()
        if bad.any():
            row = history.index[np.flatnonzero(bad)[0]]
            raise ValueError(
                f"channel history row {row!r}: {lo_col} ({history.loc[row, lo_col]}) exceeds "
                f"{hi_col} ({history.loc[row, hi_col]}); the funnel must narrow"
            )
    return history


def fit_channels(history: pd.DataFrame, config: FitConfig | None = None) -> ChannelModels:
    """Fit a Hill curve, login rate and retention rate for every channel in ``history``.

    ``history`` has the columns ``date, channel_id, spend, installs, logins,
    retained`` (one row per channel and day, e.g. the ``channel_history`` table).
    Raises ``ValueError`` naming a missing column, a bad row, or a channel with too
    few days of positive spend to fit.
    """
    cfg = config or FitConfig()
    hist = _check_history(history)
    out: dict[Hashable, ChannelModel] = {}
    for channel, g in hist.groupby("channel_id", sort=True):
        s = g["spend"].to_numpy(dtype=float)
        y = g["installs"].to_numpy(dtype=float)
        n_pos = int(np.count_nonzero(s > 0))
        if n_pos < cfg.min_days or np.unique(s[s > 0]).size < 3:
            raise ValueError(
                f"channel {channel!r} has {n_pos} day(s) with positive spend "
                f"(need >= {cfg.min_days} with >= 3 distinct levels) to fit a response curve"
            )
        if y.max() <= 0:
            raise ValueError(f"channel {channel!r} has no installs in its history; cannot fit")
        fit = fit_hill(s, y, loss=cfg.loss)
        n_inst, n_log, n_ret = (float(g[c].sum()) for c in METRICS)
        out[channel] = ChannelModel(
            channel_id=channel,
            curve=fit.curve,
            theta_cov=fit.theta_cov,
            login_rate=n_log / n_inst if n_inst > 0 else 0.0,
            retention_rate=n_ret / n_log if n_log > 0 else 0.0,
            installs_obs=n_inst,
            logins_obs=n_log,
            retained_obs=n_ret,
            login_interval=wilson_interval(n_log, n_inst, cfg.level),
            retention_interval=wilson_interval(n_ret, n_log, cfg.level),
            max_spend_seen=float(s.max()),
            rmse=fit.rmse,
            n_days=len(g),
        )
    return ChannelModels(out)
