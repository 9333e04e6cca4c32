"""`make bench`: run every benchmark script in this folder (bench_*.py), each in its own process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
scripts = sorted(here.glob("bench_*.py"))
if len(sys.argv) > 1:
    scripts = [s for s in scripts if any(name in s.name for name in sys.argv[1:])]
status = 0
for script in scripts:
    print(f"== {script.name}", flush=True)
    status |= subprocess.call([sys.executable, str(script)])
sys.exit(status)
