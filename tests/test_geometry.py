"""Properties of the geometry core and of going back from a geometry to a framework's arguments."""
from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from tconv import conventions
from tconv.errors import FrameworkQuirkWarning
from tconv.geometry import AxisGeometry, Geometry

axis_values = st.tuples(
    st.integers(1, 9),   # input
    st.integers(1, 7),   # kernel
    st.integers(1, 4),   # stride
    st.integers(1, 3),   # dilation
)


@st.composite
def axes(draw):
    i, k, s, d = draw(axis_values)
    full = (i - 1) * s + d * (k - 1) + 1
    begin = draw(st.integers(-3, full - 1))
    end = draw(st.integers(-3, full - 1 - begin))
    return AxisGeometry(i, k, s, d, begin, end)


@given(axes())
def test_window_accounts_for_every_element(ax):
    start, stop = ax.kept
    assert stop - start == ax.output_size >= 1
    assert ax.full == ax.zero_inserted_size + ax.dilated_kernel - 1
    # The equivalent stride-1 correlation: padded zero-inserted input minus K-1.
    lo, hi = ax.conv_padding
    assert ax.zero_inserted_size + lo + hi - ax.dilated_kernel + 1 == ax.output_size


def test_invalid_axes_raise_config_error():
    with pytest.raises(tconv.ConfigError, match="output would have -1"):
        AxisGeometry(1, 1, 1, 1, 1, 1)
    assert AxisGeometry(1, 1, 1, 1, 1, 0).output_size == 0  # empty is a size some frameworks return
    with pytest.raises(tconv.ConfigError, match="stride"):
        AxisGeometry(3, 3, 0, 1, 0, 0)


# Frameworks whose arguments can be generated freely here; from_geometry must give arguments that,
# fed back through to_geometry plus the reported extra slice, reproduce the window exactly.
TARGETS = ["pytorch", "keras", "tensorflow", "jax", "flax", "onnx", "mxnet", "caffe"]


@settings(max_examples=examples(60))
@given(st.lists(axes(), min_size=1, max_size=3), st.sampled_from(TARGETS))
def test_from_geometry_round_trip(axis_list, target):
    wanted = Geometry(tuple(axis_list))
    convention = conventions.get(target)
    try:
        expressed = convention.from_geometry(wanted)
    except tconv.ConfigError:
        # Only acceptable when the framework has no legal arguments for these sizes at all
        # (e.g. Keras with stride and dilation both > 1).
        assert target == "keras" and any(s > 1 for s in wanted.stride) and any(d > 1 for d in wanted.dilation)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameworkQuirkWarning)
        got = tconv.geometry(wanted.input_shape, wanted.kernel_size, framework=target, **expressed.args)
    for want, have, (extra_begin, extra_end) in zip(wanted, got, expressed.extra_crop):
        assert have.crop_begin + extra_begin == want.crop_begin
        assert have.crop_end + extra_end == want.crop_end
        # Zeros may be added only past the ends of the uncropped output, never over cropped values.
        assert extra_begin >= 0 or have.crop_begin <= 0
        assert extra_end >= 0 or have.crop_end <= 0


@pytest.mark.parametrize(
    "source, args, target, exact",
    [
        # k=4, s=2: Keras 'same' equals PyTorch padding=1 exactly.
        ("keras", dict(strides=2, padding="same"), "pytorch", True),
        # k=3, s=2: same shape, but Keras crops at the end, PyTorch p=1, op=1 at the start: needs a slice.
        ("keras", dict(strides=2, padding="same"), "caffe", False),
    ],
)
def test_known_translations(source, args, target, exact):
    g = tconv.geometry((8, 8), 4 if exact else 3, framework=source, **args)
    assert conventions.get(target).from_geometry(g).exact is exact


def test_keras_same_k3_s2_is_not_pytorch_p1_op1():
    keras_same = tconv.geometry(8, 3, framework="keras", strides=2, padding="same")
    torch_p1 = tconv.geometry(8, 3, framework="pytorch", stride=2, padding=1, output_padding=1)
    assert keras_same.output_shape == torch_p1.output_shape == (16,)
    assert keras_same.crop_begin == (0,) and torch_p1.crop_begin == (1,)
    expressed = conventions.get("pytorch").from_geometry(keras_same)
    assert not expressed.exact
