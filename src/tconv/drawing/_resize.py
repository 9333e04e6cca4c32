"""The resize view: seed 003's "is it upsampling plus a convolution?", as frames of numbers.

Nearest-neighbour upsampling by ``s`` then a stride-1 convolution with a
``k'``-tap kernel ``w'`` (padding ``p``) equals a transposed convolution of
stride ``s`` with the box-filtered kernel ``flip(w') * ones(s)`` (``k'+s-1``
taps), keeping ``full[k'-1-p : full-(k'-1-p)]``. For a layer with kernel
``k`` and stride ``s`` the view uses ``k' = k-s+1`` and the padding
:func:`tconv.equivalence.resize_conv_window` picks, and draws both sides with
the same input, so the equality is there to read. The window arithmetic is
the geometry's; the kernel is :func:`tconv.equivalence.box_filtered_kernel`'s.
"""
from __future__ import annotations

import numpy as np

from ..equivalence import box_filtered_kernel, resize_conv_window
from ..errors import ConfigError
from ..geometry import AxisGeometry, Geometry
from . import _scene as sc


def _grid(title: str, values: np.ndarray, kind: int, one_d: bool) -> sc.Panel:
    kinds = np.full(values.shape, kind, dtype=np.int8)
    return sc.Panel(title, kinds, np.vectorize(str, otypes=[object])(values), one_d=one_d)


def resize_frames(geom: Geometry, x: np.ndarray | None = None) -> list[sc.Frame]:
    """Frames: the nearest upsampling, the stride-1 conv, the same values as a box-filtered transposed conv."""
    if geom.wrap:
        raise ConfigError("the resize view compares zero-padded layers; a circular (wrapping) layer has no resize-convolution")
    (ar, ac), one_d = sc.as_2d(geom)
    found = [resize_conv_window(ax) for ax in (ar, ac)]
    if one_d:
        found[0] = {"k": 1, "p": 0, "same_window": True}
    matches: list[dict] = []
    for ax, match in zip((ar, ac), found):
        if match is not None:
            matches.append(match)
        else:
            why = "its kernel is dilated" if ax.dilation != 1 else f"its kernel ({ax.kernel_size}) is shorter than its stride ({ax.stride})"
            raise ConfigError(f"no resize-convolution has this layer's shape: {why}; a box-filtered kernel spans k'+s-1 >= s taps")
    (kr, pr), (kc, pc) = (matches[0]["k"], matches[0]["p"]), (matches[1]["k"], matches[1]["p"])
    x2 = x.reshape(ar.input_size, ac.input_size) if x is not None else sc.default_values((ar.input_size, ac.input_size), 4)
    w1 = sc.default_values((kr, kc), 3)  # the resize-convolution's own kernel w'
    sr, scol = ar.stride, ac.stride
    up = np.repeat(np.repeat(x2, sr, axis=0), scol, axis=1)
    padded = np.pad(up, ((pr, pr), (pc, pc)))
    out_shape = (padded.shape[0] - kr + 1, padded.shape[1] - kc + 1)
    conv = np.zeros(out_shape, dtype=np.int64)
    for r, c in np.ndindex(*out_shape):
        conv[r, c] = int((padded[r:r + kr, c:c + kc] * w1).sum())
    v = box_filtered_kernel(w1, (sr, scol))
    axes = (AxisGeometry(ar.input_size, ar.kernel_size, sr, 1, kr - 1 - pr, kr - 1 - pr),
            AxisGeometry(ac.input_size, ac.kernel_size, scol, 1, kc - 1 - pc, kc - 1 - pc))
    full = sc.stamp(x2, v, axes)
    windowed = sc.kept_window(full, axes)
    if windowed.shape != conv.shape or not np.array_equal(windowed, conv):  # pragma: no cover - a bug guard
        raise AssertionError("the resize-convolution and its box-filtered transposed convolution disagree")

    def shape(a) -> str:
        return sc.fmt_shape(a.shape[1:] if one_d else a.shape)

    s_words = str(scol) if one_d else f"{sr}x{scol}"
    p_words = str(pc) if one_d else sc.fmt_shape((pr, pc)).replace("x", ",")
    k_words = f"{kc}-tap" if one_d else f"{kr}x{kc}"
    label = sc.layer_label(geom)
    frames = [
        sc.Frame(f"nearest-neighbour upsampling x{s_words}: every input element repeated {s_words} times",
                 [_grid(f"input {shape(x2)}", x2, sc.INPUT, one_d), _grid(f"upsampled {shape(up)}", up, sc.INPUT, one_d)],
                 [label]),
        sc.Frame(f"then a stride-1 convolution with a {k_words} kernel w' (padding {p_words}): output {shape(conv)}",
                 [_grid(f"upsampled {shape(up)}", up, sc.INPUT, one_d), _grid(f"w' {k_words.removesuffix('-tap')}", w1, sc.KERNEL, one_d),
                  _grid(f"resize-conv output {shape(conv)}", conv, sc.DONE, one_d)], [label]),
    ]
    full_panel = _grid(f"full {shape(full)}, kept window", full, sc.DONE, one_d)
    (b0, e0), (b1, e1) = axes[0].kept, axes[1].kept
    full_panel.boxes.append(sc.Box(b0, b1, e0, e1, "kept", "kept"))
    for r, c in np.ndindex(*full.shape):
        if not (b0 <= r < e0 and b1 <= c < e1):
            full_panel.kinds[r, c] = sc.CROP
    same = all(m["same_window"] for m in matches[1 if one_d else 0:])
    caption = [label, f"box-filtered kernel = flip(w') summed over {s_words} shifts: {v.shape[-1] if one_d else sc.fmt_shape(v.shape)} taps"]
    caption.append("this layer keeps the same window" if same else
                   "this layer keeps " + " x ".join(f"full[{ax.kept[0]}:{ax.kept[1]}]" for ax in ((ac,) if one_d else (ar, ac)))
                   + ": the same values up to the window")
    frames.append(sc.Frame(
        f"= a transposed convolution, stride {s_words}, with the box-filtered kernel flip(w')*ones({s_words}): the same {shape(conv)} values",
        [_grid(f"input {shape(x2)}", x2, sc.INPUT, one_d), _grid(f"box-filtered kernel {shape(v)}", v, sc.KERNEL, one_d),
         full_panel], caption))
    frames[-1].out_values = windowed  # type: ignore[attr-defined]
    return frames
