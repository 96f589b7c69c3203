"""Turns bench/out/engine.jsonl into the "Engine" section of docs/benchmarks.md (other sections kept)."""
import json
import platform
import subprocess
import sys
import time

from docs_section import replace_section

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
doc_path, command = sys.argv[2], sys.argv[3]
models = list(dict.fromkeys(r["model"] for r in rows if "runtime" in r))
# Every round of a (runtime, model, threads): the best one is reported, with the range of all.
runs = lambda rt, m, t: [r for r in rows if r.get("runtime") == rt and r.get("model") == m and r.get("threads") == t]
best = lambda rs: max(rs, key=lambda r: r["images_per_s"]) if rs else None
spread = lambda rs: f"{min(r['images_per_s'] for r in rs):.1f}–{max(r['images_per_s'] for r in rs):.1f}"
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()

lines = ["## Engine: dnnswarm vs ONNX Runtime on one device", "",
         f"Measured {time.strftime('%Y-%m-%d')} on {cpu} ({platform.machine()}), batch 1. Each round is the median",
         "of 7 repetitions; the runtimes alternate round by round, and each runtime's best round is shown",
         "(this virtual machine's speed drifts by up to 2x over minutes; the range of all rounds is given).",
         f"Command: `{command.strip()}`.", "",
         "| model | threads | dnnswarm img/s | ORT 1.30 img/s | ratio | dnnswarm rounds | ORT rounds | dnnswarm peak RSS MB | ORT peak RSS MB | weights MB |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for m in models:
    for t in (1, 2):
        ds, os_ = runs("dnnswarm", m, t), runs("onnxruntime", m, t)
        d, o = best(ds), best(os_)
        if not d or not o:
            continue
        lines.append(f"| {m} | {t} | {d['images_per_s']:.1f} | {o['images_per_s']:.1f} | **{d['images_per_s'] / o['images_per_s']:.2f}** "
                     f"| {spread(ds)} | {spread(os_)} | {max(r['peak_rss_mb'] for r in ds):.0f} "
                     f"| {max(r['peak_rss_mb'] for r in os_):.0f} | {d['weight_mb']:.0f} |")
lines += ["", "Numerics against the PyTorch references (`|y - ref| <= 1e-4 max|ref| + 1e-5`):", ""]
for r in rows:
    if r.get("check") == "numerics":
        lines.append(f"- {r['model']}: max |diff| {r['max_abs_err']:.2e} (tolerance {r['tolerance']:.2e}) {'ok' if r['ok'] else 'FAIL'}")
tests = [r for r in rows if r.get("check") == "tests"]
if tests:
    lines += ["", "Tests on the generated AlexNet and VGG16 (not in ctest: the models are too large for CI):", ""]
    lines += [f"- `build/{r['name']}`: {'passed' if r['ok'] else 'FAILED'}" for r in tests]
replace_section(doc_path, "engine", lines)
