"""``tconv bench``: run the algorithm benchmark (tconv.kernels.benchmark) in a fresh process."""
from __future__ import annotations

import argparse
import subprocess
import sys

from ._common import CliError


def register(subparsers) -> None:
    """Add the ``bench`` subcommand."""
    p = subparsers.add_parser(
        "bench",
        help="time the four NumPy algorithms and torch on real decoder layers",
        description="Time scatter, zero_insertion, col2im, phase and auto (and torch's native conv_transpose "
        "when installed) on DCGAN, U-Net, 3-D U-Net, HiFi-GAN and depthwise layers; print medians, GF/s and "
        "peak memory. Without --only, a 2-D layer at strides 2, 4 and 8 also times zero_insertion against phase.",
    )
    p.add_argument("--quick", action="store_true", help="batch/4 and 2 repeats: a fast smoke run")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per algorithm and layer (median; default 5)")
    p.add_argument("--threads", type=int, default=None, help="threads for NumPy's BLAS and torch (default: all cores)")
    p.add_argument("--out", default=None, help="folder for algorithms.md/.json/.png (default: print only)")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="run only the layers whose name contains TEXT (repeatable), e.g. --only DCGAN")
    p.add_argument("--allocator", choices=["tuned", "default"], default="tuned",
                   help="tuned (default): tconv.tune_allocator() first; default: glibc's allocator as the process starts")
    p.set_defaults(func=_run)


def _run(ns: argparse.Namespace) -> int:
    from ..kernels.benchmark import SUITE, thread_environment

    if ns.repeat is not None and ns.repeat < 1:
        raise CliError(f"--repeat {ns.repeat} must be at least 1")
    if ns.threads is not None and ns.threads < 1:
        raise CliError(f"--threads {ns.threads} must be at least 1")
    for text in ns.only:
        if not any(text.lower() in layer.name.lower() for layer in SUITE):
            raise CliError(f"--only {text!r} matches no layer; names contain e.g. DCGAN, U-Net, 3-D, HiFi-GAN, depthwise")
    argv = [sys.executable, "-m", "tconv.kernels.benchmark"]
    argv += ["--quick"] if ns.quick else []
    for flag in ("repeat", "threads", "out"):
        if getattr(ns, flag) is not None:
            argv += [f"--{flag}", str(getattr(ns, flag))]
    for text in ns.only:
        argv += ["--only", text]
    argv += ["--allocator", ns.allocator]
    # a fresh process, so that the thread count reaches BLAS before NumPy loads
    return subprocess.call(argv, env=thread_environment(ns.threads))
