"""Generate a :class:`World`: the dataset plus the ground truth behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from growth.data.dataset import Dataset
from growth.world.channels import ChannelTruth, sample_channel_history, sample_channels
from growth.world.config import WorldConfig
from growth.world.conversion import ConversionModel
from growth.world.coupons import CouponCatalogue, default_catalogue
from growth.world.exposures import (
    candidates_table,
    end_datetime64,
    sample_candidates,
    sample_exposures,
)
from growth.world.items import N_SALES_BUCKETS, ItemState, TasteSampler, items_table, sample_items
from growth.world.push import (
    PushModel,
    candidates_frame,
    messages_table,
    sample_push_log,
    sample_push_state,
)
from growth.world.scenes import (
    SceneResponse,
    logged_sales,
    sales_bucket,
    sample_scene_response,
    sample_source_exposures,
    sample_source_items,
    source_prob,
)
from growth.world.users import (
    UserState,
    demographic_columns,
    sample_users,
    source_features,
    target_features,
)

_TRUTH_CHUNK = 100_000  # users per block when evaluating (users, candidates, options)


@dataclass(frozen=True)
class CouponTruth:
    """Expected outcomes of each user's campaign feed under each coupon option.

    All arrays are (n, K+1) with column 0 the control ``none``; rows follow
    ``user_ids``.  Each entry is the mean over the user's F candidate items, i.e.
    the outcome of one campaign impression drawn uniformly from the feed.

    conversion: P(convert).  redemption: P(convert and the coupon applies).
    gmv: expected gross order value.  cost: expected face value paid out
    (face * redemption, whoever pays).  platform_cost: the part the platform pays
    (merchant coupons are paid by the merchant, so their columns are 0).
    """

    user_ids: np.ndarray
    option_ids: tuple[str, ...]
    conversion: np.ndarray
    redemption: np.ndarray
    gmv: np.ndarray
    cost: np.ndarray
    platform_cost: np.ndarray

    @property
    def value(self) -> np.ndarray:
        """(n, K): incremental conversion of options 1..K over ``none``."""
        return self.conversion[:, 1:] - self.conversion[:, :1]


@dataclass
class World:
    """A generated world: ``dataset`` (what the platform sees) and the hidden truth.

    Indices: user index == ``user_id`` == row of ``dataset.users``; item index ==
    ``item_id``; option index == row of ``dataset.coupons``; message index ==
    ``message_id``.
    """

    config: WorldConfig
    dataset: Dataset
    users: UserState
    items: ItemState
    coupons: CouponCatalogue
    candidates: np.ndarray  # (n_users, n_candidates) item indices
    conversion: ConversionModel
    push: PushModel
    channel_truth: ChannelTruth
    scenes: SceneResponse  # hidden per-scene response; the truth is the decision scene's
    source_items: ItemState  # the payments app's offers (ids after the shop's items)
    _truth: CouponTruth | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"World(n_users={cfg.n_users}, n_items={cfg.n_items}, seed={cfg.seed}, "
            f"options={self.option_ids})"
        )

    @property
    def option_ids(self) -> list[str]:
        """Coupon option ids in coupons-table order; index 0 is ``none``."""
        return list(self.coupons.option_ids)

    # --- coupons -----------------------------------------------------------
    def _user_index(self, user_ids: np.ndarray | None) -> np.ndarray:
        n = self.users.n_users
        if user_ids is None:
            return np.arange(n, dtype=np.int64)
        idx = np.asarray(user_ids)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"user_ids must be a 1-d integer array, got {idx.dtype} {idx.shape}")
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            raise ValueError(
                f"user_ids contains {int(bad.sum())} ids outside [0, {n}), e.g. {idx[bad][:3]}"
            )
        return idx.astype(np.int64)

    def coupon_truth(self, user_ids: np.ndarray | None = None) -> CouponTruth:
        """Ground-truth :class:`CouponTruth` for ``user_ids`` (default: all users)."""
        if user_ids is None and self._truth is not None:
            return self._truth
        idx = self._user_index(user_ids)
        cp = self.coupons
        k1 = cp.n_options
        options = np.arange(k1)[None, None, :]  # (1, 1, K+1)
        out = {name: np.empty((idx.shape[0], k1)) for name in ("conv", "red", "gmv")}
        for start in range(0, idx.shape[0], _TRUTH_CHUNK):
            u = idx[start : start + _TRUTH_CHUNK]
            items = self.candidates[u][:, :, None]  # (c, F, 1)
            uu = u[:, None, None]  # (c, 1, 1)
            p = self.conversion.prob(uu, items, options)  # (c, F, K+1)
            basket = self.conversion.basket(uu, items)  # (c, F, 1)
            ok = cp.applicable(options, basket, self.items.merchant[items])  # (c, F, K+1)
            sl = slice(start, start + u.shape[0])
            out["conv"][sl] = p.mean(axis=1)
            out["red"][sl] = (p * ok).mean(axis=1)
            out["gmv"][sl] = (p * basket).mean(axis=1)
        cost = out["red"] * cp.face_value[None, :]
        truth = CouponTruth(
            user_ids=idx.copy(),
            option_ids=cp.option_ids,
            conversion=out["conv"],
            redemption=out["red"],
            gmv=out["gmv"],
            cost=cost,
            platform_cost=cost * cp.paid_by_platform[None, :],
        )
        if user_ids is None:
            self._truth = truth
        return truth

    def conversion_prob(
        self, user_idx: np.ndarray, item_idx: np.ndarray, option_idx: np.ndarray
    ) -> np.ndarray:
        """True p(user, item, option) for broadcastable integer index arrays."""
        _check_index("user_idx", user_idx, self.users.n_users)
        _check_index("item_idx", item_idx, self.items.n_items)
        _check_index("option_idx", option_idx, self.coupons.n_options)
        return self.conversion.prob(user_idx, item_idx, option_idx)

    def score_coupon_plan(self, choice: np.ndarray) -> dict[str, float]:
        """True expected outcome of giving user u coupon ``choice[u]``.

        ``choice`` is a plan in the optimizers' encoding: ``-1`` = no coupon,
        ``k`` = the k-th real coupon (row ``k + 1`` of the coupons table, whose
        row 0 is the control ``none``).  Returns conversions,
        incremental_conversions (over all-none), redemptions, spend (face value
        paid out), platform_spend (excluding merchant-paid coupons) and gmv, all
        summed over users.
        """
        n, k1 = self.users.n_users, self.coupons.n_options
        choice = np.asarray(choice)
        if choice.shape != (n,) or not np.issubdtype(choice.dtype, np.integer):
            raise ValueError(
                f"choice must be an integer array of shape ({n},) in users-table order, "
                f"got {choice.dtype} {choice.shape}"
            )
        if choice.size and (choice.min() < -1 or choice.max() >= k1 - 1):
            raise ValueError(
                f"choice values must lie in [-1, {k1 - 1}) (-1 = no coupon); "
                f"got range [{choice.min()}, {choice.max()}]"
            )
        t = self.coupon_truth()
        rows = np.arange(n)
        column = choice + 1  # coupons-table row; 0 is the control ``none``
        conv = t.conversion[rows, column]
        return {
            "conversions": float(conv.sum()),
            "incremental_conversions": float((conv - t.conversion[:, 0]).sum()),
            "redemptions": float(t.redemption[rows, column].sum()),
            "spend": float(t.cost[rows, column].sum()),
            "platform_spend": float(t.platform_cost[rows, column].sum()),
            "gmv": float(t.gmv[rows, column].sum()),
        }

    # --- push ----------------------------------------------------------------
    def push_candidates(self) -> pd.DataFrame:
        """user_id, message_id, industry, relevance for each user's candidate messages."""
        return candidates_frame(self.push)

    def open_prob(
        self,
        user_idx: np.ndarray,
        message_idx: np.ndarray,
        hour: np.ndarray,
        prior_pushes_today: np.ndarray,
    ) -> np.ndarray:
        """True push open probability (broadcastable integer arrays)."""
        _check_index("user_idx", user_idx, self.users.n_users)
        _check_index("message_idx", message_idx, self.push.state.item.shape[0])
        _check_index("hour", hour, 24)
        _check_index("prior_pushes_today", prior_pushes_today, np.iinfo(np.int64).max)
        return self.push.open_prob(user_idx, message_idx, hour, prior_pushes_today)


def _check_index(name: str, value: np.ndarray, upper: int) -> None:
    """Raise ValueError unless ``value`` holds integers in [0, upper)."""
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(
            f"{name} values must lie in [0, {upper}); got range [{arr.min()}, {arr.max()}]"
        )


def _logs(
    cfg: WorldConfig,
    users: UserState,
    items: ItemState,
    offers: ItemState,
    sampler: TasteSampler,
    model: ConversionModel,
    rngs: list[np.random.Generator],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The exposure log of both domains (sorted by user, then time) and the items table,
    whose ``sales_bucket`` comes from each domain's logged pre-campaign orders."""
    target = sample_exposures(cfg, users, sampler, model, rngs[5])
    start = end_datetime64(cfg) - np.timedelta64(cfg.exposure_days * 86_400, "s")
    source = sample_source_exposures(cfg, users, offers, items.n_items, start, rngs[11])
    exposures = pd.concat([target, source], ignore_index=True)
    exposures = exposures.sort_values(["user_id", "timestamp"], kind="stable", ignore_index=True)
    n_history = max(round(cfg.sales_history_per_user * cfg.n_users), 1)
    shop_orders = logged_sales(
        cfg.n_users, items.n_items, sampler, model.prob_none, n_history, rngs[12]
    )
    offer_orders = logged_sales(
        cfg.n_users,
        offers.n_items,
        TasteSampler(offers, users.taste),
        lambda u, i: source_prob(cfg, users, offers, u, i),
        n_history,
        rngs[12],
    )
    items_df = pd.concat(
        [
            items_table(items, sales_bucket(shop_orders, N_SALES_BUCKETS)),
            items_table(
                offers,
                sales_bucket(offer_orders, N_SALES_BUCKETS),
                domain="source",
                first_id=items.n_items,
                first_category=cfg.n_categories,
            ),
        ],
        ignore_index=True,
    )
    return exposures, items_df


@contextmanager
def _steps(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    """Yield an ``advance(label)`` callback driving a tqdm bar when ``enabled``."""
    if not enabled:
        yield lambda _label: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="world", unit="step")
    try:

        def advance(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        yield advance
    finally:
        bar.close()


def generate_world(config: WorldConfig, *, progress: bool = False) -> World:
    """Generate the world described by ``config``; identical output for an identical config.

    Each component draws from its own child of ``SeedSequence(config.seed)``, so
    adding draws to one component does not reshuffle the others.

    Example
    -------
    >>> world = generate_world(WorldConfig(n_users=500, n_items=100, seed=1))
    >>> sorted(world.dataset.tables())[:3]
    ['candidates', 'channel_history', 'channels']
    """
    if not isinstance(config, WorldConfig):
        raise TypeError(f"generate_world expects a WorldConfig, got {type(config).__name__}")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(13)]
    with _steps(progress, total=8) as advance:
        items = sample_items(config, rngs[0])
        users = sample_users(config, rngs[1])
        sampler = TasteSampler(items, users.taste)
        advance("users")
        user_cols = demographic_columns(users)
        user_cols.update(source_features(config, users, rngs[2]))
        user_cols.update(target_features(config, users, sampler, rngs[3]))
        users_df = pd.DataFrame(user_cols)
        advance("features")
        coupons = default_catalogue()
        scenes = sample_scene_response(config, rngs[10])
        model = ConversionModel(config, users, items, coupons, scenes)
        candidates = sample_candidates(config, sampler, rngs[4])
        advance("candidates")
        offers = sample_source_items(config, rngs[11])
        exposures, items_df = _logs(config, users, items, offers, sampler, model, rngs)
        advance("exposures")
        push_state = sample_push_state(config, items, rngs[6])
        push = PushModel(config, users, items, push_state)
        push_log = sample_push_log(config, push, rngs[7])
        advance("push")
        channel_truth = sample_channels(config, rngs[8])
        channel_history = sample_channel_history(config, channel_truth, rngs[9])
        advance("channels")
        dataset = Dataset(
            users=users_df,
            items=items_df,
            coupons=coupons.table(),
            candidates=candidates_table(candidates),
            exposures=exposures,
            push_messages=messages_table(push_state),
            push_candidates=candidates_frame(push).drop(columns="industry"),
            push_log=push_log,
            channels=channel_truth.table(),
            channel_history=channel_history,
            name=f"world_seed{config.seed}_n{config.n_users}",
        )
        advance("dataset")
        world = World(
            config=config,
            dataset=dataset,
            users=users,
            items=items,
            coupons=coupons,
            candidates=candidates,
            conversion=model,
            push=push,
            channel_truth=channel_truth,
            scenes=scenes,
            source_items=offers,
        )
        advance("done")
    return world
