"""Flax: ``flax.linen.ConvTranspose``.

Flax hands its padding to ``jax.lax.conv_transpose``: 'SAME' (the default) and
'VALID' as lax reads them, and an int or a sequence of ints/pairs as lax's
*transposed-conv* padding (the padding of the dilated input, see
:mod:`tconv.conventions.jax`). Flax has no output_padding.

'CIRCULAR' computes 'VALID', pads the result to an odd multiple of the period
``P = i*s`` and folds it onto ``P`` elements: output ``o`` is the sum of
``full[o - lead + m*P]`` over all ``m``, where ``lead = (diff+1)//2``
(``diff//2`` with ``transpose_kernel=True``) and ``diff = -(valid - P) mod 2P``.

A bare int ``kernel_size`` is one-dimensional in Flax: on a 2-D input it would
treat the extra axis as batch, so tconv asks for a tuple there.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError
from ..geometry import Geometry, dilated_kernel_size, full_size
from ._base import ArrayLayout, Convention, channels_last_axes, explicit_pair, integer, per_axis
from .jax import JaxFamily, explicit_paddings, forward_string_pads, lax_axis, lax_pads, xla_cpu_padding_note


class FlaxFamily(JaxFamily):
    """solve's candidates: lax's, with Flax's dilation name and 'CIRCULAR' among the strings."""

    dilation_name = "kernel_dilation"
    strings = ("SAME", "VALID", "CIRCULAR")


class Flax(Convention):
    name = "flax"
    title = "Flax"
    api = "flax.linen.ConvTranspose"
    defaults = {
        "strides": None,
        "padding": "SAME",
        "kernel_dilation": None,
        "transpose_kernel": False,
    }
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "strides", "padding": "padding", "dilation": "kernel_dilation"}
    solve_family = FlaxFamily()
    rule = (
        "Flax ConvTranspose uses lax.conv_transpose's padding ('SAME' gives i*s, 'VALID' (i-1)*s + max(K, s), "
        "ints are padding of the dilated input); 'CIRCULAR' folds the 'VALID' output periodically onto i*s"
    )

    forward_api = "flax.linen.Conv"
    forward_defaults = {"strides": 1, "padding": "SAME", "kernel_dilation": 1, "feature_group_count": 1}
    forward_names = ("strides", "kernel_dilation", "padding")
    forward_padding_modes = ("SAME", "SAME_LOWER", "VALID")

    cli_upper_padding = True
    cli_bare_sizes = True
    cli_kernel_per_axis = True  # Flax reads a bare int kernel as 1-D

    def array_layout(self, rank, args):
        transpose = bool(args.get("transpose_kernel", False))
        n = rank - 2
        w = (n + 1, n, *range(n)) if transpose else (n, n + 1, *range(n))
        what = "input (N, *spatial, C), kernel " + ("(*k, C_out, C_in)" if transpose else "(*k, C_in, C_out)")
        return ArrayLayout(channels_last_axes(rank), w, channels_last_axes(rank), not transpose, what)

    def forward_explicit(self, padding, n, ndim):
        return explicit_pair(self, padding, n, ndim, ints_allowed=True)

    def per_axis_names(self) -> tuple[str, ...]:
        return ("strides", "kernel_dilation")

    def infer_ndim(self, input_shape, kernel_size, args) -> int:
        # Flax reads an int kernel_size as ONE axis: (k,).
        if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
            if isinstance(input_shape, (list, tuple)) and len(input_shape) != 1:
                raise ConfigError(
                    f"kernel_size={kernel_size} is one-dimensional in Flax (it becomes ({kernel_size},)): on a "
                    f"{len(input_shape)}-D input Flax would convolve the last spatial axis only and treat the "
                    f"others as batch; pass kernel_size={(kernel_size,) * len(input_shape)}"
                )
            return 1
        return super().infer_ndim(input_shape, kernel_size, args)

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        strides = per_axis("strides", 1 if args["strides"] is None else args["strides"], ndim, self.title, minimum=1)
        dilation = per_axis("kernel_dilation", 1 if args["kernel_dilation"] is None else args["kernel_dilation"], ndim, self.title, minimum=1)
        transpose_kernel = args["transpose_kernel"]
        if not isinstance(transpose_kernel, bool):
            raise ConfigError(f"transpose_kernel={transpose_kernel!r} must be True or False")
        padding = args["padding"]
        notes = []
        explicit = None
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID", "CIRCULAR"):
                if padding.upper() not in ("SAME", "VALID", "SAME_LOWER"):
                    raise ConfigError(
                        f"padding={padding!r} is not one of 'SAME', 'VALID', 'CIRCULAR' in Flax (or an int, "
                        "or a sequence of ints or (low, high) pairs)"
                    )
                if any(s > 1 for s in strides):
                    raise ConfigError(
                        f"padding={padding!r} with strides={strides}: Flax and lax only recognise the exact "
                        "strings 'SAME', 'VALID' and 'CIRCULAR'; any other string reaches conv_general_dilated, "
                        "which fails for strides > 1 (\"String padding is not implemented for transposed "
                        "convolution using this op\"); use 'SAME' or 'VALID'"
                    )
                notes.append(
                    f"Flax and lax only recognise the exact strings 'SAME', 'VALID' and 'CIRCULAR': padding="
                    f"{padding!r} reaches conv_general_dilated as the padding of a stride-1 convolution "
                    "over the dilated input, which keeps a different window"
                )
        else:
            explicit = _canonical_padding(padding, ndim)
        axes = []
        for n, (i, k, s, d) in enumerate(zip(input_shape, kernel_size, strides, dilation)):
            K = dilated_kernel_size(k, d)
            full = full_size(i, k, s, d)
            if padding == "CIRCULAR":
                pad_a, pad_b = lax_pads(K, s, "VALID")
                valid = full - (K - 1 - pad_a) - (K - 1 - pad_b)
                period = i * s
                diff = -(valid - period) % (2 * period)
                lead = diff // 2 if transpose_kernel else (diff + 1) // 2
                axes.append(self.axis(str(n), i, k, s, d, -lead, full + lead - period, wrap=True))
                continue
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
        note = None if padding == "CIRCULAR" or empty else xla_cpu_padding_note([ax.conv_padding for ax in axes], strides, self.api)
        if note:
            notes.append(note)
        normalized = {
            "strides": strides,
            "padding": padding if explicit is None else [tuple(p) for p in explicit],
            "kernel_dilation": dilation,
            "transpose_kernel": transpose_kernel,
        }
        return self.geometry(axes, normalized, notes)

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        base = {"strides": geometry.stride}
        if any(d != 1 for d in geometry.dilation):
            base["kernel_dilation"] = geometry.dilation
        for padding in ("SAME", "VALID", "CIRCULAR"):
            yield {**base, "padding": padding}
            if padding == "CIRCULAR":
                yield {**base, "padding": padding, "transpose_kernel": True}
        if not geometry.wrap:
            for pads in explicit_paddings(geometry):
                yield {**base, "padding": pads}


def _canonical_padding(padding, ndim: int) -> tuple[tuple[int, int], ...]:
    """Flax's ``canonicalize_padding``: an int, or ``ndim`` ints or (low, high) pairs.

    Flax converts list attributes to tuples when the module is built, so ``[[1, 1]]``
    works like ``[(1, 1)]`` (unlike ``lax.conv_transpose`` with use_consistent_padding).
    """
    if isinstance(padding, int) and not isinstance(padding, bool):
        value = integer("padding", padding, "Flax", minimum=-(2**31))
        return ((value, value),) * ndim
    if isinstance(padding, (list, tuple)) and len(padding) == ndim:
        result = []
        for n, p in enumerate(padding):
            if isinstance(p, int) and not isinstance(p, bool):
                v = integer(f"padding[{n}]", p, "Flax", minimum=-(2**31))
                result.append((v, v))
            elif isinstance(p, (tuple, list)) and len(p) == 2:  # Flax freezes list attributes into tuples
                result.append((integer(f"padding[{n}]", p[0], "Flax", minimum=-(2**31)),
                               integer(f"padding[{n}]", p[1], "Flax", minimum=-(2**31))))
            else:
                break
        if len(result) == ndim:
            return tuple(result)
    raise ConfigError(
        f"Invalid padding format: {padding!r}, should be str, int, or a sequence of len {ndim} where each "
        "element is an int or a tuple pair of ints (Flax)"
    )


CONVENTION = Flax()
