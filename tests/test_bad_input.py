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
        ("shape 8x-1 -k 3", "input size '8x-1' has the sign '-'"),
        ("shape -1x8 -k 3", "input size '-1x8' has the sign '-'"),
        ("shape -4 -k 3", "input size '-4' has the sign '-'"),
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
        # the layer's quirk warning belongs to an answer; a refused command prints its error line alone
        ("draw 8x8 -k 4 -s 2 -p same -f keras --op 0 --view bogus", "unknown view 'bogus'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, name):
    assert main(argv.split()) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("tconv: error: "), err
    assert name in err


def _one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("tconv: error: ") and "Traceback" not in err, err
    return err


# Malformed sizes: each is refused, quoted, whatever Python's int() or \d would make of it.
MALFORMED_SIZES = [
    ("8x8x", "ends with the separator 'x'"),
    ("8,,8", "two separators in a row"),
    ("8x,8", "two separators in a row"),
    (",8", "starts with the separator ','"),
    ("x8", "starts with the separator 'x'"),
    ("8,", "ends with the separator ','"),
    ("+8", "sign '+'"),
    ("-8", "sign '-'"),
    ("8x-1", "sign '-'"),
    ("8x+1", "sign '+'"),
    ("8.5", "not a whole number"),
    ("8;8", "stray character ';'"),
    ("8a", "stray character 'a'"),
    ("1_0", "stray character '_'"),      # int('1_0') == 10
    ("8 8", "space between two numbers"),
    ("\uff18", "not one of 0-9"),        # fullwidth 8: int() reads it as 8
    ("\u0663x3", "not one of 0-9"),      # Arabic-Indic 3
    ("\u00b2", "not one of 0-9"),        # superscript 2
    ("", "is empty"),
    ("  ", "is empty"),
    ("9" * 5000, "digits"),             # int() refuses it with a ValueError of its own
]


@pytest.mark.parametrize("text,why", MALFORMED_SIZES)
@pytest.mark.parametrize("where", ["input", "kernel", "solve-output"])
def test_cli_malformed_size_is_quoted_one_line_exit_2(capsys, text, why, where):
    argv = {
        "input": ["shape", text, "-k", "3"],
        "kernel": ["shape", "8x8", "-k", text],
        "solve-output": ["solve", "8x8", text, "-k", "3"],
    }[where]
    assert main(argv) == 2
    err = _one_error_line(capsys)
    assert why in err
    assert repr(text)[:60] in err  # the user's own text, quoted


@pytest.mark.parametrize(
    "argv,why",
    [
        (["shape", "8", "-k", "3", "-s", "+2"], "stride '+2' has the sign '+'"),
        (["shape", "8", "-k", "3", "-s", "2x"], "stride '2x' ends with the separator"),
        (["shape", "8", "-k", "3", "-s", "\uff12"], "stride '\uff12' has the digit"),
        (["shape", "8", "-k", "3", "-p", "1,,1"], "padding '1,,1' has two separators"),
        (["shape", "8", "-k", "3", "-s", "2e0"], "stride '2e0' has the stray character 'e'"),
        (["shape", "8", "-k", "3", "-f", "keras", "-a", "strides=\u0662"], "strides '\u0662' has the digit"),
        (["shape", "8", "-k", "3", "-a", "=2"], "no NAME"),
        (["shape", "8", "-k", "3", "-a", "stride="], "stride '' is empty"),
        (["bench", "--repeat", "\u0663"], "argument --repeat: value '\u0663' has the digit"),
        (["bench", "--threads", "1_0"], "argument --threads: value '1_0' has the stray character '_'"),
        (["draw", "3", "-k", "3", "--frame", "+1"], "argument --frame: value '+1' has the sign '+'"),
        (["solve", "8", "16", "-k", "3", "--limit", "\uff15"], "argument --limit: value '\uff15' has the digit"),
        (["shape", "8", "-k", "3", "bad\nline"], "unrecognized arguments: bad line"),
    ],
)
def test_cli_malformed_values_are_refused(capsys, argv, why):
    assert main(argv) == 2
    assert why in _one_error_line(capsys)


@pytest.mark.parametrize(
    "argv,shape,dropped",
    [
        ("shape 8x8 -k 3 -s 2 -o 5x17x17", "17x17", "-o 5x17x17: PyTorch's output_size keeps the last 2 entries, 17x17, and ignores 5"),
        ("shape 8x8 -k 3 -s 2 -o 1x5x17x17", "17x17", "ignores 1 and 5"),
        ("shape 8 -k 3 -s 2 --output-size 2x3x18", "18", "--output-size 2x3x18: PyTorch's output_size keeps the last 1 entry, 18, and ignores 2 and 3"),
        ("shape 8x8 -k 3 -s 2 -f tensorflow -o 1x16x16x3", "16x16",
         "TensorFlow's output_shape is (batch, spatial, channels) and keeps the spatial entries, 16x16, and ignores 1 and 3"),
        ("shape 8x8 -k 3 -s 2 -f tflite -o 1x16x16x3", "16x16", "ignores 1 and 3"),
        ("shape 8 -k 3 -s 2 -f tflite -o 1x15x16x3", "15x16", "ignores 1 and 3"),
    ],
)
def test_cli_output_size_prefix_is_accepted_where_the_framework_accepts_it_and_noted(capsys, argv, shape, dropped):
    assert main(argv.split()) == 0
    out, err = capsys.readouterr()
    assert out == shape + "\n"
    lines = [line for line in err.splitlines() if not line.startswith("tconv: warning:")]
    assert lines == [f"tconv: note: {dropped}"] or (len(lines) == 1 and dropped in lines[0]), err


def test_cli_output_size_prefix_follows_data_format(capsys):
    # NCHW: batch and channels first; TF warns that its plain CPU kernel is channels-last only
    assert main("shape 8x8 -k 3 -s 2 -f tensorflow -o 1x3x16x16 -a data_format=NCHW".split()) == 0
    out, err = capsys.readouterr()
    assert out == "16x16\n"
    assert "tconv: note: -o 1x3x16x16: TensorFlow's output_shape is (batch, channels, spatial) and keeps the spatial " \
           "entries, 16x16, and ignores 1 and 3" in err


@pytest.mark.parametrize(
    "argv,why",
    [
        ("shape 8x8 -k 3 -s 2 -f onnx -o 1x1x16x16", "ONNX's output_shape takes the 2 spatial entries only"),
        ("shape 8x8 -k 3 -s 2 -f tensorflow -o 5x16x16", "has 3 sizes for a 2-D input; TensorFlow's output_shape takes 2 spatial entries, or 4"),
        ("shape 8x8 -k 3 -s 2 -f tflite -o 5x16x16", "has 3 sizes for a 2-D input; TFLite's output_shape takes 2"),
        ("shape 8x8 -k 3 -s 2 -o 1x2x3x17x17", "PyTorch's output_size takes 2, 3 or 4 entries"),
        ("shape 8x8 -k 3 -s 2 -f mxnet -o 1x16x16", "MXNet's target_shape takes the 2 spatial entries only"),
        ("shape 8x8 -k 3 -s 2 -f keras -o 16x16", "Keras has no output size option"),
    ],
)
def test_cli_output_size_prefix_is_refused_where_the_framework_refuses_it(capsys, argv, why):
    assert main(argv.split()) == 2
    assert why in _one_error_line(capsys)


@pytest.mark.parametrize(
    "argv,why",
    [
        ("shape 8x8 -k 3 -f keras -s 2 -a strides=3", "-s 2 and -a strides=3 both set Keras' strides"),
        ("shape 8x8 -k 3 -f keras -a strides=2 -a strides=3", "-a strides=2 and -a strides=3 both set Keras' strides"),
        ("shape 8x8 -k 3 -p 1 -a padding=1", "-p 1 and -a padding=1 both set PyTorch's padding"),
        ("shape 8x8 -k 3 -f onnx -p same -a auto_pad=SAME_LOWER", "-p same and -a auto_pad=SAME_LOWER both set ONNX's auto_pad"),
        ("shape 8x8 -k 3 -f tensorflow -o 16 -a output_shape=(16,16)", "-o 16 and -a output_shape=(16,16) both set"),
        ("shape 8x8 -k 3 -s 2 --stride 3", "-s 2 and --stride 3 both give the stride"),
        ("shape 8x8 -k 3 -k 5", "-k 3 and -k 5 both give the kernel"),
        ("shape 8x8 -k 3 -f keras --framework onnx", "-f keras and --framework onnx both give the framework"),
        ("convert 8x8 -k 3 -f keras --from pytorch --to onnx", "-f keras and --from pytorch both give the framework"),
        ("convert 8x8 -k 3 --from keras --to onnx --to pytorch", "--to onnx and --to pytorch both give the target framework"),
        ("draw 3x3 -k 3 --out a.svg --out b.svg", "--out a.svg and --out b.svg both give the output file"),
        ("draw 3x3 -k 3 -s 2 --compare keras:strides=3 pytorch:padding=1",
         "-s 2 and --compare keras:strides=3 both set Keras' strides"),
        ("draw 3x3 -k 3 --compare keras:stride=3,strides=2 pytorch:padding=1",
         "--compare keras:stride=3,strides=2 and --compare keras:stride=3,strides=2 both set Keras' strides"),
        ("draw 3x3 -k 3 --compare keras:padding=same,padding=valid pytorch:padding=1", "gives padding twice"),
        ("draw 3x3 -k 3 --compare keras:padding=same,,strides=2 pytorch:padding=1", "has an empty entry"),
        ("draw 3x3 -k 3 -f keras --compare keras:padding=same pytorch:padding=1", "-f keras has no effect with --compare"),
        ("solve 8 16 -k 3 -k 5", "-k 3 and -k 5 both give the kernel"),
    ],
)
def test_cli_argument_given_twice_is_an_error_naming_both(capsys, tmp_path, monkeypatch, argv, why):
    monkeypatch.chdir(tmp_path)  # were an --out accepted, its file lands here
    assert main(argv.split()) == 2
    assert why in _one_error_line(capsys)


def test_draw_spec_parsing_is_the_library_s_own():
    """tconv.draw reads "framework:name=value" specs without the CLI (the library never imports it)."""
    from tconv.drawing import parse_spec

    assert parse_spec("pytorch:padding=1x2,output_padding=1") == ("pytorch", {"padding": (1, 2), "output_padding": 1})
    for bad in ("keras:strides=2x", "keras:strides=\uff12", "keras:padding=same,padding=valid", ":padding=1", 5):
        with pytest.raises(tconv.ConfigError):
            parse_spec(bad)
    from tconv import drawing

    source = open(drawing.__file__, encoding="utf-8").read()
    assert "from ..cli" not in source and "tconv.cli" not in source


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


def test_invert_refuses_an_argument_given_twice():
    from tconv.cli import main

    assert main(["invert", "28", "-k", "3", "-s", "2", "-a", "stride=3"]) == 2
    assert main(["invert", "28", "-f", "keras", "-k", "3", "-p", "same", "-a", "padding=valid"]) == 2
    assert main(["invert", "28", "-k", "3", "-s", "2", "-a", "padding=1"]) == 0


def test_solve_refuses_empty_sequences():
    import pytest
    import tconv

    for name in ("kernel_size", "stride", "dilation"):
        with pytest.raises(tconv.ConfigError, match="is empty"):
            tconv.solve(8, 16, "pytorch", **{name: []})


def test_cli_tf_onednn_asks_about_the_other_kind_of_machine(capsys):
    from tconv.cli import main

    assert main(["shape", "5x5", "-f", "keras", "-k", "3", "-a", "dilation_rate=2", "--tf-onednn", "off"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "9x9" and "not yet support dilation rates larger than 1" in err
    assert main(["shape", "5x5", "-f", "keras", "-k", "3", "-a", "dilation_rate=2", "--tf-onednn", "on"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "9x9" and "dilation" not in err
    assert main(["shape", "5x5", "-f", "pytorch", "-k", "3", "--tf-onednn", "on"]) == 2
    assert "applies to the tensorflow, keras and tf_keras" in capsys.readouterr().err
    assert main(["frameworks"]) == 0
    assert "TensorFlow's CPU kernel on this machine" in capsys.readouterr().out
