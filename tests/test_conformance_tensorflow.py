"""Keras 3 (TensorFlow backend), tf.nn.conv_transpose and TFLite against tconv.

Keras: the rejections come from the layer constructors (``Conv{1,2,3}DTranspose``
validate ``output_padding < strides`` and refuse ``strides > 1`` with
``dilation_rate > 1`` in ``__init__``); the numbers come from
``keras.ops.conv_transpose``, which is what those layers call. The kernel of
both is ``(*k, filters, in_channels)``: the torch kernel transposed, not flipped.

Everything runs in float32 on small integers (exact). What TensorFlow accepts
depends on the CPU kernel that runs (:mod:`tconv.conventions.tf_cpu`): oneDNN
computes dilated and channels-first layers, the plain kernel refuses them. The
tests expect whatever tconv says this machine's kernel does (its geometry's
``runtime_errors``), so they hold on either kind of machine; float64 and a
subprocess with the other ``TF_ENABLE_ONEDNN_OPTS`` exercise the other kernel.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from tconv.conventions import tf_cpu
from tconv.errors import FrameworkQuirkWarning
from _conformance import assert_window, channels_first, channels_last, compare, make_data, reference_full, tf_kernel


def _per_axis(draw, ndim, lo, hi):
    return tuple(draw(st.integers(lo, hi)) for _ in range(ndim))


# ---------------------------------------------------------------- Keras ---
@st.composite
def keras_configs(draw):
    ndim = draw(st.integers(1, 3))
    small = ndim == 3
    inputs = _per_axis(draw, ndim, 1, 4 if small else 6)
    kernel = _per_axis(draw, ndim, 1, 4 if small else 7)
    strides = _per_axis(draw, ndim, 1, 4)
    # dilation mostly with stride 1 (the layers refuse the mix), sometimes mixed to check that refusal
    if draw(st.booleans()):
        dilation = _per_axis(draw, ndim, 1, 3)
        if draw(st.integers(0, 4)):
            strides = (1,) * ndim
    else:
        dilation = (1,) * ndim
    padding = draw(st.sampled_from(["valid", "same", "SAME", "Valid"]))
    output_padding = None
    if draw(st.booleans()):
        output_padding = tuple(draw(st.integers(0, s)) for s in strides)  # s itself is out of range
    data_format = draw(st.sampled_from([None, None, "channels_last", "channels_first"]))
    return inputs, kernel, strides, dilation, padding, output_padding, data_format


def keras_input(x, data_format):
    """torch-layout (N, C, *spatial) data in the layout Keras is told."""
    return x if data_format == "channels_first" else channels_last(x)


def keras_output(y, data_format):
    return np.asarray(y) if data_format == "channels_first" else channels_first(y)


@settings(max_examples=examples(50))
@given(keras_configs(), st.integers(0, 2**16))
# even kernel, 'same', output_padding 0 on a 1-element axis: an empty output on oneDNN, a failure without
@example(config=((1, 1, 1), (1, 1, 2), (1, 1, 1), (1, 1, 1), "same", (0, 0, 0), None), seed=0)
# dilation and channels-first data: what the plain CPU kernel refuses
@example(config=((1, 1), (1, 1), (1, 1), (1, 2), "valid", None, None), seed=0)
@example(config=((3,), (2,), (2,), (1,), "same", None, "channels_first"), seed=0)
@example(config=((2, 2, 2), (2, 1, 2), (1, 1, 1), (2, 1, 1), "valid", None, "channels_first"), seed=0)
def test_keras_shape_window_and_rejection(torch, keras, config, seed):
    inputs, kernel, strides, dilation, padding, output_padding, data_format = config
    ndim = len(inputs)
    x, w = make_data(seed, inputs, kernel)
    layer_cls = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}[ndim]
    args = dict(strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dilation,
                data_format=data_format)

    def framework():
        layer_cls(2, kernel, **args)  # the layer's own argument checks
        y = keras.ops.conv_transpose(
            keras_input(x, data_format).astype(np.float32), tf_kernel(w).astype(np.float32), **args
        )
        return keras_output(keras.ops.convert_to_numpy(y), data_format)

    compare(
        lambda: tconv.geometry(inputs, kernel, "keras", **args),
        framework,
        lambda: reference_full(torch, x, w, strides, dilation),
        f"keras {inputs} k={kernel} {args} on {tf_cpu.this_machine()}",
    )


KERAS_BACKEND_ROWS = [(5, 2, 1), (5, 4, 2), (4, 2, 2), (6, 3, 2)]  # input, kernel, stride
KERAS_JAX_SCRIPT = textwrap.dedent(
    """
    import os, sys, json
    os.environ["KERAS_BACKEND"] = sys.argv[1]
    import numpy as np, keras
    rows = []
    for i, k, s in json.loads(sys.argv[2]):
        try:
            y = keras.ops.conv_transpose(np.ones((1, i, 1), "float32"), np.ones((k, 1, 1), "float32"), s, "same", output_padding=0)
            rows.append([i, k, s, int(y.shape[1])])
        except Exception as err:
            rows.append([i, k, s, type(err).__name__])
    print(json.dumps(rows))
    """
)


def test_keras_backends_disagree_on_even_kernel_same_output_padding_0(keras):
    """JAX backend: returns (i-1)*s + K%2 + op elements; TF backend: fails for an even kernel.

    The JAX backend runs in a subprocess (Keras picks its backend at import). tconv gives the JAX
    backend's size and warns that the TF backend fails.
    """
    import json

    assert keras.backend.backend() == "tensorflow"
    results = {"tensorflow": []}
    for i, k, s in KERAS_BACKEND_ROWS:  # the TF backend: in this process
        try:
            y = keras.ops.conv_transpose(np.ones((1, i, 1), "float32"), np.ones((k, 1, 1), "float32"), s, "same", output_padding=0)
            results["tensorflow"].append([i, k, s, int(y.shape[1])])
        except Exception as err:  # noqa: BLE001 - the failure is the point
            results["tensorflow"].append([i, k, s, type(err).__name__])
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", KERAS_JAX_SCRIPT, "jax", json.dumps(KERAS_BACKEND_ROWS)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results["jax"] = json.loads(done.stdout.strip().splitlines()[-1])
    for (i, k, s, jax_size), (_, _, _, tf_size) in zip(results["jax"], results["tensorflow"]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (size,) = tconv.output_shape((i,), k, "keras", strides=s, padding="same", output_padding=0)
        assert jax_size == size, (i, k, s, jax_size, size)
        if k % 2 == 0:
            assert isinstance(tf_size, str), f"TF backend was expected to fail for k={k}, got {tf_size}"
            assert any(issubclass(c.category, FrameworkQuirkWarning) for c in caught)
        else:
            assert tf_size == size


# ---------------------------------------------------------------- tf.nn ---
@st.composite
def tf_configs(draw):
    ndim = draw(st.integers(1, 3))
    small = ndim == 3
    inputs = _per_axis(draw, ndim, 1, 4 if small else 6)
    kernel = _per_axis(draw, ndim, 1, 4 if small else 7)
    strides = _per_axis(draw, ndim, 1, 4)
    dilation = _per_axis(draw, ndim, 1, 3) if draw(st.integers(0, 3)) == 0 else (1,) * ndim
    kind = draw(st.sampled_from(["SAME", "VALID", "explicit", "same"]))
    if kind == "explicit":
        padding = [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(ndim)]
    else:
        padding = kind
    # Target sizes: mostly inside the range TF documents for the padding (so that most
    # configurations run), sometimes anywhere around the uncropped size (mostly illegal).
    output = []
    for n, (i, k, s, d) in enumerate(zip(inputs, kernel, strides, dilation)):
        K = d * (k - 1) + 1
        if kind == "VALID":
            likely = ((i - 1) * s + K, (i - 1) * s + K + s - 1)
        elif kind == "explicit":
            lo, hi = padding[n]
            likely = ((i - 1) * s + K - lo - hi, i * s + K - lo - hi - 1)
        else:
            likely = ((i - 1) * s + 1, i * s)
        chance = draw(st.integers(0, 9))
        if chance == 0:
            output.append(0)  # empty: legal with explicit pairs, unchecked by oneDNN
        elif chance < 8:
            output.append(max(0, draw(st.integers(*likely))))
        else:
            output.append(max(1, (i - 1) * s + K + draw(st.integers(-K - 1, s))))
    output = tuple(output)
    data_format = draw(st.sampled_from([None, None, "channels_first"]))
    if data_format:
        data_format = {1: "NCW", 2: "NCHW", 3: "NCDHW"}[ndim]
    return inputs, kernel, strides, dilation, padding, output, data_format


@settings(max_examples=examples(60))
@given(tf_configs(), st.integers(0, 2**16))
@example(config=((1, 1), (3, 3), (1, 1), (1, 1), [[2, 1], [1, 1]], (0, 1), None), seed=0)
@example(config=((1, 1), (3, 3), (1, 1), (1, 1), "SAME", (0, 1), None), seed=0)
@example(config=((5, 5), (3, 3), (1, 1), (2, 2), "VALID", (9, 9), None), seed=0)
@example(config=((5, 5), (3, 3), (1, 1), (2, 2), [[0, 0], [0, 0]], (9, 9), None), seed=0)
@example(config=((4,), (3,), (2,), (1,), "SAME", (8,), "NCW"), seed=0)
def test_tensorflow_shape_window_and_rejection(torch, tf, config, seed):
    inputs, kernel, strides, dilation, padding, output, data_format = config
    x, w = make_data(seed, inputs, kernel)
    channels_first_data = data_format is not None
    if isinstance(padding, str):
        tf_padding = padding
    else:
        tf_padding = [[0, 0], [0, 0]] + padding if channels_first_data else [[0, 0]] + padding + [[0, 0]]
    out_shape = [1, 2, *output] if channels_first_data else [1, *output, 2]

    def framework():
        y = tf.nn.conv_transpose(
            (x if channels_first_data else channels_last(x)).astype(np.float32), tf_kernel(w).astype(np.float32),
            out_shape, strides=list(strides), padding=tf_padding, dilations=list(dilation), data_format=data_format,
        )
        return y.numpy() if channels_first_data else channels_first(y.numpy())

    compare(
        lambda: tconv.geometry(inputs, kernel, "tensorflow", output_shape=output, strides=strides,
                               padding=tf_padding, dilations=dilation, data_format=data_format),
        framework,
        lambda: reference_full(torch, x, w, strides, dilation),
        f"tf.nn.conv_transpose {inputs} k={kernel} s={strides} d={dilation} {padding} {data_format} -> {output} "
        f"on {tf_cpu.this_machine()}",
    )


def test_tconv_predicts_the_kernel_tensorflow_runs(tf):
    """The prediction made without TensorFlow (environment variable, CPU flags) is TensorFlow's own answer."""
    from tensorflow.python.util import _pywrap_util_port

    predicted = tf_cpu.detect()
    assert predicted.onednn == bool(_pywrap_util_port.IsMklEnabled()), predicted
    assert tf_cpu.this_machine().onednn == predicted.onednn
    assert "confirmed by TensorFlow" in tf_cpu.this_machine().reason


def test_tensorflow_float64_runs_the_plain_kernel(tf):
    """float64 always runs TF's plain CPU kernel, on any machine: tconv's tf_onednn=False describes it."""
    with pytest.warns(FrameworkQuirkWarning, match="dilations > 1"):
        g = tconv.geometry((5, 5), 3, "tensorflow", output_shape=(9, 9), padding="VALID", dilations=2, tf_onednn=False)
    assert g.output_shape == (9, 9)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        tf.nn.conv_transpose(np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1)), [1, 9, 9, 1], 1, padding="VALID", dilations=2)
    assert any(m in str(info.value) for m in g.runtime_errors), (str(info.value)[:300], g.runtime_errors)


@pytest.mark.parametrize("data_format,inputs,kernel,strides,output", [
    ("NCW", (5,), (3,), (2,), (10,)),
    ("NCHW", (4, 5), (3, 2), (2, 3), (7, 15)),
    ("NCDHW", (3, 2, 2), (2, 3, 1), (2, 1, 3), (6, 2, 6)),
])
def test_tensorflow_channels_first(torch, tf, data_format, inputs, kernel, strides, output):
    """Channels-first data: float32 does what tconv says this machine's kernel does; float64 is always refused."""
    x, w = make_data(0, inputs, kernel)
    full = lambda: reference_full(torch, x, w, strides, (1,) * len(inputs))  # noqa: E731
    run = lambda dtype: tf.nn.conv_transpose(  # noqa: E731
        x.astype(dtype), tf_kernel(w).astype(dtype), [1, 2, *output], list(strides), padding="SAME",
        data_format=data_format,
    ).numpy()
    args = dict(output_shape=output, strides=strides, padding="SAME", data_format=data_format)
    g = compare(lambda: tconv.geometry(inputs, kernel, "tensorflow", **args), lambda: run(np.float32), full,
                f"{data_format} float32 on {tf_cpu.this_machine()}")
    assert g is not None
    plain = compare(lambda: tconv.geometry(inputs, kernel, "tensorflow", tf_onednn=False, **args),
                    lambda: run(np.float64), full, f"{data_format} float64")
    assert plain.runtime_errors, "the plain kernel refuses channels-first data"


OTHER_KERNEL_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import tensorflow as tf
    import tconv
    from tconv.conventions import tf_cpu
    rows = []
    for inputs, kernel, output, padding, dilation, data_format in json.loads(sys.argv[1]):
        x = np.ones((1, 1, *inputs) if data_format else (1, *inputs, 1), np.float32)
        w = np.ones((*kernel, 1, 1), np.float32)
        shape = [1, 1, *output] if data_format else [1, *output, 1]
        try:
            y = tf.nn.conv_transpose(x, w, shape, 1, padding=padding, dilations=dilation, data_format=data_format)
            got = list(y.shape)
        except Exception as err:
            got = str(err)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = tconv.geometry(inputs, kernel, "tensorflow", output_shape=output, padding=padding,
                               dilations=dilation, data_format=data_format)
        rows.append([got, list(g.runtime_errors), list(g.output_shape)])
    print(json.dumps({"onednn": tf_cpu.this_machine().onednn, "reason": tf_cpu.this_machine().reason, "rows": rows}))
    """
)
OTHER_KERNEL_ROWS = [
    ((5, 5), (3, 3), (9, 9), "VALID", 2, None),
    ((5,), (3,), (9,), "VALID", 2, None),
    ((4, 4, 4), (3, 3, 3), (8, 8, 8), "VALID", 2, None),
    ((5, 5), (3, 3), (5, 5), "SAME", 1, "NCHW"),
    ((3, 3, 3), (2, 2, 2), (4, 4, 4), "VALID", 1, "NCDHW"),
    ((1, 1), (3, 3), (0, 1), "SAME", 1, None),
    ((5, 5), (3, 3), (7, 7), "VALID", 1, None),
]


def test_the_other_tensorflow_kernel(tf):
    """The kernel this machine does not run by default, in a subprocess with TF_ENABLE_ONEDNN_OPTS flipped.

    tconv, in that process, must predict the flipped kernel (from the variable, then from TensorFlow
    itself) and say of each row exactly whether TensorFlow fails, and with which message.
    """
    import json

    here = tf_cpu.this_machine()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0" if here.onednn else "1")
    done = subprocess.run([sys.executable, "-c", OTHER_KERNEL_SCRIPT, json.dumps(OTHER_KERNEL_ROWS)],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["onednn"] is (not here.onednn), result["reason"]
    rows = result["rows"]
    if not here.onednn and any(isinstance(got, str) and "primitive descriptor" in got for got, _, _ in rows):
        pytest.skip(
            "TF_ENABLE_ONEDNN_OPTS=1 forces oneDNN on, but on this CPU "
            f"({here.reason}) TensorFlow's oneDNN kernels fail ('could not create a primitive descriptor'); "
            "the oneDNN kernel is exercised in-process on CPUs where TensorFlow turns it on itself"
        )
    for row, (got, errors, shape) in zip(OTHER_KERNEL_ROWS, rows):
        if errors:
            assert isinstance(got, str) and any(m in got for m in errors), (row, got[:300] if isinstance(got, str) else got, errors)
        else:
            assert isinstance(got, list), (row, got[:300], "tconv expected it to run")
            assert (got[1:-1] if row[-1] is None else got[2:]) == shape, (row, got, shape)


# ---------------------------------------------------------------- TFLite ---
TFLITE_TABLE = [
    # input (h, w), kernel (h, w), strides (h, w), padding, output_shape (h, w)
    ((4, 5), (3, 3), (2, 2), "SAME", (8, 10)),
    ((4, 5), (3, 3), (2, 2), "SAME", (7, 9)),
    ((3, 4), (4, 2), (2, 3), "VALID", (8, 11)),
    ((2, 3), (2, 3), (3, 2), "VALID", (6, 7)),
    # output_shape that TensorFlow rejects (the forward convolution of it would not give the
    # input back); TFLite does not check and runs with the padding of that other layer.
    ((4, 5), (3, 3), (2, 2), "SAME", (11, 13)),
    ((3, 3), (3, 3), (2, 2), "VALID", (5, 6)),
]


def _tflite_interpreter(tf):
    try:
        return tf.lite.Interpreter
    except AttributeError:  # pragma: no cover - newer TF moves it to ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter


def _tflite_model(tf, inputs, filters, output, strides, padding):
    """A TFLite flatbuffer holding one tf.nn.conv2d_transpose (TRANSPOSE_CONV) with constant filters."""
    filters = tf.constant(filters)

    @tf.function(input_signature=[tf.TensorSpec([1, *inputs, filters.shape[-1]], tf.float32)])
    def layer(t):
        return tf.nn.conv2d_transpose(t, filters, [1, *output, filters.shape[-2]], strides=[1, *strides, 1], padding=padding)

    return tf.lite.TFLiteConverter.from_concrete_functions([layer.get_concrete_function()], layer).convert()


def _tflite_run(tf, model, x_nhwc, delegates: bool):
    from tensorflow.lite.python.interpreter import OpResolverType

    Interpreter = _tflite_interpreter(tf)
    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=model, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp["index"], x_nhwc)
    interpreter.invoke()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    return channels_first(interpreter.get_tensor(out["index"]).copy()), ops


@pytest.fixture(scope="module")
def tflite_runs(tf, torch):
    """Convert one tf.function per table row (conversion is slow); run it with and without XNNPACK."""
    runs = []
    for n, (inputs, kernel, strides, padding, output) in enumerate(TFLITE_TABLE):
        x, w = make_data(n, inputs, kernel, cin=2, cout=3)
        model = _tflite_model(tf, inputs, tf_kernel(w).astype(np.float32), output, strides, padding)
        x_nhwc = channels_last(x).astype(np.float32)
        results = {delegates: _tflite_run(tf, model, x_nhwc, delegates) for delegates in (False, True)}
        runs.append((inputs, kernel, strides, padding, output, x, w, results))
    return runs


def _all_windows(full: np.ndarray, size: tuple[int, int]):
    """Every zero-extended window of the given spatial size cut out of the uncropped output."""
    padded = np.pad(full, [(0, 0), (0, 0), (size[0], size[0]), (size[1], size[1])])
    for top in range(padded.shape[2] - size[0] + 1):
        for left in range(padded.shape[3] - size[1] + 1):
            yield padded[:, :, top:top + size[0], left:left + size[1]]


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("row", range(len(TFLITE_TABLE)))
def test_tflite_transpose_conv(torch, tflite_runs, row):
    inputs, kernel, strides, padding, output, x, w, results = tflite_runs[row]
    full = reference_full(torch, x, w, strides, (1, 1))
    try:
        g = tconv.geometry(inputs, kernel, "tflite", output_shape=output, padding=padding, strides=strides)
    except tconv.ConfigError as err:
        # TFLite runs an output_shape that TensorFlow rejects without complaint, and what it
        # returns is not any window of the transposed convolution (values may even come from
        # uninitialised memory): tconv rejects it rather than describe a garbage output.
        assert "does not validate" in str(err)
        # Observed with TF 2.21: the builtin kernel returns the requested shape filled with no
        # window (NaN among them); the XNNPACK delegate, where it takes the op, returns a tensor
        # of ANOTHER shape than output_shape.
        for delegates, (y, ops) in results.items():
            is_window = y.shape[2:] == output and any(np.array_equal(y, win) for win in _all_windows(full, output))
            assert not is_window, f"row {row}: TFLite output ({'XNNPACK' if delegates else 'builtin'}) is a window after all"
        return
    for delegates, (y, ops) in results.items():
        assert "TRANSPOSE_CONV" in ops, ops
        assert_window(y, full, g, f"tflite row {row} ({'XNNPACK' if delegates else 'builtin kernels'})")
