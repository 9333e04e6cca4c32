"""The README's examples run as written: python blocks as doctests, `$ tconv ...` lines against their shown output."""
from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import pytest

from tconv.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README.read_text(), flags=re.S)


def test_python_blocks_are_doctests():
    source = "\n\n".join(body for lang, body in BLOCKS if lang == "python")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(source, {}, "README", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def _console_examples():
    for lang, body in BLOCKS:
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
                yield line[2:], "\n".join(expected).strip()


@pytest.mark.parametrize("command, expected", list(_console_examples()))
def test_console_examples(command, expected, capsys):
    argv = shlex.split(command)[1:]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip()
    if expected:
        assert out == expected
    else:
        assert out  # prints something
