#!/usr/bin/env bash
# Process start -> first text embedding, and peak RSS, of `clip embed --text` on full-size
# checkpoints, in every precision (warm page cache: one untimed run first). Prints one JSON line
# per (checkpoint, precision): the median and all wall times of ROUNDS runs, and the peak RSS.
#
#   tools/startup.sh ../fullsize/ViT-B-32.safetensors ../fullsize/ViT-L-14.random.safetensors
#
# Checkpoints: random weights shaped like the released ones (see tools/make_fullsize.py), fp16.
# Environment: CLIP_BIN (default target/release/clip), ROUNDS (5), THREADS (2),
# PRECISIONS ("f32 bf16 f16 int8").
set -eu
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIP_BIN="${CLIP_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/clip}"
ROUNDS="${ROUNDS:-5}"
PRECISIONS="${PRECISIONS:-f32 bf16 f16 int8}"
export RAYON_NUM_THREADS="${THREADS:-2}"
[ -x "$CLIP_BIN" ] || (cd "$ROOT" && cargo build --release -q -p clip-cli)
for ckpt in "$@"; do
  for p in $PRECISIONS; do
    run() { /usr/bin/time -f "%e %M" "$CLIP_BIN" embed --model "$ckpt" --precision "$p" --text "a photo of a cat sitting on a red sofa" 2>&1 >/dev/null | tail -n 1; }
    run >/dev/null
    times=(); rss=0
    for _ in $(seq "$ROUNDS"); do
      read -r t kb < <(run)
      times+=("$t"); [ "$kb" -gt "$rss" ] && rss="$kb"
    done
    python3 - "$ckpt" "$p" "$rss" "${times[@]}" <<'PY'
import json, statistics, sys
ckpt, p, rss, *ts = sys.argv[1:]
ts = [float(t) for t in ts]
print(json.dumps({"checkpoint": ckpt, "precision": p, "first_text_embedding_s": statistics.median(ts),
                  "runs_s": ts, "peak_rss_mb": round(int(rss) / 1024, 1)}))
PY
  done
done
