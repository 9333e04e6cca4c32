"""Shared pieces of the conformance tests: test data, the independent reference, and comparisons.

The reference for every framework is PyTorch's own ``F.conv_transpose`` with
``padding=0, output_padding=0``: the UNCROPPED transposed convolution, computed
by a real framework, never by tconv. Each test then cuts the window that tconv
claims out of that uncropped output (``window`` below: a slice, zeros where the
window reaches past the full output, or a periodic fold for Flax CIRCULAR) and
compares it with what the framework under test returned.

Inputs and kernels hold small integers, so every framework computes them
exactly, in float32 as well as float64: comparisons are exact, not approximate.

Kernel layouts (each one checked by the tests themselves, since a wrong layout
makes the window comparison fail):

* torch / ONNX: ``(Cin, Cout/groups, *k)``; this is the reference layout;
* Keras ``keras.ops.conv_transpose`` and ``tf.nn.conv_transpose``:
  ``(*k, Cout, Cin)``, the torch kernel transposed, NOT flipped: both are the
  gradient of the same cross-correlation;
* ``lax.conv_transpose(transpose_kernel=False)`` and Flax ConvTranspose
  (``transpose_kernel=False``): ``(*k, Cin, Cout)`` holding the torch kernel
  FLIPPED in space, because lax correlates the stride-dilated input directly;
* ``transpose_kernel=True``: ``(*k, Cout, Cin)`` unflipped (lax flips and swaps).
"""
from __future__ import annotations

import numpy as np

SPATIAL = "HWD"


def ints(rng: np.random.Generator, shape) -> np.ndarray:
    """Small random integers as float64: exact in every framework's arithmetic."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def make_data(seed: int, input_shape, kernel_size, cin: int = 2, cout: int = 2, groups: int = 1):
    """(x, w): x is (1, cin, *input_shape), w is torch-layout (cin, cout/groups, *kernel_size)."""
    rng = np.random.default_rng(seed)
    x = ints(rng, (1, cin, *input_shape))
    w = ints(rng, (cin, cout // groups, *kernel_size))
    return x, w


def reference_full(torch, x: np.ndarray, w: np.ndarray, stride, dilation, groups: int = 1) -> np.ndarray:
    """The uncropped transposed convolution (channels first), by PyTorch with padding 0."""
    F = torch.nn.functional
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[x.ndim - 2]
    out = fn(torch.from_numpy(x), torch.from_numpy(w), stride=tuple(stride), dilation=tuple(dilation), groups=groups)
    return out.numpy()


def window(full: np.ndarray, geometry) -> np.ndarray:
    """Cut tconv's kept window out of the uncropped output (spatial axes from index 2).

    Slices ``full[crop_begin : full - crop_end]`` per axis, adding zeros where
    a crop is negative; for a wrapping axis, folds the full output onto the
    output size (output o sums full[crop_begin + o + m*out] over m).
    """
    result = full
    for n, ax in enumerate(geometry.axes):
        axis = n + 2
        size = result.shape[axis]
        assert size == ax.full, f"reference full size {size} != tconv's full {ax.full} on axis {n}"
        out = ax.output_size
        if ax.wrap:
            folded = np.zeros(result.shape[:axis] + (out,) + result.shape[axis + 1:], result.dtype)
            for f in range(size):
                o = (f - ax.crop_begin) % out
                idx = [slice(None)] * result.ndim
                idx[axis] = slice(o, o + 1)
                src = [slice(None)] * result.ndim
                src[axis] = slice(f, f + 1)
                folded[tuple(idx)] += result[tuple(src)]
            result = folded
            continue
        before, after = max(-ax.crop_begin, 0), max(-ax.crop_end, 0)
        if before or after:
            pad = [(0, 0)] * result.ndim
            pad[axis] = (before, after)
            result = np.pad(result, pad)
        start = max(ax.crop_begin, 0)
        idx = [slice(None)] * result.ndim
        idx[axis] = slice(start, start + out)
        result = result[tuple(idx)]
    return result


def channels_last(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 1, -1)


def channels_first(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(a), -1, 1)


def tf_kernel(w: np.ndarray) -> np.ndarray:
    """torch (Cin, Cout, *k) -> Keras / tf.nn (*k, Cout, Cin), not flipped."""
    nd = w.ndim - 2
    return np.transpose(w, tuple(range(2, 2 + nd)) + (1, 0))


def lax_kernel(w: np.ndarray, transpose_kernel: bool) -> np.ndarray:
    """torch (Cin, Cout, *k) -> lax/Flax HWIO-style: see the module docstring."""
    nd = w.ndim - 2
    spatial = tuple(range(2, 2 + nd))
    if transpose_kernel:
        return np.transpose(w, spatial + (1, 0))
    flipped = np.flip(w, axis=spatial)
    return np.transpose(flipped, spatial + (0, 1))


def assert_window(got_channels_first: np.ndarray, full: np.ndarray, geometry, context: str) -> None:
    """The framework's output has tconv's shape and equals tconv's window of the reference."""
    got = np.asarray(got_channels_first, dtype=np.float64)
    assert got.shape[2:] == geometry.output_shape, (
        f"{context}: framework output {got.shape[2:]} != tconv {geometry.output_shape}"
    )
    expected = window(full, geometry)
    np.testing.assert_array_equal(got, expected, err_msg=f"{context}: window differs from tconv's {geometry!r}")


def outcome(fn):
    """Run ``fn``; return ("ok", value) or ("error", exception)."""
    try:
        return "ok", fn()
    except Exception as err:  # noqa: BLE001 - the frameworks raise many types
        return "error", err


def compare(tconv_call, framework_call, full, context: str, expect_framework_error: bool = False):
    """tconv rejects exactly when the framework raises; otherwise shape and window agree.

    ``tconv_call`` returns a Geometry or raises ConfigError (any other exception
    is a bug and propagates). ``framework_call`` returns the framework's output
    channels first. ``full`` is a callable giving the reference uncropped output.

    Where tconv's geometry lists ``runtime_errors`` (the framework accepts the
    layer but fails when it runs it on this machine), the framework must raise
    with one of those messages. Empty outputs (a 0-sized axis) are compared
    like any other: the framework must return exactly that shape.
    Returns the geometry (or None when both rejected).
    """
    import tconv

    try:
        geometry = tconv_call()
        rejection = None
    except tconv.ConfigError as err:
        geometry, rejection = None, err
    status, value = outcome(framework_call)
    if geometry is None:
        assert status == "error", (
            f"{context}: tconv rejected it ({rejection}) but the framework returned shape "
            f"{np.shape(value)[2:]}"
        )
        return None
    if geometry.runtime_errors:
        assert status == "error", (
            f"{context}: tconv said the framework fails here ({geometry.runtime_errors}) but it returned "
            f"{np.shape(value)}"
        )
        assert any(m in str(value) for m in geometry.runtime_errors), (
            f"{context}: the framework failed with {str(value)[:400]!r}, not with tconv's {geometry.runtime_errors}"
        )
        return geometry
    if expect_framework_error:
        assert status == "error", f"{context}: the framework was expected to fail but returned {np.shape(value)}"
        return geometry
    assert status == "ok", f"{context}: the framework raised {type(value).__name__}: {str(value)[:400]} but tconv accepted {geometry!r}"
    assert_window(value, full(), geometry, context)
    return geometry
