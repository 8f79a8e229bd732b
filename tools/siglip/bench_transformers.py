#!/usr/bin/env python3
"""CPU speed of Hugging Face transformers' SiglipModel with RANDOM weights of SigLIP 2 base.

The benchmark peer of `clip bench --arch siglip2-base-patch16-224` (run by tools/bench_peers.sh,
configurations siglip2-image / siglip2-text). Measured exactly as shared/perf/torch_baseline.py
measures its peers, with its helpers (shared/perf/common.py): threads, one warm-up call, the median
of --rounds calls on the whole batch, b1 latency = median of max(rounds, 3) batch-1 calls after a
batch-1 warm-up, peak RSS = VmHWM reset after the model is built.

  python tools/siglip/bench_transformers.py --impl transformers --batch 32 --threads 2 --rounds 3 --json
  python tools/siglip/bench_transformers.py --impl transformers --text --batch 32 --threads 2 --rounds 3 --json

Model: transformers SiglipModel(SiglipConfig(...)) equal to google/siglip2-base-patch16-224's config
(both towers: 768 wide, 12 layers, 12 heads, MLP 3072, gelu_pytorch_tanh, LayerNorm eps 1e-6;
vision 224 px, patch 16, attention-probe head; text 64 positions, vocab 256000, last-token pool +
linear head), random weights (seed 0; no download, no hub). Both towers are resident, as a user of
SiglipModel has them (torch_baseline.py does the same for CLIPModel); --towers one builds only the
measured one (SiglipVisionModel / SiglipTextModel, the same computation), as `clip bench` does.

--impl transformers       float32
--impl transformers-bf16  bfloat16. --bf16 weights (default): weights and pixels cast to bfloat16,
                          which is what torch_baseline.py's transformers-bf16 peer does;
                          --bf16 autocast: float32 model under torch.autocast("cpu", bfloat16),
                          what torch_baseline.py's openai-bf16 peer does.
Image input: random [B,3,224,224] float tensor (torch.randn, preprocessing not timed);
get_image_features(pixel_values).
Text input: the B captions of common.CAPTIONS (cycled). There is no Gemma tokenizer offline, so each
caption becomes random ids in [5, 256000) of its Gemma-like length (one token per word, then <eos>=1),
right-padded with <pad>=0 to 64 (padding="max_length", as the model card prescribes; input_ids
only, no attention_mask, as the model card and the release's tokenizer give). The ids are made
before timing; the timed call builds the id tensor and runs get_text_features, so tokenisation is
NOT timed here while `clip bench` times its (CLIP BPE) tokenisation to 64 tokens as part of the
call (well under 1% of a 64-token text forward). The record says so: "tokenization".
Every call costs the same whatever the caption lengths: SigLIP always runs all 64 positions.
Prints one JSON line (the torch_baseline.py fields plus load_s, towers, bf16, seq_len for text).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of tools/ and the read-only shared/perf

ARCH = "siglip2-base-patch16-224"
CONTEXT = 64
PAD_ID, EOS_ID, FIRST_ORDINARY_ID = 0, 1, 5  # Gemma: <pad>=0 <eos>=1 <bos>=2 <unk>=3 <mask>=4
# google/siglip2-base-patch16-224's config.json (model_type "siglip"; all but vocab_size are the
# SiglipConfig defaults, spelled out here so a change of transformers' defaults cannot move them).
TEXT_CFG = dict(vocab_size=256000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=CONTEXT, hidden_act="gelu_pytorch_tanh",
                layer_norm_eps=1e-6, attention_dropout=0.0, projection_size=768)
# (The release's text_config keeps SiglipTextConfig's legacy pad/bos/eos ids, unused by the forward;
# the ids fed here follow Gemma's tokenizer: <pad>=0, <eos>=1.)
VISION_CFG = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  num_channels=3, image_size=224, patch_size=16, hidden_act="gelu_pytorch_tanh",
                  layer_norm_eps=1e-6, attention_dropout=0.0)


def perf_dir(arg):
    """shared/perf: --perf-dir, else $PERF_DIR, else ../shared/perf next to the repository."""
    for d in (arg, os.environ.get("PERF_DIR"), Path(__file__).resolve().parents[2].parent / "shared" / "perf"):
        if d and (Path(d) / "common.py").is_file():
            return str(Path(d).resolve())
    raise SystemExit("bench_transformers: no shared/perf/common.py (pass --perf-dir or set PERF_DIR)")


def random_ids(captions, seed=0):
    """Gemma-like ids of each caption (random ordinary ids, one per word, then <eos>), padded to 64."""
    import random

    rng = random.Random(seed)
    out, lens = [], []
    for c in captions:
        ids = [rng.randrange(FIRST_ORDINARY_ID, TEXT_CFG["vocab_size"]) for _ in c.split()][:CONTEXT - 1]
        ids.append(EOS_ID)
        lens.append(len(ids))
        out.append(ids + [PAD_ID] * (CONTEXT - len(ids)))
    return out, lens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", default="transformers", choices=["transformers", "transformers-bf16"])
    ap.add_argument("--arch", default=ARCH, choices=[ARCH], help="(only SigLIP 2 base patch16-224)")
    ap.add_argument("--text", action="store_true", help="time the text tower instead of the image tower")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup-batch", type=int, default=0,
                    help="warm up with this batch instead of --batch (for configurations taking minutes)")
    ap.add_argument("--no-b1", action="store_true", help="skip the batch-1 latency (b1_latency_ms: null)")
    ap.add_argument("--bf16", default="weights", choices=["weights", "autocast"],
                    help="how transformers-bf16 runs: bfloat16 weights+inputs (default, as torch_baseline.py's "
                         "transformers-bf16) or float32 weights under torch.autocast (as its openai-bf16)")
    ap.add_argument("--towers", default="both", choices=["both", "one"],
                    help="both: SiglipModel (default, as the CLIP peers); one: only the measured tower")
    ap.add_argument("--perf-dir", default=None, help="shared/perf (default: $PERF_DIR, else ../shared/perf)")
    ap.add_argument("--json", action="store_true", help="(output is always one JSON line)")
    a = ap.parse_args()

    sys.path.insert(0, perf_dir(a.perf_dir))
    import common  # noqa: E402

    common.setup_threads(a.threads)
    t_import = time.perf_counter()
    import torch
    from transformers import SiglipConfig, SiglipModel, SiglipTextModel, SiglipVisionModel

    import_s = time.perf_counter() - t_import
    common.torch_threads(a.threads)

    t_load = time.perf_counter()
    torch.manual_seed(0)
    cfg = SiglipConfig(text_config=TEXT_CFG, vision_config=VISION_CFG)
    if a.towers == "both":
        model = SiglipModel(cfg).eval()
    elif a.text:
        model = SiglipTextModel(cfg.text_config).eval()
    else:
        model = SiglipVisionModel(cfg.vision_config).eval()
    bf16 = a.impl.endswith("bf16")
    cast = bf16 and a.bf16 == "weights"
    autocast = bf16 and a.bf16 == "autocast"
    if cast:
        model = model.to(torch.bfloat16)
    load_s = time.perf_counter() - t_load
    extra = {"attn_implementation": getattr(model.config, "_attn_implementation", None)}

    def pooled(y):
        return y if torch.is_tensor(y) else y.pooler_output

    def encode(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if a.text:
                ids = torch.tensor(x, dtype=torch.long)
                y = (model.get_text_features(input_ids=ids) if a.towers == "both"
                     else model(input_ids=ids))
            else:
                y = (model.get_image_features(pixel_values=x) if a.towers == "both"
                     else model(pixel_values=x))
        return pooled(y).float()

    if a.text:
        xb, lens = random_ids(common.captions(a.batch))
        x1 = xb[:1]
        xw = random_ids(common.captions(a.warmup_batch))[0] if a.warmup_batch else None
        extra.update(seq_len=CONTEXT, caption_tokens_mean=round(sum(lens) / len(lens), 2),
                     b1_caption_tokens=lens[0],
                     tokenization="not timed: random ids (Gemma-like lengths, <eos>, <pad> to 64)")
    else:
        res = VISION_CFG["image_size"]
        xb = torch.randn(a.batch, 3, res, res).to(torch.bfloat16 if cast else torch.float32)
        x1 = xb[:1].clone()
        xw = xb[:a.warmup_batch].clone() if a.warmup_batch else None

    def fn(x):
        with torch.inference_mode():
            return float(encode(x).sum())

    build_peak = common.peak_rss_mb()
    reset_ok = common.reset_peak_rss()
    tb, t1, rb, r1 = common.bench(fn, xb, x1, a.rounds, b1=not a.no_b1, x_warm=xw)
    rec = {"impl": a.impl, "arch": a.arch, "tower": "text" if a.text else "image", "batch": a.batch,
           "threads": a.threads}
    rec["texts_per_s" if a.text else "images_per_s"] = round(a.batch / tb, 3)
    rec["b1_latency_ms"] = (round(t1 * 1000, 2) if t1 is not None else None)
    rec["peak_rss_mb"] = round(common.peak_rss_mb(), 1)
    rec["build_peak_rss_mb"] = round(build_peak, 1)
    rec["peak_reset"] = reset_ok
    rec["weights_mb"] = round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 1)
    rec["load_s"] = round(load_s, 3)
    rec["import_s"] = round(import_s, 3)
    rec["towers"] = a.towers
    if bf16:
        rec["bf16"] = a.bf16
    rec["rounds"] = a.rounds
    rec["warmup_batch"] = a.warmup_batch or a.batch
    rec["round_s"] = [round(x, 4) for x in rb]
    rec["b1_round_ms"] = [round(x * 1000, 2) for x in r1]
    rec["torch"] = torch.__version__
    rec["transformers"] = sys.modules["transformers"].__version__
    rec.update(extra)
    common.emit(rec)


if __name__ == "__main__":
    main()
