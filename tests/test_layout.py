"""The house's shape: imports flow one way, the CLI stays thin and the library never imports it.

Read from the source itself (every ``import`` statement, function-level ones included), so a new
circle or a library module reaching for the CLI fails here first.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "tconv"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports() -> dict[str, set[str]]:
    """module -> the tconv modules it imports, anywhere in its body."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def test_the_import_graph_has_no_circle():
    graph, state, circles = _imports(), {}, []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [name, target]))
            elif target not in state:
                visit(target, path + [name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not circles, circles


def test_the_library_never_imports_the_cli():
    offenders = sorted(name for name, targets in _imports().items()
                       if not name.startswith("tconv.cli") and name != "tconv.__main__"
                       and any(t == "tconv.cli" or t.startswith("tconv.cli.") for t in targets))
    assert not offenders, offenders


def test_tconv_shape_loads_no_numpy():
    code = ("import sys; from tconv.cli import main; code = main(['shape', '8x8', '-f', 'keras', '-k', '3', '-s', '2', "
            "'-p', 'same']); print(code, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["16x16", "0", "False"]


def test_no_module_is_two():
    long = {str(path.relative_to(ROOT)): n for path in ROOT.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 700}
    assert not long, f"modules past ~700 lines do two jobs: {long}"
