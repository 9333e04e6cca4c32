"""Trace a PyTorch ``nn.Module`` on the meta device: shapes without activations.

The model is copied to the ``meta`` device (no storage is allocated) and run
once on a meta input, so shape-dependent Python ("pad if the sizes differ")
runs as written. Forward hooks record every convolution, transposed
convolution, pooling and upsampling module with its arguments and geometry
(from tconv's conventions); a ``TorchFunctionMode`` records the functional
ones, every ``torch.cat`` and every addition of tensors. A join whose operands
disagree is recorded and then goes on with a stand-in of the earlier
operand's (the skip's) size, so the rest of the model is traced too.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..api import geometry as _geometry
from ..errors import ConfigError
from ..forward import forward_axes
from ._arith import Node
from ._report import Layer

__all__ = ["trace", "Trace", "Mismatch"]

_CAT = {"cat", "concat", "concatenate"}
_ADD = {"add", "__add__", "__radd__", "__iadd__", "add_"}
_INTERP = {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}


@dataclass
class Mismatch:
    """A join whose operands disagree on some non-joined axis."""

    key: tuple  # (module name, ordinal): the same join in another trace of the model
    name: str
    op: str
    operands: list  # Nodes
    reference: int  # which operand the trace went on with (the earliest: the skip)
    axes: tuple  # spatial axes that disagree
    shapes: list


@dataclass
class Trace:
    nodes: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    mismatches: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # one-line messages of what stopped the trace
    output_shape: tuple | None = None
    modules: dict = field(default_factory=dict)  # name -> (module class name, its arguments)


def _pairs(value: Any, ndim: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def _tconv_map(k: int, s: int, p: int, op: int, d: int):
    return lambda n: _geometry((n,), (k,), "pytorch", stride=s, padding=p, output_padding=op, dilation=d).output_shape[0]


def _conv_map(k: int, s: int, p: Any, d: int):
    return lambda n: forward_axes((n,), (k,), "pytorch", stride=s, padding=p, dilation=d)[0].output_size


def _pool_map(k: int, s: int, p: int, d: int, ceil: bool):
    if not ceil:
        return _conv_map(k, s, p, d)

    def size(n: int) -> int:
        # ceil_mode: ONNX's explicit pads with s-1 more at the end give ceil(...) + 1; PyTorch then drops
        # a last window that would start in the end padding
        out = forward_axes((n,), (k,), "onnx", strides=[s], pads=[p, p + s - 1], dilations=[d])[0].output_size
        return out - 1 if (out - 1) * s >= n + p else out
    return size


def _scale_map(f: float):
    return lambda n: int(n * f)  # PyTorch's interpolate: floor(input * scale_factor)


class _Tracer:
    def __init__(self, torch: Any, overrides: dict, resize: set) -> None:
        self.torch = torch
        self.t = Trace()
        self.node_of: dict[int, Node] = {}
        self.keep: list = []  # keeps traced tensors alive so their ids stay theirs
        self.stack: list[str] = []
        self.leaf = 0
        self.overrides = overrides
        self.resize = resize
        self.ordinal: dict[str, int] = {}

    # ---- nodes ----------------------------------------------------------------------------------------
    def node(self, tensor: Any, name: str, label: str, parents: list, kind: str = "map", maps=None, join_axes=()) -> Node:
        node = Node(len(self.t.nodes), name, label, tuple(tensor.shape), parents, kind, maps, join_axes)
        self.t.nodes.append(node)
        self.node_of[id(tensor)] = node
        self.keep.append(tensor)
        return node

    def parent(self, tensor: Any) -> Node | None:
        return self.node_of.get(id(tensor))

    def here(self) -> str:
        return self.stack[-1] if self.stack else ""

    def row(self, name, op, x, y, window="", args=None, note="") -> None:
        self.t.layers.append(Layer(name, op, tuple(x.shape), tuple(y.shape) if y is not None else None, window, args or {}, note))

    # ---- modules ---------------------------------------------------------------------------------------
    def kind(self, module: Any) -> str | None:
        nn = self.torch.nn
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return "convT"
        if isinstance(module, nn.modules.conv._ConvNd):
            return "conv"
        if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            return "pool"
        if isinstance(module, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
            return "adaptive"
        if isinstance(module, nn.Upsample):
            return "up"
        return None

    def pre(self, name: str, module: Any, args: tuple, kwargs: dict):
        self.stack.append(name)
        if self.kind(module):
            self.leaf += 1
        extra = self.overrides.get(name, {}).get("output_size")
        if extra is not None:
            return args, {**kwargs, "output_size": extra}
        return None

    def post(self, name: str, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        self.stack.pop()
        kind = self.kind(module)
        if not kind:
            return
        self.leaf -= 1
        x = args[0] if args else kwargs.get("input")
        if not isinstance(x, self.torch.Tensor) or not isinstance(output, self.torch.Tensor):
            return
        self.record(kind, name, type(module).__name__, module, x, output, args[1:], kwargs)

    def record(self, kind: str, name: str, op: str, m: Any, x: Any, y: Any, rest: tuple, kwargs: dict) -> None:
        parent = self.parent(x)
        parents = [parent] if parent else []
        if kind == "adaptive":
            self.row(name, op, x, y, args={"output_size": m.output_size})
            self.node(y, name, op, parents, kind="const")
            return
        if kind == "up":
            self.interpolate(name, op, x, y, {"size": m.size, "scale_factor": m.scale_factor, "mode": m.mode})
            return
        ndim = len(m.kernel_size) if isinstance(m.kernel_size, tuple) else x.dim() - 2
        spatial = tuple(x.shape[-ndim:])
        k = _pairs(m.kernel_size, ndim)
        s = _pairs(m.stride if m.stride is not None else m.kernel_size, ndim)
        p = m.padding if isinstance(m.padding, str) else _pairs(m.padding, ndim)
        d = _pairs(getattr(m, "dilation", 1), ndim)
        note, window = "", ""
        if kind == "convT":
            op_pad = _pairs(m.output_padding, ndim)
            output_size = rest[0] if rest else kwargs.get("output_size")
            args = {"kernel_size": k, "stride": s, "padding": p, "output_padding": op_pad, "dilation": d}
            if getattr(m, "groups", 1) != 1:
                args["groups"] = m.groups
            given = {key: v for key, v in args.items() if key != "kernel_size"}
            if output_size is not None:
                given["output_size"] = list(output_size)
            try:
                g = _geometry(spatial, k, "pytorch", **given)
                window = " x ".join(f"full[{a.kept[0]}:{a.kept[1]}] of {a.full}" for a in g)
                if g.output_shape != tuple(y.shape[-ndim:]):
                    note = f"tconv says {'x'.join(map(str, g.output_shape))}"
                ops = g.args["output_padding"]
            except ConfigError as err:
                note, ops = f"tconv: {err}", op_pad
            if output_size is not None:
                args["output_size"] = tuple(output_size)[-ndim:]
            maps = [_tconv_map(k[a], s[a], p[a], ops[a], d[a]) for a in range(ndim)]
            label = f"convT s{_axis_text(s)}"
            self.row(name, op, x, y, window, args, note)
            self.node(y, name, label, parents, kind="adapt" if output_size is not None else "map", maps=maps)
            return
        if kind == "conv":
            args = {"kernel_size": k, "stride": s, "padding": p, "dilation": d}
            if getattr(m, "groups", 1) != 1:
                args["groups"] = m.groups
            maps = [_conv_map(k[a], s[a], p if isinstance(p, str) else p[a], d[a]) for a in range(ndim)]
            label = f"conv s{_axis_text(s)}" if any(v != 1 for v in s) else f"conv k{_axis_text(k)}"
        else:
            ceil = bool(getattr(m, "ceil_mode", False))
            args = {"kernel_size": k, "stride": s, "padding": p}
            if hasattr(m, "dilation"):
                args["dilation"] = d
            if ceil:
                args["ceil_mode"] = True
            maps = [_pool_map(k[a], s[a], p[a], d[a], ceil) for a in range(ndim)]
            label = f"pool s{_axis_text(s)}"
        try:
            rows = forward_axes(spatial, k, "pytorch", stride=s, padding=p, dilation=d)
            window = " x ".join(f"pad {r.pad_before}+{r.pad_after}" for r in rows)
        except ConfigError as err:
            note = f"tconv: {err}"
        self.row(name, op, x, y, window, args, note)
        self.node(y, name, label, parents, maps=maps)

    def interpolate(self, name: str, op: str, x: Any, y: Any, args: dict) -> None:
        parent = self.parent(x)
        parents = [parent] if parent else []
        ndim = x.dim() - 2
        args = {k: v for k, v in args.items() if v is not None}
        if args.get("size") is not None:
            self.row(name, op, x, y, args=args)
            self.node(y, name, "resize", parents, kind="adapt")
            return
        f = _pairs(args.get("scale_factor", 1), ndim)
        self.row(name, op, x, y, args=args)
        label = "up x" + _axis_text(tuple(int(v) if float(v).is_integer() else v for v in f))
        self.node(y, name, label, parents, maps=[_scale_map(float(v)) for v in f])

    # ---- functions ------------------------------------------------------------------------------------
    def function(self, func: Any, args: tuple, kwargs: dict) -> Any:
        torch = self.torch
        fname = getattr(func, "__name__", "")
        if self.leaf:
            return func(*args, **kwargs)
        if fname in _CAT and args and isinstance(args[0], (list, tuple)):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            return self.join("cat", func, list(args[0]), dim, args, kwargs)
        if fname in _ADD and len(args) >= 2 and all(isinstance(a, torch.Tensor) and a.dim() >= 3 for a in args[:2]):
            return self.join("add", func, list(args[:2]), None, args, kwargs)
        out = func(*args, **kwargs)
        x = args[0] if args else None
        if not isinstance(out, torch.Tensor) or not isinstance(x, torch.Tensor) or id(out) in self.node_of:
            return out
        name = self.here()
        if fname in _INTERP:
            names = ("input", "size", "scale_factor", "mode")
            given = {**dict(zip(names, args)), **kwargs}
            self.interpolate(name, "interpolate", x, out, {k: given.get(k) for k in ("size", "scale_factor", "mode")})
        elif "adaptive" in fname and "pool" in fname:
            self.row(name, fname, x, out)
            self.node(out, name, fname, [self.parent(x)] if self.parent(x) else [], kind="const")
        elif "pool" in fname or fname in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
            self.functional(fname, x, out, args, kwargs)
        elif fname == "pad":
            parent = self.parent(x)
            pad = tuple(args[1] if len(args) > 1 else kwargs.get("pad", ()))
            self.row(name, "pad", x, out, args={"pad": pad})
            ndim = x.dim() - 2
            maps = []
            for a in range(ndim):
                j = ndim - 1 - a  # F.pad lists (before, after) from the last axis back
                before, after = (pad[2 * j], pad[2 * j + 1]) if len(pad) > 2 * j + 1 else (0, 0)
                maps.append(lambda n, total=before + after: n + total)
            self.node(out, name, "pad", [parent] if parent else [], kind="pad", maps=maps)
        else:
            self.follow(fname, name, x, out, args)
        return out

    def functional(self, fname: str, x: Any, y: Any, args: tuple, kwargs: dict) -> None:
        ndim = x.dim() - 2
        if fname.startswith("conv"):
            w = args[1] if len(args) > 1 else kwargs["weight"]
            names = (("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
                     if "transpose" in fname else ("input", "weight", "bias", "stride", "padding", "dilation", "groups"))
            given = {**dict(zip(names, args)), **kwargs}
            module = _Args(kernel_size=tuple(w.shape[2:]), stride=given.get("stride", 1), padding=given.get("padding", 0),
                           dilation=given.get("dilation", 1), output_padding=given.get("output_padding", 0),
                           groups=given.get("groups", 1))
            self.record("convT" if "transpose" in fname else "conv", self.here(), f"F.{fname}", module, x, y, (), {})
            return
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode") if "max" in fname else \
            ("input", "kernel_size", "stride", "padding", "ceil_mode")
        given = {**dict(zip(names, args)), **kwargs}
        kernel = _pairs(given["kernel_size"], ndim)
        stride = given.get("stride") or kernel
        module = _Args(kernel_size=kernel, stride=stride, padding=given.get("padding", 0), dilation=given.get("dilation", 1),
                       ceil_mode=given.get("ceil_mode", False))
        self.record("pool", self.here(), f"F.{fname}", module, x, y, (), {})

    def follow(self, fname: str, name: str, x: Any, out: Any, args: tuple) -> None:
        parent = next((self.parent(a) for a in args if isinstance(a, self.torch.Tensor) and self.parent(a)), None)
        if parent is None:
            return
        if out.dim() == len(parent.shape) and tuple(out.shape[2:]) == parent.spatial:
            self.node_of[id(out)] = parent
            self.keep.append(out)
        else:
            self.node(out, name, fname, [parent], kind="unknown")

    def join(self, op: str, func: Any, tensors: list, dim: Any, args: tuple, kwargs: dict) -> Any:
        torch = self.torch
        name = self.here()
        ordinal = self.ordinal.get(name, 0)
        self.ordinal[name] = ordinal + 1
        key = (name, ordinal)
        tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
        if not tensors:
            return func(*args, **kwargs)
        ndim = tensors[0].dim()
        cat_dim = (dim % ndim) if dim is not None else None
        nodes = [self.parent(t) for t in tensors]
        for n, (t, node) in enumerate(zip(tensors, nodes)):
            if node is not None and node.kind == "pad":
                node.kind = "adapt"  # a pad feeding a join sets the size from its partner's
            if node is None:
                nodes[n] = self.node(t, name, "input", [], kind="const")
        reference = min(range(len(tensors)), key=lambda n: nodes[n].id)
        ref = tensors[reference]
        shapes = [tuple(t.shape) for t in tensors]
        bad = sorted({a for t in tensors for a in range(ndim) if t.dim() == ndim and a != cat_dim
                      and t.shape[a] != ref.shape[a] and not (op == "add" and 1 in (t.shape[a], ref.shape[a]))})
        if any(t.dim() != ndim for t in tensors):
            return func(*args, **kwargs)
        spatial_bad = tuple(a - 2 for a in bad if a >= 2)
        fixed = list(tensors)
        if bad:
            if key not in self.resize:
                self.t.mismatches.append(Mismatch(key, name, op, nodes, reference, spatial_bad, shapes))
            for n, t in enumerate(tensors):
                if any(t.shape[a] != ref.shape[a] for a in bad):
                    if key in self.resize and t.dim() > 2:
                        fixed[n] = torch.nn.functional.interpolate(t, size=tuple(ref.shape[2:]))
                    else:
                        shape = [ref.shape[a] if a in bad else t.shape[a] for a in range(ndim)]
                        fixed[n] = t.new_empty(shape)
            if op == "cat":
                args = (fixed,) + tuple(args[1:])
            else:
                args = tuple(fixed) + tuple(args[2:])
        out = func(*args, **kwargs)
        note = ""
        if bad:
            note = "sizes differ: " + " vs ".join("x".join(map(str, s)) for s in shapes)
        self.row(name, op, ref, out, args={"dim": dim} if op == "cat" else {}, note=note)
        join_axes = tuple(a - 2 for a in range(2, ndim) if a != cat_dim)
        kind = "unknown" if cat_dim is not None and cat_dim >= 2 else "join"
        self.node(out, name, op, [nodes[reference]] + [n for i, n in enumerate(nodes) if i != reference],
                  kind=kind, join_axes=join_axes)
        return out


@dataclass
class _Args:
    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    output_padding: Any = 0
    groups: int = 1
    ceil_mode: bool = False


def _axis_text(values: tuple) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def meta_copy(model: Any) -> Any:
    """The model on the meta device, the caller's model untouched."""
    try:
        on_meta = all(p.is_meta for p in model.parameters()) and any(True for _ in model.parameters())
        copied = copy.deepcopy(model)
        if not on_meta:
            copied = copied.to("meta")
    except Exception as err:  # a module that cannot be copied
        raise ConfigError(f"cannot copy {type(model).__name__} to the meta device to trace it: {_first_line(err)}") from None
    copied.eval()
    return copied


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def trace(meta_model: Any, input_shape: tuple, overrides: dict | None = None, resize: set | None = None) -> Trace:
    """Run ``meta_model`` (already on the meta device) once on a meta input of ``input_shape``.

    ``overrides``: module name -> arguments to set before the run (``output_padding``) or to
    pass to its forward (``output_size``); ``resize``: join keys whose operands are
    interpolated to the reference's size (the interpolation fix).
    """
    import torch
    from torch.overrides import TorchFunctionMode

    overrides = overrides or {}
    model = copy.deepcopy(meta_model) if overrides else meta_model
    tracer = _Tracer(torch, overrides, resize or set())
    for name, values in overrides.items():
        module = model.get_submodule(name)
        for key, value in values.items():
            if key != "output_size":
                setattr(module, key, value)

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return tracer.function(func, tuple(args), dict(kwargs or {}))

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(
            lambda m, a, k, name=name: tracer.pre(name, m, a, k), with_kwargs=True))
        handles.append(module.register_forward_hook(
            lambda m, a, k, o, name=name: tracer.post(name, m, a, k, o), with_kwargs=True))
    x = torch.empty(input_shape, device="meta")
    tracer.node(x, "", "input", [], kind="input")
    try:
        with Mode():
            out = model(x)
        first = _first_tensor(out, torch)
        tracer.t.output_shape = tuple(first.shape) if first is not None else None
    except Exception as err:  # the model raised: say where, keep what was traced
        where = (tracer.stack[-1] if tracer.stack else "") or "the top level"
        text = _first_line(err)
        if any(w in str(err) for w in ("meta", "data-dependent", "item()")) and "Sizes of tensors" not in str(err):
            tracer.t.errors.append(f"{where}: the forward needs real data (data-dependent control flow or a "
                                   f"value read from a tensor), which tracing without activations cannot give: {text}")
        else:
            tracer.t.errors.append(f"{where} raised {text}")
    finally:
        for handle in handles:
            handle.remove()
    return tracer.t


def _first_tensor(out: Any, torch: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for item in out:
            found = _first_tensor(item, torch)
            if found is not None:
                return found
    return None


def expected_rank(model: Any) -> tuple[int, str] | None:
    """(the input rank the first convolution or pooling takes, its name), or None."""
    import torch

    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.modules.conv._ConvNd,)):
            return len(module.kernel_size) + 2, f"{name} ({type(module).__name__})"
    return None
