"""``phase``: the sub-pixel (polyphase) decomposition. No inserted zero is ever stored or multiplied.

Along one axis, output position ``p`` receives ``x[j] @ w[t]`` exactly when
``p = j*s + d*t``. Split the outputs by their *phase* ``r = p mod s``: the taps
that can reach phase ``r`` are those with ``d*t = r (mod s)``, and for them
``j = q - c_t`` with ``q = (p - r)/s`` and ``c_t = (d*t - r)/s``. So

    out[q*s + r] = sum over phase-r taps of x[q - c_t] @ w[t]

is a plain stride-1 correlation of the *undilated* input with the phase's
sub-kernel (every ``s``-th tap). With several axes the phases are the
``prod(s)`` combinations, and the results are interleaved into the output
(a.k.a. pixel shuffle). Phases with no tap (``s > d*(k-1)+1``) stay zero. Only
the kept window is computed. Five forms of the same sums (:data:`FORMS`,
picked by :func:`form`) differ in the memory traffic around the GEMMs (the depthwise forms have none):

* ``shifted``: flatten the padded input to ``(rows, Ci)``; a shift is then a
  row offset, so each tap is a GEMM of a plain view, accumulated by BLAS into
  the phases' columns of one buffer, which one transposing copy interleaves;
* ``taps`` (kn2row): one GEMM of the input by all taps, then per phase a sum
  of shifted planes (moves ``Co``-wide rows: cheaper when ``Co < Ci``);
* ``gathered`` (im2col): per phase, stack the shifted input views side by side
  and run one GEMM (also the depthwise multiply-accumulate);
* ``rows`` (depthwise only): no GEMM at all, one fused multiply-accumulate
  (``np.einsum``) per phase of the leading axes over whole output rows, the
  last axis' phases interleaved by copying the input once per phase;
* ``compiled`` (depthwise only, float32/float64, where tconv's C loops are
  built: :func:`tconv.native_status`): the same sums in one C pass, output
  pixel by output pixel, each reading exactly its phase's taps (the
  interleave is the order of the writes). NumPy's own loops run at a few
  multiply-adds per nanosecond, which leaves ``rows`` several times behind
  torch's channels-last kernel on the benchmark's depthwise layer (the
  ``phase, NumPy ops`` column of ``benchmarks/results/algorithms.md``); this
  form is what keeps ``auto`` within 2x there. ``TCONV_NATIVE=0`` switches it off.

This answers "how do I compute a transposed convolution without increasing the
input's spatial size first?": run the ``prod(s)`` small convolutions on the
input as it is and interleave their outputs.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import product
from math import gcd, prod
from typing import NamedTuple

import numpy as np

from .. import _native
from . import _blas
from ._core import Problem, correlate, pad_or_slice, tap_products

__all__ = ["compute", "form", "shifted_plan", "shifted_places", "first_writes", "covers", "FORMS"]


def compute(problem: Problem) -> np.ndarray:
    """The window of the transposed convolution, by phase decomposition (see the module docstring)."""
    name = form(problem)
    if name == "compiled":  # its C tables are cached per geometry: no phase tables needed
        return _by_compiled_pixels(problem)
    per_axis = [ax.phases(start, stop) for ax, (start, stop) in zip(problem.axes, problem.window)]
    return FORMS[name](problem, per_axis)


def _compiled_applies(problem: Problem) -> bool:
    """Whether :func:`form` picks ``"compiled"``: a float32/float64 depthwise layer, with the C loops built."""
    groups, ci = problem.w_grouped.shape[:2]
    return ci == 1 and groups > 1 and _native.can_depthwise_last(np.result_type(problem.x, problem.w_grouped))


#: the shifted-GEMM form computes the padded grid's border rows too; above this many
#: multiply-adds per useful one, the other forms' extra memory traffic costs less
SHIFTED_WASTE_LIMIT = 1.3


def form(problem: Problem, per_axis=None) -> str:
    """Which of :data:`FORMS` computes this problem's phases.

    * ``"shifted"`` for float32/float64 layers that mix channels (not
      depthwise), have at least 64 bytes of output channels, and whose padded
      grid costs at most :data:`SHIFTED_WASTE_LIMIT` times the useful
      multiply-adds, when NumPy's BLAS can accumulate in place
      (:func:`tconv.kernels._blas.in_place`; without it the sums cost what they
      cost the other forms). Narrow outputs keep ``taps``' channel-major planes
      (DCGAN's 64->3), and small inputs (DCGAN's 4x4 and 8x8) its GEMM without
      padding rows;
    * ``"compiled"`` for float32/float64 depthwise layers (one input channel
      per group) where the C loops are built, else ``"rows"``: their "GEMMs"
      are ``1 x Co``, so what counts is summing each output's taps in one pass
      (``rows``: a fused multiply-accumulate over long rows; ``compiled``: one
      C pass, output pixel by output pixel);
    * otherwise ``"taps"`` when the layer narrows its channels (``Co < Ci``), and
      ``"gathered"`` (im2col) when not.

    The rule is a fixed heuristic, not a measurement, and not the fastest form
    on every layer: ``python benchmarks/bench_numpy_parts.py`` times every form
    on the layers of ``benchmarks/bench_algorithms.py`` beside the one this rule
    picks (on 7 of the 9 layers that ``auto`` sends to ``phase`` the rule's
    pick was the fastest there; on DCGAN 2 and HiFi-GAN another form took
    9-16% less time). docs/algorithms.md describes the forms.

    >>> import numpy as np
    >>> from tconv.geometry import AxisGeometry
    >>> ax = AxisGeometry(32, 3, 2, 1, 1, 0)  # U-Net's k3 s2 'same' up-step, 128 -> 64 channels
    >>> x, w = np.zeros((1, 32, 32, 1, 128), np.float32), np.zeros((1, 128, 64, 3, 3), np.float32)
    >>> form(Problem(x, w, (ax, ax), ((1, 65), (1, 65))))
    'shifted'
    """
    groups, ci, co = problem.w_grouped.shape[:3]
    dtype = np.result_type(problem.x, problem.w_grouped)
    if ci == 1 and groups > 1:
        return "compiled" if _compiled_applies(problem) else "rows"
    if per_axis is None:
        per_axis = [ax.phases(start, stop) for ax, (start, stop) in zip(problem.axes, problem.window)]
    narrow = co * dtype.itemsize < 64
    if not narrow and _blas.in_place(dtype) and _shifted_plan(problem, per_axis).waste <= SHIFTED_WASTE_LIMIT:
        return "shifted"
    return "taps" if co < ci else "gathered"


def _padding(axes, per_axis) -> list[tuple[int, int]]:
    """Per axis, how far the phases' taps reach before the input's start and past its end."""
    amounts = []
    for ax, phases in zip(axes, per_axis):
        before = max([c - q0 for _, _, q0, taps in phases for _, c in taps] + [0])
        after = max([q0 + count - 1 - c - (ax.input_size - 1) for _, count, q0, taps in phases for _, c in taps] + [0])
        amounts.append((before, after))
    return amounts


def _by_gathered_taps(problem: Problem, per_axis) -> np.ndarray:
    """Each phase as im2col: stack the phase's shifted input views (Ci wide), then one GEMM."""
    x, w, axes = problem.x, problem.w, problem.axes
    # pad the (undilated) input only by what the border phases reach past its edges
    amounts = _padding(axes, per_axis)
    source = pad_or_slice(x, amounts)
    # every output position belongs to exactly one phase; only phases without taps leave zeros
    out = problem.empty_output(zeros=not _covers(problem, per_axis))
    for combination in product(*per_axis):
        origin = tuple(q0 + before for (_, _, q0, _), (before, _) in zip(combination, amounts))
        size = tuple(count for _, count, _, _ in combination)
        taps = list(product(*(taps for *_, taps in combination)))
        offsets = [tuple(-c for _, c in tap) for tap in taps]
        # (G, T, Ci, Co): the phase's sub-kernel, gathered in one copy in product() order
        sub_kernel = w[(slice(None), *np.ix_(*([t for t, _ in taps_of_axis] for *_, taps_of_axis in combination)))]
        w_taps = sub_kernel.reshape(w.shape[0], len(taps), *w.shape[-2:])
        values = correlate(source, origin, size, offsets, w_taps)
        target = tuple(ax.strided(o0, count)
                       for (o0, count, _, _), ax in zip(combination, axes))
        out[(slice(None), *target)] = values
    return out


def _by_tap_planes(problem: Problem, per_axis) -> np.ndarray:
    """Each phase as kn2row: the input times each tap (one GEMM for all), then shifted sums.

    ``planes[j, t] = x[j] @ w[t]``; phase ``r`` is ``sum over its taps of
    planes[q - c_t, t]``, accumulated in a contiguous buffer and placed once.
    This moves ``Co``-wide rows where im2col moves ``Ci``-wide ones, so it is
    the cheaper order when the layer narrows its channels.
    """
    x, axes = problem.x, problem.axes
    groups, ci, co, *kernel = problem.w_grouped.shape
    covered = _covers(problem, per_axis)
    # Wide channel rows accumulate straight into the strided output (each row is a long
    # contiguous run). Narrow ones (a few output channels) would make every NumPy inner loop
    # a few elements long, so planes, sums and output are then stored channel-major (each
    # channel a contiguous image, viewed in the canonical axis order) and each phase is
    # summed in a buffer and placed once (DCGAN's 64->3 layer: 4.9 -> 1.9 ms).
    direct = co * np.result_type(x, problem.w_grouped).itemsize >= 64
    planes = tap_products(problem, channel_major=not direct)
    out = problem.empty_output(zeros=not covered, channel_major=not direct)
    for combination in product(*per_axis):
        size = tuple(count for _, count, _, _ in combination)
        target = (slice(None),) + tuple(ax.strided(o0, count)
                                        for (o0, count, _, _), ax in zip(combination, axes))
        acc = out[target] if direct else None
        started = False
        for tap in product(*(taps_of_axis for *_, taps_of_axis in combination)):
            # output m of the phase reads input j = q0 + m - c_t, inside [0, input_size)
            src, dst, whole = [slice(None)], [slice(None)], True
            for (_, count, q0, _), (_, c), ax in zip(combination, tap, axes):
                m_lo, m_hi = max(0, c - q0), min(count, ax.input_size + c - q0)
                if m_lo >= m_hi:
                    break
                whole = whole and (m_lo, m_hi) == (0, count)
                src.append(slice(q0 + m_lo - c, q0 + m_hi - c))
                dst.append(slice(m_lo, m_hi))
            else:
                plane = planes[(*src, slice(None), np.ravel_multi_index([t for t, _ in tap], kernel))]
                if not started and whole:
                    if direct:
                        acc[...] = plane
                    else:
                        acc = plane.copy(order="K")  # keeps the channel-major layout
                elif not started:
                    if direct:
                        acc[...] = 0
                    else:
                        acc = np.moveaxis(np.zeros((groups, co, x.shape[0], *size), out.dtype), (0, 1), (-2, -1))
                    acc[tuple(dst)] += plane
                else:
                    acc[tuple(dst)] += plane
                started = True
        if not started:
            out[target] = 0
        elif not direct:
            out[target] = acc
    return out


class _ShiftedPlan(NamedTuple):
    grid: tuple[int, ...]  # the padded input's spatial shape (rows of the flat buffers)
    origin: tuple[int, ...]  # where input position 0 sits in the grid, per axis
    front: int  # zero rows before the grid: reads before the first row's start land there
    gemms: list  # (row offset of the source, phase indices, their taps, first row, stop row), widest first
    combinations: list  # the phases (one per-axis phase index each), in column order
    waste: float  # multiply-adds computed per useful one
    tiling: "_Tiling | None"  # how the phases interleave in one copy, when they can


def _shifted_plan(problem: Problem, per_axis) -> _ShiftedPlan:
    """Where everything sits in :func:`_by_shifted_gemms`' flat buffers (cached per geometry)."""
    return shifted_plan(problem.axes, per_axis, problem.batch)


def shifted_plan(axes, per_axis, batch: int) -> _ShiftedPlan:
    """The shifted form's layout for these axes' phases (from :meth:`AxisGeometry.phases`) and batch size.

    It says nothing about memory order: NumPy's form stores positions as rows and
    channels as columns, ``tconv.torch``'s ``shifted`` strategy the transpose
    (channels as rows, so its phases come out channel-major, as NCHW wants).
    Cached per geometry.

    Here (k3 s2, keeping full[1:9]) shift 0 feeds both phases in one GEMM (taps
    0 and 1), and tap 2 feeds phase 0 from one row earlier (offset -1):

    >>> from tconv.geometry import AxisGeometry
    >>> ax = AxisGeometry(4, 3, 2, 1, 1, 0)
    >>> plan = shifted_plan((ax,), [ax.phases(1, 9)], batch=1)
    >>> plan.grid, [(offset, columns, taps) for offset, columns, taps, _, _ in plan.gemms]
    ((5,), [(0, [0, 1], [(0,), (1,)]), (-1, [0], [(2,)])])
    """
    key = tuple((ax.input_size, ax.stride, tuple((o0, count, q0, tuple(taps)) for o0, count, q0, taps in phases))
                for ax, phases in zip(axes, per_axis))
    return _plan(key, batch)


def _snake(ranges: list) -> list[tuple[int, ...]]:
    """The product of ``ranges`` with each inner run reversed every other step (a Gray-like order).

    >>> _snake([range(2), range(2)])
    [(0, 0), (0, 1), (1, 1), (1, 0)]
    """
    if len(ranges) == 1:
        return [(r,) for r in ranges[0]]
    rest = _snake(ranges[1:])
    return [(r, *c) for i, r in enumerate(ranges[0]) for c in (rest if i % 2 == 0 else rest[::-1])]


@lru_cache(maxsize=256)
def _plan(key, batch: int) -> _ShiftedPlan:
    per_axis = [phases for _, _, phases in key]
    grid, origin = [], []
    for a, (input_size, _, phases) in enumerate(key):
        # the grid holds every output q of a phase and every input q - c it reads
        before = max([c - q0 for _, _, q0, taps in phases for _, c in taps] + [0])
        high = max([q0 + count - 1 - min(0, *(c for _, c in taps)) for _, count, q0, taps in phases] + [input_size - 1])
        after = high - (input_size - 1)
        if a < len(key) - 1:
            grid.append(before + input_size + after)
            origin.append(before)
        else:
            # the last axis is padded after its end only: a read before a row's start lands
            # in the previous row's trailing zeros (or the zero rows in front of the grid)
            grid.append(input_size + max(before, after))
            origin.append(0)
            front = before
    row_strides = [prod(grid[a + 1:]) for a in range(len(grid))]
    image = prod(grid)

    def rows(combination):
        first = sum((per_axis[a][r][2] + origin[a]) * row_strides[a] for a, r in enumerate(combination))
        last = first + (batch - 1) * image + sum((per_axis[a][r][1] - 1) * row_strides[a] for a, r in enumerate(combination))
        return first, last + 1

    # per axis: input shift c -> the (phase, tap) pairs with a tap at that shift (one per phase)
    users_by_axis = []
    for phases in per_axis:
        by_shift: dict[int, list[tuple[int, int]]] = {}
        for r, (_, _, _, taps) in enumerate(phases):
            for t, c in taps:
                by_shift.setdefault(c, []).append((r, t))
        users_by_axis.append(sorted(by_shift.items()))
    useful = sum(batch * prod(per_axis[a][r][1] * len(per_axis[a][r][3]) for a, r in enumerate(c))
                 for c in product(*(range(len(phases)) for phases in per_axis)))

    def gemms_in(combinations):
        """The GEMMs when the phases' columns come in this order: one per run of adjacent users."""
        column = {combination: n for n, combination in enumerate(combinations)}
        gemms, computed = [], 0
        for shift in product(*users_by_axis):
            offset = -sum(c * stride for (c, _), stride in zip(shift, row_strides))
            users = sorted(((tuple(r for r, _ in u), tuple(t for _, t in u)) for u in product(*(pairs for _, pairs in shift))),
                           key=lambda user: column[user[0]])
            runs: list[list] = []
            for combination, tap in users:
                if runs and column[combination] == column[runs[-1][-1][0]] + 1:
                    runs[-1].append((combination, tap))
                else:
                    runs.append([(combination, tap)])
            for run in runs:
                extents = [rows(c) for c, _ in run]
                first, stop = min(e[0] for e in extents), max(e[1] for e in extents)
                gemms.append((offset, [column[c] for c, _ in run], [t for _, t in run], first, stop))
                computed += (stop - first) * len(run)
        return gemms, computed

    # Phases that read the input at the same shift share one wider (faster) GEMM only when
    # their columns are adjacent. The tile order (when there is one) also makes the final
    # interleave one transposing copy, half the time of a copy per phase on U-Net's k3 s2,
    # which outweighs the one more GEMM it needs there. Otherwise try the product orders,
    # per-axis reversed or snaking (which U-Net's k3 s2 would need), and keep the one with
    # the fewest GEMMs.
    tiling = _tiling(key, grid, origin)
    if tiling is not None:
        best = (tiling.order, *gemms_in(tiling.order))
    else:
        best = None
        for flips in product((False, True), repeat=len(per_axis)):
            ranges = [range(len(phases))[::-1] if flip else range(len(phases)) for phases, flip in zip(per_axis, flips)]
            for combinations in (list(product(*ranges)), _snake(ranges)):
                gemms, computed = gemms_in(combinations)
                if best is None or (len(gemms), computed) < (len(best[1]), best[2]):
                    best = (combinations, gemms, computed)
    combinations, gemms, computed = best
    gemms = sorted(gemms, key=lambda gemm: -len(gemm[1]))  # widest first: they can start phases
    return _ShiftedPlan(tuple(grid), tuple(origin), front, gemms, combinations, computed / max(useful, 1), tiling)


def _by_shifted_gemms(problem: Problem, per_axis) -> np.ndarray:
    """Each phase as a sum of GEMMs over row-shifted views of the flattened, padded input.

    Flatten the padded input to ``(rows, Ci)``: shifting it by ``c`` along an axis
    is then an offset of whole rows, a plain 2-D view. So every tap of every phase
    is one GEMM of such a view by the tap's ``Ci x Co`` matrix, accumulated by
    BLAS itself into the phase's columns of one ``(rows, phases, Co)`` buffer
    (:func:`tconv.kernels._blas.gemm`, ``beta = 1``): no column matrix, no tap
    planes and no separate sums, the memory traffic of the other forms. Phases
    that read the input at the same shift share one wider GEMM when their columns
    are adjacent. The price is the grid's padding rows, computed and discarded
    (``_ShiftedPlan.waste``). Each phase is then copied into the interleaved output.
    """
    plan = _shifted_plan(problem, per_axis)
    if not plan.gemms:  # no tap reaches the window
        return problem.empty_output()
    x = problem.x
    groups, ci, co = problem.w_grouped.shape[:3]
    batch, axes = problem.batch, problem.axes
    dtype = np.result_type(x, problem.w_grouped)
    image = prod(plan.grid)
    if plan.front == 0 and plan.grid == tuple(ax.input_size for ax in axes) and x.flags.c_contiguous and x.dtype == dtype:
        source = x.reshape(batch * image, groups * ci)  # nothing to pad: the input is the grid
    else:
        source = np.empty((plan.front + batch * image, groups * ci), dtype)
        source[:plan.front] = 0
        inside = source[plan.front:].reshape(batch, *plan.grid, groups, ci)
        for a, (o, ax) in enumerate(zip(plan.origin, axes)):  # zero only the padding
            before, after = [slice(None)] * (a + 2), [slice(None)] * (a + 2)
            before[-1], after[-1] = slice(0, o), slice(o + ax.input_size, None)
            inside[tuple(before)] = 0
            inside[tuple(after)] = 0
        inside[(slice(None), *(slice(o, o + ax.input_size) for o, ax in zip(plan.origin, axes)))] = x
    phases = len(plan.combinations)
    gemms = plan.gemms
    overwrite = first_writes(gemms, phases)
    values = (np.zeros if overwrite is None else np.empty)((batch * image, groups, phases, co), dtype)
    # (G, Ci, taps, Co): a transpose within each input channel's rows, cheaper than problem.w's
    # (whose strided gather took 5 ms of HiFi-GAN's 12); a run of consecutive taps is a view
    kernel = problem.w_grouped.shape[3:]
    by_row = np.ascontiguousarray(problem.w_grouped.reshape(groups, ci, co, -1).transpose(0, 1, 3, 2))
    weights = []
    for _, _, taps, _, _ in gemms:
        flat = [int(np.ravel_multi_index(tap, kernel)) for tap in taps]
        if flat == list(range(flat[0], flat[0] + len(flat))):
            weights.append(by_row[:, :, flat[0]:flat[-1] + 1].reshape(groups, ci, len(flat) * co))
        else:
            weights.append(by_row[:, :, flat].reshape(groups, ci, len(flat) * co))
    for (offset, columns, _, first, stop), weight, fresh_block in zip(gemms, weights, overwrite or [False] * len(gemms)):
        rows = slice(plan.front + first + offset, plan.front + stop + offset)
        for g in range(groups):
            target = values[first:stop, g, columns[0]: columns[-1] + 1].reshape(stop - first, len(columns) * co)
            _blas.gemm(source[rows, g * ci:(g + 1) * ci], weight[g], target, accumulate=not fresh_block)
    grid_values = values.reshape(batch, *plan.grid, groups, phases, co)
    if plan.tiling is not None:
        return _interleave_tiles(grid_values, plan, axes, problem.window_shape)
    out = problem.empty_output(zeros=not _covers(problem, per_axis))
    for n, target, where in shifted_places(plan, per_axis, axes):
        out[(slice(None), *target)] = grid_values[(slice(None), *where, slice(None), n)]
    return out


def shifted_places(plan: _ShiftedPlan, per_axis, axes) -> list[tuple[int, tuple, tuple]]:
    """Per phase (its index in ``plan.combinations``): its strided slices of the output
    window, and the grid slices that hold its values, one per axis."""
    places = []
    for n, combination in enumerate(plan.combinations):
        picked = [per_axis[a][r] for a, r in enumerate(combination)]
        target = tuple(ax.strided(o0, count) for (o0, count, _, _), ax in zip(picked, axes))
        where = tuple(slice(q0 + o, q0 + o + count) for (_, count, q0, _), o in zip(picked, plan.origin))
        places.append((n, target, where))
    return places


class _Tiling(NamedTuple):
    """The output as whole tiles of ``s`` outputs per axis, each tile one grid position of every phase."""

    shifts: tuple[int, ...]  # the window starts this far into its first tile
    tiles: tuple[int, ...]  # tiles per axis (the last may stick out past the window)
    first: tuple[int, ...]  # the grid position of tile 0
    order: list  # the phases in tile order: the buffer's column order that makes the copy one transpose


def _tiling(key, grid, origin) -> _Tiling | None:
    """How :func:`_interleave_tiles` can place every phase with one copy, or None.

    Along an axis with stride ``s``, window output ``o`` is phase ``r``'s
    ``m``-th with ``o = o0_r + s*m``, read at grid position ``q0_r + m``.
    Shift the window by ``sigma`` into tiles of ``s``: ``o + sigma = s*tau + rho``.
    When every residue has taps and ``q0_r - (o0_r + sigma) // s`` is the same
    for all phases, every tile ``tau`` is one grid position, with its phases in
    ``rho`` order, so the interleave is a transposition.
    """
    shifts, tiles, first, orders = [], [], [], []
    for (_, s, phases), size, o in zip(key, grid, origin):
        if len(phases) != s:
            return None
        width = max(o0 + (count - 1) * s + 1 for o0, count, _, _ in phases)
        for sigma in range(s):
            kappas = {q0 - (o0 + sigma) // s for o0, _, q0, _ in phases}
            count = -(-(width + sigma) // s)
            if len(kappas) == 1 and 0 <= min(kappas) + o and min(kappas) + o + count <= size:
                break
        else:
            return None
        shifts.append(sigma)
        tiles.append(count)
        first.append(min(kappas) + o)
        orders.append(sorted(range(s), key=lambda r: (phases[r][0] + sigma) % s))
    return _Tiling(tuple(shifts), tuple(tiles), tuple(first), list(product(*orders)))


def _interleave_tiles(grid_values: np.ndarray, plan: _ShiftedPlan, axes, window_shape) -> np.ndarray:
    """The output window as a view into whole tiles, filled by one transposing copy."""
    tiling, nd = plan.tiling, len(axes)
    batch, groups, co = grid_values.shape[0], grid_values.shape[-3], grid_values.shape[-1]
    strides = tuple(ax.stride for ax in axes)
    tiles = np.empty((batch, *(t * s for t, s in zip(tiling.tiles, strides)), groups, co), grid_values.dtype)
    picked = grid_values[(slice(None), *(slice(f, f + t) for f, t in zip(tiling.first, tiling.tiles)))]
    picked = picked.reshape(batch, *tiling.tiles, groups, *strides, co)
    order = (0, *(i for a in range(nd) for i in (1 + a, 2 + nd + a)), 1 + nd, 2 + 2 * nd)
    tiles.reshape(batch, *(v for t, s in zip(tiling.tiles, strides) for v in (t, s)), groups, co)[...] = picked.transpose(order)
    # a view: the tiles sticking out past the window (at most s - 1 outputs per axis) stay unseen
    return tiles[(slice(None), *(slice(sigma, sigma + size) for sigma, size in zip(tiling.shifts, window_shape)))]


def first_writes(gemms, phases: int) -> list[bool] | None:
    """Per GEMM, whether it is the first to write all of its phases (so may overwrite, ``beta = 0``).

    None when some GEMM would write fresh and already written phases at once:
    then the buffer starts at zero and every GEMM accumulates.
    """
    fresh, flags = set(range(phases)), []
    for _, columns, *_ in gemms:
        state = {c in fresh for c in columns}
        if len(state) > 1:
            return None
        flags.append(state == {True})
        fresh -= set(columns)
    return flags


def _covers(problem: Problem, per_axis) -> bool:
    return covers(problem.axes, per_axis, problem.window)


def covers(axes, per_axis, window) -> bool:
    """Whether every output position of the window belongs to a phase with taps (else the rest stays zero)."""
    return all(len(phases) == min(ax.stride, stop - start) for ax, phases, (start, stop) in zip(axes, per_axis, window))


#: how many elements one einsum inner loop of :func:`_by_depthwise_rows` aims for: long
#: enough that NumPy's per-loop overhead vanishes, short enough to stay in cache
ROW_ELEMENTS = 4096


def _taps_by_shift(taps) -> tuple[list[int], int]:
    """A phase's taps ordered by decreasing input shift ``c`` (so tap ``b`` reads ``b*step``
    further into the input), and the largest shift."""
    ordered = sorted(taps, key=lambda tap: -tap[1])
    return [t for t, _ in ordered], ordered[0][1]


@lru_cache(maxsize=256)
def _row_weight_index(key, kernel: tuple[int, ...], stride: int) -> np.ndarray:
    """For :func:`_by_depthwise_rows`: per combination of lead-axis phases, the flat tap that
    each (lead taps, last-axis tap ``b``, residue ``rho``) slot takes, -1 where there is none.

    Shape ``(combinations, *most lead taps per axis, most last-axis taps, stride)``.
    """
    *lead, last = key
    combinations = list(product(*lead))
    lead_most = [max(len(taps) for *_, taps in phases) for phases in lead]
    most = max(len(taps) for *_, taps in last)
    index = np.full((len(combinations), *lead_most, most, stride), -1, np.intp)
    for number, combination in enumerate(combinations):
        lead_taps = [_taps_by_shift(taps)[0] for *_, taps in combination]
        for rho, _, _, taps in last:
            for b, t in enumerate(_taps_by_shift(taps)[0]):
                for slot in product(*(enumerate(taps) for taps in lead_taps)):
                    position = tuple(i for i, _ in slot)
                    index[(number, *position, b, rho)] = np.ravel_multi_index((*(t_a for _, t_a in slot), t), kernel)
    return index


def _by_depthwise_rows(problem: Problem, per_axis) -> np.ndarray:
    """Depthwise phases as fused multiply-accumulates over whole output rows (``np.einsum``).

    With one input channel per group every "GEMM" is ``1 x Co``: the work is
    ``x[j] * w[t]`` summed over a phase's taps, elementwise. NumPy's fastest such
    loop is ``einsum``'s sum of products (one pass, no temporaries), and it is
    only fast when its inner loop is long and contiguous in every operand. So:

    * The last axis is cut into tiles of ``s`` outputs (``o = s*tau + rho``) and
      the input is copied once per residue ``rho`` into ``D[..., tau, rho, :]``,
      shifted so that tap ``b`` of phase ``rho`` reads ``D[..., tau + b*step,
      rho, :]``. A run of tiles of ``D`` is then a contiguous block laid out
      exactly like the output row it produces, every residue interleaved: the
      last axis needs no placing copy.
    * Each tap is a strided view of ``D`` (taps of a phase are equally spaced in
      the input, ``step = d / gcd(d, s)`` apart), so one ``einsum`` per phase of
      the other axes sums all taps, with the weights tiled along the row.

    Phases of the last axis with fewer taps than the others get zero weights for
    the missing ones; those read real inputs, so an Inf or NaN there would leak
    into outputs it does not reach (``0 * inf``): such inputs go to
    :func:`_by_gathered_taps` instead.

    Depthwise problems only (one input channel per group).
    """
    x, axes, window = problem.x, problem.axes, problem.window
    groups, ci, co = problem.w_grouped.shape[:3]
    if ci != 1:
        raise ValueError(f"the rows form needs one input channel per group, not {ci}")
    dtype = np.result_type(x, problem.w_grouped)
    *lead_axes, last = axes
    *lead_phases, last_phases = per_axis
    width = window[-1][1] - window[-1][0]
    if problem.batch == 0 or not all(per_axis) or width == 0:
        return problem.empty_output()
    s = last.stride
    most = max(len(taps) for *_, taps in last_phases)
    if any(len(taps) < most for *_, taps in last_phases) and not np.isfinite(x).all():
        return _by_gathered_taps(problem, per_axis)
    steps = [ax.dilation // gcd(ax.dilation, ax.stride) for ax in axes]

    tiles = -(-width // s)
    per_block = max(1, min(tiles, ROW_ELEMENTS // (s * groups * co)))
    blocks = -(-tiles // per_block)
    per_block = -(-tiles // blocks)  # the same blocks, as even as they go: fewer padding tiles
    tiles = blocks * per_block
    span = tiles + (most - 1) * steps[-1]  # D's tiles: the last tap of the last tile reads this far

    # the input index that tile 0's first tap of each residue reads; the lead axes are padded
    # by what their phases' taps reach past the input, as in the gathered form
    starts = {o0: q0 - _taps_by_shift(taps)[1] for o0, _, q0, taps in last_phases}
    pads = _padding(lead_axes, lead_phases)
    d = np.zeros((problem.batch, *(ax.input_size + lo + hi for ax, (lo, hi) in zip(lead_axes, pads)), span, s, groups, co), dtype)
    inside = tuple(slice(lo, lo + ax.input_size) for ax, (lo, _) in zip(lead_axes, pads))
    for rho, start in starts.items():
        lo, hi = max(0, -start), min(span, last.input_size - start)
        if lo < hi:
            d[(slice(None), *inside, slice(lo, hi), rho)] = x[..., start + lo:start + hi, :, :]

    row = per_block * s * groups * co
    # every lead-axis position belongs to a phase (else it stays zero); the last axis is all written
    allocate = np.empty if covers(lead_axes, lead_phases, window[:-1]) else np.zeros
    result = allocate((problem.batch, *(stop - start for start, stop in window[:-1]), tiles * s, groups, co), dtype)
    rows = result.reshape(*result.shape[:-3], blocks, row)
    # every combination's weights in one gather (index -1: the zero row of missing taps),
    # then tiled along the row so that they line up with D's and the output's elements
    kernel = problem.w_grouped.shape[3:]
    by_tap = problem.w_grouped[:, 0].reshape(groups, co, prod(kernel))
    by_tap = np.concatenate([np.moveaxis(by_tap, -1, 0), np.zeros((1, groups, co), dtype)])
    key = tuple(tuple((o0, count, q0, tuple(taps)) for o0, count, q0, taps in phases) for phases in per_axis)
    compact = by_tap[_row_weight_index(key, kernel, s)]  # (combinations, *lead taps, most, s, G, Co)
    tiled = np.broadcast_to(compact[..., None, :, :, :], (*compact.shape[:-3], per_block, s, groups, co))
    tiled = tiled.reshape(*compact.shape[:-3], row)
    nd = len(lead_axes)
    m_letters, a_letters = "ijk"[:nd], "uvw"[:nd]
    rule = f"n{m_letters}{a_letters}tbq,{a_letters}bq->n{m_letters}tq"
    lead_strides = d.strides[1:1 + nd]
    for number, combination in enumerate(product(*lead_phases)):
        lead_taps = [_taps_by_shift(taps) for *_, taps in combination]
        weights = tiled[(number, *(slice(0, len(taps)) for taps, _ in lead_taps))]
        first = tuple(q0 - c + lo for (_, _, q0, _), (_, c), (lo, _) in zip(combination, lead_taps, pads))
        offset = sum(i * stride for i, stride in zip(first, lead_strides))
        view = np.ndarray((problem.batch, *(count for _, count, _, _ in combination), *weights.shape[:nd], blocks, most, row),
                          dtype, d, offset,
                          (d.strides[0], *lead_strides, *(st * step for st, step in zip(lead_strides, steps)),
                           per_block * d.strides[1 + nd], steps[-1] * d.strides[1 + nd], d.itemsize))
        target = (slice(None),) + tuple(ax.strided(o0, count)
                                        for (o0, count, _, _), ax in zip(combination, lead_axes))
        np.einsum(rule, view, weights, out=rows[target])
    return result[..., :width, :, :]


def _by_compiled_pixels(problem: Problem, per_axis=None) -> np.ndarray:
    """Depthwise phases in one C pass (:class:`tconv._native.DepthwiseLast`), channels last.

    Each output pixel sums exactly the taps of its phase (per axis, those with
    ``o = i*s + t*d``), all its channels at once in vector registers, and is
    written once: the phases come out interleaved. With a channel multiplier
    ``Co > 1`` (each input channel feeding ``Co`` output channels) the input is
    first repeated ``Co`` times along its channels.

    Depthwise problems only (one input channel per group), float32 or float64,
    where :func:`tconv._native.can_depthwise_last` holds.
    """
    groups, ci, co, *kernel = problem.w_grouped.shape
    if ci != 1:
        raise ValueError(f"the compiled form needs one input channel per group, not {ci}")
    dtype = np.result_type(problem.x, problem.w_grouped)
    channels = groups * co
    x = problem.x.reshape(*problem.x.shape[:-2], groups)
    first = np.moveaxis(x, -1, 1)
    if not x.flags.c_contiguous and first.flags.c_contiguous and first.flags.aligned and x.dtype == dtype:
        x = _native.channels_last(first)  # channels-first input (PyTorch's layout): the C transpose
    # the C loop reads whole elements through typed pointers: contiguous and aligned
    x = np.require(np.repeat(x, co, axis=-1) if co > 1 else x, dtype, "CA")
    # (*k, G*Co): each tap's weights for all channels side by side
    w = np.require(problem.w_grouped.reshape(channels, -1).T, dtype, "CA").reshape(*kernel, channels)
    axes = tuple(ax.sub_window(start, stop) for ax, (start, stop) in zip(problem.axes, problem.window))
    out = np.empty((problem.batch, *(stop - start for start, stop in problem.window), channels), dtype)
    _native.depthwise_last(dtype, channels, axes)(x, w, out)
    return out.reshape(*out.shape[:-1], groups, co)


#: the ways :func:`compute` can evaluate the phases; :func:`form` picks one
FORMS = {"gathered": _by_gathered_taps, "taps": _by_tap_planes, "shifted": _by_shifted_gemms, "rows": _by_depthwise_rows,
         "compiled": _by_compiled_pixels}
