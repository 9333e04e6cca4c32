"""Check an ONNX model: onnx's shape inference over the graph, and every ConvTranspose three ways.

For each ConvTranspose the output size is given by tconv's ONNX convention
(the arithmetic, :func:`tconv.geometry` with ``framework="onnx"``), by the
installed onnxruntime (a one-node model with this node's attributes run on
zeros) and by onnx's own shape inference. Nodes where the three differ are
problems; so are attributes that runtimes have handled differently over the
years: ``auto_pad`` SAME_* together with ``output_padding`` (onnxruntime
#11927, onnx #4299), and ``output_shape`` together with ``pads``. Each such
problem's fix is the explicit ``pads`` / ``output_padding`` that keep the
same window, checked against onnxruntime.
"""
from __future__ import annotations

import os
from typing import Any

from .. import conventions
from ..api import geometry as _geometry
from ..errors import ConfigError
from ..forward import forward_axes
from ._report import Fix, Layer, Problem, Report

_ROWS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "Resize", "Upsample", "Concat", "Add"}


def _load(model: Any) -> tuple[Any, str]:
    import onnx

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: no such file")
        try:
            return onnx.load(path), os.path.basename(path)
        except Exception as err:
            raise ConfigError(f"{path} is not an ONNX model: {type(err).__name__}: {_line(err)}") from None
    return model, model.graph.name or "model"


def _line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def _dims(value_info: Any) -> tuple | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)


def _attrs(node: Any) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else list(v) if isinstance(v, (list, tuple)) else v


def check_onnx(model: Any, input_shape: tuple | None, fixes: bool = True) -> Report:
    import onnx

    proto, label = _load(model)
    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # the caller's model stays as it was
    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise ConfigError(f"{label}: the graph has no input")
    declared = _dims(inputs[0]) or ()
    if input_shape is not None:
        if declared and len(declared) != len(input_shape):
            raise ConfigError(f"input shape {'x'.join(map(str, input_shape))} has {len(input_shape)} entries; the "
                              f"graph's input {inputs[0].name!r} has {len(declared)} ({_shape(declared)})")
        dims = inputs[0].type.tensor_type.shape.dim
        del dims[:]
        for v in input_shape:
            dims.add().dim_value = v
        for output in graph.output:  # the declared output sizes were for the exported input
            for d in output.type.tensor_type.shape.dim:
                d.Clear()
                d.dim_param = "?"
        del graph.value_info[:]
    elif not declared or any(not isinstance(d, int) or d < 1 for d in declared):
        raise ConfigError(f"the graph's input {inputs[0].name!r} has the shape {_shape(declared)}: give the input "
                          f"shape (--input), e.g. {_shape(tuple(d if isinstance(d, int) and d > 0 else 1 for d in declared))}")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    except Exception as err:
        raise ConfigError(f"{label}: onnx's shape inference refuses the graph: {_line(err)}") from None
    shapes: dict = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = _dims(vi)
        if dims is not None and all(isinstance(d, int) and d > 0 for d in dims):
            shapes.setdefault(vi.name, dims)
    for name, t in initializers.items():
        shapes[name] = tuple(t.dims)
    layers, problems = [], []
    for n, node in enumerate(graph.node):
        if not onnx.defs.has(node.op_type, node.domain or ""):
            name = node.name or f"{node.op_type}_{n}"
            problems.append(Problem(f"{name}: unknown op {node.op_type!r}"
                                    + (f" (domain {node.domain!r})" if node.domain else "")
                                    + ": onnx cannot infer the shapes after it, so they are missing below", name))
            layers.append(Layer(name, node.op_type, shapes.get(node.input[0], ()) if node.input else (),
                                shapes.get(node.output[0]) if node.output else None, "", {}, "unknown op"))
            continue
        if node.op_type not in _ROWS:
            continue
        name = node.name or f"{node.op_type}_{n}"
        x = shapes.get(node.input[0]) if node.input else None
        y = shapes.get(node.output[0]) if node.output else None
        attrs = {k: _text(v) for k, v in _attrs(node).items()}
        window, note = "", ""
        if node.op_type == "ConvTranspose":
            window, note, found = _conv_transpose(proto, node, name, attrs, x, y, shapes, initializers)
            problems += found
        elif node.op_type in ("Conv", "MaxPool", "AveragePool") and x is not None:
            kernel = attrs.get("kernel_shape") or (list(shapes[node.input[1]][2:]) if len(node.input) > 1 and node.input[1] in shapes else None)
            if kernel:
                args = {k: attrs[k] for k in ("strides", "pads", "dilations", "auto_pad") if k in attrs}
                try:
                    rows = forward_axes(tuple(x[2:]), tuple(kernel), "onnx", **args)
                    window = " x ".join(f"pad {r.pad_before}+{r.pad_after}" for r in rows)
                except ConfigError as err:
                    note = f"tconv: {err}"
        elif node.op_type in ("Concat", "Add"):
            operands = [shapes.get(i) for i in node.input]
            if all(o is not None for o in operands) and len({len(o) for o in operands}) == 1:
                axis = attrs.get("axis", None)
                rank = len(operands[0])
                keep = [a for a in range(rank) if axis is None or a != axis % rank]
                bad = [a for a in keep if len({o[a] for o in operands if not (node.op_type == "Add" and o[a] == 1)}) > 1]
                if bad:
                    note = "sizes differ: " + " vs ".join(map(_shape, operands))
                    problems.append(Problem(f"{node.op_type} {name} gets {' vs '.join(map(_shape, operands))}: axis "
                                            f"{', '.join(map(str, bad))} differ{'s' if len(bad) == 1 else ''}", name))
            x = operands[0] if operands else x
        layers.append(Layer(name, node.op_type, x or (), y, window, attrs, note))
    out = shapes.get(graph.output[0].name) if graph.output else None
    shape = tuple(input_shape) if input_shape is not None else tuple(declared)
    texts, sizes = _rules(graph, shapes, inputs[0].name, shape)
    if fixes:
        problems = [_with_input_fix(p, model, shape, sizes) if p.message.startswith(("Concat", "Add")) else p
                    for p in problems]
    problems.sort(key=lambda p: 0 if p.message.startswith(("Concat", "Add")) else 1)
    return Report(label, "onnx", shape, tuple(layers), tuple(problems), texts, out)


def _rules(graph: Any, shapes: dict, input_name: str, shape: tuple) -> tuple[dict, dict]:
    from ._fixes import rules
    from ._onnx_rules import graph_nodes
    from ._torch import Trace

    if len(shape) < 3:
        return {}, {}
    nodes = graph_nodes(graph, {**shapes, input_name: shape}, _attrs_plain, input_name)
    return rules(Trace(nodes=nodes), shape)


def _with_input_fix(problem: Problem, model: Any, shape: tuple, sizes: dict) -> Problem:
    """The problem with the nearest input sizes that work, each checked by onnx's inference again."""
    from . import _arith

    spatial = list(shape[2:])
    if not sizes or not all(a in sizes for a in range(len(spatial))):
        return problem
    found = []
    for pick, verb in ((1, "pad"), (0, "crop")):
        target = [(_arith.nearest(sizes[a], n)[pick] or n) for a, n in enumerate(spatial)]
        if target == spatial:
            continue
        full = (*shape[:2], *target)
        try:
            again = check_onnx(model, full, fixes=False)
        except ConfigError:
            continue
        if not any(p.message.startswith(("Concat", "Add")) for p in again.problems):
            found.append(Fix("input", f"{verb} the input {_shape(spatial)} to {_shape(target)} (input shape "
                             f"{_shape(full)}); onnx's inference again: every Concat and Add agrees", input_shape=full))
    return Problem(problem.message, problem.layer, tuple(found) + tuple(problem.fixes))


def _shape(shape: Any) -> str:
    return "x".join(map(str, shape)) if shape else "?"


def _conv_transpose(proto: Any, node: Any, name: str, attrs: dict, x: Any, y: Any, shapes: dict,
                    initializers: dict) -> tuple[str, str, list]:
    problems: list = []
    if x is None or len(node.input) < 2 or node.input[1] not in shapes:
        return "", "input shape unknown", problems
    kernel = tuple(shapes[node.input[1]][2:])
    args = {k: attrs[k] for k in ("auto_pad", "pads", "strides", "output_padding", "output_shape", "dilations", "group")
            if k in attrs}
    answers = {}
    window = ""
    geometry = None
    try:
        geometry = _geometry(tuple(x[2:]), kernel, "onnx", **args)
        answers["tconv"] = geometry.output_shape
        window = " x ".join(f"full[{a.kept[0]}:{a.kept[1]}] of {a.full}" for a in geometry)
    except ConfigError as err:
        answers["tconv"] = f"refuses: {err}"
    answers["onnxruntime"] = _run_one(node, x, shapes[node.input[1]], attrs)
    answers["onnx shape inference"] = tuple(y[2:]) if y is not None else "no shape"
    note = "; ".join(f"{k}: {_shape(v) if isinstance(v, tuple) else v}" for k, v in answers.items())
    sizes = {k: v for k, v in answers.items() if isinstance(v, tuple)}
    if len(set(sizes.values())) > 1 or len(sizes) < len(answers):
        problems.append(Problem(f"ConvTranspose {name} on {_shape(x)}: the output size differs: {note}", name,
                                tuple(_explicit(geometry, args, x, shapes[node.input[1]], node))))
    auto_pad = str(attrs.get("auto_pad", "NOTSET"))
    quirks = []
    if auto_pad.startswith("SAME") and any(attrs.get("output_padding", [0])):
        quirks.append(f"auto_pad={auto_pad} with output_padding={attrs['output_padding']}: runtimes have sized this "
                      "differently (onnxruntime #11927 and #4086, onnx #4299)")
    if "output_shape" in attrs and "pads" in attrs:
        quirks.append(f"output_shape={attrs['output_shape']} with pads={attrs['pads']}: the spec says output_shape "
                      "wins and the pads are recomputed; runtimes have disagreed on it (onnxruntime #4698)")
    if auto_pad.startswith("SAME") and "output_shape" in attrs:
        quirks.append(f"auto_pad={auto_pad} with output_shape: onnxruntime before 1.13 swapped SAME_UPPER and SAME_LOWER")
    for text in quirks:
        problems.append(Problem(f"ConvTranspose {name}: {text}", name,
                                tuple(_explicit(geometry, args, x, shapes[node.input[1]], node))))
    return window, note, problems


def _explicit(geometry: Any, args: dict, x: tuple, w: tuple, node: Any) -> list[Fix]:
    """The explicit pads and output_padding that keep the window tconv computes, if onnxruntime agrees."""
    if geometry is None:
        return []
    try:
        expressed = conventions.get("onnx").from_geometry(geometry)
    except ConfigError:
        return []
    if any(c != (0, 0) for c in expressed.extra_crop) or "auto_pad" in expressed.args or "output_shape" in expressed.args:
        return []
    explicit = {k: v for k, v in expressed.args.items()}
    ran = _run_one(node, x, w, {**{k: v for k, v in _attrs_plain(node).items()
                                   if k not in ("auto_pad", "pads", "output_padding", "output_shape")}, **explicit})
    if ran != geometry.output_shape:
        return []
    text = ", ".join(f"{k}={v}" for k, v in explicit.items() if k in ("pads", "output_padding"))
    return [Fix("argument", f"write it out: {text or 'pads=[0, ...]'} (no auto_pad, no output_shape); onnxruntime "
                f"gives {_shape(ran)} with them", layer=node.name, args=explicit)]


def _attrs_plain(node: Any) -> dict:
    return {k: _text(v) for k, v in _attrs(node).items()}


def _run_one(node: Any, x: tuple, w: tuple, attrs: dict) -> Any:
    """The output spatial size onnxruntime gives this node's attributes on zeros, or why it refuses."""
    import numpy as np
    from onnx import TensorProto, helper

    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime not installed"
    clean = {k: v for k, v in attrs.items() if v is not None}
    one = helper.make_node("ConvTranspose", ["x", "w"], ["y"], **clean)
    graph = helper.make_graph([one], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor("w", TensorProto.FLOAT, list(w), np.zeros(w, np.float32).ravel())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"x": np.zeros(x, np.float32)})
    except Exception as err:
        return f"refuses: {_line(err)[:200]}"
    return tuple(y.shape[2:])
