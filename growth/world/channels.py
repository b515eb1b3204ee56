"""Acquisition channels: Hill install curves and the daily funnel history.

Channel c buys ``installs_c(s) = vmax_c * s**alpha_c / (s**alpha_c + k_c**alpha_c)``
installs per day for daily spend ``s``: concave for ``alpha`` in [0.6, 1], S-shaped
(convex below the inflection, then saturating) for ``alpha`` in (1.5, 3].  Then
``logins ~ Binomial(installs, login_rate)`` and ``retained ~ Binomial(logins,
retention)`` (active the day after install).

History: each channel's daily spend varies around a base level (a fraction of its
half-saturation spend ``k``) with log-normal noise and a weekly cycle; installs
~ Poisson(curve(spend) * mean-one log-normal noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from growth.world.config import WorldConfig

CHANNEL_KINDS: tuple[str, ...] = ("app_store", "ad_network", "device_maker")
INSTALL_NOISE_SIGMA = 0.15
SPEND_NOISE_SIGMA = 0.35


@dataclass(frozen=True)
class ChannelTruth:
    """True per-channel parameters; arrays are (C,) in channels-table order."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    vmax: np.ndarray  # installs/day at saturation
    k: np.ndarray  # spend/day giving vmax / 2
    alpha: np.ndarray  # Hill exponent (> 1: S-shaped)
    login_rate: np.ndarray  # P(login | install)
    retention: np.ndarray  # P(active next day | login)
    base_spend: np.ndarray  # typical historical daily spend

    @property
    def n_channels(self) -> int:
        return int(self.vmax.shape[0])

    @property
    def s_shaped(self) -> np.ndarray:
        """(C,) bool: channels whose curve is convex at low spend."""
        return self.alpha > 1.0

    def _check_spend(self, spend: np.ndarray) -> np.ndarray:
        spend = np.asarray(spend, dtype=np.float64)
        if spend.shape[-1:] != (self.n_channels,):
            raise ValueError(
                f"spend must have a last axis of length {self.n_channels} (one per channel), "
                f"got shape {spend.shape}"
            )
        if np.any(spend < 0) or not np.all(np.isfinite(spend)):
            raise ValueError("spend must be finite and non-negative for every channel")
        return spend

    def installs(self, spend: np.ndarray) -> np.ndarray:
        """Expected installs per day for spend (..., C)."""
        s = self._check_spend(spend)
        sa = s**self.alpha
        return self.vmax * sa / (sa + self.k**self.alpha)

    def expected(self, spend: np.ndarray) -> dict[str, np.ndarray]:
        """Expected daily ``installs``, ``logins`` and ``retained`` for spend (..., C)."""
        installs = self.installs(spend)
        logins = installs * self.login_rate
        return {"installs": installs, "logins": logins, "retained": logins * self.retention}

    def table(self) -> pd.DataFrame:
        """The ``channels`` table."""
        return pd.DataFrame(
            {
                "channel_id": np.arange(self.n_channels, dtype=np.int64),
                "name": np.array(self.names, dtype=object),
                "kind": np.array(self.kinds, dtype=object),
            }
        )


def sample_channels(cfg: WorldConfig, rng: np.random.Generator) -> ChannelTruth:
    """Draw every channel's curve and funnel rates."""
    c = cfg.n_channels
    kind_idx = np.arange(c) % len(CHANNEL_KINDS)
    kinds = tuple(CHANNEL_KINDS[i] for i in kind_idx)
    names = tuple(f"{kinds[i]}_{i}" for i in range(c))
    n_s = round(cfg.s_shaped_share * c)
    s_shaped = np.zeros(c, dtype=bool)
    s_shaped[rng.permutation(c)[:n_s]] = True
    alpha = np.where(s_shaped, rng.uniform(1.6, 3.0, size=c), rng.uniform(0.6, 1.0, size=c))
    k = np.round(np.exp(rng.normal(np.log(5_000.0), 0.5, size=c)), 0)
    return ChannelTruth(
        names=names,
        kinds=kinds,
        vmax=np.round(np.exp(rng.normal(np.log(800.0), 0.5, size=c)), 1),
        k=k,
        alpha=alpha,
        login_rate=rng.uniform(0.55, 0.9, size=c),
        retention=rng.uniform(0.25, 0.6, size=c),
        base_spend=k * rng.uniform(0.4, 1.6, size=c),
    )


def sample_channel_history(
    cfg: WorldConfig, truth: ChannelTruth, rng: np.random.Generator
) -> pd.DataFrame:
    """``history_days`` x channels rows of spend, installs, logins, retained."""
    days, c = cfg.history_days, truth.n_channels
    weekly = 1.0 + 0.1 * np.sin(2 * np.pi * np.arange(days) / 7.0)[:, None]
    spend = np.round(
        truth.base_spend * weekly * np.exp(rng.normal(0.0, SPEND_NOISE_SIGMA, size=(days, c))), 2
    )
    noise = np.exp(rng.normal(-0.5 * INSTALL_NOISE_SIGMA**2, INSTALL_NOISE_SIGMA, size=(days, c)))
    installs = rng.poisson(truth.installs(spend) * noise)
    logins = rng.binomial(installs, truth.login_rate)
    retained = rng.binomial(logins, truth.retention)
    first = np.datetime64(cfg.end_date, "D") - np.timedelta64(days - 1, "D")
    dates = (first + np.arange(days).astype("timedelta64[D]")).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "date": np.repeat(dates, c),
            "channel_id": np.tile(np.arange(c, dtype=np.int64), days),
            "spend": spend.ravel(),
            "installs": installs.ravel().astype(np.int64),
            "logins": logins.ravel().astype(np.int64),
            "retained": retained.ravel().astype(np.int64),
        }
    )
