"""The picker's choices on disk (tconv.torch.choice_cache), its batch buckets, its budget and tconv.torch.choices()."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import tconv.torch as tt
from tconv import ConfigError
from tconv.torch import choice_cache as choice_files
from tconv.torch import picker
from tconv.torch.strategies import Plan


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TCONV_CACHE_DIR", str(folder))
    monkeypatch.delenv("TCONV_CHOICE_CACHE", raising=False)
    tt.set_strategy("auto")
    tt.clear_cache()
    yield folder
    tt.clear_cache()


def _layer_call(batch=2):
    torch.manual_seed(0)
    x, w = torch.randn(batch, 32, 16, 16), torch.randn(32, 16, 3, 3)  # big enough to be measured
    with torch.no_grad():
        return tt.conv_transpose2d(x, w, None, stride=2, padding=1, output_padding=1)


def _file():
    return choice_files.store().path


def test_a_measured_choice_is_saved_and_read_back(_own_cache):
    _layer_call()
    data = json.loads(_file().read_text())
    assert data["identity"] == choice_files.identity()
    (entry,) = data["choices"].values()
    assert entry["strategy"] in tt.STRATEGIES and entry["layer"].startswith("2-D 32->16 k3x3 s2x2")
    assert os.stat(_own_cache).st_mode & 0o077 == 0  # made for this user alone
    tt.clear_cache()  # this process forgets; the file remembers
    _layer_call()
    assert list(picker._measured.values()) == [(entry["speedup"], "file")]


def test_a_new_process_reads_the_choice_instead_of_measuring(_own_cache):
    _layer_call()
    script = textwrap.dedent("""
        import torch, tconv.torch as tt
        from tconv.torch import picker
        torch.manual_seed(0)
        x, w = torch.randn(2, 32, 16, 16), torch.randn(32, 16, 3, 3)
        picker._measure = None  # a measurement would fail
        with torch.no_grad():
            tt.conv_transpose2d(x, w, None, stride=2, padding=1, output_padding=1)
        print([source for _, source in picker._measured.values()])
    """)
    env = dict(os.environ, TCONV_CACHE_DIR=str(_own_cache))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['file']"


@pytest.mark.parametrize("content", [b"not json {", b'{"identity": {"cpu": "another"}, "choices": {}}', b"[1, 2]"])
def test_a_corrupt_or_foreign_file_is_ignored_with_a_warning_and_rewritten(content):
    path = _file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.warns(choice_files.ChoiceCacheWarning, match="ignored, and rewritten"):
        y = _layer_call()
    assert y.shape == (2, 16, 32, 32)
    assert json.loads(path.read_text())["identity"] == choice_files.identity()


def test_an_entry_for_a_strategy_that_does_not_exist_or_apply_is_measured_again():
    _layer_call()
    path = _file()
    data = json.loads(path.read_text())
    (key,) = data["choices"]
    data["choices"][key]["strategy"] = "no_such_strategy"
    path.write_text(json.dumps(data))
    tt.clear_cache()
    _layer_call()
    assert [source for _, source in picker._measured.values()] == ["measured"]
    assert json.loads(path.read_text())["choices"][key]["strategy"] in tt.STRATEGIES


def test_files_and_folders_others_can_write_are_not_used(_own_cache):
    _own_cache.mkdir(mode=0o700)
    _layer_call()
    path = _file()
    os.chmod(path, 0o666)
    tt.clear_cache()
    with pytest.warns(choice_files.ChoiceCacheWarning, match="writable by its group and everyone"):
        _layer_call()
    assert [source for _, source in picker._measured.values()] == ["measured"]
    tt.clear_cache()
    os.chmod(_own_cache, 0o777)
    try:
        with pytest.warns(choice_files.ChoiceCacheWarning, match="in memory only"):
            _layer_call()
    finally:
        os.chmod(_own_cache, 0o700)


def test_switched_off(monkeypatch, _own_cache):
    monkeypatch.setenv("TCONV_CHOICE_CACHE", "0")
    _layer_call()
    assert not _own_cache.exists() or not any(_own_cache.glob("torch-choices-*"))


def test_concurrent_processes_leave_a_valid_file(_own_cache):
    script = textwrap.dedent("""
        import sys, torch, tconv.torch as tt
        size = int(sys.argv[1])
        x, w = torch.randn(2, 32, size, size), torch.randn(32, 16, 3, 3)
        with torch.no_grad():
            tt.conv_transpose2d(x, w, None, stride=2, padding=1)
    """)
    env = dict(os.environ, TCONV_CACHE_DIR=str(_own_cache))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(12 + n)], env=env) for n in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    data = json.loads(_file().read_text())
    assert 1 <= len(data["choices"]) <= 4
    assert not list(_own_cache.glob(".torch-choices-*.tmp"))


def test_batch_sizes_in_one_bucket_share_a_choice_that_holds(monkeypatch):
    assert [picker.batch_bucket(n) for n in (1, 2, 3, 4, 5, 8, 9)] == [1, 2, 4, 4, 8, 8, 16]
    _layer_call(batch=6)
    (first,) = tt.cache_info().values()
    monkeypatch.setattr(picker, "_measure", None)  # a measurement would fail from here on
    monkeypatch.setattr(picker, "_shared_holds", lambda *args: True)
    _layer_call(batch=5)  # same bucket, and the shared choice holds: no measurement
    assert list(tt.cache_info().values()) == [first, first]
    assert [source for _, source in picker._measured.values()] == ["measured", "bucket"]
    with pytest.raises(TypeError):
        _layer_call(batch=9)  # another bucket: measured


def test_a_shared_choice_slower_than_torch_is_measured_again(monkeypatch):
    _layer_call(batch=6)
    monkeypatch.setattr(picker, "_shared_holds", lambda *args: False)
    _layer_call(batch=5)
    assert [source for _, source in picker._measured.values()] == ["measured", "measured"]


def test_shared_holds_times_the_shared_choice_against_torch(monkeypatch):
    import types
    clock = [0.0]
    speed = {"native": 0.004, "gemm_shuffle": 0.002}

    def fake_run(name, x, w, b, plan):
        clock[0] += speed[name]
        return x

    monkeypatch.setattr(picker, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(picker, "run", fake_run)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(4, 4, 2, 2)
    plan = Plan(tt.layer_geometry((8, 8), (2, 2), stride=2), 4, 4)
    assert picker._shared_holds("gemm_shuffle", x, w, None, plan)
    speed["gemm_shuffle"] = 0.005
    assert not picker._shared_holds("gemm_shuffle", x, w, None, plan)
    assert picker._shared_holds("native", x, w, None, plan)


def test_the_budget_bounds_the_measuring(monkeypatch):
    # A scripted clock: every call takes 40 ms; with a 100 ms budget the picker tries torch's kernel and
    # the rule's choice, and then stops trying more candidates.
    import types
    clock = [0.0]
    calls = []

    def fake_run(name, x, w, b, plan):
        clock[0] += 0.04
        calls.append(name)
        return x

    monkeypatch.setattr(picker, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(picker, "run", fake_run)
    x, w = torch.randn(4, 64, 16, 16), torch.randn(64, 32, 3, 3)
    plan = Plan(tt.layer_geometry((16, 16), (3, 3), stride=2, padding=1), 64, 32)
    assert len(picker.eligible(plan)) > 4
    picker._measure(x, w, None, plan, budget_s=0.1)
    ruled = picker.deterministic_rule(x, w, plan.geometry)
    assert set(calls) <= {"native", ruled} | {picker.eligible(plan)[2]}
    assert clock[0] <= 0.1 + 0.04 * 2  # past the budget: at most one more warm-up and timing


def test_set_measure_budget():
    saved = picker.MEASURE_BUDGET_S
    try:
        tt.set_measure_budget(0.25)
        assert picker.MEASURE_BUDGET_S == 0.25
        for bad in (-1, float("inf"), "1", True):
            with pytest.raises(ConfigError, match="measuring budget"):
                tt.set_measure_budget(bad)
    finally:
        picker.MEASURE_BUDGET_S = saved


def test_choices_prints_a_table():
    out = io.StringIO()
    assert tt.choices(file=out) == []
    assert "no choices yet" in out.getvalue()
    _layer_call()
    out = io.StringIO()
    (row,) = tt.choices(file=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["layer", "signature", "strategy", "speed-up", "from"]
    assert row["strategy"] in lines[2] and "batch 2" in lines[2] and "measured" in lines[2]
