"""The derivation: its steps as data agree with the geometry, and the text names the crop."""
from __future__ import annotations

import tconv


def test_steps_as_data_match_geometry():
    e = tconv.explain((12, 16), 3, framework="keras", strides=2, padding="same")
    data = e.to_dict()
    assert [a["output"] for a in data["axes"]] == [24, 32]
    assert [s["key"] for s in data["steps"]][:5] == ["dilated_kernel", "zero_insertion", "full", "crop", "formula"]
    crop = e.step("crop")
    assert [d["crop_begin"] for d in crop.data] == list(e.geometry.crop_begin)
    assert [d["kept"] for d in crop.data] == [ax.kept for ax in e.geometry]


def test_text_says_where_keras_and_pytorch_crop():
    keras = str(tconv.explain(8, 3, framework="keras", strides=2, padding="same"))
    torch = str(tconv.explain(8, 3, framework="pytorch", stride=2, padding=1, output_padding=1))
    assert "crop 1 at the end (index 16..16): keep full[0:16]" in keras
    assert "crop 1 at the start (index 0..0): keep full[1:17]" in torch
    assert "(8-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 16" in torch


def test_zero_extension_and_quirks_are_explained():
    e = tconv.explain(3, 1, framework="keras", strides=3, padding="valid")
    assert "add 2 zeros at the end" in str(e)
    quirk = tconv.explain(8, 4, framework="keras", strides=2, padding="same", output_padding=0)
    assert quirk.step("warning").lines and "TensorFlow backend" in str(quirk)


def test_html_falls_back_to_text():
    html = tconv.explain(4, 3, framework="onnx", strides=[2], auto_pad="SAME_UPPER")._repr_html_()
    assert "ONNX" in html
