"""`make bench`: run every benchmark script in this folder (bench_*.py), each in its own process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import argparse

here = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(
    description="Run every benchmark script in benchmarks/ (bench_*.py), each in its own process, then rewrite "
                "docs/performance.md from the saved results.",
    epilog="example: python benchmarks/run.py vocoder layout   # only bench_vocoder.py and bench_layout.py",
)
parser.add_argument("names", nargs="*", help="run only the scripts whose name contains one of these")
options = parser.parse_args()
scripts = sorted(here.glob("bench_*.py"))
if options.names:
    scripts = [s for s in scripts if any(name in s.name for name in options.names)]
    if not scripts:
        parser.error(f"no benchmark script matches {' '.join(options.names)}")
status = 0
for script in scripts:
    print(f"== {script.name}", flush=True)
    status |= subprocess.call([sys.executable, str(script)])
status |= subprocess.call([sys.executable, str(here / "make_performance_doc.py")])
sys.exit(status)
