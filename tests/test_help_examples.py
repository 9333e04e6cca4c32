"""Every example in every ``--help`` runs: each ``tconv ...`` line of each epilog, as printed.

The examples are collected from the parser itself (``tconv.cli.build_parser`` and its
subparsers), so a new subcommand's examples are tested without touching this file.
Each runs in-process through ``tconv.cli.main`` (the trailing ``# comment`` stripped,
as the shell would) in an empty folder, so the files that draw examples write land
there. An example must exit 0, print no error line, and write the file its ``--out``
names. An example that demonstrates a refusal says so in its comment with
``exits 2`` (e.g. ``# exits 2: unreachable; says why``) and must then print exactly one
``tconv: error:`` line.

``tconv bench`` and ``tconv frameworks`` have no epilog examples, so nothing here
times a benchmark.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys

import pytest

from tconv.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def _examples() -> list[tuple[tuple[str, ...], str]]:
    """(command path, example line) for each distinct ``tconv ...`` line of every epilog."""
    found, seen = [], set()
    for path, parser in _parsers(build_parser()):
        for line in (parser.epilog or "").splitlines():
            text = line.strip()
            if text.startswith("tconv ") and text not in seen:
                seen.add(text)
                found.append((path, text))
    return found


EXAMPLES = _examples()


def _expected_exit(line: str) -> int:
    _, _, comment = line.partition(" #")
    return 2 if re.search(r"\bexits 2\b", comment) else 0


def test_examples_are_found_for_every_documented_command():
    """The collector finds the examples (so an empty parametrization cannot pass silently)."""
    commands = {shlex.split(line, comments=True)[1] for _, line in EXAMPLES}
    assert {"shape", "explain", "frameworks", "draw", "solve", "convert", "invert"} <= commands, commands
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("path,line", EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_help_example_runs(path, line, tmp_path, monkeypatch, capsys):
    argv = shlex.split(line, comments=True)
    assert argv[0] == "tconv"
    monkeypatch.chdir(tmp_path)
    code = main(argv[1:])
    out, err = capsys.readouterr()
    expected = _expected_exit(line)
    assert "Traceback" not in out + err
    if expected == 0:
        assert code == 0, f"{line}\nexit {code}\n{err}"
        assert "tconv: error:" not in err, err
        assert out.strip() or "--out" in argv, f"{line} printed nothing"
        if "--out" in argv:
            written = tmp_path / argv[argv.index("--out") + 1]
            assert written.is_file() and written.stat().st_size > 0, f"{line} did not write {written.name}"
    else:
        assert code == expected, f"{line}\nexit {code}\n{out}{err}"
        assert err.count("\n") == 1 and err.startswith("tconv: error: "), err


@pytest.mark.parametrize("command", sorted({path for path, _ in EXAMPLES}), ids=lambda p: " ".join(("tconv",) + p))
def test_help_shows_the_examples_tested_here(command, capsys):
    """What ``tconv <command> --help`` prints holds the example lines collected from its epilog."""
    with pytest.raises(SystemExit) as info:
        main(list(command) + ["--help"])
    assert info.value.code == 0
    shown = capsys.readouterr().out
    for path, line in EXAMPLES:
        if path == command:
            assert line in shown, line


def test_the_installed_command_prints_the_examples():
    """The console entry point is the parser tested above (one subprocess, to keep this quick)."""
    result = subprocess.run([sys.executable, "-m", "tconv", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert EXAMPLES[0][1] in result.stdout
