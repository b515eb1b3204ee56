"""Pure decision code: arrays in, a plan and its certificate out (no models, no SQL).

:mod:`optimizers.coupons` (multiple-choice knapsack), :mod:`optimizers.push`
(scheduling under fatigue) and :mod:`optimizers.install` (budget split over response
curves) share one shape: ``problem``, ``model``, ``solve``, ``result``.
"""
