"""Run code in a fresh Python process where tconv's C loops cannot be had (shared by the NumPy and torch tests)."""
from __future__ import annotations

import os
import subprocess
import sys

#: the two ways a process ends up without the loops: switched off, or a compiler that fails
ENVIRONMENTS = [{"TCONV_NATIVE": "0"}, {"CC": "/bin/false"}]


def run_without_c_loops(code: str, env: dict, cache_dir) -> list[str]:
    """Run ``code`` (whose first printed line must be the loops' status) with ``env`` and an empty
    cache folder; check that it passed, that the status gives the right reason and that no
    library was built. Returns the printed lines."""
    environment = dict(os.environ)
    environment.pop("TCONV_NATIVE", None)
    environment.update(TCONV_CACHE_DIR=str(cache_dir), **env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    if "TCONV_NATIVE" in env:
        assert lines[0] == "switched off by TCONV_NATIVE=0"
    else:
        assert lines[0].startswith("the build failed")
    assert not list(cache_dir.glob("*.so"))
    return lines
