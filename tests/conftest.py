"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# pytest runs two workers on two cores: one OpenMP thread each avoids oversubscription
# (LightGBM and torch spin-wait badly when threads outnumber cores).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MOVIELENS_CACHE = REPO_ROOT / "data" / "cache" / "ml-100k"
MOVIELENS_FETCH = REPO_ROOT.parent / "shared" / "data" / "fetch-movielens-100k"
MOVIELENS_FILES = ("ml-100k.inter", "ml-100k.user", "ml-100k.item")


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private data root for the test session: the repository's scenarios, nothing else.

    Runs' files (models, scores), logs and the default database of the code under
    test land here instead of the developer's ``data/`` folder.
    """
    root = tmp_path_factory.mktemp("data")
    (root / "scenarios").symlink_to(REPO_ROOT / "data" / "scenarios")
    previous = os.environ.get("GROWTH_DATA_ROOT")
    os.environ["GROWTH_DATA_ROOT"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("GROWTH_DATA_ROOT", None)
    else:
        os.environ["GROWTH_DATA_ROOT"] = previous


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """The MovieLens-100k atomic files, fetched once into the git-ignored data/cache/ml-100k."""
    paths = [MOVIELENS_CACHE / name for name in MOVIELENS_FILES]
    if all(p.is_file() and p.stat().st_size > 0 for p in paths):
        return MOVIELENS_CACHE
    if not MOVIELENS_FETCH.is_file():
        pytest.skip(f"MovieLens-100k not cached and the fetch script {MOVIELENS_FETCH} is absent")
    staging = MOVIELENS_CACHE.with_name(f"ml-100k.tmp-{os.getpid()}")
    result = subprocess.run(
        [str(MOVIELENS_FETCH), str(staging)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{MOVIELENS_FETCH} failed ({result.returncode}):\n{result.stderr}")
    try:  # publish atomically: a concurrent test worker never sees half-written files
        staging.rename(MOVIELENS_CACHE)
    except OSError:  # another worker published first
        shutil.rmtree(staging, ignore_errors=True)
    return MOVIELENS_CACHE


@pytest.fixture(scope="session")
def two_domain_rows():
    """Raw exposure rows of a 2,000-user two-domain world for the cross-domain models' tests:
    ``(X, y, segment, raw spec)``."""
    from growth.modeling.features import ConversionFeatures
    from growth.world import WorldConfig, generate_world

    features = ConversionFeatures(generate_world(WorldConfig(n_users=2_000, seed=3)).dataset)
    frame = features.exposure_frame()
    return frame.X, frame.y, frame.segment, features.spec


@pytest.fixture(scope="module")
def sampled_rows():
    """Labelled rows of both domains and three target scenes (40 % source) for the transfer
    models' mechanism tests: ``(X, y, spec)``, built once per test module."""
    from predictors.examples import DOMAINS, sampled_frame
    from predictors.features import FeatureSpec

    X, y, _ = sampled_frame(1_000, seed=2, source_share=0.4)
    return X, y, FeatureSpec.infer(X, DOMAINS)
