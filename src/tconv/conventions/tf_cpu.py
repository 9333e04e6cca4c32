"""TensorFlow's two CPU kernels for transposed convolution, and which one this machine runs.

TensorFlow's Linux x86 wheels carry two implementations of
``Conv2DBackpropInput`` / ``Conv3DBackpropInputV2`` (what ``tf.nn.conv_transpose``
and Keras' TensorFlow backend run):

* **oneDNN** (``_MklNativeConv2DBackpropInput``): float32 layers with
  ``'SAME'`` or ``'VALID'`` padding. It computes dilated layers and
  channels-first data, and returns an empty array for an ``output_shape`` of 0
  without checking it.
* **the plain (Eigen) kernel**: everything else, and every layer when oneDNN
  is off. It refuses ``dilations > 1`` ("Current CPU implementations do not yet
  support dilation rates larger than 1") and channels-first data
  ("Conv2DCustomBackpropInputOp only supports NHWC", "Conv3DBackpropInputOpV2
  only supports NDHWC on the CPU").

Whether oneDNN is on is decided once per process by TensorFlow
(``IsMklEnabled`` in ``tensorflow/core/util/port.cc``): ``TF_ENABLE_ONEDNN_OPTS``
('0', 'false', '1' or 'true') decides; without it, Linux turns oneDNN on only
for CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX (and Arm Neoverse V1),
Windows x86 always, macOS never. :func:`this_machine` reads the same
environment variable and CPU flags without importing TensorFlow, and asks
TensorFlow itself once it has been imported.

>>> from tconv.conventions import tf_cpu
>>> tf_cpu.detect(environ={}, cpu_flags={"avx2"}, system="Linux", machine="x86_64").onednn
False
>>> tf_cpu.detect(environ={"TF_ENABLE_ONEDNN_OPTS": "1"}, cpu_flags=set(), system="Linux", machine="x86_64").onednn
True
"""
from __future__ import annotations

import functools
import os
import platform
import sys
from dataclasses import dataclass
from typing import Any, Collection, Mapping

from .._machine import cpu_flags as _machine_flags
from ..errors import ConfigError

__all__ = ["TfCpu", "ONEDNN_CPU_FEATURES", "detect", "this_machine", "resolve", "refusals"]

#: The CPU features (Linux /proc/cpuinfo flag names) that make TensorFlow turn oneDNN on by default.
ONEDNN_CPU_FEATURES = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")

#: Who runs a layer the plain kernel refuses: said in every warning about it.
ONEDNN_MACHINES = (
    "Machines where TensorFlow turns oneDNN on (x86 CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX, "
    "or TF_ENABLE_ONEDNN_OPTS=1) run it in float32 with 'SAME'/'VALID' padding, and so do GPUs"
)

# Arm Neoverse V1: implementer 0x41, part 0xd40 (TensorFlow's only aarch64 default).
_NEOVERSE_V1 = ("0x41", "0xd40")


@dataclass(frozen=True)
class TfCpu:
    """Which TensorFlow CPU kernel runs transposed convolutions.

    Attributes
    ----------
    onednn : bool
        True when TensorFlow's oneDNN kernels are on (float32 'SAME'/'VALID'
        layers run there); False when only the plain kernel runs.
    reason : str
        Why: the environment variable, the CPU features, TensorFlow's own
        answer, or the caller's request.
    """

    onednn: bool
    reason: str

    @property
    def name(self) -> str:
        return "oneDNN" if self.onednn else "the plain (Eigen) kernel"

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def _env_choice(environ: Mapping[str, str]) -> bool | None:
    # TensorFlow's ReadBoolFromEnvVar: case-insensitive '0'/'false'/'1'/'true'; anything else keeps the default.
    value = environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    return None


def _arm_part() -> tuple[str, str] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
    except OSError:
        return None
    implementer = fields.get("CPU implementer\t", fields.get("CPU implementer", "")).strip()
    part = fields.get("CPU part\t", fields.get("CPU part", "")).strip()
    return (implementer, part) if implementer and part else None


def detect(
    environ: Mapping[str, str] | None = None,
    cpu_flags: Collection[str] | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> TfCpu:
    """TensorFlow's oneDNN policy, worked out without importing TensorFlow.

    Parameters
    ----------
    environ, cpu_flags, system, machine
        The environment, the CPU's feature flags, ``platform.system()`` and
        ``platform.machine()``; this machine's when None.

    Returns
    -------
    TfCpu

    Examples
    --------
    >>> detect(environ={}, cpu_flags={"avx2", "avx512f", "avx512_vnni"}, system="Linux", machine="x86_64")
    TfCpu(onednn=True, reason='the CPU has avx512_vnni')
    >>> detect(environ={"TF_ENABLE_ONEDNN_OPTS": "0"}, cpu_flags={"avx512_vnni"}, system="Linux", machine="x86_64")
    TfCpu(onednn=False, reason='TF_ENABLE_ONEDNN_OPTS=0')
    """
    environ = os.environ if environ is None else environ
    system = platform.system() if system is None else system
    machine = (platform.machine() if machine is None else machine).lower()
    forced = _env_choice(environ)
    if forced is not None:
        return TfCpu(forced, f"TF_ENABLE_ONEDNN_OPTS={environ['TF_ENABLE_ONEDNN_OPTS']}")
    if system == "Linux" and machine in ("x86_64", "amd64"):
        flags = _machine_flags() if cpu_flags is None else set(cpu_flags)
        present = [f for f in ONEDNN_CPU_FEATURES if f in flags]
        if present:
            return TfCpu(True, f"the CPU has {', '.join(present)}")
        return TfCpu(False, "the CPU has none of AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX")
    if system == "Linux" and machine in ("aarch64", "arm64"):
        part = _arm_part() if cpu_flags is None else None
        return TfCpu(part == _NEOVERSE_V1, "Arm Neoverse V1" if part == _NEOVERSE_V1 else "an Arm CPU other than Neoverse V1")
    if system == "Windows" and machine in ("x86_64", "amd64"):
        return TfCpu(True, "TensorFlow's Windows x86 default")
    return TfCpu(False, f"TensorFlow's default on {system} {machine}")


@functools.lru_cache(maxsize=1)
def _detected() -> TfCpu:
    return detect()


@functools.lru_cache(maxsize=1)
def _from_tensorflow() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - a TensorFlow without that probe leaves the prediction standing
        return None


def this_machine() -> TfCpu:
    """The kernel TensorFlow runs in this process.

    Predicted from ``TF_ENABLE_ONEDNN_OPTS`` and the CPU's features; once
    TensorFlow has been imported (by anyone), TensorFlow's own
    ``IsMklEnabled()`` is asked instead, and it wins.

    >>> this_machine().onednn in (True, False)
    True
    """
    predicted = _detected()
    if "tensorflow" in sys.modules:
        told = _from_tensorflow()
        if told is not None:
            if told == predicted.onednn:
                return TfCpu(told, f"{predicted.reason}; confirmed by TensorFlow")
            return TfCpu(told, f"TensorFlow reports oneDNN {'on' if told else 'off'}")
    return predicted


def resolve(tf_onednn: Any) -> TfCpu:
    """The kernel to describe: this machine's (None) or the one asked for (True: oneDNN, False: plain).

    >>> resolve(False)
    TfCpu(onednn=False, reason='asked for with tf_onednn=False')
    """
    if tf_onednn is None:
        return this_machine()
    if not isinstance(tf_onednn, bool):
        raise ConfigError(
            f"tf_onednn={tf_onednn!r} must be True (a machine where TensorFlow's oneDNN kernels are on), "
            "False (only its plain kernel) or None (this machine)"
        )
    return TfCpu(tf_onednn, f"asked for with tf_onednn={tf_onednn}")


def refusals(
    cpu: TfCpu,
    *,
    ndim: int,
    dilations: tuple[int, ...],
    channels_first: bool,
    string_padding: bool,
    empty_output: bool = False,
) -> list[tuple[str, str]]:
    """Why the kernel that runs a float32 layer refuses it: (TensorFlow's message, explanation) pairs.

    Empty when it runs. ``string_padding`` is False for explicit padding
    pairs, which always go to the plain kernel. ``empty_output`` is an
    ``output_shape`` with a 0, which oneDNN returns unchecked and the plain
    kernel refuses (for 'SAME'/'VALID'; with explicit pairs it is checked by
    the padding rule like any other size).

    >>> cpu = TfCpu(False, "test")
    >>> [m for m, _ in refusals(cpu, ndim=2, dilations=(2, 1), channels_first=False, string_padding=True)]
    ['not yet support dilation rates larger than 1']
    >>> refusals(TfCpu(True, "test"), ndim=2, dilations=(2, 1), channels_first=True, string_padding=True)
    []
    """
    if cpu.onednn and string_padding:
        return []
    plain = "TensorFlow's plain CPU kernel"
    asked = cpu.reason.startswith("asked for")
    why_plain = (
        f"oneDNN is off{'' if asked else ' here'} ({cpu.reason})" if not cpu.onednn
        else "explicit padding pairs always run the plain kernel"
    )
    found = []
    if any(d > 1 for d in dilations):
        found.append((
            "not yet support dilation rates larger than 1",
            f"{plain} refuses dilations > 1 (\"Current CPU implementation{'s' if ndim < 3 else ''} do"
            f"{'' if ndim < 3 else 'es'} not yet support dilation rates larger than 1\"); {why_plain}",
        ))
    if channels_first:
        layout = "NDHWC on the CPU" if ndim == 3 else "NHWC"
        op = "Conv3DBackpropInputOpV2" if ndim == 3 else "Conv2DCustomBackpropInputOp"
        found.append((
            f"only supports {layout}",
            f"{plain} refuses channels-first data (\"{op} only supports {layout}\"); {why_plain}",
        ))
    if empty_output and string_padding:
        why = (f"{plain} checks an output_shape of 0 against the padding rule and refuses it (\"Size of "
               f"out_backprop doesn't match computed\", or for 'VALID' \"Computed output size would be "
               f"negative\"), where oneDNN returns an empty array; {why_plain}")
        found.append(("Size of out_backprop doesn't match computed", why))
        found.append(("Computed output size would be negative", why))
    return found


def refusal_note(framework: str, cpu: TfCpu, found: list[tuple[str, str]], string_padding: bool) -> str:
    """One warning for the refusals of :func:`refusals`, naming the machines that accept the layer."""
    where = "on this machine" if not cpu.reason.startswith("asked for") else f"where {cpu.name} runs it"
    reasons = "; ".join(dict.fromkeys(explanation for _, explanation in found))
    if string_padding:
        who = ONEDNN_MACHINES
    else:
        who = "No TensorFlow CPU kernel runs it (explicit padding pairs always go to the plain kernel); GPU builds do"
    return f"{framework} fails on this layer {where}: {reasons}. {who}"
