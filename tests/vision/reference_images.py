#!/usr/bin/env python3
"""Writes test images and, independently of dnnswarm, the tensors they must preprocess to.

Usage: reference_images.py OUTDIR

Decoding is Pillow's; resizing is Pillow's Image.resize(BILINEAR) on float ("F") images, the
antialiased bilinear dnnswarm documents; the rest (colour, shorter-side size, centre crop with
Python's round, mean/std) is numpy. 16-bit PNGs are written by hand from known samples, so their
reference needs no decoder at all.
"""
import struct
import sys
import zlib

import numpy as np
from PIL import Image

IMAGENET = dict(color="rgb", resize=[256], crop=[224, 224], mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
GRAY28 = dict(color="gray", resize=[28, 28], crop=None, mean=None, std=None)
BGR = dict(IMAGENET, color="bgr", mean=IMAGENET["mean"][::-1], std=IMAGENET["std"][::-1])


def scene(w, h, seed):
    """Smooth shading, sharp edges and noise: what resampling and JPEG get wrong first."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)
    g = x * 255.0 / max(w - 1, 1)
    b = y * 255.0 / max(h - 1, 1)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    img[h // 4:h // 2, w // 3:w // 2] = [250, 20, 60]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_png16(path, samples):
    """A 16-bit PNG (gray if 2-D, RGB if 3-D) from uint16 samples, chunk by chunk."""
    h, w = samples.shape[:2]
    color_type = 0 if samples.ndim == 2 else 2
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def planes(samples, color):
    """H x W (gray) or H x W x 3 samples in 0..255 -> list of float planes in the model's order."""
    s = samples.astype(np.float64)
    if color == "gray":
        return [s if s.ndim == 2 else 0.299 * s[..., 0] + 0.587 * s[..., 1] + 0.114 * s[..., 2]]
    rgb = [s] * 3 if s.ndim == 2 else [s[..., 0], s[..., 1], s[..., 2]]
    return rgb[::-1] if color == "bgr" else rgb


def reference(samples, spec):
    h, w = samples.shape[:2]
    if len(spec["resize"]) == 1:
        n = spec["resize"][0]
        short, long = (w, h) if w <= h else (h, w)
        other = int(n * long / short)
        rw, rh = (n, other) if w <= h else (other, n)
    else:
        rh, rw = spec["resize"]
    out = []
    for plane in planes(samples, spec["color"]):
        img = Image.fromarray(plane.astype(np.float32), mode="F").resize((rw, rh), Image.BILINEAR)
        a = np.asarray(img, dtype=np.float64)
        if spec["crop"]:
            ch, cw = spec["crop"]
            top, left = int(round((rh - ch) / 2.0)), int(round((rw - cw) / 2.0))
            a = a[top:top + ch, left:left + cw]
        out.append(a / 255.0)
    t = np.stack(out)
    if spec["mean"]:
        t = (t - np.array(spec["mean"])[:, None, None]) / np.array(spec["std"])[:, None, None]
    return t[None].astype(np.float32)


def decoded(path):
    """Pillow's pixels in 0..255: H x W for gray, H x W x 3 for colour (alpha dropped)."""
    im = Image.open(path)
    if im.mode == "L":
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))


def main(out):
    rgb = scene(640, 480, 1)
    Image.fromarray(rgb).save(f"{out}/rgb.jpg", quality=90)
    Image.fromarray(rgb).convert("L").save(f"{out}/gray.jpg", quality=90)
    Image.fromarray(rgb).convert("CMYK").save(f"{out}/cmyk.jpg", quality=90)
    Image.fromarray(rgb).save(f"{out}/rgb.png")
    Image.fromarray(rgb).convert("L").save(f"{out}/gray.png")
    alpha = np.tile(np.linspace(0, 255, 640).astype(np.uint8), (480, 1))
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(f"{out}/rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=64).save(f"{out}/palette.png")
    # Shorter side the width; 300 x 515 -> 256 x 439: the crop offset 107.5 rounds half to even, to 108.
    Image.fromarray(scene(300, 515, 2)).save(f"{out}/portrait.png")
    Image.fromarray(scene(100, 80, 3)).save(f"{out}/small.png")       # enlarged, not shrunk
    wide = (scene(640, 480, 4).astype(np.uint32) * 257 + np.random.default_rng(5).integers(0, 257, (480, 640, 3)))
    wide = wide.astype(np.uint16)
    write_png16(f"{out}/rgb16.png", wide)
    write_png16(f"{out}/gray16.png", wide[..., 1])

    cases = {
        "rgb.jpg": IMAGENET, "gray.jpg": IMAGENET, "rgb.png": IMAGENET, "gray.png": IMAGENET,
        "rgba.png": IMAGENET, "palette.png": IMAGENET, "portrait.png": IMAGENET, "small.png": IMAGENET,
    }
    for name, spec in cases.items():
        np.save(f"{out}/{name}.imagenet.npy", reference(decoded(f"{out}/{name}"), spec))
    np.save(f"{out}/rgb.png.bgr.npy", reference(decoded(f"{out}/rgb.png"), BGR))
    np.save(f"{out}/rgb.jpg.gray28.npy", reference(decoded(f"{out}/rgb.jpg"), GRAY28))
    np.save(f"{out}/rgb16.png.imagenet.npy", reference(wide / 257.0, IMAGENET))
    np.save(f"{out}/gray16.png.imagenet.npy", reference(wide[..., 1] / 257.0, IMAGENET))


if __name__ == "__main__":
    main(sys.argv[1])
