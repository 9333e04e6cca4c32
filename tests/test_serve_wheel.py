"""The wheel carries the explorer: built from a copy of the checkout, installed into a fresh virtual
environment outside it (numpy from the local cache, nothing else), and the page served from there.
It also shows every other package file made it in (_kernels.c, py.typed, the static files)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tconv"


def _run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy, so the shared checkout gains no build/ or egg-info of this test's making.
    src = tmp_path_factory.mktemp("checkout")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so"))
    out = tmp_path_factory.mktemp("wheels")
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)])
    (found,) = out.glob("tconv-*.whl")
    return found


def test_the_wheel_holds_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".so", ".pyc")}
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
    for name in ("tconv/_kernels.c", "tconv/py.typed", "tconv/serve/static/index.html", "tconv/serve/static/app.js",
                 "tconv/serve/static/style.css"):
        assert name in names


def test_the_installed_wheel_serves_the_page(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    import numpy

    # numpy as this machine has it (pip's cache or the local index; no network needed), tconv from the wheel only
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel), f"numpy=={numpy.__version__}"])
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = _run([str(python), "-c", "import tconv, pathlib; print(pathlib.Path(tconv.__file__).parent)"], cwd=work, env=env)
    assert str(ROOT) not in where.stdout and str(env_dir) in where.stdout
    proc = subprocess.Popen([str(env_dir / "bin" / "tconv"), "serve", "--no-browser"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("tconv explorer at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[3]
        page = urllib.request.urlopen(url, timeout=20).read().decode()
        assert "tconv explorer" in page and "/static/app.js" in page
        assert b"fetchAnswer" in urllib.request.urlopen(url + "static/app.js", timeout=20).read()
        query = "api/layer?framework=keras&input=8x8&kernel=3&stride=2&padding=same"
        answer = json.loads(urllib.request.urlopen(url + query, timeout=20).read())
        assert answer["output_size"] == "16x16"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
