"""Benchmark tconv's four NumPy algorithms (and auto) against torch's native conv_transpose.

    python benchmarks/bench_algorithms.py [--quick] [--repeat N] [--threads N] [--out DIR]
    (also: make bench, tconv bench)

Real decoder layers (DCGAN, U-Net 2-D/3-D, HiFi-GAN, depthwise), float32, one
process, all competitors in the same run. Prints a table and the speed targets;
writes benchmarks/results/algorithms.{md,json,png} by default.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
argv = sys.argv[1:]
if "--threads" in argv:  # BLAS reads its thread count when NumPy loads: set it first
    count = argv[argv.index("--threads") + 1]
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = count
if "--out" not in argv:
    argv += ["--out", str(HERE / "results")]
sys.path.insert(0, str(HERE.parent / "src"))

from tconv.kernels.benchmark import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(argv))
