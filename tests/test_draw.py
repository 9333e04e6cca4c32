"""tconv.draw: structure of the pictures, numbers checked against the real PyTorch (and Keras), CLI errors."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from tconv.cli import main
from tconv.drawing import _scene as sc

PIL = pytest.importorskip("PIL.Image")


# --------------------------------------------------------------------------- numbers mode against real frameworks
def _torch_conv_transpose(torch, x, w, **args):
    """The real PyTorch result for one channel; x and w are integer arrays (1-D or 2-D)."""
    f = torch.nn.functional
    xt = torch.tensor(x, dtype=torch.float64)[None, None]
    wt = torch.tensor(w, dtype=torch.float64)[None, None]
    fn = f.conv_transpose1d if x.ndim == 1 else f.conv_transpose2d
    return fn(xt, wt, **args)[0, 0].numpy()


PYTORCH_CASES = [
    # (input, kernel, args)
    ((2, 2), 2, dict(stride=2, padding=1)),
    ((3, 3), 3, dict(stride=2, padding=1, output_padding=1)),
    ((3, 4), 3, dict(stride=2, padding=3, dilation=(2, 1))),
    ((2, 3), (2, 3), dict(stride=(1, 3), padding=(0, 1), output_padding=(0, 2))),
    ((12,), 5, dict(stride=2)),
    ((12,), 5, dict(stride=2, output_padding=1)),
    ((4,), 3, dict(stride=2, padding=3, output_padding=1, dilation=2)),
]


@pytest.mark.parametrize("view", ["scatter", "zero-insertion", "phase"])
@pytest.mark.parametrize("input_shape, kernel, args", PYTORCH_CASES)
def test_numbers_match_torch(torch, view, input_shape, kernel, args):
    d = tconv.draw(input_shape, kernel, "pytorch", view=view, numbers=True, **args)
    k = kernel if isinstance(kernel, tuple) else (kernel,) * len(input_shape)
    x = sc.default_values(input_shape, 4)
    w = sc.default_values(k, 2)
    expected = _torch_conv_transpose(torch, x, w, **args)
    assert d.values.shape == expected.shape
    np.testing.assert_array_equal(d.values, expected)
    # The last frame's output panel shows exactly these values.
    out_panel = d.frames[-1].panels[-1]
    shown = np.array([[int(t) for t in row] for row in out_panel.text]).reshape(expected.shape)
    np.testing.assert_array_equal(shown, expected)


@settings(max_examples=examples(25))
@given(
    i=st.integers(1, 5), k=st.integers(1, 4), s=st.integers(1, 3), d=st.integers(1, 2),
    p=st.integers(0, 3), op=st.integers(0, 2), seed=st.integers(0, 2**16),
)
def test_numbers_match_torch_any_1d(torch, i, k, s, d, p, op, seed):
    try:
        if tconv.geometry((i,), k, "pytorch", stride=s, dilation=d, padding=p, output_padding=op).empty:
            with pytest.raises(tconv.ConfigError, match="nothing to draw"):
                tconv.draw((i,), k, "pytorch", stride=s, dilation=d, padding=p, output_padding=op)
            return
    except tconv.ConfigError:
        return  # PyTorch rejects it too; the conventions' own tests cover that
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(i,))
    w = rng.integers(-3, 4, size=(k,))
    expected = _torch_conv_transpose(torch, x, w, stride=s, dilation=d, padding=p, output_padding=op)
    for view in ("scatter", "zero-insertion", "phase"):
        got = tconv.draw((i,), k, "pytorch", view=view, input_values=x, kernel_values=w,
                         stride=s, dilation=d, padding=p, output_padding=op)
        np.testing.assert_array_equal(got.values, expected)


def test_numbers_match_tconv_conv_transpose_when_present():
    try:
        from tconv.kernels import conv_transpose
    except ImportError:
        pytest.skip("tconv.kernels (the numerical engine) is not in this build")
    for input_shape, kernel, args in PYTORCH_CASES:
        d = tconv.draw(input_shape, kernel, "pytorch", numbers=True, **args)
        k = kernel if isinstance(kernel, tuple) else (kernel,) * len(input_shape)
        x = sc.default_values(input_shape, 4).astype(np.float64)[None, None]
        w = sc.default_values(k, 2).astype(np.float64)[None, None]
        out = np.asarray(conv_transpose(x, w, framework="pytorch", **args))
        np.testing.assert_allclose(out.reshape(d.values.shape), d.values)


def test_compare_numbers_match_torch(torch):
    # Keras's window comes from the geometry (whose conformance tests run real Keras); the values from real torch.
    d = tconv.draw((3, 3), 3, "keras", strides=2, padding="same", numbers=True,
                   compare=["pytorch:stride=2,padding=1,output_padding=1"])
    x = sc.default_values((3, 3), 4)
    w = sc.default_values((3, 3), 2)
    full = _torch_conv_transpose(torch, x, w, stride=2)
    g = d.geometries[0]
    window = tuple(slice(b, n - e) for b, n, e in zip(g.crop_begin, g.full_shape, g.crop_end))
    np.testing.assert_array_equal(d.values[0], full[window])
    np.testing.assert_array_equal(d.values[1], _torch_conv_transpose(torch, x, w, stride=2, padding=1, output_padding=1))
    # Same size, different windows: Keras crops at the end, PyTorch at the start.
    assert d.steps == ["same size 6x6, different windows: the outputs are shifted"]
    assert not np.array_equal(d.values[0], d.values[1])


# --------------------------------------------------------------------------- overlap counts
def test_overlap_counts_match_torch_of_ones(torch):
    d = tconv.draw((8, 8), 3, "keras", view="overlap", strides=2, padding="same")
    panel = d.frames[0].panels[0]
    counts = np.array([[int(t) for t in row] for row in panel.text])
    ones = _torch_conv_transpose(torch, np.ones((8, 8)), np.ones((3, 3)), stride=2)
    np.testing.assert_array_equal(counts, ones)  # the full output, before the crop
    assert set(np.unique(counts)) == {1, 2, 4}  # the checkerboard


@settings(max_examples=examples(30))
@given(i=st.integers(1, 9), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3))
def test_phase_counts_follow_the_formula(i, k, s, d):
    ax = tconv.geometry((i,), k, "pytorch", stride=s, dilation=d)[0]
    counts = sc.phase_counts(ax)  # read off a stamped count
    K = ax.dilated_kernel
    if (i - 1) * s - K + 2 >= s:  # long enough for every phase to have an interior cell
        for r, n in counts.items():
            taps_on_phase = sum(1 for t in range(k) if (t * d) % s == r)
            if d == 1:
                assert n == (K - 1 - r) // s + 1
            assert n == taps_on_phase


# --------------------------------------------------------------------------- frames and steps
def test_scatter_has_one_frame_per_input_cell_and_a_crop():
    g = tconv.geometry((2, 3), 2, "pytorch", stride=2, padding=1)
    d = tconv.draw(g)
    assert len(d.frames) == len(d.steps) == 2 * 3 + 1
    assert d.steps[0] == "x[0,0] stamps the kernel at (0,0)"
    assert d.steps[-1].endswith("keeps the window: output 2x4")


def test_zero_insertion_has_one_frame_per_output_cell_or_row():
    small = tconv.draw((2, 2), 2, "pytorch", view="zero-insertion", stride=2, padding=1)
    assert len(small.frames) == int(np.prod(small.geometry.output_shape)) == 4
    big = tconv.draw((4, 4), 3, "pytorch", view="zero-insertion", stride=2)
    assert len(big.frames) == big.geometry.output_shape[0]  # 81 cells: one frame per output row


def test_large_inputs_are_summarised_quickly():
    d = tconv.draw((500, 700), 3, "keras", strides=2, padding="same")
    assert d.summarised and len(d.frames) == 1
    text = d.text()
    assert "full output 1001x1401 -> output 1000x1400" in text
    assert "too large to draw cell by cell" in text
    svg = d.svg()
    assert svg.count('id="cell-') == 0  # sizes, not cells
    with pytest.raises(tconv.ConfigError, match="numbers mode"):
        tconv.draw((500, 700), 3, numbers=True)


def test_three_dimensional_layers_get_a_clear_message():
    with pytest.raises(tconv.ConfigError, match="1-D and 2-D"):
        tconv.draw((3, 3, 3), 3)


def test_wrapping_layer_has_no_zero_insertion_view():
    g = tconv.Geometry((tconv.AxisGeometry(4, 3, 2, 1, 0, 1, wrap=True),))
    with pytest.raises(tconv.ConfigError, match="scatter"):
        tconv.draw(g, view="zero-insertion")
    assert tconv.draw(g).steps[-1].endswith("output 8")


# --------------------------------------------------------------------------- files
def test_png_size_matches_the_figure():
    d = tconv.draw((2, 2), 2, "pytorch", stride=2, padding=1)
    fig = d.figure()
    w_in, h_in = fig.get_size_inches()
    image = PIL.open(io.BytesIO(d.png()))
    assert image.size == (round(w_in * 100), round(h_in * 100))


def test_gif_has_one_frame_per_step(tmp_path):
    path = tmp_path / "p1.gif"
    d = tconv.draw((2, 2), 2, "pytorch", stride=2, padding=1, output=path)
    image = PIL.open(path)
    assert image.n_frames == len(d.steps) == 5
    durations = []
    for n in range(image.n_frames):
        image.seek(n)
        durations.append(image.info["duration"])
    assert min(durations) >= 500  # a person can follow it
    assert path.stat().st_size < 200_000


def test_svg_has_one_element_per_cell():
    g = tconv.geometry((3, 3), 3, "keras", strides=2, padding="same")
    svg = tconv.draw(g).svg()
    (full_r, full_c) = g.full_shape
    assert len(re.findall(r'id="cell-2-\d+-\d+"', svg)) == full_r * full_c  # the full-output panel
    assert len(re.findall(r'id="cell-0-\d+-\d+"', svg)) == 9  # the input
    assert "kept window (the output)" in svg and "cropped by the padding rule" in svg
    assert "<text" in svg  # text stays text: small files, searchable


def test_negative_crop_adds_cells_for_the_zeros():
    g = tconv.geometry((2,), 2, "keras", strides=3, padding="valid")  # Keras adds zeros when s > K
    assert g.crop_end[0] < 0
    d = tconv.draw(g)
    final = d.frames[-1].panels[-1]
    assert final.shape[1] == g.full_shape[0] - g.crop_end[0]
    assert int((final.kinds == sc.EXTEND).sum()) == -g.crop_end[0]
    assert "add 1 zero at the end" in d.text()


def test_cropped_cells_are_the_full_output_minus_the_window():
    g = tconv.geometry((3, 3), 3, "pytorch", stride=2, padding=1, output_padding=1)
    final = tconv.draw(g).frames[-1].panels[-1]
    cropped = int((final.kinds == sc.CROP).sum())
    assert cropped == int(np.prod(g.full_shape)) - int(np.prod(g.output_shape))
    assert final.kinds[0, 3] == sc.CROP and final.kinds[6, 6] != sc.CROP  # PyTorch crops at the start


def test_explanation_shows_a_diagram_in_notebooks():
    html = tconv.explain((3, 3), 3, framework="keras", strides=2, padding="same")._repr_html_()
    assert html.count("<svg") == 1 and "Keras" in html and "<pre>" in html


# --------------------------------------------------------------------------- terminal
def test_terminal_text_shows_sizes_window_and_steps():
    text = tconv.draw((3,), 3, "keras", strides=2, padding="same", numbers=True).text()
    assert "full 7 -> output 6" in text
    assert "length: crop 1 at the end -> keep 0..5 of 0..6" in text
    # the kept window boxed, the cropped value outside, the indices above the values
    assert "index │0 1 2 3 4 5│6\ncell  │1 2 3 4 5 6│3" in text
    assert "x[2]=3 adds 3*w at (4)" in text


def test_terminal_compare_names_both_rules(capsys):
    assert main(["draw", "3x3", "-k", "3", "-s", "2", "--compare", "keras:padding=same",
                 "pytorch:padding=1,output_padding=1"]) == 0
    out = capsys.readouterr().out
    assert "Keras strides=2, padding='same': rows and cols: crop 1 at the end" in out
    assert "PyTorch stride=2, padding=1, output_padding=1: rows and cols: crop 1 at the start" in out


# --------------------------------------------------------------------------- CLI
def test_cli_writes_each_format(tmp_path, capsys):
    for ext, magic in (("svg", b"<?xml"), ("png", b"\x89PNG"), ("gif", b"GIF89a"), ("txt", b"PyTorch")):
        path = tmp_path / f"layer.{ext}"
        assert main(["draw", "2", "-k", "2", "-s", "2", "--out", str(path)]) == 0
        assert path.read_bytes().startswith(magic)
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["draw", "3x3", "-k", "3", "--out", "x.bmp"], "unknown picture format 'bmp'"),
    (["draw", "3x3", "-k", "3", "--out", "/nonexistent-dir/x.png"], "cannot write"),
    (["draw", "3x3", "-k", "3", "--view", "sideways"], "unknown view 'sideways'"),
    (["draw", "3x3", "-k", "3", "--format", "png"], "needs --out"),
    (["draw", "3x3x3", "-k", "3"], "1-D and 2-D"),
    (["draw", "3x3", "-k", "3", "-s", "2", "--op", "2"], "output_padding=2"),
    (["draw", "3x3", "-k", "3", "--compare", "keras:padding=same"], "at least two"),
    (["draw", "3x3", "-k", "3", "--compare", "keras:same", "pytorch:padding=1"], "name=value"),
    (["draw", "300x300", "-k", "3", "--numbers"], "numbers mode"),
    (["draw", "3x3", "-k", "3", "--view", "overlap", "--numbers"], "counts kernel taps"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("tconv: error:")


def test_tconv_draw_is_the_function_after_its_module_is_imported():
    import tconv.drawing as module

    assert tconv.draw is module.draw
    assert tconv.drawing.draw(2, 2).steps == tconv.draw(2, 2).steps


def test_terminal_flag_prints_text_and_writes_the_file(tmp_path, capsys):
    path = tmp_path / "x.svg"
    assert main(["draw", "2x2", "-k", "2", "-s", "2", "-p", "1", "--view", "zero-insertion", "--out", str(path), "--terminal"]) == 0
    out = capsys.readouterr().out
    assert "zero-inserted input 3x3" in out and "border K-1-crop: 0 before, 0 after" in out
    assert path.read_text().count('id="cell-0-') == 9


@pytest.mark.parametrize("input_shape, args", [((2, 2), dict(stride=2, padding=1)), ((4, 4), dict(stride=2))])
def test_zero_insertion_steps_are_the_calculation(torch, input_shape, args):
    d = tconv.draw(input_shape, 3, "pytorch", view="zero-insertion", numbers=True, **args)
    expected = _torch_conv_transpose(torch, sc.default_values(input_shape, 4), sc.default_values((3, 3), 2), **args)
    shown = np.zeros_like(expected)
    for step in d.steps:
        cell = re.match(r"out\[(\d+),(\d+)\] = .* = (-?\d+)$", step)
        row = re.match(r"output row (\d+): .*out\[\d+,:\] = ([-\d ]+)$", step)
        if cell:
            shown[int(cell[1]), int(cell[2])] = int(cell[3])
        elif row:
            shown[int(row[1])] = [int(v) for v in row[2].split()]
        else:
            pytest.fail(f"step {step!r} does not show its sum")
    np.testing.assert_array_equal(shown, expected)


# --------------------------------------------------------------------------- the phase view
def test_phase_view_has_one_frame_per_phase_with_its_taps(torch):
    d = tconv.draw((3, 3), 3, "pytorch", view="phase", numbers=True, stride=2, padding=1, output_padding=1)
    assert len(d.frames) == 1 + 4 + 1  # the phase map, 2x2 phases, the interleaving
    # the taps of each phase are the geometry's: output_phases on each axis
    rows, cols = d.geometry[0].output_phases(), d.geometry[1].output_phases()
    for frame, ((rr, _, tr), (rc, _, tc)) in zip(d.frames[1:-1], [(a, b) for a in rows for b in cols]):
        assert frame.title.startswith(f"phase ({rr},{rc}): {len(tr) * len(tc)} tap")
        sub = frame.panels[1]
        assert (sub.kinds == sc.KERNEL).sum() == len(tr) * len(tc)
    x, w = sc.default_values((3, 3), 4), sc.default_values((3, 3), 2)
    expected = _torch_conv_transpose(torch, x, w, stride=2, padding=1, output_padding=1)
    # each phase's small output is every 2nd cell of the real result
    for frame, (a, b) in zip(d.frames[1:-1], [(0, 0), (0, 1), (1, 0), (1, 1)]):
        small = np.array([[int(t) for t in row] for row in frame.panels[2].text])
        np.testing.assert_array_equal(small, expected[a::2, b::2])
    assert d.frames[-1].title.startswith("interleave")


def test_phase_view_gaps_and_cli(tmp_path, capsys):
    d = tconv.draw(3, 1, "pytorch", view="phase", stride=3)  # stride > kernel: two phases get no tap
    assert "r=0: 1 tap" in d.steps[1] and len(d.frames) == 5  # output 7: r=0 has the tap; r=1, r=2 none
    assert all("no tap reaches it" in step for step in d.steps[2:4])
    path = tmp_path / "phase.svg"
    assert main(["draw", "4x4", "-k", "3", "-s", "2", "--view", "phase", "--out", str(path)]) == 0
    assert path.read_text().count("<svg") == 1
    assert main(["draw", "4", "-k", "3", "-s", "2", "--view", "phase", "--numbers"]) == 0
    out = capsys.readouterr().out
    assert "x[q+0]" in out and "interleave" in out
    assert tconv.draw((50, 50), 3, "pytorch", view="phase", stride=2).summarised


# --------------------------------------------------------------------------- the resize view (seed 003)
@pytest.mark.parametrize("input_shape, kernel, stride, padding", [((3, 3), 4, 2, 1), ((3, 4), 3, 2, 0), ((4,), 3, 2, 1),
                                                                 ((2, 3), (4, 3), (3, 2), (1, 0))])
def test_resize_view_is_real_interpolate_plus_conv(torch, input_shape, kernel, stride, padding):
    F = torch.nn.functional
    d = tconv.draw(input_shape, kernel, "pytorch", view="resize", stride=stride, padding=padding)
    assert len(d.frames) == 3 and d.numbers
    up, w1, conv = (np.array([[int(t) for t in row] for row in p.text]) for p in d.frames[1].panels)
    x = np.array([[int(t) for t in row] for row in d.frames[0].panels[0].text])
    one_d = len(input_shape) == 1
    t = lambda a: torch.tensor(a, dtype=torch.float64)[None, None]  # noqa: E731
    s = stride if isinstance(stride, tuple) else (stride,) * len(input_shape)
    if one_d:
        real_up = F.interpolate(t(x[0]), scale_factor=s[0], mode="nearest")[0, 0].numpy()
        pads = [int(n) for n in re.search(r"padding (\d+)", d.steps[1]).groups()]
        real = F.conv1d(t(up[0]), t(w1[0]), padding=pads[0])[0, 0].numpy()
        np.testing.assert_array_equal(up[0], real_up)
        np.testing.assert_array_equal(conv[0], real)
    else:
        real_up = F.interpolate(t(x), scale_factor=s, mode="nearest")[0, 0].numpy()
        pads = tuple(int(n) for n in re.search(r"padding (\d+),(\d+)", d.steps[1]).groups())
        real = F.conv2d(t(up), t(w1), padding=pads)[0, 0].numpy()
        np.testing.assert_array_equal(up, real_up)
        np.testing.assert_array_equal(conv, real)
    # the last frame's kept window of the real F.conv_transpose with the box-filtered kernel is the same numbers
    v = np.array([[int(t_) for t_ in row] for row in d.frames[2].panels[1].text])
    full = (F.conv_transpose1d(t(x[0]), t(v[0]), stride=s[0])[0, 0].numpy()[None] if one_d else
            F.conv_transpose2d(t(x), t(v), stride=s)[0, 0].numpy())
    box = d.frames[2].panels[2].boxes[0]
    np.testing.assert_array_equal(full[box.r0:box.r1, box.c0:box.c1], conv)
    np.testing.assert_array_equal(np.asarray(d.values).reshape(conv.shape), conv)


def test_resize_view_refuses_what_no_resize_conv_is():
    with pytest.raises(tconv.ConfigError, match="shorter than its stride"):
        tconv.draw(4, 1, "pytorch", view="resize", stride=2)
    with pytest.raises(tconv.ConfigError, match="dilated"):
        tconv.draw(4, 3, "pytorch", view="resize", stride=2, dilation=2)
