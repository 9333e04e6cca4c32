"""tconv.torch modules in deployment: ONNX export (both exporters), TorchScript, torch.export and torch.fx.

Every check runs the real tool and compares its result with the eager module
(and, for ONNX, with onnxruntime's run of the exported file).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import tconv.torch as tt

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# (ndim, kernel, stride, padding, dilation): every padding mode, windows torch can and cannot express
LAYERS = [
    (2, 4, 2, 1, 1),
    (2, 3, 2, "same", 1),        # crop (0, 1): a Slice after the ConvTranspose
    (2, 4, 2, "same", 1),        # crop (1, 1): torch's padding=1
    (2, 3, 2, "same_lower", 1),  # crop (1, 0): padding=1, output_padding=1
    (2, 3, 2, "same_upper", 2),
    (2, 3, 2, "valid", 1),
    (2, 1, 3, "same", 1),        # a kernel shorter than the stride: zeros appended, with the bias
    (1, 5, 3, "same", 1),
    (1, 4, 2, 2, 1),
    (3, 3, 2, "same", 1),
    (3, 2, 2, 0, 1),
]


def _module(ndim, k, s, p, d, groups=1):
    torch.manual_seed(0)
    cls = (tt.ConvTranspose1d, tt.ConvTranspose2d, tt.ConvTranspose3d)[ndim - 1]
    return cls(4, 6, k, stride=s, padding=p, dilation=d, groups=groups).eval()


def _input(ndim, batch=2, size=5):
    torch.manual_seed(1)
    return torch.randn((batch, 4) + (size,) * ndim)


def _onnx_run(module, x, dynamo, extra=None):
    import io
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
            program.save(buf)
        else:
            torch.onnx.export(module, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}})
    model = onnx.load_from_string(buf.getvalue())
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: t.numpy()})[0] for t in [x] + list(extra or [])]
    return model, outs


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("layer", LAYERS, ids=[str(x) for x in LAYERS])
def test_onnx_export_matches_onnxruntime(layer, dynamo):
    if dynamo:
        pytest.importorskip("onnxscript")
    m = _module(*layer)
    x = _input(layer[0])
    with torch.no_grad():
        want = m(x).numpy()
    model, (got,) = _onnx_run(m, x, dynamo)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    ops = {n.op_type for n in model.graph.node}
    assert "ConvTranspose" in ops
    # standard ops only: the convolution, and a crop or pad around it where torch's padding cannot say the window
    assert ops <= {"ConvTranspose", "Slice", "Pad", "Add", "Constant", "Reshape", "Shape", "Gather", "Sub",
                   "Unsqueeze", "Concat", "Identity", "Cast", "ConstantOfShape"}, ops


def test_onnx_torchscript_export_takes_other_batch_sizes():
    m = _module(2, 3, 2, "same", 1)
    x = _input(2)
    other = _input(2, batch=5)
    _, (_, got) = _onnx_run(m, x, False, extra=[other])
    with torch.no_grad():
        np.testing.assert_allclose(got, m(other).numpy(), rtol=1e-4, atol=1e-5)


class _WithOutputSize(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.up = tt.ConvTranspose2d(4, 3, 3, stride=2, padding=1)

    def forward(self, x):
        return self.up(x, output_size=[x.shape[-2] * 2, x.shape[-1] * 2])


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_export_output_size(dynamo):
    if dynamo:
        pytest.importorskip("onnxscript")
    m = _WithOutputSize().eval()
    x = _input(2)
    with torch.no_grad():
        want = m(x).numpy()
    assert want.shape[-2:] == (10, 10)
    _, (got,) = _onnx_run(m, x, dynamo)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _decoder():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        tt.ConvTranspose2d(8, 6, 4, stride=2, padding=1), torch.nn.ReLU(),
        tt.ConvTranspose2d(6, 4, 3, stride=2, padding="same"), torch.nn.ReLU(),
        tt.ConvTranspose2d(4, 2, 3, stride=1, padding="same_lower"),
    ).eval()


def test_jit_trace_and_script_give_the_same_values(tmp_path):
    m = _decoder()
    x, other = torch.randn(2, 8, 5, 5), torch.randn(3, 8, 7, 6)
    with torch.no_grad():
        want, want_other = m(x), m(other)
        traced = torch.jit.trace(m, x)
        torch.testing.assert_close(traced(x), want)
        scripted = torch.jit.script(m)
        torch.testing.assert_close(scripted(x), want)
        torch.testing.assert_close(scripted(other), want_other)  # scripting keeps the sizes symbolic
        scripted.save(str(tmp_path / "m.pt"))
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "m.pt"))(other), want_other)


@pytest.mark.parametrize("layer", LAYERS, ids=[str(x) for x in LAYERS])
def test_script_every_layer(layer):
    m = _module(*layer)
    for batch, size in ((2, 5), (1, 8)):
        x = _input(layer[0], batch, size)
        with torch.no_grad():
            torch.testing.assert_close(torch.jit.script(m)(x), m(x))
            torch.testing.assert_close(torch.jit.script(m)(x[0]), m(x[0]))  # unbatched


def test_script_output_size_and_its_errors():
    m = tt.ConvTranspose2d(4, 3, 3, stride=2, padding=1).eval()
    scripted = torch.jit.script(m)
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        for size in ([9, 9], [10, 10], [1, 3, 10, 9]):
            torch.testing.assert_close(scripted(x, size), m(x, output_size=size))
    same = torch.jit.script(tt.ConvTranspose2d(4, 3, 3, stride=2, padding="same"))
    with pytest.raises(Exception, match="output_size cannot be combined"):
        same(x, [10, 10])


def test_torch_export_and_fx_give_the_same_values_with_plain_ops():
    m = _decoder()
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        want = m(x)
    exported = torch.export.export(m, (x,))
    torch.testing.assert_close(exported.module()(x), want)
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert any("convolution" in t or "conv_transpose" in t for t in targets), targets
    graph = torch.fx.symbolic_trace(m)
    torch.testing.assert_close(graph(x), want)
    called = {getattr(n.target, "__name__", str(n.target)) for n in graph.graph.nodes if n.op != "placeholder"}
    assert "conv_transpose2d" in called and any("slice" in c for c in called), called
    assert not any("tconv" in str(n.target) for n in graph.graph.nodes)


def test_functional_traces_and_exports():
    class F(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.w = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
            self.b = torch.nn.Parameter(torch.randn(3))

        def forward(self, x):
            return tt.conv_transpose2d(x, self.w, self.b, 2, "same")

    m, x = F(), torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        want = m(x)
        torch.testing.assert_close(torch.jit.trace(m, x)(x), want)
        torch.testing.assert_close(torch.export.export(m, (x,)).module()(x), want)
    _, (got,) = _onnx_run(m, x, False)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_eager_calls_after_tracing_still_use_the_picker():
    m = _module(2, 3, 2, "same", 1)
    x = _input(2)
    with torch.no_grad():
        torch.jit.trace(m, x)
        m(x)
    assert m.__dict__.get("_tconv_last") is not None  # the eager path bound a strategy
