"""tconv.torch against the real torch.nn.ConvTranspose*d, keras and onnxruntime.

Every strategy is forced in turn and compared with PyTorch's own result; gradients are checked
with torch.autograd.gradcheck in float64; errors are compared side by side with torch's.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from _budget import examples

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import tconv  # noqa: E402
import tconv.torch as tt  # noqa: E402
from tconv.torch.strategies import STRATEGIES, Plan, eligible  # noqa: E402

ALL = list(STRATEGIES)
NN = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
OURS = {1: tt.ConvTranspose1d, 2: tt.ConvTranspose2d, 3: tt.ConvTranspose3d}
FUNCS = {1: tt.conv_transpose1d, 2: tt.conv_transpose2d, 3: tt.conv_transpose3d}
TORCH_FUNCS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@pytest.fixture(autouse=True)
def _fresh_picker():
    # One thread: these tensors are tiny, and on a shared 2-core machine two OpenMP threads
    # spin against other processes and make every call ~100x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tt.set_strategy("auto")
    tt.clear_cache()
    yield
    tt.set_strategy("auto")
    torch.set_num_threads(threads)


@pytest.fixture
def poisoned_empty(monkeypatch):
    """``Tensor.new_empty`` fills its buffers with NaN: a strategy that reads memory it never wrote fails.

    Fresh memory from the allocator is often zeros, which would hide such a read.
    """
    new_empty = torch.Tensor.new_empty

    def poisoned(self, *args, **kwargs):
        buffer = new_empty(self, *args, **kwargs)
        return buffer.fill_(float("nan")) if buffer.is_floating_point() or buffer.is_complex() else buffer
    monkeypatch.setattr(torch.Tensor, "new_empty", poisoned)


@st.composite
def layers(draw, max_ndim=3):
    nd = draw(st.integers(1, max_ndim))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    if draw(st.booleans()) and groups == 1:  # depthwise, with a channel multiplier
        groups = cin = draw(st.integers(1, 3))
        cout = cin * draw(st.integers(1, 2))
    size = 5 if nd < 3 else 3
    spatial = tuple(draw(st.integers(1, size)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    try:  # keep only layers PyTorch accepts (tconv's geometry follows its rules; checked in test_errors_*)
        empty = tconv.geometry(spatial, kernel, "pytorch", stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation).empty
    except tconv.ConfigError:
        empty = True
    if empty:  # empty outputs are tests/test_empty_outputs.py's
        padding = (0,) * nd
    return dict(nd=nd, groups=groups, cin=cin, cout=cout, spatial=spatial, kernel=kernel, stride=stride,
                dilation=dilation, padding=padding, output_padding=output_padding,
                batch=draw(st.integers(1, 2)), bias=draw(st.booleans()))


def _pair(cfg, dtype=torch.float64):
    torch.manual_seed(0)
    ref = NN[cfg["nd"]](cfg["cin"], cfg["cout"], cfg["kernel"], cfg["stride"], cfg["padding"],
                        cfg["output_padding"], cfg["groups"], cfg["bias"], cfg["dilation"], dtype=dtype)
    ours = OURS[cfg["nd"]](cfg["cin"], cfg["cout"], cfg["kernel"], cfg["stride"], cfg["padding"],
                           cfg["output_padding"], cfg["groups"], cfg["bias"], cfg["dilation"], dtype=dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn((cfg["batch"], cfg["cin"]) + cfg["spatial"], dtype=dtype)
    return ref, ours, x


@pytest.mark.parametrize("strategy", ALL)
@settings(max_examples=examples(12), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=layers())
def test_every_strategy_equals_torch(strategy, cfg, poisoned_empty):
    ref, ours, x = _pair(cfg)
    plan = Plan(tt.layer_geometry(cfg["spatial"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                  cfg["output_padding"], cfg["dilation"], cfg["groups"]), cfg["cin"], cfg["cout"])
    expected = ref(x)
    if strategy not in eligible(plan):
        with pytest.raises(tconv.ConfigError, match="eligible here"):
            with tt.use_strategy(strategy):
                ours(x)
        return
    with tt.use_strategy(strategy):
        got = ours(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("strategy", ["depthwise", "gemm_shuffle", "kn2row", "phase"])
@settings(max_examples=examples(12), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=layers())
def test_strategies_equal_torch_when_phases_land_in_pairs(strategy, cfg, poisoned_empty):
    # Inference on an output of any size takes _land's paired copies here (its size floor set to
    # 0); the test above runs with gradients on, where they are never used.
    from tconv.torch.strategies import _common

    ref, ours, x = _pair(cfg, dtype=torch.float32 if cfg["batch"] == 2 else torch.float64)
    plan = Plan(tt.layer_geometry(cfg["spatial"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                  cfg["output_padding"], cfg["dilation"], cfg["groups"]), cfg["cin"], cfg["cout"])
    if strategy not in eligible(plan):
        return
    with pytest.MonkeyPatch.context() as patch, torch.no_grad():
        patch.setattr(_common, "PAIR_MIN_BYTES", 0)
        expected = ref(x)
        with tt.use_strategy(strategy):
            got = ours(x)
    tol = 1e-10 if x.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("strategy", ["overlap_add", "phase_rows"])
@settings(max_examples=examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=layers(max_ndim=1), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_1d_strategies_inference_equals_torch(strategy, cfg, dtype, poisoned_empty):
    # Without gradients these sum their first two terms by an out-of-place add into a buffer (and
    # phase_rows interleaves stride-2 phases through a complex view); the tests above run with
    # gradients on and take their other path.
    ref, ours, x = _pair(cfg, dtype=dtype)
    plan = Plan(tt.layer_geometry(cfg["spatial"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                  cfg["output_padding"], cfg["dilation"], cfg["groups"]), cfg["cin"], cfg["cout"])
    if strategy not in eligible(plan):
        return
    with torch.no_grad():
        expected = ref(x)
        got = tt.conv_transpose1d(x, ours.weight, ours.bias, cfg["stride"], cfg["padding"], cfg["output_padding"],
                                  cfg["groups"], cfg["dilation"], strategy=strategy)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


# (batch, in, out, groups, length, kernel, stride, padding, output_padding): layers for the 1-D strategies
VOCODER_CASES = [
    (1, 16, 8, 1, 9, 16, 8, 4, 0),  # HiFi-GAN's k16 s8 p4: the kept window is cropped
    (2, 8, 6, 2, 7, 4, 2, 1, 0),  # grouped, batched k4 s2 p1
    (2, 6, 4, 1, 5, 4, 2, 0, 0),  # k = 2s, no padding: overlap_add's buffer is the output
    (1, 4, 4, 1, 1, 6, 2, 0, 0),  # one input position: a single tap block reaches each output
    (1, 6, 4, 1, 12, 4, 2, 1, 0),  # batch 1, one group: phase_rows' mm and paired interleave
    (1, 6, 4, 1, 12, 5, 2, 2, 0),  # an odd output length: no complex view, strided copies
    (1, 2, 2, 1, 2, 3, 1, 0, 0),  # stride 1: a tap reaches left of the two widest terms' overlap
    (1, 2, 2, 1, 2, 4, 2, 0, 1),  # output_padding: a position right of the widest terms, no tap there
]


@pytest.mark.parametrize("strategy", ["overlap_add", "phase_rows"])
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "grad"])
@pytest.mark.parametrize("case", VOCODER_CASES, ids=lambda c: f"L{c[4]}k{c[5]}s{c[6]}p{c[7]}op{c[8]}g{c[3]}")
def test_1d_strategies_equal_torch_on_vocoder_layers(case, grad, strategy, poisoned_empty):
    n, cin, cout, groups, length, k, s, p, op = case
    if strategy not in eligible(Plan(tt.layer_geometry((length,), (k,), s, p, op, 1, groups), cin, cout)):
        pytest.skip(f"{strategy} does not apply to this layer")
    torch.manual_seed(0)
    x = torch.randn(n, cin, length, dtype=torch.float64, requires_grad=grad)
    w = torch.randn(cin, cout // groups, k, dtype=torch.float64, requires_grad=grad)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        got = tt.conv_transpose1d(x, w, b, s, p, op, groups=groups, strategy=strategy)
        expected = F.conv_transpose1d(x, w, b, s, p, op, groups=groups)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    if grad:
        g = torch.randn_like(expected)
        ours = torch.autograd.grad(got, (x, w, b), g)
        theirs = torch.autograd.grad(expected, (x, w, b), g)
        for a, e in zip(ours, theirs):
            torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


@settings(max_examples=examples(25))
@given(cfg=layers().filter(lambda c: c["nd"] == 3))
@example(cfg={"nd": 3, "groups": 1, "cin": 1, "cout": 2, "spatial": (1, 1, 1), "kernel": (1, 1, 2), "stride": (1, 1, 1),
              "dilation": (1, 1, 1), "padding": (0, 0, 0), "output_padding": (0, 0, 0), "batch": 1, "bias": False})
@example(cfg={"nd": 3, "groups": 1, "cin": 2, "cout": 2, "spatial": (1, 1, 2), "kernel": (1, 1, 1), "stride": (1, 1, 1),
              "dilation": (1, 1, 1), "padding": (0, 0, 0), "output_padding": (0, 0, 0), "batch": 1, "bias": False})
def test_channels_last_3d_inference_runs_onednn_and_equals_torch(cfg):
    # In float32 inference the 3-D channels_last strategy calls oneDNN's op directly (torch's own
    # 3-D kernel does not); with gradients on (the test above) it never does.
    from tconv.torch.strategies import native

    ref, ours, x = _pair(cfg, dtype=torch.float32)
    plan = Plan(tt.layer_geometry(cfg["spatial"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                  cfg["output_padding"], cfg["dilation"], cfg["groups"]), cfg["cin"], cfg["cout"])
    op = native._pointwise_transpose()
    if op is None:
        pytest.skip("this torch has no oneDNN")
    calls = []
    with pytest.MonkeyPatch.context() as patch, torch.no_grad():
        patch.setattr(native, "_pointwise_transpose", lambda: lambda *a: calls.append(a) or op(*a))
        x_cl = x.contiguous(memory_format=torch.channels_last_3d)
        expected = ref(x)
        with tt.use_strategy("channels_last"):
            got = ours(x)
            got_cl = ours(x_cl)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_cl, expected, rtol=1e-4, atol=1e-4)
    # the caller's memory format (torch's own 3-D layer returns NCDHW for channels-last input wherever its
    # slow path runs, e.g. batch 1 with a small kernel); an input that is both layouts (one channel, or
    # every spatial size 1) counts as NCDHW
    assert got.is_contiguous()
    unambiguous = not x_cl.is_contiguous()
    assert got_cl.is_contiguous(memory_format=torch.channels_last_3d if unambiguous else torch.contiguous_format)
    onednn_layer = plan.torch_args is not None and all(o < s for o, s in zip(plan.torch_args[1], plan.stride))
    assert len(calls) == (2 if onednn_layer else 0)


_BITS = {torch.float16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape, stride, pairable", [
    ((2, 3, 7, 9), (2, 2), False),  # odd width: odd row offsets and unequal phases take single copies
    ((2, 3, 7, 10), (2, 2), True),
    ((1, 2, 8, 12), (2, 4), True),
    ((1, 1, 5, 6, 10), (2, 3, 2), True),
    ((2, 3, 14), (8,), True),  # phases 0-5 have 2 elements, 6 and 7 one: still four pairs
    ((2, 3, 11), (8,), False),  # odd rows: no complex view of the output
    ((2, 2, 9), (3,), False),  # odd stride: nothing pairs
])
def test_land_moves_every_bit(dtype, shape, stride, pairable, monkeypatch):
    import itertools

    from tconv.torch.strategies import _common

    monkeypatch.setattr(_common, "PAIR_MIN_BYTES", 0)
    pairs = []
    complex_ = torch.complex
    monkeypatch.setattr(_common.torch, "complex", lambda *a, out: pairs.append(out) or complex_(*a, out=out))
    torch.manual_seed(8)
    jobs = []
    for r in itertools.product(*(range(s) for s in stride)):
        dst = (slice(None), slice(None)) + tuple(slice(i, None, s) for i, s in zip(r, stride))
        size = tuple(len(range(i, n, s)) for i, n, s in zip(r, shape[2:], stride))
        value = torch.randn(shape[:2] + size, dtype=dtype)
        bits = value.view(-1).view(_BITS[dtype])
        info = torch.finfo(dtype)
        value.view(-1)[:4] = torch.tensor([-0.0, info.tiny / 4, float("inf"), -float("inf")], dtype=dtype)[:value.numel()]
        if value.numel() > 4:
            bits[4] = torch.tensor(float("nan"), dtype=dtype).view(_BITS[dtype]) + 5  # a NaN with a payload
        jobs.append((dst, value))
    expected = torch.zeros(shape, dtype=dtype)
    for dst, value in jobs:
        expected[dst] = value
    got = torch.full(shape, 3.0, dtype=dtype)
    _common.land(got, jobs)
    assert torch.equal(got.view(_BITS[dtype]), expected.view(_BITS[dtype]))
    assert bool(pairs) == (pairable and dtype != torch.float16)


@pytest.mark.parametrize("strategy", ["gemm_shuffle", "phase"])
def test_one_plan_lands_batches_dtypes_and_grad_modes_right(strategy, monkeypatch):
    # _place_phases keeps its jobs and landing schedule on the plan, keyed by the phases' shape,
    # strides, dtype and whether pairs may be used: one plan, many kinds of call, each against torch.
    from tconv.torch import strategies
    from tconv.torch.strategies import _common

    monkeypatch.setattr(_common, "PAIR_MIN_BYTES", 0)  # pairs at every size
    plan = Plan(tt.layer_geometry((5, 6), (2, 2), (2, 2), (1, 0), (1, 0), (1, 1), 1), 3, 4)
    torch.manual_seed(0)
    calls = [(2, torch.float32, False), (1, torch.float32, False), (2, torch.float64, False), (2, torch.float32, True),
             (3, torch.float64, True), (2, torch.float32, False)]
    for batch, dtype, grad in calls:
        x = torch.randn(batch, 3, 5, 6, dtype=dtype, requires_grad=grad)
        w = torch.randn(3, 4, 2, 2, dtype=dtype, requires_grad=grad)
        b = torch.randn(4, dtype=dtype)
        got = strategies.run(strategy, x, w, b, plan)
        expected = F.conv_transpose2d(x, w, b, 2, (1, 0), (1, 0))
        torch.testing.assert_close(got, expected)
        if grad:
            g = torch.randn_like(expected)
            for mine, theirs in zip(torch.autograd.grad(got, (x, w), g), torch.autograd.grad(expected, (x, w), g)):
                torch.testing.assert_close(mine, theirs)
    assert len(plan.__dict__["_landings"]) == 5  # the last call reused the first one's schedule


@settings(max_examples=examples(25))
@given(
    nd=st.integers(1, 3), channels=st.integers(1, 3), multiplier=st.integers(1, 2), data=st.data(),
    padding=st.sampled_from(["numeric", "same", "same_lower", "valid"]),
)
def test_depthwise_strategy_equals_torch(nd, channels, multiplier, data, padding):
    # The phase-by-phase depthwise path: every phase, tap offset and (for 'same' with k < s) the
    # zeros appended past the full output, against torch's own kernel.
    spatial = tuple(data.draw(st.integers(1, 6 if nd < 3 else 3)) for _ in range(nd))
    kernel = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    torch.manual_seed(1)
    x = torch.randn((2, channels) + spatial, dtype=torch.float64)
    w = torch.randn((channels, multiplier) + kernel, dtype=torch.float64)
    b = torch.randn(channels * multiplier, dtype=torch.float64)
    if padding == "numeric":
        pad = tuple(data.draw(st.integers(0, 2)) for _ in range(nd))
        out_pad = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        try:
            expected = TORCH_FUNCS[nd](x, w, b, stride, pad, out_pad, channels, dilation)
        except RuntimeError:
            return  # torch rejects it (e.g. a negative output size): covered by the error tests
        got = FUNCS[nd](x, w, b, stride, pad, out_pad, channels, dilation, strategy="depthwise")
    else:
        geo = tt.layer_geometry(spatial, kernel, stride, padding, 0, dilation, channels)
        # Reference: torch's full output, then the window the geometry keeps (zeros past the end).
        full = TORCH_FUNCS[nd](x, w, None, stride, 0, 0, channels, dilation)
        pads = []
        for ax in reversed(list(geo)):
            pads += [-ax.crop_begin, -ax.crop_end]
        expected = F.pad(full, pads) + b.view((1, -1) + (1,) * nd)
        got = FUNCS[nd](x, w, b, stride, padding, 0, channels, dilation, strategy="depthwise")
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=examples(15))
@given(cfg=layers(max_ndim=2))
def test_auto_and_deterministic_equal_torch_float32(cfg):
    ref, ours, x = _pair(cfg, torch.float32)
    expected = ref(x)
    for mode in ("auto", "deterministic"):
        with tt.use_strategy(mode):
            torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4)


GRAD_CASES = [
    # nd, cin, cout, groups, spatial, kernel, stride, padding, output_padding, dilation
    (1, 2, 3, 1, (4,), (3,), (2,), 1, 1, (1,)),
    (2, 2, 2, 2, (3, 2), (2, 3), (2, 1), "same", 0, (1, 2)),
    (2, 2, 2, 1, (2, 3), (2, 2), (2, 2), (1, 0), 0, (1, 1)),
    (3, 2, 2, 1, (2, 2, 2), (2, 1, 2), (2, 2, 1), "same_lower", 0, (1, 1, 1)),
    (2, 2, 4, 2, (3, 3), (1, 1), (3, 2), "same", 0, (1, 1)),  # k < s: zeros appended, plus bias
    (1, 3, 6, 3, (4,), (3,), (2,), 1, 1, (2,)),  # depthwise with a channel multiplier, dilated
    (1, 4, 2, 2, (3,), (4,), (2,), 0, 0, (1,)),  # grouped, the uncropped output exactly (k = 2s)
]


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"{c[0]}d-{c[7]}")
def test_gradcheck_every_strategy(strategy, case):
    nd, cin, cout, groups, spatial, kernel, stride, padding, output_padding, dilation = case
    torch.manual_seed(0)
    x = torch.randn((2, cin) + spatial, dtype=torch.float64, requires_grad=True)
    w = torch.randn((cin, cout // groups) + kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    plan = Plan(tt.layer_geometry(spatial, kernel, stride, padding, output_padding, dilation, groups), cin, cout)
    if strategy not in eligible(plan):
        pytest.skip(f"{strategy} does not apply to this layer")
    fn = FUNCS[nd]
    assert torch.autograd.gradcheck(
        lambda x, w, b: fn(x, w, b, stride, padding, output_padding, groups, dilation, strategy=strategy), (x, w, b)
    )


# decoder-sized layers, float32: (ndim, batch, in, out, groups, spatial, kernel, stride, padding, output_padding)
SHIFTED_CASES = [
    (2, 1, 64, 32, 1, (20, 24), 3, 2, 1, 1),  # the decoder k3 s2 'same' up-step
    (2, 3, 16, 24, 2, (9, 7), 4, 2, 1, 0),  # DCGAN's k4 s2 p1, grouped, batched
    (1, 1, 64, 32, 1, (40,), 16, 8, 4, 0),  # HiFi-GAN's k16 s8
    (3, 2, 8, 6, 1, (4, 5, 3), 2, 2, 0, 0),  # the 3-D U-Net k2 s2
    (2, 2, 6, 10, 1, (5, 6), 2, 3, 1, 1),  # k < s: phases without taps hold the bias
]


@pytest.mark.parametrize("case", SHIFTED_CASES, ids=lambda c: f"{c[0]}d-k{c[6]}s{c[7]}")
def test_shifted_strategy_float32_layers(case):
    # Larger than the hypothesis layers: many GEMMs per shift, wide row runs, batch > 1 in
    # one flat buffer, and the phases' interleave with bias.
    nd, batch, cin, cout, groups, spatial, k, s, p, op = case
    torch.manual_seed(4)
    x = torch.randn((batch, cin) + spatial)
    w = torch.randn((cin, cout // groups) + (k,) * nd)
    b = torch.randn(cout)
    expected = TORCH_FUNCS[nd](x, w, b, s, p, op, groups)
    with torch.no_grad():
        got = FUNCS[nd](x, w, b, s, p, op, groups, strategy="shifted")
    assert got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * cin * k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape, block", [
    ((2, 8, 200, 180), None),  # images over 1 MiB: copied in blocks of positions
    ((2, 32, 9, 7), None),  # small images: torch's own copy
    ((3, 5, 7, 9), 64),  # tiny blocks: ragged last block, one position per block when c is wide
    ((1, 5, 3, 4, 6), 40),
])
def test_channels_first_copy_is_exact_and_keeps_inf_and_nan(dtype, shape, block, monkeypatch):
    from tconv.torch.strategies import _common

    if block is not None:
        monkeypatch.setattr(_common, "TRANSPOSE_BLOCK_BYTES", block)
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    torch.manual_seed(5)
    y = torch.randn(shape, dtype=dtype).contiguous(memory_format=fmt)
    memory = y.movedim(1, -1).view(-1)  # y's elements in memory order
    memory[7] = torch.finfo(dtype).tiny / 4
    memory[8] = -0.0
    for special in (None, float("inf"), float("nan")):
        if special is not None:
            memory[11] = special
        got = _common.channels_first(y)
        assert got.is_contiguous() and got.shape == y.shape
        assert torch.equal(torch.isnan(got), torch.isnan(y)) and torch.equal(got.nan_to_num(), y.nan_to_num())
        assert torch.equal(torch.signbit(got), torch.signbit(y))


def test_channels_last_strategy_propagates_inf_like_torch():
    torch.manual_seed(6)
    x, w = torch.randn(1, 8, 6, 6), torch.randn(8, 4, 3, 3)
    x[0, 2, 3, 3] = float("inf")
    expected = F.conv_transpose2d(x, w, None, 2, 1, 1)
    got = tt.conv_transpose2d(x, w, None, 2, 1, 1, strategy="channels_last")
    assert torch.equal(torch.isnan(got), torch.isnan(expected))
    assert torch.equal(torch.isinf(got), torch.isinf(expected))


def test_state_dict_round_trip_with_nn():
    ref = torch.nn.ConvTranspose2d(6, 4, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0), groups=2, dilation=(1, 2))
    ours = tt.ConvTranspose2d(6, 4, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0), groups=2, dilation=(1, 2))
    assert isinstance(ours, torch.nn.ConvTranspose2d)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]
    ours.load_state_dict(ref.state_dict())
    back = torch.nn.ConvTranspose2d(6, 4, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0), groups=2, dilation=(1, 2))
    back.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 5, 4)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(back(x), ref(x))


# ---- padding='same' ---------------------------------------------------------------------------
SAME_CASES = [((5, 6), (3, 4), (2, 2)), ((5, 6), (1, 3), (2, 3)), ((4, 3), (4, 5), (3, 2)), ((3, 3), (2, 2), (1, 1))]


@pytest.mark.parametrize("spatial, kernel, stride", SAME_CASES)
def test_same_equals_keras(keras, spatial, kernel, stride):
    torch.manual_seed(1)
    x = torch.randn((2, 3) + spatial, dtype=torch.float64)
    w = torch.randn((3, 2) + kernel, dtype=torch.float64)
    b = torch.randn(2, dtype=torch.float64)
    layer = keras.layers.Conv2DTranspose(2, kernel, strides=stride, padding="same", dtype="float64")
    layer.build((2,) + spatial + (3,))
    layer.set_weights([w.permute(2, 3, 1, 0).numpy(), b.numpy()])
    expected = torch.from_numpy(np.array(layer(x.permute(0, 2, 3, 1).numpy()))).permute(0, 3, 1, 2)
    for padding in ("same", "same_upper"):
        plan = Plan(tt.layer_geometry(spatial, kernel, stride, padding), 3, 2)
        for strategy in eligible(plan):
            module = tt.ConvTranspose2d(3, 2, kernel, stride=stride, padding=padding, dtype=torch.float64,
                                        strategy=strategy)
            with torch.no_grad():
                module.weight.copy_(w)
                module.bias.copy_(b)
                got = module(x)
            assert got.shape[2:] == tuple(i * s for i, s in zip(spatial, stride))
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def _onnx_conv_transpose(x, w, stride, auto_pad):
    import onnxruntime
    from onnx import TensorProto, helper

    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], auto_pad=auto_pad, strides=list(stride))
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape)),
         helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"X": x.numpy(), "W": w.numpy()})[0])


@pytest.mark.parametrize("spatial, kernel, stride", [c for c in SAME_CASES if all(k >= s for k, s in zip(c[1], c[2]))])
@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER"])
def test_same_upper_lower_equal_onnxruntime(ort, spatial, kernel, stride, mode):
    # onnxruntime clamps SAME to the full output when the kernel is shorter than the stride (see
    # tconv.conventions.onnx), so only kernels >= stride are compared here.
    torch.manual_seed(2)
    x, w = torch.randn((1, 3) + spatial), torch.randn((3, 2) + kernel)
    expected = _onnx_conv_transpose(x, w, stride, mode)
    for strategy in ALL:
        plan = Plan(tt.layer_geometry(spatial, kernel, stride, mode.lower()), 3, 2)
        if strategy not in eligible(plan):
            continue
        got = tt.conv_transpose2d(x, w, None, stride, mode.lower(), strategy=strategy)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_same_lower_differs_from_upper_only_by_the_odd_element():
    g_up = tt.layer_geometry((8,), (4,), stride=(2,), padding="same_upper")
    g_lo = tt.layer_geometry((8,), (4,), stride=(2,), padding="same_lower")
    assert g_up.output_shape == g_lo.output_shape == (16,)
    assert (g_up.crop_begin, g_up.crop_end) == ((1,), (1,))  # even total: both modes agree
    g_up = tt.layer_geometry((8,), (3,), stride=(2,), padding="same_upper")
    g_lo = tt.layer_geometry((8,), (3,), stride=(2,), padding="same_lower")
    assert (g_up.crop_begin, g_up.crop_end, g_lo.crop_begin, g_lo.crop_end) == ((0,), (1,), (1,), (0,))


def test_valid_is_padding_zero():
    torch.manual_seed(3)
    x, w = torch.randn(1, 2, 4, 5), torch.randn(2, 3, 3, 2)
    torch.testing.assert_close(tt.conv_transpose2d(x, w, None, 2, "valid"), F.conv_transpose2d(x, w, None, 2))


# ---- output_size ------------------------------------------------------------------------------
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_channels", [False, True])
def test_output_size_like_torch(batched, with_channels):
    torch.manual_seed(4)
    ref = torch.nn.ConvTranspose2d(3, 2, 3, stride=(2, 3), padding=1)
    ours = tt.ConvTranspose2d(3, 2, 3, stride=(2, 3), padding=1)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 4, 5) if batched else torch.randn(3, 4, 5)
    for size in [(7, 13), (8, 14), (8, 15)]:
        full = ((2, 2) if batched else (2,)) + size if with_channels else size
        expected = ref(x, output_size=list(full))
        got = ours(x, output_size=list(full))
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for bad in [(6, 13), (9, 13), (7, 12, 1)]:
        with pytest.raises(ValueError) as torch_error:
            ref(x, output_size=list(bad))
        with pytest.raises(ValueError) as our_error:
            ours(x, output_size=list(bad))
        assert isinstance(our_error.value, tconv.ConfigError), torch_error.value


def test_unbatched_input_3d_and_1d():
    torch.manual_seed(5)
    for nd, shape in ((1, (3, 7)), (3, (3, 2, 3, 2))):
        ref = NN[nd](3, 4, 2, stride=2, padding=1, output_padding=1)
        ours = OURS[nd](3, 4, 2, stride=2, padding=1, output_padding=1)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(shape)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


# ---- picker --------------------------------------------------------------------------------------
def test_picker_measures_once_and_caches():
    layer = tt.ConvTranspose2d(16, 16, 3, stride=2, padding=1)
    x = torch.randn(1, 16, 24, 24)  # above MEASURE_MIN_FLOPS, so it is measured
    with torch.no_grad():
        expected = torch.nn.functional.conv_transpose2d(x, layer.weight, layer.bias, 2, 1)
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)
        assert len(tconv.torch.picker.cache_info()) == 1
        layer(x)
        assert len(tconv.torch.picker.cache_info()) == 1
        layer(torch.randn(1, 16, 25, 24))  # a new signature is measured once more
        assert len(tconv.torch.picker.cache_info()) == 2
        layer(torch.randn(1, 16, 4, 4))  # tiny: decided by the rule, not measured
    assert len(tconv.torch.picker.cache_info()) == 2
    assert set(tconv.torch.picker.cache_info().values()) <= set(ALL)


def test_picker_decides_on_medians_of_every_close_finalist(monkeypatch):
    # Scripted call times (the logic under test is the choice, not torch): `phase` has the best
    # single call but alternates 1.9 and 6 ms, `gemm_shuffle` runs 2.2 ms every time, `native` 4 ms.
    # Picking by the fastest call alone, then confirming only that one, kept `native`. A budget of
    # 2 s leaves the head-to-head samples their full length (a tight one shortens them).
    import itertools
    import types

    from tconv.torch import picker

    schedule = {"native": itertools.repeat(4e-3), "gemm_shuffle": itertools.repeat(2.2e-3),
                "phase": itertools.cycle([1.9e-3, 6e-3])}

    # A scripted clock: each call advances it by its scheduled time, so the test checks the choice
    # and never depends on how busy the machine is (a busy-wait failed under load).
    clock = [0.0]

    def fake_run(name, x, w, b, plan):
        clock[0] += next(schedule[name])
        return x

    monkeypatch.setattr(picker, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(picker, "run", fake_run)
    monkeypatch.setattr(picker, "eligible", lambda plan: list(schedule))
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 2, 2)
    plan = Plan(tt.layer_geometry((8, 8), (2, 2), stride=2), 4, 4)
    assert picker._measure(x, w, None, plan, budget_s=2.0) == "gemm_shuffle"
    schedule["gemm_shuffle"] = itertools.repeat(3.8e-3)  # no longer 10% faster than native
    schedule["phase"] = itertools.repeat(4.1e-3)
    assert picker._measure(x, w, None, plan, budget_s=2.0) == "native"
    # 10% faster in the median, but slower than native in two of the five head-to-head rounds:
    # 6 warm-up and screening calls, then per round 2 calls of each (number = ceil(5 ms / 4 ms))
    schedule["gemm_shuffle"] = itertools.chain(itertools.repeat(2e-3, 6), itertools.cycle(
        [2e-3, 2e-3, 2e-3, 2e-3, 2e-3, 2e-3, 5e-3, 5e-3, 5e-3, 5e-3]))
    schedule["phase"] = itertools.repeat(6e-3)
    assert picker._measure(x, w, None, plan, budget_s=2.0) == "native"


def test_deterministic_mode_and_forcing():
    x, w = torch.randn(1, 4, 6, 6), torch.randn(4, 3, 2, 2)
    tt.set_strategy("deterministic")
    tt.conv_transpose2d(x, w, stride=2)
    assert tconv.torch.picker.cache_info() == {}  # nothing measured
    assert tt.deterministic_rule(x, w, tt.layer_geometry((6, 6), (2, 2), stride=2)) == "native"  # tiny
    big_x, big_w = torch.randn(1, 64, 256), torch.randn(64, 32, 2)
    assert tt.deterministic_rule(big_x, big_w, tt.layer_geometry((256,), (2,), stride=2)) == "gemm_shuffle"
    big_x, big_w = torch.randn(1, 64, 16, 16), torch.randn(64, 32, 2, 2)
    assert tt.deterministic_rule(big_x, big_w, tt.layer_geometry((16, 16), (2, 2), stride=2)) == "gemm_shuffle"
    overlapping = tt.layer_geometry((16, 16), (3, 3), stride=2, padding=1, output_padding=1)
    wide_x, wide_w = torch.randn(4, 64, 16, 16), torch.randn(64, 32, 3, 3)  # 38 MFLOP
    assert tt.deterministic_rule(wide_x, wide_w, overlapping) == "channels_last"
    assert tt.deterministic_rule(wide_x[:1, :, :8, :8], wide_w, tt.layer_geometry((8, 8), (3, 3), stride=2)) == "native"
    from tconv.torch import _native
    narrowing = "gemm_gather" if _native.library() is not None else "kn2row"  # where the C kernels are built
    assert tt.deterministic_rule(wide_x, torch.randn(64, 3, 3, 3), overlapping) == narrowing  # 64 -> 3 channels
    with torch.enable_grad():  # training: torch's fused backward wins
        assert tt.deterministic_rule(wide_x, wide_w.requires_grad_(), overlapping) == "native"
    cube_x, cube_w = torch.randn(1, 32, 12, 12, 12), torch.randn(32, 16, 3, 3, 3)
    cube = tt.layer_geometry((12,) * 3, (3,) * 3, stride=2, padding=1, output_padding=1)
    assert tt.deterministic_rule(cube_x, cube_w, cube) == "channels_last"  # oneDNN, called directly
    with torch.enable_grad():  # oneDNN's op has no backward
        assert tt.deterministic_rule(cube_x, cube_w.requires_grad_(), cube) == "native"
    dilated_op = tt.layer_geometry((12,) * 3, (3,) * 3, stride=1, padding=1, output_padding=1, dilation=2)
    assert tt.deterministic_rule(cube_x, cube_w.detach(), dilated_op) == "native"  # oneDNN refuses op >= s
    assert tt.deterministic_rule(cube_x.double(), cube_w.detach().double(), cube) == "native"
    built = _native.library() is not None
    # 1-D layers with overlapping taps: one GEMM and one C pass where the C loops are built
    line_x, line_w = torch.randn(1, 64, 512), torch.randn(64, 32, 5)
    line = tt.layer_geometry((512,), (5,), stride=2, padding=2)
    assert tt.deterministic_rule(line_x, line_w, line) == ("gemm_gather" if built else "native")
    vocoder = tt.layer_geometry((64,), (16,), stride=8, padding=4)  # HiFi-GAN's first up-sampling layer
    assert tt.deterministic_rule(torch.randn(1, 512, 64), torch.randn(512, 256, 16), vocoder) == "overlap_add"
    narrow = tt.deterministic_rule(torch.randn(1, 128, 64), torch.randn(128, 64, 16), vocoder)
    assert narrow == ("gemm_gather" if built else "native")
    with torch.enable_grad():
        assert tt.deterministic_rule(torch.randn(1, 512, 64), torch.randn(512, 256, 16, requires_grad=True),
                                     vocoder) == "native"
        assert tt.deterministic_rule(line_x, line_w.requires_grad_(), line) == "native"
    late = tt.layer_geometry((4096,), (4,), stride=2, padding=1)  # HiFi-GAN's third up-sampling layer
    late_choice = "gemm_gather" if built else "phase_rows"
    assert tt.deterministic_rule(torch.randn(1, 128, 4096), torch.randn(128, 64, 4), late) == late_choice
    short = tt.layer_geometry((2048,), (4,), stride=2, padding=1)
    assert tt.deterministic_rule(torch.randn(1, 128, 2048), torch.randn(128, 64, 4), short) == (
        "gemm_gather" if built else "native")
    assert tt.deterministic_rule(torch.randn(2, 128, 2048), torch.randn(128, 64, 4), short) == late_choice  # 2 x 2048
    assert tt.deterministic_rule(torch.randn(128, 4096), torch.randn(128, 64, 4), late) == late_choice  # unbatched
    # 1-D depthwise: one C pass in inference where the C loops are built; torch's kernel, the bias after, otherwise
    dw1_x, dw1_w, dw1_b = torch.randn(2, 128, 1024), torch.randn(128, 1, 5), torch.randn(128)
    dw1 = tt.layer_geometry((1024,), (5,), stride=2, padding=2, output_padding=1, groups=128)
    assert tt.deterministic_rule(dw1_x, dw1_w, dw1, dw1_b) == ("depthwise" if built else "native_bias_after")
    with torch.enable_grad():
        assert tt.deterministic_rule(dw1_x, dw1_w.requires_grad_(), dw1, dw1_b) == "native_bias_after"
    dw_x, dw_w = torch.randn(4, 64, 32, 32), torch.randn(64, 1, 3, 3)
    dw_geo = tt.layer_geometry((32, 32), (3, 3), stride=2, padding=1, output_padding=1, groups=64)
    # one C pass in inference where the C loops are built; else oneDNN's kernel, fast without a bias
    assert tt.deterministic_rule(dw_x, dw_w, dw_geo) == ("depthwise" if built else "native")
    assert tt.deterministic_rule(dw_x, dw_w, dw_geo, torch.randn(64)) == ("depthwise" if built else "native_bias_after")
    cube_dw = tt.layer_geometry((16, 16, 16), (3, 3, 3), stride=2, padding=1, output_padding=1, groups=32)
    assert tt.deterministic_rule(torch.randn(2, 32, 16, 16, 16), torch.randn(32, 1, 3, 3, 3), cube_dw,
                                 torch.randn(32)) == "native_bias_after"  # 3-D (14 MFLOP): not measured
    with torch.enable_grad():  # its slow bias pass costs in training too
        assert tt.deterministic_rule(dw_x, dw_w.requires_grad_(), dw_geo, torch.randn(64)) == "native_bias_after"
    tiny_dw = tt.layer_geometry((4, 4), (3, 3), stride=2, groups=64)
    assert tt.deterministic_rule(dw_x[:1, :, :4, :4], dw_w, tiny_dw, torch.randn(64)) == "native_bias_after"
    grouped = tt.layer_geometry((32, 32), (3, 3), stride=2, padding=1, output_padding=1, groups=4)
    assert tt.deterministic_rule(dw_x, torch.randn(64, 16, 3, 3), grouped, torch.randn(64)) == "channels_last"  # 16/group
    grouped8 = tt.layer_geometry((32, 32), (3, 3), stride=2, padding=1, output_padding=1, groups=8)
    assert tt.deterministic_rule(dw_x, torch.randn(64, 8, 3, 3), grouped8, torch.randn(64)) == "native_bias_after"
    assert tt.deterministic_rule(dw_x.half(), dw_w.half(), dw_geo, torch.randn(64).half()) == "native"  # not measured
    with pytest.raises(tconv.ConfigError, match="eligible here"):
        tt.conv_transpose2d(x, w, stride=1, padding=0, strategy="gemm_shuffle")  # k=2 > s=1 overlaps
    with pytest.raises(tconv.ConfigError, match="not a mode or a strategy"):
        tt.set_strategy("fastest")
    with pytest.raises(tconv.ConfigError, match="not a mode or a strategy"):
        tt.ConvTranspose2d(4, 3, 2, strategy="nope")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("grad", [True, False])
def test_native_bias_after_module_repeat_calls(bias, grad):
    # The second call takes the module's bound fast path (strategies.bind), not the strategy function.
    torch.manual_seed(9)
    ref = torch.nn.ConvTranspose2d(6, 6, 3, stride=2, padding=1, output_padding=1, groups=6, bias=bias)
    ours = tt.ConvTranspose2d(6, 6, 3, stride=2, padding=1, output_padding=1, groups=6, bias=bias,
                              strategy="native_bias_after")
    ours.load_state_dict(ref.state_dict())
    for _ in range(3):
        x = torch.randn(2, 6, 5, 4)
        with torch.set_grad_enabled(grad):
            expected, got = ref(x), ours(x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        if grad:
            expected.square().sum().backward()
            got.square().sum().backward()
            for mine, theirs in zip(ours.parameters(), ref.parameters()):
                torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-4)


def test_torch_compile_smoke():
    torch.manual_seed(6)
    layer = tt.ConvTranspose2d(4, 3, 3, stride=2, padding="same")
    compiled = torch.compile(layer, backend="eager")
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    y = compiled(x)
    torch.testing.assert_close(y, layer(x))
    y.sum().backward()
    assert x.grad is not None and layer.weight.grad is not None


def test_torch_compile_traces_overlap_add():
    # While compiling, the rule decides; for this vocoder layer it takes overlap_add. Its inference
    # path avoids an out= into a view while compiling (under the inductor backend Dynamo broke the
    # graph there; checked by hand, as inductor compiles C++, too slow for this suite), so this
    # traces the strategy itself and checks the traced program against torch.
    from torch._dynamo.testing import CompileCounter

    from tconv.torch.strategies import one_d

    torch.manual_seed(7)
    x, w, b = torch.randn(1, 256, 64), torch.randn(256, 128, 16), torch.randn(128)
    geometry = tt.layer_geometry((64,), (16,), 8, 4)
    assert tt.deterministic_rule(x, w, geometry) == "overlap_add"
    plan = Plan(geometry, 256, 128)
    plan.geometry[0], plan.ndim, plan.groups  # noqa: B018  (fill the cached properties before tracing)
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = torch.compile(lambda x, w, b: one_d.overlap_add(x, w, b, plan), backend=counter)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x, w, b), F.conv_transpose1d(x, w, b, 8, 4), rtol=1e-4, atol=1e-4)
    assert counter.frame_count >= 1 and counter.op_count > 0


# ndim, module arguments, input shape: one layer per strategy family, large enough for every strategy
COMPILE_LAYERS = [
    (2, dict(in_channels=16, out_channels=8, kernel_size=3, stride=2, padding=1, output_padding=1), (2, 16, 8, 8)),
    (1, dict(in_channels=16, out_channels=8, kernel_size=16, stride=8, padding=4), (2, 16, 8)),
    (3, dict(in_channels=8, out_channels=4, kernel_size=2, stride=2), (1, 8, 4, 4, 4)),
    (2, dict(in_channels=8, out_channels=8, kernel_size=3, stride=2, padding=1, groups=8), (2, 8, 8, 8)),
]


@pytest.mark.parametrize("strategy", ALL)
def test_torch_compile_traces_every_strategy(strategy):
    # torch.compile must trace each strategy's ops into the graph, the only graph breaks being the
    # deliberate ones (tconv's Python set-up, run eagerly behind torch.compiler.disable). Earlier,
    # Python 3.11's cached_property lock, a generator passed to math.prod, and out= into views
    # each made Dynamo give up and run the strategy eagerly. Paired landing is forced on (size
    # floor 0) so its complex out= path would be reached too.
    from torch._dynamo.testing import CompileCounter

    from tconv.torch.strategies import _common

    ran = 0
    for nd, kwargs, shape in COMPILE_LAYERS:
        torch.manual_seed(3)
        ref = NN[nd](**kwargs)
        plan = Plan(tt.layer_geometry(shape[2:], (kwargs["kernel_size"],) * nd, kwargs["stride"], kwargs.get("padding", 0),
                                      kwargs.get("output_padding", 0), 1, kwargs.get("groups", 1)),
                    kwargs["in_channels"], kwargs["out_channels"])
        if strategy not in eligible(plan):
            continue
        ours = OURS[nd](**kwargs, strategy=strategy)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(shape)
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        counter = CompileCounter()
        with pytest.MonkeyPatch.context() as patch, torch.no_grad():
            patch.setattr(_common, "PAIR_MIN_BYTES", 0)
            got = torch.compile(ours, backend=counter)(x)
        torch.testing.assert_close(got, ref(x), rtol=1e-4, atol=1e-4)
        breaks = [reason.splitlines()[0] for reason in torch._dynamo.utils.counters["graph_break"]]
        assert all("torch.compiler.disable" in reason for reason in breaks), breaks
        assert counter.frame_count >= 1 and counter.op_count >= 1
        ran += 1
    assert ran, f"no layer here is eligible for {strategy}"


def test_import_tconv_does_not_import_torch():
    code = "import sys, tconv; tconv.output_shape(4, 3); import tconv.torch; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- bad input: side by side with torch ------------------------------------------------------------
BAD_CALLS = [
    ("input 2-D", dict(x=(4, 5), w=(4, 2, 3, 3))),
    ("input 5-D", dict(x=(1, 4, 5, 5, 5), w=(4, 2, 3, 3))),
    ("channels", dict(x=(1, 3, 5, 5), w=(4, 2, 3, 3))),
    ("groups divide", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), groups=3)),
    ("groups 0", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), groups=0)),
    ("negative padding", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), padding=-1)),
    ("stride 0", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), stride=0)),
    ("dilation 0", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), dilation=0)),
    ("output_padding >= stride and dilation", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), stride=2, output_padding=2)),
    ("output too small", dict(x=(1, 4, 2, 2), w=(4, 2, 3, 3), padding=3)),
    ("bias size", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), b=(3,))),
    ("weight 3-D", dict(x=(1, 4, 5, 5), w=(4, 2, 3))),
    ("padding float", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), padding=1.5)),
    ("stride tuple too long", dict(x=(1, 4, 5, 5), w=(4, 2, 3, 3), stride=(2, 2, 2))),
]


@pytest.mark.parametrize("label, call", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_errors_like_torch_functional(label, call):
    x, w = torch.randn(call["x"]), torch.randn(call["w"])
    b = torch.randn(call["b"]) if "b" in call else None
    args = {k: v for k, v in call.items() if k not in ("x", "w", "b")}
    with pytest.raises(Exception) as torch_error:
        F.conv_transpose2d(x, w, b, **args)
    with pytest.raises(Exception) as our_error:
        tt.conv_transpose2d(x, w, b, **args)
    assert isinstance(our_error.value, tconv.ConfigError), our_error.value
    assert isinstance(our_error.value, type(torch_error.value)), (torch_error.value, our_error.value)


BAD_MODULES = [
    ("in_channels not divisible", (5, 4, 3), dict(groups=2)),
    ("out_channels not divisible", (4, 5, 3), dict(groups=2)),
    ("groups 0", (4, 4, 3), dict(groups=0)),
    ("padding_mode reflect", (4, 4, 3), dict(padding_mode="reflect")),
    ("padding_mode unknown", (4, 4, 3), dict(padding_mode="mirror")),
]


@pytest.mark.parametrize("label, args, kwargs", BAD_MODULES, ids=[c[0] for c in BAD_MODULES])
def test_errors_like_torch_module_constructor(label, args, kwargs):
    with pytest.raises(Exception) as torch_error:
        torch.nn.ConvTranspose2d(*args, **kwargs)
    with pytest.raises(Exception) as our_error:
        tt.ConvTranspose2d(*args, **kwargs)
    assert type(our_error.value) is type(torch_error.value)
    assert str(our_error.value) == str(torch_error.value).replace("ConvTranspose2d", "ConvTranspose2d")


def test_string_padding_errors_are_clear():
    # torch accepts padding='same' in the constructor and fails in forward with a TypeError;
    # tconv supports the four modes and rejects anything else at once.
    with pytest.raises(tconv.ConfigError, match="same_upper"):
        tt.ConvTranspose2d(4, 2, 3, padding="full")
    with pytest.raises(tconv.ConfigError, match="output_padding"):
        tt.ConvTranspose2d(4, 2, 3, stride=2, padding="same", output_padding=1)
    layer = tt.ConvTranspose2d(4, 2, 3, stride=2, padding="same")
    with pytest.raises(tconv.ConfigError, match="output_size"):
        layer(torch.randn(1, 4, 3, 3), output_size=(7, 7))


def test_mismatched_devices_and_dtypes_are_clear():
    x = torch.randn(1, 4, 5, 5)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(x, torch.randn(4, 2, 3, 3, dtype=torch.float64))
    with pytest.raises(tconv.ConfigError, match=r"input has dtype torch.float32 but weight has dtype torch.float64"):
        tt.conv_transpose2d(x, torch.randn(4, 2, 3, 3, dtype=torch.float64))
    with pytest.raises(tconv.ConfigError, match="bias has dtype"):
        tt.conv_transpose2d(x, torch.randn(4, 2, 3, 3), torch.randn(2, dtype=torch.float64))
    with pytest.raises(tconv.ConfigError, match="input is on cpu but weight is on meta"):
        tt.conv_transpose2d(x, torch.randn(4, 2, 3, 3, device="meta"))
    layer = tt.ConvTranspose2d(4, 2, 3).double()
    with pytest.raises(RuntimeError, match="module.to"):
        layer(x)


def test_module_repeat_calls_follow_mode_changes():
    torch.manual_seed(7)
    layer = tt.ConvTranspose2d(16, 16, 3, stride=2, padding=1, output_padding=1)
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        expected = torch.nn.functional.conv_transpose2d(x, layer.weight, layer.bias, 2, 1, 1)
        for mode in ("deterministic", "col2im", "phase", "col2im"):
            with tt.use_strategy(mode):
                torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)
                if mode != "deterministic":
                    assert layer._tconv_last[1] == mode
        layer.stride = (1, 1)  # attributes changed after construction are honoured
        layer.output_padding = (0, 0)
        torch.testing.assert_close(layer(x), torch.nn.functional.conv_transpose2d(x, layer.weight, layer.bias, 1, 1), rtol=1e-4, atol=1e-4)
    assert "_tconv_last" not in layer.state_dict()


def test_function_repeat_calls_reuse_their_choice_and_still_check_everything():
    """Functions keep a bound call per key (tensors, arguments, mode, threads); every change that
    would alter a check, the plan or the choice must miss it."""
    from tconv.torch import functional

    torch.manual_seed(8)
    x, w, b = torch.randn(2, 16, 12, 12), torch.randn(16, 8, 3, 3), torch.randn(8)
    args = dict(stride=2, padding=1, output_padding=1)
    with torch.no_grad():
        expected = F.conv_transpose2d(x, w, b, **args)
        for mode in ("col2im", "phase", "col2im"):  # the mode is part of the key
            with tt.use_strategy(mode):
                for _ in range(2):
                    torch.testing.assert_close(tt.conv_transpose2d(x, w, b, **args), expected, rtol=1e-4, atol=1e-4)
                    # the same key as the call above: the choice it bound
                    _, (chosen, _) = functional._conv_transpose_and_choice(2, x, w, b, 2, 1, 1, 1, 1, None)
                    assert chosen == mode
        # unbatched input, after the batched call: its own key, unsqueezed for a strategy of tconv's own
        with tt.use_strategy("col2im"):
            for _ in range(2):
                torch.testing.assert_close(tt.conv_transpose2d(x[0], w, b, **args), expected[0], rtol=1e-4, atol=1e-4)
        # values torch rejects still fail after an equal-comparing good value ran (1 == 1.0 == True)
        tt.conv_transpose2d(x, w, b, stride=1)
        for bad in (True, 1.0):
            with pytest.raises(TypeError, match="must be an integer"):
                tt.conv_transpose2d(x, w, b, stride=bad)
        tt.conv_transpose2d(x, w, b, **args)  # the same call with a float64 weight must still be refused
        with pytest.raises(tconv.ConfigError, match="weight has dtype torch.float64"):
            tt.conv_transpose2d(x, w.double(), b, **args)
        # clear_cache forgets the bound calls too: the next call measures again (a layer big
        # enough to be measured rather than ruled)
        x, w = torch.randn(2, 32, 24, 24), torch.randn(32, 16, 3, 3)
        tt.conv_transpose2d(x, w, None, **args)
        assert len(tt.cache_info()) == 1
        tt.clear_cache()
        tt.conv_transpose2d(x, w, None, **args)
        assert len(tt.cache_info()) == 1


def test_every_public_name_resolves():
    for name in tt.__all__:
        assert getattr(tt, name) is not None
    with pytest.raises(AttributeError):
        tt.no_such_name  # noqa: B018


@pytest.mark.parametrize("case", GRAD_CASES[:4], ids=lambda c: f"{c[0]}d-{c[7]}")
def test_explicit_backward_double_backward(case):
    # explicit_backward writes its backward out in differentiable ops: second derivatives work too
    nd, cin, cout, groups, spatial, kernel, stride, padding, output_padding, dilation = case
    torch.manual_seed(0)
    x = torch.randn((2, cin) + spatial, dtype=torch.float64, requires_grad=True)
    w = torch.randn((cin, cout // groups) + kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    fn = FUNCS[nd]
    assert torch.autograd.gradgradcheck(
        lambda x, w, b: fn(x, w, b, stride, padding, output_padding, groups, dilation, strategy="explicit_backward"),
        (x, w, b))


def test_explicit_backward_float32_training_matches_torch():
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
    ours = tt.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1, strategy="explicit_backward")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 16, 9, 9, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ref(x).square().sum().backward()
    ours(x2).square().sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-3)
