"""tconv.torch's C loops (tconv/torch/_native.py, _kernels.c) against torch and against their definition.

Each strategy that can use them runs twice, with the C loops and with torch's own ops in their place,
and both must equal the real torch.nn.functional.conv_transpose*d. The landing and the transpose
must move every bit. The gather is checked against a direct sum over its definition, and without a
compiler (or switched off) everything must still run.
"""
from __future__ import annotations

import itertools
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _budget import examples
from _no_c_loops import ENVIRONMENTS, run_without_c_loops

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import tconv.torch as tt  # noqa: E402
from tconv.geometry import AxisGeometry  # noqa: E402
from tconv.torch import _native, strategies  # noqa: E402
from tconv.torch.strategies import Plan, _common, eligible, phase  # noqa: E402

from test_torch_dropin import _pair, layers  # noqa: E402

_BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
         torch.float64: torch.int64}
#: the strategies whose inference goes through the C loops where they are built
USERS = ["gemm_gather", "gemm_gather_t", "gemm_shuffle", "phase", "phase_channels_last", "channels_last", "depthwise"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tt.clear_cache()
    yield
    torch.set_num_threads(threads)


def _built() -> None:
    if _native.library() is None:
        pytest.skip(f"tconv's C kernels are not built here: {_native.native_status()}")


@pytest.fixture(params=["c", "torch"])
def kernels(request, monkeypatch):
    """Once with the C loops, once with torch's ops in their place (as on a machine with no compiler)."""
    if request.param == "c":
        _built()
    else:
        monkeypatch.setattr(_native, "library", lambda: None)
    return request.param


@pytest.fixture
def poisoned_empty(monkeypatch):
    """Fresh buffers full of NaN: a loop that leaves an output element unwritten fails."""
    new_empty, empty = torch.Tensor.new_empty, torch.empty

    def poison(buffer):
        return buffer.fill_(float("nan")) if buffer.is_floating_point() else buffer
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda self, *a, **k: poison(new_empty(self, *a, **k)))
    monkeypatch.setattr(strategies.torch, "empty", lambda *a, **k: poison(empty(*a, **k)))


def test_the_kernels_build_where_there_is_a_compiler():
    if os.environ.get("TCONV_NATIVE") == "0":
        pytest.skip("switched off by TCONV_NATIVE=0")
    if not any(shutil.which(name) for name in (os.environ.get("CC"), "cc", "gcc", "clang") if name):
        pytest.skip("no C compiler on this machine")
    assert _native.library() is not None, _native.native_status()
    assert _native.native_status().startswith("built with")


@pytest.mark.parametrize("strategy", USERS)
@settings(max_examples=examples(12), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=layers(), single=st.booleans())
def test_inference_equals_torch_with_and_without_the_c_loops(strategy, cfg, single, kernels, poisoned_empty):
    ref, ours, x = _pair(cfg, dtype=torch.float32 if single else torch.float64)
    plan = Plan(tt.layer_geometry(cfg["spatial"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                  cfg["output_padding"], cfg["dilation"], cfg["groups"]), cfg["cin"], cfg["cout"])
    if strategy not in eligible(plan):
        assert kernels == "torch" or strategy in ("gemm_shuffle", "depthwise") or plan.in_channels == plan.groups
        return
    with torch.no_grad():
        expected = ref(x)
        with tt.use_strategy(strategy):
            got = ours(x)  # the module's Parameters: strategies see them detached (see _untracked)
    tol = 1e-4 if single else 1e-10
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", list(_BITS))
@pytest.mark.parametrize("spatial, kernel, stride, padding, output_padding, groups", [
    ((5, 6), (2, 2), (2, 2), (1, 0), (1, 0), 1),  # crops on one axis, an extra element on the other
    ((4, 3), (2, 2), (3, 3), (0, 0), (2, 1), 2),  # output_padding past every phase: the bias fills it
    ((3, 2, 4), (2, 2, 2), (2, 2, 2), (0, 1, 0), (1, 0, 1), 1),
    ((7,), (3,), (3,), (1,), (2,), 2),
    ((9,), (2,), (2,), (0,), (1,), 1),
])
def test_c_landing_moves_every_bit_like_torch(dtype, spatial, kernel, stride, padding, output_padding, groups,
                                              monkeypatch):
    _built()
    nd = len(spatial)
    plan = Plan(tt.layer_geometry(spatial, kernel, stride, padding, output_padding, (1,) * nd, groups),
                2 * groups, 3 * groups)
    torch.manual_seed(3)
    # the phases as gemm_shuffle leaves them: (N, G, C/g, *s, *I) viewed as (N, G, *s, C/g, *I)
    stored = torch.randn((2, groups, 3) + stride + spatial, dtype=torch.float64).to(dtype)
    flat = stored.view(-1).view(_BITS[dtype])
    info = torch.finfo(dtype)
    stored.view(-1)[:4] = torch.tensor([-0.0, info.tiny / 4, float("inf"), -float("inf")], dtype=dtype)
    flat[4] = torch.tensor(float("nan"), dtype=dtype).view(_BITS[dtype]) + 3  # a NaN with a payload
    y = stored.permute([0, 1] + list(range(3, 3 + nd)) + [2] + list(range(3 + nd, 3 + 2 * nd)))
    bias = torch.randn(3 * groups, dtype=torch.float64).to(dtype)
    got = phase.place_phases(y, plan, bias)
    with monkeypatch.context() as patch:
        patch.setattr(_native, "library", lambda: None)
        expected = phase.place_phases(y, plan, bias)
    assert got.shape == expected.shape == (2, 3 * groups) + plan.geometry.output_shape
    assert torch.equal(got.contiguous().view(_BITS[dtype]), expected.contiguous().view(_BITS[dtype]))


def _reference_sum(src: np.ndarray, planes, axes, fill, add_fill, out_shape):
    """The gather's definition, term by term: output o of axis a takes tap t of input i where
    ``i*stride + t*dilation == o + crop_begin``."""
    out = np.zeros((len(planes),) + out_shape)
    for p, plane in enumerate(planes):
        for o in itertools.product(*(range(n) for n in out_shape)):
            terms = []
            for choice in itertools.product(*([(t, i) for t in range(ax["taps"]) for i in range(ax["input"])
                                               if i * ax["stride"] + t * ax["dilation"] == o_a + ax["crop"]]
                                              for ax, o_a in zip(axes, o))):
                terms.append(src[plane + sum(t * ax["tap_unit"] + i * ax["pos_unit"]
                                             for (t, i), ax in zip(choice, axes))])
            base = fill[p] if fill is not None and (add_fill or not terms) else 0.0
            out[(p,) + o] = base + sum(terms)
    return out


def _check_gather(data, axes: list[dict]) -> None:
    """Gather random planes through the tables of ``axes`` and compare with :func:`_reference_sum`.

    The planes are (image, channel) pairs and the fill has one value per channel, read with the
    channel count as its period, as the strategies pass a bias.
    """
    nd = len(axes)
    # the source as (plane, *taps, *inputs), C order
    shape = [ax["taps"] for ax in axes] + [ax["input"] for ax in axes]
    units = np.cumprod([1] + shape[::-1])[::-1][1:]
    for a, ax in enumerate(axes):
        ax["tap_unit"], ax["pos_unit"] = int(units[a]), int(units[nd + a])
    per_plane = int(np.prod(shape))
    images, channels = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    plane_count = images * channels
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    src = torch.randn(plane_count * per_plane, dtype=dtype)
    planes = torch.arange(plane_count, dtype=torch.int64) * per_plane
    fill = data.draw(st.sampled_from([None, "bias"]))
    fill = None if fill is None else torch.randn(channels, dtype=dtype)
    add_fill = data.draw(st.booleans())
    tables = [_native.AxisTable.of(_axis(ax), ax["tap_unit"], ax["pos_unit"]) for ax in axes]
    out_shape = tuple(ax["output"] for ax in axes)
    out = torch.full((plane_count,) + out_shape, float("nan"), dtype=dtype)
    _native.Gather(dtype, planes, tables, add_fill, channels)(src, out, fill)
    expected = _reference_sum(src.double().numpy(), planes.tolist(), axes,
                              None if fill is None else fill.double().numpy().tolist() * images, add_fill, out_shape)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=tol, atol=tol)


def _axis(ax: dict):
    """The axis of a transposed convolution that keeps ``output`` elements from full position ``crop`` on."""
    full = (ax["input"] - 1) * ax["stride"] + ax["dilation"] * (ax["taps"] - 1) + 1
    return AxisGeometry(ax["input"], ax["taps"], ax["stride"], ax["dilation"], ax["crop"],
                        full - ax["output"] - ax["crop"])


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_gather_sums_exactly_the_terms_of_its_definition(data):
    _built()
    nd = data.draw(st.integers(1, 3))
    axes = []
    for _ in range(nd):
        axes.append(dict(output=data.draw(st.integers(1, 9 if nd < 3 else 5)), crop=data.draw(st.integers(-3, 3)),
                         taps=data.draw(st.integers(1, 4)), dilation=data.draw(st.integers(1, 3)),
                         stride=data.draw(st.integers(1, 4)), input=data.draw(st.integers(1, 5))))
    _check_gather(data, axes)


@pytest.mark.parametrize("leading_axis", [False, True])
@settings(max_examples=examples(15), deadline=None)
@given(data=st.data())
def test_gather_sums_long_stride_2_rows_exactly(leading_axis, data):
    # rows of 32 to 140 outputs at stride 2: the interior of both phases takes the vector path (full
    # vectors, an overlapping last vector or a short tail), the edges the loops per term
    _built()
    axes = []
    if leading_axis:  # a short leading axis: 1 or 2 terms per row
        axes.append(dict(output=data.draw(st.integers(1, 4)), crop=data.draw(st.integers(0, 2)),
                         taps=data.draw(st.integers(2, 4)), dilation=1, stride=2, input=data.draw(st.integers(1, 3))))
    output = data.draw(st.integers(32, 140))
    axes.append(dict(output=output, crop=data.draw(st.integers(-1, 3)), taps=data.draw(st.integers(2, 4)),
                     dilation=1, stride=2, input=output // 2 + data.draw(st.integers(-2, 2))))
    _check_gather(data, axes)


@pytest.mark.parametrize("strategy", ["depthwise", "gemm_gather"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spatial, kernel, padding, output_padding, dilation", [
    ((100,), (4,), (1,), (0,), (1,)),  # two terms per output, 50 per phase: full vectors and a tail
    ((37,), (5,), (2,), (1,), (1,)),  # phases of unequal term counts, an odd length
    ((64,), (3,), (0,), (1,), (1,)),
    ((3, 40), (3, 4), (1, 1), (1, 0), (1, 1)),  # leading terms: one or two per row
    ((2, 70), (4, 3), (0, 1), (0, 1), (1, 1)),
    ((50,), (3,), (1,), (0,), (2,)),  # dilated: only one phase has terms, no pairs
])
def test_long_rows_equal_torch(strategy, dtype, spatial, kernel, padding, output_padding, dilation):
    # rows long enough for the vector path of the stride-2 pairs (see _kernels.c)
    _built()
    nd, channels = len(spatial), 6
    groups = channels if strategy == "depthwise" else 1
    torch.manual_seed(5)
    x = torch.randn((2, channels) + spatial, dtype=dtype)
    w = torch.randn((channels, 2 if strategy == "depthwise" else 3) + kernel, dtype=dtype)
    b = torch.randn(w.shape[1] * groups, dtype=dtype)
    stride = (2,) * nd
    plan = Plan(tt.layer_geometry(spatial, kernel, stride, padding, output_padding, dilation, groups),
                channels, w.shape[1] * groups)
    with torch.no_grad():
        got = strategies.run(strategy, x, w, b, plan)
    expected = getattr(F, f"conv_transpose{nd}d")(x, w, b, stride, padding, output_padding, groups, dilation)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spatial, kernel, stride, padding, output_padding, dilation, channels, multiplier, bias", [
    ((16, 16), 3, 2, 1, 1, 1, 64, 1, True),  # a decoder's depthwise up-step: four whole vectors of channels
    ((9, 7), 4, 2, 1, 0, 1, 6, 2, True),  # a channel multiplier: 12 channels, a vector and a tail
    ((5, 4, 6), 3, 2, 1, 1, 1, 8, 1, False),
    ((40,), 5, 2, 2, 1, 1, 17, 1, True),
    ((6, 6), 2, 3, 0, 2, 1, 5, 1, True),  # s > k and output_padding: outputs no tap reaches get the bias
    ((7, 7), 3, 2, 2, 0, 2, 3, 3, True),  # dilated
])
def test_channels_last_depthwise_equals_torch(kernels, dtype, spatial, kernel, stride, padding, output_padding,
                                              dilation, channels, multiplier, bias):
    """Channels-last input to ``depthwise``: the C loop the NumPy engine uses (channels-last output), or
    torch's ops without it."""
    nd = len(spatial)
    torch.manual_seed(6)
    x = torch.randn((2, channels) + spatial, dtype=dtype)
    x_last = x.movedim(1, -1).contiguous().movedim(-1, 1)  # channels-last memory in 1-D, 2-D and 3-D
    w = torch.randn((channels, multiplier) + (kernel,) * nd, dtype=dtype)
    b = torch.randn(channels * multiplier, dtype=dtype) if bias else None
    args = ((stride,) * nd, (padding,) * nd, (output_padding,) * nd, (dilation,) * nd)
    plan = Plan(tt.layer_geometry(spatial, (kernel,) * nd, *args[:3], args[3], channels), channels,
                channels * multiplier)
    with torch.no_grad():
        got = strategies.run("depthwise", x_last, w, b, plan)
    expected = getattr(F, f"conv_transpose{nd}d")(x, w, b, *args[:3], channels, args[3])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    if kernels == "c":  # the channels-last loop ran: its output is channels-last memory, as torch's would be
        assert not got.is_contiguous() and got.movedim(1, -1).is_contiguous()


def test_gather_gives_the_same_bits_on_one_thread_and_on_several():
    _built()
    plan = Plan(tt.layer_geometry((24, 20), (4, 3), (2, 2), (1, 1), (1, 0), (1, 2), 1), 8, 6)
    torch.manual_seed(1)
    x, w, b = torch.randn(3, 8, 24, 20), torch.randn(8, 6, 4, 3), torch.randn(6)
    with torch.no_grad():
        one = strategies.run("gemm_gather", x, w, b, plan)
        assert one.numel() >= _native.PARALLEL_MIN_ELEMENTS
        torch.set_num_threads(2)
        several = strategies.run("gemm_gather", x, w, b, plan)
    assert torch.equal(one, several)
    torch.testing.assert_close(one, F.conv_transpose2d(x, w, b, 2, 1, (1, 0), 1, (1, 2)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 8, 200, 180), (2, 33, 9, 7), (1, 5, 3, 4, 6), (3, 40, 1, 1)])
def test_c_transpose_to_channels_first_moves_every_bit(dtype, shape):
    _built()
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    torch.manual_seed(5)
    y = torch.randn(shape, dtype=torch.float64).to(dtype).contiguous(memory_format=fmt)
    memory = y.movedim(1, -1).reshape(-1)  # a view: y's elements in memory order
    memory[7] = torch.finfo(dtype).tiny / 4
    memory[8] = -0.0
    memory[11] = float("nan")
    memory[12] = float("-inf")
    got = _common.channels_first(y)
    assert got.is_contiguous() and got.shape == y.shape
    assert torch.equal(got.view(_BITS[dtype]), y.contiguous().view(_BITS[dtype]))


def test_autograd_and_compile_never_take_the_c_loops(monkeypatch):
    # the loops write through raw pointers: autograd must see torch ops instead (gemm_gather falls back to col2im)
    _built()
    calls = []
    for owner, loop in ((_native.Gather, "__call__"), (_native, "depthwise")):
        monkeypatch.setattr(owner, loop, lambda *a, _loop=getattr(owner, loop), **k: calls.append(1) or _loop(*a, **k))
    plan = Plan(tt.layer_geometry((5, 4), (3, 2), (2, 2), (1, 0), (1, 1), (1, 1), 1), 3, 2)
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    for strategy in ("gemm_gather", "gemm_gather_t", "phase"):
        assert torch.autograd.gradcheck(lambda x, w, b: strategies.run(strategy, x, w, b, plan), (x, w, b))
    depthwise_plan = Plan(tt.layer_geometry((5, 4), (3, 2), (2, 2), (1, 0), (1, 1), (1, 1), 3), 3, 3)
    assert torch.autograd.gradcheck(lambda x, w, b: strategies.run("depthwise", x, w, b, depthwise_plan),
                                    (x, torch.randn(3, 1, 3, 2, dtype=torch.float64, requires_grad=True),
                                     torch.randn(3, dtype=torch.float64, requires_grad=True)))
    assert not calls
    with torch.no_grad():
        strategies.run("gemm_gather", x, w, b, plan)
    assert calls


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_the_c_kernels_every_strategy_still_runs(env, tmp_path):
    code = """
import torch, torch.nn.functional as F
import tconv.torch as tt
from tconv.torch import _native
from tconv.torch.strategies import Plan, eligible, run
print(_native.native_status())
plan = Plan(tt.layer_geometry((6, 5), (3, 3), (2, 2), (1, 1), (1, 0), (1, 1), 1), 4, 3)
assert "gemm_gather" not in eligible(plan)
x, w, b = torch.randn(2, 4, 6, 5), torch.randn(4, 3, 3, 3), torch.randn(3)
expected = F.conv_transpose2d(x, w, b, 2, 1, (1, 0))
with torch.no_grad():
    for name in eligible(plan) + ["gemm_gather"]:
        torch.testing.assert_close(run(name, x, w, b, plan), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tt.conv_transpose2d(x, w, b, 2, 1, (1, 0)), expected, rtol=1e-4, atol=1e-4)
"""
    run_without_c_loops(code, env, tmp_path)
