"""PyTorch conformance: tconv's shapes, windows and rejections against real torch.

Configurations come from hypothesis: 1-3 spatial axes, kernel 1..7, stride 1..4,
dilation 1..3, padding 0..K (including paddings that leave no output, and
an empty one: PyTorch's oneDNN kernel returns it, its native kernels raise),
output_padding in and out of range, ``forward(output_size=...)`` targets in and
out of range, and groups. The uncropped reference is torch's own transposed
convolution with padding 0 (see ``_conformance``).
"""
from __future__ import annotations

import warnings

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from _conformance import compare, make_data, outcome, reference_full

TOO_SMALL = "Output size is too small"


def _compare_torch(torch, tconv_call, run, full, context):
    """compare(), where ``run(dtype, batch)`` runs the layer; empty outputs as tconv's warning describes them.

    An empty output comes back from PyTorch's oneDNN kernel (float32, batch 2 here) with exactly
    tconv's shape, unless output_padding >= stride sends the layer to a native kernel; the native
    kernels (float64 here) raise "Output size is too small".
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            geometry = tconv_call()
        except tconv.ConfigError:
            geometry = None
    if geometry is None:
        # rejected: every kernel must refuse it, oneDNN's included
        status, value = outcome(lambda: run(torch.float32, 2))
        assert status == "error", f"{context}: tconv rejected it but PyTorch (float32) returned {value.shape}"
    if geometry is None or not geometry.empty:
        return compare(tconv_call, lambda: run(torch.float64, 1), full, context)
    assert any("returns an empty output" in str(c.message) for c in caught), f"{context}: no empty-output warning"
    status, value = outcome(lambda: run(torch.float64, 1))
    assert status == "error" and TOO_SMALL in str(value), f"{context}: float64 gave {status} {str(value)[:200]}"
    status, value = outcome(lambda: run(torch.float32, 2))
    native = any(op >= s for op, s in zip(geometry.args["output_padding"], geometry.stride))
    if native or not torch.backends.mkldnn.is_available():
        assert status == "error" and TOO_SMALL in str(value), f"{context}: float32 gave {status}"
    else:
        assert status == "ok", f"{context}: PyTorch's oneDNN kernel raised {str(value)[:300]}"
        assert value.shape[2:] == geometry.output_shape, (value.shape, geometry)
    return geometry


@st.composite
def torch_configs(draw):
    ndim = draw(st.integers(1, 3))
    axes = []
    for _ in range(ndim):
        i = draw(st.integers(1, 6 if ndim < 3 else 4))
        k = draw(st.integers(1, 7 if ndim < 3 else 4))
        s = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3))
        K = d * (k - 1) + 1
        p = draw(st.integers(0, (K + 1) // 2 + 1))
        axes.append((i, k, s, d, p))
    mode = draw(st.sampled_from(["output_padding", "output_size", "plain"]))
    extra = []
    for (i, k, s, d, p) in axes:
        if mode == "output_padding":
            extra.append(draw(st.integers(0, max(s, d))))  # max(s, d) itself is out of range
        elif mode == "output_size":
            smallest = (i - 1) * s - 2 * p + d * (k - 1) + 1
            extra.append(smallest + draw(st.integers(-1, s)))  # -1 and s are out of range
    groups = draw(st.sampled_from([1, 2]))
    return ndim, axes, mode, extra, groups


@settings(max_examples=examples(60))
@given(torch_configs(), st.integers(0, 2**16))
# the empty output: (0, 14)
@example(config=(2, [(2, 4, 4, 1, 4), (6, 4, 3, 1, 3)], "output_padding", [0, 1], 1), seed=0)
@example(config=(1, [(2, 4, 4, 1, 2)], "output_size", [0], 2), seed=1)
@example(config=(3, [(2, 2, 2, 1, 2), (2, 2, 1, 1, 0), (1, 1, 1, 1, 0)], "plain", [], 1), seed=2)
def test_pytorch_shape_window_and_rejection(torch, config, seed):
    ndim, axes, mode, extra, groups = config
    input_shape = tuple(a[0] for a in axes)
    kernel = tuple(a[1] for a in axes)
    stride = tuple(a[2] for a in axes)
    dilation = tuple(a[3] for a in axes)
    padding = tuple(a[4] for a in axes)
    x, w = make_data(seed, input_shape, kernel, cin=2, cout=2, groups=groups)
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if mode == "output_padding":
        args["output_padding"] = tuple(extra)

    def framework(dtype, batch):
        module_cls = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}[ndim]
        layer = module_cls(2, 2, kernel, bias=False, dtype=dtype, **args)
        xs = torch.from_numpy(x).to(dtype).repeat(batch, *([1] * (x.ndim - 1)))
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            if mode == "output_size":
                return layer(xs, output_size=list(extra)).numpy()
            return layer(xs).numpy()

    tconv_args = dict(args)
    if mode == "output_size":
        tconv_args["output_size"] = tuple(extra)
    _compare_torch(
        torch,
        lambda: tconv.geometry(input_shape, kernel, "pytorch", **tconv_args),
        framework,
        lambda: reference_full(torch, x, w, stride, dilation, groups),
        f"pytorch {input_shape} k={kernel} {tconv_args}",
    )


@settings(max_examples=examples(20))
@given(st.integers(1, 6), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3), st.integers(0, 4), st.integers(0, 3),
       st.integers(0, 2**16))
def test_pytorch_functional_api(torch, i, k, s, d, p, op, seed):
    """F.conv_transpose1d (the functional API) follows the same rules as the modules."""
    x, w = make_data(seed, (i,), (k,))
    _compare_torch(
        torch,
        lambda: tconv.geometry((i,), k, "pytorch", stride=s, padding=p, output_padding=op, dilation=d),
        lambda dtype, batch: torch.nn.functional.conv_transpose1d(
            torch.from_numpy(x).to(dtype).repeat(batch, 1, 1), torch.from_numpy(w).to(dtype), stride=s, padding=p,
            output_padding=op, dilation=d
        ).numpy(),
        lambda: reference_full(torch, x, w, (s,), (d,)),
        f"F.conv_transpose1d i={i} k={k} s={s} d={d} p={p} op={op}",
    )


def test_pytorch_padding_same_fails_in_forward(torch):
    """nn.ConvTranspose2d accepts padding='same' in the constructor and fails in forward; tconv refuses it."""
    layer = torch.nn.ConvTranspose2d(1, 1, 3, stride=1, padding="same")  # accepted here...
    with pytest.raises(Exception) as info:  # ...and fails here
        layer(torch.zeros(1, 1, 4, 4))
    assert isinstance(info.value, (TypeError, RuntimeError)), repr(info.value)
    with pytest.raises(Exception):
        torch.nn.functional.conv_transpose2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), padding="same")
    with pytest.raises(tconv.ConfigError, match="padding='same'.*fails in forward"):
        tconv.geometry((4, 4), 3, "pytorch", padding="same")
