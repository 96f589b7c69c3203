#!/usr/bin/python3
"""Builds the small ONNX models in tests/data/onnx that exercise the importer's opset paths (what
paddle2onnx and older exporters write: opset 9 unfused BatchNormalization, Clip/Pad with attributes,
opset 11/13 operands as inputs, Constant-node weights, shape subgraphs, a dynamic batch) plus a few
broken models for the error paths. Each good model gets <name>.input.npy and <name>.output.npy, the
output computed here by a small reference evaluator built on torch.nn.functional, so the engine can be
checked against it. Run with Debian's python3 (python3-onnx python3-numpy python3-torch):

    /usr/bin/python3 tools/make_test_onnx.py [--out tests/data/onnx]

Seeded: re-running gives the same files.
"""
import argparse
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(20261128)


def rand(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def positive(*shape):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def const_node(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name))


def model(name, nodes, inputs, outputs, initializers, opset):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_test_onnx")
    m.ir_version = 7 if opset < 14 else 8
    return m


def tensor_input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# ---- reference evaluator: just the ops these models use, on torch tensors --------------------------

def attrs_of(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def conv_padding(x, pads, value=0.0):
    # ONNX pads [x1_begin, x2_begin, x1_end, x2_end] -> F.pad's (x2_begin, x2_end, x1_begin, x1_end)
    half = len(pads) // 2
    torch_pads = []
    for i in reversed(range(half)):
        torch_pads += [pads[i], pads[i + half]]
    return F.pad(x, torch_pads, value=value)


def same_pads(x, kernel, strides, dilations, mode):
    pads_begin, pads_end = [], []
    for i, k in enumerate(kernel):
        size = x.shape[2 + i]
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (k - 1) * dilations[i] + 1 - size)
        begin = total // 2 if mode == "SAME_UPPER" else total - total // 2
        pads_begin.append(begin)
        pads_end.append(total - begin)
    return pads_begin + pads_end


def run_reference(m, feeds):
    values = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
    values.update({k: torch.from_numpy(v) for k, v in feeds.items()})
    for n in m.graph.node:
        a = attrs_of(n)
        x = [values[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Constant":
            y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        elif op == "Conv":
            w = x[1]
            kernel = list(w.shape[2:])
            strides = a.get("strides", [1] * len(kernel))
            dil = a.get("dilations", [1] * len(kernel))
            pads = a.get("pads", [0] * 2 * len(kernel))
            if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER"):
                pads = same_pads(x[0], kernel, strides, dil, a["auto_pad"].decode())
            y = F.conv2d(conv_padding(x[0], pads), w, x[2] if len(x) > 2 else None, strides, 0, dil, a.get("group", 1))
        elif op == "BatchNormalization":
            y = F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a.get("epsilon", 1e-5))
        elif op == "HardSigmoid":
            y = torch.clamp(a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5), 0, 1)
        elif op == "Relu":
            y = torch.relu(x[0])
        elif op == "Clip":
            lo = a.get("min", x[1].item() if len(x) > 1 and x[1] is not None else -3.4e38)
            hi = a.get("max", x[2].item() if len(x) > 2 and x[2] is not None else 3.4e38)
            y = torch.clamp(x[0], lo, hi)
        elif op == "Pad":
            pads = a["pads"] if "pads" in a else x[1].tolist()
            if len(x) > 3 and x[3] is not None:  # opset 18 axes: pads for those axes only
                rank, axes, full = x[0].dim(), x[3].tolist(), [0] * 2 * x[0].dim()
                for k, ax in enumerate(axes):
                    full[ax], full[ax + rank] = pads[k], pads[k + len(axes)]
                pads = full
            value = a.get("value", x[2].item() if len(x) > 2 and x[2] is not None else 0.0)
            y = conv_padding(x[0], pads, value)
        elif op == "MaxPool":
            k = a["kernel_shape"]
            pads = a.get("pads", [0] * 2 * len(k))
            y = F.max_pool2d(conv_padding(x[0], pads, float("-inf")), k, a.get("strides", [1] * len(k)))
        elif op == "GlobalAveragePool":
            y = x[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
        elif op in ("Dropout", "Identity"):
            y = x[0]
        elif op == "Gemm":
            aa = x[0].T if a.get("transA", 0) else x[0]
            b = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * aa @ b
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op == "MatMul":
            y = x[0] @ x[1]
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](x[0], x[1])
        elif op == "Softmax":
            axis = a.get("axis", 1 if m.opset_import[0].version < 13 else -1)
            if m.opset_import[0].version < 13:  # old semantics: flatten at axis
                shape = x[0].shape
                y = torch.softmax(x[0].reshape(int(np.prod(shape[:axis])), -1), 1).reshape(shape)
            else:
                y = torch.softmax(x[0], axis)
        elif op == "Shape":
            y = torch.tensor(list(x[0].shape), dtype=torch.int64)
        elif op == "Gather":
            y = torch.index_select(x[0], a.get("axis", 0), x[1].reshape(-1)).reshape(
                list(x[0].shape[:a.get("axis", 0)]) + list(x[1].shape) + list(x[0].shape[a.get("axis", 0) + 1:]))
        elif op == "Unsqueeze":
            y = x[0]
            for ax in sorted(a["axes"] if "axes" in a else x[1].tolist()):
                y = y.unsqueeze(ax)
        elif op == "Squeeze":
            axes = a["axes"] if "axes" in a else x[1].tolist()
            y = x[0]
            for ax in sorted(axes, reverse=True):
                y = y.squeeze(ax)
        elif op == "Concat":
            y = torch.cat(x, a["axis"])
        elif op == "Reshape":
            shape = x[1].tolist()
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            y = x[0].reshape(shape)
        elif op == "Slice":
            starts, ends = x[1].tolist(), x[2].tolist()
            axes = x[3].tolist() if len(x) > 3 else list(range(len(starts)))
            steps = x[4].tolist() if len(x) > 4 else [1] * len(starts)
            index = [slice(None)] * x[0].dim()
            for s, e, ax, st in zip(starts, ends, axes, steps):
                index[ax] = slice(s, e, st)
            y = x[0][tuple(index)]
        elif op == "Split":
            if "split" in a:
                split = a["split"]
            elif len(x) > 1 and x[1] is not None:
                split = x[1].tolist()
            else:  # equal parts (opset 18: num_outputs)
                split = x[0].shape[a.get("axis", 0)] // len(n.output)
            ys = torch.split(x[0], split, a.get("axis", 0))
            for name, t in zip(n.output, ys):
                values[name] = t
            continue
        elif op == "ReduceMean":
            axes = a["axes"] if "axes" in a else x[1].tolist()
            y = x[0].mean(dim=tuple(axes), keepdim=bool(a.get("keepdims", 1)))
        elif op == "Cast":
            y = x[0].to(torch.float32 if a["to"] == TensorProto.FLOAT else torch.int64)
        elif op == "Range":
            y = torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype)
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]).copy() if "value" in a else np.zeros(1, np.float32)
            y = torch.full(x[0].tolist(), v.item(), dtype=torch.from_numpy(v).dtype)
        elif op == "Expand":
            y = x[0] * torch.ones(x[1].tolist(), dtype=x[0].dtype)
        elif op == "Tile":
            y = x[0].repeat(x[1].tolist())
        elif op == "Transpose":
            y = x[0].permute(a["perm"])
        else:
            raise NotImplementedError(op)
        values[n.output[0]] = y
    return [values[o.name].numpy() for o in m.graph.output]


# ---- the models ----------------------------------------------------------------------------------

def reshape_dyn_batch():
    """opset 13, dynamic batch, the flatten written as Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))
    and the classifier as MatMul + Add (older exporters)."""
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "fc.w"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fc.b"], ["y"], name="fc_bias"),
    ]
    inits = [init("conv.w", rand(4, 1, 3, 3)), init("conv.b", rand(4)), init("zero", np.array(0, np.int64)),
             init("axes0", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64)),
             init("fc.w", rand(256, 10, scale=0.1)), init("fc.b", rand(10))]
    m = model("reshape_dyn_batch", nodes, [tensor_input("x", ["N", 1, 8, 8])], [tensor_input("y", ["N", 10])], inits, 13)
    return m, {"x": rand(3, 1, 8, 8, scale=1.0)}


def paddle_bn_opset9():
    """opset 9 in paddle2onnx's style: convs without bias, unfused BatchNormalization, Clip and Pad with
    attributes, a standalone BatchNormalization (+ Relu) after a pool, Dropout, Gemm with transB=0, Softmax."""
    def bn(name, inp, out, c):
        return (helper.make_node("BatchNormalization", [inp, name + ".scale", name + ".bias", name + ".mean", name + ".var"],
                                 [out], epsilon=1e-5, momentum=0.9, name=name),
                [init(name + ".scale", positive(c)), init(name + ".bias", rand(c)), init(name + ".mean", rand(c)),
                 init(name + ".var", positive(c))])
    bn1, p1 = bn("bn1", "c1", "b1", 8)
    bn2, p2 = bn("bn2", "c2", "b2", 8)
    bn3, p3 = bn("bn3", "p", "b3", 8)
    nodes = [
        helper.make_node("Conv", ["x", "conv1.w"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], name="conv1"),
        bn1,
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.w"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], group=8,
                         name="conv2_dw"),
        bn2,
        helper.make_node("Clip", ["b2"], ["r2"], min=0.0, max=6.0, name="relu6"),
        helper.make_node("Pad", ["r2"], ["padded"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.0, mode="constant", name="pad"),
        helper.make_node("MaxPool", ["padded"], ["p"], kernel_shape=[3, 3], strides=[1, 1], name="pool"),
        bn3,
        helper.make_node("Relu", ["b3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], axis=1, name="flatten"),
        helper.make_node("Dropout", ["f"], ["d"], ratio=0.5, name="dropout"),
        helper.make_node("Gemm", ["d", "fc.w", "fc.b"], ["logits"], alpha=1.0, beta=1.0, transB=0, name="fc"),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1, name="softmax"),
    ]
    inits = [init("conv1.w", rand(8, 3, 3, 3)), init("conv2.w", rand(8, 1, 3, 3)), init("fc.w", rand(8, 10)),
             init("fc.b", rand(10))] + p1 + p2 + p3
    m = model("paddle_bn_opset9", nodes, [tensor_input("x", ["batch_size", 3, 16, 16])],
              [tensor_input("y", ["batch_size", 10])], inits, 9)
    # paddle2onnx at opset 9 also lists initializers among the graph inputs
    m.graph.input.extend(helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in m.graph.initializer)
    return m, {"x": rand(2, 3, 16, 16, scale=1.0)}


def operands_opset11():
    """opset 11: Clip/Pad/Slice operands as inputs, Conv weights from Constant nodes, auto_pad SAME_UPPER,
    Split with the split attribute, a bias built by Range/Cast/Unsqueeze/Expand/Tile/ConstantOfShape,
    and Softmax over axis 1 of a 4-D tensor (opset < 13 semantics: flattened)."""
    nodes = [
        const_node("clip.min", np.array(-1.0, np.float32)),
        const_node("clip.max", np.array(1.5, np.float32)),
        helper.make_node("Clip", ["x", "clip.min", "clip.max"], ["cl"], name="clip"),
        helper.make_node("Pad", ["cl", "pad.pads", "pad.value"], ["pd"], mode="constant", name="pad"),
        helper.make_node("Slice", ["pd", "sl.starts", "sl.ends", "sl.axes", "sl.steps"], ["sl"], name="slice"),
        const_node("conv.w", rand(4, 4, 3, 3)),
        const_node("conv.b", rand(4)),
        helper.make_node("Conv", ["sl", "conv.w", "conv.b"], ["cv"], auto_pad="SAME_UPPER", strides=[2, 2], name="conv"),
        # bias[c] = c * 0.25, shaped [1, 4, 1, 1], through a typical exporter shape subgraph
        helper.make_node("Range", ["r.start", "r.limit", "r.delta"], ["r"]),
        helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
        helper.make_node("ConstantOfShape", ["one_shape"], ["quarter"],
                         value=numpy_helper.from_array(np.array([0.25], np.float32))),
        helper.make_node("Mul", ["rf", "quarter"], ["rq"]),
        helper.make_node("Unsqueeze", ["rq"], ["ru"], axes=[0, 2, 3]),
        helper.make_node("Expand", ["ru", "expand_shape"], ["re"]),
        helper.make_node("Tile", ["re", "tile_reps"], ["bias"]),
        helper.make_node("Add", ["cv", "bias"], ["biased"], name="add_bias"),
        helper.make_node("Split", ["biased"], ["s0", "s1"], axis=1, split=[1, 3], name="split"),
        helper.make_node("Concat", ["s1", "s0"], ["cc"], axis=1, name="concat"),
        helper.make_node("Softmax", ["cc"], ["y"], axis=1, name="softmax"),
    ]
    inits = [init("pad.pads", np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64)), init("pad.value", np.array(0.5, np.float32)),
             init("sl.starts", np.array([1, -8], np.int64)), init("sl.ends", np.array([9223372036854775807, 100], np.int64)),
             init("sl.axes", np.array([2, 3], np.int64)), init("sl.steps", np.array([1, 1], np.int64)),
             init("r.start", np.array(0, np.int64)), init("r.limit", np.array(4, np.int64)), init("r.delta", np.array(1, np.int64)),
             init("one_shape", np.array([1], np.int64)), init("expand_shape", np.array([1, 4, 1, 1], np.int64)),
             init("tile_reps", np.array([1, 1, 1, 1], np.int64))]
    m = model("operands_opset11", nodes, [tensor_input("x", [1, 4, 7, 7])], [tensor_input("y", [1, 4, 4, 4])], inits, 11)
    return m, {"x": rand(1, 4, 7, 7, scale=1.0)}


def operands_opset13():
    """opset 13: Split sizes, Squeeze/Unsqueeze axes as inputs; Clip with only a max; ReduceMean; Transpose
    of a weight folded at import; Gemm with alpha/beta and a [1, N] C."""
    nodes = [
        helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1, name="split"),
        helper.make_node("Clip", ["a", "", "clip.max"], ["ac"], name="clip_max_only"),
        helper.make_node("Add", ["ac", "b"], ["s"], name="add"),
        helper.make_node("ReduceMean", ["s"], ["m"], axes=[2, 3], keepdims=1, name="mean"),
        helper.make_node("Squeeze", ["m", "sq_axes"], ["sq"], name="squeeze"),
        helper.make_node("Transpose", ["fc.w_kn"], ["fc.w"], perm=[1, 0]),
        helper.make_node("Gemm", ["sq", "fc.w", "fc.c"], ["g"], alpha=0.5, beta=2.0, transB=1, name="fc"),
        helper.make_node("Unsqueeze", ["g", "unsq_axes"], ["y"], name="unsqueeze"),
    ]
    inits = [init("split", np.array([3, 3], np.int64)), init("clip.max", np.array(0.2, np.float32)),
             init("sq_axes", np.array([2, 3], np.int64)), init("unsq_axes", np.array([1], np.int64)),
             init("fc.w_kn", rand(3, 5)), init("fc.c", rand(1, 5))]
    m = model("operands_opset13", nodes, [tensor_input("x", [2, 6, 5, 5])], [tensor_input("y", [2, 1, 5])], inits, 13)
    return m, {"x": rand(2, 6, 5, 5, scale=1.0)}


def hardswish_opset13():
    """HardSwish as PyTorch writes it below opset 14, x * HardSigmoid(x), next to a squeeze-excitation
    style x * HardSigmoid(y) that must stay as it is."""
    nodes = [
        helper.make_node("Conv", ["x", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("HardSigmoid", ["c1"], ["h1"], alpha=1.0 / 6, beta=0.5, name="hsig1"),
        helper.make_node("Mul", ["c1", "h1"], ["a1"], name="hswish1"),
        helper.make_node("Conv", ["a1", "conv2.w", "conv2.b"], ["c2"], name="conv2"),
        helper.make_node("HardSigmoid", ["c2"], ["h2"], alpha=1.0 / 6, beta=0.5, name="gate"),
        helper.make_node("Mul", ["a1", "h2"], ["y"], name="scale"),
    ]
    inits = [init("conv1.w", rand(4, 2, 3, 3)), init("conv1.b", rand(4)), init("conv2.w", rand(4, 4, 1, 1)),
             init("conv2.b", rand(4))]
    m = model("hardswish_opset13", nodes, [tensor_input("x", [1, 2, 6, 6])], [tensor_input("y", [1, 4, 6, 6])], inits, 13)
    return m, {"x": rand(1, 2, 6, 6, scale=2.0)}


def gemm_bn_opset13():
    """A classifier head: Flatten -> Gemm -> BatchNormalization (BatchNorm1d) -> Relu -> Gemm, and a
    conv whose output is added to itself (must not become a residual of itself)."""
    nodes = [
        helper.make_node("Conv", ["x", "conv.w"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "c"], ["cc"], name="double"),
        helper.make_node("Flatten", ["cc"], ["f"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["f", "fc1.w", "fc1.b"], ["h"], transB=1, name="fc1"),
        helper.make_node("BatchNormalization", ["h", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["hb"], epsilon=1e-3,
                         name="bn"),
        helper.make_node("Relu", ["hb"], ["hr"], name="relu"),
        helper.make_node("Gemm", ["hr", "fc2.w"], ["y"], transB=1, name="fc2"),
    ]
    inits = [init("conv.w", rand(2, 3, 1, 1)), init("fc1.w", rand(6, 8)), init("fc1.b", rand(6)),
             init("bn.scale", positive(6)), init("bn.bias", rand(6)), init("bn.mean", rand(6)), init("bn.var", positive(6)),
             init("fc2.w", rand(3, 6))]
    m = model("gemm_bn_opset13", nodes, [tensor_input("x", ["N", 3, 2, 2])], [tensor_input("y", ["N", 3])], inits, 13)
    return m, {"x": rand(2, 3, 2, 2, scale=1.0)}


def operands_opset18():
    """opset 18, newer than libonnx 1.12's schemas: Split by num_outputs, Pad with axes, ReduceMean with
    axes as an input, and a dynamic-batch flatten that needs shape inference through all three."""
    nodes = [
        helper.make_node("Conv", ["x", "conv.w"], ["c"], name="conv"),
        helper.make_node("Split", ["c"], ["s0", "s1"], axis=1, num_outputs=2, name="split"),
        helper.make_node("Pad", ["s0", "pads", "", "pad_axes"], ["p"], mode="constant", name="pad"),
        helper.make_node("ReduceMean", ["p", "mean_axes"], ["m"], keepdims=1, name="mean"),
        helper.make_node("Shape", ["m"], ["sh"]),
        helper.make_node("Gather", ["sh", "zero"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["m", "target"], ["mf"], name="flatten_mean"),
        helper.make_node("Reshape", ["s1", "target"], ["sf"], name="flatten_s1"),
        helper.make_node("Concat", ["sf", "mf"], ["y"], axis=1, name="concat"),
    ]
    inits = [init("conv.w", rand(4, 2, 3, 3)), init("pads", np.array([1, 2, 1, 0], np.int64)),
             init("pad_axes", np.array([2, 3], np.int64)), init("mean_axes", np.array([3], np.int64)),
             init("zero", np.array(0, np.int64)), init("axes0", np.array([0], np.int64)),
             init("minus1", np.array([-1], np.int64))]
    # 2x4x4 per image from s1, and the mean of p [2, 6, 6] over its last axis: 2x6
    m = model("operands_opset18", nodes, [tensor_input("x", ["N", 2, 6, 6])], [tensor_input("y", ["N", 44])], inits, 18)
    return m, {"x": rand(2, 2, 6, 6, scale=1.0)}


def dynamic_dim_error():
    """A Reshape target computed from the run-time batch (N * 2): cannot be fixed at import."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Mul", ["n", "two"], ["n2"]),
        helper.make_node("Unsqueeze", ["n2", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="bad_reshape"),
    ]
    inits = [init("zero", np.array(0, np.int64)), init("two", np.array(2, np.int64)),
             init("axes0", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64))]
    return model("dynamic_dim_error", nodes, [tensor_input("x", ["N", 4, 2, 2])], [tensor_input("y", None)], inits, 13)


def external_data():
    w = init("w", rand(4, 4))
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model("external_data", nodes, [tensor_input("x", [1, 4])], [tensor_input("y", [1, 4])], [w], 13)


def custom_domain():
    nodes = [helper.make_node("FancyActivation", ["x"], ["y"], domain="com.example", name="fancy")]
    m = model("custom_domain", nodes, [tensor_input("x", [1, 4])], [tensor_input("y", [1, 4])], [], 13)
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    return m


def conv_bad_weights():
    """Conv weights of rank 1 (found by fuzzing: libonnx's shape inference crashed on it)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    return model("conv_bad_weights", nodes, [tensor_input("x", [1, 2, 6, 6])], [tensor_input("y", None)],
                 [init("w", rand(4))], 13)


def pool_zero_stride():
    """strides 0 (found by fuzzing: libonnx's shape inference divided by it)."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[0, 1], name="pool")]
    return model("pool_zero_stride", nodes, [tensor_input("x", [1, 2, 6, 6])], [tensor_input("y", None)], [], 13)


def dropout_training():
    """Dropout with training_mode = true: must be refused, not treated as the identity."""
    nodes = [helper.make_node("Dropout", ["x", "ratio", "training"], ["y"], name="dropout")]
    inits = [init("ratio", np.array(0.5, np.float32)), init("training", np.array(True))]
    return model("dropout_training", nodes, [tensor_input("x", [1, 4])], [tensor_input("y", [1, 4])], inits, 13)


def opset6():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return model("opset6", nodes, [tensor_input("x", [1, 4])], [tensor_input("y", [1, 4])], [], 6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "onnx"))
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    for make in (reshape_dyn_batch, paddle_bn_opset9, operands_opset11, operands_opset13, hardswish_opset13,
                 gemm_bn_opset13, operands_opset18):
        m, feeds = make()
        if m.opset_import[0].version <= 17:  # this python-onnx knows schemas up to 17
            onnx.checker.check_model(m)
        (y,) = run_reference(m, feeds)
        onnx.save(m, os.path.join(out, m.graph.name + ".onnx"))
        np.save(os.path.join(out, m.graph.name + ".input.npy"), feeds["x"])
        np.save(os.path.join(out, m.graph.name + ".output.npy"), y.astype(np.float32))
        print(m.graph.name, "output", y.shape)
    for make in (dynamic_dim_error, external_data, custom_domain, opset6, conv_bad_weights, dropout_training,
                 pool_zero_stride):
        m = make()
        onnx.save(m, os.path.join(out, m.graph.name + ".onnx"))
        print(m.graph.name, "(error case)")


if __name__ == "__main__":
    main()
