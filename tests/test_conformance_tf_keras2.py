"""tf.keras 2 (the ``tf_keras`` package, Keras 2.21 for TensorFlow 2.21) against tconv's ``keras`` convention.

tf.keras 2 computes its sizes with ``conv_utils.deconv_output_length`` and runs
``tf.nn.conv*_transpose``, Keras 3 with ``compute_conv_transpose_output_shape``;
tconv claims the two agree everywhere (sizes, windows, rejections, and the even
kernel + 'same' + output_padding=0 failure). These tests hold it to that with
real ``Conv{1,2,3}DTranspose`` layers of both.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings

from _budget import examples

import tconv
from tconv.conventions import tf_cpu
from _conformance import compare, make_data, reference_full, tf_kernel
from test_conformance_tensorflow import keras_configs, keras_input, keras_output


@pytest.fixture(scope="session")
def tf_keras(tf):
    import tf_keras

    return tf_keras


def _run_layer(tf_keras, x, w, kernel, args):
    ndim = len(kernel)
    layer_cls = {1: tf_keras.layers.Conv1DTranspose, 2: tf_keras.layers.Conv2DTranspose, 3: tf_keras.layers.Conv3DTranspose}[ndim]
    layer = layer_cls(w.shape[1], kernel, use_bias=False, **args)
    xin = keras_input(x, args["data_format"]).astype(np.float32)
    layer.build(xin.shape)
    layer.set_weights([tf_kernel(w).astype(np.float32)])
    return keras_output(layer(xin).numpy(), args["data_format"])


@settings(max_examples=examples(25))
@given(keras_configs(), __import__("hypothesis").strategies.integers(0, 2**16))
# 3-D ignores the dilation, but the constructor still refuses it with a stride > 1 (found by a deeper run)
@example(config=((1, 1, 1), (1, 1, 1), (1, 1, 2), (1, 1, 2), "valid", None, None), seed=0)
# what the plain CPU kernel refuses in 1-D, and what tf.keras 2 runs there in 2-D
@example(config=((3,), (2,), (1,), (2,), "valid", None, None), seed=0)
@example(config=((3,), (2,), (2,), (1,), "same", None, "channels_first"), seed=0)
@example(config=((3, 2), (2, 2), (1, 1), (2, 2), "valid", None, "channels_first"), seed=0)
@example(config=((2, 2, 2), (2, 1, 2), (2, 1, 1), (1, 1, 1), "valid", None, "channels_first"), seed=0)
def test_tf_keras2_shape_window_and_rejection(torch, tf_keras, config, seed):
    inputs, kernel, strides, dilation, padding, output_padding, data_format = config
    x, w = make_data(seed, inputs, kernel)
    args = dict(strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dilation,
                data_format=data_format)

    def with_tconv():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tconv.geometry(inputs, kernel, "tf.keras", **args)

    # Conv3DTranspose ignores dilation_rate, so its reference is the undilated layer.
    computed_dilation = (1,) * 3 if len(inputs) == 3 else dilation
    compare(
        with_tconv,
        lambda: _run_layer(tf_keras, x, w, kernel, args),
        lambda: reference_full(torch, x, w, strides, computed_dilation),
        f"tf.keras 2 {inputs} k={kernel} {args} on {tf_cpu.this_machine()}",
    )


def test_tf_keras2_differs_from_keras3_on_dilation(tf_keras, keras):
    x3 = np.ones((1, 4, 4, 4, 1), np.float32)
    got2 = tuple(tf_keras.layers.Conv3DTranspose(1, 3, dilation_rate=2)(x3).shape[1:4])
    assert got2 == tconv.output_shape((4, 4, 4), 3, "tf.keras", dilation_rate=2) == (6, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras3 = tconv.geometry((4, 4, 4), 3, "keras", dilation_rate=2)
    assert keras3.output_shape == (8, 8, 8)
    if keras3.runtime_errors:  # TF's plain CPU kernel: Keras 3 hands it the dilation and fails
        with pytest.raises(Exception) as info:
            keras.layers.Conv3DTranspose(1, 3, dilation_rate=2)(x3)
        assert any(m in str(info.value) for m in keras3.runtime_errors), str(info.value)[:300]
    else:
        assert tuple(keras.layers.Conv3DTranspose(1, 3, dilation_rate=2)(x3).shape[1:4]) == (8, 8, 8)
    with pytest.warns(tconv.FrameworkQuirkWarning, match="ignores dilation_rate"):
        tconv.geometry((4, 4, 4), 3, "tf.keras", dilation_rate=2)
    with pytest.raises(ValueError, match="equal"):
        tf_keras.layers.Conv2DTranspose(1, 3, dilation_rate=(1, 2))(np.ones((1, 4, 4, 1), np.float32))
    with pytest.raises(tconv.ConfigError, match="equal"):
        tconv.geometry((4, 4), 3, "tf.keras", dilation_rate=(1, 2))


@pytest.mark.parametrize(
    "inputs, kernel, strides, padding, expected",
    [
        ((8, 8), 3, 2, "same", (16, 16)),        # seed 000: the U-Net up-step
        ((12, 16), 3, 2, "same", (24, 32)),      # seed 001
        ((96, 128), 3, 1, "valid", (98, 130)),   # seed 002
        ((96, 128), 3, 2, "valid", (193, 257)),
        ((96, 128), 3, 3, "same", (288, 384)),
    ],
)
def test_tf_keras2_seed_table(tf_keras, inputs, kernel, strides, padding, expected):
    layer = tf_keras.layers.Conv2DTranspose(1, kernel, strides=strides, padding=padding)
    got = tuple(layer(np.zeros((1, *inputs, 1), np.float32)).shape[1:3])
    assert got == expected
    assert tconv.output_shape(inputs, kernel, "tf.keras", strides=strides, padding=padding) == expected
