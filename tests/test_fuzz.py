"""A hypothesis fuzz of the public API and the command line: bad input never ends in a traceback.

* The library (``tconv.geometry``, ``output_shape``, ``explain``, ``convert``,
  ``convert_weights``, ``solve``, ``invert``, ``draw``, ``conv_transpose``,
  ``conv``, ``conv_transpose_grad``, ``conv_transpose_vjp``, ``tune_allocator``:
  every public function that takes arguments) gets arbitrary values for every argument:
  plausible ones (small sizes, the frameworks' own words) mixed with anything
  (huge and negative ints, floats, NaN, strings, bytes, nested lists, numpy
  scalars and arrays, objects). It must return, or raise ``tconv.ConfigError``
  with a message; anything else fails the test.
* The CLI gets argument lists built from its own parser: every option of every
  subcommand, with plausible or arbitrary text. It must exit 0, or print exactly
  one ``tconv: error:`` line and exit 2; never a traceback.

Most cases start from a plausible layer (a framework, its own argument names,
values in range) and one in three then has one part swapped for anything, so
the checks deep inside run as well as the first ones.

What is bounded, and why: the arrays given to ``conv_transpose`` and friends are
small and their strides, paddings and dilations small ints (where ints), so a
legal layer fits in memory and computes in milliseconds; ``tune_allocator`` runs
with glibc's ``mallopt`` stubbed (its checks run, this process's allocator is
left alone); ``tconv bench`` runs with its benchmark process replaced by a stub
(the arguments are checked, nothing is timed); ``--out`` paths are relative
names inside a temporary folder.

The last test prints how many cases each fuzz ran, and how many of them were
accepted rather than refused (``pytest -s`` or ``-rA``). The whole file takes
about 40 s on a 2-core machine; TCONV_HYPOTHESIS_SCALE=10 hunts ten times longer.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import re
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tconv
from _budget import examples
from tconv import conventions
from tconv.cli import build_parser, main
from tconv.errors import FrameworkQuirkWarning
from tconv.forward import FORWARD_API
from tconv.cli import bench as bench_cli

CASES: collections.Counter = collections.Counter()  # cases run, per fuzz
ACCEPTED: collections.Counter = collections.Counter()  # of those, the ones that returned (not a ConfigError)


def fuzz(budget: int):
    """Hypothesis settings for one fuzz test: ``budget`` examples (scaled by TCONV_HYPOTHESIS_SCALE)."""
    return settings(max_examples=examples(budget), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------------------------- values
FRAMEWORKS = list(conventions.names()) + sorted(conventions.ALIASES)
ARG_NAMES = sorted({name for fw in conventions.names() for name in conventions.get(fw).defaults}
                   | {name for fw in conventions.names() for name in getattr(conventions.get(fw), "options", {})}
                   | {name for _, args in FORWARD_API.values() for name in args})
WORDS = ["same", "valid", "SAME", "VALID", "SAME_UPPER", "SAME_LOWER", "same_upper", "NOTSET", "CIRCULAR",
         "full", "causal", "zeros", "reflect", "NCHW", "NHWC", "NCW", "NWC", "NDHWC", "NCDHW", "channels_first",
         "channels_last", "", " ", "auto", "scatter", "phase", "col2im", "zero_insertion", "pytorch", "keras"]
DIMENSION_NUMBERS = [("NCHW", "OIHW", "NCHW"), ("NHWC", "HWIO", "NHWC"), ("NWC", "WIO", "NWC"), ("NCH", "OIH", "NCH")]
HUGE = [2**31 - 1, 2**31, 2**62, 2**63, 2**64, -(2**63), 10**30]


class Odd:
    """An object no argument expects, with a repr that spans lines."""

    def __repr__(self) -> str:
        return "Odd(\nline two)"


ATOMS = st.one_of(
    st.integers(-3, 12),
    st.none(),
    st.booleans(),
    st.sampled_from(WORDS),
    st.sampled_from(HUGE),
    st.integers(),
    st.floats(),
    st.sampled_from([1.0, 2.0, 0.5, float("nan"), float("inf")]),
    st.text(max_size=10),
    st.binary(max_size=4),
    st.complex_numbers(max_magnitude=4),
    st.integers(-3, 12).map(np.int64),
    st.integers(0, 12).map(np.uint8),
    st.floats(width=32).map(np.float32),
    st.booleans().map(np.bool_),
    st.sampled_from([Odd(), range(3), Ellipsis, slice(1, 2), object, frozenset({1})]),
)
ANY = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=2),
        st.lists(st.integers(-2, 9), max_size=4).map(np.array),
        st.sampled_from(DIMENSION_NUMBERS),
    ),
    max_leaves=8,
)
SMALL = st.integers(0, 6)
PLAUSIBLE = st.one_of(
    st.integers(-1, 6),
    st.lists(SMALL, min_size=1, max_size=3).map(tuple),
    st.lists(st.integers(-1, 5), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(-2, 4), st.integers(-2, 4)), min_size=1, max_size=3),
    st.sampled_from(WORDS + DIMENSION_NUMBERS),
    st.none(),
    st.booleans(),
)
VALUE = st.one_of(PLAUSIBLE, ANY)
SIZES = st.one_of(st.integers(1, 9), st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple), VALUE)
FRAMEWORK = st.one_of(st.sampled_from(FRAMEWORKS), VALUE)


def kwargs(reserved: tuple[str, ...] = (), names: list[str] = ARG_NAMES, values=VALUE):
    """Keyword arguments by the frameworks' own names (and some that no framework has)."""
    name = st.one_of(st.sampled_from(names), st.text(max_size=8)).filter(lambda n: n not in reserved)
    return st.dictionaries(name, values, max_size=4)


def _library_call(name: str, function, *args, **kw):
    """Call ``function``; only a ConfigError (a ValueError) with a message may escape.

    (Its message may span lines where it quotes a value whose repr does, a 2-D array say;
    the CLI prints every error on one line.)
    """
    CASES[name] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameworkQuirkWarning)
        try:
            result = function(*args, **kw)
        except tconv.ConfigError as err:
            message = str(err)
            assert isinstance(err, ValueError)
            assert message.strip(), "a ConfigError without a message"
            return None
    ACCEPTED[name] += 1
    return result


# ------------------------------------------------------------------------------- plausible layers, then mutated
# Mostly-legal layers reach the deep checks; one mutation in three swaps a part for anything at all.
STRIDES = {"stride", "strides", "stride_h", "stride_w", "window_strides"}
DILATIONS = {"dilation", "dilations", "dilation_rate", "rhs_dilation", "kernel_dilation", "dilate"}
PADS = {"padding", "pad", "pads", "pad_h", "pad_w"}
OUTPUT_PADDINGS = {"output_padding", "adj"}
OUTPUT_SIZES = {"output_size", "output_shape", "target_shape"}
GROUPS = {"groups", "group", "num_group", "feature_group_count"}
PADDING_WORDS = {
    "pytorch": ["same", "valid"], "keras": ["same", "valid"], "tf_keras": ["same", "valid"],
    "tensorflow": ["SAME", "VALID"], "jax": ["SAME", "VALID", "SAME_LOWER"], "flax": ["SAME", "VALID", "CIRCULAR"],
    "tflite": ["SAME", "VALID"], "onnx": ["same_upper"], "mxnet": [], "caffe": [],
}
FORMATS = {1: ["NWC", "NCW"], 2: ["NHWC", "NCHW"], 3: ["NDHWC", "NCDHW"]}


@st.composite
def plausible_value(draw, name: str, framework: str, ndim: int, inputs: tuple, kernel: tuple, stride: int):
    def per_axis(lo, hi, fixed=None):
        one = st.just(fixed) if fixed is not None else st.integers(lo, hi)
        return draw(st.one_of(one, st.lists(one, min_size=ndim, max_size=ndim).map(tuple)))

    if name in STRIDES:
        return per_axis(1, 3, stride) if name != "window_strides" else (stride,) * ndim
    if name in DILATIONS:
        return per_axis(1, 2)
    if name in OUTPUT_PADDINGS:
        return per_axis(0, max(stride - 1, 0))
    if name in OUTPUT_SIZES:
        out = tuple(max(i * stride + draw(st.integers(-stride, 1)), 1) for i in inputs)
        if framework in ("tensorflow", "tflite") and draw(st.booleans()):
            out = (1, *out, 3)
        return out if framework != "onnx" else list(out)
    if name in GROUPS:
        return draw(st.sampled_from([1, 1, 2]))
    if name == "pads":
        return [draw(st.integers(0, 2)) for _ in range(2 * ndim)]
    if name == "auto_pad":
        return draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if name in PADS:
        if framework in ("jax", "flax", "tensorflow") and draw(st.booleans()):
            return [(draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(ndim)]
        words = PADDING_WORDS.get(framework, [])
        return draw(st.sampled_from(words)) if words and draw(st.booleans()) else per_axis(0, 2)
    if name == "data_format":
        if framework in ("keras", "tf_keras"):
            return draw(st.sampled_from(["channels_last", "channels_first", None]))
        return draw(st.sampled_from(FORMATS.get(ndim, ["NHWC"]) + [None]))
    if name == "layout":
        return draw(st.sampled_from([None, {1: "NCW", 2: "NCHW", 3: "NCDHW"}.get(ndim, "NCHW")]))
    if name == "dimension_numbers":
        return draw(st.sampled_from([None] + [d for d in DIMENSION_NUMBERS if len(d[0]) == ndim + 2]))
    if name in ("transpose_kernel", "use_consistent_padding"):
        return draw(st.booleans())
    if name == "kernel_shape":
        return list(kernel)
    if name == "padding_mode":
        return draw(st.sampled_from(["zeros", "zeros", "reflect"]))
    if name in ("num_output", "num_filter"):
        return draw(st.integers(1, 3))
    if name == "tf_onednn":
        return draw(st.sampled_from([None, True, False]))
    return draw(PLAUSIBLE)


@st.composite
def layers(draw, names_of=lambda c: list(c.defaults) + list(getattr(c, "options", {})), max_size: int = 8,
           max_ndim: int = 3, mutate: bool = True):
    """(input_shape, kernel_size, framework, args): a plausible layer, sometimes with one part swapped for anything."""
    framework = draw(st.sampled_from(list(conventions.names())))
    convention = conventions.get(framework)
    ndim = 2 if framework == "tflite" else draw(st.integers(1, max_ndim))
    inputs = tuple(draw(st.lists(st.integers(1, max_size), min_size=ndim, max_size=ndim)))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    stride = draw(st.integers(1, 3))
    names = names_of(convention)
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=4)) if names else []
    for required in {"tensorflow": "output_shape", "tflite": "output_shape", "jax": "strides"}.get(framework, ()), :
        if required in names and required not in chosen and draw(st.integers(0, 4)):
            chosen.append(required)
    args = {name: draw(plausible_value(name, framework, ndim, inputs, kernel, stride)) for name in chosen}
    input_shape = inputs if ndim > 1 or draw(st.booleans()) else inputs[0]
    kernel_size = kernel if len(set(kernel)) > 1 or draw(st.booleans()) else kernel[0]
    shown = draw(st.sampled_from([framework, framework.upper()] + [a for a, f in conventions.ALIASES.items() if f == framework]))
    mutation = draw(MUTATION if mutate else st.just(None))
    if mutation == "input":
        input_shape = draw(VALUE)
    elif mutation == "kernel":
        kernel_size = draw(VALUE)
    elif mutation == "framework":
        shown = draw(FRAMEWORK)
    elif mutation == "value" and args:
        args[draw(st.sampled_from(sorted(args)))] = draw(VALUE)
    elif mutation == "name":
        args[draw(st.one_of(st.sampled_from(ARG_NAMES), st.text(max_size=8)))] = draw(VALUE)
    return input_shape, kernel_size, shown, args


# one case in three gets one mutation (shrinking heads for None: the plausible layer)
MUTATION = st.sampled_from([None] * 10 + ["input", "kernel", "framework", "value", "name"])


def _drop(args: dict, *reserved: str) -> dict:
    return {k: v for k, v in args.items() if k not in reserved}


LAYER_PARAMS = ("input_shape", "kernel_size", "framework")


# ----------------------------------------------------------------------------------------------- library
@fuzz(1500)
@given(layers())
def test_fuzz_geometry_and_output_shape(layer):
    input_shape, kernel, framework, args = layer
    args = _drop(args, *LAYER_PARAMS)
    g = _library_call("geometry", tconv.geometry, input_shape, kernel, framework, **args)
    if g is not None:
        assert all(type(n) is int and n >= 0 for n in g.output_shape), g.output_shape
        repr(g), str(g)
        assert _library_call("output_shape", tconv.output_shape, input_shape, kernel, framework, **args) == g.output_shape


@fuzz(500)
@given(SIZES, SIZES, FRAMEWORK, kwargs(LAYER_PARAMS))
def test_fuzz_geometry_with_anything(input_shape, kernel, framework, args):
    """No plausible start at all: every argument anything."""
    _library_call("geometry (anything)", tconv.geometry, input_shape, kernel, framework, **args)


@fuzz(400)
@given(layers())
def test_fuzz_explain(layer):
    input_shape, kernel, framework, args = layer
    e = _library_call("explain", tconv.explain, input_shape, kernel, framework, **_drop(args, *LAYER_PARAMS))
    if e is not None:
        assert str(e)
        e.to_dict()


@fuzz(400)
@given(layers(), st.one_of(st.sampled_from(list(conventions.names())), FRAMEWORK))
def test_fuzz_convert(layer, target):
    input_shape, kernel, source, args = layer
    c = _library_call("convert", tconv.convert, input_shape, kernel, source, target,
                      **_drop(args, "input_shape", "kernel_size", "source", "target"))
    if c is not None:
        assert str(c) and c.code


@st.composite
def weights(draw):
    source = draw(st.sampled_from(list(conventions.names())))
    ndim = 2 if source == "tflite" else draw(st.integers(1, 3))
    shape = draw(st.lists(st.integers(1, 3), min_size=ndim + 2, max_size=ndim + 2))
    w = np.zeros(shape)
    target = draw(st.sampled_from(list(conventions.names())))
    groups = draw(st.sampled_from([1, 1, 2]))
    flags = [draw(st.booleans()), draw(st.booleans())]
    mutation = draw(st.integers(0, 6))
    if mutation == 0:
        w = draw(_arrays())
    elif mutation == 1:
        source = draw(FRAMEWORK)
    elif mutation == 2:
        target = draw(FRAMEWORK)
    elif mutation == 3:
        groups = draw(VALUE)
    elif mutation == 4:
        flags[draw(st.integers(0, 1))] = draw(VALUE)
    return w, source, target, groups, flags


@fuzz(300)
@given(weights())
def test_fuzz_convert_weights(case):
    w, source, target, groups, (source_t, target_t) = case
    _library_call("convert_weights", tconv.convert_weights, w, source, target, groups=groups,
                  source_transpose_kernel=source_t, target_transpose_kernel=target_t)


@st.composite
def solve_calls(draw):
    framework = draw(st.sampled_from(list(conventions.names())))
    ndim = 2 if framework == "tflite" else draw(st.integers(1, 2))
    inputs = tuple(draw(st.lists(st.integers(1, 12), min_size=ndim, max_size=ndim)))
    stride = draw(st.integers(1, 3))
    outputs = tuple(max(i * stride + draw(st.integers(-2, 2)), 1) for i in inputs)
    call = {
        "input_shape": inputs if ndim > 1 or draw(st.booleans()) else inputs[0],
        "output_shape": outputs if ndim > 1 or draw(st.booleans()) else outputs[0],
        "framework": framework,
        "kernel_size": draw(st.one_of(st.none(), st.integers(1, 5))),
        "stride": draw(st.one_of(st.none(), st.just(stride))),
        "dilation": draw(st.one_of(st.none(), st.integers(1, 2))),
        "max_kernel": draw(st.integers(1, 7)),
        "max_stride": draw(st.integers(1, 4)),
        "limit": draw(st.one_of(st.none(), st.integers(1, 5))),
    }
    if draw(st.integers(0, 2)) == 0:
        key = draw(st.sampled_from(sorted(call)))
        call[key] = draw(VALUE if key != "framework" else FRAMEWORK)
    return call


@fuzz(400)
@given(solve_calls())
def test_fuzz_solve(call):
    call = dict(call)
    positional = [call.pop(k) for k in ("input_shape", "output_shape", "framework", "kernel_size", "stride", "dilation")]
    found = _library_call("solve", tconv.solve, *positional, **call)
    for solution in found or ():
        str(solution)


FORWARD_NAMES = {fw: list(args) for fw, (_, args) in FORWARD_API.items()}


@fuzz(400)
@given(layers(names_of=lambda c: FORWARD_NAMES.get(c.name, []), max_size=12, max_ndim=2))
def test_fuzz_invert(layer):
    input_shape, kernel, framework, args = layer
    inv = _library_call("invert", tconv.invert, input_shape, kernel, framework, **_drop(args, *LAYER_PARAMS))
    if inv is not None:
        assert str(inv)


DRAW_KW = st.fixed_dictionaries({}, optional={
    "view": st.one_of(st.sampled_from(["scatter", "zero-insertion", "overlap", "compare", "stamp"]), VALUE),
    "numbers": st.one_of(st.booleans(), VALUE),
    "frame": st.one_of(st.integers(-3, 3), VALUE),
    "compare": st.one_of(st.lists(st.sampled_from(["keras:padding=same", "pytorch:padding=1", "onnx:", "keras:strides=2x"]), max_size=2), VALUE),
    "input_values": VALUE,
    "kernel_values": VALUE,
})
DRAW_PARAMS = LAYER_PARAMS + ("view", "output", "fmt", "numbers", "input_values", "kernel_values", "compare", "frame")


@fuzz(250)
@given(layers(max_size=5, max_ndim=2), DRAW_KW)
def test_fuzz_draw_text(layer, options):
    input_shape, kernel, framework, args = layer
    drawing = _library_call("draw", tconv.draw, input_shape, kernel, framework, **options, **_drop(args, *DRAW_PARAMS))
    if drawing is not None:
        assert isinstance(drawing.text(), str)


DTYPES = st.sampled_from(["f8", "f4", "f2", "i8", "i4", "u1", "b1", "c16", "O", "U1"])


def _array(dtype: str, max_dims: int):
    elements = st.integers(0 if dtype in ("u1", "b1") else -3, 1 if dtype == "b1" else 3)
    if dtype == "U1":
        elements = st.sampled_from("ab1")
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=4), elements=elements)


def _arrays(max_dims: int = 5):
    return st.one_of(
        DTYPES.flatmap(lambda dtype: _array(dtype, max_dims)),
        st.lists(st.lists(st.integers(-2, 2), max_size=3), max_size=3),
        VALUE.filter(lambda v: not isinstance(v, np.ndarray) or v.size < 50),
    )


def _channels_first(framework: str, args: dict) -> bool:
    if framework in ("pytorch", "onnx", "mxnet", "caffe"):
        return True
    fmt = args.get("data_format")
    return isinstance(fmt, str) and (fmt.upper().startswith("NC") or fmt == "channels_first")


@st.composite
def engine_calls(draw, cotangent: bool = False):
    """(x, w, b, framework, algorithm, args[, cotangent]): arrays laid out as the framework wants, small sizes.

    Spatial sizes, strides, paddings and dilations stay small, so that a legal layer fits in
    memory; about one case in three swaps an array, the dtype, the algorithm, the framework or an
    argument for anything.
    """
    input_shape, kernel, framework, args = draw(layers(
        names_of=lambda c: [n for n in c.defaults if n not in GROUPS and n != "dimension_numbers"], max_size=5,
        mutate=False))
    try:
        name = conventions.canonical(framework)
    except tconv.ConfigError:
        name = None
    inputs = input_shape if isinstance(input_shape, tuple) else (input_shape,)
    ks = kernel if isinstance(kernel, tuple) else (kernel,) * len(inputs)
    if name is None or not all(type(v) is int and 0 < v < 9 for v in inputs + ks) or len(ks) != len(inputs):
        inputs, ks, name = (3,), (2,), "pytorch"  # the layer's sizes were mutated: keep the arrays small
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    if _channels_first(name, args):
        x_shape = (n, cin, *inputs)
    else:
        x_shape = (n, *inputs, cin)
    if name in ("pytorch", "onnx", "mxnet", "caffe"):
        w_shape = (cin, cout, *ks)
    elif name == "tflite":
        w_shape = (cout, *ks, cin)
    elif name in ("jax", "flax") and not args.get("transpose_kernel"):
        w_shape = (*ks, cin, cout)
    else:
        w_shape = (*ks, cout, cin)
    dtype = draw(st.sampled_from(["f8", "f8", "f4", "i8"]))
    x = np.arange(int(np.prod(x_shape)), dtype=dtype).reshape(x_shape) % 5
    w = np.ones(w_shape, dtype)
    b = draw(st.one_of(st.none(), st.just(np.ones(cout, dtype))))
    algorithm = draw(st.sampled_from(["auto", "phase", "col2im", "zero_insertion", "scatter"]))
    mutation = draw(st.sampled_from([None] * 12 + ["x", "w", "b", "algorithm", "dtype", "arg", "framework"]))
    if mutation == "x":
        x = draw(_arrays())
    elif mutation == "w":
        w = draw(_arrays())
    elif mutation == "b":
        b = draw(_arrays(2))
    elif mutation == "algorithm":
        algorithm = draw(VALUE)
    elif mutation == "dtype":
        x = x.astype(draw(DTYPES))
    elif mutation == "arg":
        args[draw(st.sampled_from(ARG_NAMES))] = draw(SMALL_ARG)
    elif mutation == "framework":
        framework = draw(FRAMEWORK)
    args = _drop(args, "x", "w", "b", "y", "framework", "algorithm", "input_shape", "cotangent")
    call = (x, w, b, framework, algorithm, args)
    if cotangent:
        shape = draw(st.one_of(st.none(), st.just(None), _arrays()))
        call += (shape,)
    return call


# small ints where ints: a legal layer must fit in memory and compute at once
SMALL_ARG = st.one_of(st.integers(-1, 3), st.lists(st.integers(-1, 3), min_size=1, max_size=4).map(tuple),
                      st.lists(st.tuples(st.integers(-1, 2), st.integers(-1, 2)), min_size=1, max_size=3),
                      st.sampled_from(WORDS + DIMENSION_NUMBERS), st.none(), st.booleans(), ATOMS.filter(
                          lambda v: not isinstance(v, (int, np.integer)) or -4 < v < 8))


@fuzz(500)
@given(engine_calls())
def test_fuzz_conv_transpose(call):
    x, w, b, framework, algorithm, args = call
    y = _library_call("conv_transpose", tconv.conv_transpose, x, w, b, framework, algorithm, **args)
    if y is not None:
        assert isinstance(y, np.ndarray)


@fuzz(200)
@given(engine_calls(), st.one_of(st.none(), SIZES))
def test_fuzz_conv(call, input_shape):
    x, w, b, framework, algorithm, args = call
    y = _library_call("conv", tconv.conv, x, w, b, framework, input_shape, **args)
    if y is not None:
        assert isinstance(y, np.ndarray)


@fuzz(200)
@given(engine_calls(cotangent=True))
def test_fuzz_conv_transpose_grad(call):
    x, w, b, framework, algorithm, args, cotangent = call
    if cotangent is None:  # the cotangent of the layer itself, when it has one
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cotangent = np.ones_like(tconv.conv_transpose(x, w, b, framework, **args))
            except tconv.ConfigError:
                cotangent = np.ones(3)
    _library_call("conv_transpose_grad", tconv.conv_transpose_grad, x, w, cotangent, b, framework, **args)


@fuzz(150)
@given(engine_calls(cotangent=True))
def test_fuzz_conv_transpose_vjp(call):
    x, w, b, framework, algorithm, args, cotangent = call
    result = _library_call("conv_transpose_vjp", tconv.conv_transpose_vjp, x, w, b, framework, algorithm, **args)
    if result is not None:
        y, vjp = result
        _library_call("conv_transpose_vjp()", vjp, np.ones_like(y) if cotangent is None else cotangent)


@fuzz(100)
@given(st.one_of(st.integers(1, 2**25), VALUE), st.one_of(st.none(), st.integers(0, 2**26), VALUE))
def test_fuzz_tune_allocator(mmap_threshold, trim_threshold):
    # glibc's mallopt is stubbed: the arguments are checked for real, and this process's allocator is left
    # alone (a 1-byte mmap threshold would slow every later test; test_allocator measures the real effect)
    libc = mock.Mock(mallopt=mock.Mock(return_value=1))
    with mock.patch("tconv.allocator._glibc", return_value=libc):
        result = _library_call("tune_allocator", tconv.tune_allocator, mmap_threshold, trim_threshold)
    assert result in (None, True)
    for call in libc.mallopt.call_args_list:  # mallopt(param, value): the value reaches C as a plain int
        assert type(call.args[1]) is int and call.args[1] >= 1, call


# --------------------------------------------------------------------------------------------------- CLI
def _subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("tconv has no subcommands")


SUBCOMMANDS = _subparsers()
SIZE_TEXT = st.one_of(
    st.lists(st.integers(1, 6), min_size=1, max_size=3).map(lambda v: "x".join(map(str, v))),
    st.lists(st.integers(0, 9), min_size=1, max_size=3).map(lambda v: ",".join(map(str, v))),
    st.sampled_from(["8x8x", "8,,8", ",8", "-1x8", "+2", "8.5", "\uff18", "\u0663", "1_0", "2147483648", "0",
                     "9" * 30, "4x4x4x4", " 3 ", "3 x 3", "", "-", "x", "(2, 2)", "[[1, 1], [1, 1]]", "None",
                     "True", "same", "SAME_UPPER", "a\nb", "\x00", "-h"]),
    st.text(max_size=8),
)
FRAMEWORK_TEXT = st.one_of(st.sampled_from(FRAMEWORKS + ["kerass", "TF", " keras ", ""]), st.text(max_size=6))
ASSIGNMENT = st.one_of(
    st.tuples(st.sampled_from(ARG_NAMES), SIZE_TEXT).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.sampled_from(["strides", "=2", "padding=", "a=b=c", "padding=((1,1),(1,1))", "pads=[1,1,1,1]"]),
    st.text(max_size=10),
)
OUT_PATH = st.one_of(
    st.sampled_from(["x.svg", "x.txt", "x.png", "x.gif", "x.bmp", "x", ".svg", "", "sub/x.svg", "/nonexistent-dir/x.png",
                     "x.svg\x00", "\udc80.svg"]),
    st.text(max_size=8).filter(lambda t: "/" not in t and "\\" not in t and ".." not in t).map(lambda t: t + ".svg"),
)
SPEC = st.one_of(
    st.tuples(FRAMEWORK_TEXT, st.lists(ASSIGNMENT, max_size=2)).map(lambda t: f"{t[0]}:{','.join(t[1])}"),
    st.sampled_from(["keras:padding=same", "pytorch:padding=1,output_padding=1", "onnx:auto_pad=SAME_UPPER", ":",
                     "keras", "keras:padding=same,,strides=2"]),
    st.text(max_size=10),
)
# value strategies by option (dest); others get SIZE_TEXT
OPTION_VALUES = {
    "framework": FRAMEWORK_TEXT,
    "target": FRAMEWORK_TEXT,
    "padding": st.one_of(st.sampled_from(WORDS), SIZE_TEXT),
    "arg": ASSIGNMENT,
    "view": st.one_of(st.sampled_from(["scatter", "zero-insertion", "overlap", "compare", "stamp"]), st.text(max_size=6)),
    "out": OUT_PATH,
    "fmt": st.one_of(st.sampled_from(["svg", "png", "gif", "txt", "text", "bmp", "SVG"]), st.text(max_size=4)),
    "only": st.one_of(st.sampled_from(["DCGAN", "U-Net", "depthwise", "nothing", ""]), st.text(max_size=6)),
    "allocator": st.sampled_from(["tuned", "default", "glibc"]),
}


def _option_tokens(action: argparse.Action, draw) -> list[str]:
    flag = draw(st.sampled_from(action.option_strings))
    if action.nargs == 0:
        return [flag]
    if action.dest == "compare":
        return [flag] + draw(st.lists(SPEC, min_size=1, max_size=3))
    value = draw(OPTION_VALUES.get(action.dest, SIZE_TEXT))
    return [f"{flag}={value}"] if draw(st.booleans()) and flag.startswith("--") else [flag, value]


@st.composite
def command_lines(draw) -> tuple[str, list[str]]:
    name = draw(st.sampled_from(sorted(SUBCOMMANDS)))
    parser = SUBCOMMANDS[name]
    argv = [name]
    for action in parser._actions:
        if not action.option_strings:  # a positional: usually there, sometimes missing
            if draw(st.integers(0, 9)):
                argv.append(draw(SIZE_TEXT))
    options = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    for action in draw(st.lists(st.sampled_from(options), max_size=6)) if options else ():
        argv += _option_tokens(action, draw)
    if not draw(st.integers(0, 7)):
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(SIZE_TEXT, st.sampled_from(["--", "-", "--bogus"]))))
    return name, argv


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-cli")


@contextlib.contextmanager
def _chdir(folder):  # contextlib.chdir is Python 3.11+; tconv supports 3.10
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _run_cli(argv: list[str], folder) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with _chdir(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch.object(bench_cli, "subprocess", mock.Mock(call=mock.Mock(return_value=0))) as stub, \
            mock.patch("tconv.serve._http.Server.serve_forever"), mock.patch("webbrowser.open"):
        # tconv bench: its arguments are checked, the benchmark process is not started;
        # tconv serve: its arguments are checked and its port bound, but it does not serve (nor open a browser)
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help / --version
            code = exit_.code
            assert code == 0 and out.getvalue(), (argv, code, err.getvalue())
            return 0, out.getvalue(), err.getvalue()
    if stub.call.called:
        assert argv[0] == "bench" and code == 0
    return code, out.getvalue(), err.getvalue()


@fuzz(1000)
@given(command_lines())
def test_fuzz_cli(scratch, command_line):
    name, argv = command_line
    CASES["cli"] += 1
    CASES[f"cli: {name}"] += 1
    code, out, err = _run_cli(argv, scratch)
    assert "Traceback" not in out + err, (argv, err)
    if code == 2:
        assert out == "", (argv, out)
        assert err.count("\n") == 1 and err.endswith("\n") and "\r" not in err, (argv, err)
        assert err.startswith("tconv: error: "), (argv, err)
    else:
        assert code == 0, (argv, code, err)
        ACCEPTED["cli"] += 1
        for line in err.splitlines():
            assert line.startswith(("tconv: warning: ", "tconv: note: ", "tconv: assumed: ", "wrote ")), (argv, err)


@fuzz(400)
@given(st.sampled_from(["shape", "explain", "convert"]), SIZE_TEXT, SIZE_TEXT,
       st.lists(st.tuples(st.sampled_from(["-s", "-p", "-d", "--op", "-o", "-g"]), SIZE_TEXT), max_size=3),
       st.lists(ASSIGNMENT, max_size=2), FRAMEWORK_TEXT)
def test_fuzz_cli_layer_options(scratch, command, input_text, kernel, options, assignments, framework):
    """The layer options that every layer command shares, more densely than test_fuzz_cli draws them."""
    argv = [command, input_text, "-k", kernel, "-f", framework]
    argv += [token for option in dict(options).items() for token in option]
    argv += [token for text in assignments for token in ("-a", text)]
    argv += ["--to", "onnx"] if command == "convert" else []
    CASES["cli-layer-options"] += 1
    code, out, err = _run_cli(argv, scratch)
    assert "Traceback" not in out + err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    ACCEPTED["cli-layer-options"] += code == 0
    if code == 2:
        assert out == "" and err.count("\n") == 1 and err.startswith("tconv: error: "), (argv, err)


def _text(value) -> str:
    """A value as the CLI reads it: sizes as 2x3, words as they are, anything else as a Python literal."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple) and value and all(type(v) is int for v in value):
        return "x".join(map(str, value))
    if isinstance(value, str):
        return value
    return repr(value)


TEXT_MUTATIONS = st.sampled_from([None] * 8 + ["insert", "double", "replace", "repeat", "drop"])


@st.composite
def layer_command_lines(draw) -> tuple[str, list[str]]:
    """A plausible layer written as a command line (generic options or -a NAME=VALUE), sometimes with one token mangled."""
    command = draw(st.sampled_from(["shape", "explain", "draw", "convert", "invert", "solve"]))
    if command == "invert":
        layer = layers(names_of=lambda c: FORWARD_NAMES.get(c.name, []), max_size=12, max_ndim=2, mutate=False)
    else:
        layer = layers(max_size=5 if command == "draw" else 8, max_ndim=2 if command == "draw" else 3, mutate=False)
    input_shape, kernel, framework, args = draw(layer)
    generic = {own: flag for flag, own in zip(
        ("-s", "-p", "-d", "--output-padding", "-o", "-g"),
        (conventions.get(framework).cli_names.get(key) for key in
         ("stride", "padding", "dilation", "output_padding", "output_size", "groups")))
        if own is not None and command not in ("invert", "solve")}
    argv = [command, _text(input_shape)]
    if command == "solve":
        argv.append(_text(tuple(2 * i for i in input_shape) if isinstance(input_shape, tuple) else 2 * input_shape))
    argv += ["-k", _text(kernel), "-f", framework]
    for name, value in args.items():
        if command == "solve":
            break
        if name in generic and (framework not in ("onnx",) or name != "pads") and draw(st.booleans()):
            argv += [generic[name], _text(value)]
        else:
            argv += ["-a", f"{name}={_text(value)}"]
    if command == "convert":
        argv += ["--to", draw(st.sampled_from(list(conventions.names())))]
    if command == "draw" and not draw(st.integers(0, 5)):  # now and then a file (a GIF's frames take long)
        argv += ["--out", draw(st.sampled_from(["layer.svg", "layer.png", "layer.txt"]))]
    mutation = draw(TEXT_MUTATIONS)
    if mutation is not None:
        at = draw(st.integers(1, len(argv) - 1))
        token = argv[at]
        if mutation == "insert":
            where = draw(st.integers(0, len(token)))
            argv[at] = token[:where] + draw(st.sampled_from(list("x,×-+. _\uff18\u0663a\n=()[]'"))) + token[where:]
        elif mutation == "double":
            argv[at] = re.sub(r"([x,])", r"\1\1", token, count=1) if re.search("[x,]", token) else token + "x"
        elif mutation == "replace":
            argv[at] = draw(st.one_of(SIZE_TEXT, st.text(max_size=6)))
        elif mutation == "repeat":
            argv += argv[at - 1: at + 1] if argv[at - 1].startswith("-") else ["-k", "5"]
        elif mutation == "drop":
            del argv[at]
    return command, argv


@fuzz(1000)
@given(layer_command_lines())
def test_fuzz_cli_plausible_layers(scratch, command_line):
    """Legal-looking layers through the CLI, so its parsing and the library behind it run in depth."""
    name, argv = command_line
    CASES["cli-layers"] += 1
    code, out, err = _run_cli(argv, scratch)
    assert "Traceback" not in out + err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert out == "" and err.count("\n") == 1 and err.startswith("tconv: error: "), (argv, err)
    else:
        ACCEPTED["cli-layers"] += 1
        assert out.strip() or "--out" in argv, argv
        for line in err.splitlines():
            assert line.startswith(("tconv: warning: ", "tconv: note: ", "tconv: assumed: ", "wrote ")), (argv, err)


# ------------------------------------------------------------------------------------------------ report
def test_fuzz_case_count():
    """How many cases the fuzz ran (shown by ``pytest -s`` or ``-rA``); it must have run some."""
    if not CASES:
        pytest.skip("no fuzz test ran in this session (run the whole file to count its cases)")
    total = sum(n for key, n in CASES.items() if not key.startswith("cli: ") and key != "output_shape")
    lines = [f"  {key}: {n}" + (f" ({ACCEPTED[key]} accepted)" if not key.startswith("cli: ") else "")
             for key, n in sorted(CASES.items())]
    print(f"\nfuzz cases: {total} in all\n" + "\n".join(lines))
    assert total > 0
