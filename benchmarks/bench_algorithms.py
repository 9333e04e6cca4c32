"""Benchmark tconv's four NumPy algorithms (and auto) against torch's native conv_transpose.

    python benchmarks/bench_algorithms.py [--quick] [--repeat N]   (or: make bench, tconv bench)

Real decoder layers (DCGAN, U-Net 2-D/3-D, HiFi-GAN, depthwise), float32, one
process, all competitors in the same run. Prints a table and the speed targets;
writes benchmarks/results/algorithms.{md,json,png}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tconv.kernels.benchmark import main  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch/4 and 2 repeats: a fast smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per algorithm and layer (median; default 5)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="where to save results")
    ns = parser.parse_args()
    repeat = ns.repeat if ns.repeat is not None else (2 if ns.quick else 5)
    sys.exit(main(repeat=repeat, quick=ns.quick, out=ns.out))
