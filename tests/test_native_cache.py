"""tconv's C loops load only from a cache folder that no one else can write (tconv/_native.py).

A library in the cache runs as code in every tconv process, so a folder or a
library that another user could have written must never be loaded. Each case
plants, under the exact names tconv would load, a library whose constructor
leaves a marker file, then runs a fresh process (the main test process keeps
its own loops untouched) and checks: the marker never appears, the loops
still build, in a private 0o700 folder that is gone after exit, and a
:class:`CacheFolderWarning` says what was refused and why.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tconv import _native

PROBE = r"""
import json, os, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from tconv import _native
    try:
        loaded = _native.library() is not None
    except AttributeError:  # a planted library without the loops' symbols did load
        loaded = None
private = _native._private
maps = set()
if os.path.exists("/proc/self/maps"):
    with open("/proc/self/maps") as lines:
        maps = {line.split()[-1] for line in lines if "/kernels-" in line}
info = os.stat(private) if private else None
print(json.dumps({
    "loaded": loaded, "status": _native.native_status() if loaded is not None else "a planted library", "maps": sorted(maps),
    "warnings": [[w.category.__name__, [c.__name__ for c in w.category.__mro__], str(w.message)] for w in caught],
    "private": str(private) if private else None,
    "private_mode": info.st_mode & 0o7777 if info else None,
    "private_uid": info.st_uid if info else None,
}))
"""

PLANTED = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *marker = getenv("TCONV_TEST_MARKER");
    FILE *f = marker ? fopen(marker, "w") : NULL;
    if (f) { fputs("the planted library ran\n", f); fclose(f); }
}
"""


def _compiler() -> str:
    if os.environ.get("TCONV_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        pytest.skip("switched off by TCONV_NATIVE=0")
    if not sys.platform.startswith("linux") and sys.platform != "darwin":
        pytest.skip(f"no C loops on {sys.platform}")
    compiler = _native._compiler()
    if compiler is None:
        pytest.skip("no C compiler on this machine")
    return compiler


@pytest.fixture(scope="module")
def planted_library(tmp_path_factory) -> Path:
    """A shared library that, once loaded, writes ``$TCONV_TEST_MARKER``."""
    compiler = _compiler()
    folder = tmp_path_factory.mktemp("planted")
    source, library = folder / "planted.c", folder / "planted.so"
    source.write_text(PLANTED)
    subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(library)], check=True, timeout=120)
    return library


@pytest.fixture
def sandbox(tmp_path):
    """Where a probe's private folder (``$TMPDIR``) and the planted library's marker go."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o700)
    return tmp, tmp_path / "marker"


def _ids(value) -> str:
    return f"{value:#05o}" if isinstance(value, int) else value.replace(" ", "-")


def _names() -> list[str]:
    """The file names tconv loads from the cache, one per flag set, as the probe will work them out."""
    compiler, source = _compiler(), _native.SOURCE.read_bytes()
    return [_native._library_name(compiler, flags, source) for flags in _native._FLAG_SETS]


def _plant(folder: Path, library: Path, mode: int = 0o755, uid: int | None = None) -> list[Path]:
    planted = []
    for name in _names():
        shutil.copyfile(library, folder / name)
        os.chmod(folder / name, mode)
        if uid is not None:
            os.chown(folder / name, uid, -1)
        planted.append(folder / name)
    return planted


def _probe(cache: Path, sandbox, umask: int | None = None) -> dict:
    tmp, marker = sandbox
    environment = dict(os.environ, TCONV_CACHE_DIR=str(cache), TMPDIR=str(tmp), TCONV_TEST_MARKER=str(marker))
    environment.pop("TCONV_NATIVE", None)
    code = PROBE if umask is None else f"import os; os.umask({umask:#o})\n" + PROBE
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def _assert_refused(result: dict, sandbox, *why: str) -> None:
    """Nothing planted ran, the loops were built and loaded in a private folder, and a warning says why."""
    tmp, marker = sandbox
    assert not marker.exists(), "the planted library was loaded"
    assert result["loaded"] is True, result["status"]
    private = result["private"]
    assert private is not None and Path(private).parent == tmp, result
    assert result["private_mode"] == 0o700 and result["private_uid"] == os.geteuid(), result
    assert result["status"].startswith(f"built with {_compiler()} ") and f" at {private}/kernels-" in result["status"]
    if result["maps"] or os.path.exists("/proc/self/maps"):
        assert result["maps"] and all(Path(path).parent == Path(private) for path in result["maps"]), result
    assert not list(tmp.iterdir()), "the private folder outlived its process"
    cache_warnings = [w for w in result["warnings"] if w[0] == "CacheFolderWarning"]
    assert len(cache_warnings) == 1, result["warnings"]
    _, mro, message = cache_warnings[0]
    assert "RuntimeWarning" in mro and "UserWarning" not in mro and "FrameworkQuirkWarning" not in mro
    for part in why:
        assert part in message, message
    assert f"Building them in {private} instead" in message, message


@pytest.mark.parametrize("mode, writers", [(0o777, "its group and everyone"), (0o775, "its group"),
                                           (0o757, "everyone"), (0o1777, "its group and everyone")], ids=_ids)
def test_a_cache_folder_others_can_write_is_never_loaded_from(planted_library, sandbox, tmp_path, mode, writers):
    cache = tmp_path / "cache"
    cache.mkdir()
    planted = _plant(cache, planted_library)
    os.chmod(cache, mode)
    result = _probe(cache, sandbox)
    _assert_refused(result, sandbox, f"the cache folder {cache} is writable by {writers} (mode {mode:#o})")
    assert sorted(cache.iterdir()) == sorted(planted), "tconv built in the refused folder"


@pytest.mark.parametrize("mode, writers", [(0o666, "its group and everyone"), (0o775, "its group"),
                                           (0o757, "everyone")], ids=_ids)
def test_a_library_others_can_write_is_never_loaded(planted_library, sandbox, tmp_path, mode, writers):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    first = _plant(cache, planted_library, mode)[0]
    result = _probe(cache, sandbox)
    _assert_refused(result, sandbox, f"the library {first} is writable by {writers} (mode {mode:#o})")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
@pytest.mark.parametrize("what", ["folder", "library"])
def test_a_cache_another_user_owns_is_never_loaded_from(planted_library, sandbox, tmp_path, what):
    other = 54321
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    first = _plant(cache, planted_library, 0o755, other if what == "library" else None)[0]
    if what == "folder":
        os.chown(cache, other, -1)
    result = _probe(cache, sandbox)
    refused = cache if what == "folder" else first
    _assert_refused(result, sandbox, f"{refused} is owned by uid {other}, not by this process's uid 0")


def test_the_planted_library_is_what_a_trusted_cache_would_load(planted_library, sandbox, tmp_path):
    """The control for the tests above: their planted files sit where tconv loads from, and their marker shows it."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    _plant(cache, planted_library)
    result = _probe(cache, sandbox)
    assert sandbox[1].exists() and result["loaded"] is None, result
    assert result["private"] is None and not [w for w in result["warnings"] if w[0] == "CacheFolderWarning"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000], ids=_ids)
def test_a_new_cache_is_private_and_trusted_by_the_next_process(sandbox, tmp_path, umask):
    """tconv makes the cache (and its missing parents) 0o700 and its library writable by its owner alone,
    whatever the umask, so the next process loads it from there without a warning or a rebuild."""
    _compiler()
    cache = tmp_path / "new" / "cache"
    results = [_probe(cache, sandbox, umask) for _ in range(2)]
    for result in results:
        assert result["loaded"] is True and result["private"] is None, result
        assert not [w for w in result["warnings"] if w[0] == "CacheFolderWarning"], result["warnings"]
        assert f" at {cache}/kernels-" in result["status"], result["status"]
    for folder in (cache, cache.parent):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, oct(os.stat(folder).st_mode)
    (library,) = cache.iterdir()  # no scratch folder left behind
    info = os.stat(library)
    assert info.st_uid == os.geteuid() and not info.st_mode & 0o022, oct(info.st_mode)
    assert not list(sandbox[0].iterdir())


def test_a_cache_folder_that_cannot_be_written_means_no_c_loops_and_no_warning(sandbox, tmp_path):
    _compiler()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = blocker / "cache"  # can be neither made nor written, even by root
    result = _probe(cache, sandbox)
    assert result["loaded"] is False and result["status"].startswith("the build failed"), result
    assert f"cannot write to {cache}" in result["status"], result["status"]
    assert result["private"] is None and not [w for w in result["warnings"] if w[0] == "CacheFolderWarning"]


def test_a_library_is_checked_before_it_is_loaded(tmp_path):
    """Refused before dlopen sees it (a file that is not a library would fail there with an OSError)."""
    library = tmp_path / "kernels-0.so"
    library.write_bytes(b"not a library")
    os.chmod(library, 0o666)
    with pytest.raises(_native._Refused, match=r"writable by its group and everyone \(mode 0o666\)"):
        _native._open_library(library)
    os.chmod(library, 0o644)
    with pytest.raises(OSError):
        _native._open_library(library)
