#!/usr/bin/python3
"""Exports the torchvision 0.14 classification families to ONNX with seeded random weights (BatchNorm
statistics randomised too, so folding them is tested), each with a reference input and PyTorch's output:

    <out>/<model>_op<opset>[_dyn].onnx, .input.npy, .output.npy

Most at opset 13; a few at opset 9 and 11, and a dynamic-batch export (batch 2 in the reference) for
the Shape -> Gather -> Concat -> Reshape pattern. The acceptance check for the importer is
`DNN_ZOO_DIR=<out> build/onnx-zoo-test`. Needs Debian's python3-torch python3-torchvision python3-onnx:

    /usr/bin/python3 tools/export_zoo.py [--out /tmp/onnx/zoo] [--only resnet18 ...] [--skip-large]
"""
import argparse
import os
import time

import numpy as np
import torch
import torchvision

# (torchvision constructor, opset, dynamic batch)
EXPORTS = [
    ("alexnet", 13, False),
    ("vgg11", 13, False),
    ("resnet18", 13, False),
    ("mobilenet_v2", 13, False),
    ("mobilenet_v3_small", 13, False),
    ("squeezenet1_1", 13, False),
    ("googlenet", 13, False),
    ("shufflenet_v2_x1_0", 13, False),
    ("mnasnet1_0", 13, False),
    ("efficientnet_b0", 13, False),
    ("densenet121", 13, False),
    ("regnet_x_400mf", 13, False),
    ("resnet18", 9, False),
    ("mobilenet_v2", 9, False),
    ("googlenet", 9, False),
    ("densenet121", 9, False),
    ("mnasnet1_0", 9, False),
    ("squeezenet1_1", 11, False),
    ("mobilenet_v3_small", 11, False),
    ("efficientnet_b0", 11, False),
    ("regnet_x_400mf", 11, False),
    ("shufflenet_v2_x1_0", 11, True),
    ("resnet18", 13, True),
]
LARGE = {"alexnet", "vgg11"}


def randomise_batchnorm(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def export(name, opset, dynamic, out):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    with torch.no_grad():
        randomise_batchnorm(model, gen)
        x = torch.rand(2 if dynamic else 1, 3, 224, 224, generator=gen)
        y = model(x)
    stem = f"{name}_op{opset}" + ("_dyn" if dynamic else "")
    path = os.path.join(out, stem + ".onnx")
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes=axes, do_constant_folding=True)
    np.save(os.path.join(out, stem + ".input.npy"), x.numpy())
    np.save(os.path.join(out, stem + ".output.npy"), y.numpy())
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/onnx/zoo")
    ap.add_argument("--only", nargs="*", help="model names (torchvision constructors)")
    ap.add_argument("--skip-large", action="store_true", help=f"skip {sorted(LARGE)}")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for name, opset, dynamic in EXPORTS:
        if (args.only and name not in args.only) or (args.skip_large and name in LARGE):
            continue
        t0 = time.time()
        path = export(name, opset, dynamic, args.out)
        print(f"{path}  {os.path.getsize(path) / 1e6:.1f} MB  {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
