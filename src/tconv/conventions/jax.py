"""JAX: ``jax.lax.conv_transpose``.

lax computes the layer as a stride-1 correlation of the stride-dilated input,
padded by ``(pad_a, pad_b)``; the kept window therefore starts at
``K-1-pad_a`` and ends ``K-1-pad_b`` before the end of the uncropped output.

* 'SAME': ``pad_len = K+s-2``, ``pad_a = K-1`` if ``s > K-1`` else ``ceil(pad_len/2)``;
  the output has ``i*s`` elements.
* 'VALID': ``pad_len = K+s-2+max(K-s, 0)``, ``pad_a = K-1``; ``(i-1)*s + max(K, s)``.
* explicit pairs ``(lo, hi)``: by default they ARE ``(pad_a, pad_b)``, the
  padding of the dilated input (not PyTorch-style). With
  ``use_consistent_padding=True`` they are the forward convolution's padding,
  as in PyTorch: the window is ``full[lo : full-hi]``; lax then insists on
  tuples (a list pair fails with "Invalid padding mode").
* padding that removes the whole output: JAX returns an empty array (size 0,
  also when the size would be negative); tconv gives that shape and warns. A
  negative padding larger than the stride-dilated input is an error in lax,
  and in tconv.

Only the exact strings 'SAME' and 'VALID' get this treatment: lax passes any
other string (such as lowercase 'same') straight to ``conv_general_dilated``,
which fails for any stride > 1 ("String padding is not implemented for
transposed convolution using this op"; tconv raises ConfigError) and, with
every stride 1, applies it as the padding of a stride-1 forward convolution,
a different window for even kernels. tconv reproduces that and warns.
``transpose_kernel`` changes the kernel layout only, not the sizes.

XLA's CPU float32 convolution gets one kind of explicit padding wrong (see
:func:`xla_cpu_padding_note`): tconv computes the right window and warns, and
``tconv.convert`` writes such layers another way.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..errors import ConfigError
from ..geometry import AxisGeometry, Geometry, dilated_kernel_size, full_size
from ._base import ArrayLayout, Convention, explicit_pair, pairs, per_axis
from ._solve import Family, windows


def lax_pads(dilated_kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """``jax.lax``'s ``_conv_transpose_padding`` for 'SAME' and 'VALID'.

    >>> lax_pads(3, 2, "SAME"), lax_pads(3, 2, "VALID")
    ((2, 1), (2, 2))
    """
    K, s = dilated_kernel, stride
    if padding == "SAME":
        pad_len = K + s - 2
        pad_a = K - 1 if s > K - 1 else -(-pad_len // 2)
    else:
        pad_len = K + s - 2 + max(K - s, 0)
        pad_a = K - 1
    return pad_a, pad_len - pad_a


def forward_string_pads(input_size: int, dilated_kernel: int, padding: str) -> tuple[int, int]:
    """``lax.padtype_to_pads`` for a stride-1 window over the dilated input (the lowercase trap)."""
    mode = padding.upper()
    if mode == "VALID":
        return 0, 0
    total = max(dilated_kernel - 1, 0)
    if mode == "SAME":
        return total // 2, total - total // 2
    return total - total // 2, total // 2  # SAME_LOWER


def xla_cpu_padding_note(pads, strides, api: str = "jax.lax.conv_transpose") -> str | None:
    """The warning for a padding that XLA's CPU float32 convolution computes wrongly, else None.

    ``pads`` are the ``(pad_a, pad_b)`` handed to ``conv_general_dilated``
    per axis. With every stride 1 (no input dilation), in 1-D and 2-D, an axis
    padded by ``(low, high)`` with ``low < 0 < high <= -low`` reads outside the
    input in float32 on CPU: the positions that should see the zero padding get
    neighbouring or uninitialised data (openxla/xla issue 48713, open; seen with
    jaxlib 0.10.2, for some channel counts, not in 3-D or with any stride > 1).
    float64 and the pre-sliced input with padding ``(0, high)`` are right.

    >>> xla_cpu_padding_note([(-1, 1)], (1,)) is None, xla_cpu_padding_note([(-1, 2)], (1,))
    (False, None)
    """
    if len(pads) > 2 or any(s != 1 for s in strides):
        return None
    hit = [(n, (lo, hi)) for n, (lo, hi) in enumerate(pads) if lo < 0 < hi <= -lo]
    if not hit:
        return None
    n, (lo, hi) = hit[0]
    return (
        f"{api} pads axis {n} of the input by ({lo}, {hi}): XLA on CPU computes float32 convolutions with a "
        "negative low and a positive high padding at stride 1 wrongly (it reads outside the input; "
        "openxla/xla issue 48713); tconv gives the correct values (JAX's own in float64). On CPU in float32 "
        f"pad by (0, {hi}) and slice {-lo} off the start of the output instead, as tconv.convert does"
    )


def explicit_paddings(geometry: Geometry) -> list[list[tuple[int, int]]]:
    """Explicit lax paddings to try for ``geometry``: the exact one, then, where it is negative at
    the start, ``(0, high)`` (a slice instead, which avoids :func:`xla_cpu_padding_note`'s bug)."""
    pads = [ax.conv_padding for ax in geometry]
    if any(lo < 0 for lo, _ in pads):
        return [pads, [(max(lo, 0), hi) for lo, hi in pads]]
    return [pads]



def lax_axis(convention: Convention, n: int, i: int, k: int, s: int, d: int, begin: int, end: int) -> AxisGeometry:
    """One axis as lax computes it: the stride-dilated input padded by ``(K-1-begin, K-1-end)``.

    lax refuses a padded input of fewer than 0 elements, and clamps an output
    size below 0 to an empty axis (the window is then ``full[begin:begin]``).

    >>> from tconv.conventions import get
    >>> lax_axis(get("jax"), 0, 2, 4, 4, 1, 4, 5).output_size
    0
    """
    K = dilated_kernel_size(k, d)
    padded = (i - 1) * s + 1 + (K - 1 - begin) + (K - 1 - end)
    if padded < 0:
        raise ConfigError(
            f"{convention.title}: negative padding is larger than the size of the corresponding dimension on axis "
            f"{n}: the stride-dilated input has {(i - 1) * s + 1} elements and the padding ({K - 1 - begin}, "
            f"{K - 1 - end}) removes {-(K - 1 - begin) - (K - 1 - end)} (lax: \"Negative padding is larger than the "
            "size of the corresponding dimension\")"
        )
    full = full_size(i, k, s, d)
    return convention.axis(str(n), i, k, s, d, begin, min(end, full - begin), empty_ok=True)

class JaxFamily(Family):
    """solve's candidates: the padding strings, and one explicit lax padding per window."""

    dilation_name = "rhs_dilation"
    strings: tuple[str, ...] = ("SAME", "VALID")

    cli_upper_padding = True

    def options(self, i, k, s, d, o, ndim):
        for padding in self.strings:
            yield (padding,), {}
        for ax in windows(i, k, s, d, o):
            yield ("explicit",), {"pad": ax.conv_padding}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"strides": tuple(strides)}
        args["padding"] = [tuple(v["pad"]) for v in values] if mode == ("explicit",) else mode[0]
        if any(d != 1 for d in dilations):
            args[self.dilation_name] = tuple(dilations)
        return args

    def rank(self, mode):
        return {"SAME": 0, "VALID": 1, "explicit": 2}.get(mode[0], 3)


class Jax(Convention):
    name = "jax"
    title = "JAX"
    api = "jax.lax.conv_transpose"
    defaults = {
        "strides": None,
        "padding": "SAME",
        "rhs_dilation": None,
        "dimension_numbers": None,
        "transpose_kernel": False,
        "use_consistent_padding": False,
    }
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "strides", "padding": "padding", "dilation": "rhs_dilation"}
    solve_family = JaxFamily()
    rule = (
        "jax.lax.conv_transpose pads the stride-dilated input by (pad_a, pad_b) and correlates: 'SAME' gives "
        "i*s, 'VALID' (i-1)*s + max(K, s), and explicit pairs are that padding itself unless "
        "use_consistent_padding=True makes them PyTorch-style crops"
    )

    forward_api = "jax.lax.conv_general_dilated"
    forward_defaults = {"window_strides": None, "padding": "VALID", "rhs_dilation": None, "feature_group_count": 1,
                        "dimension_numbers": None}
    forward_names = ("window_strides", "rhs_dilation", "padding")
    forward_padding_modes = ("SAME", "SAME_LOWER", "VALID")

    def array_layout(self, rank, args):
        lhs, rhs, out = jax_specs(args.get("dimension_numbers"), rank)
        transpose = bool(args.get("transpose_kernel", False))
        # rhs = (O, I, *spatial). Without transpose_kernel, I is the input channels and the
        # kernel is correlated as given (flipped in PyTorch's terms); with it, lax flips the
        # spatial axes and swaps I and O first, so O holds the input channels, unflipped.
        w = (rhs[0], rhs[1], *rhs[2:]) if transpose else (rhs[1], rhs[0], *rhs[2:])
        return ArrayLayout(lhs, w, out, not transpose, f"dimension_numbers lhs={lhs}, rhs={rhs}, out={out}")

    def forward_explicit(self, padding, n, ndim):
        return explicit_pair(self, padding, n, ndim)

    def per_axis_names(self) -> tuple[str, ...]:
        return ("strides", "rhs_dilation")

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        if args["strides"] is None:
            raise ConfigError("strides is required by jax.lax.conv_transpose (a sequence of one int per spatial axis)")
        strides = per_axis("strides", args["strides"], ndim, self.title, minimum=1)
        dilation = per_axis("rhs_dilation", 1 if args["rhs_dilation"] is None else args["rhs_dilation"], ndim, self.title, minimum=1)
        if not isinstance(args["transpose_kernel"], bool):
            raise ConfigError(f"transpose_kernel={args['transpose_kernel']!r} must be True or False")
        consistent = args["use_consistent_padding"]
        if not isinstance(consistent, bool):
            raise ConfigError(f"use_consistent_padding={consistent!r} must be True or False")
        padding = args["padding"]
        notes = []
        explicit = None
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                if padding.upper() not in ("SAME", "VALID", "SAME_LOWER"):
                    raise ConfigError(
                        f"padding={padding!r} is not recognised by jax.lax.conv_transpose: use 'SAME', 'VALID' "
                        "or a sequence of (low, high) pairs"
                    )
                if consistent:
                    raise ConfigError(
                        f"padding={padding!r} with use_consistent_padding=True: lax only knows the exact strings "
                        "'SAME' and 'VALID' there and fails on others"
                    )
                if any(s > 1 for s in strides):
                    raise ConfigError(
                        f"padding={padding!r} with strides={strides}: jax.lax.conv_transpose only recognises the "
                        "exact strings 'SAME' and 'VALID'; any other string reaches conv_general_dilated, which "
                        "fails for strides > 1 (\"String padding is not implemented for transposed convolution "
                        "using this op\"); use 'SAME' or 'VALID'"
                    )
                notes.append(
                    f"jax.lax.conv_transpose only recognises the exact strings 'SAME' and 'VALID': padding="
                    f"{padding!r} is passed to conv_general_dilated as the padding of a stride-1 convolution "
                    "over the dilated input, which keeps a different window than 'SAME'/'VALID'"
                )
        else:
            if isinstance(padding, (list, tuple)) and padding and all(isinstance(p, int) for p in padding):
                raise ConfigError(
                    f"padding={padding!r}: jax.lax.conv_transpose takes a sequence of (low, high) pairs, one per axis"
                )
            if consistent and isinstance(padding, (list, tuple)) and any(isinstance(p, list) for p in padding):
                raise ConfigError(
                    f"padding={padding!r} with use_consistent_padding=True: lax accepts only tuples as (low, high) "
                    "pairs there (it fails with \"Invalid padding mode\" on a list); write "
                    f"{[tuple(p) if isinstance(p, list) else p for p in padding]!r}"
                )
            explicit = pairs("padding", padding, ndim, self.title)
        axes = []
        for n, (i, k, s, d) in enumerate(zip(input_shape, kernel_size, strides, dilation)):
            K = dilated_kernel_size(k, d)
            if explicit is not None and consistent:
                begin, end = explicit[n]
            else:
                if explicit is not None:
                    pad_a, pad_b = explicit[n]
                elif padding in ("SAME", "VALID"):
                    pad_a, pad_b = lax_pads(K, s, padding)
                else:
                    pad_a, pad_b = forward_string_pads((i - 1) * s + 1, K, padding)
                begin, end = K - 1 - pad_a, K - 1 - pad_b
            axes.append(lax_axis(self, n, i, k, s, d, begin, end))
        empty = self.empty_note(axes, "lax clamps the size at 0, also where the padding would make it negative")
        if empty:
            notes.append(empty)
        note = None if empty else xla_cpu_padding_note([ax.conv_padding for ax in axes], strides)
        if note:
            notes.append(note)
        normalized = {
            "strides": strides,
            "padding": padding if explicit is None else [tuple(p) for p in explicit],
            "rhs_dilation": dilation,
            "transpose_kernel": args["transpose_kernel"],
            "use_consistent_padding": consistent,
        }
        if args["dimension_numbers"] is not None:
            normalized["dimension_numbers"] = args["dimension_numbers"]
        return self.geometry(axes, normalized, notes)

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        base = {"strides": geometry.stride}
        if any(d != 1 for d in geometry.dilation):
            base["rhs_dilation"] = geometry.dilation
        yield {**base, "padding": "SAME"}
        yield {**base, "padding": "VALID"}
        for pads in explicit_paddings(geometry):
            yield {**base, "padding": pads}




_JAX_DEFAULTS = {1: ("NC", "IO", "NC"), 2: ("NHC", "HIO", "NHC"), 3: ("NHWC", "HWIO", "NHWC"), 4: ("NHWDC", "HWDIO", "NHWDC")}


def jax_specs(dimension_numbers: Any, rank: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(lhs, rhs, out)`` as ``(batch/O, feature/I, *spatial)`` axis tuples, like lax."""
    if dimension_numbers is None:
        if rank - 1 not in _JAX_DEFAULTS:
            raise ConfigError(f"jax.lax.conv_transpose has no default dimension_numbers for {rank}-D arrays")
        dimension_numbers = _JAX_DEFAULTS[rank - 1]
    if hasattr(dimension_numbers, "lhs_spec"):  # lax.ConvDimensionNumbers: already axis tuples
        specs = (dimension_numbers.lhs_spec, dimension_numbers.rhs_spec, dimension_numbers.out_spec)
        return tuple(tuple(int(a) for a in spec) for spec in specs)  # type: ignore[return-value]
    if not (isinstance(dimension_numbers, (list, tuple)) and len(dimension_numbers) == 3
            and all(isinstance(s, str) for s in dimension_numbers)):
        raise ConfigError(
            f"dimension_numbers={dimension_numbers!r} must be three strings like ('NHWC', 'HWIO', 'NHWC') "
            "or a lax.ConvDimensionNumbers"
        )
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    for spec, pair in ((lhs_spec, "NC"), (rhs_spec, "OI"), (out_spec, "NC")):
        if len(spec) != rank or any(spec.count(c) != 1 for c in pair) or len(set(spec)) != len(spec):
            raise ConfigError(
                f"dimension_numbers spec {spec!r} must have {rank} distinct letters including "
                f"{pair[0]!r} and {pair[1]!r} (the arrays have {rank} dimensions)"
            )
    if sorted(lhs_spec.replace("N", "").replace("C", "")) != sorted(rhs_spec.replace("O", "").replace("I", "")) or \
            sorted(out_spec.replace("N", "").replace("C", "")) != sorted(rhs_spec.replace("O", "").replace("I", "")):
        raise ConfigError(f"dimension_numbers={dimension_numbers!r}: the spatial letters must match in all three specs")

    def perm(spec: str, pair: str) -> tuple[int, ...]:
        spatial_axes = [i for i, c in enumerate(spec) if c not in pair]
        if spec is not rhs_spec:
            spatial_axes.sort(key=lambda i: rhs_spec.index(spec[i]))
        return (spec.index(pair[0]), spec.index(pair[1]), *spatial_axes)

    return perm(lhs_spec, "NC"), perm(rhs_spec, "OI"), perm(out_spec, "NC")


CONVENTION = Jax()
