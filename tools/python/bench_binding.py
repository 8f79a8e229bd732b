#!/usr/bin/env python3
"""The Python binding's overhead, measured side by side in one run (ViT-B/32, image tower, batch
32, f32, same threads): `clip bench` (the engine alone), `clip_rs` `model.encode_image` on the
same random pixels, `clip_rs` `model.embed_images` on image files (decode + preprocess + model),
and the OpenAI reference (`shared/perf/torch_baseline.py --impl openai`). Prints a table and one
JSON line.

    CLIP_REF_VENV=/path/to/ref-venv tools/python/bench_binding.py [--threads 2] [--rounds 5]

Run it with the Python that has `clip_rs` installed (`pip install .`). The checkpoint is a
full-size random ViT-B/32 made by tools/make_fullsize.py with PY_REF (cached in
~/.cache/clip-rs/fullsize); speed does not depend on the weights' values.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def median_rate(fn, n, rounds):
    fn()  # warm-up: first-touch allocations, lazy tables
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    threads = str(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    # The reference venv, as tools/bench_peers.sh finds it.
    py_ref = os.environ.get("PY_REF") or str(Path(os.environ.get("CLIP_REF_VENV", ROOT / ".venv-ref")) / "bin/python")
    clip_bin = os.environ.get("CLIP_BIN", str(ROOT / "target/release/clip"))
    perf = Path(os.environ.get("PERF_DIR", ROOT.parent / "shared/perf"))
    cache = Path.home() / ".cache/clip-rs/fullsize"
    weights = cache / "ViT-B-32.safetensors"
    if not weights.exists():
        subprocess.run([py_ref, str(ROOT / "tools/make_fullsize.py"), "--arch", "ViT-B/32", "--out", str(cache)],
                       check=True, env=env)

    rows = {}
    # 1. The engine alone (random weights in memory, random pixels).
    out = subprocess.run([clip_bin, "bench", "--arch", "ViT-B/32", "--batch", str(args.batch), "--threads", threads,
                          "--rounds", str(args.rounds), "--no-b1"], check=True, env=env, capture_output=True, text=True)
    rows["clip bench"] = json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]

    # 2. and 3. The binding, in this process.
    import numpy as np
    import clip_rs

    clip_rs.set_array_backend("numpy")
    model, _ = clip_rs.load(str(weights), threads=args.threads)
    rng = np.random.default_rng(0)
    pixels = rng.uniform(-2, 2, size=(args.batch, 3, 224, 224)).astype(np.float32)
    rows["clip_rs encode_image"] = median_rate(lambda: model.encode_image(pixels), args.batch, args.rounds)
    images = sorted((ROOT / "fixtures/images/good").iterdir())
    blobs = [p.read_bytes() for p in images]
    batch = [blobs[i % len(blobs)] for i in range(args.batch)]
    rows["clip_rs embed_images (decode+preprocess+model)"] = median_rate(
        lambda: model.embed_images(batch, batch_size=args.batch), args.batch, args.rounds)

    # 4. The OpenAI reference, fp32.
    out = subprocess.run([py_ref, str(perf / "torch_baseline.py"), "--arch", "ViT-B/32", "--impl", "openai",
                          "--batch", str(args.batch), "--threads", threads, "--rounds", str(args.rounds), "--json"],
                         check=True, env=env, capture_output=True, text=True)
    rows["openai clip (torch, fp32)"] = json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]

    engine = rows["clip bench"]
    print(f"ViT-B/32 image tower, batch {args.batch}, {threads} threads, median of {args.rounds} rounds")
    for name, rate in rows.items():
        print(f"  {name:48s} {rate:8.2f} images/s  {rate / engine:5.3f}x clip bench")
    overhead = 1 - rows["clip_rs encode_image"] / engine
    print(f"  binding overhead on the model path: {overhead * 100:+.1f}%")
    print(json.dumps({"threads": args.threads, "batch": args.batch, "images_per_s": rows,
                      "binding_overhead": overhead}))


if __name__ == "__main__":
    sys.exit(main())
