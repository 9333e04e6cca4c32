"""Hypothesis budgets: each test names its own ``max_examples`` through :func:`examples`.

``make test`` runs every budget as written, derandomized (the same examples on
every run, so CI is reproducible). ``TCONV_HYPOTHESIS_SCALE=10`` multiplies every
budget by 10 and draws fresh random examples, for a deeper hunt before a release:

    TCONV_HYPOTHESIS_SCALE=10 python -m pytest -q tests

(A hypothesis profile alone could not do this: a test's own ``@settings(max_examples=...)``
overrides the loaded profile.)
"""
from __future__ import annotations

import os


def _scale() -> float:
    text = os.environ.get("TCONV_HYPOTHESIS_SCALE", "1")
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not scale > 0:
        raise ValueError(f"TCONV_HYPOTHESIS_SCALE must be a positive number, not {text!r}")
    return scale


SCALE = _scale()


def examples(budget: int) -> int:
    """``budget`` scaled by ``TCONV_HYPOTHESIS_SCALE``, at least 1."""
    return max(1, round(budget * SCALE))
