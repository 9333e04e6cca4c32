"""Regenerate every picture in docs/gallery (``make gallery``). Deterministic: same code, same files."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import tconv

HERE = Path(__file__).resolve().parent

# (file name, keyword arguments for tconv.draw); the README in this folder shows each one.
GALLERY = [
    # Keras 'same', k3 s2: where the odd surplus is cropped (at the END).
    ("keras_same_k3_s2_4x4.gif", dict(input_shape=(4, 4), kernel_size=3, framework="keras", strides=2, padding="same")),
    ("keras_same_k3_s2_8x8.png", dict(input_shape=(8, 8), kernel_size=3, framework="keras", strides=2, padding="same")),
    # valid vs same: 7x7 against 6x6 from the same full output.
    ("keras_valid_vs_same.png", dict(input_shape=(3, 3), kernel_size=3, framework="keras", strides=2, padding="valid",
                                     compare=["keras:strides=2,padding=same"])),
    # PyTorch 2x2, k2 s2, padding=1: why padding makes the output SMALLER.
    ("pytorch_2x2_k2_s2_p1_scatter.gif", dict(input_shape=(2, 2), kernel_size=2, framework="pytorch", stride=2, padding=1,
                                              numbers=True)),
    ("pytorch_2x2_k2_s2_p1_zero_insertion.gif", dict(input_shape=(2, 2), kernel_size=2, framework="pytorch", stride=2,
                                                     padding=1, view="zero-insertion", numbers=True)),
    # k5 s2 on 12 elements: 27, or 28 with output_padding=1 (a zero added at the end).
    ("pytorch_k5_s2_27_vs_28.png", dict(input_shape=12, kernel_size=5, framework="pytorch", stride=2, numbers=True,
                                        compare=["pytorch:stride=2,output_padding=1"])),
    # The same 6x6 from Keras 'same' and PyTorch padding=1, output_padding=1: different windows.
    ("keras_same_vs_pytorch_p1_op1.png", dict(input_shape=(3, 3), kernel_size=3, framework="keras", strides=2,
                                              padding="same", compare=["pytorch:stride=2,padding=1,output_padding=1"])),
    ("keras_same_vs_pytorch_p1_op1.svg", dict(input_shape=(3, 3), kernel_size=3, framework="keras", strides=2,
                                              padding="same", numbers=True,
                                              compare=["pytorch:stride=2,padding=1,output_padding=1"])),
    # The checkerboard: k3 s2 overlaps unevenly, k4 s2 evenly.
    ("overlap_k3_s2.png", dict(input_shape=(6, 6), kernel_size=3, framework="pytorch", stride=2, padding=1,
                               output_padding=1, view="overlap")),
    ("overlap_k4_s2.png", dict(input_shape=(6, 6), kernel_size=4, framework="pytorch", stride=2, padding=1,
                               view="overlap")),
    # Dilation, output_padding and a border wider than K-1-crop in 1-D, every sum shown.
    ("pytorch_1d_dilation_zero_insertion.gif", dict(input_shape=4, kernel_size=3, framework="pytorch", stride=2,
                                                    padding=3, output_padding=1, dilation=2,
                                                    view="zero-insertion", numbers=True)),
    # Too large to draw cell by cell: sizes and the kept window only.
    ("keras_valid_96x128_summary.png", dict(input_shape=(96, 128), kernel_size=3, framework="keras", strides=2,
                                            padding="valid")),
]


def main() -> int:
    for name, kwargs in GALLERY:
        kwargs = dict(kwargs)
        start = time.perf_counter()
        drawing = tconv.draw(kwargs.pop("input_shape"), kwargs.pop("kernel_size"), kwargs.pop("framework"),
                             output=HERE / name, **kwargs)
        size = (HERE / name).stat().st_size
        print(f"{name:<45} {len(drawing.frames):>3} frame(s) {size / 1024:>7.1f} KiB "
              f"{time.perf_counter() - start:5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
