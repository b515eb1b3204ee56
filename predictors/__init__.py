"""Conversion, basket and open-rate models under one estimator contract (see :mod:`predictors.base`).

Knows nothing of solvers, SQL or the growth domain: a model reads the raw frame its
:class:`~predictors.features.FeatureSpec` describes.
"""
