"""tconv.check on PyTorch models: the trace against real torch, and every suggested fix run in real torch.

The models (tests/_check_models.py) are tiny, so real torch runs them on real zeros in milliseconds:
a report that says a size works where torch raises, or a fix that torch refuses, fails here.
"""
from __future__ import annotations

import json

import pytest

import tconv
import _check_models as models


def _runs(torch, model, shape) -> bool:
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(shape))
        return True
    except RuntimeError as err:
        assert "must match" in str(err) or "size" in str(err).lower(), err
        return False


def test_smp_style_unet_350x525_reproduces_the_mismatch_and_every_fix_runs(torch):
    model = models.SmpUnet()
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        model.eval()(torch.zeros(1, 3, 350, 525))
    report = tconv.check(model, (1, 3, 350, 525))
    assert not report.ok and len(report.problems) == 2
    first = report.problems[0]
    assert first.layer == "blocks.0"
    assert first.message.startswith("cat at blocks.0 gets 1x32x22x34 vs 1x16x22x33: W: 525 -> conv s2 -> 263")
    assert "up x2 -> 34 != 33" in first.message and "skip from encoder.layer3" in first.message
    kinds = {fix.kind for problem in report.problems for fix in problem.fixes}
    assert kinds == {"input", "interpolate"}  # no ConvTranspose to re-argue
    for problem in report.problems:
        for fix in problem.fixes:
            if fix.kind == "input":
                assert _runs(torch, models.SmpUnet(), fix.input_shape), fix
    # the interpolation fix, at every layer that has the problem: the real model then runs at 350x525
    fixed = models.SmpUnet()
    for problem in report.problems:
        (fix,) = [f for f in problem.fixes if f.kind == "interpolate"]
        fixed.get_submodule(fix.layer).resize = True
    assert _runs(torch, fixed, (1, 3, 350, 525))
    # the whole table was traced past the failing cat
    assert [row.op for row in report.layers].count("cat") == 4 and report.layers[-1].name == "head"


def test_milesial_style_unet_argument_fixes_run_in_real_torch(torch):
    shape = (1, 3, 350, 525)
    model = models.MilesialUNet(pad=False)
    assert not _runs(torch, model, shape)
    report = tconv.check(model, shape)
    assert [p.layer for p in report.problems] == ["up.0", "up.1", "up.2", "up.3"]
    assert report.input_sizes == {"H": "multiples of 16 from 16", "W": "multiples of 16 from 16"}
    first = report.problems[0].fixes
    assert first[0].kind == "input" and first[0].input_shape == (1, 3, 352, 528)  # the "pad to 352x528"
    assert _runs(torch, models.MilesialUNet(pad=False), first[0].input_shape)
    # output_padding on every layer the report names: the real model runs
    fixed = models.MilesialUNet(pad=False)
    for problem in report.problems:
        (fix,) = [f for f in problem.fixes if f.kind == "argument" and "output_padding" in f.args]
        fixed.get_submodule(fix.layer).output_padding = fix.args["output_padding"]
    assert _runs(torch, fixed, shape)
    # output_size=skip.shape on every one of them: the real model runs too
    fixed = models.MilesialUNet(pad=False)
    for problem in report.problems:
        (fix,) = [f for f in problem.fixes if f.kind == "argument" and "output_size" in f.args]
        size = fix.args["output_size"]
        fixed.get_submodule(fix.layer).register_forward_pre_hook(
            lambda m, a, k, size=size: (a, {**k, "output_size": size}), with_kwargs=True)
    assert _runs(torch, fixed, shape)


@pytest.mark.parametrize("make", [lambda: models.SmpUnet(), lambda: models.MilesialUNet(pad=False),
                                  lambda: models.MilesialUNet(pad=True)], ids=["smp", "milesial", "milesial-pad"])
def test_the_accepted_sizes_are_what_real_torch_accepts(torch, make):
    """The rule comes from the arithmetic; real torch on real zeros agrees on every width 16..100."""
    model = make()
    report = tconv.check(model, (1, 3, 64, 70))
    from tconv.checking import _arith, _fixes, _torch

    meta = _torch.meta_copy(model)
    trace = _torch.trace(meta, (1, 3, 64, 70))
    _, sizes = _fixes.rules(trace, (1, 3, 64, 70))
    real = [w for w in range(16, 101) if _runs(torch, model, (1, 3, 64, w))]
    assert [w for w in sizes[1] if 16 <= w <= 100] == real, report.input_sizes
    assert _arith.rule(sizes[1], max(2 * 70, 512) + 64) == report.input_sizes["W"]


def test_dcgan_and_hifigan_sizes_match_real_torch(torch):
    for model, shape in ((models.DCGAN(), (1, 8, 1, 1)), (models.HiFiGAN(), (1, 8, 50))):
        report = tconv.check(model, shape)
        assert report.ok, report
        with torch.no_grad():
            real = model.eval()(torch.zeros(shape))
        assert report.output_shape == tuple(real.shape)
        transposed = [row for row in report.layers if row.op.startswith("ConvTranspose")]
        assert transposed and all(row.window.startswith("full[") for row in transposed)
    assert report.input_sizes == {"L": "any size from 1"}
    assert [row.op for row in report.layers].count("add") == 4


def test_report_renders_as_text_html_rich_and_json(torch):
    report = tconv.check(models.MilesialUNet(pad=False), (1, 3, 350, 525))
    text = str(report)
    assert text.splitlines()[0] == "MilesialUNet (pytorch) at 1x3x350x525 -> 1x2x350x525: 4 problems"
    assert text.index("problem 1:") < text.index("accepted H:") < text.index("ConvTranspose2d")
    data = json.loads(report.to_json())
    assert {"layers", "problems", "input_sizes"} <= set(data)
    assert data["problems"][0]["message"] == report.problems[0].message
    assert all(isinstance(f, str) for f in data["problems"][0]["fixes"])
    assert "<table>" in report._repr_html_() and "352x528" in report._repr_html_()
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(report)
    assert "up.0.up" in console.export_text()


def test_a_model_that_raises_for_other_reasons_gets_a_partial_report(torch):
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, x):
            x = self.conv(x)
            raise KeyError("no such head")

    report = tconv.check(Broken(), (1, 1, 8, 8))
    assert [row.name for row in report.layers] == ["conv"]
    assert report.problems[0].message == "the top level raised KeyError: 'no such head'"


def test_data_dependent_control_flow_says_it_needs_real_data(torch):
    class Gate(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    report = tconv.check(Gate(), (1, 1, 8, 8))
    assert "needs real data" in report.problems[0].message


def test_bad_input_is_one_line_config_error(torch):
    with pytest.raises(tconv.ConfigError, match=r"input shape 3x350x525 has 3 entries; inc.net.0 \(Conv2d\) takes 4 .* e.g. 1x3x350x525"):
        tconv.check(models.MilesialUNet(), (3, 350, 525))
    with pytest.raises(tconv.ConfigError, match="not a model"):
        tconv.check("weights.txt", (1, 3, 8, 8))
    with pytest.raises(tconv.ConfigError, match="cannot check a int"):
        tconv.check(3, (1, 3, 8, 8))
    with pytest.raises(tconv.ConfigError, match="entry 1"):
        tconv.check(models.DCGAN(), (1, -8, 1, 1))
    with pytest.raises(tconv.ConfigError, match="building the model failed: ZeroDivisionError"):
        tconv.check(lambda shape: 1 / 0, (1, 3, 8, 8))


def test_a_callable_builds_the_model_from_the_input_shape(torch):
    seen = []

    def build(shape):
        seen.append(shape)
        return models.DCGAN()

    assert tconv.check(build, (1, 8, 1, 1)).output_shape == (1, 3, 64, 64)
    assert seen == [(1, 8, 1, 1)]


def test_a_layer_that_refuses_the_size_stops_the_trace_and_no_rule_is_guessed(torch):
    report = tconv.check(models.MilesialUNet(), (1, 3, 4, 4))
    assert report.problems[0].message.startswith("down.2.0 raised RuntimeError:")
    assert "Output size is too small" in report.problems[0].message
    assert set(report.input_sizes.values()) == {"not derived: the trace stopped (see the problems)"}
