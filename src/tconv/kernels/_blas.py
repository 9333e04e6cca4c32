"""A BLAS GEMM that accumulates into a strided block of its output: ``c += a @ b``.

NumPy's ``matmul`` always overwrites its output and needs it contiguous, so a
sum of GEMMs costs a full extra pass over memory per term. BLAS's ``gemm``
itself does ``C = alpha*A@B + beta*C`` on any matrix with unit stride along
one axis, which lets several GEMMs write into one column block each of a shared
buffer with no temporaries (what :mod:`tconv.kernels.phase`'s shifted-GEMM form
needs). SciPy exports its BLAS to Cython as ``scipy.linalg.cython_blas``; each
function's address is in ``__pyx_capi__`` (a documented, stable interface, the
same one numba-scipy uses), and ctypes calls it without the copies the f2py
wrappers in ``scipy.linalg.blas`` make of non-contiguous arrays.

Without SciPy, :func:`gemm` computes the same thing with NumPy (one temporary
per call). :data:`AVAILABLE` says which one runs.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

__all__ = ["gemm", "AVAILABLE", "accepts"]

_INT = ctypes.c_int


@lru_cache(maxsize=None)
def _function(dtype: np.dtype):
    """ctypes handle on SciPy's ``sgemm``/``dgemm`` (Fortran calling convention), or None."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    name = {np.dtype(np.float32): "sgemm", np.dtype(np.float64): "dgemm"}.get(dtype)
    capsule = cython_blas.__pyx_capi__.get(name) if name else None
    if capsule is None:
        return None
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    scalar = ctypes.POINTER(ctypes.c_float if name == "sgemm" else ctypes.c_double)
    pointer, integer, char = ctypes.c_void_p, ctypes.POINTER(_INT), ctypes.c_char_p
    prototype = ctypes.CFUNCTYPE(None, char, char, integer, integer, integer, scalar, pointer, integer,
                                 pointer, integer, scalar, pointer, integer)
    return prototype(address), (ctypes.c_float if name == "sgemm" else ctypes.c_double)


def _leading(a: np.ndarray) -> int | None:
    """Row stride in elements of a matrix whose rows are contiguous, or None."""
    item = a.itemsize
    if a.shape[1] > 1 and a.strides[1] != item:
        return None
    if a.shape[0] > 1 and (a.strides[0] % item or a.strides[0] < a.shape[1] * item):
        return None
    return max(a.strides[0] // item if a.shape[0] > 1 else a.shape[1], a.shape[1], 1)


def accepts(*arrays: np.ndarray) -> bool:
    """Whether :func:`gemm` can hand these to BLAS directly (one float dtype, contiguous rows)."""
    dtype = arrays[0].dtype
    return (_function(dtype) is not None and all(a.dtype == dtype and a.ndim == 2 for a in arrays)
            and all(_leading(a) is not None for a in arrays))


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, accumulate: bool) -> None:
    """``c += a @ b`` if ``accumulate`` else ``c[...] = a @ b``, in place, for 2-D views.

    ``c`` may be any view whose rows are contiguous (a column block of a wider
    buffer, say); so may ``a`` and ``b``.

    >>> c = np.ones((2, 4), np.float32)
    >>> gemm(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), c[:, 1:3], accumulate=True)
    >>> c.tolist()
    [[1.0, 4.0, 4.0, 1.0], [1.0, 4.0, 4.0, 1.0]]
    """
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    if k == 0 or not accepts(a, b, c):
        if accumulate:
            c += a @ b
        else:
            np.matmul(a, b, out=c) if c.flags.c_contiguous else c.__setitem__(Ellipsis, a @ b)
        return
    function, scalar = _function(a.dtype)
    # row-major C = A @ B is column-major C^T = B^T @ A^T: pass B first, no transposes
    one, beta = scalar(1.0), scalar(1.0 if accumulate else 0.0)
    function(b"N", b"N", _INT(n), _INT(m), _INT(k), one, b.ctypes.data, _INT(_leading(b)),
             a.ctypes.data, _INT(_leading(a)), beta, c.ctypes.data, _INT(_leading(c)))


AVAILABLE = _function(np.dtype(np.float32)) is not None
