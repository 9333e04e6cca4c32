"""``tconv check`` on the command line: the report, --json, and one error line with exit 2 for bad input."""
from __future__ import annotations

import json

import pytest

from tconv.cli import main


def test_check_prints_the_report_with_the_fix(capsys):
    assert main(["check", "tconv.checking.examples:build_unet", "--input", "1x3x350x525"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("UNet (pytorch) at 1x3x350x525 -> 1x2x350x525: 4 problems\nproblem 1: cat at up.0")
    assert "fix: pad the input 350x525 to 352x528" in out and "accepted W: multiples of 16 from 16" in out


def test_check_json(capsys):
    assert main(["check", "tconv.checking.examples:build_generator", "--input", "1x16x1x1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["problems"] == [] and data["output_shape"] == [1, 3, 64, 64]
    assert [row["op"] for row in data["layers"]].count("ConvTranspose2d") == 5
    assert data["input_sizes"] == {"H": "any size from 1", "W": "any size from 1"}


@pytest.mark.parametrize("argv, message", [
    (["check", "model.txt"], "must be an .onnx or .keras file, or module:callable"),
    (["check", "missing.onnx"], "missing.onnx: no such file"),
    (["check", "no_such_module_here:build"], "cannot import no_such_module_here: ModuleNotFoundError"),
    (["check", "tconv.checking.examples:nothing"], "has no 'nothing'"),
    (["check", "tconv.checking.examples:build_unet", "--input", "3x350x525"], "has 3 entries; inc.0 (Conv2d) takes 4"),
    (["check", "tconv.checking.examples:build_unet", "--input", "1x3x8x"], "input shape"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("tconv: error: ")
    assert message in captured.err, captured.err


def test_a_module_in_the_current_folder_is_importable(capsys, tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "from tconv.checking.examples import build_generator\n"
        "def build(shape):\n    return build_generator(shape)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "my_models:build", "--input", "1x16x1x1"]) == 0
    assert capsys.readouterr().out.startswith("Sequential (pytorch) at 1x16x1x1 -> 1x3x64x64: OK")


def test_check_against_compares_two_models(capsys):
    argv = ["check", "tconv.checking.examples:build_generator", "--input", "1x16x1x1",
            "--against", "tconv.checking.examples:build_generator", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["same"] and data["first_difference"] is None and len(data["pairs"]) == 5
    assert main(["check", "tconv.checking.examples:build_generator", "--against-input", "1x2"]) == 2
    assert "give --against too" in capsys.readouterr().err
