"""tconv: transposed convolution, exactly, for every framework.

Arithmetic (NumPy is the only requirement; frameworks are never imported here):

>>> import tconv
>>> tconv.output_shape((8, 8), 3, framework="keras", strides=2, padding="same")
(16, 16)
>>> tconv.output_shape((2, 2), 2, framework="pytorch", stride=2, padding=1)
(2, 2)
"""
from __future__ import annotations

import importlib
from typing import Any

from .api import geometry, output_shape
from .errors import ConfigError, FrameworkQuirkWarning
from .explain import Explanation, explain
from .geometry import AxisGeometry, Geometry

__version__ = "0.1.0"


# Heavier parts load on first use, so `import tconv` stays cheap.
_LAZY = {
    "conv_transpose": "tconv.kernels",
    "conv": "tconv.kernels",
    "conv_transpose_grad": "tconv.kernels",
    "conv_transpose_vjp": "tconv.kernels",
    "draw": "tconv.drawing",
    "Drawing": "tconv.drawing",
    "solve": "tconv.solving",
    "Solution": "tconv.solving",
    "Solutions": "tconv.solving",
    "invert": "tconv.inversion",
    "Inversion": "tconv.inversion",
    "convert": "tconv.conversion",
    "convert_weights": "tconv.conversion",
    "Conversion": "tconv.conversion",
    "tune_allocator": "tconv.allocator",
    "native_status": "tconv._native",
    "check": "tconv.checking",
    "explore": "tconv.serve",
}
#: subpackages reachable as attributes
_SUBMODULES = ("conventions", "kernels", "torch", "drawing", "solving", "inversion", "conversion", "serve")

__all__ = [
    "AxisGeometry",
    "ConfigError",
    "Explanation",
    "FrameworkQuirkWarning",
    "Geometry",
    "explain",
    "geometry",
    "output_shape",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"tconv.{name}")
    raise AttributeError(f"module 'tconv' has no attribute {name!r}")


def __dir__() -> list[str]:
    # tab completion and help() see the lazy names too
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
