"""The public entry points: framework arrays in, framework arrays out.

``conv_transpose`` reads the framework's layouts (:mod:`tconv.kernels.layouts`),
gets every size and window from ``tconv.geometry`` (nothing is re-derived here),
runs one algorithm on the canonical form (:mod:`tconv.kernels._core`), and puts
the computed window into the framework's output. ``conv`` is its adjoint, the
forward convolution; ``conv_transpose_grad``/``conv_transpose_vjp`` give the
gradients with respect to input, weight and bias.

Dtypes: float16 is computed in float32 and rounded once at the end; float32
and float64 are computed in their own precision. Integer arrays are computed
*exactly* in int64 and the result is int64; when the values could overflow
int64 (``max|x| * max|w| * terms + max|b| >= 2**63``) a ConfigError says so.
Booleans, complex numbers, strings and objects are rejected.
"""
from __future__ import annotations

from math import prod
from typing import Any, Callable, NamedTuple

import numpy as np

from .. import conventions
from ..api import geometry as make_geometry
from ..errors import ConfigError
from ..geometry import Geometry
from . import _core
from ._registry import ALGORITHMS
from .layouts import Layout, layout_for

__all__ = ["conv_transpose", "conv", "conv_transpose_grad", "conv_transpose_vjp", "Grads"]

INT64_MAX = 2**63 - 1


class Grads(NamedTuple):
    """Gradients of a scalar loss with respect to the inputs of ``conv_transpose``.

    ``x`` and ``w`` are in the framework's layouts; ``b`` is None when there was no bias.
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None


# ---- input checks ---------------------------------------------------------------
def _as_numeric(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise ConfigError(f"{name} is required (a NumPy array)")
    try:
        array = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise ConfigError(f"{name} cannot be read as an array: {err}") from None
    kind = array.dtype.kind
    if kind in "fiu":
        return array
    what = {"b": "boolean", "c": "complex", "O": "object", "U": "string", "S": "bytes"}.get(kind, str(array.dtype))
    raise ConfigError(
        f"{name} has dtype {array.dtype} ({what}); tconv computes float16, float32, float64 and integer arrays"
    )


def _dtypes(arrays: list[np.ndarray]) -> tuple[np.dtype, np.dtype]:
    """(compute dtype, result dtype)."""
    if all(a.dtype.kind in "iu" for a in arrays):
        return np.dtype(np.int64), np.dtype(np.int64)
    result = np.result_type(*arrays)
    if result == np.float16:
        return np.dtype(np.float32), result
    return result, result


def _check_integer_range(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, terms: int) -> None:
    def largest(a: np.ndarray) -> int:
        return int(np.abs(a.astype(object)).max()) if a.size else 0

    bound = largest(x) * largest(w) * terms + (largest(b) if b is not None else 0)
    if bound > INT64_MAX:
        raise ConfigError(
            f"integer inputs could overflow: max|x| * max|w| * {terms} terms per output + max|b| = {bound} "
            f"exceeds int64 ({INT64_MAX}); tconv computes integers exactly in int64 or not at all. "
            "Convert to float64 to compute approximately"
        )


class _Call(NamedTuple):
    layout: Layout
    geometry: Geometry
    groups: int
    in_channels: int
    out_channels: int


def _resolve(x_shape: tuple[int, ...], w: np.ndarray, b: np.ndarray | None, framework: str, args: dict,
             x_name: str = "x", input_shape: Any = None) -> _Call:
    """Layouts, geometry and channel checks shared by all entry points."""
    name = conventions.canonical(framework)
    rank = len(x_shape)
    if rank < 3:
        raise ConfigError(
            f"{x_name} has {rank} dimensions {x_shape}; tconv needs batch, channels and at least one spatial axis "
            f"(add a batch axis with {x_name}[None] for a single example)"
        )
    if w.ndim != rank:
        raise ConfigError(
            f"the weight has {w.ndim} dimensions {w.shape} but {x_name} has {rank}: a layer with {rank - 2} spatial "
            f"axes needs a weight with {rank} (input channels, output channels and {rank - 2} kernel axes)"
        )
    layout = layout_for(name, rank, args)
    spatial = tuple(x_shape[a] for a in layout.x[2:]) if input_shape is None else input_shape
    geometry = make_geometry(spatial, layout.kernel_size(w), name, **args)
    groups = geometry.groups
    in_channels = x_shape[layout.x[1]] if input_shape is None else w.shape[layout.w[0]]
    weight_in = w.shape[layout.w[0]]
    if weight_in != in_channels:
        raise ConfigError(
            f"{x_name} has {in_channels} channels but the weight {w.shape} expects {weight_in} input channels "
            f"({conventions.get(name).title}: {layout.description})"
        )
    if in_channels % groups:
        raise ConfigError(f"{in_channels} input channels cannot be split into groups={groups}; they must divide evenly")
    out_channels = groups * w.shape[layout.w[1]]
    if b is not None and b.shape != (out_channels,):
        raise ConfigError(f"the bias has shape {b.shape}; this layer has {out_channels} output channels, so it must be ({out_channels},)")
    return _Call(layout, geometry, groups, in_channels, out_channels)


def _tf_output_shape_channels(call: _Call, framework: str, args: dict, batch: int) -> None:
    shape = args.get("output_shape")
    if conventions.canonical(framework) not in ("tensorflow", "tflite") or shape is None:
        return
    shape = list(shape.tolist() if hasattr(shape, "tolist") else shape)
    if len(shape) == call.geometry.ndim + 2:
        channels = shape[call.layout.out[1]]
        if channels != call.out_channels or shape[0] != batch:
            raise ConfigError(
                f"output_shape={tuple(shape)} asks for batch {shape[0]} and {channels} channels; the input and "
                f"weight give batch {batch} and {call.out_channels} channels"
            )


def _canonical_weight(w_torch: np.ndarray, groups: int) -> np.ndarray:
    """``(C_in, C_out/g, *k)`` -> ``(G, *k, Ci, Co)``, C-contiguous (one copy of the weight)."""
    cin, co, *kernel = w_torch.shape
    grouped = w_torch.reshape(groups, cin // groups, co, *kernel)
    return np.ascontiguousarray(np.moveaxis(grouped, (1, 2), (-2, -1)))


def _algorithm(name: str) -> Callable[[_core.Problem], np.ndarray]:
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ConfigError(f"algorithm={name!r} is not one of {', '.join(map(repr, ALGORITHMS))}")
    return ALGORITHMS[name]


# ---- the transposed convolution on canonical arrays ------------------------------
def transposed_internal(x: np.ndarray, w_torch: np.ndarray, geometry: Geometry, algorithm: str = "auto") -> np.ndarray:
    """``(N, *I, C_in)`` -> ``(N, *O, C_out)`` without bias, in ``x``'s dtype."""
    compute = _algorithm(algorithm)
    groups, axes = geometry.groups, geometry.axes
    n, *spatial, cin = x.shape
    cin_total, co, *kernel = w_torch.shape
    w_grouped = w_torch.reshape(groups, cin_total // groups, co, *kernel)
    x5 = x.reshape(n, *spatial, groups, cin // groups)
    if geometry.wrap:
        window = tuple((0, ax.full) for ax in axes)
    else:
        window = tuple((max(ax.crop_begin, 0), min(ax.full - ax.crop_end, ax.full)) for ax in axes)
    out_shape = (n, *geometry.output_shape, groups, co)
    if n == 0 or any(stop <= start for start, stop in window):
        return np.zeros(out_shape, x.dtype).reshape(n, *geometry.output_shape, groups * co)
    values = compute(_core.Problem(x5, w_grouped, axes, window))
    if geometry.wrap:
        y = _core.fold(values, axes)
    elif all(start == ax.crop_begin and stop == ax.full - ax.crop_end for (start, stop), ax in zip(window, axes)):
        y = values
    else:  # negative crops: zeros around the computed part
        y = np.zeros(out_shape, x.dtype)
        y[(slice(None),) + tuple(slice(start - ax.crop_begin, stop - ax.crop_begin) for (start, stop), ax in zip(window, axes))] = values
    return y.reshape(n, *geometry.output_shape, groups * co)


def _prepare(x, w, b, framework, args, x_name="x", input_shape=None):
    x = _as_numeric(x, x_name)
    w = _as_numeric(w, "w")
    b = None if b is None else _as_numeric(b, "b")
    call = _resolve(x.shape, w, b, framework, args, x_name, input_shape)
    arrays = [x, w] + ([b] if b is not None else [])
    compute_dtype, result_dtype = _dtypes(arrays)
    return x, w, b, call, compute_dtype, result_dtype


def conv_transpose(x: Any, w: Any, b: Any = None, framework: str = "pytorch", algorithm: str = "auto", **args: Any) -> np.ndarray:
    """A transposed convolution computed exactly as ``framework`` computes it, in NumPy.

    Parameters
    ----------
    x : array_like
        The input in the framework's layout (PyTorch/ONNX/MXNet/Caffe ``(N, C, *spatial)``;
        Keras/TF/JAX/Flax/TFLite ``(N, *spatial, C)`` by default, see :mod:`tconv.kernels.layouts`).
    w : array_like
        The weight in the framework's layout (PyTorch ``(C_in, C_out/groups, *k)``,
        Keras/TF ``(*k, C_out, C_in)``, Flax ``(*k, C_in, C_out)``, TFLite OHWI, JAX by
        ``dimension_numbers`` and ``transpose_kernel``).
    b : array_like, optional
        Bias, shape ``(C_out,)``; it is added everywhere, including zero-padded borders.
    framework : str
        Whose arithmetic and layouts to follow (``tconv.conventions.names()`` or an alias).
    algorithm : {'auto', 'phase', 'col2im', 'zero_insertion', 'scatter'}
        How to compute it; all give the same values up to rounding.
    **args
        The framework's own arguments (``stride``, ``padding``, ``groups``, ...).

    Returns
    -------
    ndarray
        The output in the framework's layout. float16 in, float16 out (computed in
        float32); integers in, int64 out (exact).

    Raises
    ------
    ConfigError
        Illegal arguments, wrong ranks or shapes, mismatched channels, non-numeric
        arrays, or integers that could overflow int64.

    Examples
    --------
    A k=2, s=2 layer on a 2x2 input, with and without padding=1 (padding crops
    the full output, it does not grow it):

    >>> import numpy as np, tconv
    >>> x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    >>> w = np.ones((1, 1, 2, 2))
    >>> tconv.conv_transpose(x, w, stride=2)[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]])
    >>> tconv.conv_transpose(x, w, stride=2, padding=1)[0, 0]
    array([[1., 2.],
           [3., 4.]])

    Keras layouts: channels last, kernel ``(kh, kw, out, in)``:

    >>> y = tconv.conv_transpose(np.ones((1, 8, 8, 3)), np.ones((3, 3, 5, 3)), framework="keras",
    ...                          strides=2, padding="same")
    >>> y.shape
    (1, 16, 16, 5)
    """
    x, w, b, call, compute_dtype, result_dtype = _prepare(x, w, b, framework, args)
    _tf_output_shape_channels(call, framework, args, x.shape[call.layout.x[0]])
    layout, geometry = call.layout, call.geometry
    if compute_dtype.kind == "i":
        folds = prod(-(-ax.full // ax.output_size) if ax.wrap else 1 for ax in geometry.axes)
        _check_integer_range(x, w, b, (call.in_channels // call.groups) * prod(geometry.kernel_size) * folds)
    xi = layout.input_to_internal(x).astype(compute_dtype, copy=False)
    wt = layout.weight_to_torch(w).astype(compute_dtype, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf propagate silently, as in the frameworks
        y = transposed_internal(xi, wt, geometry, algorithm)
    if b is not None:
        y += b.astype(compute_dtype, copy=False)
    return layout.internal_to_output(y.astype(result_dtype, copy=False))


# ---- the adjoint: the forward convolution ----------------------------------------
def _embed_full(y: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The adjoint of taking the window: ``(N, *O, C)`` -> ``(N, *full, C)``."""
    result = y
    for n, ax in enumerate(geometry.axes):
        positions = np.arange(ax.full) - ax.crop_begin
        if ax.wrap:
            result = np.take(result, positions % ax.output_size, axis=1 + n)
            continue
        inside = (positions >= 0) & (positions < ax.output_size)
        shape = list(result.shape)
        shape[1 + n] = ax.full
        full = np.zeros(shape, result.dtype)
        target: list[Any] = [slice(None)] * len(shape)
        target[1 + n] = np.nonzero(inside)[0]
        full[tuple(target)] = np.take(result, positions[inside], axis=1 + n)
        result = full
    return result


def _tap_view(full: np.ndarray, geometry: Geometry, tap: tuple[int, ...]) -> np.ndarray:
    """``full[j*s + d*t]`` for every input position ``j``."""
    return full[(slice(None),) + tuple(slice(ax.dilation * t, ax.dilation * t + ax.zero_inserted_size, ax.stride)
                                                 for ax, t in zip(geometry.axes, tap))]


def conv_internal(y: np.ndarray, w_torch: np.ndarray, geometry: Geometry) -> np.ndarray:
    """``(N, *O, C_out)`` -> ``(N, *I, C_in)``: the adjoint of :func:`transposed_internal`."""
    groups = geometry.groups
    n = y.shape[0]
    wc = _canonical_weight(w_torch, groups)  # (G, *k, Ci, Co)
    ci, co = wc.shape[-2:]
    full = _embed_full(y, geometry).reshape(n, *geometry.full_shape, groups, co)
    rows = n * prod(geometry.input_shape)
    x = np.zeros((rows, groups, ci), y.dtype)
    for tap in np.ndindex(*geometry.kernel_size):
        view = _tap_view(full, geometry, tap).reshape(rows, groups, co)
        x += _core.channel_mix(view, wc[(slice(None),) + tuple(tap)].transpose(0, 2, 1))
    return x.reshape(n, *geometry.input_shape, groups * ci)


def conv(y: Any, w: Any, b: Any = None, framework: str = "pytorch", input_shape: Any = None, **args: Any) -> np.ndarray:
    """The forward convolution that ``conv_transpose`` (same ``w``, same ``args``) transposes.

    ``conv`` is the adjoint: ``<conv_transpose(x, w), y> == <x, conv(y, w)>`` for
    all ``x`` and ``y``. It is also the gradient of ``conv_transpose`` with respect
    to its input, and the layer a "Conv then ConvTranspose" reconstruction
    starts with.

    Parameters
    ----------
    y : array_like
        An array shaped like ``conv_transpose``'s output (framework layout).
    w : array_like
        The transposed convolution's weight, in the framework's layout.
    b : array_like, optional
        Bias of the forward convolution, shape ``(C_in,)``.
    framework : str
        Whose arguments and layouts to use.
    input_shape : tuple of int, optional
        The spatial shape of the transposed convolution's input (= this result's
        spatial shape). Found by search when omitted; TensorFlow and TFLite,
        whose ``output_shape`` fixes the input, need it when the search fails.
    **args
        The transposed convolution's arguments.

    Returns
    -------
    ndarray
        Shaped like ``conv_transpose``'s input, in the framework's layout.

    Examples
    --------
    >>> import numpy as np, tconv
    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> y = np.ones((1, 1, 4, 4))
    >>> float((tconv.conv_transpose(x, w, stride=2) * y).sum()), float((x * tconv.conv(y, w, stride=2)).sum())
    (36.0, 36.0)
    """
    y = _as_numeric(y, "y")
    w_arr = _as_numeric(w, "w")
    name = conventions.canonical(framework)
    if y.ndim < 3 or w_arr.ndim != y.ndim:
        _resolve(y.shape, w_arr, None, framework, args, "y")  # raises the rank error
    layout = layout_for(name, y.ndim, args)
    out_spatial = tuple(y.shape[a] for a in layout.out[2:])
    if input_shape is None:
        input_shape = _find_input_shape(out_spatial, layout.kernel_size(w_arr), name, args)
    input_shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else (input_shape,) * len(out_spatial)
    bias = None if b is None else _as_numeric(b, "b")
    call = _resolve((0,) * y.ndim, w_arr, None, framework, args, "y", input_shape)
    if call.geometry.output_shape != out_spatial:
        raise ConfigError(
            f"y has spatial shape {out_spatial} but the transposed convolution of input {input_shape} gives "
            f"{call.geometry.output_shape}"
        )
    channels = y.shape[layout.out[1]]
    if channels != call.out_channels:
        raise ConfigError(f"y has {channels} channels; the weight {w_arr.shape} gives {call.out_channels} output channels")
    if bias is not None and bias.shape != (call.in_channels,):
        raise ConfigError(f"the bias of conv has shape {bias.shape}; it must be ({call.in_channels},), one per input channel")
    compute_dtype, result_dtype = _dtypes([y, w_arr] + ([bias] if bias is not None else []))
    if compute_dtype.kind == "i":
        _check_integer_range(y, w_arr, bias, call.out_channels // call.groups * prod(call.geometry.kernel_size) * prod(
            -(-ax.full // ax.output_size) if ax.wrap else 1 for ax in call.geometry.axes))
    yi = y.transpose((layout.out[0], *layout.out[2:], layout.out[1])).astype(compute_dtype, copy=False)
    x = conv_internal(yi, layout.weight_to_torch(w_arr).astype(compute_dtype, copy=False), call.geometry)
    if bias is not None:
        x += bias.astype(compute_dtype, copy=False)
    return layout.internal_to_input(x.astype(result_dtype, copy=False))


def _find_input_shape(out_spatial: tuple[int, ...], kernel: tuple[int, ...], framework: str, args: dict) -> tuple[int, ...]:
    """The input shape whose transposed convolution has ``out_spatial``.

    A binary search per axis (each axis's output grows with its input), the other
    axes held at a generous size; a rejected size counts as too small.
    """
    import warnings

    convention = conventions.get(framework)
    generous = [2 * max(o, 1) + 2 for o in out_spatial]

    def output(shape):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return convention.to_geometry(tuple(shape), kernel, **args).output_shape

    found = list(generous)
    for a, wanted in enumerate(out_spatial):
        lo, hi = 1, generous[a]
        while lo < hi:
            mid = (lo + hi) // 2
            trial = list(generous)
            trial[a] = mid
            try:
                too_small = output(trial)[a] < wanted
            except ConfigError:
                too_small = True
            lo, hi = (mid + 1, hi) if too_small else (lo, mid)
        found[a] = lo
    try:
        if output(found) == tuple(out_spatial):
            return tuple(found)
    except ConfigError:
        pass
    raise ConfigError(
        f"could not find the input shape whose transposed convolution gives {out_spatial} under {framework}'s "
        "rules; pass input_shape=(...) (the spatial shape of the transposed convolution's input)"
    )


# ---- gradients -----------------------------------------------------------------
def conv_transpose_grad(x: Any, w: Any, cotangent: Any, b: Any = None, framework: str = "pytorch", **args: Any) -> Grads:
    """Gradients of ``sum(conv_transpose(x, w, b, ...) * cotangent)`` with respect to x, w and b.

    * ``x``: the forward convolution of the cotangent (:func:`conv`);
    * ``w``: for each tap ``t``, ``sum over n, j of x[n, j] (outer) cotangent_full[n, j*s + d*t]``;
    * ``b``: the cotangent summed over batch and space (bias reaches every output).

    Parameters
    ----------
    x, w, b, framework, **args
        As for :func:`conv_transpose`.
    cotangent : array_like
        Shaped like the output.

    Returns
    -------
    Grads
        ``(x, w, b)`` in the framework's layouts (``b`` None without a bias).

    Examples
    --------
    >>> import numpy as np, tconv
    >>> g = tconv.conv_transpose_grad(np.ones((1, 1, 2)), np.ones((1, 1, 3)), np.ones((1, 1, 5)), b=np.zeros(1), stride=2)
    >>> g.x.tolist(), g.w.tolist(), g.b.tolist()
    ([[[3.0, 3.0]]], [[[2.0, 2.0, 2.0]]], [5.0])
    """
    x, w, b, call, compute_dtype, result_dtype = _prepare(x, w, b, framework, args)
    layout, geometry = call.layout, call.geometry
    cot = _as_numeric(cotangent, "cotangent")
    n = x.shape[layout.x[0]]
    expected = [0] * x.ndim
    expected[layout.out[0]], expected[layout.out[1]] = n, call.out_channels
    for axis, size in zip(layout.out[2:], geometry.output_shape):
        expected[axis] = size
    if cot.shape != tuple(expected):
        raise ConfigError(f"the cotangent has shape {cot.shape}; the output of this layer has shape {tuple(expected)}")
    compute_dtype, result_dtype = _dtypes([x, w, cot] + ([b] if b is not None else []))
    ci_internal = layout.input_to_internal(x).astype(compute_dtype, copy=False)
    yi = cot.transpose((layout.out[0], *layout.out[2:], layout.out[1])).astype(compute_dtype, copy=False)
    wt = layout.weight_to_torch(w).astype(compute_dtype, copy=False)
    dx = conv_internal(yi, wt, geometry)
    # weight: per tap, x^T @ cotangent view, per group
    groups = geometry.groups
    full = _embed_full(yi, geometry)
    cin, co = wt.shape[0], wt.shape[1]
    rows = n * prod(geometry.input_shape)
    xm = ci_internal.reshape(rows, groups, cin // groups).transpose(1, 2, 0)
    dwc = np.zeros((*geometry.kernel_size, groups, cin // groups, co), compute_dtype)
    for tap in np.ndindex(*geometry.kernel_size):
        view = _tap_view(full, geometry, tap).reshape(rows, groups, co).transpose(1, 0, 2)
        dwc[tap] = np.matmul(xm, view)
    dw_torch = np.moveaxis(dwc, (-3, -2, -1), (0, 1, 2)).reshape(cin, co, *geometry.kernel_size)
    db = None if b is None else yi.reshape(-1, call.out_channels).sum(axis=0)
    return Grads(
        layout.internal_to_input(dx.astype(result_dtype, copy=False)),
        layout.weight_from_torch(dw_torch.astype(result_dtype, copy=False)),
        None if db is None else db.astype(result_dtype, copy=False),
    )


def conv_transpose_vjp(x: Any, w: Any, b: Any = None, framework: str = "pytorch", algorithm: str = "auto", **args: Any):
    """``(y, vjp)`` like ``jax.vjp``: ``vjp(cotangent)`` returns :class:`Grads`.

    Examples
    --------
    >>> import numpy as np, tconv
    >>> y, vjp = tconv.conv_transpose_vjp(np.ones((1, 1, 2)), np.ones((1, 1, 3)), stride=2)
    >>> y.tolist(), vjp(np.ones_like(y)).x.tolist()
    ([[[1.0, 1.0, 2.0, 1.0, 1.0]]], [[[3.0, 3.0]]])
    """
    y = conv_transpose(x, w, b, framework, algorithm, **args)

    def vjp(cotangent: Any) -> Grads:
        return conv_transpose_grad(x, w, cotangent, b, framework, **args)

    return y, vjp
