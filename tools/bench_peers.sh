#!/usr/bin/env bash
# Runs `clip bench` and the Python CLIP peers of shared/perf side by side, in one go on this
# machine, with the same threads and batch, one fresh process per configuration; writes the JSON
# lines to $OUT and prints a table with each peer's figure and clip-rs's ratio to it.
#
#   tools/bench_peers.sh                      # ViT-B/32 image b32 (+b1), ViT-B/32 text b32 (+b1)
#   CONFIGS="vitb32-image vitb32-text rn50-image" tools/bench_peers.sh
#
# Environment knobs:
#   PY        python with torch, clip, transformers (default /work/pyref/bin/python, else python3)
#   PERF_DIR  the peer scripts (default ../shared/perf relative to the repository, else /work/shared/perf)
#   CLIP_BIN  our binary (default: target/release/clip, built with cargo if missing)
#   THREADS (2)  BATCH (32)  ROUNDS (3)  SLOW_ROUNDS (1: bf16 peers on CPUs without native bf16)
#   PEERS     torch peers to run (default "openai openai-bf16 transformers transformers-bf16")
#   BF16_RN50=1  also run RN50 under bf16 autocast (minutes per call without native bf16)
#   CANDLE_BIN  a prebuilt shared/perf/candle_baseline binary to include (optional)
#   OUT       where the JSON lines go (default a temp file; its path is printed)
# ONNX Runtime is run when the python has onnxruntime, otherwise skipped (and said so).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PY:-}" ]; then
  if [ -x /work/pyref/bin/python ]; then PY=/work/pyref/bin/python; else PY=python3; fi
fi
PERF_DIR="${PERF_DIR:-}"
if [ -z "$PERF_DIR" ]; then
  for d in "$ROOT/../shared/perf" /work/shared/perf; do [ -f "$d/torch_baseline.py" ] && PERF_DIR="$(cd "$d" && pwd)" && break; done
fi
[ -f "$PERF_DIR/torch_baseline.py" ] || { echo "bench_peers: no shared/perf peer scripts (set PERF_DIR)" >&2; exit 2; }
THREADS="${THREADS:-2}"; BATCH="${BATCH:-32}"; ROUNDS="${ROUNDS:-3}"; SLOW_ROUNDS="${SLOW_ROUNDS:-1}"
PEERS="${PEERS:-openai openai-bf16 transformers transformers-bf16}"
CONFIGS="${CONFIGS:-vitb32-image vitb32-text}"
OUT="${OUT:-$(mktemp "${TMPDIR:-/tmp}/bench_peers.XXXXXX.jsonl")}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS"

CLIP_BIN="${CLIP_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/clip}"
if [ ! -x "$CLIP_BIN" ]; then
  (cd "$ROOT" && cargo build --release -q -p clip-cli) >&2 || { echo "bench_peers: build failed" >&2; exit 2; }
fi

log() { echo "[$(date +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)] $*" >&2; }
# Runs a command whose last stdout line is a JSON record; appends it, tagged with the config.
rec() {
  local cfg="$1"; shift
  log "$cfg: $*"
  local line
  line="$("$@" 2>/dev/null | tail -n 1)"
  if [ -n "$line" ] && [ "${line:0:1}" = "{" ]; then
    "$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); r["config"]=sys.argv[2]; r["load_avg"]=open("/proc/loadavg").read().split()[0]; print(json.dumps(r))' "$line" "$cfg" >> "$OUT"
  else
    log "FAILED: $*"
  fi
}
tb() { local cfg="$1" impl="$2"; shift 2
  local r=(--rounds "$ROUNDS"); case "$impl" in *bf16) r=(--rounds "$SLOW_ROUNDS" --warmup-batch 2);; esac
  rec "$cfg" "$PY" "$PERF_DIR/torch_baseline.py" --impl "$impl" --threads "$THREADS" --json "${r[@]}" "$@"; }

has_ort=0; "$PY" -c "import onnxruntime" 2>/dev/null && has_ort=1
log "start: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), threads $THREADS, batch $BATCH -> $OUT"
for cfg in $CONFIGS; do
  case "$cfg" in
    vitb32-image) arch=ViT-B/32; text=(); b1=();;
    vitb32-text)  arch=ViT-B/32; text=(--text); b1=();;
    vitb16-image) arch=ViT-B/16; text=(); b1=(--no-b1);;
    vitl14-image) arch=ViT-L/14; text=(); b1=(--no-b1);;
    rn50-image)   arch=RN50; text=(); b1=(--no-b1);;
    *) log "unknown config $cfg"; continue;;
  esac
  rec "$cfg" "$CLIP_BIN" bench --arch "$arch" "${text[@]}" --batch "$BATCH" --threads "$THREADS" --rounds "$ROUNDS" "${b1[@]}" --json
  for impl in $PEERS; do
    case "$arch:$impl" in
      RN50:transformers*) continue;;   # no ResNet CLIP in transformers
      RN50:openai-bf16) [ "${BF16_RN50:-0}" = 1 ] || { log "RN50 openai-bf16 skipped (minutes per call on CPUs without native bf16; BF16_RN50=1 runs it)"; continue; };;
    esac
    tb "$cfg" "$impl" --arch "$arch" --batch "$BATCH" "${text[@]}" "${b1[@]}"
  done
  if [ "$cfg" = vitb32-image ]; then
    if [ "$has_ort" = 1 ]; then
      for impl in onnxruntime onnxruntime-int8; do
        rec "$cfg" "$PY" "$PERF_DIR/onnx_baseline.py" --impl "$impl" --batch "$BATCH" --threads "$THREADS" --rounds "$ROUNDS" --json
      done
    else
      log "onnxruntime not installed in $PY: ONNX peers skipped"
    fi
  fi
  if [ -n "${CANDLE_BIN:-}" ] && [ -x "${CANDLE_BIN}" ]; then
    case "$cfg" in
      vitb32-image) rec "$cfg" "$CANDLE_BIN" --batch "$BATCH" --rounds "$ROUNDS";;
      vitb32-text)  rec "$cfg" "$CANDLE_BIN" --batch "$BATCH" --rounds "$ROUNDS" --text --text-len 21 --b1-text-len 16;;
    esac
  fi
done
log "done"

"$PY" - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\nresults: {sys.argv[1]}\n")
print("| config | impl | throughput /s | b1 ms | peak RSS MB | clip-rs throughput ratio | clip-rs b1 speed-up |")
print("|---|---|---|---|---|---|---|")
by = {}
for r in rows:
    by.setdefault(r["config"], []).append(r)
for cfg, rs in by.items():
    ours = next((r for r in rs if r.get("impl") == "clip-rs"), None)
    for r in rs:
        tp = r.get("images_per_s", r.get("texts_per_s"))
        b1 = r.get("b1_latency_ms")
        ratio = sp = ""
        if ours and r is not ours:
            otp = ours.get("images_per_s", ours.get("texts_per_s"))
            if tp and otp:
                ratio = f"{otp / tp:.2f}x"
            if b1 and ours.get("b1_latency_ms"):
                sp = f"{b1 / ours['b1_latency_ms']:.2f}x"
        name = r.get("impl", "?") + (f" (pad {r['seq_len']})" if "seq_len" in r else "")
        print(f"| {cfg} b{r.get('batch')} | {name} | {tp:.2f} | {'' if b1 is None else f'{b1:.0f}'} | "
              f"{r.get('peak_rss_mb', 0):.0f} | {ratio} | {sp} |")
print("\nratio > 1: clip-rs is faster than that peer (throughput ratio = ours / theirs; b1 speed-up = their latency / ours).")
EOF
