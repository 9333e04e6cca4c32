"""The picker's choices on disk: measured once per machine, torch version and signature, kept across processes.

The picker (:mod:`tconv.torch.picker`) measures a new signature once; this
module keeps what it found in one small JSON file per machine and torch
version, in tconv's cache folder (``$TCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/tconv`` or ``~/.cache/tconv``, the folder the C loops are
cached in), so a new process reuses it instead of measuring again.

* **The key.** The file's name is a hash of the machine (the CPU's model
  name and a hash of its feature flags), the torch version, tconv's version
  and the file format; inside, each choice is keyed by the picker's
  signature (sizes, window, channels, groups, batch bucket, dtype, device,
  layout, threads, gradients, bias).
* **Trust.** A choice only selects among tconv's own strategies, and one
  that does not exist or does not apply to the layer is ignored, so a bad
  entry can cost speed but never a wrong value. Still, the folder must pass
  the C loops' rule (owned by this user, writable by no one else: see
  :mod:`tconv._native`) and so must the file; where they do not, nothing is
  read or written there, with a :class:`ChoiceCacheWarning`.
* **A corrupt or foreign file** (not JSON, another format, another machine's
  or torch's identity in it, another user's) is ignored with a
  :class:`ChoiceCacheWarning` and rewritten at the next save.
* **Concurrent processes.** A save reads the file, adds its entry and writes
  a temporary file in the same folder, then ``os.replace``-s it: readers see
  the old file or the new one, never half of one. Two processes saving at the
  same moment may drop each other's newest entry; it is then measured again,
  once.
* ``TCONV_CHOICE_CACHE=0`` keeps choices in memory only.

Examples
--------
>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> store = Store(folder)
>>> store.save("key", {"strategy": "native", "speedup": 1.0, "layer": "2-D", "signature": "8x8"})
>>> Store(folder).load()["key"]["strategy"]
'native'
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import __version__ as _tconv_version
from .. import _native as _c_native

__all__ = ["ChoiceCacheWarning", "Store", "identity", "store"]

#: bumped when the file's layout or the meaning of a key changes
FORMAT = 1


class ChoiceCacheWarning(RuntimeWarning):
    """The choice cache was not used, or a file in it was ignored: said once per reason."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def identity() -> dict:
    """What a choice depends on besides its signature: the machine, torch and tconv."""
    flags = _c_native._cpu_signature()
    return {"format": FORMAT, "cpu": _cpu_model(), "cpu_flags": hashlib.sha256(flags.encode()).hexdigest()[:16],
            "torch": torch.__version__, "tconv": _tconv_version}


class Store:
    """One choices file: ``load()`` the entries, ``save(key, entry)`` one more (see the module docstring)."""

    def __init__(self, folder: Any) -> None:
        self.folder = Path(folder)
        self.identity = identity()
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:16]
        self.path = self.folder / f"torch-choices-{digest}.json"
        self._seen: tuple | None = None  # (mtime_ns, size) of the file last read
        self._entries: dict[str, dict] = {}
        self._warned: set[str] = set()

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, ChoiceCacheWarning, stacklevel=4)

    def usable(self) -> bool:
        """Whether the folder is this user's alone (created 0o700 where missing)."""
        try:
            _c_native._check_folder(self.folder)
        except _c_native._Refused as refusal:
            self._warn(f"tconv.torch keeps its choices in memory only: {refusal}")
            return False
        return True

    def load(self) -> dict[str, dict]:
        """The entries on disk (re-read only when the file changed); {} for a missing or ignored file."""
        if not self.usable():
            return {}
        try:
            info = os.stat(self.path)
        except OSError:
            self._seen, self._entries = None, {}
            return {}
        seen = (info.st_mtime_ns, info.st_size)
        if seen == self._seen:
            return self._entries
        self._seen, self._entries = seen, {}
        refusal = _c_native._unsafe(info, f"the choices file {self.path}")
        if refusal:
            self._warn(f"{refusal}: ignored, and rewritten at the next save")
            return {}
        try:
            with open(self.path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError) as err:
            self._warn(f"the choices file {self.path} cannot be read ({err}): ignored, and rewritten at the next save")
            return {}
        if not isinstance(data, dict) or data.get("identity") != self.identity or not isinstance(
                data.get("choices"), dict):
            self._warn(f"the choices file {self.path} is not this machine's, torch's and tconv's (or not a choices "
                       "file): ignored, and rewritten at the next save")
            return {}
        self._entries = {k: v for k, v in data["choices"].items()
                         if isinstance(v, dict) and isinstance(v.get("strategy"), str)}
        return self._entries

    def save(self, key: str, entry: dict) -> None:
        """Add one entry: read, merge, write a temporary file, ``os.replace`` it (safe for concurrent readers)."""
        entries = dict(self.load())
        if not self.usable():
            return
        entries[key] = entry
        data = {"identity": self.identity, "choices": entries}
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".torch-choices-", suffix=".tmp")
        except OSError as err:
            self._warn(f"tconv.torch cannot write its choices in {self.folder} ({err}): kept in memory only")
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=0, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as err:
            self._warn(f"tconv.torch cannot write its choices to {self.path} ({err}): kept in memory only")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self._entries, self._seen = entries, None

    def clear(self) -> None:
        """Remove the file."""
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._seen, self._entries = None, {}


_store: Store | None = None


def store() -> Store | None:
    """This process's :class:`Store` (for the cache folder in force now), or None when switched off."""
    global _store
    if os.environ.get("TCONV_CHOICE_CACHE", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    folder = _c_native._cache_dir()
    if _store is None or _store.folder != folder:
        _store = Store(folder)
    return _store
