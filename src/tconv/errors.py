"""The project's exceptions and warnings.

Every illegal configuration raises :class:`ConfigError`, a ``ValueError``, whose
message says what is wrong, states the framework's rule and says what would be
legal. Configurations that a framework *accepts* but then crashes on or
silently mishandles produce a :class:`FrameworkQuirkWarning`.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class ConfigError(ValueError):
    """An illegal transposed-convolution configuration.

    Examples
    --------
    >>> import tconv
    >>> try:
    ...     tconv.output_shape(5, 3, framework="pytorch", stride=2, output_padding=2)
    ... except tconv.ConfigError as err:
    ...     print(err)
    output_padding=2 must be smaller than stride (2) or dilation (1) in PyTorch; for input 5 the legal output sizes are 11..12
    """


class FrameworkQuirkWarning(UserWarning):
    """The framework accepts this configuration but crashes later or misbehaves."""


def closest_name(name: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``name``, or None when nothing is close.

    >>> closest_name("strides", ["stride", "padding"])
    'stride'
    """
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None
