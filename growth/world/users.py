"""Users: hidden state, demographics and the features each domain observes.

Hidden state per user: a taste vector (``taste_dim``), wealth, activity level,
price sensitivity, a basket multiplier (how many list prices a typical order is
worth) and an hourly activity profile (24 probabilities).  Demographics nudge
taste and wealth, so they carry a little information too.

Both domains observe the same hidden state through different noisy lenses:

* source (payments app, present when ``has_source``): offline category shares
  via a projection of taste *unrelated* to the shop's categories, spend level,
  payment frequency, investment ability, member tier and coupon-use rate;
* target (shop): purchase power, interest tags (another projection of taste),
  the recent click sequence (categories drawn from taste) and days since the
  last visit, with availability set by the lifecycle segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from growth.data.schema import LIFECYCLES
from growth.world._sampling import join_tokens, softmax_rows, str_column
from growth.world.config import WorldConfig
from growth.world.items import TasteSampler

REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS: tuple[str, ...] = ("F", "M", "U")
POTENTIAL, NEW, ACTIVE, LOST = (LIFECYCLES.index(s) for s in ("potential", "new", "active", "lost"))

# Hour-of-day activity bumps: morning commute, lunch, evening, late night.
_HOUR_PEAKS = np.array([8.0, 12.5, 20.5, 23.0])
_HOUR_WIDTH = 1.6
# Activity shift by lifecycle segment (potential, new, active, lost).
_ACTIVITY_SHIFT = np.array([-0.2, 0.0, 0.4, -0.4])


@dataclass(frozen=True)
class UserState:
    """Hidden state and demographics of all users, in users-table order."""

    taste: np.ndarray  # (n, taste_dim) float32
    wealth: np.ndarray  # (n,) standard-normal-ish
    activity: np.ndarray  # (n,) standard-normal-ish, higher = more active
    price_sensitivity: np.ndarray  # (n,) > 0, multiplies -(log price - log ref_price)
    basket_multiplier: np.ndarray  # (n,) >= 1, order value = price * multiplier
    hour_profile: np.ndarray  # (n, 24) float32, rows sum to 1
    lifecycle: np.ndarray  # (n,) int8 index into growth.data.schema.LIFECYCLES
    has_source: np.ndarray  # (n,) bool
    region: np.ndarray  # (n,) int index into REGIONS
    age_band: np.ndarray  # (n,) int index into AGE_BANDS
    gender: np.ndarray  # (n,) int index into GENDERS
    days_since_visit: np.ndarray  # (n,) float, NaN for potential users

    @property
    def n_users(self) -> int:
        return int(self.lifecycle.shape[0])


def _hour_profiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 24) hourly activity probabilities: a per-user mixture of daily bumps."""
    weights = rng.dirichlet(np.ones(_HOUR_PEAKS.shape[0]), size=n).astype(np.float32)
    hours = np.arange(24, dtype=np.float32)
    profile = np.full((n, 24), 0.02, dtype=np.float32)
    for j, peak in enumerate(_HOUR_PEAKS):
        centre = (peak + rng.normal(0.0, 1.0, size=n)).astype(np.float32)
        dist = np.abs(hours[None, :] - centre[:, None])
        dist = np.minimum(dist, 24.0 - dist)  # circular distance in hours
        profile += weights[:, j : j + 1] * np.exp(-0.5 * (dist / _HOUR_WIDTH) ** 2)
    profile /= profile.sum(axis=1, keepdims=True)
    return profile


def seconds_into_day(
    users: UserState, user: np.ndarray, rng: np.random.Generator, *, chunk: int = 1_000_000
) -> np.ndarray:
    """Seconds after midnight of events by ``user`` (int64), in hours drawn from each one's profile.

    People open an app when they are active, so every logged moment of app activity
    (impressions in the shop and the payments app) falls in an hour drawn from its
    user's ``hour_profile`` - the same profile that sets their push open rate.
    """
    user = np.asarray(user, dtype=np.int64)
    hour = np.empty(user.shape[0], dtype=np.int64)
    for lo in range(0, user.shape[0], chunk):
        rows = user[lo : lo + chunk]
        cum = np.cumsum(users.hour_profile[rows], axis=1, dtype=np.float64)
        u = rng.random(rows.shape[0]) * cum[:, -1]
        hour[lo : lo + chunk] = np.minimum((cum < u[:, None]).sum(axis=1), 23)
    return hour * 3600 + rng.integers(0, 3600, size=user.shape[0])


def sample_users(cfg: WorldConfig, rng: np.random.Generator) -> UserState:
    """Draw every user's hidden state, demographics and lifecycle segment."""
    n, d = cfg.n_users, cfg.taste_dim
    region = rng.integers(0, len(REGIONS), size=n)
    age_band = rng.choice(len(AGE_BANDS), size=n, p=[0.18, 0.30, 0.24, 0.16, 0.12])
    gender = rng.choice(len(GENDERS), size=n, p=[0.48, 0.48, 0.04])
    shares = np.array([cfg.lifecycle_shares[s] for s in LIFECYCLES])
    lifecycle = rng.choice(len(LIFECYCLES), size=n, p=shares).astype(np.int8)

    region_shift = 0.4 * rng.standard_normal((len(REGIONS), d))
    gender_shift = 0.3 * rng.standard_normal((len(GENDERS), d))
    taste = rng.standard_normal((n, d)) + region_shift[region] + gender_shift[gender]
    taste = taste.astype(np.float32)

    age_wealth = np.array([-0.5, 0.0, 0.3, 0.4, 0.1])
    wealth = age_wealth[age_band] + rng.standard_normal(n)
    activity = _ACTIVITY_SHIFT[lifecycle] + rng.standard_normal(n)
    price_sensitivity = np.exp(np.log(0.5) - 0.3 * wealth + rng.normal(0.0, 0.45, size=n))
    basket_multiplier = 1.5 * np.exp(0.25 * wealth + rng.normal(0.0, 0.1, size=n))

    days = np.full(n, np.nan)
    m = lifecycle == ACTIVE
    days[m] = rng.geometric(0.35, size=int(m.sum())) - 1
    m = lifecycle == LOST
    days[m] = rng.integers(30, 181, size=int(m.sum()))
    m = lifecycle == NEW
    days[m] = rng.integers(0, 15, size=int(m.sum()))

    return UserState(
        taste=taste,
        wealth=wealth,
        activity=activity,
        price_sensitivity=price_sensitivity,
        basket_multiplier=basket_multiplier,
        hour_profile=_hour_profiles(rng, n),
        lifecycle=lifecycle,
        has_source=rng.random(n) < cfg.has_source_rate,
        region=region,
        age_band=age_band,
        gender=gender,
        days_since_visit=days,
    )


def demographic_columns(users: UserState) -> dict[str, object]:
    """The schema's fixed ``users`` columns."""
    return {
        "user_id": np.arange(users.n_users, dtype=np.int64),
        "region": str_column(users.region, REGIONS),
        "age_band": str_column(users.age_band, AGE_BANDS),
        "gender": str_column(users.gender, GENDERS),
        "lifecycle": str_column(users.lifecycle, LIFECYCLES),
        "has_source": users.has_source.copy(),
    }


def source_features(
    cfg: WorldConfig, users: UserState, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Source-domain (payments app) features; NaN where ``has_source`` is false."""
    n, d = users.n_users, cfg.taste_dim
    projection = rng.standard_normal((cfg.n_source_categories, d))
    logits = users.taste.astype(np.float64) @ projection.T / np.sqrt(d)
    logits += rng.normal(0.0, 0.3, size=logits.shape)
    shares = softmax_rows(logits)
    w, a = users.wealth, users.activity
    log_ps = np.log(users.price_sensitivity)
    cols: dict[str, np.ndarray] = {
        f"src_cat_share_{c}": np.round(shares[:, c], 4) for c in range(cfg.n_source_categories)
    }
    cols["src_spend_level"] = np.round(
        np.exp(6.0 + 0.6 * w + 0.3 * a + rng.normal(0.0, 0.3, size=n)), 2
    )
    cols["src_pay_freq"] = rng.poisson(np.exp(2.5 + 0.6 * a + rng.normal(0.0, 0.2, size=n))).astype(
        np.float64
    )
    cols["src_invest_ability"] = np.round(
        1.0 / (1.0 + np.exp(-(1.0 * w - 0.5 * log_ps + rng.normal(0.0, 0.5, size=n)))), 4
    )
    tier_score = w + 0.3 * a + rng.normal(0.0, 0.5, size=n)
    cols["src_member_tier"] = np.searchsorted([-0.5, 0.5, 1.4], tier_score).astype(np.float64)
    cols["src_coupon_use_rate"] = np.round(
        1.0 / (1.0 + np.exp(-(1.5 * (log_ps - np.log(0.5)) - 1.0 + rng.normal(0.0, 0.4, size=n)))),
        4,
    )
    missing = ~users.has_source
    for v in cols.values():
        v[missing] = np.nan
    return cols


def target_features(
    cfg: WorldConfig, users: UserState, sampler: TasteSampler, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Target-domain (shop) features; availability follows the lifecycle segment.

    potential: all missing (NaN / ""); new: only ``tgt_days_since_visit`` (= days
    since install); active: everything, long recent click sequences; lost:
    everything, short stale sequences and few tags.
    """
    n, d = users.n_users, cfg.taste_dim
    lc = users.lifecycle
    behaved = (lc == ACTIVE) | (lc == LOST)

    purchase_power = np.full(n, np.nan)
    nb = int(behaved.sum())
    purchase_power[behaved] = np.round(
        10.0 / (1.0 + np.exp(-(0.9 * users.wealth[behaved] + rng.normal(0.0, 0.4, size=nb)))), 3
    )

    # Interest tags: taste through another projection, thresholded (fewer for lost users).
    tag_proj = rng.standard_normal((cfg.n_tags, d))
    idx = np.flatnonzero(behaved)
    tag_score = users.taste[idx].astype(np.float64) @ tag_proj.T / np.sqrt(d)
    tag_score += rng.normal(0.0, 0.5, size=tag_score.shape)
    threshold = np.where(lc[idx] == ACTIVE, 1.0, 1.4)[:, None]
    rows, tags = np.nonzero(tag_score > threshold)
    tag_counts = np.zeros(n, dtype=np.int64)
    tag_counts[idx] = np.bincount(rows, minlength=idx.shape[0])

    # Click sequences: recent clicked categories drawn from taste, oldest first.
    seq_counts = np.zeros(n, dtype=np.int64)
    act = lc == ACTIVE
    lost = lc == LOST
    seq_counts[act] = np.clip(rng.poisson(12.0, size=int(act.sum())), 3, 30)
    seq_counts[lost] = np.clip(rng.poisson(4.0, size=int(lost.sum())), 1, 12)
    seq_tokens = sampler.categories(rng, np.repeat(np.arange(n), seq_counts))

    return {
        "tgt_purchase_power": purchase_power,
        "tgt_user_tags": join_tokens(tags, tag_counts),
        "tgt_click_seq": join_tokens(seq_tokens, seq_counts),
        "tgt_days_since_visit": users.days_since_visit.copy(),
    }
