"""NumPy's own BLAS GEMM, accumulating into a strided block of its output: ``c += a @ b``.

NumPy's ``matmul`` always overwrites its output and needs it contiguous, so a
sum of GEMMs costs a full extra pass over memory per term. BLAS's ``gemm``
itself does ``C = alpha*A@B + beta*C`` on any matrix with unit stride along
one axis, which lets several GEMMs write into one column block each of a shared
buffer with no temporaries (what :mod:`tconv.kernels.phase`'s shifted form
needs). NumPy does not expose it, so this module finds the CBLAS that NumPy
itself is linked against (the OpenBLAS in NumPy's wheels, ``numpy.libs``; any
library named like a BLAS in the process's memory map) and calls its
``cblas_?gemm`` through ctypes. A tiny GEMM checks the call before it is used.

It must be NumPy's BLAS and not another copy: OpenBLAS's worker threads spin
for about 0.1 s after each call, so two OpenBLAS libraries in one process
(SciPy's and NumPy's, say) fight over the cores. Measured here, alternating a
U-Net layer through SciPy's BLAS with a NumPy matmul made the layer 3.5x
slower (15.5 against 4.4 ms) and the matmul 2.6x.

When no such library is found :data:`AVAILABLE` is False; :func:`gemm` then
computes the same values with NumPy (one temporary per call) and the phase
algorithm does not pick the shifted form.
"""
from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache

import numpy as np

__all__ = ["gemm", "AVAILABLE", "accepts", "in_place", "library"]

ROW_MAJOR, NO_TRANS = 101, 111  # CBLAS enum values, fixed by the CBLAS standard
#: CBLAS entry points, most specific first: NumPy's wheels export OpenBLAS's symbols with a
#: ``scipy_`` prefix and a ``64_`` suffix (64-bit integers); plain ``cblas_sgemm`` takes C ints
_SYMBOLS = {"s": ["scipy_cblas_sgemm64_", "cblas_sgemm64_", "cblas_sgemm"],
            "d": ["scipy_cblas_dgemm64_", "cblas_dgemm64_", "cblas_dgemm"]}


def _candidate_libraries() -> list[str]:
    """Paths of BLAS libraries NumPy may be using, the wheel's bundled one first."""
    numpy_dir = os.path.dirname(np.__file__)
    paths = []
    for folder in (os.path.join(os.path.dirname(numpy_dir), "numpy.libs"), os.path.join(numpy_dir, ".dylibs")):
        paths += sorted(glob.glob(os.path.join(folder, "*blas*")))
    try:  # Linux: whatever BLAS is already mapped into this process (conda, system NumPy)
        with open("/proc/self/maps") as maps:
            mapped = {line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line}
        # not SciPy's bundled copy: a second OpenBLAS is exactly what must be avoided (above)
        paths += sorted(p for p in mapped if any(name in os.path.basename(p) for name in ("blas", "mkl_rt"))
                        and "scipy" not in os.path.dirname(p))
    except OSError:
        pass
    return list(dict.fromkeys(paths))


@lru_cache(maxsize=None)
def _function(kind: str):
    """``(ctypes function, scalar type, integer type, library path)`` for ``?gemm``, or None."""
    scalar = {"s": ctypes.c_float, "d": ctypes.c_double}[kind]
    for path in _candidate_libraries():
        try:
            handle = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in _SYMBOLS[kind]:
            function = getattr(handle, symbol, None)
            if function is None:
                continue
            integer = ctypes.c_int64 if symbol.endswith("64_") else ctypes.c_int
            function.restype = None
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, scalar,
                                 ctypes.c_void_p, integer, ctypes.c_void_p, integer, scalar, ctypes.c_void_p, integer]
            found = (function, scalar, integer, path)
            if _works(found, np.float32 if kind == "s" else np.float64):
                return found
    return None


def _works(found, dtype) -> bool:
    """One small accumulating GEMM on a column block, compared with NumPy's."""
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(12, dtype=dtype).reshape(3, 4)[:, 1:3]
    c = np.ones((2, 4), dtype)
    _call(found, a, b, c[:, 1:3], accumulate=True)
    expected = np.ones((2, 4), dtype)
    expected[:, 1:3] += a @ b
    return bool(np.array_equal(c, expected))


def _leading(a: np.ndarray) -> int | None:
    """Row stride in elements of a matrix whose rows are contiguous, or None."""
    item = a.itemsize
    if a.shape[1] > 1 and a.strides[1] != item:
        return None
    if a.shape[0] > 1 and (a.strides[0] % item or a.strides[0] < a.shape[1] * item):
        return None
    return max(a.strides[0] // item if a.shape[0] > 1 else a.shape[1], a.shape[1], 1)


def _kind(dtype: np.dtype) -> str | None:
    return {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(np.dtype(dtype))


def accepts(*arrays: np.ndarray) -> bool:
    """Whether :func:`gemm` hands these to BLAS directly (one float dtype, 2-D, contiguous rows).

    A BLAS with 32-bit integers also needs every extent to fit in them.
    """
    kind = _kind(arrays[0].dtype)
    found = _function(kind) if kind is not None else None
    if found is None or not all(a.dtype == arrays[0].dtype and a.ndim == 2 for a in arrays):
        return False
    leading = [_leading(a) for a in arrays]
    if any(value is None for value in leading):
        return False
    limit = 2**63 - 1 if found[2] is ctypes.c_int64 else 2**31 - 1
    return all(value * max(a.shape[0], 1) <= limit for value, a in zip(leading, arrays))


def _call(found, a, b, c, accumulate):
    function, scalar, integer, _ = found
    m, k = a.shape
    n = b.shape[1]
    function(ROW_MAJOR, NO_TRANS, NO_TRANS, integer(m), integer(n), integer(k), scalar(1.0),
             a.ctypes.data, integer(_leading(a)), b.ctypes.data, integer(_leading(b)),
             scalar(1.0 if accumulate else 0.0), c.ctypes.data, integer(_leading(c)))


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, accumulate: bool) -> None:
    """``c += a @ b`` if ``accumulate`` else ``c[...] = a @ b``, in place, for 2-D views.

    ``c`` may be any view whose rows are contiguous (a column block of a wider
    buffer, say); so may ``a`` and ``b``.

    >>> c = np.ones((2, 4), np.float32)
    >>> gemm(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), c[:, 1:3], accumulate=True)
    >>> c.tolist()
    [[1.0, 4.0, 4.0, 1.0], [1.0, 4.0, 4.0, 1.0]]
    """
    if a.shape[0] == 0 or b.shape[1] == 0:
        return
    if a.shape[1] == 0 or not accepts(a, b, c):
        if accumulate:
            c += a @ b
        elif c.flags.c_contiguous:
            np.matmul(a, b, out=c)
        else:
            c[...] = a @ b
        return
    _call(_function(_kind(a.dtype)), a, b, c, accumulate)


def in_place(dtype) -> bool:
    """Whether :func:`gemm` accumulates in place (through BLAS) for this dtype."""
    kind = _kind(dtype)
    return kind is not None and _function(kind) is not None


def library() -> str | None:
    """The path of the BLAS library :func:`gemm` calls, or None (then it uses NumPy)."""
    found = _function("s")
    return found[3] if found else None


AVAILABLE = _function("s") is not None
