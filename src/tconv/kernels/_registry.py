"""The algorithms by name: what ``algorithm=`` chooses (``tconv.kernels.ALGORITHMS``)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import auto, col2im, phase, scatter, zero_insertion
from ._core import Problem

ALGORITHMS: dict[str, Callable[[Problem], np.ndarray]] = {
    "auto": auto.compute,
    "phase": phase.compute,
    "col2im": col2im.compute,
    "zero_insertion": zero_insertion.compute,
    "scatter": scatter.compute,
}
