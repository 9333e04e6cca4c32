"""``tconv bench``: run the algorithm benchmark (tconv.kernels.benchmark) from the command line."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``bench`` subcommand."""
    p = subparsers.add_parser(
        "bench",
        help="time the four NumPy algorithms and torch on real decoder layers",
        description="Time scatter, zero_insertion, col2im, phase and auto (and torch's native conv_transpose "
        "when installed) on DCGAN, U-Net, 3-D U-Net, HiFi-GAN and depthwise layers; print medians, GF/s and "
        "peak memory.",
    )
    p.add_argument("--quick", action="store_true", help="batch/4 and 2 repeats: a fast smoke run")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per algorithm and layer (median; default 5)")
    p.add_argument("--out", default=None, help="folder for algorithms.md/.json/.png (default: print only)")
    p.set_defaults(func=_run)


def _run(ns: argparse.Namespace) -> int:
    from ..cli import CliError
    from .benchmark import main

    repeat = ns.repeat if ns.repeat is not None else (2 if ns.quick else 5)
    if repeat < 1:
        raise CliError(f"--repeat {repeat} must be at least 1")
    return main(repeat=repeat, quick=ns.quick, out=ns.out)
