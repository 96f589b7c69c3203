"""Turns bench/out/engine.jsonl into the "Engine" section of docs/benchmarks.md (other sections kept)."""
import json
import platform
import subprocess
import sys
import time

from docs_section import replace_section

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
doc_path, command = sys.argv[2], sys.argv[3]
models = list(dict.fromkeys(r["model"] for r in rows))
get = lambda rt, m, t: next((r for r in rows if r.get("runtime") == rt and r["model"] == m and r["threads"] == t), None)
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()

lines = ["## Engine: dnnswarm vs ONNX Runtime on one device", "",
         f"Measured {time.strftime('%Y-%m-%d')} on {cpu} ({platform.machine()}), batch 1, median of 7 repetitions,",
         f"both runtimes side by side in one run: `{command.strip()}`.", "",
         "| model | threads | dnnswarm img/s | ORT 1.30 img/s | ratio | dnnswarm peak RSS MB | ORT peak RSS MB | weights MB |",
         "|---|---|---|---|---|---|---|---|"]
for m in models:
    for t in (1, 2):
        d, o = get("dnnswarm", m, t), get("onnxruntime", m, t)
        if not d or not o:
            continue
        lines.append(f"| {m} | {t} | {d['images_per_s']:.1f} | {o['images_per_s']:.1f} | **{d['images_per_s'] / o['images_per_s']:.2f}** "
                     f"| {d['peak_rss_mb']:.0f} | {o['peak_rss_mb']:.0f} | {d['weight_mb']:.0f} |")
lines += ["", "Numerics against the PyTorch references (`|y - ref| <= 1e-4 max|ref| + 1e-5`):", ""]
for r in rows:
    if r.get("check") == "numerics":
        lines.append(f"- {r['model']}: max |diff| {r['max_abs_err']:.2e} (tolerance {r['tolerance']:.2e}) {'ok' if r['ok'] else 'FAIL'}")
replace_section(doc_path, "engine", lines)
