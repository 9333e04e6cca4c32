"""Choosing a strategy: measured once per signature and cached, by rule, or forced.

Like ``torch.backends.cudnn.benchmark``, the first call with a new *signature*
(spatial sizes, kernel, stride, dilation, kept window, channels, groups, batch
size, dtype, device, memory layout, thread count, whether gradients are
needed, whether there is a bias) times every eligible strategy on the actual
tensors (forward, or forward+backward when gradients are needed) and caches the
fastest; later calls with that signature reuse the choice.

Modes (``set_strategy(mode)``, or ``with use_strategy(mode):``):

``"auto"`` (default)
    measure once per signature, as above.
``"deterministic"``
    no measurement: :func:`deterministic_rule` picks from the signature alone,
    so the choice (and the floating-point summation order) is the same on
    every run. It is also what runs while ``torch.compile`` traces a call, so
    timing never enters a traced graph.
a strategy name (``"native"``, ``"phase"``, ...)
    always that strategy (an error names the eligible ones when it cannot run
    the layer).

A module or function can also force one with ``strategy=...``.

Examples
--------
>>> import torch, tconv.torch
>>> x, w = torch.randn(1, 3, 4, 4), torch.randn(3, 2, 2, 2)
>>> with tconv.torch.use_strategy("gemm_shuffle"):
...     y = tconv.torch.conv_transpose2d(x, w, stride=2)
>>> torch.allclose(y, torch.nn.functional.conv_transpose2d(x, w, stride=2), atol=1e-5)
True
>>> tconv.torch.deterministic_rule(x, w, tconv.torch.layer_geometry((4, 4), (2, 2), stride=2))
'native'
>>> x, w = torch.randn(1, 64, 256), torch.randn(64, 32, 2)
>>> tconv.torch.deterministic_rule(x, w, tconv.torch.layer_geometry((256,), (2,), stride=2))
'gemm_shuffle'
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import statistics
import time
from typing import Iterator

import torch

from ..errors import ConfigError
from ..geometry import Geometry
from . import _native
from .strategies import (STRATEGIES, Plan, applies, eligible, is_channels_last, is_compiling, needs_grad,
                         onednn_3d_layer, run)

__all__ = [
    "MODES",
    "cache_info",
    "choose",
    "clear_cache",
    "deterministic_rule",
    "get_strategy",
    "set_strategy",
    "use_strategy",
]

MODES = ("auto", "deterministic")

#: below this many flops per call the rule decides without measuring (see deterministic_rule)
MEASURE_MIN_FLOPS = 2_000_000

_global_mode = "auto"
_context_mode: contextvars.ContextVar[str | None] = contextvars.ContextVar("tconv_torch_strategy", default=None)
_cache: dict[tuple, str] = {}
#: bumped by clear_cache, so that the bound calls functions and modules keep are dropped too
_generation = 0


def _check_mode(mode: str) -> str:
    if mode in MODES or mode in STRATEGIES:
        return mode
    legal = ", ".join(repr(m) for m in MODES + tuple(STRATEGIES))
    raise ConfigError(f"strategy={mode!r} is not a mode or a strategy; use one of {legal}")


def set_strategy(mode: str) -> None:
    """Set the process-wide mode: ``"auto"``, ``"deterministic"`` or a strategy name.

    Raises
    ------
    ConfigError
        For an unknown name.
    """
    global _global_mode
    _global_mode = _check_mode(mode)


def get_strategy() -> str:
    """The mode in force here (the innermost :func:`use_strategy`, else the global one)."""
    return _context_mode.get() or _global_mode


@contextlib.contextmanager
def use_strategy(mode: str) -> Iterator[None]:
    """Within the block, use ``mode`` (``"auto"``, ``"deterministic"`` or a strategy name)."""
    token = _context_mode.set(_check_mode(mode))
    try:
        yield
    finally:
        _context_mode.reset(token)


def clear_cache() -> None:
    """Forget every measured choice (and the calls that functions and modules bound to them)."""
    global _generation
    _cache.clear()
    _generation += 1


def cache_info() -> dict[tuple, str]:
    """A copy of the cache: signature -> chosen strategy."""
    return dict(_cache)


#: the memory formats a signature names, by the input's number of dimensions
_CHANNELS_LAST_NAMES = {4: "channels_last", 5: "channels_last_3d"}


def _layout(x: torch.Tensor) -> str:
    if is_channels_last(x) and x.dim() in _CHANNELS_LAST_NAMES:
        return _CHANNELS_LAST_NAMES[x.dim()]
    return "contiguous" if x.is_contiguous() else "strided"


def signature(x, w, b, plan: Plan) -> tuple:
    """Everything the best strategy may depend on."""
    return (
        tuple(plan.geometry.axes),
        plan.groups,
        tuple(x.shape[:2]),
        plan.out_channels,
        x.dtype,
        str(x.device),
        _layout(x),
        torch.get_num_threads(),
        needs_grad(x, w, b),
        b is not None,
    )


def deterministic_rule(x: torch.Tensor, w: torch.Tensor, geometry: Geometry, bias: torch.Tensor | None = None) -> str:
    """The strategy chosen without measuring (deterministic mode, and under ``torch.compile``).

    The first rule that applies, in this order:

    0. not a CPU float32/float64 tensor: ``native``;
    1. a 1-D or 2-D depthwise layer (one input channel per group) in inference,
       at least ``MEASURE_MIN_FLOPS``, where tconv's C loops are built:
       ``depthwise``, one C pass (channels-last input takes the channels-last
       loop the NumPy engine uses); 3-D follows the next rule;
    2. a grouped layer with fewer than ``FEW_CHANNELS_PER_GROUP`` input channels
       per group, depthwise included: ``native_bias_after`` when there is a
       bias, else ``native``, at any size, with or without gradients. oneDNN
       runs such layers as a convolution's backward pass and adds the bias in a
       slow separate pass; with more channels per group it fuses the bias;
    3. under ``MEASURE_MIN_FLOPS`` per call: ``native`` (a rewrite's fixed
       overhead outweighs what it could save);
    4. gradients needed: ``native`` (torch's fused backward kernels beat
       autograd through the rewrites' ops);
    5. float64: ``native`` (oneDNN has no float64 path, and no rewrite is
       reliably faster);
    6. a non-overlapping kernel (``d*(k-1)+1 <= s``, e.g. k == s):
       ``gemm_shuffle`` (one GEMM, nothing to sum);
    7. a layer that narrows its channels at least 4x (``C_out * 4 <= C_in``):
       ``gemm_gather`` where the C loops are built, else ``kn2row`` (the GEMM
       gives few channels per tap, and the sums are cheap);
    8. 1-D with a stride of at least 8 and at least
       ``OVERLAP_ADD_MIN_CHANNELS`` input channels (vocoders' first
       up-sampling layers): ``overlap_add`` (its GEMM reads the large weight
       as stored);
    9. other 1-D layers with overlapping taps and a stride of 2 or more:
       ``gemm_gather`` where the C loops are built; without them, stride 2 with
       at least ``PHASE_ROWS_MIN_POSITIONS`` input positions per call:
       ``phase_rows``;
    10. 2-D with at least ``CHANNELS_LAST_MIN_FLOPS``: ``channels_last``
        (oneDNN's fast layout pays for the conversions in and out there, not on
        smaller layers);
    11. 3-D layers oneDNN takes (:func:`onednn_3d_layer`): ``channels_last``,
        which calls oneDNN directly in 3-D inference;
    12. otherwise: ``native``.

    The thresholds come from timing every strategy on the benchmark suite:
    ``python benchmarks/bench_torch.py --strategies``, ``--mode deterministic``
    for the rule itself (``benchmarks/results/torch-deterministic.md``), and
    ``benchmarks/bench_vocoder.py`` and ``benchmarks/bench_bias.py``.
    docs/torch.md explains each rule and docs/performance.md shows the numbers.
    """
    plan = Plan(geometry, w.shape[0], w.shape[1] * geometry.groups)
    batch = x.shape[0] if x.dim() == plan.ndim + 2 else 1
    flops = plan.flops(batch)
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return "native"
    inference = not needs_grad(x, w, bias)
    if (plan.ndim <= 2 and plan.in_channels == plan.groups > 1 and inference and flops >= MEASURE_MIN_FLOPS
            and _native.library() is not None):
        return "depthwise"
    if plan.groups > 1 and plan.in_channels // plan.groups < FEW_CHANNELS_PER_GROUP:
        return "native" if bias is None else "native_bias_after"
    if flops < MEASURE_MIN_FLOPS or needs_grad(x, w, bias):
        return "native"
    if x.dtype == torch.float64:
        return "native"
    if plan.non_overlapping:
        return "gemm_shuffle"
    if plan.out_channels * 4 <= plan.in_channels:
        return "gemm_gather" if applies("gemm_gather", plan) else "kn2row"
    if (plan.ndim == 1 and plan.stride[0] >= 8 and plan.in_channels >= OVERLAP_ADD_MIN_CHANNELS
            and applies("overlap_add", plan)):
        return "overlap_add"
    if plan.ndim == 1 and plan.stride[0] >= 2 and applies("gemm_gather", plan):
        return "gemm_gather"
    if (plan.ndim == 1 and plan.stride[0] == 2 and not plan.non_overlapping and applies("phase_rows", plan)
            and batch * plan.input_shape[0] >= PHASE_ROWS_MIN_POSITIONS):
        return "phase_rows"
    if plan.ndim == 2 and flops >= CHANNELS_LAST_MIN_FLOPS:
        return "channels_last"
    if onednn_3d_layer(plan):
        return "channels_last"
    return "native"


#: grouped layers with fewer input channels per group than this get their bias added after torch's kernel
FEW_CHANNELS_PER_GROUP = 16

#: the deterministic rule uses overlap_add for 1-D layers of stride 8 or more from this many input channels
OVERLAP_ADD_MIN_CHANNELS = 256

#: the deterministic rule uses phase_rows for 1-D stride-2 layers from this many input positions per call
PHASE_ROWS_MIN_POSITIONS = 4096

#: the deterministic rule uses channels-last for 2-D layers from this many flops per call
CHANNELS_LAST_MIN_FLOPS = 20_000_000


def choose(x, w, b, plan: Plan, forced: str | None = None) -> str:
    """The strategy for this call (see the module docstring for the order of precedence)."""
    mode = _check_mode(forced) if forced is not None else get_strategy()
    if mode in STRATEGIES:
        if not applies(mode, plan):
            raise ConfigError(
                f"strategy {mode!r} cannot compute this layer; eligible here: {', '.join(eligible(plan))}"
            )
        return mode
    if mode == "deterministic" or is_compiling() or plan.flops(x.shape[0]) < MEASURE_MIN_FLOPS:
        return deterministic_rule(x, w, plan.geometry, b)
    key = signature(x, w, b, plan)
    choice = _cache.get(key)
    if choice is None:
        choice = _measure(x, w, b, plan)
        _cache[key] = choice
    return choice


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(x, w, b, plan: Plan, rounds: int = 5, budget_s: float = 2.0) -> str:
    """Time every eligible strategy on copies of the real tensors; return the fastest.

    Candidates are timed in rounds (A B C, A B C, ...) so that a burst of load
    from other processes hits them alike, and each keeps its fastest time.
    Candidates more than 4x slower than the best after a round are dropped.
    Then up to ``FINALISTS`` rewrites whose fastest time is within
    ``FINALIST_SPREAD`` of the best are timed head to head with ``native``
    (``HEAD_TO_HEAD_PAIRS`` rounds of samples at least ``HEAD_TO_HEAD_SAMPLE_S``
    long); the finalist with the lowest median wins, and ``native`` is kept
    unless that median is at least ``NATIVE_MARGIN`` (10%) below its own and
    the finalist was faster than ``native`` in all rounds but one.
    """
    grad = needs_grad(x, w, b)
    xs, ws = x.detach(), w.detach()
    bs = None if b is None else b.detach()
    if grad:
        xs, ws = xs.clone().requires_grad_(x.requires_grad), ws.clone().requires_grad_(w.requires_grad)
        bs = None if b is None else bs.clone().requires_grad_(b.requires_grad)

    def once(name: str, number: int = 1) -> float:
        """Seconds per call, over ``number`` back-to-back calls."""
        start = time.perf_counter()
        for _ in range(number):
            if grad:
                with torch.enable_grad():
                    y = run(name, xs, ws, bs, plan)
                    y.backward(torch.ones_like(y))
            else:
                with torch.no_grad():
                    run(name, xs, ws, bs, plan)
        _sync(x.device)
        return (time.perf_counter() - start) / number

    best: dict[str, float] = {}
    for name in eligible(plan):
        if name == "native_bias_after" and b is None:
            continue  # the same call as native
        try:
            once(name)  # warm-up: caches, allocator, oneDNN primitives
            best[name] = once(name)
        except (RuntimeError, MemoryError):
            continue
    if not best:
        return "native"
    spent = sum(best.values())
    for _ in range(rounds - 1):
        fastest = min(best.values())
        alive = [n for n, t in best.items() if t <= 4 * fastest]
        if spent > budget_s:
            break
        for name in alive:
            elapsed = once(name)
            spent += elapsed
            best[name] = min(best[name], elapsed)
    fastest = min(best.values())
    finalists = sorted((n for n in best if n != "native" and best[n] <= FINALIST_SPREAD * fastest), key=best.get)
    finalists = finalists[:FINALISTS]
    if "native" not in best:
        return min(best, key=best.get)
    if not finalists:
        return "native"
    # Decide on medians of fresh, longer samples taken in rounds, not on the single-call minima
    # above: one lucky call let a rewrite win that then ran at 0.8x, and the runner-up by minimum
    # was often the faster one by median (in four ad-hoc measurements of the 3-D U-Net k2s2 layer the
    # minima picked `shifted` or `native` while `gemm_shuffle` had the lowest median each time). Each sample loops
    # for at least HEAD_TO_HEAD_SAMPLE_S: single calls of a 1-2 ms layer varied by 20% here.
    number = max(1, min(50, math.ceil(HEAD_TO_HEAD_SAMPLE_S / best["native"])))
    samples: dict[str, list[float]] = {name: [] for name in ["native"] + finalists}
    for _ in range(HEAD_TO_HEAD_PAIRS):
        for name in samples:
            samples[name].append(once(name, number))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    winner = min(finalists, key=medians.get)
    if medians[winner] > (1 - NATIVE_MARGIN) * medians["native"]:
        return "native"  # not clearly faster: a noisy win would be a coin toss against torch itself
    # With several finalists one can beat native's median by luck, so the winner must also have
    # been faster than native in all rounds but one (rounds pair samples taken moments apart).
    rounds_won = sum(mine < theirs for mine, theirs in zip(samples[winner], samples["native"]))
    return winner if rounds_won >= HEAD_TO_HEAD_PAIRS - 1 else "native"


#: at most this many rewrites go on to the head-to-head round against ``native``
FINALISTS = 3

#: ... those whose fastest screening time is within this factor of the fastest strategy's
FINALIST_SPREAD = 1.25


#: rounds of head-to-head samples (``native`` and every finalist) before a rewrite replaces torch's kernel
HEAD_TO_HEAD_PAIRS = 5

#: each of those runs calls the layer back to back for at least this long (at most 50 calls)
HEAD_TO_HEAD_SAMPLE_S = 0.005


#: another strategy replaces torch's own kernel only when it measured at least this much faster
NATIVE_MARGIN = 0.10
