#!/usr/bin/env bash
# Runs `clip bench` and the Python CLIP peers of shared/perf side by side, in one go on this
# machine, with the same threads and batch, one fresh process per configuration; writes the JSON
# lines to $OUT and prints a table with each peer's figure and clip-rs's ratio to it.
#
#   tools/bench_peers.sh                      # ViT-B/32 image b32 (+b1), ViT-B/32 text b32 (+b1)
#   CONFIGS="vitb32-image vitb32-text rn50-image" tools/bench_peers.sh
#   CONFIGS="siglip2-image siglip2-text" tools/bench_peers.sh   # SigLIP 2 base vs transformers
#
# Configurations: vitb32-image, vitb32-text, vitb16-image, vitl14-image (batch LARGE_BATCH),
# rn50-image: `clip bench --arch <ViT-B/32|ViT-B/16|ViT-L/14|RN50>` beside shared/perf's peers;
# siglip2-image, siglip2-text: `clip bench --arch siglip2-base-patch16-224 [--text]` beside
# tools/siglip/bench_transformers.py (transformers SiglipModel with google/siglip2-base-patch16-224's
# config, random weights, both towers resident; impl transformers = f32, transformers-bf16 =
# bfloat16 weights as shared/perf's transformers-bf16). Text: 64 positions always (SigLIP pads to
# max_length), the 32 captions as random ids, their tokenisation not timed there (clip-rs times its
# own). The OpenAI peers, ONNX Runtime and candle have no SigLIP and are not run for these two.
#
# Environment knobs:
#   PY        python with torch, clip, transformers (default: $CLIP_REF_VENV/bin/python when that
#             venv exists, else python3; make one with shared/reference/tools/requirements.txt)
#   PERF_DIR  the peer scripts (default ../shared/perf relative to the repository)
#   CLIP_BIN  our binary (default: target/release/clip, built with cargo if missing)
#   THREADS (2)  BATCH (32)  ROUNDS (3)  SLOW_ROUNDS (1: bf16 peers on CPUs without native bf16)
#   LARGE_BATCH (8)  batch of the ViT-L/14 configuration (as shared/perf measures it)
#   LARGE_B1 (1)  0 skips ViT-L/14's batch-1 latency (minutes for the bf16 peers on CPUs without
#             native bf16)
#   PRECISIONS ("f32 bf16 f16 int8")  clip-rs precisions measured per configuration
#   PEERS     torch peers to run (default "openai openai-bf16 transformers transformers-bf16");
#             the siglip2 configurations run its transformers* ones (openai* have no SigLIP)
#   SIGLIP_TOWERS (both)  towers the SigLIP 2 peer holds: both (SiglipModel, as the CLIP peers) or
#             one (only the measured tower, as `clip bench`: compare peak RSS with this)
#   BF16_RN50=1  also run RN50 under bf16 autocast (minutes per call without native bf16)
#   CANDLE_BIN  a prebuilt shared/perf/candle_baseline binary to include (optional)
#   OUT       where the JSON lines go (default a temp file; its path is printed)
#   REPEAT (1)  runs of the whole sequence, one after the other: every ratio is taken within a
#             run (ours and the peer minutes apart) and the table gives the median over the runs
#             with their range, so a peer's (or our) drift between runs shows instead of hiding
# ONNX Runtime is run when the python has onnxruntime, otherwise skipped (and said so).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PY:-}" ]; then
  if [ -n "${CLIP_REF_VENV:-}" ] && [ -x "$CLIP_REF_VENV/bin/python" ]; then PY="$CLIP_REF_VENV/bin/python"; else PY=python3; fi
fi
PERF_DIR="${PERF_DIR:-}"
if [ -z "$PERF_DIR" ] && [ -f "$ROOT/../shared/perf/torch_baseline.py" ]; then
  PERF_DIR="$(cd "$ROOT/../shared/perf" && pwd)"
fi
[ -f "$PERF_DIR/torch_baseline.py" ] || { echo "bench_peers: no shared/perf peer scripts (set PERF_DIR)" >&2; exit 2; }
THREADS="${THREADS:-2}"; BATCH="${BATCH:-32}"; ROUNDS="${ROUNDS:-3}"; SLOW_ROUNDS="${SLOW_ROUNDS:-1}"
PEERS="${PEERS:-openai openai-bf16 transformers transformers-bf16}"
CONFIGS="${CONFIGS:-vitb32-image vitb32-text}"
PRECISIONS="${PRECISIONS:-f32 bf16 f16 int8}"
LARGE_BATCH="${LARGE_BATCH:-8}"; LARGE_B1="${LARGE_B1:-1}"
REPEAT="${REPEAT:-1}"
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
    "$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); r["config"]=sys.argv[2]; r["repeat"]=int(sys.argv[3]); r["load_avg"]=open("/proc/loadavg").read().split()[0]; print(json.dumps(r))' "$line" "$cfg" "$rep" >> "$OUT"
  else
    log "FAILED: $*"
  fi
}
tb() { local cfg="$1" impl="$2"; shift 2
  local r=(--rounds "$ROUNDS"); case "$impl" in *bf16) r=(--rounds "$SLOW_ROUNDS" --warmup-batch 2);; esac
  rec "$cfg" "$PY" "$PERF_DIR/torch_baseline.py" --impl "$impl" --threads "$THREADS" --json "${r[@]}" "$@"; }
SIGLIP_TOWERS="${SIGLIP_TOWERS:-both}"
# The SigLIP 2 peer (transformers SiglipModel), rounds and warm-up as tb's.
sb() { local cfg="$1" impl="$2"; shift 2
  local r=(--rounds "$ROUNDS"); case "$impl" in *bf16) r=(--rounds "$SLOW_ROUNDS" --warmup-batch 2);; esac
  rec "$cfg" "$PY" "$ROOT/tools/siglip/bench_transformers.py" --perf-dir "$PERF_DIR" --towers "$SIGLIP_TOWERS" --impl "$impl" --threads "$THREADS" --json "${r[@]}" "$@"; }

has_ort=0; "$PY" -c "import onnxruntime" 2>/dev/null && has_ort=1
log "start: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), threads $THREADS, batch $BATCH, $REPEAT run(s) -> $OUT"
for rep in $(seq 1 "$REPEAT"); do
for cfg in $CONFIGS; do
  batch="$BATCH"
  case "$cfg" in
    vitb32-image) arch=ViT-B/32; text=(); b1=();;
    vitb32-text)  arch=ViT-B/32; text=(--text); b1=();;
    vitb16-image) arch=ViT-B/16; text=(); b1=();;
    vitl14-image) arch=ViT-L/14; text=(); b1=(); [ "$LARGE_B1" = 1 ] || b1=(--no-b1); batch="$LARGE_BATCH";;
    rn50-image)   arch=RN50; text=(); b1=();;
    siglip2-image) arch=siglip2-base-patch16-224; text=(); b1=();;
    siglip2-text)  arch=siglip2-base-patch16-224; text=(--text); b1=();;
    *) log "unknown config $cfg"; continue;;
  esac
  for p in $PRECISIONS; do
    rec "$cfg" "$CLIP_BIN" bench --arch "$arch" "${text[@]}" --batch "$batch" --threads "$THREADS" --rounds "$ROUNDS" --precision "$p" "${b1[@]}" --json
  done
  for impl in $PEERS; do
    case "$arch:$impl" in
      siglip2-*:transformers*) sb "$cfg" "$impl" --batch "$batch" "${text[@]}" "${b1[@]}"; continue;;
      siglip2-*:*) continue;;          # the OpenAI clip package has no SigLIP
      RN50:transformers*) continue;;   # no ResNet CLIP in transformers
      RN50:openai-bf16) [ "${BF16_RN50:-0}" = 1 ] || { log "RN50 openai-bf16 skipped (minutes per call on CPUs without native bf16; BF16_RN50=1 runs it)"; continue; };;
    esac
    tb "$cfg" "$impl" --arch "$arch" --batch "$batch" "${text[@]}" "${b1[@]}"
  done
  if [ "$cfg" = vitb32-image ]; then
    if [ "$has_ort" = 1 ]; then
      for impl in onnxruntime onnxruntime-int8; do
        rec "$cfg" "$PY" "$PERF_DIR/onnx_baseline.py" --impl "$impl" --batch "$batch" --threads "$THREADS" --rounds "$ROUNDS" --json
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
done
log "done"

"$PY" - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\nresults: {sys.argv[1]}\n")
tp = lambda r: r.get("images_per_s", r.get("texts_per_s"))
key = lambda r: r.get("impl", "?") + (f" {r['precision']}" if r.get("impl") == "clip-rs" else "")
med = lambda v: statistics.median(v) if v else None
# config -> impl key -> run -> record
by = {}
for r in rows:
    by.setdefault(r["config"], {}).setdefault(key(r), {})[r.get("repeat", 1)] = r
precs = []
for r in rows:
    if r.get("impl") == "clip-rs" and r["precision"] not in precs:
        precs.append(r["precision"])
runs = len({r.get("repeat", 1) for r in rows})
print("| config | impl | throughput /s | b1 ms | peak RSS MB | " + " | ".join(f"clip-rs {p}: ratio / b1 speed-up" for p in precs) + " |")
print("|" + "---|" * (5 + len(precs)))
for cfg, impls in by.items():
    for k, reps in impls.items():
        first = next(iter(reps.values()))
        ours_row = first.get("impl") == "clip-rs"
        name = f"clip-rs {first['precision']} ({first.get('kernels', '')})" if ours_row else k
        if not ours_row and first.get("towers") == "one":
            name += " [one tower]"
        if "seq_len" in first:
            name += f" (pad {first['seq_len']}" + (", ids: tokenisation not timed" if "tokenization" in first else "") + ")"
        cells = []
        for p in precs:
            ours = impls.get(f"clip-rs {p}", {})
            pairs = [(ours[i], r) for i, r in reps.items() if i in ours and tp(r)]
            if ours_row or not pairs:
                cells.append("")
                continue
            ratios = [tp(o) / tp(r) for o, r in pairs]
            cell = f"{med(ratios):.2f}x"
            if len(ratios) > 1:
                cell += f" ({min(ratios):.2f}-{max(ratios):.2f})"
            b1s = [r["b1_latency_ms"] / o["b1_latency_ms"] for o, r in pairs
                   if r.get("b1_latency_ms") and o.get("b1_latency_ms")]
            if b1s:
                cell += f" / {med(b1s):.2f}x"
            cells.append(cell)
        t = med([tp(r) for r in reps.values() if tp(r)])
        b1 = med([r["b1_latency_ms"] for r in reps.values() if r.get("b1_latency_ms")])
        rss = med([r.get("peak_rss_mb", 0) for r in reps.values()])
        print(f"| {cfg} b{first.get('batch')} | {name} | {t:.2f} | {'' if b1 is None else f'{b1:.1f}'} | "
              f"{rss:.0f} | " + " | ".join(cells) + " |")
what = f"Medians over {runs} runs; a ratio's range (min-max) follows it." if runs > 1 else "One run."
print(f"\n{what} Ratio > 1: clip-rs in that precision is faster than the peer (throughput ours / theirs;"
      " b1: their latency / ours), each ratio taken within one run.")
EOF
