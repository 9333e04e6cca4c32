"""jax.lax.conv_transpose and flax.linen.ConvTranspose against tconv.

Kernels (see ``_conformance.lax_kernel``): with ``transpose_kernel=False`` lax
correlates the stride-dilated input with the kernel as given, so the torch
kernel must be flipped in space; ``transpose_kernel=True`` flips it (and swaps
the in/out axes) itself.

Deliberate difference: where the padding removes the whole uncropped output,
JAX returns an empty array and tconv raises ConfigError (an empty layer is a
configuration mistake); the tests check that JAX did return size 0 there.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from _conformance import channels_first, channels_last, compare, lax_kernel, make_data, outcome, reference_full

LETTERS = {1: "H", 2: "HW", 3: "HWD"}


def _per_axis(draw, ndim, lo, hi):
    return tuple(draw(st.integers(lo, hi)) for _ in range(ndim))


def _empty_output_case(framework_call, context):
    """tconv refused an empty output: check that the framework really returned one."""
    status, value = outcome(framework_call)
    if status == "ok":
        assert 0 in np.shape(value)[2:], f"{context}: tconv called the output empty, framework gave {np.shape(value)}"
    return status


@st.composite
def lax_configs(draw):
    ndim = draw(st.integers(1, 3))
    small = ndim == 3
    inputs = _per_axis(draw, ndim, 1, 4 if small else 6)
    kernel = _per_axis(draw, ndim, 1, 4 if small else 7)
    strides = _per_axis(draw, ndim, 1, 4)
    dilation = _per_axis(draw, ndim, 1, 3)
    consistent = draw(st.booleans())
    kind = draw(st.sampled_from(["SAME", "VALID", "pairs", "pairs", "list pairs", "same", "valid"]))
    if kind in ("pairs", "list pairs"):
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        pairs = [(draw(st.integers(-1, K)), draw(st.integers(-1, K))) for K in spans]
        padding = pairs if kind == "pairs" else [list(p) for p in pairs]
    else:
        padding = kind
    return inputs, kernel, strides, dilation, padding, consistent, draw(st.booleans())


@settings(max_examples=40)
@given(lax_configs(), st.integers(0, 2**16))
def test_lax_conv_transpose(torch, jax, config, seed):
    inputs, kernel, strides, dilation, padding, consistent, transpose_kernel = config
    ndim = len(inputs)
    x, w = make_data(seed, inputs, kernel)
    sp = LETTERS[ndim]
    dn = ("N" + sp + "C", sp + "IO", "N" + sp + "C")
    args = dict(strides=strides, padding=padding, rhs_dilation=dilation, transpose_kernel=transpose_kernel,
                use_consistent_padding=consistent)

    def framework():
        y = jax.lax.conv_transpose(channels_last(x), lax_kernel(w, transpose_kernel), dimension_numbers=dn, **args)
        return channels_first(np.asarray(y))

    context = f"lax.conv_transpose {inputs} k={kernel} {args}"
    try:
        tconv.geometry(inputs, kernel, "jax", **args)
    except tconv.ConfigError as err:
        if "empty output" in str(err):
            _empty_output_case(framework, context)
            return
    compare(
        lambda: tconv.geometry(inputs, kernel, "jax", **args),
        framework,
        lambda: reference_full(torch, x, w, strides, dilation),
        context,
    )


@st.composite
def flax_configs(draw):
    ndim = draw(st.integers(1, 3))
    small = ndim == 3
    inputs = _per_axis(draw, ndim, 1, 4 if small else 6)
    kernel = _per_axis(draw, ndim, 1, 4 if small else 7)
    strides = _per_axis(draw, ndim, 1, 4)
    dilation = _per_axis(draw, ndim, 1, 3)
    kind = draw(st.sampled_from(["SAME", "VALID", "CIRCULAR", "CIRCULAR", "int", "ints", "pairs", "same"]))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if kind == "int":
        padding = draw(st.integers(-1, min(spans)))
    elif kind == "ints":
        padding = [draw(st.integers(-1, K)) for K in spans]
    elif kind == "pairs":
        padding = [(draw(st.integers(-1, K)), draw(st.integers(-1, K))) for K in spans]
    else:
        padding = kind
    return inputs, kernel, strides, dilation, padding, draw(st.booleans())


@settings(max_examples=30)
@given(flax_configs(), st.integers(0, 2**16))
def test_flax_conv_transpose(torch, jax, flax_linen, config, seed):
    inputs, kernel, strides, dilation, padding, transpose_kernel = config
    x, w = make_data(seed, inputs, kernel)
    args = dict(strides=strides, padding=padding, kernel_dilation=dilation, transpose_kernel=transpose_kernel)

    def framework():
        layer = flax_linen.ConvTranspose(features=2, kernel_size=kernel, use_bias=False, **args)
        params = {"params": {"kernel": lax_kernel(w, transpose_kernel)}}
        # one compiled program per configuration instead of one per op (much faster on CPU)
        return channels_first(np.asarray(jax.jit(layer.apply)(params, channels_last(x))))

    context = f"flax ConvTranspose {inputs} k={kernel} {args}"
    try:
        tconv.geometry(inputs, kernel, "flax", **args)
    except tconv.ConfigError as err:
        if "empty output" in str(err):
            _empty_output_case(framework, context)
            return
    compare(
        lambda: tconv.geometry(inputs, kernel, "flax", **args),
        framework,
        lambda: reference_full(torch, x, w, strides, dilation),
        context,
    )
