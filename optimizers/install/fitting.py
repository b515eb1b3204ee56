"""Fitting channel funnels from history: Hill curves by least squares, rates with Wilson intervals.

:func:`fit_channels` fits, for every channel of a history table (columns ``date,
channel_id, spend, installs, logins, retained``, one row per channel and day), a
Hill curve by bounded nonlinear least squares (:func:`fit_hill`) and the login
and retention rates as binomial ratios with Wilson intervals.  The curve
parameters' covariance drives the forecast intervals of
:meth:`optimizers.install.ChannelModels.forecast`.

Example
-------
>>> import numpy as np, pandas as pd
>>> from optimizers.install.curves import HillCurve
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
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from optimizers.install.curves import (
    ALPHA_MAX,
    ALPHA_MIN,
    METRICS,
    ChannelModel,
    ChannelModels,
    HillCurve,
)

HISTORY_COLUMNS: tuple[str, ...] = ("date", "channel_id", "spend", "installs", "logins", "retained")


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
    return HillFit(curve=curve, theta_cov=cov, rmse=math.sqrt(sigma2) * y_scale)


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
            rmse=fit.rmse,
            n_days=len(g),
        )
    return ChannelModels(out)
