"""The public API is complete and discoverable: every name in ``__all__`` resolves, ``dir()`` lists it,
the package says it is typed, and importing it stays cheap."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tconv


def test_every_name_in_all_resolves_and_dir_lists_it():
    for name in tconv.__all__:
        assert getattr(tconv, name) is not None, name
        assert name in dir(tconv), name
    for module in ("conventions", "kernels"):
        assert module in dir(tconv)
    assert callable(tconv.draw) and callable(tconv.solve) and callable(tconv.convert)


def test_the_package_is_typed():
    assert (Path(tconv.__file__).parent / "py.typed").is_file()


def test_import_tconv_loads_no_numpy_and_no_framework():
    code = ("import sys, tconv; tconv.output_shape((8, 8), 3, 'keras', strides=2, padding='same'); "
            "print(sorted(m for m in ('numpy', 'torch', 'tensorflow', 'jax') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
