"""tconv's C loops: compiled on first use with the system's C compiler, loaded with ctypes, optional.

``_kernels.c`` (next to this file) holds the loops both engines use where
NumPy's or torch's own ops run far below the machine's speed: a table-driven
gather (tconv.torch's phase landing, and col2im without a scatter), the same
gather weighted per channel and tap (tconv.torch's depthwise strategy), a
channels-last depthwise loop (the NumPy engine's ``phase`` on depthwise
layers) and a tiled channels-last to channels-first transpose.

On first use the file is compiled with ``$CC``, else ``cc``/``gcc``/``clang``,
into tconv's cache folder (``$TCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/tconv`` or ``~/.cache/tconv``), keyed by the source, the
flags and the CPU. It needs no headers but the C library's and no framework;
the build runs once per machine and source (a few seconds), and later
processes load the cached library.

A library loaded from the cache runs as code in every process that imports
tconv, so the cache is used only where no one else can write it: the folder,
and each library in it right before it is loaded, must be owned by the
process's effective uid (root's own, for root) and be writable by neither
group nor others. Folders tconv makes for it (the cache and any missing
parents) get mode 0o700, and it compiles in a 0o700 scratch folder whatever
the umask. Where the folder or a library in it fails the rule, tconv loads
nothing from there: it builds in a fresh 0o700 folder of its own
(:func:`tempfile.mkdtemp`, removed at exit, so once per process until the
cache is fixed) and says so with a :class:`CacheFolderWarning` naming the
folder or file, its owner's uid and its mode. A cache folder that cannot be
written is not refused: it is used if it already holds the library, else
there are no C loops, as without a compiler.

Where there is no compiler, the build fails, or ``TCONV_NATIVE=0`` is set,
:func:`library` returns None and every caller computes the same values with
NumPy's or torch's own ops instead, only slower. :func:`status` says which
and why.

The loops run with OpenMP. torch's CPU wheels ship GNU OpenMP as
``libgomp.so.1``; the library asks for that same name, so a process keeps
one OpenMP runtime whichever of tconv and torch loads first.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import atexit
import contextlib
import ctypes
import functools
import hashlib
import math
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

if TYPE_CHECKING:  # the geometry is pure Python; imported for annotations only
    from .geometry import AxisGeometry

SOURCE = Path(__file__).with_name("_kernels.c")
_FLAG_SETS = (["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"])

_reason = "not tried yet"


class CacheFolderWarning(RuntimeWarning):
    """tconv refused its cache folder (or a library in it) as writable by others, and built elsewhere."""


class _Refused(Exception):
    """A folder or library that others could have written: loading from it would run their code."""


def _cache_dir() -> Path:
    if os.environ.get("TCONV_CACHE_DIR"):
        return Path(os.environ["TCONV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tconv"


def _unsafe(info: os.stat_result, what: str) -> str | None:
    """Why a folder or file with this ``stat`` is not this process's alone to write, or None.

    Ownership is by the effective uid, root included: root's own folder is
    fine, but a world-writable one is refused for root as for anyone.
    """
    problems = []
    if info.st_uid != os.geteuid():
        problems.append(f"owned by uid {info.st_uid}, not by this process's uid {os.geteuid()}")
    writers = [who for bit, who in ((stat.S_IWGRP, "its group"), (stat.S_IWOTH, "everyone")) if info.st_mode & bit]
    if writers:
        problems.append(f"writable by {' and '.join(writers)} (mode {stat.S_IMODE(info.st_mode):#o})")
    return f"{what} is " + " and ".join(problems) if problems else None


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each with mode 0o700.

    (pathlib's ``parents=True`` would give the parents 0o777 less the umask.)
    """
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        # another process made it meanwhile: the cache folder itself is checked next
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)


def _check_folder(folder: Path) -> None:
    """Raise :class:`_Refused` where ``folder`` is a folder others can write, creating it (0o700) if absent.

    A folder that cannot be created or read is left to the build, which
    then fails as for any folder it cannot write.
    """
    try:
        _make_folders(folder)
        info = os.stat(folder)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        refusal = _unsafe(info, f"the cache folder {folder}")
        if refusal:
            raise _Refused(refusal)


def _open_library(path: Path) -> ctypes.CDLL:
    """``ctypes.CDLL(path)``, checked first: :class:`_Refused` where others could have written the file."""
    refusal = _unsafe(os.stat(path), f"the library {path}")
    if refusal:
        raise _Refused(refusal)
    return ctypes.CDLL(str(path))


_private = None


def _private_folder() -> Path:
    """A fresh folder only this process's user can enter (0o700), removed when the process exits."""
    global _private
    if _private is None:
        folder = Path(tempfile.mkdtemp(prefix="tconv-kernels-"))
        atexit.register(shutil.rmtree, folder, True)
        refusal = _unsafe(os.stat(folder), f"the private folder {folder}")
        if refusal:  # mkdtemp makes it 0o700 and ours; anything else is a broken temp folder
            raise OSError(refusal)
        _private = folder
    return _private


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


def _library_name(compiler: str, flags: list[str], source: bytes) -> str:
    """The cached library's file name, keyed by all the build depends on."""
    key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), _cpu_signature().encode(),
                                     compiler.encode()])).hexdigest()[:16]
    return f"kernels-{key}.so"


def _build(compiler: str, flags: list[str], target: Path) -> str | None:
    """Compile to ``target`` (atomically: other processes may build at the same time); an error text or None.

    The compiler writes into a scratch folder of mode 0o700 inside the target's
    folder, so no one else can open the file while the umask may leave it
    writable, and the result is made 0o755 before it takes the target's name.
    """
    try:
        scratch = tempfile.mkdtemp(prefix=".build-", dir=target.parent)
    except OSError as err:  # a read-only or missing cache folder
        return f"cannot write to {target.parent}: {err}"
    built = os.path.join(scratch, target.name)
    try:
        done = subprocess.run([compiler, *flags, "-shared", "-fPIC", str(SOURCE), "-o", built],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout) else "failed"
        os.chmod(built, 0o755)
        os.replace(built, target)
        return None
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_switched_off = 0


def library() -> ctypes.CDLL | None:
    """The compiled loops, built on the first call; None where they cannot be had (see :func:`status`),
    and inside :func:`switched_off`."""
    return None if _switched_off else _load()


@contextlib.contextmanager
def switched_off():
    """Within the block, callers see no C loops (:func:`library` is None) and run NumPy's or torch's
    own ops instead, as on a machine without a compiler: for timing or checking those paths in a
    process that has the loops. Not thread-safe: it switches them off for the whole process.

    >>> from tconv import _native
    >>> with _native.switched_off():
    ...     _native.library() is None
    True
    """
    global _switched_off
    _switched_off += 1
    try:
        yield
    finally:
        _switched_off -= 1


@functools.lru_cache(maxsize=None)
def _load() -> ctypes.CDLL | None:
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
    folder = _cache_dir()
    try:
        _check_folder(folder)
        return _load_from(folder, compiler, source)
    except _Refused as refused:
        refusal = str(refused)
    try:
        private = _private_folder()
    except OSError as err:
        warnings.warn(f"tconv's C loops not loaded: {refusal}, so anyone who can write there could run code "
                      f"in this process; and no private folder could be made to build them in ({err}). "
                      f"{_REMEDY}", CacheFolderWarning, stacklevel=3)
        _reason = f"{refusal}; no private folder could be made: {err}"
        return None
    warnings.warn(f"tconv's C loops not loaded from the cache: {refusal}, so anyone who can write there could "
                  f"run code in this process. Building them in {private} instead (removed at exit). {_REMEDY}",
                  CacheFolderWarning, stacklevel=3)
    try:
        lib = _load_from(private, compiler, source)
    except _Refused as refused:  # not seen in a 0o700 folder of one's own: no second fallback
        _reason = str(refused)
        return None
    if lib is not None:
        _reason += f" (the cache was refused: {refusal})"
    return lib


_REMEDY = ("Make the cache folder yours and writable by you alone (chown, chmod go-w; remove any library "
           "in it you did not build), or point $TCONV_CACHE_DIR at one that is.")


def _load_from(folder: Path, compiler: str, source: bytes) -> ctypes.CDLL | None:
    """The loops from ``folder``, built there if missing; None with :data:`_reason` set if no flags work.

    Raises :class:`_Refused` where a library there could have been written by others.
    """
    global _reason
    errors = []
    for flags in _FLAG_SETS:
        target = folder / _library_name(compiler, flags, source)
        if not target.exists():
            error = _build(compiler, flags, target)
            if error is not None:
                errors.append(f"{' '.join(flags)}: {error}")
                continue
        try:
            lib = _open_library(target)
        except OSError as err:
            errors.append(f"{' '.join(flags)}: {err}")
            continue
        _declare(lib)
        _reason = f"built with {compiler} {' '.join(flags)} at {target}"
        return lib
    _reason = "the build failed: " + "; ".join(errors)
    return None


def native_status() -> str:
    """Whether tconv's C loops are built and in use here, and why or why not (builds them if needed).

    Both engines use them where they are: NumPy's ``phase`` on depthwise
    layers (its ``compiled`` form) and tconv.torch's gather, depthwise and
    landing steps. Without them every step runs as NumPy or torch ops, with
    the same results, only slower.

    Returns
    -------
    str
        ``"built with <compiler> <flags> at <path>"``, or the reason they are
        not used: ``"switched off by TCONV_NATIVE=0"``, ``"no C compiler found
        ..."``, ``"the build failed: ..."``.

    Examples
    --------
    >>> import tconv
    >>> tconv.native_status().split()[0] in ("built", "switched", "no", "the", "not")
    True
    """
    _load()
    return "switched off for this block (switched_off())" if _switched_off else _reason


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
    for name in _DEPTHWISE_LAST.values():
        fn = getattr(lib, name)
        fn.argtypes = [vp, vp, vp, vp, c_int, i64, i64, i64] + [i64, vp, vp, vp, i64] * 2 + [i64, vp, i64, i64, i64]
        fn.restype = None


#: below this many output elements one thread does the whole loop (OpenMP's start-up costs more)
PARALLEL_MIN_ELEMENTS = 1 << 15


def threads(elements: int) -> int:
    """The NumPy engine's thread count for a loop writing ``elements`` values.

    :func:`thread_count`; one below :data:`PARALLEL_MIN_ELEMENTS`, and one in
    a child process forked from this one (see :func:`forked`). (tconv.torch
    uses torch's own count instead.)
    """
    return 1 if elements < PARALLEL_MIN_ELEMENTS or _forked else thread_count()


_forked = False


def forked() -> bool:
    """Whether this process was forked from one that had loaded tconv.

    GNU OpenMP's thread pool does not survive ``fork()``: a child that starts
    a parallel region its parent's pool had served waits forever (as
    ``multiprocessing``'s default start method on Linux would do after a
    depthwise layer in the parent). So forked children run the loops on one
    thread, which never touches the pool.
    """
    return _forked


def _mark_forked() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


@functools.lru_cache(maxsize=None)
def thread_count() -> int:
    """``$OMP_NUM_THREADS`` where it is set (as for NumPy's BLAS), else the cores this process may
    run on; read once, like BLAS reads it once."""
    setting = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


class AxisTable:
    """One output axis's terms: for output ``o``, ``offsets[o, :counts[o]]`` (source offsets, in elements).

    ``period`` is the axis's stride: outputs ``o`` and ``o + period`` usually
    read the same taps one input position apart, which :meth:`segments` uses.
    """

    __slots__ = ("size", "counts", "offsets", "taps", "width", "period", "_segments")

    def __init__(self, counts: np.ndarray, offsets: np.ndarray, period: int = 1, taps: np.ndarray | None = None):
        self.size, self.width = offsets.shape
        self.period = period
        self.counts = np.ascontiguousarray(counts, dtype=np.int32)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        #: the kernel tap of each term (for the depthwise loops' weights)
        self.taps = np.ascontiguousarray(np.zeros_like(offsets) if taps is None else taps, dtype=np.int64)
        self._segments = None

    @classmethod
    def of(cls, ax: "AxisGeometry", tap_stride: int, position_stride: int) -> "AxisTable":
        """The terms of one transposed-convolution axis (:meth:`AxisGeometry.terms`): kept output ``o``
        gets tap ``t`` of input ``i`` for each of its ``(t, i)``, as the offset ``t*tap_stride +
        i*position_stride``.

        For landing phases, pass :meth:`AxisGeometry.phase_landing`: its taps are the phases.
        """
        terms = ax.terms()
        counts = np.array([len(row) for row in terms], dtype=np.int64)
        width = max(1, int(counts.max(initial=0)))
        offsets = np.zeros((len(terms), width), dtype=np.int64)
        taps = np.zeros((len(terms), width), dtype=np.int64)
        for o, row in enumerate(terms):
            for n, (t, i) in enumerate(row):
                offsets[o, n] = t * tap_stride + i * position_stride
                taps[o, n] = t
        return cls(counts, offsets, ax.stride, taps)

    def args(self) -> list:
        return [self.size, self.counts.ctypes.data, self.offsets.ctypes.data, self.width]

    def weighted_args(self, tap_unit: int) -> list:
        return [self.size, self.counts.ctypes.data, self.offsets.ctypes.data, self.taps.ctypes.data, self.width,
                tap_unit]

    def segments(self) -> tuple[int, np.ndarray]:
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
            counts, offsets, taps = self.counts, self.offsets, self.taps
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
            self._segments = (len(runs), table)
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


_DEPTHWISE_LAST = {np.dtype(np.float32): "tconv_depthwise_last_f32", np.dtype(np.float64): "tconv_depthwise_last_f64"}


class DepthwiseLast:
    """A channels-last depthwise transposed convolution in one C pass, as a prepared call.

    ``DepthwiseLast(...)(x, w, out)`` (NumPy arrays) or ``.run(...)`` (raw
    pointers: tconv.torch's tensors) writes, for every kept output position
    ``o`` and channel ``c``::

        out[n, *o, c] = bias[c] + sum over the taps t that reach o of x[n, *i, c] * w[*t, c]

    where, per axis, ``o + crop_begin = i*stride + t*dilation`` with ``0 <= i < input_size``
    (only the taps that reach an output are visited: no inserted zero is read).
    ``x`` is ``(N, *input_sizes, C)``, ``w`` ``(*kernel_sizes, C)`` and ``out``
    ``(N, *output_sizes, C)``, all C-contiguous and aligned, of this call's
    dtype (float32 or float64); ``bias`` ``(C,)`` likewise, or None (zero).

    Parameters
    ----------
    dtype : numpy dtype
        float32 or float64.
    channels : int
        ``C``.
    axes : tuple of AxisGeometry
        One per spatial axis (1 to 3): the kept outputs are its window
        (``wrap`` is ignored).
    """

    __slots__ = ("_fn", "_fixed", "_elements", "_keep")

    def __init__(self, dtype, channels: int, axes) -> None:
        dtype = np.dtype(dtype)
        self._fn = getattr(library(), _DEPTHWISE_LAST[dtype])
        inputs = [ax.input_size for ax in axes]
        kernels = [ax.kernel_size for ax in axes]
        tables = [AxisTable.of(ax, 0, math.prod(inputs[a + 1:]) * channels) for a, ax in enumerate(axes)]
        args, keep = [], [tables]
        for _ in range(3 - len(axes)):
            args += _unit().weighted_args(0)[:4] + [1]
        for a, table in enumerate(tables[:-1]):
            # the leading axes' taps as weight offsets: w is (*kernel, C)
            weights = np.ascontiguousarray(table.taps * (math.prod(kernels[a + 1:]) * channels))
            keep.append(weights)
            args += [table.size, table.counts.ctypes.data, table.offsets.ctypes.data, weights.ctypes.data, table.width]
        count, segments = tables[-1].segments()
        args += [tables[-1].size, segments.ctypes.data, count, tables[-1].width, channels]
        self._keep = keep
        self._fixed = (channels, math.prod(inputs) * channels, *args)
        self._elements = math.prod(ax.output_size for ax in axes) * channels

    def __call__(self, x: np.ndarray, w: np.ndarray, out: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        self.run(x.ctypes.data, w.ctypes.data, out.ctypes.data, None, batch, threads(batch * self._elements))
        return out

    def run(self, x: int, w: int, out: int, bias: int | None, batch: int, thread_count: int) -> None:
        """The loop on raw pointers (addresses as ints) to memory laid out as above."""
        self._fn(x, out, w, bias, thread_count, batch, *self._fixed)

    def elements(self, batch: int) -> int:
        """How many values the loop writes for ``batch`` images."""
        return batch * self._elements


@functools.lru_cache(maxsize=64)
def depthwise_last(dtype, channels: int, axes: tuple) -> DepthwiseLast:
    """:class:`DepthwiseLast` for these arguments, made once: its tables are worked out in Python."""
    return DepthwiseLast(dtype, channels, axes)


_TRANSPOSE = {2: "tconv_transpose_b16", 4: "tconv_transpose_b32", 8: "tconv_transpose_b64"}


def channels_last(x: np.ndarray) -> np.ndarray:
    """A C-contiguous ``(N, C, *spatial)`` array's values as a new C-contiguous ``(N, *spatial, C)`` array.

    By the C loops' tiled transpose (32 x 32 blocks, each element moved as bits):
    NumPy's own transposing copy walks one side of it at a stride (0.88 against
    0.31 ms for the benchmark's depthwise input in ``bench_numpy_parts.py``).
    The C loops must be built (:func:`library`).
    """
    n, c = x.shape[:2]
    positions = x.size // max(1, n * c)
    out = np.empty((n, *x.shape[2:], c), x.dtype)
    # the loop writes dst[n, j, i] = src[n, i, j] for src (N, I, J): here I = C and J = the positions
    getattr(library(), _TRANSPOSE[x.itemsize])(x.ctypes.data, out.ctypes.data, n, c, positions, threads(x.size))
    return out


def can_depthwise_last(dtype) -> bool:
    """Whether :class:`DepthwiseLast` runs here for this dtype."""
    return np.dtype(dtype) in _DEPTHWISE_LAST and library() is not None
