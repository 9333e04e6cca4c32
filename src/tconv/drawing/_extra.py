"""How to install the ``draw`` extra, said the way that works where this tconv was installed from."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the tconv package folder


def source_checkout(package: Path = PACKAGE) -> Path | None:
    """The source tree this tconv runs from (``pip install -e .``, or ``src/`` on the path), else None.

    A checkout keeps the package in ``src/tconv`` with tconv's ``pyproject.toml`` two levels above
    it; an installed wheel's package sits in ``site-packages``, where there is none.
    """
    root = package.parent.parent
    try:
        text = (root / "pyproject.toml").read_text()
    except OSError:
        return None
    return root if 'name = "tconv"' in text else None


def install_hint(package: Path = PACKAGE) -> str:
    """The pip command that installs the ``draw`` extra (matplotlib, Pillow, Rich) for this tconv.

    >>> from pathlib import Path
    >>> install_hint(Path("/nowhere/site-packages/tconv"))
    "pip install 'tconv[draw]'"
    >>> install_hint().startswith("pip install -e '.[draw]' (in ")   # the tests run from a checkout
    True
    """
    root = source_checkout(package)
    return f"pip install -e '.[draw]' (in {root})" if root else "pip install 'tconv[draw]'"
