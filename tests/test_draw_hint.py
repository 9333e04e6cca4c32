"""Without the draw extra, `tconv draw` says how to install it: the checkout's form from a source tree."""
from __future__ import annotations

import sys

import pytest

from tconv.cli import main
from tconv.drawing._extra import install_hint, source_checkout


@pytest.mark.parametrize("argv, missing", [
    (["draw", "3", "-k", "3", "-s", "2", "--out", "x.png"], "matplotlib"),
    (["draw", "3", "-k", "3", "-s", "2"], "rich"),
])
def test_draw_without_the_extra_names_the_checkout_install(argv, missing, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[draw]'" in err and str(source_checkout()) in err
    assert not (tmp_path / "x.png").exists()


def test_outside_a_checkout_the_hint_is_the_package_index_form(tmp_path):
    package = tmp_path / "site-packages" / "tconv"
    package.mkdir(parents=True)
    assert install_hint(package) == "pip install 'tconv[draw]'"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')  # someone else's project
    assert install_hint(package) == "pip install 'tconv[draw]'"
