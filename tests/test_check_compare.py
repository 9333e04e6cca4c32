"""tconv.check(source, converted): two models of one network, compared layer by layer on sizes and kept windows.

The classic conversion slip: PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) and Keras'
Conv2DTranspose(3, strides=2, padding="same") give the same 2x size, but keep windows one pixel apart.
The comparison must name that layer as shifted by 1, and real torch and Keras (same weights) must agree
that the outputs are shifted, not equal.
"""
from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv.checking._compare import Comparison


def _pair(torch, keras, keras_padding="same"):
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.ConvTranspose2d(1, 1, 3, 2, padding=1, output_padding=1))
    inputs = keras.Input(shape=(5, 5, 1), batch_size=1)
    x = keras.layers.Conv2D(1, 3, padding="same")(inputs)
    k = keras.Model(inputs, keras.layers.Conv2DTranspose(1, 3, strides=2, padding=keras_padding)(x))
    return t, k


def test_a_shifted_window_is_named(torch, keras):
    t, k = _pair(torch, keras)
    result = tconv.check(t, k, (1, 1, 5, 5))
    assert isinstance(result, Comparison) and not result.same
    assert result.first_difference == (
        "layer 2: 1 (ConvTranspose2d) keeps full[1:11] of 11 x full[1:11] of 11, conv2d_transpose (Conv2DTranspose) "
        "keeps full[0:10] of 11 x full[0:10] of 11: the same size, shifted by 1 on axis 0, 1 on axis 1"
        .replace("conv2d_transpose (", f"{k.layers[-1].name} ("))
    # real frameworks, same kernel: the outputs are the same values one pixel apart
    w = np.arange(9, dtype=np.float32).reshape(3, 3)
    x = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32)
    up_t = torch.nn.ConvTranspose2d(1, 1, 3, 2, padding=1, output_padding=1, bias=False)
    up_t.weight.data = torch.tensor(w).reshape(1, 1, 3, 3)
    yt = up_t(torch.tensor(x).reshape(1, 1, 5, 5)).detach().numpy()[0, 0]
    up_k = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", use_bias=False)
    up_k.build((1, 5, 5, 1))
    up_k.set_weights([w[:, :, None, None]])
    yk = np.asarray(up_k(x.reshape(1, 5, 5, 1)))[0, :, :, 0]
    assert yt.shape == yk.shape and not np.allclose(yt, yk)
    assert np.allclose(yt[:-1, :-1], yk[1:, 1:], atol=1e-5)


def test_a_model_and_its_onnx_export_agree(torch, tmp_path):
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(2, 1, 4, 2, padding=1))
    path = tmp_path / "m.onnx"
    torch.onnx.export(t.eval(), torch.zeros(1, 1, 8, 8), str(path), dynamo=False)
    result = tconv.check(t, path, (1, 1, 8, 8))
    assert result.same, result
    assert len(result.pairs) == 2 and str(result).startswith("Sequential (pytorch) vs m.onnx (onnx): the same")


def test_comparing_needs_a_shape_for_pytorch(torch):
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3))
    with pytest.raises(tconv.ConfigError, match="needs the source's input shape"):
        tconv.check(t, t)
    with pytest.raises(tconv.ConfigError, match="takes one input shape"):
        tconv.check(t, (1, 1, 8, 8), (1, 1, 8, 8))
