"""tconv.check on ONNX models: every ConvTranspose sized three ways, checked against onnxruntime run here.

Hand-built one-node models cover every auto_pad with and without output_padding, output_shape and pads;
the onnxruntime answer in the report must be what an InferenceSession of the whole model gives, tconv's
ONNX convention must agree with it wherever onnxruntime runs the node, and the report must flag the
nodes where the answers differ and the attribute combinations runtimes have handled differently.
Models exported from torch (TorchScript exporter) are checked at the exported size and at 350x525.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tconv
import _check_models as models


def _model(onnx, attrs, x=(1, 1, 4, 4), k=3):
    from onnx import TensorProto, helper

    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, k, k], np.zeros(k * k, np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _ort(ort, model, x):
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return "x".join(map(str, session.run(None, {"x": np.zeros(x, np.float32)})[0].shape[2:]))
    except Exception:
        return "refuses"


def _answers(note: str) -> dict:
    return {k: ("refuses" if v.startswith("refuses") else v) for k, v in (p.split(": ", 1) for p in note.split("; "))}


CASES = [
    {k: v for k, v in (("auto_pad", auto_pad), ("output_padding", op), ("output_shape", shape), ("pads", pads)) if v is not None}
    for auto_pad, op, shape, pads in itertools.product(
        [None, "SAME_UPPER", "SAME_LOWER", "VALID"], [None, [1, 1]], [None, [8, 8], [9, 9]], [None, [1, 1, 1, 1], [0, 1, 0, 1]])
    if not (pads is not None and auto_pad not in (None, "NOTSET"))
]


@pytest.mark.parametrize("attrs", CASES, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "plain")
def test_conv_transpose_three_ways_against_onnxruntime(ort, attrs):
    import onnx

    model = _model(onnx, {"strides": [2, 2], **attrs})
    report = tconv.check(model)
    (row,) = report.layers
    answers = _answers(row.note)
    assert set(answers) == {"tconv", "onnxruntime", "onnx shape inference"}
    assert answers["onnxruntime"] == _ort(ort, model, (1, 1, 4, 4))
    if answers["onnxruntime"] != "refuses":
        assert answers["tconv"] == answers["onnxruntime"], answers
    differ = len(set(answers.values())) > 1
    flagged = [p.message for p in report.problems]
    assert any("differs" in m for m in flagged) == differ, (answers, flagged)
    quirky = ("auto_pad" in attrs and attrs["auto_pad"].startswith("SAME") and "output_padding" in attrs) or \
        ("output_shape" in attrs and "pads" in attrs)
    assert any("runtimes have" in m for m in flagged) == quirky, flagged
    for problem in report.problems:
        for fix in problem.fixes:  # the explicit pads really give onnxruntime's size
            fixed = _model(onnx, {"strides": [2, 2], **fix.args})
            assert _ort(ort, fixed, (1, 1, 4, 4)) == answers["tconv"]


def test_the_issue_11927_case_is_flagged(ort):
    import onnx

    report = tconv.check(_model(onnx, {"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_padding": [1, 1]}))
    assert report.problems[0].message == (
        "ConvTranspose up on 1x1x4x4: the output size differs: tconv: 8x8; onnxruntime: 8x8; onnx shape inference: 9x9")
    assert report.problems[0].fixes[0].args["pads"] == [1, 1, 0, 0]


def test_exported_unet_at_its_size_and_at_350x525(torch, ort, tmp_path):
    model = models.MilesialUNet(pad=False).eval()
    path = tmp_path / "unet.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {2: "H", 3: "W"}})
    good = tconv.check(path, (1, 3, 352, 528))
    assert good.ok, good
    with torch.no_grad():
        assert good.output_shape == tuple(model(torch.zeros(1, 3, 352, 528)).shape)
    convT = [row for row in good.layers if row.op == "ConvTranspose"]
    assert len(convT) == 4 and all(len(set(_answers(row.note).values())) == 1 for row in convT)
    bad = tconv.check(str(path), (1, 3, 350, 525))
    assert bad.problems[0].message.startswith("Concat /up.0/Concat gets 1x32x43x65 vs 1x32x42x64: axis 2, 3 differ")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):
        session.run(None, {"x": np.zeros((1, 3, 350, 525), np.float32)})
    # the rule comes from the graph's arithmetic; onnxruntime agrees on every width 16..64
    assert bad.input_sizes == {"H": "multiples of 16 from 16", "W": "multiples of 16 from 16"}
    (pad, crop) = bad.problems[0].fixes
    assert pad.input_shape == (1, 3, 352, 528) and crop.input_shape == (1, 3, 336, 512)
    assert session.run(None, {"x": np.zeros(pad.input_shape, np.float32)})[0].shape == (1, 2, 352, 528)

    def runs(w):
        try:
            session.run(None, {"x": np.zeros((1, 3, 16, w), np.float32)})
            return True
        except Exception:
            return False
    assert [w for w in range(16, 65) if runs(w)] == [16, 32, 48, 64]


def test_exported_dcgan_needs_no_input_shape(torch, ort, tmp_path):
    path = tmp_path / "g.onnx"
    torch.onnx.export(models.DCGAN().eval(), torch.zeros(1, 8, 1, 1), str(path), dynamo=False)
    report = tconv.check(path)
    assert report.ok and report.output_shape == (1, 3, 64, 64)
    assert [row.op for row in report.layers] == ["ConvTranspose"] * 5


def test_bad_onnx_input(tmp_path, torch):
    (tmp_path / "x.onnx").write_text("not a model")
    with pytest.raises(tconv.ConfigError, match="is not an ONNX model"):
        tconv.check(tmp_path / "x.onnx")
    with pytest.raises(tconv.ConfigError, match="no such file"):
        tconv.check(tmp_path / "missing.onnx")
    path = tmp_path / "u.onnx"
    torch.onnx.export(models.MilesialUNet(pad=False).eval(), torch.zeros(1, 3, 32, 32), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {2: "H", 3: "W"}})
    with pytest.raises(tconv.ConfigError, match=r"has the shape 1x3xHxW: give the input shape \(--input\), e.g. 1x3x1x1"):
        tconv.check(path)
    with pytest.raises(tconv.ConfigError, match="has 3 entries; the graph's input 'x' has 4"):
        tconv.check(path, (3, 32, 32))


def test_an_unknown_op_is_a_problem_and_the_rest_is_reported(ort):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["a"], name="up", strides=[2, 2]),
             helper.make_node("Frobnicate", ["a"], ["y"], name="mystery", domain="my.ops")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 3, 3], np.zeros(9, np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 1)])
    model.ir_version = 8
    report = tconv.check(model)
    assert [row.name for row in report.layers] == ["up", "mystery"]
    assert report.problems[0].message.startswith("mystery: unknown op 'Frobnicate' (domain 'my.ops')")
    assert report.layers[0].output_shape == (1, 1, 9, 9)
