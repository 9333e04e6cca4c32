"""Every algorithm computes what the real frameworks compute, on their own layouts; gradients too.

The expected values come from the frameworks themselves (torch, keras.ops and
tf.nn on the TensorFlow backend, jax.lax, flax.linen, onnxruntime), never from
tconv. Hypothesis draws the configurations; budgets are small because every
example runs a framework.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from tconv.kernels import ALGORITHMS

pytestmark = pytest.mark.filterwarnings("ignore::tconv.errors.FrameworkQuirkWarning")
FRAMEWORK_SETTINGS = settings(max_examples=examples(15), deadline=None, suppress_health_check=list(HealthCheck))


def assert_matches(got, expected, terms, scale=1.0, err_msg=""):
    """float32: rtol 1e-5 scaled by the reduction size; float64: 1e-12."""
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape, err_msg)
    rtol = 1e-5 if expected.dtype == np.float32 or got.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * max(terms, 1) * scale, err_msg=err_msg)


def every_algorithm(x, w, b, framework, expected, terms, **args):
    for name in ALGORITHMS:
        got = tconv.conv_transpose(x, w, b, framework, algorithm=name, **args)
        assert_matches(got, expected, terms, scale=float(np.abs(x).max(initial=0) * np.abs(w).max() + 1), err_msg=name)


def legal(spatial, kernel, framework, **args):
    """Accepted, with a non-empty output (empty ones are tests/test_empty_outputs.py's)."""
    try:
        return not tconv.geometry(spatial, kernel, framework, **args).empty
    except tconv.ConfigError:
        return False


# ---- PyTorch ----------------------------------------------------------------------
@st.composite
def torch_layers(draw):
    ndim = draw(st.integers(1, 3))
    per_axis = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))  # noqa: E731
    spatial, kernel = per_axis(1, 4), per_axis(1, 4)
    stride, dilation, padding = per_axis(1, 3), per_axis(1, 2), per_axis(0, 2)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    groups = draw(st.sampled_from([1, 2, 3]))
    ci, co, batch = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(0, 2))
    args = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    assume(legal(spatial, kernel, "pytorch", **args))
    return (batch, groups * ci, *spatial), (groups * ci, co, *kernel), groups * co, args


@FRAMEWORK_SETTINGS
@given(torch_layers(), st.sampled_from(["float32", "float64"]), st.integers(0, 2**16))
def test_pytorch(torch, layer, dtype, seed):
    x_shape, w_shape, cout, args = layer
    rng = np.random.default_rng(seed)
    x, w, b = (rng.normal(size=s).astype(dtype) for s in (x_shape, w_shape, (cout,)))
    fn = getattr(torch.nn.functional, f"conv_transpose{len(x_shape) - 2}d")
    expected = fn(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **args).numpy()
    every_algorithm(x, w, b, "pytorch", expected, w_shape[0] * np.prod(w_shape[2:]), **args)


def test_pytorch_channels_last_memory(torch):
    # channels-last memory (NHWC bytes, NCHW indexing) gives the same values
    rng = np.random.default_rng(1)
    x = np.ascontiguousarray(rng.normal(size=(2, 6, 7, 4)).astype(np.float32)).transpose(0, 3, 1, 2)
    w = rng.normal(size=(4, 5, 3, 3)).astype(np.float32)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x).contiguous(memory_format=torch.channels_last), torch.from_numpy(w), stride=2, padding=1
    ).numpy()
    every_algorithm(x, w, None, "pytorch", expected, 36, stride=2, padding=1)


# groups=2 is depthwise: k3 s2 gives its phases 2 and 1 taps, which phase's rows form
# evens out with zero weights; an Inf read by such a tap must not leak (0 * inf)
@pytest.mark.parametrize("groups", [1, 2])
def test_nan_and_inf_propagate_like_pytorch(torch, groups):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 2, 6, 6))
    x[0, 0, 1, 2], x[0, 1, 4, 4], x[0, 0, 3, 0] = np.nan, np.inf, -np.inf
    w = rng.normal(size=(2, 3 if groups == 1 else 1, 3, 3))
    expected = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1,
                                                    groups=groups).numpy()
    assert np.isnan(expected).any() and np.isinf(expected).any()
    for name in ALGORITHMS:
        got = tconv.conv_transpose(x, w, stride=2, padding=1, groups=groups, algorithm=name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=name)


@FRAMEWORK_SETTINGS
@given(torch_layers(), st.integers(0, 2**16))
def test_gradients_equal_torch_autograd(torch, layer, seed):
    x_shape, w_shape, cout, args = layer
    assume(x_shape[0] > 0)
    rng = np.random.default_rng(seed)
    x, w, b = (rng.normal(size=s) for s in (x_shape, w_shape, (cout,)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    fn = getattr(torch.nn.functional, f"conv_transpose{len(x_shape) - 2}d")
    out = fn(tx, tw, tb, **args)
    cotangent = rng.normal(size=tuple(out.shape))
    out.backward(torch.from_numpy(cotangent))
    y, vjp = tconv.conv_transpose_vjp(x, w, b, **args)
    grads = vjp(cotangent)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(grads, (tx, tw, tb)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-12, atol=1e-11)


# ---- Keras 3 (TensorFlow backend) and TensorFlow ------------------------------------
@st.composite
def keras_layers(draw):
    ndim = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    padding = draw(st.sampled_from(["same", "valid"]))
    output_padding = draw(st.one_of(st.none(), st.tuples(*(st.integers(0, s - 1) for s in strides))))
    # the TF backend's known failures (dilation on CPU, even kernels with 'same' and op=0) are not conformance
    if padding == "same" and output_padding is not None:
        assume(all((k - 1) % 2 == 0 or op > 0 for k, op in zip(kernel, output_padding)))
    args = dict(strides=strides, padding=padding, output_padding=output_padding)
    assume(legal(spatial, kernel, "keras", **args))
    return spatial, kernel, args


@FRAMEWORK_SETTINGS
@given(keras_layers(), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**16))
def test_keras(keras, layer, cin, cout, seed):
    spatial, kernel, args = layer
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, *spatial, cin))
    w = rng.normal(size=(*kernel, cout, cin))
    expected = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, w, **args))
    every_algorithm(x, w, None, "keras", expected, cin * np.prod(kernel), **args)


def test_keras_layer_with_bias(keras):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    layer = keras.layers.Conv2DTranspose(4, (3, 2), strides=2, padding="same")
    layer.build(x.shape)
    kernel, bias = rng.normal(size=(3, 2, 4, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    layer.set_weights([kernel, bias])
    expected = keras.ops.convert_to_numpy(layer(x))
    every_algorithm(x, kernel, bias, "keras", expected, 18, strides=2, padding="same")


@FRAMEWORK_SETTINGS
@given(st.integers(1, 3), st.data())
def test_tensorflow(tf, ndim, data):
    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    kernel = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    # TF's documented legal output sizes: SAME (i-1)*s+1 .. i*s, VALID (i-1)*s+k .. (i-1)*s+k+s-1
    first = [(i - 1) * s + (1 if padding == "SAME" else k) for i, s, k in zip(spatial, strides, kernel)]
    output = tuple(f + data.draw(st.integers(0, s - 1)) for f, s in zip(first, strides))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=(2, *spatial, 3))
    w = rng.normal(size=(*kernel, 2, 3))
    expected = tf.nn.conv_transpose(x, w, (2, *output, 2), strides, padding).numpy()
    every_algorithm(x, w, None, "tensorflow", expected, 3 * np.prod(kernel), output_shape=(2, *output, 2),
                    strides=strides, padding=padding)


# ---- JAX and Flax -----------------------------------------------------------------
@FRAMEWORK_SETTINGS
@given(st.integers(1, 3), st.data())
def test_jax(jax, ndim, data):
    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    kernel = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(ndim))
    padding = data.draw(st.one_of(st.sampled_from(["SAME", "VALID"]),
                                  st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 4)), min_size=ndim, max_size=ndim)))
    transpose_kernel = data.draw(st.booleans())
    channels_first = data.draw(st.booleans())
    letters = "HWD"[:ndim]
    dims = ("NC" + letters, "OI" + letters, "NC" + letters) if channels_first else None
    args = dict(strides=strides, padding=padding, rhs_dilation=dilation, transpose_kernel=transpose_kernel, dimension_numbers=dims)
    assume(legal(spatial, kernel, "jax", **args))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=(2, 3, *spatial) if channels_first else (2, *spatial, 3))
    # rhs spec: default (*k, I, O); OI... puts O first. With transpose_kernel, O holds the input channels.
    out_first, in_first = (3, 2) if transpose_kernel else (2, 3)
    w = rng.normal(size=(out_first, in_first, *kernel) if channels_first else (*kernel, in_first, out_first))
    expected = np.asarray(jax.lax.conv_transpose(x, w, strides, padding, rhs_dilation=dilation,
                                                 dimension_numbers=dims, transpose_kernel=transpose_kernel))
    every_algorithm(x, w, None, "jax", expected, 3 * np.prod(kernel), **args)


@settings(max_examples=examples(10), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 2), st.data())
def test_flax(flax_linen, ndim, data):
    import jax.numpy as jnp

    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    kernel = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    padding = data.draw(st.sampled_from(["SAME", "VALID", "CIRCULAR", 0, 1, 2]))
    transpose_kernel = data.draw(st.booleans())
    args = dict(strides=strides, padding=padding, transpose_kernel=transpose_kernel)
    assume(legal(spatial, kernel, "flax", **args))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=(2, *spatial, 3))
    module = flax_linen.ConvTranspose(2, kernel, strides=strides, padding=padding, transpose_kernel=transpose_kernel,
                                      dtype=jnp.float64, param_dtype=jnp.float64)
    w = rng.normal(size=(*kernel, 2, 3) if transpose_kernel else (*kernel, 3, 2))
    b = rng.normal(size=2)
    expected = np.asarray(module.apply({"params": {"kernel": w, "bias": b}}, x))
    every_algorithm(x, w, b, "flax", expected, 3 * np.prod(kernel) * 3, **args)


@settings(max_examples=examples(5), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 2), st.data())
def test_gradients_equal_jax_grad(jax, ndim, data):
    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, w = rng.normal(size=(2, *spatial, 3)), rng.normal(size=(*kernel, 3, 2))
    out_shape = jax.eval_shape(lambda a, b: jax.lax.conv_transpose(a, b, strides, padding), x, w).shape
    cotangent = rng.normal(size=out_shape)

    def loss(a, b):
        return (jax.lax.conv_transpose(a, b, strides, padding) * cotangent).sum()

    dx, dw = jax.grad(loss, argnums=(0, 1))(x, w)
    grads = tconv.conv_transpose_grad(x, w, cotangent, framework="jax", strides=strides, padding=padding)
    np.testing.assert_allclose(grads.x, dx, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(grads.w, dw, rtol=1e-12, atol=1e-11)
    assert grads.b is None


# ---- ONNX Runtime -----------------------------------------------------------------
def run_onnx(ort, x, w, b, attributes):
    import onnx  # noqa: F401  (onnx.helper below needs the package)
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape)),
              helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape))]
    names = ["x", "w"]
    feeds = {"x": x, "w": w}
    if b is not None:
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, list(b.shape)))
        names.append("b")
        feeds["b"] = b
    node = helper.make_node("ConvTranspose", names, ["y"], **{k: v for k, v in attributes.items() if v is not None})
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


@FRAMEWORK_SETTINGS
@given(st.integers(1, 3), st.data())
def test_onnxruntime(ort, ndim, data):
    spatial = [data.draw(st.integers(1, 4)) for _ in range(ndim)]
    kernel = [data.draw(st.integers(1, 3)) for _ in range(ndim)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(ndim)]
    dilations = [data.draw(st.integers(1, 2)) for _ in range(ndim)]
    output_padding = [data.draw(st.integers(0, s - 1)) for s in strides]
    group = data.draw(st.sampled_from([1, 2]))
    mode = data.draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "output_shape"]))
    args = dict(strides=strides, dilations=dilations, output_padding=output_padding, group=group)
    if mode == "pads":
        args["pads"] = [data.draw(st.integers(0, 2)) for _ in range(2 * ndim)]
    elif mode == "output_shape":
        args["output_shape"] = [(i - 1) * s + data.draw(st.integers(1, 6)) for i, s in zip(spatial, strides)]
    else:
        args["auto_pad"] = mode
    assume(legal(tuple(spatial), tuple(kernel), "onnx", **args))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=(2, 2 * group, *spatial)).astype(np.float32)
    w = rng.normal(size=(2 * group, 2, *kernel)).astype(np.float32)
    b = rng.normal(size=(2 * group,)).astype(np.float32)
    expected = run_onnx(ort, x, w, b, args)
    every_algorithm(x, w, b, "onnx", expected, 2 * np.prod(kernel), **args)


# ---- MXNet and Caffe (not installable here): their documented layouts equal PyTorch's -------------
@pytest.mark.formula_only
@pytest.mark.parametrize(
    "framework, args, torch_args",
    [
        ("mxnet", dict(stride=2, pad=1, adj=1, num_group=2), dict(stride=2, padding=1, output_padding=1, groups=2)),
        ("mxnet", dict(stride=(2, 3), dilate=2, target_shape=(9, 11)), None),
        ("caffe", dict(stride=2, pad=1, group=2, dilation=2), dict(stride=2, padding=1, groups=2, dilation=2)),
    ],
)
def test_mxnet_and_caffe_compute_like_pytorch(torch, framework, args, torch_args):
    rng = np.random.default_rng(11)
    x, w = rng.normal(size=(2, 4, 5, 6)), rng.normal(size=(4, 3, 3, 3))
    got = tconv.conv_transpose(x, w, framework=framework, **args)
    if torch_args is None:  # target_shape: MXNet crops ceil(t/2) at the start and t - ceil(t/2) at the end
        full = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=(2, 3), dilation=2).numpy()
        assert full.shape[2:] == (13, 20)  # t = (4, 9): crop (2, 2) and (5, 4)
        expected = full[:, :, 2:11, 5:16]
    else:
        expected = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), **torch_args).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# ---- TFLite: the real interpreter, TRANSPOSE_CONV with OHWI weights ---------------------------
@pytest.mark.parametrize("padding, strides, output", [("SAME", (2, 2), (10, 12)), ("VALID", (2, 3), (11, 18)), ("SAME", (3, 1), (14, 6))])
def test_tflite(tf, padding, strides, output):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(1, 5, 6, 3)).astype(np.float32)
    filters = rng.normal(size=(3, 2, 4, 3)).astype(np.float32)  # TF's (kh, kw, out, in)

    @tf.function(input_signature=[tf.TensorSpec(x.shape, tf.float32)])
    def layer(a):
        return tf.nn.conv2d_transpose(a, filters, output_shape=(1, *output, 4), strides=strides, padding=padding)

    model = tf.lite.TFLiteConverter.from_concrete_functions([layer.get_concrete_function()], layer).convert()
    interpreter = tf.lite.Interpreter(model_content=model)
    interpreter.allocate_tensors()
    assert "TRANSPOSE_CONV" in [op["op_name"] for op in interpreter._get_ops_details()]
    weights = [t for t in interpreter.get_tensor_details() if tuple(t["shape"]) == (4, 3, 2, 3)]
    assert weights, "TFLite stores the weight as OHWI (4, 3, 2, 3)"
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    ohwi = np.transpose(filters, (2, 0, 1, 3))
    every_algorithm(x, ohwi, None, "tflite", expected, 18, output_shape=(1, *output, 4), strides=strides, padding=padding)


def test_keras_and_tf_channels_first(keras, tf):
    # TF's CPU kernels reject NCHW transposed convolutions, so the real channels-last result is the
    # reference: data_format moves the channels of input and output, never the kernel's axes.
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 5, 6, 3))
    kernel = rng.normal(size=(3, 3, 4, 3))
    expected = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, kernel, strides=2, padding="same"))
    got = tconv.conv_transpose(np.moveaxis(x, -1, 1), kernel, framework="keras", strides=2, padding="same",
                               data_format="channels_first")
    np.testing.assert_allclose(got, np.moveaxis(expected, -1, 1), rtol=1e-12, atol=1e-12)
    expected_tf = tf.nn.conv2d_transpose(x, kernel, (2, 10, 12, 4), 2, "SAME").numpy()
    got_tf = tconv.conv_transpose(np.moveaxis(x, -1, 1), kernel, framework="tensorflow", output_shape=(2, 4, 10, 12),
                                  strides=2, padding="SAME", data_format="NCHW")
    np.testing.assert_allclose(got_tf, np.moveaxis(expected_tf, -1, 1), rtol=1e-12, atol=1e-12)
