"""ONNX ConvTranspose, run by onnxruntime, against tconv.

tconv follows onnxruntime (the runtime people deploy), not the ONNX text or
``onnx.reference``; ``test_onnx_reference_differs`` records where the Python
reference implementation disagrees, on configurations where tconv's claim is
checked against onnxruntime first.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from _conformance import compare, make_data, outcome, reference_full, window
from tconv.geometry import AxisGeometry, Geometry

OPSET = 17


def _model(onnx, x_shape, w_shape, attrs: dict):
    """A one-node model. With shapes declared (as exported models have them) onnxruntime runs ONNX
    shape inference, which checks the attributes too; ``None`` shapes skip that check."""
    from onnx import TensorProto, helper

    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape),
         helper.make_tensor_value_info("W", TensorProto.FLOAT, w_shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def run_ort(ort, onnx, x, w, attrs, declare_shapes=True):
    model = _model(onnx, x.shape if declare_shapes else None, w.shape if declare_shapes else None, attrs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": x.astype(np.float32), "W": w.astype(np.float32)})
    return y


@st.composite
def onnx_configs(draw):
    ndim = draw(st.integers(1, 3))
    small = ndim == 3
    inputs = [draw(st.integers(1, 4 if small else 6)) for _ in range(ndim)]
    kernel = [draw(st.integers(1, 4 if small else 7)) for _ in range(ndim)]
    strides = [draw(st.integers(1, 4)) for _ in range(ndim)]
    dilations = [draw(st.integers(1, 3)) for _ in range(ndim)]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    attrs = {"strides": strides, "dilations": dilations}
    mode = draw(st.sampled_from(["pads", "pads", "SAME_UPPER", "SAME_LOWER", "VALID", "output_shape"]))
    if mode == "pads":
        # negative pads too: the spec and onnxruntime's shape inference reject them
        attrs["pads"] = [draw(st.integers(-2, K)) for K in spans] + [draw(st.integers(-2, K)) for K in spans]
    elif mode == "output_shape":
        attrs["output_shape"] = [
            max(1, (i - 1) * s + K + draw(st.integers(-K, s))) for i, s, K in zip(inputs, strides, spans)
        ]
        if draw(st.booleans()):
            attrs["auto_pad"] = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "NOTSET"]))
    else:
        attrs["auto_pad"] = mode
    if draw(st.booleans()):
        # in range: < stride; out of range: up to max(stride, dilation)
        attrs["output_padding"] = [draw(st.integers(0, max(s, d))) for s, d in zip(strides, dilations)]
    group = draw(st.sampled_from([1, 2]))
    if group != 1:
        attrs["group"] = group
    if draw(st.booleans()):
        attrs["kernel_shape"] = list(kernel)
    return tuple(inputs), tuple(kernel), attrs, group


@settings(max_examples=examples(60))
@given(onnx_configs(), st.integers(0, 2**16))
def test_onnxruntime_conv_transpose(torch, ort, config, seed):
    import onnx

    inputs, kernel, attrs, group = config
    x, w = make_data(seed, inputs, kernel, cin=2, cout=2, groups=group)
    compare(
        lambda: tconv.geometry(inputs, kernel, "onnx", **attrs),
        lambda: run_ort(ort, onnx, x, w, attrs),
        lambda: reference_full(torch, x, w, attrs["strides"], attrs["dilations"], group),
        f"onnxruntime ConvTranspose {inputs} k={kernel} {attrs}",
    )


def test_onnx_pads_with_auto_pad_is_rejected(ort):
    """The spec forbids pads together with auto_pad other than NOTSET; onnxruntime enforces it."""
    import onnx

    x, w = make_data(0, (4,), (3,))
    attrs = {"strides": [2], "auto_pad": "SAME_UPPER", "pads": [1, 1]}
    status, _ = outcome(lambda: run_ort(ort, onnx, x, w, attrs))
    assert status == "error"
    with pytest.raises(tconv.ConfigError, match="simultaneously"):
        tconv.geometry((4,), 3, "onnx", **attrs)


# onnxruntime 1.31.1 against onnx.reference (onnx 1.23.2), observed while writing these tests
# (see docs/frameworks.md). tconv follows onnxruntime; the test checks tconv against onnxruntime
# and records, as an assertion, what the reference implementation does.
REFERENCE_TABLE = [
    # input, kernel, attrs, what onnx.reference does compared with onnxruntime
    ((3,), (1,), {"strides": [3], "auto_pad": "SAME_UPPER"}, "differs"),  # K < s: ort 7 (clamped), ref i*s = 9
    ((4,), (3,), {"strides": [2], "auto_pad": "SAME_UPPER"}, "same"),
    ((4,), (4,), {"strides": [2], "auto_pad": "SAME_LOWER"}, "same"),
    ((5,), (3,), {"strides": [2], "output_padding": [1], "auto_pad": "SAME_UPPER"}, "same"),
    ((4,), (3,), {"strides": [2], "output_shape": [10]}, "same"),  # O > full: zeros at the end
    ((4,), (3,), {"strides": [2], "output_shape": [8]}, "error"),  # O < full with NOTSET: ref fails in col2im
    ((5,), (3,), {"strides": [2], "output_shape": [10], "auto_pad": "SAME_LOWER"}, "same"),
    ((4,), (2,), {"strides": [1], "dilations": [3], "output_padding": [2]}, "both fail"),  # op >= stride
]


@pytest.mark.parametrize("row", range(len(REFERENCE_TABLE)))
def test_onnx_reference_differs(torch, ort, row):
    import onnx
    from onnx.reference import ReferenceEvaluator

    inputs, kernel, attrs, expected = REFERENCE_TABLE[row]
    x, w = make_data(row, inputs, kernel, cin=1, cout=1)
    full = lambda: reference_full(torch, x, w, attrs["strides"], attrs.get("dilations", [1]))  # noqa: E731
    compare(lambda: tconv.geometry(inputs, kernel, "onnx", **attrs), lambda: run_ort(ort, onnx, x, w, attrs), full,
            f"onnxruntime {attrs}")
    ort_status, ort_value = outcome(lambda: run_ort(ort, onnx, x, w, attrs))
    ref_status, ref_value = outcome(
        lambda: ReferenceEvaluator(_model(onnx, x.shape, w.shape, attrs)).run(None, {"X": x.astype(np.float32), "W": w.astype(np.float32)})[0]
    )
    if expected == "both fail":
        assert ort_status == ref_status == "error"
    elif expected == "error":
        assert ort_status == "ok" and ref_status == "error", (ort_status, ref_value)
    else:
        assert ort_status == ref_status == "ok"
        agree = ort_value.shape == ref_value.shape and np.array_equal(ort_value, ref_value)
        assert agree == (expected == "same"), (ort_value, ref_value)


NEGATIVE_PADS_TABLE = [
    ((5,), 3, {"strides": [2], "dilations": [1], "pads": [-1, 0]}),
    ((5,), 3, {"strides": [2], "dilations": [1], "pads": [0, -2]}),
    ((4,), 2, {"strides": [3], "dilations": [1], "pads": [-2, -1], "output_padding": [2]}),
    ((4,), 3, {"strides": [1], "dilations": [2], "pads": [-3, 1]}),
    ((3, 2), (3, 2), {"strides": [2, 1], "dilations": [1, 1], "pads": [-2, 0, -2, -1]}),
]


@pytest.mark.parametrize("row", range(len(NEGATIVE_PADS_TABLE)))
def test_negative_pads_rejected_unless_shapes_are_unknown(torch, ort, row):
    """Negative pads: the ONNX spec forbids them and onnxruntime rejects them when the model declares
    its input shapes (as exported models do); tconv rejects them too. With undeclared shapes the
    check is skipped and onnxruntime's kernel adds zeros there: documented, not followed."""
    import onnx

    inputs, kernel, attrs = NEGATIVE_PADS_TABLE[row]
    x, w = make_data(row, inputs, kernel if isinstance(kernel, tuple) else (kernel,))
    with pytest.raises(Exception, match="pads must not contain negative values"):
        run_ort(ort, onnx, x, w, attrs)
    with pytest.raises(tconv.ConfigError, match="negative"):
        tconv.geometry(inputs, kernel, "onnx", **attrs)
    # What the kernel alone does: the window reaches past the full output, zeros there.
    y = run_ort(ort, onnx, x, w, attrs, declare_shapes=False)
    full = reference_full(torch, x, w, attrs["strides"], attrs["dilations"])
    ndim = len(inputs)
    kernels = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
    ops = attrs.get("output_padding", [0] * ndim)
    kept = Geometry(tuple(
        AxisGeometry(i, k, s, d, attrs["pads"][n], attrs["pads"][n + ndim] - ops[n])
        for n, (i, k, s, d) in enumerate(zip(inputs, kernels, attrs["strides"], attrs["dilations"]))
    ))
    expected = window(full, kept)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-4)
