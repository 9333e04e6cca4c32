"""MXNet and Caffe: checked against their documented formulas only.

Neither framework can be installed here (MXNet is retired, Caffe has no wheel), so
these tests compare tconv with numbers worked out BY HAND from the frameworks' own
source text, quoted next to each table. They prove tconv reads those formulas
right; they cannot prove the frameworks behave as written.
"""
from __future__ import annotations

import pytest

import tconv

# apache/mxnet, src/operator/nn/deconvolution.cc (DeconvolutionShape):
#     CHECK_GE(param_.stride[0]-1, o_adj[0]) << "adj(x) must be samller than stride[0]";
#     oshape[2] = param_.stride[0] * (dshape_ncw[2] - 1) + dilated_ksize_x - 2 * o_pad[0] + o_adj[0];
# and src/operator/nn/deconvolution-inl.h (InferPad), when target_shape is set:
#     o_pad[i] = stride[i] * (input[i] - 1) + DilatedKernelSize(i);
#     CHECK_GE(o_pad[i], target_shape[i]) << "too big target shape";
#     o_pad[i] -= target_shape[i]; o_adj[i] = o_pad[i] % 2; o_pad[i] = (o_pad[i] + 1) / 2;
# The kept window is full[pad : full - pad + adj] (pad off both ends, adj given back at the end).
MXNET_TABLE = [
    # input, kernel, args, output size, (crop_begin, crop_end) or None when MXNet rejects it
    (4, 3, dict(stride=2, pad=1, adj=1), 8, (1, 0)),         # 2*3 + 3 - 2 + 1
    (4, 4, dict(stride=2, pad=1), 8, (1, 1)),                # 2*3 + 4 - 2
    (3, 3, dict(stride=2, dilate=2, pad=1, adj=1), 8, (1, 0)),  # 2*2 + 5 - 2 + 1
    (4, 3, dict(stride=2, target_shape=(8,)), 8, (1, 0)),    # full 9: surplus 1 -> pad 1, adj 1
    (4, 4, dict(stride=2, target_shape=(7,)), 7, (2, 1)),    # full 10: surplus 3 -> pad 2, adj 1
    (4, 3, dict(stride=1, target_shape=(4,)), 4, (1, 1)),    # full 6: surplus 2 -> pad 1, adj 0
    (4, 3, dict(stride=2, pad=0, adj=2), None, None),        # adj 2 > stride-1
    (4, 3, dict(stride=1, dilate=2, adj=1), None, None),     # adj < dilate does not help in MXNet
    (4, 3, dict(stride=2, target_shape=(11,)), None, None),  # too big target shape (full is 9)
    (4, 3, dict(stride=1, target_shape=(5,)), None, None),   # odd surplus with stride 1 needs adj 1
]

# BVLC/caffe, src/caffe/layers/deconv_layer.cpp (compute_output_shape):
#     const int kernel_extent = dilation_data[i] * (kernel_shape_data[i] - 1) + 1;
#     const int output_dim = stride_data[i] * (input_dim - 1) + kernel_extent - 2 * pad_data[i];
# No output padding: the window is full[pad : full - pad].
CAFFE_TABLE = [
    (4, 4, dict(stride=2, pad=1), 8, (1, 1)),              # 2*3 + 4 - 2
    (5, 3, dict(stride=1, dilation=2, pad=2), 5, (2, 2)),  # 4 + 5 - 4
    (2, 2, dict(stride=2, pad=1), 2, (1, 1)),              # 2 + 2 - 2
    (8, 3, dict(stride=2, pad=1), 15, (1, 1)),             # 14 + 3 - 2
    (1, 1, dict(stride=1, pad=1), None, None),             # 1 - 2 < 1: nothing to allocate
]


@pytest.mark.formula_only
@pytest.mark.parametrize("framework,table", [("mxnet", MXNET_TABLE), ("caffe", CAFFE_TABLE)])
def test_documented_formula(framework, table):
    """tconv matches the framework's documented formula (framework not installable: formula only)."""
    for input_size, kernel, args, size, crops in table:
        if size is None:
            with pytest.raises(tconv.ConfigError):
                tconv.geometry((input_size,), kernel, framework, **args)
            continue
        g = tconv.geometry((input_size,), kernel, framework, **args)
        assert g.output_shape == (size,), (framework, input_size, kernel, args)
        assert (g.crop_begin[0], g.crop_end[0]) == crops, (framework, input_size, kernel, args)


@pytest.mark.formula_only
def test_caffe_2d_h_w_arguments():
    """Caffe's stride_h/stride_w and pad_h/pad_w name the two axes of a 2-D layer (formula only)."""
    g = tconv.geometry((4, 5), (4, 3), "caffe", stride_h=2, stride_w=1, pad_h=1, pad_w=0)
    assert g.output_shape == (8, 7)  # 2*3 + 4 - 2, 1*4 + 3 - 0
