"""The derivation: its steps as data agree with the geometry, and the text names the crop."""
from __future__ import annotations

import tconv


def test_steps_as_data_match_geometry():
    e = tconv.explain((12, 16), 3, framework="keras", strides=2, padding="same")
    data = e.to_dict()
    assert [a["output"] for a in data["axes"]] == [24, 32]
    assert [s["key"] for s in data["steps"]][:5] == ["dilated_kernel", "zero_insertion", "full", "crop", "formula"]
    crop = e.step("crop")
    assert [d["crop_begin"] for d in crop.data] == list(e.geometry.crop_begin)
    assert [d["kept"] for d in crop.data] == [ax.kept for ax in e.geometry]


def test_text_says_where_keras_and_pytorch_crop():
    keras = str(tconv.explain(8, 3, framework="keras", strides=2, padding="same"))
    torch = str(tconv.explain(8, 3, framework="pytorch", stride=2, padding=1, output_padding=1))
    assert "crop 1 at the end (index 16..16): keep full[0:16]" in keras
    assert "crop 1 at the start (index 0..0): keep full[1:17]" in torch
    assert "(8-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 16" in torch


def test_zero_extension_and_quirks_are_explained():
    e = tconv.explain(3, 1, framework="keras", strides=3, padding="valid")
    assert "add 2 zeros at the end" in str(e)
    quirk = tconv.explain(8, 4, framework="keras", strides=2, padding="same", output_padding=0)
    assert quirk.step("warning").lines and "TensorFlow backend" in str(quirk)


def test_html_falls_back_to_text():
    html = tconv.explain(4, 3, framework="onnx", strides=[2], auto_pad="SAME_UPPER")._repr_html_()
    assert "ONNX" in html


# --------------------------------------------------------------------------- the phases, the forward conv, upsampling
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from _budget import examples  # noqa: E402
from tconv.equivalence import box_filtered_kernel, forward_equivalent, resize_conv_window  # noqa: E402


def _t(torch, a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)[None, None]


@settings(max_examples=examples(30), deadline=None)
@given(i=st.integers(1, 5), k=st.integers(1, 4), s=st.integers(1, 3), d=st.integers(1, 2),
       p=st.integers(0, 3), op=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_phase_steps_and_forward_conv_match_torch(torch, i, k, s, d, p, op, seed):
    try:
        e = tconv.explain(i, k, "pytorch", stride=s, dilation=d, padding=p, output_padding=op)
    except tconv.ConfigError:
        return
    if e.geometry.empty:
        return
    rng = np.random.default_rng(seed)
    x, w = rng.integers(-3, 4, size=i), rng.integers(-3, 4, size=k)
    F = torch.nn.functional
    expected = F.conv_transpose1d(_t(torch, x), _t(torch, w), stride=s, dilation=d, padding=p, output_padding=op)[0, 0].numpy()
    # the phase step's data is the whole calculation: out[s*q + r] = sum of w[t] * x[q + offset]
    out = np.zeros(e.output_shape[0])
    for phase in e.step("phases").data[0]["phases"]:
        for q in range(phase["count"]):
            out[q * s + phase["r"]] = sum(w[t] * x[q + off] for t, off in phase["taps"] if 0 <= q + off < i)
    np.testing.assert_array_equal(out, expected)
    # the forward convolution named is the one whose input gradient this layer is (checked by autograd)
    fwd = e.step("forward").data[0]
    y = torch.zeros((1, 1) + tuple(fwd["input"]), dtype=torch.float64, requires_grad=True)
    if fwd["args"] is None:
        if not fwd["pads"]:  # output_padding >= stride (allowed by a dilation): the window passes the full output
            assert e.geometry[0].crop_end + s - 1 < 0 and "negative" in fwd["reason"]
            return
        # no single F.conv1d pads (before, after) unequally: pad first, as the reason says
        assert "pad the input that way first" in fwd["reason"]
        conv = F.conv1d(F.pad(y, tuple(fwd["pads"][0])), _t(torch, w), stride=s, dilation=d)
    else:
        conv = F.conv1d(y, _t(torch, w), **fwd["args"])
    assert tuple(conv.shape[2:]) == (i,)
    (grad,) = torch.autograd.grad(conv, y, grad_outputs=_t(torch, x))
    np.testing.assert_array_equal(grad[0, 0].numpy(), expected)


@pytest.mark.parametrize("framework, args, expected", [
    ("keras", dict(strides=2, padding="same"), {"strides": 2, "padding": "same"}),
    ("tensorflow", dict(strides=2, padding="SAME", output_shape=(16, 16)), {"strides": 2, "padding": "SAME"}),
    ("onnx", dict(strides=[2, 2], auto_pad="SAME_UPPER"), {"strides": [2, 2], "pads": [0, 0, 1, 1]}),
    ("jax", dict(strides=(2, 2), padding="SAME"), {"window_strides": [2, 2], "padding": "SAME"}),
    ("pytorch", dict(stride=2, padding=1, output_padding=1), {"stride": 2, "padding": 1}),
])
def test_forward_conv_in_the_frameworks_own_terms(framework, args, expected):
    e = tconv.explain((8, 8), 3, framework, **args)
    assert e.step("forward").data[0]["args"] == expected
    assert e.step("forward").data[0]["input"] == list(e.output_shape)


def test_negative_crop_has_no_forward_conv():
    # Keras 'valid' adds 2 zeros at the end, which a stride-3 forward conv reads past (its 'same' pads nothing)
    assert forward_equivalent(tconv.geometry(3, 1, "keras", strides=3, padding="valid")).args == {"strides": 3, "padding": "same"}
    fwd = forward_equivalent(tconv.geometry(1, 1, "pytorch", dilation=2, output_padding=1))
    assert fwd.args is None and "negative" in fwd.reason


@pytest.mark.parametrize("i, k1, s, p", [((3, 4), 3, 2, 1), ((4, 4), 2, 2, 0), ((3, 3), 3, 3, 2), ((2, 5), 1, 2, 0)])
def test_resize_convolution_is_a_box_filtered_transposed_conv(torch, i, k1, s, p):
    """Seed 003: nearest upsampling + conv (real F.interpolate + F.conv2d) vs F.conv_transpose2d."""
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x, w1 = rng.integers(-3, 4, size=i), rng.integers(-3, 4, size=(k1, k1))
    resized = F.conv2d(F.interpolate(_t(torch, x), scale_factor=s, mode="nearest"), _t(torch, w1), padding=p)[0, 0]
    v = box_filtered_kernel(w1, s)
    assert v.shape == (k1 + s - 1,) * 2
    full = F.conv_transpose2d(_t(torch, x), _t(torch, v), stride=s)[0, 0]
    start = k1 - 1 - p
    np.testing.assert_array_equal(resized.numpy(), full[start:full.shape[0] - start, start:full.shape[1] - start].numpy())
    # the explain step names this very conv for the transposed layer with kernel k1+s-1 and that window
    layer = tconv.explain(i, k1 + s - 1, "pytorch", stride=s, padding=start)
    match = resize_conv_window(layer.geometry[0])
    assert match == {"k": k1, "p": p, "same_window": True}
    assert f"keeping full[{start}:" in str(layer) and "this window" in str(layer)
    # zero-insertion upsampling + a stride-1 conv is the transposed conv itself (any kernel)
    zi = torch.zeros((1, 1, (i[0] - 1) * s + 1, (i[1] - 1) * s + 1), dtype=torch.float64)
    zi[0, 0, ::s, ::s] = _t(torch, x)[0, 0]
    w = rng.integers(-3, 4, size=(k1 + 1, k1 + 1))
    K = k1 + 1
    direct = F.conv_transpose2d(_t(torch, x), _t(torch, w), stride=s)[0, 0]
    slid = F.conv2d(F.pad(zi, (K - 1,) * 4), _t(torch, np.flip(w).copy()))[0, 0]
    np.testing.assert_array_equal(direct.numpy(), slid.numpy())
