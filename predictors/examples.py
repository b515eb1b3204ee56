"""Small synthetic two-domain frames for the docstring examples and the contract tests.

Columns: ``src_*`` (source domain: a number, a count, an item sequence),
``tgt_*`` (target domain: a number, tags, a tier), ``coupon_*`` (treatment);
:func:`sampled_frame` adds the sample columns ``domain`` and ``scene``
(:mod:`predictors.torch.samples`): labelled source rows and three target scenes.
The label follows a known logit of every field kind, so any model that reads
the fields ranks it; converting rows also carry a log-normal order value.

>>> X, y, value = two_domain_frame(100)
>>> list(X.columns)[:3], y.shape, bool(np.isnan(value[y == 0]).all())
(['src_spend', 'src_visits', 'src_item_seq'], (100,), True)
>>> X, y, spec = two_domain_example(100)  # the same rows with their spec
>>> spec.domains
('source', 'target', 'treatment')
>>> X, y, value = sampled_frame(1_000)  # the same fields plus the sample columns
>>> X.groupby(["domain", "scene"]).size().to_dict()
{('source', 'offers'): 283, ('target', 'coupon_centre'): 143, ('target', 'home_feed'): 356, ('target', 'search'): 218}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictors.features import FeatureSpec

DOMAINS = {"src_": "source", "tgt_": "target", "coupon_": "treatment"}
"""Column-name prefixes of the frame and their domains (for ``FeatureSpec.infer``)."""


def two_domain_frame(
    n: int = 3_000, *, seed: int = 0, src_missing: float = 0.0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``(X, y, order_value)``: ``n`` rows, 0/1 labels, order values (NaN where y = 0).

    ``src_missing`` of the rows (seeded) lack every source field.
    """
    rng = np.random.default_rng(seed)
    X, logit = _features(n, rng, src_missing)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    value = np.exp(3.0 + 0.4 * logit + rng.normal(0.0, 0.2, n))
    return X, y, np.where(y == 1, value, np.nan)


SCENES = {"home_feed": 0.5, "search": 0.3, "coupon_centre": 0.2}
"""The target scenes of :func:`sampled_frame` and their shares of the target rows."""


def sampled_frame(
    n: int = 3_000, *, seed: int = 0, src_missing: float = 0.0, source_share: float = 0.3
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """:func:`two_domain_frame`'s features plus the sample columns ``domain`` and ``scene``.

    ``source_share`` of the rows are labelled source-domain rows (scene ``"offers"``); the
    rest are target rows of the scenes of :data:`SCENES`.  Every label shares the frame's
    logit; each scene adds its own part (an offset and its own coupon effect; ``search``
    reads the tier the other way), and source rows respond more weakly to the target fields.
    """
    rng = np.random.default_rng(seed)
    X, logit = _features(n, rng, src_missing)
    source = rng.random(n) < source_share
    scene = np.where(source, "offers", rng.choice(list(SCENES), size=n, p=list(SCENES.values())))
    gold = (X["tgt_tier"] == "gold").to_numpy()
    face = X["coupon_face"].to_numpy()
    logit = logit + np.select(
        [scene == "search", scene == "coupon_centre", scene == "offers"],
        [0.3 - 1.6 * gold, -0.4 + 0.1 * face, 0.2 - 0.5 * (X["tgt_power"].to_numpy() - 500) / 100],
        0.0,
    )
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    value = np.exp(3.0 + 0.4 * logit + rng.normal(0.0, 0.2, n))
    X = X.assign(domain=np.where(source, "source", "target"), scene=scene)
    return X, y, np.where(y == 1, value, np.nan)


def _features(
    n: int, rng: np.random.Generator, src_missing: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature frame of :func:`two_domain_frame` and the shared part of its label's logit."""

    def tokens(max_len: int, n_tokens: int) -> tuple[pd.Series, np.ndarray]:
        lists = [rng.integers(0, n_tokens, k) for k in rng.integers(0, max_len + 1, n)]
        has_zero = np.array([bool((t == 0).any()) for t in lists])
        return pd.Series(["|".join(map(str, t)) for t in lists]), has_zero

    src_seq, src_hit = tokens(5, 20)
    tgt_tags, tgt_hit = tokens(3, 8)
    X = pd.DataFrame(
        {
            "src_spend": rng.normal(size=n),
            "src_visits": rng.poisson(3.0, size=n).astype(float),
            "src_item_seq": src_seq,
            "tgt_power": rng.normal(500.0, 100.0, size=n),
            "tgt_user_tags": tgt_tags,
            "tgt_tier": rng.choice(["gold", "silver", "bronze"], size=n),
            "coupon_type": rng.choice(["none", "red_packet", "full_reduction"], size=n),
            "coupon_face": rng.choice([0.0, 5.0, 10.0], size=n),
        }
    )
    logit = (
        -0.3
        + 1.5 * X["src_spend"]
        + 1.0 * src_hit
        - (X["tgt_power"] - 500.0) / 100.0
        + 1.2 * tgt_hit
        + 0.8 * (X["tgt_tier"] == "gold")
        + 0.08 * X["coupon_face"]
    ).to_numpy()
    gone = rng.random(n) < src_missing
    X.loc[gone, ["src_spend", "src_visits"]] = np.nan
    X.loc[gone, "src_item_seq"] = ""
    return X, logit


def two_domain_example(n: int = 600) -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    """``(X, y, spec)``: :func:`two_domain_frame`'s rows and labels, and their spec
    inferred with :data:`DOMAINS` (unfitted): where every model's example starts."""
    X, y, _ = two_domain_frame(n)
    return X, y, FeatureSpec.infer(X, DOMAINS)
