"""Ground-truth conversion probability p(user, item, option).

    logit p = base_logit
              + taste_weight      * taste_u . latent_i / sqrt(d)
              + activity_weight   * activity_u
              + popularity_weight * z(log popularity_i)
              + segment_effect[lifecycle_u]                (potential < lost < new < active = 0)
              - price_sensitivity_u * (log price_i - log ref_price)
              + coupon_effect(u, i, k)

    coupon_effect = coupon_strength * coupon_segment_multiplier[lifecycle_u]
                    * (0.2 + price_sensitivity_u) * log(1 + 5 * min(face_k / basket_ui, 1))
                    * applicable_k(basket_ui, merchant_i)

plus the scene's own part (:class:`~growth.world.scenes.SceneResponse`: an offset and a
scene-specific taste response) for the scene the impression is shown in; without a
scene, the scene the coupon decision is for (``coupon_scene``).

With ``basket_ui = price_i * basket_multiplier_u`` the expected order value.  The
coupon effect is therefore exactly zero when the coupon does not apply (basket
below a full reduction's threshold, another merchant's item), non-negative
otherwise, larger for price-sensitive users, for larger face/basket ratios and
for new and lost users.
"""

from __future__ import annotations

import numpy as np

from growth.data.schema import LIFECYCLES
from growth.world._sampling import sigmoid
from growth.world.config import WorldConfig
from growth.world.coupons import CouponCatalogue
from growth.world.items import ItemState
from growth.world.scenes import SceneResponse
from growth.world.users import UserState


class ConversionModel:
    """Vectorised p(user, item, option) from the world's hidden state."""

    def __init__(
        self,
        cfg: WorldConfig,
        users: UserState,
        items: ItemState,
        coupons: CouponCatalogue,
        scenes: SceneResponse,
    ) -> None:
        self.cfg = cfg
        self.scenes = scenes
        self.users = users
        self.items = items
        self.coupons = coupons
        self._segment_effect = np.array([cfg.segment_effect[s] for s in LIFECYCLES])
        self._coupon_mult = np.array([cfg.coupon_segment_multiplier[s] for s in LIFECYCLES])
        self._log_price = np.log(items.price)
        self._pop_z = items.log_popularity_z
        self._scale = 1.0 / np.sqrt(cfg.taste_dim)

    def basket(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Expected order value of ``user`` buying ``item`` (broadcast)."""
        return self.items.price[item] * self.users.basket_multiplier[user]

    def taste_match(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """taste_u . latent_i / sqrt(d) for broadcast index arrays."""
        user, item = np.broadcast_arrays(np.asarray(user), np.asarray(item))
        u = self.users.taste[user.ravel()]
        v = self.items.latent[item.ravel()]
        return (np.einsum("nd,nd->n", u, v) * self._scale).reshape(user.shape)

    def scene_logit(
        self, user: np.ndarray, item: np.ndarray, scene: np.ndarray | None = None
    ) -> np.ndarray:
        """The scene's own part of the logit (``scene`` codes; None: the decision scene)."""
        user, item = np.broadcast_arrays(np.asarray(user), np.asarray(item))
        code = self.scenes.decision if scene is None else scene
        codes = np.broadcast_to(np.asarray(code, dtype=np.int64), user.shape).ravel()
        u = self.users.taste[user.ravel()]
        v = self.items.latent[item.ravel()]
        return self.scenes.specific(codes, u, v).reshape(user.shape)

    def base_logit(
        self, user: np.ndarray, item: np.ndarray, scene: np.ndarray | None = None
    ) -> np.ndarray:
        """The conversion logit without any coupon (option ``none``) in ``scene``."""
        cfg, us = self.cfg, self.users
        return (
            self.scene_logit(user, item, scene)
            + cfg.base_logit
            + cfg.taste_weight * self.taste_match(user, item)
            + cfg.activity_weight * us.activity[user]
            + cfg.popularity_weight * self._pop_z[item]
            + self._segment_effect[us.lifecycle[user]]
            - us.price_sensitivity[user] * (self._log_price[item] - np.log(cfg.ref_price))
        )

    def coupon_effect(self, user: np.ndarray, item: np.ndarray, option: np.ndarray) -> np.ndarray:
        """Additive logit effect of ``option`` (0 when it does not apply)."""
        cp, us = self.coupons, self.users
        basket = self.basket(user, item)
        ratio = np.minimum(cp.face_value[option] / basket, 1.0)
        ok = cp.applicable(option, basket, self.items.merchant[item])
        strength = (
            self.cfg.coupon_strength
            * self._coupon_mult[us.lifecycle[user]]
            * (0.2 + us.price_sensitivity[user])
        )
        return np.where(ok, strength * np.log1p(5.0 * ratio), 0.0)

    def prob_none(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """p(user, item, none) in the decision scene: a purchase without a coupon."""
        return self.prob(user, item, np.zeros_like(np.asarray(user)))

    def prob(
        self,
        user: np.ndarray,
        item: np.ndarray,
        option: np.ndarray,
        scene: np.ndarray | None = None,
    ) -> np.ndarray:
        """p(user, item, option) in ``scene`` (codes; None: the decision scene) for
        broadcastable integer index arrays."""
        user, item, option = np.broadcast_arrays(
            np.asarray(user, dtype=np.int64),
            np.asarray(item, dtype=np.int64),
            np.asarray(option, dtype=np.int64),
        )
        if scene is not None:
            scene = np.broadcast_to(np.asarray(scene, dtype=np.int64), user.shape)
        return sigmoid(self.base_logit(user, item, scene) + self.coupon_effect(user, item, option))
