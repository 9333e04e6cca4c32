"""The four algorithms agree with the definition (scatter) on every kind of window; input handling.

No framework is needed here: the reference is ``scatter`` (the definition, one
stamp per input element), checked in turn against the frameworks in
test_kernels_frameworks.py. Windows are built directly from per-axis crops, so
positive, zero, negative and asymmetric crops and Flax-style wrapping are all
reached regardless of which framework could express them.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _budget import examples
from _no_c_loops import ENVIRONMENTS, run_without_c_loops

import tconv
from tconv.geometry import AxisGeometry, Geometry
from tconv.kernels import ALGORITHMS, _core
from tconv.kernels.engine import transposed_internal
from tconv.kernels.zero_insertion import zero_inserted

FAST = ["auto", "phase", "col2im", "zero_insertion"]


@pytest.fixture
def poisoned_empty(monkeypatch):
    """``np.empty`` fills its float buffers with NaN: an algorithm that reads memory it never wrote fails.

    Fresh memory is often zeros, which would hide such a read.
    """
    empty = np.empty

    def poisoned(shape, dtype=float, order="C", **kwargs):
        buffer = empty(shape, dtype, order, **kwargs)
        if buffer.dtype.kind in "fc":
            buffer.fill(np.nan)
        return buffer
    monkeypatch.setattr(np, "empty", poisoned)


@st.composite
def problems(draw, max_ndim=3, wrap=False, group_choices=(1, 1, 2, 3), min_batch=0, depthwise=False):
    ndim = draw(st.integers(1, max_ndim))
    axes = []
    for _ in range(ndim):
        i, k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        full = (i - 1) * s + d * (k - 1) + 1
        begin = draw(st.integers(-3, full - 1))
        end = draw(st.integers(-3, full - begin - 1))
        axes.append(AxisGeometry(i, k, s, d, begin, end, wrap))
    groups = draw(st.sampled_from((2, 3) if depthwise else group_choices))
    ci, co = 1 if depthwise else draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.integers(min_batch, 2))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    geometry = Geometry(tuple(axes), groups=groups)
    x = rng.normal(size=(batch, *geometry.input_shape, groups * ci))
    w = rng.normal(size=(groups * ci, co, *geometry.kernel_size))
    return x, w, geometry


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=problems())
def test_every_algorithm_equals_scatter(problem, poisoned_empty):
    x, w, geometry = problem
    reference = transposed_internal(x, w, geometry, "scatter")
    assert reference.shape == (x.shape[0], *geometry.output_shape, w.shape[1] * geometry.groups)
    for name in FAST:
        np.testing.assert_allclose(transposed_internal(x, w, geometry, name), reference, rtol=1e-12, atol=1e-12, err_msg=name)


@settings(max_examples=examples(25), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=problems(max_ndim=2, wrap=True))
def test_wrapping_windows_equal_scatter(problem, poisoned_empty):
    x, w, geometry = problem
    reference = transposed_internal(x, w, geometry, "scatter")
    for name in FAST:
        np.testing.assert_allclose(transposed_internal(x, w, geometry, name), reference, rtol=1e-12, atol=1e-12, err_msg=name)


def test_scatter_is_the_definition_by_hand():
    # 1-D, k=3, s=2, x=[1, 2], w=[1, 10, 100]: stamps at 0 and 2 overlap at position 2
    x = np.array([[[1.0, 2.0]]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    y = tconv.conv_transpose(x, w, stride=2, algorithm="scatter")
    assert y.tolist() == [[[1.0, 10.0, 102.0, 20.0, 200.0]]]
    # negative crop (zeros) and bias, through JAX's explicit padding of the dilated input
    y = tconv.conv_transpose(x.transpose(0, 2, 1), w.transpose(2, 1, 0), np.array([0.5]), "jax", strides=(2,),
                             padding=[(3, 3)], dimension_numbers=("NWC", "WIO", "NWC"), transpose_kernel=True)
    assert y[0, :, 0].tolist() == [0.5, 1.5, 10.5, 102.5, 20.5, 200.5, 0.5]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_dtypes(dtype, algorithm):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 5, 3)).astype(dtype)
    w = rng.normal(size=(4, 2, 3, 2)).astype(dtype)
    b = rng.normal(size=(4,)).astype(dtype)
    y = tconv.conv_transpose(x, w, b, stride=(2, 1), padding=1, groups=2, algorithm=algorithm)
    exact = tconv.conv_transpose(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride=(2, 1),
                                 padding=1, groups=2, algorithm="scatter")
    assert y.dtype == dtype
    tolerance = {np.float16: 2e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(y.astype(np.float64), exact, rtol=tolerance, atol=tolerance * 12)


def test_empty_batch():
    y = tconv.conv_transpose(np.zeros((0, 3, 4)), np.ones((3, 2, 3)), np.ones(2), stride=2)
    assert y.shape == (0, 2, 9)


def test_window_entirely_outside_the_full_output_is_bias():
    # ONNX output_shape larger than the full output: onnxruntime pads zeros at the end
    x, w = np.ones((1, 1, 1)), np.ones((1, 1, 1))
    y = tconv.conv_transpose(x, w, np.array([2.0]), "onnx", strides=[3], output_shape=[3])
    assert y.tolist() == [[[3.0, 2.0, 2.0]]]


@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_non_contiguous_inputs(order):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 6, 5))
    w = rng.normal(size=(3, 2, 3, 3))
    expected = tconv.conv_transpose(x, w, stride=2, algorithm="scatter")
    if order == "F":
        x_in, w_in = np.asfortranarray(x), np.asfortranarray(w)
    elif order == "strided":
        big = np.zeros((4, 3, 12, 10))
        big[::2, :, ::2, ::2] = x
        x_in = big[::2, :, ::2, ::2]
        w_in = np.ascontiguousarray(w[:, :, ::-1, :])[:, :, ::-1, :]
    else:
        x_in, w_in = x, w
    for name in ALGORITHMS:
        np.testing.assert_allclose(tconv.conv_transpose(x_in, w_in, stride=2, algorithm=name), expected, rtol=1e-12, atol=1e-12)


def test_integers_are_exact_in_int64():
    x = np.array([[[3, -2, 7]]], dtype=np.int8)
    w = np.array([[[1, 2, 3]]], dtype=np.int16)
    for name in ALGORITHMS:
        y = tconv.conv_transpose(x, w, np.array([1], dtype=np.int32), stride=2, algorithm=name)
        assert y.dtype == np.int64
        assert y.tolist() == [[[4, 7, 8, -3, 2, 15, 22]]]  # by hand: x[0]*w at 0, x[1]*w at 2, x[2]*w at 4
    # values that would need more than 64 bits are rejected, not wrapped around
    big = np.array([[[2**40, 2**40]]], dtype=np.int64)
    with pytest.raises(tconv.ConfigError, match="overflow"):
        tconv.conv_transpose(big, np.array([[[2**30, 2**30]]]), stride=1)
    # an integer input with a float weight is float, promoted as NumPy promotes
    assert tconv.conv_transpose(x, w.astype(np.float32), stride=2).dtype == np.result_type(np.int8, np.float32)


@pytest.mark.parametrize(
    "x, w, b, args, message",
    [
        (np.ones((1, 3, 4)), np.ones((2, 1, 3)), None, {}, "3 channels but the weight"),
        (np.ones((3, 4)), np.ones((3, 1, 3)), None, {}, "needs batch, channels"),
        (np.ones((1, 3, 4)), np.ones((3, 1, 3, 3)), None, {}, "the weight has 4 dimensions"),
        (np.ones((1, 3, 4)), np.ones((3, 1, 3)), np.ones(2), {}, "the bias has shape"),
        (np.ones((1, 3, 4)), np.ones((3, 1, 3)), np.ones((1, 1)), {}, "the bias has shape"),
        (np.ones((1, 3, 4)), np.ones((3, 1, 3)), None, {"groups": 2}, "groups=2"),
        (np.array([[["a", "b"]]]), np.ones((1, 1, 3)), None, {}, "string"),
        (np.ones((1, 1, 4), dtype=object), np.ones((1, 1, 3)), None, {}, "object"),
        (np.ones((1, 1, 4), dtype=bool), np.ones((1, 1, 3)), None, {}, "boolean"),
        (np.ones((1, 1, 4), dtype=complex), np.ones((1, 1, 3)), None, {}, "complex"),
        ([[[1.0, 2.0], [3.0]]], np.ones((1, 1, 3)), None, {}, "cannot be read"),
        (np.ones((1, 1, 4)), np.ones((1, 1, 3)), None, {"stride": 0}, "stride"),
        (np.ones((1, 1, 4)), np.ones((1, 1, 3)), None, {"algorithm": "fft"}, "algorithm"),
    ],
)
def test_bad_input_is_a_config_error(x, w, b, args, message):
    with pytest.raises(tconv.ConfigError, match=message):
        tconv.conv_transpose(x, w, b, **args)


def test_keras_layout_errors_name_the_layout():
    with pytest.raises(tconv.ConfigError, match=r"kernel \(\*k, C_out, C_in\)"):
        tconv.conv_transpose(np.ones((1, 4, 4, 3)), np.ones((3, 3, 3, 5)), framework="keras", strides=2)


def test_memory_of_phase_and_col2im_stays_below_the_zero_inserted_tensor():
    # A stride-4 decoder layer (k=4, s=4, channels halved): the zero-inserted input is 16x the input.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 32, 24, 24)).astype(np.float32)
    w = rng.normal(size=(32, 16, 4, 4)).astype(np.float32)
    zero_inserted_bytes = zero_inserted(np.moveaxis(x, 1, -1), tconv.geometry((24, 24), 4, stride=4).axes).nbytes
    output_bytes = 2 * 16 * 96 * 96 * 4
    peaks = {}
    for name in ["phase", "col2im", "zero_insertion"]:
        tracemalloc.start()
        tconv.conv_transpose(x, w, stride=4, algorithm=name)
        peaks[name] = tracemalloc.get_traced_memory()[1] - output_bytes
        tracemalloc.stop()
    assert peaks["phase"] < zero_inserted_bytes, peaks
    assert peaks["col2im"] < zero_inserted_bytes, peaks
    assert peaks["zero_insertion"] > zero_inserted_bytes, peaks  # the measurement can tell


def test_phase_never_builds_a_zero_inserted_tensor(monkeypatch):
    from tconv.kernels import zero_insertion

    def forbidden(*args, **kwargs):
        raise AssertionError("phase must not insert zeros")

    monkeypatch.setattr(zero_insertion, "zero_inserted", forbidden)
    y = tconv.conv_transpose(np.ones((1, 2, 3, 3)), np.ones((2, 2, 3, 3)), stride=3, algorithm="phase")
    assert y.shape == (1, 2, 9, 9)


@settings(max_examples=examples(30), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=problems(max_ndim=3, group_choices=(1,), min_batch=1))
def test_adjoint_identity(problem, poisoned_empty):
    """<conv_transpose(x), y> == <x, conv(y)> for the same weight and arguments."""
    x, w, geometry = problem
    ax_args = dict(strides=geometry.stride, rhs_dilation=geometry.dilation, use_consistent_padding=True,
                   padding=[(ax.crop_begin, ax.crop_end) for ax in geometry.axes], transpose_kernel=True)
    # JAX with consistent padding expresses any crop; channels-first dimension numbers keep x as is
    letters = "HWD"[: geometry.ndim]
    dims = ("NC" + letters, "OI" + letters, "NC" + letters)
    x_cf = np.moveaxis(x, -1, 1)
    forward = tconv.conv_transpose(x_cf, w, framework="jax", dimension_numbers=dims, **ax_args)
    rng = np.random.default_rng(7)
    y = rng.normal(size=forward.shape)
    back = tconv.conv(y, w, framework="jax", dimension_numbers=dims, input_shape=geometry.input_shape, **ax_args)
    assert back.shape == x_cf.shape
    left, right = float((forward * y).sum()), float((x_cf * back).sum())
    assert abs(left - right) <= 1e-10 * (1 + abs(left))


def test_adjoint_identity_with_groups_and_wrap():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 6, 5, 4))
    w = rng.normal(size=(6, 2, 3, 2))
    args = dict(stride=2, padding=(1, 0), output_padding=(1, 0), dilation=(1, 2), groups=3)
    y = rng.normal(size=tconv.conv_transpose(x, w, **args).shape)
    assert np.isclose((tconv.conv_transpose(x, w, **args) * y).sum(), (x * tconv.conv(y, w, **args)).sum())
    # Flax CIRCULAR: the adjoint of folding is tiling
    xf, wf = rng.normal(size=(1, 5, 4, 2)), rng.normal(size=(3, 3, 2, 3))
    forward = tconv.conv_transpose(xf, wf, framework="flax", strides=(2, 3), padding="CIRCULAR")
    yf = rng.normal(size=forward.shape)
    back = tconv.conv(yf, wf, framework="flax", strides=(2, 3), padding="CIRCULAR")
    assert np.isclose((forward * yf).sum(), (xf * back).sum())


def test_conv_reconstructs_the_seed_003_input_shape():
    # seed 003: Conv2d(k=5, s=2) then ConvTranspose2d(k=5, s=2) with the same weight
    x = np.random.default_rng(9).normal(size=(1, 1, 28, 28))
    w = np.random.default_rng(10).normal(size=(1, 1, 5, 5))
    down = tconv.conv(x, w, stride=2, output_padding=1)
    assert down.shape == (1, 1, 12, 12)
    assert tconv.conv_transpose(down, w, stride=2, output_padding=1).shape == x.shape
    with pytest.raises(tconv.ConfigError, match="input_shape"):
        tconv.conv(x, w, stride=2)  # 28 is not the output of any input with output_padding=0


def test_bench_command_rejects_bad_options(capsys):
    from tconv.cli import main

    assert main(["bench", "--repeat", "0"]) == 2
    assert "--repeat 0 must be at least 1" in capsys.readouterr().err
    assert main(["bench", "--threads", "0"]) == 2


def test_benchmark_runs_one_layer(tmp_path, capsys):
    """A smoke run of the benchmark (one small layer, one repeat): it runs and writes its files; no timing is checked."""
    from tconv.kernels import benchmark

    assert benchmark.main(repeat=1, quick=True, out=tmp_path, only=["depthwise"]) == 0
    out = capsys.readouterr().out
    assert "| depthwise k4s2" in out and "phase speed-up over zero_insertion" in out
    assert (tmp_path / "algorithms.md").exists() and (tmp_path / "algorithms.png").exists()
    from tconv import _native

    if _native.library() is not None:  # the compiled form, and the same layer in NumPy ops only beside it
        assert "phase (compiled)" in out and "without the C loop (phase, NumPy ops) / torch channels_last" in out
    assert _native.library() is None or _native.native_status().startswith("built")  # switched on again after
    assert benchmark.main(repeat=1, only=["no such layer"]) == 2


# ---- phase's three forms, and the BLAS call the shifted form accumulates with -------------
@pytest.mark.parametrize("name", ["shifted", "taps", "gathered"])
@settings(max_examples=examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=problems())
def test_every_form_of_phase_equals_scatter(name, problem, poisoned_empty):
    from unittest import mock

    from tconv.kernels import phase

    x, w, geometry = problem
    reference = transposed_internal(x, w, geometry, "scatter")
    with mock.patch.object(phase, "form", lambda *args: name):
        result = transposed_internal(x, w, geometry, "phase")
    np.testing.assert_allclose(result, reference, rtol=1e-12, atol=1e-12)


def _compiled_built() -> None:
    from tconv import _native

    if _native.library() is None:
        pytest.skip(f"tconv's C loops are not built here: {_native.native_status()}")


@pytest.mark.parametrize("name", ["rows", "compiled"])
@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=problems(depthwise=True))
def test_depthwise_forms_equal_scatter(name, problem, poisoned_empty):
    """The depthwise-only forms: ``compiled`` (what ``phase.form`` picks where the C loops are
    built) and ``rows`` (where they are not)."""
    from unittest import mock

    from tconv.kernels import phase

    if name == "compiled":
        _compiled_built()
    x, w, geometry = problem
    reference = transposed_internal(x, w, geometry, "scatter")
    picked = []
    real_form = phase.form
    with mock.patch.object(phase, "form", lambda *args: picked.append(real_form(*args)) or name):
        result = transposed_internal(x, w, geometry, "phase")
    assert set(picked) <= {"compiled"}  # nothing at all when the window or batch is empty
    np.testing.assert_allclose(result, reference, rtol=1e-12, atol=1e-12)


# The compiled depthwise form's edges, each against the definition: more than MAX_TERMS (32) taps per
# output (summed in chunks), channels past the last whole vector (16 float32 / 8 float64 lanes),
# a channel multiplier, phases no tap reaches (s > k), crops past both ends, and outputs large
# enough for several threads.
COMPILED_CASES = [
    # spatial, kernel, stride, dilation, crops (begin, end), groups, multiplier, batch
    ((5, 5, 5), 4, 1, 1, (0, 0), 2, 1, 1),  # up to 64 taps per output
    ((45,), 40, 1, 1, (3, 4), 3, 1, 2),  # up to 40 taps, 1-D
    ((6, 7), 3, 2, 1, (1, 0), 17, 1, 2),  # 16 + 1 channels
    ((6, 7), 3, 2, 2, (1, 2), 5, 3, 2),  # multiplier 3: 15 channels
    ((5, 4), 2, 3, 1, (0, 0), 16, 1, 1),  # s > k: a third of the outputs have no tap
    ((4, 5), 3, 2, 1, (-2, -3), 8, 1, 1),  # negative crops: zeros around
    ((32, 32), 4, 2, 1, (1, 1), 64, 1, 2),  # the benchmark's layer: many threads' rows
]


@pytest.mark.parametrize("channels_first", [False, True])  # True: PyTorch's layout, moved by the C transpose
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial, k, s, d, crops, groups, multiplier, batch", COMPILED_CASES)
def test_compiled_depthwise_form_equals_scatter(spatial, k, s, d, crops, groups, multiplier, batch, dtype,
                                                channels_first, poisoned_empty):
    from unittest import mock

    from tconv.kernels import phase

    _compiled_built()
    axes = tuple(AxisGeometry(i, k, s, d, *crops) for i in spatial)
    geometry = Geometry(axes, groups=groups)
    rng = np.random.default_rng(21)
    x = rng.normal(size=(batch, *spatial, groups)).astype(dtype)
    if channels_first:  # the same values, stored (N, C, *spatial)
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, -1, 1)), 1, -1)
    w = rng.normal(size=(groups, multiplier, *(k,) * len(spatial))).astype(dtype)
    reference = transposed_internal(x.astype(np.float64), w.astype(np.float64), geometry, "scatter")
    picked = []
    real_form = phase.form
    with mock.patch.object(phase, "form", lambda *args: picked.append(real_form(*args)) or picked[-1]):
        result = transposed_internal(x, w, geometry, "auto")
    assert picked == ["compiled"] and result.dtype == dtype
    terms = min(k, *spatial) ** len(spatial)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6 * terms
    np.testing.assert_allclose(result, reference, rtol=0, atol=tolerance * np.abs(reference).max())


def test_without_the_c_loops_depthwise_takes_the_rows_form(monkeypatch):
    from tconv import _native
    from tconv.kernels import phase

    ax = AxisGeometry(8, 4, 2, 1, 1, 1)
    problem = _core.Problem(np.ones((1, 8, 8, 4, 1), np.float32), np.ones((4, 1, 1, 4, 4), np.float32), (ax, ax),
                            ((1, 16), (1, 16)))
    if _native.library() is not None:
        assert phase.form(problem) == "compiled"
    monkeypatch.setattr(_native, "library", lambda: None)
    assert phase.form(problem) == "rows"
    # integers are summed exactly in int64, which the C loop does not do
    monkeypatch.undo()
    assert phase.form(_core.Problem(problem.x.astype(np.int64), problem.w_grouped.astype(np.int64),
                                    problem.axes, problem.window)) == "rows"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_process_without_the_c_loops_computes_depthwise_layers_in_numpy(env, tmp_path):
    code = """
import sys
import numpy as np, tconv
print(tconv.native_status())
rng = np.random.default_rng(3)
x, w = rng.normal(size=(2, 6, 5, 7)), rng.normal(size=(6, 1, 4, 3))
got = tconv.conv_transpose(x, w, stride=2, padding=1, groups=6)
np.testing.assert_allclose(got, tconv.conv_transpose(x, w, stride=2, padding=1, groups=6, algorithm="scatter"),
                           rtol=1e-12, atol=1e-12)
print("torch imported:", "torch" in sys.modules)
"""
    assert run_without_c_loops(code, env, tmp_path)[-1] == "torch imported: False"


def test_a_forked_child_runs_the_compiled_form_after_its_parent_did():
    """GNU OpenMP's thread pool does not survive fork(): without care the child waits forever."""
    import os
    import subprocess
    import sys

    _compiled_built()
    code = """
import os, sys
import numpy as np, tconv
from tconv import _native
x, w = np.ones((4, 64, 32, 32), np.float32), np.ones((64, 1, 4, 4), np.float32)
args = dict(stride=2, padding=1, groups=64)
assert _native.threads(4 * 64 * 64 * 64) == 2  # the parent's loop runs on an OpenMP team
expected = tconv.conv_transpose(x, w, **args)
pid = os.fork()
if pid == 0:
    ok = np.array_equal(tconv.conv_transpose(x, w, **args), expected) and _native.forked()
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    environment = dict(os.environ, OMP_NUM_THREADS="2")
    environment.pop("TCONV_NATIVE", None)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                              timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung in the C loop")
    assert done.returncode == 0, done.stderr[-2000:]


def test_numpy_engine_thread_count_follows_omp_num_threads(monkeypatch):
    from tconv import _native

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    _native.thread_count.cache_clear()
    try:
        assert _native.threads(_native.PARALLEL_MIN_ELEMENTS) == 3
        assert _native.threads(_native.PARALLEL_MIN_ELEMENTS - 1) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
        _native.thread_count.cache_clear()
        assert _native.thread_count() >= 1
    finally:
        monkeypatch.undo()
        _native.thread_count.cache_clear()


# Decoder layers in small (the benchmark's kinds) where auto runs the shifted form in float32:
# DCGAN k4 s2 p1, U-Net k3 s2 'same' (window shifted against the tiles), k2 s2 in 2-D and 3-D,
# grouped, a 'same' k5 s3, and a dilated one.
SHIFTED_LAYERS = [
    ((2, 16, 15), 20, 16, 4, 2, 1, 0, 1, 1),
    ((1, 24, 24), 24, 16, 3, 2, 1, 1, 1, 1),
    ((2, 4, 6), 32, 16, 2, 2, 0, 0, 1, 1),
    ((1, 3, 4, 5), 32, 16, 2, 2, 0, 0, 1, 1),
    ((2, 16, 16), 64, 32, 4, 2, 1, 0, 1, 2),
    ((1, 24, 20), 24, 16, 5, 3, 1, 2, 1, 1),
    ((1, 30, 30), 24, 16, 3, 2, 2, 1, 2, 1),
]


@pytest.mark.parametrize("shape, ci, co, k, s, p, op, d, groups", SHIFTED_LAYERS)
def test_auto_runs_the_shifted_form_in_float32_and_matches_float64_scatter(shape, ci, co, k, s, p, op, d, groups):
    from unittest import mock

    from tconv.kernels import phase

    rng = np.random.default_rng(11)
    batch, *spatial = shape
    x = rng.normal(size=(batch, ci, *spatial))
    w = rng.normal(size=(ci, co // groups, *(k,) * len(spatial)))
    args = dict(stride=s, padding=p, output_padding=op, dilation=d, groups=groups)
    reference = tconv.conv_transpose(x, w, algorithm="scatter", **args)
    forms = []
    real_form = phase.form
    with mock.patch.object(phase, "form", lambda *a: forms.append(real_form(*a)) or forms[-1]):
        result = tconv.conv_transpose(x.astype(np.float32), w.astype(np.float32), algorithm="auto", **args)
    assert forms == ["shifted"]
    assert result.dtype == np.float32 and result.shape == reference.shape
    # float32 rounding, scaled by the number of terms per output
    terms = ci // groups * k ** len(spatial)
    np.testing.assert_allclose(result, reference, rtol=0, atol=1e-6 * terms * np.abs(reference).max())


def test_blas_gemm_accumulates_into_a_column_block():
    from tconv.kernels import _blas

    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64):
        a = rng.normal(size=(40, 30)).astype(dtype)[3:20, 2:9]  # rows with a stride, not contiguous
        b = rng.normal(size=(7, 40)).astype(dtype)[:, 5:17]
        c = rng.normal(size=(17, 40)).astype(dtype)
        expected = c.copy()
        expected[:, 10:22] += a.astype(np.float64) @ b
        _blas.gemm(a, b, c[:, 10:22], accumulate=True)
        np.testing.assert_allclose(c, expected, rtol=1e-5)
        expected[:, 10:22] = a.astype(np.float64) @ b
        _blas.gemm(a, b, c[:, 10:22], accumulate=False)
        np.testing.assert_allclose(c, expected, rtol=1e-5)
    # NumPy's wheels bundle OpenBLAS, which this environment installs: the BLAS path is the one tested above
    assert _blas.AVAILABLE and _blas.accepts(a, b, c[:, 10:22]) and "blas" in _blas.library().lower()


def test_blas_gemm_uses_numpys_own_blas_so_no_second_thread_pool_runs():
    # a second OpenBLAS (SciPy's) in the process fights NumPy's spinning threads; ours must be
    # the copy NumPy's wheel bundles, already mapped into this process by NumPy itself
    import os

    from tconv.kernels import _blas

    library = _blas.library()
    assert os.path.basename(os.path.dirname(library)) in ("numpy.libs", ".dylibs"), library
    assert "scipy.libs" not in library
    if os.path.exists("/proc/self/maps"):
        with open("/proc/self/maps") as maps:
            assert library in {line.split()[-1] for line in maps if "/" in line}


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_blas_gemm_without_a_blas_or_for_integers_falls_back_to_numpy(monkeypatch, dtype):
    from tconv.kernels import _blas, phase

    if dtype == np.float64:  # as if NumPy's BLAS could not be found
        monkeypatch.setattr(_blas, "_function", lambda kind: None)
        problem = np.zeros((1, 32, 32, 1, 128)), np.zeros((1, 128, 64, 3, 3))
        ax = tconv.AxisGeometry(32, 3, 2, 1, 1, 0)
        assert phase.form(_core.Problem(*problem, (ax, ax), ((1, 65), (1, 65)))) == "taps"  # not shifted
    a = np.arange(12, dtype=dtype).reshape(3, 4)
    b = np.arange(8, dtype=dtype).reshape(4, 2)
    c = np.ones((3, 5), dtype)
    _blas.gemm(a, b, c[:, 1:3], accumulate=True)
    assert c[:, 1:3].tolist() == (a @ b + 1).tolist() and c[:, 0].tolist() == [1, 1, 1]
    _blas.gemm(a, b, c[:, 1:3], accumulate=False)
    assert c[:, 1:3].tolist() == (a @ b).tolist()
    x = np.arange(2 * 3 * 4 * 4, dtype=dtype).reshape(2, 3, 4, 4)
    w = np.arange(3 * 8 * 3 * 3, dtype=dtype).reshape(3, 8, 3, 3) % 7
    expected = tconv.conv_transpose(x, w, stride=2, padding=1, algorithm="scatter")
    assert np.array_equal(tconv.conv_transpose(x, w, stride=2, padding=1, algorithm="phase"), expected)
