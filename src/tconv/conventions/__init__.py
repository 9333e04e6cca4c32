"""One small module per framework convention, loaded lazily by name.

>>> from tconv.conventions import get, names
>>> get("torch").title
'PyTorch'
>>> "onnx" in names()
True
"""
from __future__ import annotations

import importlib

from ..errors import ConfigError, closest_name
from ._base import Convention, Expressed

__all__ = ["Convention", "Expressed", "get", "names", "ALIASES"]

# name -> module; each module defines CONVENTION
_MODULES = {
    "pytorch": "pytorch",
    "keras": "keras",
    "tf_keras": "tf_keras",
    "tensorflow": "tensorflow",
    "jax": "jax",
    "flax": "flax",
    "onnx": "onnx",
    "tflite": "tflite",
    "mxnet": "mxnet",
    "caffe": "caffe",
}

ALIASES = {
    "torch": "pytorch",
    "tf": "tensorflow",
    "tf.nn": "tensorflow",
    "tf.keras": "tf_keras",
    "tf-keras": "tf_keras",
    "keras2": "tf_keras",
    "keras3": "keras",
    "lax": "jax",
    "onnxruntime": "onnx",
    "ort": "onnx",
    "litert": "tflite",
}

_CACHE: dict[str, Convention] = {}


def names() -> tuple[str, ...]:
    """The canonical framework names."""
    return tuple(_MODULES)


def canonical(framework: str) -> str:
    """The canonical name for a framework name or alias; ConfigError if unknown."""
    if not isinstance(framework, str):
        raise ConfigError(f"framework={framework!r} must be a string; known: {', '.join(_MODULES)}")
    key = framework.strip().lower()
    key = ALIASES.get(key, key)
    if key not in _MODULES:
        close = closest_name(key, list(_MODULES) + list(ALIASES))
        hint = f"; did you mean {ALIASES.get(close, close)!r}?" if close else ""
        raise ConfigError(f"unknown framework {framework!r}{hint} Known frameworks: {', '.join(_MODULES)}")
    return key


def get(framework: str) -> Convention:
    """The convention object for ``framework`` (a name or an alias)."""
    key = canonical(framework)
    if key not in _CACHE:
        module = importlib.import_module(f".{_MODULES[key]}", __name__)
        _CACHE[key] = module.CONVENTION
    return _CACHE[key]
