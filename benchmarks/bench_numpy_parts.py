"""Where NumPy's time goes on two layers of bench_algorithms.py where torch is more than 2x faster.

1. The depthwise layer (k4 s2 p1, 64 channels, 32x32, batch 4), channels-last,
   float32: the 16 taps (one multiply and one add each, per batch element) with
   the weight broadcast over the spatial axes, the same with the weight repeated
   along a whole row (what tconv did before the ``rows`` form), the same split
   over two threads (NumPy releases the GIL in these loops), and placing the 4
   output phases into the interleaved output. Then the phase algorithm's
   ``rows`` form whole (what ``auto`` runs without tconv's C loops: one
   ``einsum`` per row phase, the column phases interleaved in the input copy),
   its ``einsum`` calls alone, and the ``compiled`` form (one C pass: what
   ``auto`` runs where the loops are built), and for NCHW input the copy to
   channels-last by NumPy and by the C transpose. Medians of 50 calls.
2. DCGAN 4 (128->64, 16x16, k4 s2 p1, batch 16): the phase algorithm's
   ``taps`` (kn2row) form whole, and its all-taps GEMM alone
   (``tconv.kernels._core.tap_products``), the difference being the per-phase
   sums and their placement; its ``shifted`` form whole (GEMMs accumulated in
   place: what ``auto`` runs). Then two other orders of the same work, checked
   against tconv's result: one GEMM per tap, and one GEMM per phase. Medians
   of 20 calls.
3. The phase algorithm's forms (``tconv.kernels.phase.FORMS``) on every
   layer of bench_algorithms.py's suite (``rows`` and ``compiled`` on the depthwise one only), and the one ``phase.form`` picks:
   the evidence for that rule. Medians of 5 rounds, timed as bench_algorithms.py times (each call after
   0.15 s of untimed calls of its own).

With a tuned allocator, as in bench_algorithms.py.

Run: python benchmarks/bench_numpy_parts.py (also part of make bench)
"""
from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import product

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tconv import _native  # noqa: E402
from tconv.allocator import tune_allocator  # noqa: E402
from tconv.api import geometry  # noqa: E402
from tconv.kernels import _core, conv_transpose  # noqa: E402
from tconv.kernels import phase as phase_module  # noqa: E402


N, H, W, C = 4, 32, 32, 64
TAPS = [(i, j) for i in range(4) for j in range(4)]


def median_ms(fn, number: int = 50) -> float:
    fn()
    times = []
    for _ in range(number):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def depthwise() -> None:
    rng = np.random.default_rng(0)
    source = rng.standard_normal((N, H + 2, W + 2, C), dtype=np.float32)  # padded input
    weights = rng.standard_normal((len(TAPS), C), dtype=np.float32)
    rows = np.ascontiguousarray(np.tile(weights, (1, W)))  # each tap's weight repeated along a row
    acc = np.empty((N, H, W * C), np.float32)
    terms = [np.empty((H, W * C), np.float32) for _ in range(2)]

    def window(b, i, j):
        return source[b, (i + 1) // 2: (i + 1) // 2 + H, (j + 1) // 2: (j + 1) // 2 + W]

    def taps(b, tiled, term):
        for k, (i, j) in enumerate(TAPS):
            src = window(b, i, j)
            out, scratch, weight = acc[b].reshape(H, W, C), term.reshape(H, W, C), weights[k]
            if tiled:
                src, out, scratch, weight = src.reshape(H, W * C), acc[b], term, rows[k]
            if k == 0:
                np.multiply(src, weight, out=out)
            else:
                np.multiply(src, weight, out=scratch)
                np.add(out, scratch, out=out)

    def broadcast():
        for b in range(N):
            taps(b, False, terms[0])

    def tiled():
        for b in range(N):
            taps(b, True, terms[0])

    pool = ThreadPoolExecutor(2)

    def threaded():
        futures = [pool.submit(lambda t=t: [taps(b, True, terms[t]) for b in range(t, N, 2)]) for t in range(2)]
        for future in futures:
            future.result()

    output = np.empty((N, 2 * H, 2 * W, C), np.float32)
    phase = np.empty((N, H, W, C), np.float32)

    def place():
        for a in range(2):
            for b in range(2):
                output[:, a::2, b::2] = phase

    elements = N * H * W * C
    print(f"depthwise k4 s2, {C} channels, {H}x{W}, batch {N}: {len(TAPS)} taps x {N} batch elements, "
          f"{2 * len(TAPS) * N} NumPy calls of {elements // N} elements")
    for name, fn in (("taps, weight broadcast per pixel", broadcast), ("taps, weight repeated along rows", tiled),
                     ("taps, rows, two threads", threaded), ("placing the 4 phases", place)):
        ms = median_ms(fn)
        rate = 2 * len(TAPS) * elements / (ms * 1e6) if name.startswith("taps") else float("nan")
        print(f"  {name:<36} {ms:6.2f} ms" + (f"  ({rate:.1f} elements/ns per call)" if rate == rate else ""))
    pool.shutdown()

    g = geometry((H, W), 4, "pytorch", stride=2, padding=1, groups=C)
    problem = _core.Problem(source[:, 1:-1, 1:-1].reshape(N, H, W, C, 1),
                            weights.T.reshape(C, 1, 1, 4, 4).copy(), g.axes, tuple(ax.kept for ax in g.axes))
    per_axis = [ax.phases(*ax.kept) for ax in g.axes]
    assert phase_module.form(problem, per_axis) in ("rows", "compiled")
    whole = median_ms(lambda: phase_module.FORMS["rows"](problem, per_axis))
    einsum_calls = []
    real_einsum = np.einsum

    def timed_einsum(*args, **kwargs):
        start = time.perf_counter()
        result = real_einsum(*args, **kwargs)
        einsum_calls.append(time.perf_counter() - start)
        return result

    np.einsum = timed_einsum
    try:
        median_ms(lambda: phase_module.FORMS["rows"](problem, per_axis))
    finally:
        np.einsum = real_einsum
    calls = len(einsum_calls) // 51  # median_ms: one warm-up call and 50 timed
    einsum_ms = statistics.median(einsum_calls) * 1e3 * calls
    print(f"  {'rows form (no C loops), whole':<36} {whole:6.2f} ms")
    print(f"  {f'  of which its {calls} einsum calls':<36} {einsum_ms:6.2f} ms  "
          f"({len(TAPS) * elements / (einsum_ms * 1e6):.1f} multiply-adds/ns)")
    if _native.library() is not None:
        compiled = median_ms(lambda: phase_module.FORMS["compiled"](problem, per_axis))
        print(f"  {'compiled form (what auto runs here)':<36} {compiled:6.2f} ms  "
              f"({len(TAPS) * elements / (compiled * 1e6):.1f} multiply-adds/ns)")
        # PyTorch-layout (NCHW) input must become channels-last first: NumPy's copy against the C transpose
        first = np.ascontiguousarray(np.moveaxis(source[:, 1:-1, 1:-1], -1, 1))
        by_numpy = median_ms(lambda: np.ascontiguousarray(np.moveaxis(first, 1, -1)))
        by_c = median_ms(lambda: _native.channels_last(first))
        print(f"  {'NCHW input to channels-last: NumPy':<36} {by_numpy:6.2f} ms, the C transpose {by_c:.2f} ms")
    else:
        print(f"  compiled form: not timed, tconv's C loops are not built here ({_native.native_status()})")


def gemm_then_sums() -> None:
    n, cin, cout, size = 16, 128, 64, (16, 16)
    rng = np.random.default_rng(0)
    x_last = rng.standard_normal((n, *size, cin), dtype=np.float32)
    w = rng.standard_normal((cin, cout, 4, 4), dtype=np.float32)
    g = geometry(size, 4, "pytorch", stride=2, padding=1)
    problem = _core.Problem(x_last.reshape(n, *size, 1, cin), w.reshape(1, cin, cout, 4, 4), g.axes,
                            tuple(ax.kept for ax in g.axes))
    x = np.moveaxis(x_last, -1, 1)  # channels-last memory in NCHW indexing, as bench_algorithms passes it
    per_axis = [ax.phases(*ax.kept) for ax in g.axes]
    taps_form = median_ms(lambda: phase_module.FORMS["taps"](problem, per_axis), 20)
    gemm = median_ms(lambda: _core.tap_products(problem), 20)
    shifted = median_ms(lambda: phase_module.FORMS["shifted"](problem, per_axis), 20)
    flops = 2 * n * size[0] * size[1] * cin * cout * 16
    print(f"DCGAN 4, 128->64, 16x16, k4 s2 p1, batch {n}, phase algorithm:")
    print(f"  {'taps (kn2row) form, whole':<36} {taps_form:6.2f} ms")
    print(f"  {'its all-taps GEMM alone':<36} {gemm:6.2f} ms  ({flops / gemm / 1e6:.0f} GF/s)")
    print(f"  {'its per-phase sums and placement':<36} {taps_form - gemm:6.2f} ms  (the difference)")
    print(f"  {'shifted form, whole (what auto runs)':<36} {shifted:6.2f} ms  ({flops / shifted / 1e6:.0f} GF/s useful)")

    # Two other orders, checked against tconv's result: one GEMM per tap (each tap's products
    # contiguous, so the sums stream), and one GEMM per phase (its 4 taps side by side).
    phases = list(product(*(ax.phases(*ax.kept) for ax in g.axes)))
    rows = x_last.reshape(-1, cin)
    expected = np.moveaxis(conv_transpose(x, w, stride=2, padding=1, algorithm="phase"), 1, -1)

    def place(out, combination, tap_planes):
        (o0, qh, q0h, _), (o1, qw, q0w, _) = combination
        acc = np.zeros((n, qh, qw, cout), np.float32)
        for plane, ((_, ch), (_, cw)) in tap_planes:
            lo_h, hi_h = max(0, ch - q0h), min(qh, size[0] + ch - q0h)
            lo_w, hi_w = max(0, cw - q0w), min(qw, size[1] + cw - q0w)
            acc[:, lo_h:hi_h, lo_w:hi_w] += plane[:, q0h + lo_h - ch:q0h + hi_h - ch, q0w + lo_w - cw:q0w + hi_w - cw]
        out[:, o0::2, o1::2] = acc

    def per_tap(out, timings):
        start = time.perf_counter()
        planes = {(kh, kw): (rows @ w[:, :, kh, kw]).reshape(n, *size, cout) for kh in range(4) for kw in range(4)}
        middle = time.perf_counter()
        for combination in phases:
            place(out, combination, [(planes[th, tw], ((th, ch), (tw, cw)))
                                     for (th, ch), (tw, cw) in product(combination[0][3], combination[1][3])])
        timings.append((middle - start, time.perf_counter() - middle))

    def per_phase(out):
        for combination in phases:
            taps = list(product(combination[0][3], combination[1][3]))
            matrix = np.concatenate([w[:, :, th, tw] for (th, _), (tw, _) in taps], axis=1)
            products = (rows @ matrix).reshape(n, *size, len(taps), cout)
            place(out, combination, [(products[..., i, :], tap) for i, tap in enumerate(taps)])

    out = np.empty_like(expected)
    timings: list[tuple[float, float]] = []
    per_tap(out, timings)
    assert np.allclose(out, expected, rtol=1e-4, atol=1e-3), "per-tap order disagrees with tconv"
    timings.clear()
    tap_total = median_ms(lambda: per_tap(out, timings), 20)
    gemms = statistics.median(t for t, _ in timings) * 1e3
    out[...] = 0
    per_phase(out)
    assert np.allclose(out, expected, rtol=1e-4, atol=1e-3), "per-phase order disagrees with tconv"
    phase_total = median_ms(lambda: per_phase(out), 20)
    print(f"  {'one GEMM per tap, then sums':<36} {tap_total:6.2f} ms  (GEMMs {gemms:.2f} ms, sums {tap_total - gemms:.2f} ms)")
    print(f"  {'one GEMM per phase, then sums':<36} {phase_total:6.2f} ms")


def phase_forms(rounds: int = 5) -> None:
    from tconv.kernels.benchmark import SETTLE_S, SUITE

    rng = np.random.default_rng(0)
    print(f"phase forms on bench_algorithms.py's suite (ms, median of {rounds} rounds, each form timed after "
          f"{SETTLE_S} s of its own untimed calls, as bench_algorithms.py times; * = what phase.form picks):")
    for layer in SUITE:
        nd = len(layer.spatial)
        g = geometry(layer.spatial, layer.kernel, "pytorch", **layer.args)
        x = rng.standard_normal((layer.batch, *layer.spatial, layer.groups, layer.in_channels // layer.groups), dtype=np.float32)
        w = rng.standard_normal((layer.groups, layer.in_channels // layer.groups, layer.out_channels // layer.groups,
                                 *(layer.kernel,) * nd), dtype=np.float32)
        problem = _core.Problem(x, w, g.axes, tuple(ax.kept for ax in g.axes))
        per_axis = [ax.phases(*ax.kept) for ax in g.axes]
        picked = phase_module.form(problem, per_axis)
        depthwise = layer.groups > 1 and layer.in_channels == layer.groups
        names = [name for name in phase_module.FORMS
                 if (depthwise or name not in ("rows", "compiled")) and (name != "compiled" or _native.library() is not None)]
        times = {name: [] for name in names}
        for _ in range(rounds):  # round-robin, so background load hits every form alike
            for name in names:
                compute = phase_module.FORMS[name]
                settle = time.perf_counter() + SETTLE_S
                while time.perf_counter() < settle:  # outlasts the previous form's spinning BLAS threads
                    compute(problem, per_axis)
                start = time.perf_counter()
                compute(problem, per_axis)
                times[name].append(time.perf_counter() - start)
        cells = [f"{name} {statistics.median(times[name]) * 1e3:6.2f}{'*' if name == picked else ' '}" for name in names]
        print(f"  {layer.name.split(':')[0]:<22} " + "  ".join(cells))


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="example: python benchmarks/bench_numpy_parts.py").parse_args()
    tune_allocator()  # as bench_algorithms.py does, so the numbers explain its table
    depthwise()
    gemm_then_sums()
    phase_forms()
