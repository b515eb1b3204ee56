"""One package per decision (coupons, push, install control) and the settings operators choose.

Every campaign builds its optimizer problem once, returns a plan with ``summary()``
from ``plan_*`` and scores a plan on a simulated world with ``score_against_truth``.
"""
