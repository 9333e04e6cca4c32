"""The numbers from the seed threads (issue 2), against the real frameworks, tconv and the CLI."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tconv
from tconv.cli import main

# (input HxW, kernel, strides, padding, output HxW)
KERAS_SEEDS = [
    ((8, 8), 3, 2, "same", (16, 16)),
    ((12, 16), 3, 2, "same", (24, 32)),
    ((96, 128), 3, 1, "valid", (98, 130)),
    ((96, 128), 3, 2, "valid", (193, 257)),
    ((96, 128), 3, 1, "same", (96, 128)),
    ((96, 128), 3, 2, "same", (192, 256)),
    ((96, 128), 3, 3, "same", (288, 384)),
]

# (input HxW, kernel, stride, padding, extra args, output HxW)
PYTORCH_SEEDS = [
    ((2, 2), 2, 2, 1, {}, (2, 2)),
    ((2, 2), 2, 2, 0, {}, (4, 4)),
    ((24, 24), 5, 1, 0, {}, (28, 28)),
    ((12, 12), 5, 2, 0, {}, (27, 27)),
    ((12, 12), 5, 2, 0, {"output_padding": 1}, (28, 28)),
    ((12, 12), 5, 2, 0, {"output_size": (28, 28)}, (28, 28)),
]


def _size(shape) -> str:
    return "x".join(map(str, shape))


@pytest.mark.parametrize("input_shape,kernel,strides,padding,expected", KERAS_SEEDS)
def test_keras_seed(keras, input_shape, kernel, strides, padding, expected):
    layer = keras.layers.Conv2DTranspose(1, kernel, strides=strides, padding=padding)
    y = layer(np.zeros((1, *input_shape, 1), "float32"))
    assert tuple(y.shape[1:3]) == expected  # the real layer
    assert tconv.output_shape(input_shape, kernel, "keras", strides=strides, padding=padding) == expected


@pytest.mark.parametrize("input_shape,kernel,stride,padding,extra,expected", PYTORCH_SEEDS)
def test_pytorch_seed(torch, input_shape, kernel, stride, padding, extra, expected):
    layer = torch.nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding,
                                     output_padding=extra.get("output_padding", 0))
    x = torch.zeros(1, 1, *input_shape)
    y = layer(x, output_size=list(extra["output_size"])) if "output_size" in extra else layer(x)
    assert tuple(y.shape[2:]) == expected
    assert tconv.output_shape(input_shape, kernel, "pytorch", stride=stride, padding=padding, **extra) == expected


@pytest.mark.parametrize("stride,back", [(1, {}), (2, {}), (2, {"output_padding": 1}), (2, {"output_size": (28, 28)})])
def test_pytorch_encoder_decoder_round_trip(torch, stride, back):
    """28 -> Conv2d(k5) -> ConvTranspose2d(k5): s1 gives 28 back; s2 gives 12 then 27, or 28 with help."""
    conv = torch.nn.Conv2d(1, 1, 5, stride=stride)
    down = conv(torch.zeros(1, 1, 28, 28))
    middle = tuple(down.shape[2:])
    assert middle == ((24, 24) if stride == 1 else (12, 12))
    deconv = torch.nn.ConvTranspose2d(1, 1, 5, stride=stride, output_padding=back.get("output_padding", 0))
    up = deconv(down, output_size=list(back["output_size"])) if "output_size" in back else deconv(down)
    expected = (27, 27) if stride == 2 and not back else (28, 28)
    assert tuple(up.shape[2:]) == expected
    assert tconv.output_shape(middle, 5, "pytorch", stride=stride, **back) == expected


def _cli_args(framework, input_shape, kernel, stride, padding, extra=None):
    argv = ["shape", _size(input_shape), "-f", framework, "-k", str(kernel), "-s", str(stride), "-p", str(padding)]
    extra = extra or {}
    if "output_padding" in extra:
        argv += ["--output-padding", str(extra["output_padding"])]
    if "output_size" in extra:
        argv += ["--output-size", _size(extra["output_size"])]
    return argv


@pytest.mark.parametrize(
    "argv,expected",
    [(_cli_args("keras", i, k, s, p), _size(o)) for i, k, s, p, o in KERAS_SEEDS]
    + [(_cli_args("pytorch", i, k, s, p, e), _size(o)) for i, k, s, p, e, o in PYTORCH_SEEDS],
)
def test_cli_answers_the_seeds(capsys, argv, expected):
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip() == expected, (argv, out, err)


def test_cli_sizes_may_be_written_three_ways(capsys):
    for text in ("96x128", "96,128"):
        assert main(["shape", text, "-f", "keras", "-k", "3", "-s", "2", "-p", "valid"]) == 0
        assert capsys.readouterr().out.strip() == "193x257"
    assert main(["shape", "12", "-f", "pytorch", "-k", "5", "-s", "2"]) == 0
    assert capsys.readouterr().out.strip() == "27"


def test_cli_explain_prints_the_derivation(capsys):
    assert main(["explain", "8x8", "-f", "keras", "-k", "3", "-s", "2", "-p", "same"]) == 0
    out = capsys.readouterr().out
    assert "16" in out and "Keras" in out


def test_cli_real_process():
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "tconv", "shape", "8x8", "-f", "keras", "-k", "3", "-s", "2", "-p", "same"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "16x16\n"
    assert done.stderr == ""
