"""Skips for the properties that fail on i12base: issue 12's known defects, in one place.

Each skip names its defect.  Set ``GROWTH_CHECK_KNOWN_DEFECTS=1`` to run the skipped
properties anyway (to check a fix before removing its skip); remove a skip once the
fix has landed, so that the property guards it from then on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

ACTIVE = os.environ.get("GROWTH_CHECK_KNOWN_DEFECTS", "") not in ("1", "true", "yes")


def known_defect(reason: str) -> pytest.MarkDecorator:
    """Skip marker for a property that fails until the defect ``reason`` is fixed."""
    return pytest.mark.skipif(ACTIVE, reason=f"KNOWN DEFECT (issue 12): {reason}")


def methods_except(methods: Sequence[str], reason: str, *failing: str) -> list:
    """``methods`` as pytest params, the ``failing`` ones marked :func:`known_defect`."""
    mark = known_defect(reason)
    unknown = set(failing) - set(methods)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {list(methods)}")
    return [pytest.param(m, marks=mark) if m in failing else m for m in methods]
