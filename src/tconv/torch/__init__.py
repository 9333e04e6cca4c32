"""Faster PyTorch transposed convolutions: drop-in functions and modules.

``tconv.torch.conv_transpose1d/2d/3d`` take the arguments of
``torch.nn.functional.conv_transpose1d/2d/3d``; ``tconv.torch.ConvTranspose1d/2d/3d``
subclass ``torch.nn.ConvTranspose1d/2d/3d`` (same parameters, same state_dict),
and add ``padding='valid' | 'same' | 'same_upper' | 'same_lower'``. Every call
runs one of several equivalent strategies (see :mod:`tconv.torch.strategies`),
picked by measuring once per layer signature, by a documented rule
(deterministic mode), or forced by the caller.

This package imports torch only when one of its names is first used, so the
command line (which looks for ``tconv.torch.cli``) stays fast.

Examples
--------
>>> import torch, tconv.torch
>>> layer = tconv.torch.ConvTranspose2d(4, 2, 3, stride=2, padding="same")
>>> layer(torch.randn(1, 4, 5, 5)).shape
torch.Size([1, 2, 10, 10])
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "conv_transpose1d": "tconv.torch.functional",
    "conv_transpose2d": "tconv.torch.functional",
    "conv_transpose3d": "tconv.torch.functional",
    "layer_geometry": "tconv.torch.functional",
    "TorchLayerError": "tconv.torch.functional",
    "ConvTranspose1d": "tconv.torch.modules",
    "ConvTranspose2d": "tconv.torch.modules",
    "ConvTranspose3d": "tconv.torch.modules",
    "STRATEGIES": "tconv.torch.strategies",
    "set_strategy": "tconv.torch.picker",
    "get_strategy": "tconv.torch.picker",
    "use_strategy": "tconv.torch.picker",
    "cache_info": "tconv.torch.picker",
    "MEASURE_MIN_FLOPS": "tconv.torch.picker",
    "clear_cache": "tconv.torch.picker",
    "deterministic_rule": "tconv.torch.picker",
    "choices": "tconv.torch.picker",
    "set_measure_budget": "tconv.torch.picker",
    "native_status": "tconv.torch._native",
    "swap": "tconv.torch.interop",
    "unswap": "tconv.torch.interop",
    "from_keras": "tconv.torch.interop",
    "from_flax": "tconv.torch.interop",
    "from_onnx": "tconv.torch.interop",
    "Crop": "tconv.torch.interop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tconv.torch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
