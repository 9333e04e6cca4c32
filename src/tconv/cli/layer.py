"""``tconv shape``, ``tconv explain`` and ``tconv frameworks``: one layer's size and derivation."""
from __future__ import annotations

import argparse

from .. import conventions
from ._common import add_layer_options, fmt_shape, layer_from_args

EPILOG = """\
examples:
  tconv shape 8x8 -f keras -k 3 -s 2 -p same            # 16x16: Keras 'same' doubles with stride 2
  tconv shape 96,128 -f keras -k 3 -s 2 -p valid        # 193x257
  tconv shape 2x2 -f pytorch -k 2 -s 2 -p 1             # 2x2: PyTorch padding shrinks the output
  tconv shape 12 -f pytorch -k 5 -s 2 --output-padding 1  # 28
  tconv explain 8x8 -f keras -k 3 -s 2 -p same          # the derivation, step by step
  tconv explain 4 -f onnx -k 3 -s 2 -p same_upper
  tconv shape 4 -f tensorflow -k 3 -s 2 --output-size 8 -p SAME
  tconv shape 4 -f jax -k 3 -a strides=2 -a padding=VALID  # any framework argument by its own name
  tconv shape 5x5 -f keras -k 3 -a dilation_rate=2 --tf-onednn off  # warns: TF's plain CPU kernel refuses it
  tconv frameworks                                      # the frameworks, their argument names, TF's CPU kernel here
"""


def cmd_shape(ns: argparse.Namespace) -> int:
    from ..api import output_shape

    input_shape, kernel, framework, args = layer_from_args(ns)
    print(fmt_shape(output_shape(input_shape, kernel, framework, **args)))
    return 0


def cmd_explain(ns: argparse.Namespace) -> int:
    from ..explain import explain

    input_shape, kernel, framework, args = layer_from_args(ns)
    print(explain(input_shape, kernel, framework, **args))
    return 0


def cmd_frameworks(ns: argparse.Namespace) -> int:
    from ..conventions import tf_cpu

    for name in conventions.names():
        c = conventions.get(name)
        print(f"{name:<11} {c.title} {c.api}")
        print(f"{'':<11} arguments: {', '.join(c.defaults)}")
    print(f"\nTensorFlow's CPU kernel on this machine: {tf_cpu.this_machine()}; --tf-onednn on|off describes the other kind")
    return 0


def register(sub) -> None:
    p = sub.add_parser("shape", help="print the output size", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layer_options(p)
    p.set_defaults(func=cmd_shape)

    p = sub.add_parser("explain", help="print the step-by-step derivation", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layer_options(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("frameworks", help="list the frameworks and their argument names")
    p.set_defaults(func=cmd_frameworks)
