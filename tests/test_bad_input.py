"""Bad input: a ConfigError naming the argument (library), one line and exit code 2 (CLI).

Also the two configurations that frameworks accept and then fail on: PyTorch
``padding='same'`` and the Keras TensorFlow backend with an even kernel,
``padding='same'`` and ``output_padding=0``; both are checked against the real
frameworks here.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tconv
from tconv.cli import main
from tconv.errors import FrameworkQuirkWarning

HUGE = 2**62

# (framework, input_shape, kernel_size, args, the argument the message must name)
BAD_SIZES = [
    ("pytorch", (-1, 8), 3, {}, "input_shape"),
    ("pytorch", (0, 8), 3, {}, "input_shape"),
    ("pytorch", (8.5, 8), 3, {}, "input_shape"),
    ("pytorch", (True, 8), 3, {}, "input_shape"),
    ("pytorch", (HUGE, 8), 3, {}, "input_shape"),
    ("pytorch", "8x8", 3, {}, "input_shape"),
    ("pytorch", None, 3, {}, "input_shape"),
    ("pytorch", (), 3, {}, "input_shape"),
    ("keras", (8, 8), -3, {}, "kernel_size"),
    ("keras", (8, 8), 0, {}, "kernel_size"),
    ("keras", (8, 8), 2.0, {}, "kernel_size"),
    ("keras", (8, 8), True, {}, "kernel_size"),
    ("keras", (8, 8), HUGE, {}, "kernel_size"),
    ("keras", (8, 8), (), {}, "kernel_size"),
    ("onnx", (8, 8), (3, 3, 3), {}, "kernel_size"),
    ("tensorflow", (4, 4), 3, {"output_shape": (8, -8)}, "output_shape"),
    ("tensorflow", (4, 4), 3, {"output_shape": (8, HUGE)}, "output_shape"),
    ("jax", (4, 4), 3, {"strides": (1, 2, 3)}, "strides"),
    ("flax", (4, 4), (3, 3), {"strides": (2, 0)}, "strides"),
    ("pytorch", (8, 8), 3, {"stride": (1, 2, 3)}, "stride"),
    ("pytorch", (8, 8), 3, {"stride": 0}, "stride"),
    ("pytorch", (8, 8), 3, {"stride": True}, "stride"),
    ("pytorch", (8, 8), 3, {"padding": -1}, "padding"),
    ("pytorch", (8, 8), 3, {"dilation": 1.5}, "dilation"),
    ("pytorch", (8, 8), 3, {"output_size": (16, 16, 16, 16, 16)}, "output_size"),
    ("onnx", (8, 8), 3, {"pads": [1, 1, 1]}, "pads"),
    ("mxnet", (8, 8), 3, {"pad": HUGE}, "pad"),
    ("caffe", (8,), 3, {"stride": -2}, "stride"),
    ("tflite", (8, 8), 3, {"output_shape": (0, 16)}, "output_shape"),
]


@pytest.mark.parametrize("framework,input_shape,kernel,args,name", BAD_SIZES)
def test_bad_sizes_name_the_argument(framework, input_shape, kernel, args, name):
    with pytest.raises(tconv.ConfigError) as info:
        tconv.geometry(input_shape, kernel, framework, **args)
    assert name in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "framework,wrong,right",
    [("keras", "stride", "strides"), ("pytorch", "strides", "stride"), ("pytorch", "output_shape", "output_size"),
     ("onnx", "pad", "pads"), ("tensorflow", "dilation", "dilations"), ("jax", "dilation", "rhs_dilation"),
     ("flax", "kernel_dilations", "kernel_dilation"), ("mxnet", "adjust", "adj"), ("keras", "outputpadding", "output_padding")],
)
def test_misspelled_or_foreign_names_list_the_names_and_suggest_the_closest(framework, wrong, right):
    with pytest.raises(tconv.ConfigError) as info:
        tconv.geometry((4, 4), (3, 3), framework, **{wrong: 2})
    message = str(info.value)
    assert repr(wrong) in message
    assert f"did you mean {right!r}" in message
    for name in tconv.conventions.get(framework).defaults:
        assert name in message


def test_unknown_framework_suggests_the_closest():
    with pytest.raises(tconv.ConfigError, match=r"unknown framework 'kerass'; did you mean 'keras'\?.*pytorch, keras"):
        tconv.geometry(8, 3, "kerass")
    with pytest.raises(tconv.ConfigError, match="framework"):
        tconv.geometry(8, 3, 5)


@pytest.mark.parametrize(
    "argv,name",
    [
        ("shape 8x-1 -k 3", "input_shape"),
        ("shape -1x8 -k 3", "input_shape[0]=-1"),
        ("shape -4 -k 3", "input_shape"),
        ("shape 8x8 -k 3 -s -2", "stride=-2"),
        ("shape 0x8 -k 3", "input_shape"),
        ("shape 8.5x8 -k 3", "input size"),
        ("shape abc -k 3", "input size"),
        ("shape , -k 3", "input size"),
        (f"shape {HUGE}x8 -k 3", "input_shape"),
        ("shape 8x8 -k 0", "kernel_size"),
        ("shape 8x8 -k 3x3x3", "kernel_size"),
        ("shape 8x8 -k 3 -s 1x2x3", "stride"),
        ("shape 8x8 -k 3 -s 0", "stride"),
        ("shape 8x8 -k 3 -f kerass", "did you mean 'keras'"),
        ("shape 8x8 -k 3 -f keras -a stride=2", "did you mean 'strides'"),
        ("shape 8x8 -k 3 -f keras -a strides=True", "strides"),
        ("shape 8x8 -k 3 -p same", "padding='same'"),
        ("shape 8x8", "-k/--kernel"),
        ("shape 8x8 -k 3 --bogus 1", "--bogus"),
        ("bogus", "bogus"),
        ("bench --only nothing", "--only 'nothing' matches no layer"),
        ("draw 8x8 -k 3 --out /nonexistent-dir/x.png", "cannot write"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, name):
    assert main(argv.split()) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("tconv: error: "), err
    assert name in err


def test_cli_help_has_examples(capsys):
    for argv in (["--help"], ["shape", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "tconv shape 8x8 -f keras -k 3 -s 2 -p same" in out


def test_cli_framework_quirk_is_one_warning_line(capsys):
    """The Keras-TF even-kernel case prints the size and a one-line warning per axis, exit 0."""
    assert main("shape 8x8 -k 4 -s 2 -p same -f keras --output-padding 0".split()) == 0
    out, err = capsys.readouterr()
    assert out == "14x14\n"
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("tconv: warning: Keras' TensorFlow backend fails") for line in lines), err


# ---- the two documented framework failures, against the real frameworks ----
def test_pytorch_padding_same_fails_in_forward_and_tconv_says_so(torch):
    layer = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding="same")  # the constructor accepts it
    with pytest.raises(TypeError):
        layer(torch.zeros(1, 1, 8, 8))  # forward fails
    with pytest.raises(tconv.ConfigError) as info:
        tconv.geometry((8, 8), 3, "pytorch", stride=2, padding="same")
    message = str(info.value)
    assert "fails in forward" in message and "padding=" in message


def test_keras_tf_backend_fails_on_even_kernel_same_output_padding_0(keras):
    assert keras.backend.backend() == "tensorflow"
    layer = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", output_padding=0)  # accepted
    with pytest.raises(Exception) as info:
        layer(np.zeros((1, 8, 8, 1), "float32"))  # and fails when it runs
    assert "tensorflow" in type(info.value).__module__, repr(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shape = tconv.output_shape((8, 8), 4, "keras", strides=2, padding="same", output_padding=0)
    assert shape == (14, 14)  # what the JAX backend returns (see test_conformance_tensorflow)
    assert any(issubclass(c.category, FrameworkQuirkWarning) and "TensorFlow backend fails" in str(c.message) for c in caught)
    # the odd kernel is fine on the TF backend, and tconv does not warn
    odd = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", output_padding=0)
    assert tuple(odd(np.zeros((1, 8, 8, 1), "float32")).shape[1:3]) == (15, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameworkQuirkWarning)
        assert tconv.output_shape((8, 8), 3, "keras", strides=2, padding="same", output_padding=0) == (15, 15)


def test_cli_reads_a_bare_tflite_size_as_both_axes(capsys):
    """TFLite's TRANSPOSE_CONV is 2-D only, so `8` means 8x8 there, as the framework reads it."""
    assert main("shape 8 -k 3 -f tflite -s 2 -o 16".split()) == 0
    assert capsys.readouterr().out.strip() == "16x16"
