"""tconv.torch.swap/unswap on real torch models, and from_keras/from_flax/from_onnx against the real frameworks."""
from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import tconv.torch as tt
from tconv import ConfigError


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1), nn.ReLU(),
        nn.Sequential(nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2)),
        nn.Conv2d(4, 4, 1),
        nn.ConvTranspose2d(4, 3, 3, dilation=2, bias=False),
    )


def test_swap_keeps_parameters_state_dict_and_values():
    model = _model().eval()
    x = torch.randn(2, 8, 5, 5)
    keys, params = list(model.state_dict()), [id(p) for p in model.parameters()]
    with torch.no_grad():
        before = model(x)
    assert tt.swap(model) is model
    assert all(type(m).__module__ == "tconv.torch.modules" for m in model.modules()
               if isinstance(m, nn.modules.conv._ConvTransposeNd))
    assert list(model.state_dict()) == keys and [id(p) for p in model.parameters()] == params
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-4, atol=1e-5)
    tt.unswap(model)
    assert {type(m) for m in model.modules()} >= {nn.ConvTranspose2d}
    assert not any(type(m).__module__.startswith("tconv") for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)


def test_swap_1d_3d_training_and_hooks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose1d(3, 2, 5, stride=3, padding=1), nn.Tanh())
    reference = copy.deepcopy(model)
    seen = []
    model[0].register_forward_hook(lambda *a: seen.append(1))
    tt.swap(model)
    x = torch.randn(2, 3, 3)
    model(x).sum().backward()
    reference(x).sum().backward()
    assert seen == [1]  # the hooks stay with the layer
    torch.testing.assert_close(model[0].weight.grad, reference[0].weight.grad, rtol=1e-4, atol=1e-5)
    m3 = nn.ConvTranspose3d(2, 2, 2, stride=2)
    x3 = torch.randn(1, 2, 3, 3, 3)
    want = m3(x3)
    torch.testing.assert_close(tt.swap(m3)(x3), want, rtol=1e-4, atol=1e-5)


def test_swap_says_when_there_is_nothing_or_a_layer_stays_torch():
    with pytest.warns(UserWarning, match="holds no torch.nn.ConvTranspose"):
        model = nn.Linear(2, 2)
        assert tt.swap(model) is model
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, padding=1, padding_mode="zeros"),
                          nn.ConvTranspose2d(2, 2, 3))
    model[1].padding_mode = "reflect"  # torch refuses it in forward; tconv does not take it either
    with pytest.warns(UserWarning, match=r"1 stays torch's: padding_mode='reflect'"):
        tt.swap(model)
    assert type(model[0]) is tt.ConvTranspose2d and type(model[1]) is nn.ConvTranspose2d
    with pytest.raises(ConfigError):
        tt.swap("not a model")


def test_unswap_keeps_string_paddings_with_a_warning():
    model = nn.Sequential(tt.ConvTranspose2d(2, 2, 3, stride=2, padding="same"))
    with pytest.warns(UserWarning, match="padding='same' has no torch equivalent"):
        tt.unswap(model)
    assert type(model[0]) is tt.ConvTranspose2d


def test_swapped_model_exports_and_scripts():
    model = tt.swap(_model().eval())
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


# ---- Keras --------------------------------------------------------------------------------------

KERAS_LAYERS = [(1, 3, 2, "same", None), (2, 3, 2, "same", None), (2, 4, 2, "same", None), (2, 1, 3, "same", None),
                (2, 3, 2, "valid", None), (2, 3, 2, "same", 1), (2, 5, 3, "valid", 2), (3, 3, 2, "same", None)]


@pytest.mark.parametrize("ndim,k,s,padding,output_padding", KERAS_LAYERS)
def test_from_keras(ndim, k, s, padding, output_padding):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    cls = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)[ndim - 1]
    layer = cls(5, k, strides=s, padding=padding, output_padding=output_padding)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2,) + (6, 5, 4)[:ndim] + (3,)).astype("float32")
    want = np.asarray(layer(x))
    layer.set_weights([w + rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()])
    want = np.asarray(layer(x))
    module = tt.from_keras(layer)
    assert isinstance(module, (tt.ConvTranspose1d, tt.ConvTranspose2d, tt.ConvTranspose3d))
    with torch.no_grad():
        got = module(torch.from_numpy(np.moveaxis(x, -1, 1))).numpy()
    np.testing.assert_allclose(np.moveaxis(got, 1, -1), want, rtol=1e-4, atol=1e-4)


def test_from_keras_bad_input():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    with pytest.raises(ConfigError, match="not built"):
        tt.from_keras(keras.layers.Conv2DTranspose(2, 3))
    with pytest.raises(ConfigError, match="Conv1D/2D/3DTranspose"):
        tt.from_keras(keras.layers.Dense(2))


# ---- Flax ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1)), "CIRCULAR"])
@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_from_flax(padding, transpose_kernel):
    jax = pytest.importorskip("jax")
    fnn = pytest.importorskip("flax.linen")
    module = fnn.ConvTranspose(5, (3, 3), strides=(2, 2), padding=padding, transpose_kernel=transpose_kernel)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 3)).astype("float32")
    params = module.init(jax.random.PRNGKey(0), x)
    params = jax.tree_util.tree_map(lambda a: a + rng.standard_normal(a.shape).astype("float32"), params)
    if padding == "CIRCULAR":
        with pytest.raises(ConfigError, match="CIRCULAR"):
            tt.from_flax(module, params)
        return
    want = np.asarray(module.apply(params, x))
    layer = tt.from_flax(module, params)
    with torch.no_grad():
        got = layer(torch.from_numpy(np.moveaxis(x, -1, 1))).numpy()
    np.testing.assert_allclose(np.moveaxis(got, 1, -1), want, rtol=1e-4, atol=1e-4)


# ---- ONNX ---------------------------------------------------------------------------------------

ONNX_NODES = [dict(strides=[2, 2], auto_pad="SAME_UPPER"), dict(strides=[2, 2], auto_pad="SAME_LOWER"),
              dict(strides=[2, 2], auto_pad="VALID"), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 0]),
              dict(strides=[2, 2], pads=[1, 1, 1, 1], group=2), dict(strides=[3, 2], dilations=[2, 1], pads=[0, 1, 2, 1]),
              dict(strides=[2, 2], pads=[1, 0, 0, 1])]


@pytest.mark.parametrize("attrs", ONNX_NODES, ids=[str(a) for a in ONNX_NODES])
def test_from_onnx(attrs):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    groups = attrs.get("group", 1)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype("float32")
    b = rng.standard_normal(3 * groups).astype("float32")
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = rng.standard_normal((2, 4, 5, 6)).astype("float32")
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for source in (model, {"w": w, "b": b}):
        layer = tt.from_onnx(node, source)
        with torch.no_grad():
            np.testing.assert_allclose(layer(torch.from_numpy(x)).numpy(), want, rtol=1e-4, atol=1e-4)


def test_from_onnx_bad_input():
    from onnx import helper
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    with pytest.raises(ConfigError, match="no initializer for w"):
        tt.from_onnx(node, {})
    with pytest.raises(ConfigError, match="ConvTranspose node"):
        tt.from_onnx(helper.make_node("Conv", ["x", "w"], ["y"]), {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shaped = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[9, 9])
        with pytest.raises(ConfigError, match="output_shape"):
            tt.from_onnx(shaped, {"w": np.ones((2, 2, 3, 3), "float32")})
