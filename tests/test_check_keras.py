"""tconv.check on Keras 3 models: symbolic shapes against real Keras, and every suggested fix built and run.

A U-Net in the style of the Keras Conv2DTranspose thread (96x128 input) is checked as a built model;
a builder whose Concatenate fails while Keras builds it (50x130) is checked as a callable, and each
fix is applied to the real builder, built and run on zeros.
"""
from __future__ import annotations

import numpy as np
import pytest

import tconv


def _unet(keras, shape=(1, 96, 128, 3), depth=4, c=4):
    layers = keras.layers
    inputs = keras.Input(shape=shape[1:], batch_size=shape[0])
    x, skips = inputs, []
    for i in range(depth):
        x = layers.Conv2D(c << i, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(c << depth, 3, padding="same")(x)
    for i in reversed(range(depth)):
        x = layers.Conv2DTranspose(c << i, 3, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skips[i]])
        x = layers.Conv2D(c << i, 3, padding="same")(x)
    return keras.Model(inputs, layers.Conv2D(1, 1)(x))


def _builder(keras, output_padding=None, resize=False):
    layers = keras.layers

    def build(shape):  # (H, W, C), no batch
        inputs = keras.Input(shape=shape)
        x1 = layers.Conv2D(4, 3, padding="same")(inputs)
        x2 = layers.Conv2D(8, 3, padding="same")(layers.MaxPooling2D(2)(x1))
        x = layers.Conv2DTranspose(8, 2, strides=2, output_padding=output_padding)(layers.MaxPooling2D(2)(x2))
        if resize:
            x = layers.Resizing(x2.shape[1], x2.shape[2])(x)
        x = layers.Concatenate()([x, x2])
        x = layers.Conv2D(4, 3, padding="same")(x)
        return keras.Model(inputs, x)
    return build


def _runs(model, shape) -> bool:
    return model(np.zeros(shape, np.float32)).shape[0] == shape[0]


def test_keras_unet_96x128_is_ok_and_its_rule_matches_keras(keras):
    model = _unet(keras)
    report = tconv.check(model, (96, 128, 3))
    assert report.ok and report.output_shape == (1, 96, 128, 1)
    assert report.input_sizes == {"H": "multiples of 16 from 16", "W": "multiples of 16 from 16"}
    assert [row.op for row in report.layers].count("Conv2DTranspose") == 4
    assert all(row.window.startswith("full[") for row in report.layers if row.op == "Conv2DTranspose")
    # the rule of a 2-stage version against real Keras builds, every width 8..40
    rule = tconv.check(_unet(keras, (1, 8, 8, 3), depth=2), (8, 8, 3)).input_sizes["W"]
    assert rule == "multiples of 4 from 4"
    built = []
    for w in range(8, 41):
        try:
            _unet(keras, (1, 8, w, 3), depth=2)
            built.append(w)
        except ValueError as err:
            assert "Concatenate" in str(err)
    assert built == [w for w in range(8, 41) if w % 4 == 0]


def test_a_build_that_fails_at_concatenate_is_reported_and_every_fix_builds_and_runs(keras):
    with pytest.raises(ValueError, match="A `Concatenate` layer requires inputs with matching shapes"):
        _builder(keras)((50, 130, 3))
    report = tconv.check(_builder(keras), (50, 130, 3))
    (problem,) = report.problems
    assert "H: 50 -> pool s2 -> 25; pool s2 -> 12 -> convT s2 -> 24 != 25" in problem.message
    assert "W: 130 -> pool s2 -> 65; pool s2 -> 32 -> convT s2 -> 64 != 65" in problem.message
    assert report.layers[-1].op == "Conv2D"  # traced past the failing Concatenate
    kinds = [fix.kind for fix in problem.fixes]
    assert kinds == ["input", "input", "argument", "interpolate"], problem.fixes
    for fix in problem.fixes:
        if fix.kind == "input":
            model = _builder(keras)(fix.input_shape)
        elif fix.kind == "argument":
            model = _builder(keras, output_padding=fix.args["output_padding"])((50, 130, 3))
        else:
            model = _builder(keras, resize=True)((50, 130, 3))
        shape = fix.input_shape or (50, 130, 3)
        assert _runs(model, (1, *shape)), fix


def test_bad_keras_input(keras, tmp_path):
    @keras.saving.register_keras_serializable(package="tconv_test_check")
    class Custom(keras.layers.Layer):
        def call(self, x):
            return x

    inputs = keras.Input(shape=(8, 8, 1))
    model = keras.Model(inputs, Custom()(keras.layers.Conv2D(1, 3)(inputs)))
    path = tmp_path / "m.keras"
    model.save(path)
    keras.saving.get_custom_objects().clear()
    with pytest.raises(tconv.ConfigError, match="needs custom objects"):
        tconv.check(path, (8, 8, 1))
    with pytest.raises(tconv.ConfigError, match="has 2 entries; .* takes 4"):
        tconv.check(_unet(keras), (96, 128))


def test_cli_checks_a_keras_file_and_a_keras_builder(keras, tmp_path, monkeypatch, capsys):
    from tconv.cli import main

    monkeypatch.chdir(tmp_path)
    _unet(keras).save("unet.keras")
    assert main(["check", "unet.keras", "--input", "100x128x3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("unet.keras (keras) at 1x100x128x3 -> 1x100x128x1: 1 problem\nproblem 1: cat at concatenate")
    assert "fix: pad the input 100x128 to 112x128" in out
    (tmp_path / "kbuild.py").write_text(
        "import keras\n"
        "def build(shape):\n"
        "    inputs = keras.Input(shape=shape)\n"
        "    x = keras.layers.MaxPooling2D(2)(inputs)\n"
        "    x = keras.layers.Conv2DTranspose(3, 2, strides=2)(x)\n"
        "    return keras.Model(inputs, keras.layers.Concatenate()([x, inputs]))\n")
    assert main(["check", "kbuild:build", "--input", "9x8x3"]) == 0
    out = capsys.readouterr().out
    assert "H: 9; pool s2 -> 4 -> convT s2 -> 8 != 9" in out and "accepted H: multiples of 2 from 2" in out
