"""Reading sizes and values written as text (``8x8``, ``96,128``, ``same``), strictly.

The command line and ``tconv.draw``'s ``"framework:name=value,..."`` specs read
their numbers here, so both refuse the same malformed text with a ConfigError
that quotes it: separators at either end or doubled (``8x8x``, ``8,,8``),
signs on sizes (``-8``, ``+8``), stray characters (``8.5``, ``8;8``, ``1_0``)
and digits other than 0-9 (Python's ``int()`` reads ``'８'`` and ``'٣'``, which
would turn a typo into a size nobody wrote).

>>> parse_sizes("8x8"), parse_sizes("96,128"), parse_sizes("28"), parse_sizes("2 x 3")
((8, 8), (96, 128), 28, (2, 3))
>>> parse_value("same"), parse_value("-1x2"), parse_value("[[1, 1], [2, 2]]")
('same', (-1, 2), [[1, 1], [2, 2]])
>>> parse_sizes("8,,8")
Traceback (most recent call last):
...
tconv.errors.ConfigError: size '8,,8' has two separators in a row (',,'); write sizes like 8x8, 96,128 or 28
"""
from __future__ import annotations

import ast
import re
import unicodedata
from typing import Any

from .errors import ConfigError

SEPARATORS = "x×,"
#: digits beyond this many are no size any framework could hold (and int() refuses past 4300)
MAX_DIGITS = 100
_EXAMPLE = "write sizes like 8x8, 96,128 or 28"
_VALUE_EXAMPLE = "write numbers like 2, 2x1 or -1"
_NUMBER = r"[0-9]+"
_SEP = r"\s*[x×,]\s*"
_SIZES = re.compile(rf"{_NUMBER}(?:{_SEP}{_NUMBER})*")
_SIGNED = re.compile(rf"-?{_NUMBER}(?:{_SEP}-?{_NUMBER})*")


def quote(text: str, limit: int = 80) -> str:
    """``repr(text)``, shortened to about ``limit`` characters: always one line."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit - 3]) + "..."


def parse_sizes(text: str, name: str = "size") -> int | tuple[int, ...]:
    """``'8x8'``, ``'96,128'`` or ``'28'`` -> int or tuple of ints; ConfigError for anything else.

    Separators are ``x``, ``×`` and ``,`` (spaces around them are fine); numbers
    are the ASCII digits 0-9, without a sign.
    """
    return _parse(text, name, signed=False)


def parse_value(text: str, name: str = "value") -> Any:
    """An option value: sizes (``2``, ``2x3``, ``-1``), a Python literal (``(1, 2)``, ``True``), or a plain string.

    Text that starts like a number (a digit, a sign or a separator) must be
    sizes; anything else that is no Python literal stays a string (``same``).
    """
    if not isinstance(text, str):
        raise ConfigError(f"{name}={text!r} must be text")
    stripped = text.strip()
    if not stripped:
        raise ConfigError(f"{name} {quote(text)} is empty")
    _check_digits(text, name)
    if stripped[0] in "0123456789+-,×" or re.match(r"x\s*[0-9x×,]", stripped, re.IGNORECASE):
        return _parse(text, name, signed=True)
    try:
        return ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return stripped


def parse_int(text: str, name: str = "value") -> int:
    """One whole number, optionally negative (``'5'``, ``'-1'``); ConfigError for ``'٣'``, ``'1_0'``, ``'+5'``, ``'5x5'``."""
    value = _parse(text, name, signed=True)
    if isinstance(value, tuple):
        raise ConfigError(f"{name} {quote(text)} is {len(value)} numbers; give one whole number")
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``'NAME=VALUE'`` -> ``(NAME, value)``, the value read by :func:`parse_value`."""
    if "=" not in text:
        raise ConfigError(f"-a {quote(text)} must look like NAME=VALUE, e.g. -a auto_pad=SAME_UPPER")
    key, _, value = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"-a {quote(text)} has no NAME before '='; write NAME=VALUE, e.g. -a auto_pad=SAME_UPPER")
    return key, parse_value(value, key)


def _check_digits(text: str, name: str) -> None:
    for ch in text:
        if ch not in "0123456789" and (ch.isdigit() or unicodedata.category(ch) == "Nd"):
            label = unicodedata.name(ch, "").lower()
            label = f" ({label})" if label else ""
            raise ConfigError(
                f"{name} {quote(text)} has the digit {ch!r}{label}, which is not one of 0-9; write the digits 0-9"
            )


def _parse(text: str, name: str, signed: bool) -> int | tuple[int, ...]:
    if not isinstance(text, str):
        raise ConfigError(f"{name}={text!r} must be text like 8x8, 96,128 or 28")
    stripped = text.strip().lower()
    if not stripped:
        raise ConfigError(f"{name} {quote(text)} is empty; {_EXAMPLE}")
    _check_digits(text, name)
    pattern = _SIGNED if signed else _SIZES
    if not pattern.fullmatch(stripped):
        raise ConfigError(f"{name} {quote(text)} {_diagnose(stripped, signed)}; {_VALUE_EXAMPLE if signed else _EXAMPLE}")
    numbers = re.findall(r"-?[0-9]+", stripped)
    for number in numbers:
        if len(number.lstrip("-")) > MAX_DIGITS:
            raise ConfigError(f"{name} {quote(text)} has a number of {len(number.lstrip('-'))} digits, far too large for a size")
    values = tuple(int(n) for n in numbers)
    return values[0] if len(values) == 1 else values


def _diagnose(text: str, signed: bool) -> str:
    """What is wrong with ``text`` (stripped, lower case), which does not match the size grammar."""
    if text[0] in SEPARATORS:
        return f"starts with the separator {text[0]!r}"
    if text[-1] in SEPARATORS:
        return f"ends with the separator {text[-1]!r}"
    doubled = re.search(r"[x×,]\s*[x×,]", text)
    if doubled:
        return f"has two separators in a row ({doubled.group(0)!r})"
    for sign in ("+", "-") if not signed else ("+",):
        if sign in text:
            return (f"has the sign {sign!r}: sizes are whole numbers 0-9 without a sign" if not signed
                    else "has the sign '+': write the number without it")
    if signed and re.search(r"-\s*-|-\s+[0-9]|-(?![0-9])", text):
        return "has a '-' that is not directly before a number"
    if "." in text:
        return "is not a whole number"
    if re.search(r"[0-9]\s+[0-9]", text):
        return "has a space between two numbers; separate sizes with x or ,"
    stray = next((ch for ch in text if ch not in "0123456789-" + SEPARATORS and not ch.isspace()), None)
    if stray is not None:
        return f"has the stray character {stray!r}"
    return "is not a size"  # pragma: no cover - every mismatch is named above
