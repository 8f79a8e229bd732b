#!/usr/bin/env python3
"""Random full-size CLIP checkpoints with the released models' hyper-parameters (not committed).

  make_fullsize.py --arch ViT-B/32|RN50|ViT-B/16|ViT-L/14 --out DIR [--seed N] [--images F...]

Writes DIR/<arch>.safetensors (OpenAI names, float16), DIR/<arch>.pt (torch.save state dict,
float16) and DIR/<arch>.goldens.json (4 images, 5 texts; raw float32 CPU embeddings computed by
clip.model.build_model on the saved weights, clip.clip._transform, clip.tokenize).
Hyper-parameters are those clip.model.build_model infers from OpenAI's released state dicts.
Weights are random (fixed seed), initialised like the reference's tools/make_models.py (CLIP.initialize_parameters,
perturbed norms/biases, BatchNorm calibration for ResNets) and rounded to the float16 grid.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The reference fixtures' own tools (make_models.py, make_goldens.py) live beside the fixtures.
REFERENCE = Path(os.environ.get("CLIP_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
sys.path.insert(0, str(REFERENCE / "tools"))

import torch
from safetensors.torch import save_file, load_file
import clip
from clip.model import CLIP, build_model

import make_models as mm
from make_goldens import versions

# (embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
#  context_length, vocab_size, transformer_width, transformer_heads, transformer_layers)
ARCHS = {
    "RN50": (1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12),
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "ViT-L/14": (768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12),
}
TEXTS = ["a dog", "a photo of a cat.", "caf\u00e9 \U0001F436", "",
         "a very long caption " + " ".join(f"word{i}" for i in range(90))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, choices=sorted(ARCHS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--images", nargs="*", help="default: first 4 files of images/good")
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = a.arch.replace("/", "-")
    t0 = time.time()
    torch.manual_seed(a.seed)
    model = CLIP(*ARCHS[a.arch])
    mm.perturb_(model, a.seed)
    model.float().eval()
    sd16 = mm.sd_clone(model, torch.float16)
    save_file(sd16, str(out / f"{stem}.safetensors"), metadata={"format": "pt"})
    torch.save(sd16, str(out / f"{stem}.pt"))
    del sd16

    # goldens from the saved file, through the reference loader path
    ref = build_model(load_file(str(out / f"{stem}.safetensors"))).float().eval()
    ref2 = build_model(torch.load(str(out / f"{stem}.pt"), map_location="cpu", weights_only=True)).float().eval()
    imgs = a.images or [str(p) for p in sorted((REFERENCE / "images" / "good").iterdir()) if p.is_file()][:4]
    if not imgs:
        sys.exit("make_fullsize: no images (images/good is empty); pass --images")
    from PIL import Image
    tf = clip.clip._transform(ref.visual.input_resolution)
    pixels = torch.stack([tf(Image.open(p)) for p in imgs])
    tokens = clip.tokenize(TEXTS, truncate=True)
    with torch.no_grad():
        ie, te = ref.encode_image(pixels).float(), ref.encode_text(tokens).float()
        lpi, _ = ref(pixels, tokens)
        ie2, te2 = ref2.encode_image(pixels).float(), ref2.encode_text(tokens).float()
    same = float(max((ie - ie2).abs().max(), (te - te2).abs().max()))
    v = versions()
    g = {
        "model": stem, "arch": a.arch, "hyper_parameters": list(ARCHS[a.arch][:2]) + [
            list(ARCHS[a.arch][2]) if isinstance(ARCHS[a.arch][2], tuple) else ARCHS[a.arch][2]] + list(ARCHS[a.arch][3:]),
        "seed": a.seed,
        "source": f"openai-clip {v['openai-clip']} build_model(<{stem}.safetensors>), torch {v['torch']}, CPU float32; "
                  f"clip.clip._transform({ref.visual.input_resolution}); clip.tokenize(truncate=True)",
        "resolution": ref.visual.input_resolution,
        "logit_scale": float(ref.logit_scale), "logit_scale_exp": float(ref.logit_scale.exp()),
        "texts": TEXTS, "text_tokens": tokens.tolist(), "text_embeddings": te.tolist(),
        "images": [Path(p).name for p in imgs], "image_embeddings": ie.tolist(),
        "logits_per_image": lpi.float().tolist(),
        "pt_vs_safetensors_max_abs_diff": same,
    }
    (out / f"{stem}.goldens.json").write_text(json.dumps(g, ensure_ascii=False) + "\n")
    print(json.dumps({"arch": a.arch, "out": str(out), "seconds": round(time.time() - t0, 1),
                      "params": sum(p.numel() for p in ref.parameters()),
                      "pt_vs_safetensors_max_abs_diff": same,
                      "files": {p.name: p.stat().st_size for p in sorted(out.iterdir())}}))


if __name__ == "__main__":
    main()
