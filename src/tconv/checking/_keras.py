"""Check a Keras 3 model from its layers' configs and symbolic shapes: no data runs.

A built model is called on a symbolic ``keras.KerasTensor`` of the input shape;
a callable that builds the model is called with the input shape. Either way
every ``Layer.__call__`` is watched while it runs: convolutions, transposed
convolutions, pooling, upsampling, padding and cropping layers are recorded
with their geometry from tconv's Keras convention, and a ``Concatenate`` or
``Add`` whose inputs disagree is recorded and then called on stand-ins of the
earlier input's (the skip's) shape, so a model whose build fails there is still
reported to its end. Shapes are channels-last; the arithmetic sees them as
``(batch, channels, *spatial)``. The watch replaces ``Layer.__call__`` for the
length of one trace (and puts it back): do not build other Keras models in
another thread meanwhile.
"""
from __future__ import annotations

from typing import Any

from ..api import geometry as _geometry
from ..errors import ConfigError
from ..forward import forward_axes
from . import _arith
from ._fixes import _clean, _joined, _producer, _shape, message, rules
from ._report import Fix, Layer, Problem, Report
from ._torch import Mismatch, Trace, _axis_text

_JOINS = {"Concatenate": "cat", "Add": "add"}


def _nc(shape: tuple) -> tuple:
    """channels-last (N, *spatial, C) -> (N, C, *spatial), the order the arithmetic reads."""
    return (shape[0], shape[-1]) + tuple(shape[1:-1])


def _ints(value: Any, ndim: int) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * ndim


class _KerasTracer:
    def __init__(self, keras: Any, overrides: dict, resize: set) -> None:
        self.keras = keras
        self.t = Trace()
        self.node_of: dict[int, _arith.Node] = {}
        self.keep: list = []
        self.depth = 0
        self.calls = 0
        self.overrides = overrides
        self.resize = resize

    def node(self, tensor: Any, name: str, label: str, parents: list, kind: str = "map", maps=None, join_axes=()) -> Any:
        node = _arith.Node(len(self.t.nodes), name, label, _nc(tuple(tensor.shape)), parents, kind, maps, join_axes)
        self.t.nodes.append(node)
        self.node_of[id(tensor)] = node
        self.keep.append(tensor)
        return node

    def parent(self, tensor: Any) -> Any:
        node = self.node_of.get(id(tensor))
        if node is None and len(self.t.nodes) == 1 and self.t.nodes[0].shape == _nc(tuple(tensor.shape)):
            node = self.node_of[id(tensor)] = self.t.nodes[0]  # Functional.call hands on a copy of the input
            self.keep.append(tensor)
        if node is None and hasattr(tensor, "shape") and len(tensor.shape) >= 3:
            node = self.node(tensor, "", "input", [], kind="input" if not self.t.nodes else "const")
        return node

    def call(self, original: Any, layer: Any, args: tuple, kwargs: dict) -> Any:
        kind = _kind(layer)
        if self.depth or kind is None or isinstance(layer, self.keras.Model):
            out = original(layer, *args, **kwargs)
            if not self.depth and not isinstance(layer, self.keras.Model):
                self.follow(layer, args, out)
            return out
        index = self.calls
        self.calls += 1
        for key, value in self.overrides.get(index, {}).items():
            setattr(layer, key, value)
        if kind == "join":
            return self.join(original, layer, index, args, kwargs)
        x = args[0] if args else kwargs.get("inputs")
        parent = self.parent(x)
        self.depth += 1
        try:
            out = original(layer, *args, **kwargs)
        finally:
            self.depth -= 1
        self.record(layer, kind, x, out, [parent] if parent else [])
        return out

    def follow(self, layer: Any, args: tuple, out: Any) -> None:
        x = args[0] if args else None
        if not hasattr(out, "shape") or not hasattr(x, "shape") or id(out) in self.node_of:
            return
        parent = self.node_of.get(id(x))
        if parent is None:
            return
        if len(out.shape) == len(x.shape) and tuple(out.shape[1:-1]) == tuple(x.shape[1:-1]):
            self.node_of[id(out)] = parent
            self.keep.append(out)
        else:
            self.node(out, layer.name, type(layer).__name__, [parent], kind="unknown")

    def record(self, layer: Any, kind: str, x: Any, y: Any, parents: list) -> None:
        op = type(layer).__name__
        spatial = tuple(x.shape[1:-1])
        ndim = len(spatial)
        window, note, maps = "", "", None
        config = layer.get_config()
        if kind in ("convT", "conv"):
            k = _ints(config["kernel_size"], ndim)
            s = _ints(config["strides"], ndim)
            d = _ints(config.get("dilation_rate", 1), ndim)
            pad = config["padding"]
            args = {"kernel_size": k, "strides": s, "padding": pad, "dilation_rate": d}
            if kind == "convT":
                op_pad = getattr(layer, "output_padding", None)
                args["output_padding"] = op_pad
                given = {"strides": s, "padding": pad, "dilation_rate": d}
                if op_pad is not None:
                    given["output_padding"] = tuple(op_pad)
                try:
                    g = _geometry(spatial, k, "keras", **given)
                    window = " x ".join(f"full[{a.kept[0]}:{a.kept[1]}] of {a.full}" for a in g)
                except ConfigError as err:
                    note = f"tconv: {err}"
                ops = _ints(op_pad, ndim) if op_pad is not None else (None,) * ndim
                maps = [_convT_map(k[a], s[a], pad, ops[a], d[a]) for a in range(ndim)]
                label = f"convT s{_axis_text(s)}"
            else:
                maps = [_conv_map(k[a], s[a], pad, d[a]) for a in range(ndim)]
                label = f"conv s{_axis_text(s)}" if any(v != 1 for v in s) else f"conv k{_axis_text(k)}"
                try:
                    rows = forward_axes(spatial, k, "keras", strides=s, padding=pad, dilation_rate=d)
                    window = " x ".join(f"pad {r.pad_before}+{r.pad_after}" for r in rows)
                except ConfigError as err:
                    note = f"tconv: {err}"
        elif kind == "pool":
            k = _ints(config["pool_size"], ndim)
            s = _ints(config["strides"] or config["pool_size"], ndim)
            pad = config["padding"]
            args = {"pool_size": k, "strides": s, "padding": pad}
            maps = [_conv_map(k[a], s[a], pad, 1) for a in range(ndim)]
            label = f"pool s{_axis_text(s)}"
            try:
                rows = forward_axes(spatial, k, "keras", strides=s, padding=pad)
                window = " x ".join(f"pad {r.pad_before}+{r.pad_after}" for r in rows)
            except ConfigError as err:
                note = f"tconv: {err}"
        elif kind == "up":
            size = _ints(config["size"], ndim)
            args = {"size": size}
            maps = [(lambda n, f=f: n * f) for f in size]
            label = f"up x{_axis_text(size)}"
        else:  # ZeroPadding / Cropping: (before, after) per axis
            pairs = [tuple(p) if isinstance(p, (list, tuple)) else (p, p) for p in _ints(config["padding" if kind == "pad" else "cropping"], ndim)]
            sign = 1 if kind == "pad" else -1
            args = {"padding" if kind == "pad" else "cropping": tuple(pairs)}
            maps = [(lambda n, t=sign * (b + a): n + t) for b, a in pairs]
            label = kind
        self.t.layers.append(Layer(layer.name, op, tuple(x.shape), tuple(y.shape), window, args, note))
        self.node(y, layer.name, label, parents, maps=maps)

    def join(self, original: Any, layer: Any, index: int, args: tuple, kwargs: dict) -> Any:
        keras = self.keras
        tensors = list(args[0])
        op = _JOINS[type(layer).__name__]
        nodes = [self.parent(t) for t in tensors]
        reference = min(range(len(tensors)), key=lambda n: nodes[n].id)
        ref = tensors[reference]
        rank = len(ref.shape)
        axis = layer.axis % rank if op == "cat" else None
        bad = sorted({a for t in tensors for a in range(1, rank) if a != axis and len(t.shape) == rank
                      and t.shape[a] != ref.shape[a]})
        key = (layer.name, index)
        shapes = [tuple(t.shape) for t in tensors]
        if bad:
            spatial_bad = tuple(a - 1 for a in bad if 0 < a < rank - 1)
            if index not in self.resize:
                self.t.mismatches.append(Mismatch(key, layer.name, op, nodes, reference, spatial_bad, shapes))
            if index in self.resize and rank == 4:  # the interpolation fix, as a layer the model can keep
                fixed = [keras.layers.Resizing(ref.shape[1], ref.shape[2])(t)
                         if any(t.shape[a] != ref.shape[a] for a in bad) else t for t in tensors]
            else:  # a stand-in of the skip's size, so the trace goes on
                fixed = [keras.KerasTensor(tuple(ref.shape[a] if a in bad else t.shape[a] for a in range(rank)), dtype=t.dtype)
                         if any(t.shape[a] != ref.shape[a] for a in bad) else t for t in tensors]
            args = (fixed,) + tuple(args[1:])
        self.depth += 1
        try:
            out = original(layer, *args, **kwargs)
        finally:
            self.depth -= 1
        note = "sizes differ: " + " vs ".join(map(_shape, shapes)) if bad else ""
        self.t.layers.append(Layer(layer.name, type(layer).__name__, tuple(ref.shape), tuple(out.shape), "",
                                   {"axis": layer.axis} if op == "cat" else {}, note))
        join_axes = tuple(range(rank - 2))
        self.node(out, layer.name, op, [nodes[reference]] + [n for i, n in enumerate(nodes) if i != reference],
                  kind="join", join_axes=join_axes)
        return out


def _kind(layer: Any) -> str | None:
    from keras.src.layers.convolutional.base_conv import BaseConv
    from keras.src.layers.convolutional.base_conv_transpose import BaseConvTranspose
    from keras.src.layers.pooling.base_pooling import BasePooling

    name = type(layer).__name__
    if isinstance(layer, BaseConvTranspose):
        return "convT"
    if isinstance(layer, BaseConv):
        return "conv"
    if isinstance(layer, BasePooling):
        return "pool"
    if name.startswith("UpSampling"):
        return "up"
    if name.startswith("ZeroPadding"):
        return "pad"
    if name.startswith("Cropping"):
        return "crop"
    if name in _JOINS:
        return "join"
    return None


def _convT_map(k: int, s: int, pad: str, op: Any, d: int):
    extra = {} if op is None else {"output_padding": op}
    return lambda n: _geometry((n,), (k,), "keras", strides=s, padding=pad, dilation_rate=d, **extra).output_shape[0]


def _conv_map(k: int, s: int, pad: str, d: int):
    return lambda n: forward_axes((n,), (k,), "keras", strides=s, padding=pad, dilation_rate=d)[0].output_size


def trace_keras(source: Any, input_shape: tuple, overrides: dict | None = None, resize: set | None = None) -> Trace:
    """Build (a callable) or call (a model) ``source`` symbolically at ``input_shape``, watching every layer call."""
    import keras
    from keras.src.layers.layer import Layer as KerasLayer

    tracer = _KerasTracer(keras, overrides or {}, resize or set())
    original = KerasLayer.__call__

    def watched(layer, *args, **kwargs):
        return tracer.call(original, layer, args, kwargs)

    KerasLayer.__call__ = watched
    try:
        if isinstance(source, keras.Model):
            x = keras.KerasTensor(tuple(input_shape))
            tracer.node(x, "", "input", [], kind="input")
            # Model.__call__ on a symbolic input asks each layer's compute_output_spec, bypassing the
            # layers' __call__; Functional.call runs them through __call__
            out = source.call(x)
        else:
            out = source(tuple(input_shape))
            tracer.t.built = out  # type: ignore[attr-defined]  # what a callable built, for check() to dispatch
            if isinstance(out, keras.Model):
                out = out.outputs[0] if out.outputs else None
        first = out[0] if isinstance(out, (list, tuple)) else out
        tracer.t.output_shape = tuple(first.shape) if hasattr(first, "shape") else None
    except Exception as err:
        text = " ".join(str(err).split())
        if not (tracer.t.mismatches and ("connected" in text or "Graph" in text or "not connected" in text)):
            tracer.t.errors.append(f"the model raised {type(err).__name__}: {text[:300]}")
    finally:
        KerasLayer.__call__ = original
    return tracer.t


def check_keras(source: Any, input_shape: tuple, label: str) -> Any:
    """The report of a Keras model or of a callable building one; what the callable built when it called no Keras layer.

    ``input_shape`` may leave out the batch (``(350, 525, 3)``): the trace then uses a batch of 1
    for a model, and hands the callable the shape as given.
    """
    import keras

    if isinstance(source, keras.Model):
        rank = len(source.inputs[0].shape) if getattr(source, "inputs", None) else len(input_shape)
        if len(input_shape) == rank - 1:
            input_shape = (1, *input_shape)
        elif len(input_shape) != rank:
            raise ConfigError(f"input shape {_shape(input_shape)} has {len(input_shape)} entries; {label}'s input "
                              f"takes {rank} (batch, spatial, channels) or {rank - 1} without the batch")
        build = source
        batched = True
    else:
        build = source
        batched = True
    t = trace_keras(build, input_shape)
    if not t.nodes and not t.layers:
        if t.errors:
            raise ConfigError(f"building the model failed: {t.errors[0].removeprefix('the model raised ')}")
        return getattr(t, "built", None)
    if t.nodes and len(t.nodes[0].shape) == len(input_shape) + 1:
        batched = False
    full = tuple(input_shape) if batched else (1, *input_shape)
    if len(full) < 3:
        raise ConfigError(f"input shape {_shape(input_shape)}: Keras layers take (batch, *spatial, channels)")
    nc_shape = _nc(full)
    texts, sizes = rules(t, nc_shape)
    problems = []
    for mismatch in t.mismatches:
        fixes = _fixes(build, full, batched, t, mismatch, sizes) if not t.errors else []
        problems.append(Problem(message(mismatch, len(nc_shape) - 2), mismatch.name, tuple(fixes)))
    problems += [Problem(e) for e in t.errors]
    return Report(label, "keras", tuple(input_shape), tuple(t.layers), tuple(problems), texts, t.output_shape)


def _fixes(source: Any, input_shape: tuple, batched: bool, t: Trace, mismatch: Any, sizes: dict) -> list:
    found = []
    given = (lambda shape: shape) if batched else (lambda shape: tuple(shape[1:]))
    spatial = list(input_shape[1:-1])
    if sizes and all(a in sizes for a in range(len(spatial))):
        for pick, verb in ((1, "pad"), (0, "crop")):
            target = [(_arith.nearest(sizes[a], n)[pick] or n) for a, n in enumerate(spatial)]
            shape = (input_shape[0], *target, input_shape[-1])
            if target != spatial and _clean(trace_keras(source, given(shape))):
                found.append(Fix("input", f"{verb} the input {_shape(spatial)} to {_shape(target)} (input shape "
                                 f"{_shape(given(shape))}); traced again: every join agrees", input_shape=given(shape)))
    ref = mismatch.operands[mismatch.reference]
    for n, node in enumerate(mismatch.operands):
        if n == mismatch.reference:
            continue
        producer = _producer(node, mismatch.axes)
        row = next((r for r in t.layers if producer is not None and r.name == producer.name
                    and r.op.startswith("Conv") and "Transpose" in r.op), None)
        if row is None:
            continue
        call = _call_index(t, row)
        want = ref.spatial
        layer_args = {"strides": row.args["strides"], "padding": row.args["padding"], "dilation_rate": row.args["dilation_rate"]}
        ops = tuple(_op_for(tuple(row.input_shape[1:-1]), row.args["kernel_size"], layer_args, a, want[a]) for a in range(len(want)))
        try:
            g = _geometry(tuple(row.input_shape[1:-1]), row.args["kernel_size"], "keras", **layer_args, output_padding=ops)
        except ConfigError:
            continue
        if g.output_shape != tuple(want):
            continue
        output_padding = ops
        fixed = trace_keras(source, given(input_shape), overrides={call: {"output_padding": output_padding}})
        if not _joined(fixed, mismatch.key) and not fixed.errors:
            found.append(Fix("argument", f"output_padding={output_padding} on {row.name} (it gives {_shape(want)}); "
                             f"traced again: {mismatch.name} agrees", layer=row.name, args={"output_padding": output_padding}))
    resized = trace_keras(source, given(input_shape), resize={mismatch.key[1]})
    if not resized.errors:
        want = tuple(ref.spatial)
        found.append(Fix("interpolate", f"resize to the skip's size before {mismatch.name}: keras.layers.Resizing"
                         f"({', '.join(map(str, want))}) (or Cropping/ZeroPadding to {_shape(want)}); traced again: the "
                         "rest of the model builds", layer=mismatch.name, args={"size": want}))
    return found


def _op_for(spatial: tuple, kernel: tuple, given: dict, axis: int, want: int) -> int:
    """The output_padding on ``axis`` that gives ``want`` there (tconv's Keras convention says), or -1."""
    for op in range(max(_ints(given["strides"], len(spatial))[axis], _ints(given["dilation_rate"], len(spatial))[axis])):
        try:
            g = _geometry((spatial[axis],), (kernel[axis],), "keras", strides=_ints(given["strides"], len(spatial))[axis],
                          padding=given["padding"], output_padding=op,
                          dilation_rate=_ints(given["dilation_rate"], len(spatial))[axis])
        except ConfigError:
            continue
        if g.output_shape[0] == want:
            return op
    return -1


def _call_index(t: Trace, row: Layer) -> int:
    """The ordinal of ``row``'s call among the recorded layer calls (joins included), which overrides key on."""
    return t.layers.index(row)
