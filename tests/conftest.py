"""Shared test set-up: hypothesis budgets and one lazy import per framework per session."""
from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

from _budget import SCALE, examples

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Budgets keep `make test` well under 20 minutes on a 2-core machine; TCONV_HYPOTHESIS_SCALE
# multiplies them (tests/_budget.py) and then draws fresh examples instead of the fixed ones.
settings.register_profile(
    "tconv", max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=SCALE == 1,
)
settings.load_profile("tconv")


def _load(name: str):
    # Conformance tests must run the real frameworks: a missing one is a failure, not a skip.
    return importlib.import_module(name)


@pytest.fixture(scope="session")
def torch():
    t = _load("torch")
    t.set_num_threads(2)
    return t


@pytest.fixture(scope="session")
def tf():
    return _load("tensorflow")


@pytest.fixture(scope="session")
def keras(tf):
    return _load("keras")


@pytest.fixture(scope="session")
def jax():
    j = _load("jax")
    j.config.update("jax_enable_x64", True)
    return j


@pytest.fixture(scope="session")
def flax_linen(jax):
    return _load("flax.linen")


@pytest.fixture(scope="session")
def ort():
    _load("onnx")
    return _load("onnxruntime")
