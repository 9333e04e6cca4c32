"""C loops for what torch's strided copies do slowly: compiled on first use, optional.

``_kernels.c`` (next to this file) holds a table-driven gather (the phase
landing, and col2im without a scatter), the same gather weighted per channel
and tap (depthwise layers) and a tiled channels-last to channels-first
transpose. On first use it is compiled with the system's C
compiler (``$CC``, else ``cc``/``gcc``/``clang``) into tconv's cache folder
(``$TCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/tconv`` or ``~/.cache/tconv``),
keyed by the source, the flags and the CPU, and loaded with ctypes. No torch
headers are needed, so the build is quick.

Where there is no compiler, the build fails, or ``TCONV_NATIVE=0`` is set,
:func:`library` returns None and every caller uses torch's own ops instead:
the results are the same, only slower. :func:`status` says which and why.

The loops run with OpenMP on torch's own thread count. torch's CPU wheels
ship GNU OpenMP as ``libgomp.so.1``; the compiled library asks for that same
name, so the process keeps one OpenMP runtime and one thread pool.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

SOURCE = Path(__file__).with_name("_kernels.c")
_FLAG_SETS = (["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"])

_reason = "not tried yet"


def _cache_dir() -> Path:
    if os.environ.get("TCONV_CACHE_DIR"):
        return Path(os.environ["TCONV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tconv"


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: a library built for one CPU must not load on another."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build(compiler: str, flags: list[str], target: Path) -> str | None:
    """Compile to ``target`` (atomically: other processes may build at the same time); an error text or None."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(handle)
    except OSError as err:  # a read-only or missing cache folder
        return f"cannot write to {target.parent}: {err}"
    try:
        done = subprocess.run([compiler, *flags, "-shared", "-fPIC", str(SOURCE), "-o", scratch],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout) else "failed"
        os.replace(scratch, target)
        return None
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on the first call; None where they cannot be had (see :func:`status`)."""
    global _reason
    if os.environ.get("TCONV_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        _reason = "switched off by TCONV_NATIVE=0"
        return None
    if not sys.platform.startswith("linux") and sys.platform != "darwin":
        _reason = f"not built on {sys.platform}"
        return None
    compiler = _compiler()
    if compiler is None:
        _reason = "no C compiler found ($CC, cc, gcc or clang)"
        return None
    source = SOURCE.read_bytes()
    errors = []
    for flags in _FLAG_SETS:
        key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), _cpu_signature().encode(),
                                         compiler.encode()])).hexdigest()[:16]
        target = _cache_dir() / f"kernels-{key}.so"
        if not target.exists():
            error = _build(compiler, flags, target)
            if error is not None:
                errors.append(f"{' '.join(flags)}: {error}")
                continue
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as err:
            errors.append(f"{' '.join(flags)}: {err}")
            continue
        _declare(lib)
        _reason = f"built with {compiler} {' '.join(flags)} at {target}"
        return lib
    _reason = "the build failed: " + "; ".join(errors)
    return None


def status() -> str:
    """Whether the C kernels are in use, and why (or why not)."""
    library()
    return _reason


def native_status() -> str:
    """Whether tconv.torch's C loops are built and in use here, and why or why not (builds them if needed).

    Returns
    -------
    str
        ``"built with <compiler> <flags> at <path>"``, or the reason they are
        not used: ``"switched off by TCONV_NATIVE=0"``, ``"no C compiler found
        ..."``, ``"the build failed: ..."``. Without them every strategy runs as
        torch ops, with the same results.

    Examples
    --------
    >>> import tconv.torch
    >>> tconv.torch.native_status().split()[0] in ("built", "switched", "no", "the", "not")
    True
    """
    return status()


def _declare(lib: ctypes.CDLL) -> None:
    vp, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for name in ("tconv_gather_f32", "tconv_gather_f64", "tconv_gather_b16"):
        fn = getattr(lib, name)
        fn.argtypes = [vp, vp, vp, i64, c_int, c_int, i64, vp] + [i64, vp, vp, i64] * 2 + [i64, vp, i64, i64]
        fn.restype = None
    for name in ("tconv_depthwise_f32", "tconv_depthwise_f64"):
        fn = getattr(lib, name)
        fn.argtypes = [vp, vp, vp, vp, i64, c_int, i64, vp, vp] + [i64, vp, vp, vp, i64, i64] * 2 + [i64, vp, i64, i64]
        fn.restype = None
    for name in ("tconv_transpose_b16", "tconv_transpose_b32", "tconv_transpose_b64"):
        fn = getattr(lib, name)
        fn.argtypes = [vp, vp, i64, i64, i64, c_int]
        fn.restype = None


#: dtypes the gather may sum (float) or only copy (2-byte floats, moved as bits)
_GATHER = {torch.float32: "tconv_gather_f32", torch.float64: "tconv_gather_f64",
           torch.float16: "tconv_gather_b16", torch.bfloat16: "tconv_gather_b16"}
_SUMS = (torch.float32, torch.float64)
_TRANSPOSE = {2: "tconv_transpose_b16", 4: "tconv_transpose_b32", 8: "tconv_transpose_b64"}

#: below this many output elements one thread does the whole loop (OpenMP's start-up costs more)
PARALLEL_MIN_ELEMENTS = 1 << 15


def _threads(elements: int) -> int:
    return 1 if elements < PARALLEL_MIN_ELEMENTS else max(1, torch.get_num_threads())


class AxisTable:
    """One output axis's terms: for output ``o``, ``offsets[o, :counts[o]]`` (source offsets, in elements).

    ``period`` is the axis's stride: outputs ``o`` and ``o + period`` usually
    read the same taps one input position apart, which :meth:`segments` uses.
    """

    __slots__ = ("size", "counts", "offsets", "taps", "width", "period", "_segments")

    def __init__(self, counts: np.ndarray, offsets: np.ndarray, period: int = 1, taps: np.ndarray | None = None):
        self.size, self.width = offsets.shape
        self.period = period
        self.counts = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.int32))
        self.offsets = torch.from_numpy(np.ascontiguousarray(offsets, dtype=np.int64))
        #: the kernel tap of each term (for the depthwise loop's weights)
        self.taps = torch.from_numpy(np.ascontiguousarray(np.zeros_like(offsets) if taps is None else taps,
                                                          dtype=np.int64))
        self._segments = None

    @classmethod
    def of(cls, output_size: int, crop_begin: int, taps: int, dilation: int, stride: int, input_size: int,
           tap_stride: int, position_stride: int) -> "AxisTable":
        """The terms of a transposed convolution's axis: kept output ``o`` (full position
        ``o + crop_begin``) gets tap ``t`` of input ``i`` wherever ``i*stride + t*dilation`` is that
        position and ``0 <= i < input_size``; each term at ``t*tap_stride + i*position_stride``.

        With ``taps = stride`` and ``dilation = 1`` this lands phases: output ``o`` takes phase
        ``p mod s`` at ``p // s`` (``p = o + crop_begin``).
        """
        full = np.arange(output_size, dtype=np.int64)[:, None] + crop_begin
        tap = np.arange(taps, dtype=np.int64)[None, :]
        reach = full - tap * dilation
        source = reach // stride
        valid = (reach % stride == 0) & (source >= 0) & (source < input_size)
        offsets = np.where(valid, tap * tap_stride + source * position_stride, 0)
        order = np.argsort(~valid, axis=1, kind="stable")  # each row's terms first, in tap order
        counts = valid.sum(axis=1)
        width = max(1, int(counts.max(initial=0)))
        tap_of = np.take_along_axis(np.broadcast_to(tap, valid.shape), order, axis=1)[:, :width]
        return cls(counts, np.take_along_axis(offsets, order, axis=1)[:, :width], stride, np.where(
            np.arange(width)[None, :] < counts[:, None], tap_of, 0))

    def args(self) -> list:
        return [self.size, self.counts.data_ptr(), self.offsets.data_ptr(), self.width]

    def weighted_args(self, tap_unit: int) -> list:
        return [self.size, self.counts.data_ptr(), self.offsets.data_ptr(), self.taps.data_ptr(), self.width,
                tap_unit]

    def segments(self) -> tuple[int, torch.Tensor]:
        """The axis as runs for the C loop's last axis: ``(count, rows)``, each row
        ``(o0, step, count, nterms, inc, offsets[width], taps[width])`` (see ``_kernels.c``).

        A run is a residue class ``o = o0 + m*period`` over which the terms
        keep their number and advance by the same ``inc``: the interior of
        each phase is one run, and the edges (fewer taps in reach) are short
        runs of their own. At stride 2 the two longest runs are trimmed to a
        common length, starting side by side, so that the C loop writes them
        together in order.
        """
        if self._segments is None:
            counts, offsets, taps = self.counts.numpy(), self.offsets.numpy(), self.taps.numpy()
            runs = []
            for residue in range(min(self.period, self.size)):
                places = range(residue, self.size, self.period)
                run = None
                for o in places:
                    nt = int(counts[o])
                    if run is not None and run[3] == nt:
                        last = run[0] + (run[2] - 1) * run[1]
                        diff = offsets[o, :nt] - offsets[last, :nt]
                        inc = int(diff[0]) if nt else 0
                        same_taps = (taps[o, :nt] == taps[last, :nt]).all()
                        if same_taps and (diff == inc).all() and (run[2] == 1 or inc == run[4]):
                            run[2] += 1
                            run[4] = inc
                            continue
                    if run is not None:
                        runs.append(run)
                    run = [o, self.period, 1, nt, 0, offsets[o, :nt].tolist(), taps[o, :nt].tolist()]
                runs.append(run)
            runs = _pair_up(runs, self.period)
            table = np.zeros((len(runs), 5 + 2 * self.width), dtype=np.int64)
            for row, (o0, step, count, nt, inc, offs, taps_) in zip(table, runs):
                row[:5] = (o0, step, count, nt, inc)
                row[5:5 + nt] = offs
                row[5 + self.width:5 + self.width + nt] = taps_
            self._segments = (len(runs), torch.from_numpy(table))
        return self._segments


def _sub_run(run: list, first: int, count: int) -> list:
    o0, step, _, nt, inc, offs, taps = run
    return [o0 + first * step, step, count, nt, inc, [off + first * inc for off in offs], taps]


def _pair_up(runs: list, period: int) -> list:
    """At stride 2: the longest run of each residue trimmed to one common, side-by-side stretch."""
    if period != 2:
        return sorted(runs, key=lambda r: r[0])
    even = max((r for r in runs if r[0] % 2 == 0), key=lambda r: r[2], default=None)
    odd = max((r for r in runs if r[0] % 2 == 1), key=lambda r: r[2], default=None)
    if even is None or odd is None or even[4] != odd[4] or even[3] == 0 or odd[3] == 0:
        return sorted(runs, key=lambda r: r[0])
    best = None
    for lead, partner in ((even, odd), (odd, even)):
        # pair m writes lead[first_l + m] at o and partner[first_p + m] at o + 1
        start = max(lead[0], partner[0] - 1)
        start += (start - lead[0]) % 2
        first_l, first_p = (start - lead[0]) // 2, (start + 1 - partner[0]) // 2
        count = min(lead[2] - first_l, partner[2] - first_p)
        if count > 0 and (best is None or count > best[0]):
            best = (count, lead, partner, first_l, first_p)
    if best is None:
        return sorted(runs, key=lambda r: r[0])
    count, lead, partner, first_l, first_p = best
    rest = [r for r in runs if r is not lead and r is not partner]
    for run, first in ((lead, first_l), (partner, first_p)):
        if first:
            rest.append(_sub_run(run, 0, first))
        if first + count < run[2]:
            rest.append(_sub_run(run, first + count, run[2] - first - count))
    return [_sub_run(lead, first_l, count), _sub_run(partner, first_p, count)] + sorted(rest, key=lambda r: r[0])


_UNIT = None


def _unit() -> AxisTable:
    global _UNIT
    if _UNIT is None:
        _UNIT = AxisTable(np.ones(1), np.zeros((1, 1)))
    return _UNIT


def can_gather(dtype: torch.dtype, sums: bool) -> bool:
    """Whether :class:`Gather` takes this dtype (2-byte floats only for copies)."""
    return library() is not None and (dtype in _SUMS if sums else dtype in _GATHER)


class Gather:
    """``out[p, *o] = (fill +) sum of src.data[plane_offsets[p] + sum_a axes[a] terms]``, as a prepared call.

    ``Gather(...)(src, out, fill)``: ``out`` contiguous, ``(P, *sizes)`` with
    ``sizes`` those of ``axes``; ``src`` any CPU tensor of the same dtype whose
    storage holds every offset (offsets count from ``src``'s first element;
    the caller guarantees they stay inside it); ``fill`` of ``out``'s dtype,
    contiguous, or None. Everything but the three tensors is worked out once,
    so a call costs one ctypes call (the tables must outlive it: this object
    keeps them).

    Parameters
    ----------
    dtype : torch.dtype
        Of ``src``, ``out`` and ``fill``.
    plane_offsets : Tensor
        int64, where each output plane's terms start in ``src``.
    axes : list of AxisTable
        One per output axis (1 to 3).
    add_fill : bool
        Add the fill to every element (a bias), or write it only where no term lands.
    fill_period : int
        Plane ``p`` takes ``fill[p % fill_period]``: the channel count for a
        bias over image-major planes, the plane count for one value per plane.
    """

    __slots__ = ("_fn", "_head", "_fixed", "_elements", "_keep")

    def __init__(self, dtype: torch.dtype, plane_offsets: torch.Tensor, axes: list["AxisTable"], add_fill: bool,
                 fill_period: int) -> None:
        lead = [_unit()] * (3 - len(axes)) + list(axes[:-1])
        count, segments = axes[-1].segments()
        self._keep = (plane_offsets, axes, segments)
        self._fn = getattr(library(), _GATHER[dtype])
        self._head = (max(1, fill_period), int(add_fill))
        planes = plane_offsets.shape[0]
        self._fixed = (planes, plane_offsets.data_ptr(), *lead[0].args(), *lead[1].args(), axes[-1].size,
                       segments.data_ptr(), count, axes[-1].width)
        self._elements = planes * math.prod(table.size for table in axes)

    def __call__(self, src: torch.Tensor, out: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
        self._fn(src.data_ptr(), out.data_ptr(), None if fill is None else fill.data_ptr(), *self._head,
                 _threads(self._elements), *self._fixed)
        return out


_DEPTHWISE = {torch.float32: "tconv_depthwise_f32", torch.float64: "tconv_depthwise_f64"}


def depthwise(x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor, plane_offsets: torch.Tensor,
              weight_offsets: torch.Tensor, axes: list[AxisTable], tap_units: list[int],
              fill: torch.Tensor | None, fill_period: int) -> torch.Tensor:
    """Like :class:`Gather`, each term times ``weight.data[weight_offsets[p] + sum_a tap_a * tap_units[a]]``.

    ``x`` and ``weight`` contiguous, of ``out``'s dtype (float32 or float64);
    the tables' offsets address ``x`` (whose planes have no tap axis), their
    taps the weight. ``fill[p % fill_period]`` (the bias) is added to every
    element of plane ``p``.
    """
    lib = library()
    pad = 3 - len(axes)
    lead = [_unit()] * pad + list(axes[:-1])
    units = [0] * pad + list(tap_units[:-1])
    count, segments = axes[-1].segments()
    getattr(lib, _DEPTHWISE[out.dtype])(
        x.data_ptr(), out.data_ptr(), weight.data_ptr(), None if fill is None else fill.data_ptr(),
        max(1, fill_period), _threads(out.numel()), plane_offsets.shape[0], plane_offsets.data_ptr(),
        weight_offsets.data_ptr(), *lead[0].weighted_args(units[0]), *lead[1].weighted_args(units[1]),
        axes[-1].size, segments.data_ptr(), count, axes[-1].width)
    return out


def can_transpose(t: torch.Tensor) -> bool:
    return library() is not None and t.element_size() in _TRANSPOSE and t.device.type == "cpu"


def channels_first(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[n, c, p] = src[n, p, c]`` for a channels-last ``src`` viewed (N, P, C) contiguous, ``out`` (N, C, P)."""
    n, c = src.shape[0], src.shape[1]
    positions = src.numel() // max(1, n * c)
    getattr(library(), _TRANSPOSE[src.element_size()])(src.data_ptr(), out.data_ptr(), n, positions, c,
                                                        _threads(src.numel()))
    return out
