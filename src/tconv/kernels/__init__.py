"""The numerical engine: exact transposed convolution in NumPy, four ways, forward and backward.

* :func:`conv_transpose` computes a framework's layer on its own layouts;
* :func:`conv` is the adjoint (the forward convolution) and
  :func:`conv_transpose_grad` / :func:`conv_transpose_vjp` the gradients;
* ``ALGORITHMS`` maps each algorithm's name to its ``compute(problem)``:
  ``scatter`` (the definition), ``zero_insertion`` (what lectures draw),
  ``col2im`` (one GEMM + overlap-add), ``phase`` (sub-pixel decomposition, no
  inserted zeros) and ``auto``.

>>> import numpy as np, tconv
>>> x, w = np.random.default_rng(0).normal(size=(2, 3, 5, 5)), np.ones((3, 4, 3, 3))
>>> ref = tconv.conv_transpose(x, w, stride=2, padding=1, algorithm="scatter")
>>> all(np.allclose(tconv.conv_transpose(x, w, stride=2, padding=1, algorithm=a), ref) for a in ALGORITHMS)
True
"""
from __future__ import annotations

from ._registry import ALGORITHMS
from .engine import Grads, conv, conv_transpose, conv_transpose_grad, conv_transpose_vjp

__all__ = ["ALGORITHMS", "Grads", "conv", "conv_transpose", "conv_transpose_grad", "conv_transpose_vjp"]
