"""Empty outputs: where a framework returns an array with a 0-sized axis, tconv gives that shape.

Each row is a layer whose window keeps no element on some axis. The real
framework runs it; tconv's geometry must give the framework's shape with a
FrameworkQuirkWarning, ``tconv.conv_transpose`` must return an empty array of
that shape by every algorithm, and ``tconv.torch`` must return what torch
returns (an empty tensor from torch's oneDNN kernel, its error from the others).
Frameworks that refuse (onnxruntime) must be refused by tconv too.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tconv
from tconv.kernels import ALGORITHMS
from _conformance import outcome

# framework, input (spatial), kernel, args, the framework's layout is channels first
ROWS = [
    ("pytorch", (2, 6), (4, 4), dict(stride=(4, 3), padding=(4, 3), output_padding=(0, 1))),
    ("pytorch", (2, 2, 2), (4, 4, 4), dict(stride=(1, 4, 1), padding=(0, 4, 0))),
    ("jax", (2,), (4,), dict(strides=(4,), padding=[(-1, -2)])),
    ("jax", (3, 2), (2, 4), dict(strides=(1, 4), padding=[(1, 1), (-1, -1)])),
    ("flax", (2,), (4,), dict(strides=(4,), padding=[(-1, -1)])),
    ("tensorflow", (1, 1), (3, 3), dict(output_shape=(0, 1), padding=[[2, 1], [1, 1]])),
]


def _geometry(framework, inputs, kernel, args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = tconv.geometry(inputs, kernel, framework, **args)
    assert any("returns an empty output" in str(c.message) for c in caught), [str(c.message) for c in caught]
    return g


def _run(framework, inputs, kernel, args, modules):
    """The framework's own output for ones, channels first: (N=2, C=1, *spatial)."""
    ndim = len(inputs)
    if framework == "pytorch":
        torch = modules["torch"]
        fn = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
              3: torch.nn.functional.conv_transpose3d}[ndim]
        return fn(torch.ones(2, 1, *inputs), torch.ones(1, 1, *kernel), **args).numpy()
    if framework in ("jax", "flax"):
        jax = modules["jax"]
        letters = "HWD"[:ndim]
        x = np.ones((2, *inputs, 1), np.float32)
        if framework == "jax":
            y = jax.lax.conv_transpose(x, np.ones((*kernel, 1, 1), np.float32), args["strides"], args["padding"],
                                       dimension_numbers=(f"N{letters}C", f"{letters}IO", f"N{letters}C"))
        else:
            layer = modules["flax"].ConvTranspose(1, kernel, strides=args["strides"], padding=args["padding"],
                                                  use_bias=False)
            y = layer.apply({"params": {"kernel": np.ones((*kernel, 1, 1), np.float32)}}, x)
        return np.moveaxis(np.asarray(y), -1, 1)
    tf = modules["tf"]
    y = tf.nn.conv_transpose(np.ones((2, *inputs, 1), np.float32), np.ones((*kernel, 1, 1), np.float32),
                             [2, *args["output_shape"], 1], 1, padding=[[0, 0], *args["padding"], [0, 0]])
    return np.moveaxis(y.numpy(), -1, 1)


@pytest.fixture(scope="module")
def modules(torch, jax, flax_linen, tf):
    return {"torch": torch, "jax": jax, "flax": flax_linen, "tf": tf}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}-{'x'.join(map(str, r[1]))}" for r in ROWS])
def test_empty_output_shape_values_and_every_algorithm(modules, row):
    framework, inputs, kernel, args = row
    g = _geometry(framework, inputs, kernel, args)
    assert g.empty and 0 in g.output_shape
    y = _run(framework, inputs, kernel, args, modules)
    assert y.shape[2:] == g.output_shape, (y.shape, g)
    channels_first = framework == "pytorch"
    x = np.ones((2, 1, *inputs) if channels_first else (2, *inputs, 1))
    w = np.ones((1, 1, *kernel) if channels_first else (*kernel, 1, 1))
    for algorithm in ALGORITHMS:
        got = tconv.conv_transpose(x, w, np.ones(1), framework, algorithm, **args)
        assert got.size == 0
        assert (got.shape[2:] if channels_first else got.shape[1:-1]) == g.output_shape, (algorithm, got.shape)


def test_empty_output_gradients(torch):
    """The adjoint of an empty layer: zero gradients for x and w, the (empty) sum for the bias."""
    x, w = np.ones((2, 1, 2, 6)), np.ones((1, 3, 4, 4))
    args = dict(stride=(4, 3), padding=(4, 3), output_padding=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grads = tconv.conv_transpose_grad(x, w, np.ones((2, 3, 0, 14)), np.ones(3), **args)
    xt = torch.ones(2, 1, 2, 6, requires_grad=True)
    wt = torch.ones(1, 3, 4, 4, requires_grad=True)
    bt = torch.ones(3, requires_grad=True)
    torch.nn.functional.conv_transpose2d(xt, wt, bt, **args).sum().backward()
    for got, want in zip(grads, (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_array_equal(got, want.numpy())


def test_tconv_torch_returns_what_torch_returns(torch):
    import tconv.torch as tt

    args = dict(stride=(4, 3), padding=(4, 3), output_padding=(0, 1))
    ours, theirs = tt.ConvTranspose2d(3, 4, 4, **args), torch.nn.ConvTranspose2d(3, 4, 4, **args)
    for dtype, batch in ((torch.float32, 2), (torch.float64, 1)):
        x = torch.ones(batch, 3, 2, 6, dtype=dtype)
        status, want = outcome(lambda: theirs.to(dtype)(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got_status, got = outcome(lambda: ours.to(dtype)(x))
        assert got_status == status, (dtype, got_status, status)
        if status == "ok":
            assert got.shape == want.shape
        else:
            assert "Output size is too small" in str(got) and "Output size is too small" in str(want)


def test_onnxruntime_refuses_empty_outputs_and_so_does_tconv(ort):
    from test_conformance_onnx import run_ort
    import onnx

    x, w = np.ones((1, 1, 2), np.float64), np.ones((1, 1, 4), np.float64)
    for attrs in ({"strides": [4], "pads": [4, 4]}, {"strides": [4], "output_shape": [0]}):
        status, value = outcome(lambda: run_ort(ort, onnx, x, w, attrs))
        assert status == "error", value
        with pytest.raises(tconv.ConfigError):
            tconv.geometry((2,), 4, "onnx", **attrs)


def test_negative_sizes_stay_errors():
    with pytest.raises(tconv.ConfigError, match="output size on axis 0 is -1"):
        tconv.geometry((2,), 4, "pytorch", stride=4, padding=5, output_padding=1)
    with pytest.raises(tconv.ConfigError):
        tconv.AxisGeometry(2, 4, 4, 1, crop_begin=5, crop_end=4)
    with pytest.raises(tconv.ConfigError, match="Negative padding is larger"):
        tconv.geometry((2,), 4, "jax", strides=(4,), padding=[(-3, -4)])
