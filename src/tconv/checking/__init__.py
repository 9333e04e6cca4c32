"""Check a whole model: trace it without activations, find the size problems, say the fix.

:func:`check` takes a PyTorch ``nn.Module``, a Keras 3 model, an ONNX model (a
path or a ``ModelProto``) or a callable that builds one from the input shape, and
returns a :class:`Report`: one row per layer, the problems first (where the
sizes diverged, as arithmetic, and fixes that were traced again), and the
input sizes the model accepts per axis.

>>> import torch
>>> from torch import nn
>>> class Tiny(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.down = nn.Conv2d(1, 4, 3, stride=2, padding=1)
...         self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
...     def forward(self, x):
...         return torch.cat([self.up(self.down(x)), x], dim=1)
>>> report = check(Tiny(), (1, 1, 9, 8))
>>> report.input_sizes
{'H': 'multiples of 2 from 2', 'W': 'multiples of 2 from 2'}
>>> report.problems[0].message
'cat at the top level gets 1x4x10x8 vs 1x1x9x8: H: 9; conv s2 -> 5 -> convT s2 -> 10 != 9 at up + skip from the input'
>>> [fix.text.split(";")[0] for fix in report.problems[0].fixes][:2]
['pad the input 9x8 to 10x8 (input shape 1x1x10x8)', 'crop the input 9x8 to 8x8 (input shape 1x1x8x8)']
"""
from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import ConfigError
from ._report import Fix, Layer, Problem, Report

__all__ = ["check", "Report", "Layer", "Problem", "Fix"]


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def _is_keras(obj: Any) -> bool:
    return any(c.__module__.startswith("keras") and c.__name__ == "Model" for c in type(obj).__mro__)


def _is_onnx(obj: Any) -> bool:
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).lower().endswith(".onnx")
    return type(obj).__name__ == "ModelProto"


def _shape_tuple(input_shape: Any) -> tuple:
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ConfigError(f"input_shape={input_shape!r} must be a tuple of ints, e.g. (1, 3, 352, 528)") from None
    for n, v in enumerate(shape):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"input_shape={input_shape!r}: entry {n} ({v!r}) must be a positive int")
    return shape


def _model_like(obj: Any) -> bool:
    if obj is None or isinstance(obj, (tuple, list, int)):
        return False
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).lower().endswith((".onnx", ".keras", ".h5"))
    return _is_torch_module(obj) or _is_keras(obj) or _is_onnx(obj) or callable(obj)


def _kind(obj: Any) -> str:
    if _is_onnx(obj):
        return "onnx"
    if _is_keras(obj) or str(obj).lower().endswith((".keras", ".h5")):
        return "keras"
    return "pytorch"


def _declared(obj: Any) -> tuple | None:
    """The input shape a model declares (a batch of 1 where it leaves the batch open), or None."""
    if _is_keras(obj) and getattr(obj, "inputs", None):
        shape = tuple(obj.inputs[0].shape)
        if all(isinstance(v, int) for v in shape[1:]):
            return (1 if shape[0] is None else shape[0], *shape[1:])
    return None


def _relayout(shape: tuple, source: str, target: str) -> tuple:
    """The same input in the other framework's layout: channels first (PyTorch, ONNX) or last (Keras)."""
    if (source == "keras") == (target == "keras"):
        return shape
    if target == "keras":
        return (shape[0], *shape[2:], shape[1])
    return (shape[0], shape[-1], *shape[1:-1])


def _comparison(source: Any, converted: Any, shapes: tuple) -> Any:
    from ._compare import compare

    a_kind, b_kind = _kind(source), _kind(converted)
    a_shape = _shape_tuple(shapes[0]) if shapes and shapes[0] is not None else _declared(source)
    b_shape = _shape_tuple(shapes[1]) if len(shapes) > 1 and shapes[1] is not None else _declared(converted)
    if a_shape is None and b_shape is not None:
        a_shape = _relayout(b_shape, b_kind, a_kind)
    if b_shape is None and a_shape is not None and b_kind != "onnx":
        b_shape = _relayout(a_shape, a_kind, b_kind)
    if a_shape is None and a_kind != "onnx":
        raise ConfigError("comparing two models needs the source's input shape: tconv.check(source, converted, (1, 3, 64, 64))")
    return compare(check(source, a_shape), check(converted, b_shape))


def check(model: Any, input_shape: Any = None, *shapes: Any) -> Any:
    """Trace ``model`` at ``input_shape`` without activations and report its size problems.

    ``tconv.check(source, converted[, source_shape[, converted_shape]])`` compares two models of
    the same network instead (a model and its conversion), layer by layer, and returns a
    ``Comparison`` naming the first layer where a pixel was lost or shifted; a shape left out is
    the one the model declares, or the other's in this model's layout.

    Parameters
    ----------
    model : torch.nn.Module, keras.Model, onnx.ModelProto, str, os.PathLike or callable
        A PyTorch module, a Keras 3 model (or a ``.keras`` file), an ONNX model
        or the path of an ``.onnx`` file, or a callable that builds one of those
        from ``input_shape`` (a Keras build that fails at a Concatenate is still
        reported, from the layers the build called).
    input_shape : tuple of int
        The full input shape, batch and channels included (``(1, 3, 350, 525)``;
        Keras: channels last, the batch may be left out: ``(350, 525, 3)``).
        ONNX models may leave it out when the graph declares its input shape.

    Returns
    -------
    Report
        ``str()`` is a table; ``to_json()`` its JSON; ``problems`` come with fixes.
        (A ``Comparison`` when two models are given.)

    Raises
    ------
    ConfigError
        A model of no kind tconv knows, a file that is not a model, an input
        shape of the wrong rank.
    """
    if _model_like(input_shape):
        return _comparison(model, input_shape, shapes)
    if shapes:
        raise ConfigError(f"check() takes one input shape; {len(shapes)} more given (two shapes are for comparing two models)")
    if _is_onnx(model):
        from ._onnx import check_onnx

        return check_onnx(model, None if input_shape is None else _shape_tuple(input_shape))
    if _is_torch_module(model):
        return _check_torch(model, input_shape)
    if _is_keras(model) or (isinstance(model, (str, os.PathLike)) and str(model).lower().endswith((".keras", ".h5"))):
        return _check_keras(model, input_shape)
    if isinstance(model, (str, bytes, os.PathLike)):
        raise ConfigError(f"{os.fspath(model)!r} is not a model tconv can read: give an .onnx file, an nn.Module, "
                          "or a callable that builds one")
    if callable(model):
        shape = _shape_tuple(input_shape) if input_shape is not None else None
        if shape is not None and "keras" in sys.modules:
            # a Keras model whose build fails at a Concatenate is reported from the layers its build called
            from ._keras import check_keras

            found = check_keras(model, shape, getattr(model, "__name__", type(model).__name__))
            if isinstance(found, Report):
                return found
            return check(found, input_shape) if found is not None and not callable(found) or _is_torch_module(found) \
                or _is_onnx(found) else _not_a_model(found)
        try:
            built = model(shape) if shape is not None else model()
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(f"building the model failed: {type(err).__name__}: {_one_line(err)}") from None
        if callable(built) and not _is_torch_module(built) and not _is_onnx(built):
            raise ConfigError(f"the callable returned {type(built).__name__}, not a model")
        return check(built, input_shape)
    raise ConfigError(f"cannot check a {type(model).__name__}: give a torch.nn.Module, an ONNX model (path or "
                      "ModelProto), or a callable that builds one")


def _not_a_model(built: Any) -> Report:
    raise ConfigError(f"the callable returned {type(built).__name__}, not a model")


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def _check_keras(model: Any, input_shape: Any) -> Report:
    from ._keras import check_keras

    if input_shape is None:
        raise ConfigError("a Keras model needs input_shape, e.g. (1, 352, 528, 3) or (352, 528, 3)")
    shape = _shape_tuple(input_shape)
    label = type(model).__name__
    if isinstance(model, (str, os.PathLike)):
        import keras

        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: no such file")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as err:
            text = _one_line(err)
            if any(w in str(err) for w in ("custom", "deserialized", "Unknown layer", "register_keras_serializable")):
                raise ConfigError(f"{path} needs custom objects to load (Keras: {type(err).__name__}: {text[:120]}...): "
                                  "import the module that registers them first, or check the callable that "
                                  "builds the model") from None
            raise ConfigError(f"{path} is not a Keras model tconv can load: {type(err).__name__}: {text[:200]}") from None
        label = os.path.basename(path)
    report = check_keras(model, shape, label)
    assert isinstance(report, Report)
    return report


def _check_torch(model: Any, input_shape: Any) -> Report:
    from . import _torch
    from ._fixes import report

    if input_shape is None:
        raise ConfigError("a PyTorch model needs input_shape, e.g. (1, 3, 352, 528)")
    shape = _shape_tuple(input_shape)
    rank = _torch.expected_rank(model)
    if rank is not None and len(shape) != rank[0]:
        example = "x".join(map(str, (1,) + shape)) if len(shape) == rank[0] - 1 else None  # the batch left out
        hint = f", e.g. {example}" if example else ""
        raise ConfigError(f"input shape {'x'.join(map(str, shape))} has {len(shape)} entries; {rank[1]} takes "
                          f"{rank[0]} (batch, channels, then {rank[0] - 2} spatial){hint}")
    meta = _torch.meta_copy(model)
    return report(meta, shape, type(model).__name__)
