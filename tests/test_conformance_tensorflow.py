"""Keras 3 (TensorFlow backend), tf.nn.conv_transpose and TFLite against tconv.

Keras: the rejections come from the layer constructors (``Conv{1,2,3}DTranspose``
validate ``output_padding < strides`` and refuse ``strides > 1`` with
``dilation_rate > 1`` in ``__init__``); the numbers come from
``keras.ops.conv_transpose``, which is what those layers call. The kernel of
both is ``(*k, filters, in_channels)``: the torch kernel transposed, not flipped.

Everything runs in float32 on small integers (exact). That matters for
dilation: TensorFlow's default CPU kernel refuses ``dilations > 1`` ("Current
CPU implementations do not yet support dilation rates larger than 1"), but the
oneDNN kernel that x86 builds use for float32 computes it, correctly.
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
    return inputs, kernel, strides, dilation, padding, output_padding


@settings(max_examples=examples(50))
@given(keras_configs(), st.integers(0, 2**16))
# even kernel, 'same', output_padding 0 on a 1-element axis: the TF backend returns an empty array there
# instead of failing, and tconv rejects the empty layer (found by a deeper run)
@example(config=((1, 1, 1), (1, 1, 2), (1, 1, 1), (1, 1, 1), "same", (0, 0, 0)), seed=0)
def test_keras_shape_window_and_rejection(torch, keras, config, seed):
    inputs, kernel, strides, dilation, padding, output_padding = config
    ndim = len(inputs)
    x, w = make_data(seed, inputs, kernel)
    layer_cls = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}[ndim]
    args = dict(strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dilation)
    tf_backend_fails = output_padding is not None and padding.lower() == "same" and any(
        (d * (k - 1) + 1) % 2 + op == 0 for k, d, op in zip(kernel, dilation, output_padding)
    )

    def framework():
        layer_cls(2, kernel, **args)  # the layer's own argument checks
        y = keras.ops.conv_transpose(
            channels_last(x).astype(np.float32), tf_kernel(w).astype(np.float32), **args
        )
        return channels_first(keras.ops.convert_to_numpy(y))

    def with_tconv():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = tconv.geometry(inputs, kernel, "keras", **args)
        quirks = [str(c.message) for c in caught if issubclass(c.category, FrameworkQuirkWarning)]
        if tf_backend_fails:
            assert any("TensorFlow backend fails" in q for q in quirks), quirks
        return g

    compare(
        with_tconv,
        framework,
        lambda: reference_full(torch, x, w, strides, dilation),
        f"keras {inputs} k={kernel} {args}",
        expect_framework_error=tf_backend_fails,
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
        if draw(st.integers(0, 4)):
            output.append(max(1, draw(st.integers(*likely))))
        else:
            output.append(max(1, (i - 1) * s + K + draw(st.integers(-K - 1, s))))
    output = tuple(output)
    return inputs, kernel, strides, dilation, padding, output


@settings(max_examples=examples(60))
@given(tf_configs(), st.integers(0, 2**16))
def test_tensorflow_shape_window_and_rejection(torch, tf, config, seed):
    inputs, kernel, strides, dilation, padding, output = config
    x, w = make_data(seed, inputs, kernel)
    tf_padding = padding if isinstance(padding, str) else [[0, 0]] + padding + [[0, 0]]

    def framework():
        y = tf.nn.conv_transpose(
            channels_last(x).astype(np.float32), tf_kernel(w).astype(np.float32), [1, *output, 2],
            strides=list(strides), padding=tf_padding, dilations=list(dilation),
        )
        return channels_first(y.numpy())

    def with_tconv():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = tconv.geometry(inputs, kernel, "tensorflow", output_shape=output, strides=strides,
                               padding=tf_padding, dilations=dilation)
        if any(d > 1 for d in dilation):
            assert any("dilations > 1" in str(c.message) for c in caught), "tconv did not warn about TF CPU dilation"
        return g

    # TF's default CPU kernel refuses dilations > 1; oneDNN (float32 SAME/VALID) computes them.
    # Where this run hits the refusal, tconv must accept the layer (it is legal TF) and warn.
    cpu_refuses_dilation = False
    if any(d > 1 for d in dilation):
        try:
            framework()
        except Exception as err:  # noqa: BLE001 - compare() below judges every other failure
            cpu_refuses_dilation = "support dilation rates larger than 1" in str(err)
    compare(
        with_tconv,
        framework,
        lambda: reference_full(torch, x, w, strides, dilation),
        f"tf.nn.conv_transpose {inputs} k={kernel} s={strides} d={dilation} {padding} -> {output}",
        expect_framework_error=cpu_refuses_dilation,
    )


def test_tensorflow_float64_cpu_rejects_dilation(tf):
    """Without oneDNN (float64 here) TF's CPU kernel refuses dilations > 1: tconv warns, it does not reject."""
    with pytest.raises(tf.errors.InvalidArgumentError, match="do(es)? not yet support dilation rates larger than 1"):
        tf.nn.conv_transpose(np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1)), [1, 9, 9, 1], 1, padding="VALID", dilations=2)
    with pytest.warns(FrameworkQuirkWarning, match="dilations > 1"):
        assert tconv.output_shape((5, 5), 3, "tensorflow", output_shape=(9, 9), padding="VALID", dilations=2) == (9, 9)


@pytest.mark.parametrize("data_format,inputs,kernel,strides,output", [
    ("NCW", (5,), (3,), (2,), (10,)),
    ("NCHW", (4, 5), (3, 2), (2, 3), (7, 15)),
    ("NCDHW", (3, 2, 2), (2, 3, 1), (2, 1, 3), (6, 2, 6)),
])
def test_tensorflow_channels_first(torch, tf, data_format, inputs, kernel, strides, output):
    """Channels-first runs through oneDNN in float32 (window checked); TF's plain CPU kernel refuses it."""
    x, w = make_data(0, inputs, kernel)
    with pytest.warns(FrameworkQuirkWarning, match="only channels-last"):
        g = tconv.geometry(inputs, kernel, "tensorflow", output_shape=output, strides=strides, padding="SAME",
                           data_format=data_format)
    y = tf.nn.conv_transpose(x.astype(np.float32), tf_kernel(w).astype(np.float32), [1, 2, *output], list(strides),
                             padding="SAME", data_format=data_format)
    assert_window(y.numpy(), reference_full(torch, x, w, strides, (1,) * len(inputs)), g, data_format)
    with pytest.raises(tf.errors.InvalidArgumentError, match="only supports N"):
        tf.nn.conv_transpose(x, tf_kernel(w), [1, 2, *output], list(strides), padding="SAME", data_format=data_format)


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
