"""The README's and the docs pages' examples run as written: python blocks as doctests, `$ tconv ...`
lines against their shown output. docs/performance.md must be what benchmarks/make_performance_doc.py
writes from benchmarks/results/, so its numbers cannot drift from the saved results."""
from __future__ import annotations

import doctest
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from tconv.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/README.md"))]


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _blocks(page: Path) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", page.read_text(), flags=re.S)


def test_the_pages_are_found():
    names = {_name(page) for page in PAGES}
    assert {"README.md", "docs/algorithms.md", "docs/torch.md", "docs/native.md"} <= names


@pytest.mark.parametrize("page", [p for p in PAGES if any(lang == "python" for lang, _ in _blocks(p))], ids=_name)
def test_python_blocks_are_doctests(page):
    # One page is one doctest: its blocks share names, as a reader runs them top to bottom.
    source = "\n\n".join(body for lang, body in _blocks(page) if lang == "python")
    test = doctest.DocTestParser().get_doctest(source, {}, _name(page), str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def _console_examples():
    for page in PAGES:
        for lang, body in _blocks(page):
            if lang != "console":
                continue
            lines = body.splitlines()
            for n, line in enumerate(lines):
                if line.startswith("$ tconv "):
                    expected = []
                    for follow in lines[n + 1:]:
                        if follow.startswith("$ "):
                            break
                        expected.append(follow)
                    yield pytest.param(line[2:], "\n".join(expected).strip(), id=f"{_name(page)}: {line[2:]}")


@pytest.mark.parametrize("command, expected", list(_console_examples()))
def test_console_examples(command, expected, capsys):
    argv = shlex.split(command)[1:]
    assert argv[0] != "bench", "no benchmark runs in the docs' examples: show them in a sh block"
    assert main(argv) == 0
    out = capsys.readouterr().out.strip()
    if expected:
        assert out == expected
    else:
        assert out  # prints something


def test_performance_page_is_generated_from_the_saved_results():
    spec = importlib.util.spec_from_file_location("make_performance_doc", ROOT / "benchmarks" / "make_performance_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "performance.md").read_text() == module.render(), (
        "docs/performance.md is stale: run python benchmarks/make_performance_doc.py"
    )


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_local_links_resolve():
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if "://" in target:
                continue
            path = page.parent / target if target else page
            assert path.exists(), f"{_name(page)} links to {target}, which does not exist"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{_name(page)} links to {target}#{anchor}: no such heading"
