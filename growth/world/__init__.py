"""The simulated growth world: a dataset in the schema's format plus its ground truth.

Why: every predictor and optimiser of the platform can be scored against the
truth that generated the data (true uplift, true open probability, true install
curve), which real logs never give.

Generative model (all draws vectorised numpy, deterministic given ``seed``):

1. **Users** (:mod:`growth.world.users`).  Hidden taste ``t_u ~ N(shift(region,
   gender), I_d)``, wealth ``w_u`` (shifted by age band), activity ``a_u ~
   N(shift(lifecycle), 1)``, price sensitivity ``ps_u = 0.5 exp(-0.3 w_u + 0.45 e)``,
   basket multiplier ``b_u = 1.5 exp(0.25 w_u + 0.1 e)`` and a 24-hour activity
   profile (a Dirichlet mixture of commute / lunch / evening / night bumps) that
   times both the user's app activity (the logged impressions) and their push opens.
   Lifecycle potential / new / active / lost with ``lifecycle_shares``.
2. **Source features** (payments app, ``has_source`` ~ ``has_source_rate``):
   ``src_cat_share_*`` = softmax of taste through a projection unrelated to the
   shop's categories, spend level, payment frequency, investment ability, member
   tier, coupon-use rate - all noisy functions of (taste, wealth, activity,
   price sensitivity).  NaN when absent.
3. **Items** (:mod:`growth.world.items`): category centroids in taste space, item
   latent = centroid + noise, log-normal prices, Zipf merchants, popularity.
4. **Target features** (shop): potential users have none; new users only
   ``tgt_days_since_visit`` (days since install); active users purchase power,
   interest tags, a long recent click sequence (categories drawn from taste),
   a recent visit; lost users the same but stale (30-180 days) and short.
5. **Conversion** (:mod:`growth.world.conversion`): logistic in taste match,
   activity, popularity, lifecycle, price sensitivity x log price, plus a coupon
   effect that is zero unless the coupon applies (full reduction: expected basket
   ``price * b_u`` reaches the threshold; merchant: that merchant's item) and
   grows with price sensitivity, face / basket and for new and lost users.
6. **Logs**: taste-biased campaign feed (``candidates``), a randomised exposure
   log with uniform treatments in the shop's scenes (:mod:`growth.world.exposures`;
   each scene's response is the shared logit plus a scene-specific part,
   :mod:`growth.world.scenes`), labelled source-domain offers in the payments app,
   ``sales_bucket`` from logged pre-campaign orders, push messages
   with a fatigue-decayed open probability (:mod:`growth.world.push`) and Hill-curve
   acquisition channels with a daily funnel history (:mod:`growth.world.channels`).

Example
-------
>>> from growth.world import WorldConfig, generate_world
>>> world = generate_world(WorldConfig(n_users=2_000, seed=7))
>>> truth = world.coupon_truth()
>>> truth.conversion.shape == (2_000, len(world.option_ids))
True
"""

from growth.world.channels import ChannelTruth
from growth.world.config import WorldConfig, load_scenario
from growth.world.coupons import CouponCatalogue
from growth.world.world import CouponTruth, World, generate_world

__all__ = [
    "ChannelTruth",
    "CouponCatalogue",
    "CouponTruth",
    "World",
    "WorldConfig",
    "generate_world",
    "load_scenario",
]
