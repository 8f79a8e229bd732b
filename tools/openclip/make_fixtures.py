#!/usr/bin/env python3
"""Tiny random open_clip fixtures (hub-folder layout) and their goldens, made with the reference `open_clip`.

Run (from anywhere; paths are taken from this file's location), after tools/siglip/make_fixtures.py
(which writes the shared corpus fixtures/tokenizer/multilingual.jsonl):

    /path/to/ref-venv/bin/python tools/openclip/make_fixtures.py

Pinned versions: open_clip_torch 3.3.0, torch 2.15.0, torchvision 0.29.2, Pillow 13.0.0, numpy 2.4.6
(see tools/siglip/README.md).  Deterministic: fixed seeds, every weight on the float16 grid.

Writes (relative to the repository root):
  fixtures/models/tiny-openclip-squash/    open_clip_config.json {"model_cfg", "preprocess_cfg"} +
        open_clip_model.safetensors (float16), as open_clip's push_to_hf_hub writes them.
        GELU, vision pool_type "avg" + final_ln_after_pool, text pool_type "argmax",
        preprocess resize_mode "squash", bilinear, mean/std 0.5.
  fixtures/models/tiny-openclip-longest/   QuickGELU, LayerScale (ls_init_value, values randomised) in both
        towers, text no_causal_mask + proj_bias (nn.Linear projection) + pool_type "last",
        preprocess resize_mode "longest" with fill_color 128, bicubic, non-CLIP mean/std.
  fixtures/preprocess/<model>/<image>.npy  float32 [3,32,32]: the preprocess transform returned by
        open_clip.create_model_and_transforms("local-dir:<folder>") for every image in fixtures/images/good
  fixtures/goldens/<model>.json            embeddings/logits goldens (schema of tiny-vit.json + extras)
  fixtures/goldens/<model>.tokens.jsonl    open_clip.get_tokenizer("local-dir:<folder>") ids for the corpus
Stages: --stage models|pixels|goldens|tokens|all (default all).
"""
import argparse
import importlib.metadata as md
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
MODELS = FIX / "models"
IMAGES = FIX / "images" / "good"

torch.set_num_threads(1)

CONFIGS = {
    "tiny-openclip-squash": {
        "seed": 3001,
        "logit_scale": math.log(30.0),
        "model_cfg": {
            "embed_dim": 16,
            "quick_gelu": False,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8,
                           "pool_type": "avg", "final_ln_after_pool": True},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2,
                         "pool_type": "argmax"},
        },
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
                           "resize_mode": "squash"},
    },
    "tiny-openclip-longest": {
        "seed": 3002,
        "logit_scale": math.log(70.0),
        "model_cfg": {
            "embed_dim": 16,
            "quick_gelu": True,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8,
                           "ls_init_value": 0.1},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2,
                         "ls_init_value": 0.1, "no_causal_mask": True, "proj_bias": True, "pool_type": "last"},
        },
        "preprocess_cfg": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                           "interpolation": "bicubic", "resize_mode": "longest", "fill_color": 128},
    },
}

TEXTS = [
    "ein Hund",
    "a photo of a cat",
    "a photo of a dog",
    "café crème brûlée naïve résumé",
    "一只猫坐在桌子上",
    "🐶🐱 emoji party 🎉👍🏽",
    "",
    "A RED Car parked on the street at night",
    "a very long caption " + " ".join(f"word{i} and more" for i in range(40)) + " the end",
]


def versions():
    out = {}
    for p in ("torch", "open-clip-torch", "torchvision", "safetensors", "pillow", "numpy", "ftfy"):
        try:
            out[p] = md.version(p)
        except Exception:
            out[p] = "?"
    return out


def image_files():
    return sorted(p.name for p in IMAGES.iterdir() if p.is_file() and not p.name.startswith("."))


def f16_grid_(model):
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def randomise_(model, seed, logit_scale):
    """Every parameter non-trivial: LayerNorm weight 1+N(0,.1), bias N(0,.1); other biases N(0,.05);
    LayerScale gamma 0.1+N(0,.05) per channel; logit_scale fixed (not the init log(1/0.07))."""
    g = torch.Generator().manual_seed(seed + 7)

    def rn(shape, s):
        return torch.randn(shape, generator=g) * s

    with torch.no_grad():
        done = set()
        for _, m in model.named_modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1.0 + rn(m.weight.shape, 0.1))
                m.bias.copy_(rn(m.bias.shape, 0.1))
                done.update([id(m.weight), id(m.bias)])
        for name, p in model.named_parameters():
            if id(p) in done or name == "logit_scale":
                continue
            if name.endswith(".gamma"):
                p.copy_(0.1 + rn(p.shape, 0.05))
            elif name.endswith("bias"):
                p.copy_(rn(p.shape, 0.05))
            elif p.numel() > 1 and float(p.std()) == 0.0:
                p.copy_(rn(p.shape, 0.02))
        model.logit_scale.fill_(logit_scale)
    f16_grid_(model)


def make_model(name):
    import open_clip
    from safetensors.torch import save_file
    c = CONFIGS[name]
    d = MODELS / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    torch.manual_seed(c["seed"])
    mc = c["model_cfg"]
    model = open_clip.model.CLIP(embed_dim=mc["embed_dim"], vision_cfg=mc["vision_cfg"], text_cfg=mc["text_cfg"],
                                 quick_gelu=mc["quick_gelu"])
    randomise_(model, c["seed"], c["logit_scale"])
    model.eval()
    sd16 = {k: v.detach().clone().contiguous().half() for k, v in model.state_dict().items()}
    save_file(sd16, str(d / "open_clip_model.safetensors"))  # as open_clip.push_to_hf_hub.save_for_hf
    cfg = {"model_cfg": mc, "preprocess_cfg": c["preprocess_cfg"]}
    (d / "open_clip_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    # verify: the folder loads to the same model
    m, _, _ = open_clip.create_model_and_transforms("local-dir:" + str(d))
    m.eval()
    g = torch.Generator().manual_seed(5)
    img = torch.randn(2, 3, 32, 32, generator=g)
    txt = torch.randint(1, 49406, (2, 32), generator=g)
    with torch.no_grad():
        diff = max(float((m.encode_image(img) - model.encode_image(img)).abs().max()),
                   float((m.encode_text(txt) - model.encode_text(txt)).abs().max()))
    assert diff == 0.0, diff
    acts = sorted({type(x).__name__ for x in m.modules() if "GELU" in type(x).__name__})
    return {"keys": len(sd16), "activations": acts, "reload max abs diff": diff,
            "size": (d / "open_clip_model.safetensors").stat().st_size}


def load_ref(name):
    import open_clip
    d = "local-dir:" + str(MODELS / name)
    m, _, pre = open_clip.create_model_and_transforms(d)
    tok = open_clip.get_tokenizer(d)
    return m.eval(), pre, tok


def pixels(name, pre):
    out = FIX / "preprocess" / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names, arrs, index = image_files(), [], []
    for n in names:
        with Image.open(IMAGES / n) as im:
            mode = im.mode
            pv = pre(im).numpy()
        pv = np.ascontiguousarray(pv, dtype=np.float32)
        assert pv.shape == (3, 32, 32), pv.shape  # noqa
        np.save(out / f"{n}.npy", pv)
        arrs.append(pv)
        index.append({"image": n, "mode": mode, "file": f"{n}.npy", "shape": list(pv.shape), "dtype": "float32"})
    (out / "index.json").write_text(json.dumps({
        "model": name,
        "made_with": "open_clip.create_model_and_transforms('local-dir:<folder>')[2] (preprocess_val) applied "
                     "to PIL.Image.open(file)",
        "transform": repr(pre),
        "images": index}, indent=1, ensure_ascii=False) + "\n")
    return names, np.stack(arrs)


def tolist(t):
    return [[float(v) for v in row] for row in t.detach().float().cpu()]


def l2n(x):
    return x / x.norm(dim=-1, keepdim=True)


def preprocess_desc(name, pre):
    pc = CONFIGS[name]["preprocess_cfg"]
    sz = CONFIGS[name]["model_cfg"]["vision_cfg"]["image_size"]
    return {"size": [sz, sz], "resize_mode": pc["resize_mode"], "interpolation": pc["interpolation"],
            "mean": pc["mean"], "std": pc["std"], "fill_color": pc.get("fill_color", 0),
            "transform": repr(pre),
            "rgb_conversion": "after resize (and after pad for 'longest'): PIL convert('RGB'), no alpha compositing"}


def goldens(name, model, pre, tok, names, pix, v, out_path=None, folder_desc=None, resolution=32):
    ids = tok(TEXTS)
    px = torch.from_numpy(pix)
    with torch.no_grad():
        img = model.encode_image(px).float()
        txt = model.encode_text(ids).float()
        lpi = model.logit_scale.exp() * l2n(img) @ l2n(txt).T
        fi, ft, fs = model(px, ids)  # forward: normalised features + logit_scale.exp()
    assert float((fs * fi @ ft.T - lpi).abs().max()) < 1e-4
    src = (f"open_clip {v['open-clip-torch']} on torch {v['torch']}, CPU float32: "
           f"create_model_and_transforms('local-dir:{folder_desc or 'fixtures/models/' + name}') (reads open_clip_config.json + "
           f"open_clip_model.safetensors) and its preprocess_val (torchvision {v['torchvision']}, Pillow "
           f"{v['pillow']}) on PIL.Image.open(file); tokens = open_clip.get_tokenizer('local-dir:...')(texts) "
           f"(SimpleTokenizer, context_length {CONFIGS[name]['model_cfg']['text_cfg']['context_length']}, pad 0, "
           f"truncation keeps <end_of_text> last); embeddings = encode_image / encode_text, raw, not normalised; "
           f"logits_per_image = logit_scale.exp() * norm(img) @ norm(txt).T; probs_per_image = softmax over texts")
    ls = float(model.logit_scale.detach())
    ctx = CONFIGS[name]["model_cfg"]["text_cfg"]["context_length"]
    obj = {
        "model": name,
        "source": src,
        "resolution": resolution,
        "logit_scale": ls,
        "logit_scale_exp": float(torch.tensor(ls).exp()),
        "embed_dim": int(img.shape[1]),
        "texts": TEXTS,
        "text_tokens": [[int(x) for x in row] for row in ids],
        "text_embeddings": tolist(txt),
        "images": names,
        "image_embeddings": tolist(img),
        "logits_per_image": tolist(lpi),
        "family": "clip",
        "logit_bias": 0.0,
        "probs_per_image": tolist(lpi.softmax(dim=-1)),
        "context_length": ctx,
        "pad_id": 0,
        "preprocess": preprocess_desc(name, pre),
    }
    if out_path is None:
        (FIX / "goldens").mkdir(parents=True, exist_ok=True)
        out_path = FIX / "goldens" / f"{name}.json"
    out_path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def token_goldens(name, tok):
    corpus = FIX / "tokenizer" / "multilingual.jsonl"
    lines = [json.loads(x)["text"] for x in corpus.read_text(encoding="utf-8").splitlines()]
    ctx = CONFIGS[name]["model_cfg"]["text_cfg"]["context_length"]
    with open(FIX / "goldens" / f"{name}.tokens.jsonl", "w", encoding="utf-8") as f:
        for t in lines:
            ids = tok([t])[0].tolist()
            full = [tok.sot_token_id] + tok.encode(t) + [tok.eot_token_id]
            assert len(ids) == ctx
            f.write(json.dumps({"text": t, "ids": [int(x) for x in ids], "untruncated_len": len(full)},
                               ensure_ascii=False) + "\n")
    return len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", default="all", choices=["models", "pixels", "goldens", "tokens", "all"])
    args = ap.parse_args()
    v = versions()
    report = {"versions": v}
    for name in CONFIGS:
        if args.stage in ("models", "all"):
            report[name + " model"] = make_model(name)
        model, pre, tok = load_ref(name)
        report[name + " transform"] = repr(pre)
        if args.stage in ("pixels", "goldens", "all"):
            imgs, pix = pixels(name, pre)
        if args.stage in ("goldens", "all"):
            goldens(name, model, pre, tok, imgs, pix, v)
        if args.stage in ("tokens", "all"):
            report[name + " token lines"] = token_goldens(name, tok)
    print(json.dumps(report, indent=1, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
