"""tconv.convert / convert_weights against the real frameworks: the converted layer, run by the
target framework with the converted kernel, gives the source layer's VALUES (not only its shape).

Every framework below is run for real (torch, Keras 3 on TensorFlow, tf.nn, jax.lax,
onnxruntime); the kernels are drawn at random in each source framework's own layout.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv

FRAMEWORKS = ("pytorch", "keras", "tensorflow", "jax", "onnx")
CHANNELS_FIRST = {"pytorch", "onnx"}
CIN, COUT = 2, 3


# ---- running each framework's functional API, written from its documentation ----------------
def kernel_shape(framework, kernel, cin=CIN, cout=COUT, groups=1):
    if framework in ("pytorch", "onnx"):
        return (cin, cout // groups, *kernel)
    if framework in ("keras", "tensorflow"):
        return (*kernel, cout, cin)
    return (*kernel, cin, cout)  # lax HWIO


def to_layout(x_ncx, framework):
    return x_ncx if framework in CHANNELS_FIRST else np.moveaxis(x_ncx, 1, -1).copy()


def from_layout(y, framework):
    return y if framework in CHANNELS_FIRST else np.moveaxis(y, -1, 1)


def run(framework, x_ncx, w, b, args, fw):
    """The framework's own transposed convolution; x in (N, C, *spatial); returns (N, C, *spatial)."""
    x = to_layout(x_ncx, framework)
    ndim = x_ncx.ndim - 2
    if framework == "pytorch":
        torch = fw["torch"]
        op = getattr(torch.nn.functional, f"conv_transpose{ndim}d")
        y = op(torch.as_tensor(x), torch.as_tensor(w), torch.as_tensor(b), **args).numpy()
    elif framework == "keras":
        keras = fw["keras"]
        y = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, w, **args)) + b
    elif framework == "tensorflow":
        tf = fw["tf"]
        kwargs = dict(args)
        spatial = list(kwargs.pop("output_shape"))
        y = tf.nn.conv_transpose(x, w, output_shape=[x.shape[0], *spatial, w.shape[-2]], **kwargs).numpy() + b
    elif framework == "jax":
        jax = fw["jax"]
        y = np.asarray(jax.lax.conv_transpose(x, w, **args)) + b
    elif framework == "onnx":
        y = run_onnx(x, w, b, args, fw["ort"])
    else:  # pragma: no cover
        raise AssertionError(framework)
    return from_layout(np.asarray(y), framework)


def run_onnx(x, w, b, attributes, ort):
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attributes)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def apply_crop(y, crop, b):
    """The documented meaning of Conversion.crop on a bias-free output (N, C, *spatial): slice, pad zeros, add the bias."""
    index = [slice(None), slice(None)]
    for begin, end in crop:
        index.append(slice(max(begin, 0), -end if end > 0 else None))
    y = y[tuple(index)]
    pads = [(0, 0), (0, 0)] + [(max(-begin, 0), max(-end, 0)) for begin, end in crop]
    return np.pad(y, pads) + b.reshape((1, -1) + (1,) * len(crop))


@pytest.fixture(scope="module")
def fw(torch, tf, keras, jax, ort):
    return {"torch": torch, "tf": tf, "keras": keras, "jax": jax, "ort": ort}


# ---- hypothesis: a legal layer in the source framework's own arguments -------------------------
@st.composite
def layers(draw, framework):
    ndim = draw(st.sampled_from([1, 2]))
    inputs = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    kernel = (k,) * ndim
    if framework == "pytorch":
        K = k
        args = {"stride": s, "padding": draw(st.integers(0, K)), "output_padding": draw(st.integers(0, s - 1))}
    elif framework == "keras":
        args = {"strides": s, "padding": draw(st.sampled_from(["same", "valid"]))}
        if draw(st.booleans()):
            args["output_padding"] = draw(st.integers(0, s - 1))
    elif framework == "tensorflow":
        padding = draw(st.sampled_from(["SAME", "VALID"]))
        base = [(i - 1) * s + (1 if padding == "SAME" else k) for i in inputs]
        extra = draw(st.integers(0, s - 1))
        args = {"output_shape": tuple(o + extra for o in base), "strides": (s,) * ndim, "padding": padding}
    elif framework == "jax":
        padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.tuples(st.integers(-1, k), st.integers(-1, k))))
        args = {"strides": (s,) * ndim, "padding": padding if isinstance(padding, str) else [padding] * ndim}
    else:
        mode = draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "output_shape"]))
        args = {"strides": [s] * ndim}
        if mode == "pads":
            args["pads"] = [draw(st.integers(0, k - 1)) for _ in range(2 * ndim)]
            args["output_padding"] = [draw(st.integers(0, s - 1))] * ndim
        elif mode == "output_shape":
            args["output_shape"] = [(i - 1) * s + k - draw(st.integers(0, k - 1)) for i in inputs]
        else:
            args["auto_pad"] = mode
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", tconv.FrameworkQuirkWarning)  # skip layers the framework itself breaks on
            tconv.geometry(inputs, kernel, framework, **args)
    except (tconv.ConfigError, tconv.FrameworkQuirkWarning):
        assume(False)
    return inputs, kernel, args


@pytest.mark.parametrize("source", FRAMEWORKS)
@settings(max_examples=examples(12))
@given(data=st.data())
def test_converted_layer_gives_the_same_values(source, data, fw):
    inputs, kernel, args = data.draw(layers(source))
    rng = np.random.default_rng(len(inputs) * 1000 + sum(inputs) * 10 + kernel[0])
    x = rng.standard_normal((2, CIN, *inputs)).astype(np.float32)
    w = rng.standard_normal(kernel_shape(source, kernel)).astype(np.float32)
    b = rng.standard_normal(COUT).astype(np.float32)
    expected = run(source, x, w, b, args, fw)
    assert expected.shape[2:] == tconv.output_shape(inputs, kernel, source, **args)
    run_code = data.draw(st.booleans(), label="exec .code")
    for target in FRAMEWORKS:
        if target == source:
            continue
        conversion = tconv.convert(inputs, kernel, source=source, target=target, **args)
        w_target = tconv.convert_weights(w, source, target)
        y = apply_crop(run(target, x, w_target, np.zeros_like(b), conversion.args, fw), conversion.crop, b)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4, err_msg=f"{source} -> {target}: {conversion}")
        assert conversion.exact == all(c == (0, 0) for c in conversion.crop)
        if run_code:
            namespace = {"x": to_layout(x, target), "w": w_target, "b": b}
            exec(conversion.code, namespace)
            np.testing.assert_allclose(from_layout(namespace["y"], target), expected, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{source} -> {target} code:\n{conversion.code}")


# ---- the translation trap, seed cases ---------------------------------------------------------
def test_keras_same_k3_s2_is_not_pytorch_padding_1_output_padding_1(fw):
    x = np.random.default_rng(1).standard_normal((1, CIN, 5, 5)).astype(np.float32)
    w_keras = np.random.default_rng(2).standard_normal((3, 3, COUT, CIN)).astype(np.float32)
    b = np.zeros(COUT, np.float32)
    keras_out = run("keras", x, w_keras, b, {"strides": 2, "padding": "same"}, fw)
    w_torch = tconv.convert_weights(w_keras, "keras", "pytorch")
    naive = run("pytorch", x, w_torch, b, {"stride": 2, "padding": 1, "output_padding": 1}, fw)
    assert naive.shape == keras_out.shape
    assert not np.allclose(naive, keras_out, atol=1e-3)  # same shape, shifted values
    np.testing.assert_allclose(naive[..., :-1, :-1], keras_out[..., 1:, 1:], atol=1e-4)  # by one pixel
    c = tconv.convert((5, 5), 3, "keras", "pytorch", strides=2, padding="same")
    assert c.args == {"stride": 2, "padding": 0} and c.crop == ((0, 1), (0, 1))
    np.testing.assert_allclose(apply_crop(run("pytorch", x, w_torch, b, c.args, fw), c.crop, b), keras_out, atol=1e-4)


@pytest.mark.parametrize(
    "kernel, args, torch_args, crop",
    [
        (4, {"strides": 2, "padding": "same"}, {"stride": 2, "padding": 1}, ((0, 0),)),
        (2, {"strides": 1, "padding": "same"}, {"stride": 1, "padding": 0}, ((0, 1),)),
        (3, {"strides": 2, "padding": "valid", "output_padding": 1}, {"stride": 2, "padding": 0, "output_padding": 1}, ((0, 0),)),
    ],
)
def test_keras_to_pytorch_table(kernel, args, torch_args, crop, fw):
    c = tconv.convert(6, kernel, "keras", "pytorch", **args)
    assert (c.args, c.crop) == (torch_args, crop)
    x = np.random.default_rng(3).standard_normal((1, CIN, 6)).astype(np.float32)
    w = np.random.default_rng(4).standard_normal((kernel, COUT, CIN)).astype(np.float32)
    b = np.random.default_rng(5).standard_normal(COUT).astype(np.float32)
    expected = run("keras", x, w, b, args, fw)
    got = apply_crop(run("pytorch", x, tconv.convert_weights(w, "keras", "pytorch"), np.zeros_like(b), c.args, fw), c.crop, b)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_zero_padding_past_the_end_carries_the_bias(fw):
    # Keras 'valid' with stride 3 > kernel 2 appends a zero (plus bias) row that JAX 'VALID' also has,
    # but PyTorch has it only through output_padding; a target that must pad gets zeros plus bias.
    x = np.random.default_rng(6).standard_normal((1, CIN, 4)).astype(np.float32)
    w = np.random.default_rng(7).standard_normal((2, COUT, CIN)).astype(np.float32)
    b = np.arange(1, COUT + 1, dtype=np.float32)
    expected = run("keras", x, w, b, {"strides": 3, "padding": "valid"}, fw)
    for target in ("pytorch", "onnx", "jax", "tensorflow"):
        c = tconv.convert(4, 2, "keras", target, strides=3, padding="valid")
        wt = tconv.convert_weights(w, "keras", target)
        got = apply_crop(run(target, x, wt, np.zeros_like(b), c.args, fw), c.crop, b)
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=target)
        namespace = {"x": to_layout(x, target), "w": wt, "b": b}
        exec(c.code, namespace)
        np.testing.assert_allclose(from_layout(namespace["y"], target), expected, atol=1e-4, err_msg=c.code)


def test_dilation_among_torch_jax_onnx(fw):
    x = np.random.default_rng(8).standard_normal((1, CIN, 5, 4)).astype(np.float32)
    w = np.random.default_rng(9).standard_normal((CIN, COUT, 3, 2)).astype(np.float32)
    b = np.random.default_rng(10).standard_normal(COUT).astype(np.float32)
    args = {"stride": (2, 1), "padding": (2, 1), "output_padding": (1, 0), "dilation": 2}
    expected = run("pytorch", x, w, b, args, fw)
    for target in ("jax", "onnx"):
        c = tconv.convert((5, 4), (3, 2), "pytorch", target, **args)
        got = apply_crop(run(target, x, c.weights(w), np.zeros_like(b), c.args, fw), c.crop, b)
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=target)


@pytest.mark.parametrize("target", ["keras", "jax", "tensorflow", "onnx"])
def test_grouped_kernel(target, fw):
    groups, cin, cout = 2, 4, 6
    x = np.random.default_rng(11).standard_normal((1, cin, 4, 3)).astype(np.float32)
    w = np.random.default_rng(12).standard_normal((cin, cout // groups, 3, 3)).astype(np.float32)
    b = np.zeros(cout, np.float32)
    args = {"stride": 2, "padding": 1, "groups": groups}
    expected = run("pytorch", x, w, b, args, fw)
    c = tconv.convert((4, 3), 3, "pytorch", target, **args)
    wt = c.weights(w)
    assert wt.shape == kernel_shape(target, (3, 3), cin, cout, groups if target == "onnx" else 1)
    got = apply_crop(run(target, x, wt, b, c.args, fw), c.crop, b)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_jax_transpose_kernel_is_tf_layout(fw):
    x = np.random.default_rng(13).standard_normal((1, CIN, 4, 4)).astype(np.float32)
    w = np.random.default_rng(14).standard_normal((3, 3, COUT, CIN)).astype(np.float32)  # (*k, out, in)
    b = np.zeros(COUT, np.float32)
    jax_args = {"strides": (2, 2), "padding": "SAME", "transpose_kernel": True}
    expected = run("jax", x, w, b, jax_args, fw)
    c = tconv.convert((4, 4), 3, "jax", "pytorch", **jax_args)
    got = apply_crop(run("pytorch", x, c.weights(w), b, c.args, fw), c.crop, b)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(tconv.convert_weights(w, "jax", "keras", source_transpose_kernel=True), w)


# ---- bad input ---------------------------------------------------------------------------------
def test_unknown_framework_lists_known_ones():
    with pytest.raises(tconv.ConfigError, match="Known frameworks: pytorch, keras"):
        tconv.convert(8, 3, "keras", "pytorh", strides=2)
    with pytest.raises(tconv.ConfigError, match="convert_weights handles"):
        tconv.convert_weights(np.zeros((1, 1, 3)), "pytorch", "tflite")


def test_circular_cannot_be_converted_and_says_so():
    with pytest.raises(tconv.ConfigError, match="CIRCULAR.*no slice or pad"):
        tconv.convert((4, 4), (3, 3), "flax", "pytorch", strides=(2, 2), padding="CIRCULAR")


def test_weights_that_do_not_fit_the_groups():
    with pytest.raises(tconv.ConfigError, match="groups=2"):
        tconv.convert_weights(np.zeros((3, 1, 3)), "pytorch", "keras", groups=2)
    with pytest.raises(tconv.ConfigError, match="no channel groups"):
        tconv.convert_weights(np.zeros((3, 1, 3)), "keras", "pytorch", groups=2)


def test_illegal_source_layer_is_a_config_error():
    with pytest.raises(tconv.ConfigError, match="output_padding"):
        tconv.convert(8, 3, "pytorch", "keras", stride=2, output_padding=2)


def test_cli_convert(capsys):
    from tconv.cli import main

    assert main(["convert", "8x8", "-k", "3", "--from", "keras", "--to", "pytorch", "-s", "2", "-p", "same"]) == 0
    out = capsys.readouterr().out
    assert "stride=2, padding=0" in out and "remove 1 at the end" in out
    assert main(["convert", "8", "-k", "3", "--to", "flux"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Known frameworks" in err
