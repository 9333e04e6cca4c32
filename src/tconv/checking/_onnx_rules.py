"""The size arithmetic of an ONNX graph, for the accepted-input rule and the input fix.

Each node that follows from the graph's input becomes an :class:`~._arith.Node`:
Conv and pooling sized by tconv's forward rules for ONNX, ConvTranspose by its
ONNX convention, Resize by its constant scales, Concat and Add as joins. The maps
need only the attributes and the kernels' shapes, so the rule holds even where
onnx's inference stopped at a mismatching Concat; elementwise ops keep the size.
"""
from __future__ import annotations

from typing import Any

from ..api import geometry as _geometry
from ..forward import forward_axes
from ._arith import Node

#: ops that keep the spatial size of their first input (assumed where inference gave no shape)
_KEEP = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "BatchNormalization", "InstanceNormalization", "Mul", "Sub", "Div",
         "Clip", "Identity", "Dropout", "Elu", "Selu", "Softmax", "Cast", "HardSigmoid", "HardSwish", "PRelu", "Add"}


def _per_axis(attrs: dict, key: str, a: int, nd: int, default: int) -> int:
    value = attrs.get(key)
    return int(value[a]) if value else default


def _axis_args(attrs: dict, a: int, nd: int, transposed: bool) -> dict:
    args: dict = {"strides": [_per_axis(attrs, "strides", a, nd, 1)], "dilations": [_per_axis(attrs, "dilations", a, nd, 1)]}
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", ""):
        args["auto_pad"] = auto_pad
    elif attrs.get("pads"):
        args["pads"] = [int(attrs["pads"][a]), int(attrs["pads"][a + nd])]
    if transposed and attrs.get("output_padding"):
        args["output_padding"] = [int(attrs["output_padding"][a])]
    return args


def graph_nodes(graph: Any, shapes: dict, attrs_of: Any, input_name: str) -> list[Node]:
    """The graph as arithmetic nodes, in the graph's (topological) order."""
    from onnx import numpy_helper

    constants = {t.name: t for t in graph.initializer}
    nodes = [Node(0, "", "input", tuple(shapes.get(input_name, ())), kind="input")]
    of = {input_name: nodes[0]}

    def add(name, label, value, parents, kind, maps=None, join_axes=()) -> None:
        node = Node(len(nodes), name, label, tuple(shapes.get(value, ())), parents, kind, maps, join_axes)
        nodes.append(node)
        of[value] = node

    for n, node in enumerate(graph.node):
        data = [of[i] for i in node.input if i in of]
        if not data or not node.output:
            continue
        out, x, op = node.output[0], data[0], node.op_type
        name = node.name or f"{op}_{n}"
        attrs = attrs_of(node)
        nd = len(x.shape) - 2 if x.shape else len(shapes.get(node.input[0], ())) - 2
        if op in ("Conv", "ConvTranspose", "MaxPool", "AveragePool"):
            if op.endswith("Pool"):
                kernel = list(attrs.get("kernel_shape", []))
            else:
                kernel = list(attrs.get("kernel_shape") or shapes.get(node.input[1], ())[2:])
            nd = len(kernel)  # the kernel says how many spatial axes, where inference lost the input's shape
            if len(kernel) != nd or (op.endswith("Pool") and attrs.get("ceil_mode")):
                add(name, op, out, [x], "unknown")
            elif op == "ConvTranspose":
                maps = [lambda v, k=kernel[a], args=_axis_args(attrs, a, nd, True):
                        _geometry((v,), (k,), "onnx", **args).output_shape[0] for a in range(nd)]
                add(name, "convT", out, [x], "adapt" if attrs.get("output_shape") else "map", maps)
            else:
                maps = [lambda v, k=kernel[a], args=_axis_args(attrs, a, nd, False):
                        forward_axes((v,), (k,), "onnx", **args)[0].output_size for a in range(nd)]
                add(name, "pool" if op.endswith("Pool") else "conv", out, [x], "map", maps)
        elif op in ("Resize", "Upsample"):
            scales = node.input[2] if op == "Resize" and len(node.input) > 2 else (node.input[1] if len(node.input) > 1 else "")
            sizes = node.input[3] if op == "Resize" and len(node.input) > 3 else ""
            if sizes:
                add(name, "resize", out, [x], "adapt")
            elif scales in constants:
                factors = numpy_helper.to_array(constants[scales]).tolist()[2:]
                add(name, "up", out, [x], "map", [lambda v, f=f: int(v * f) for f in factors])
            else:
                add(name, op, out, [x], "unknown")
        elif op in ("Concat", "Add") and len(data) >= 2 and len({len(d.shape) for d in data if d.shape}) <= 1:
            rank = max(len(d.shape) for d in data)
            axis = attrs.get("axis") % rank if op == "Concat" and rank else None
            add(name, op.lower(), out, data, "join", join_axes=tuple(a - 2 for a in range(2, rank) if a != axis))
        else:
            y = shapes.get(out)
            if (y is not None and x.shape and len(y) == len(x.shape) and y[2:] == x.shape[2:]) or (y is None and op in _KEEP):
                of[out] = x
            else:
                add(name, op, out, [x], "unknown")
    return nodes
