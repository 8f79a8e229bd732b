#!/usr/bin/env python3
"""Random full-size open_clip ViT-B-32-256 (DataComp release layout) folder + goldens.

NOT run in CI and never committed: ~300 MB (float16).  Use it for a parity check at real size:

    /path/to/ref-venv/bin/python tools/openclip/make_fullsize.py --out /some/dir

Writes DIR/ViT-B-32-256-datacomp-random/ as laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K is laid out
for open_clip ("local-dir:" / "hf-hub:" loading): open_clip_config.json {"model_cfg": open_clip's own
ViT-B-32-256 config, "preprocess_cfg": the datacomp_s34b_b86k pretrained cfg (OpenAI mean/std, bicubic,
resize_mode shortest)} + open_clip_model.safetensors (float16), and DIR/ViT-B-32-256-datacomp-random.json:
goldens in the schema of fixtures/goldens/tiny-openclip-squash.json.  Weights: fixed seed, random,
LayerNorms/biases randomised, logit_scale ln(100).
"""
import argparse
import importlib.metadata as md
import json
import math
import shutil
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of tools/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def main():
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg
    from safetensors.torch import save_file
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    name = "ViT-B-32-256-datacomp-random"
    d = args.out / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.manual_seed(5001)
    model_cfg = open_clip.get_model_config("ViT-B-32-256")
    pc = get_pretrained_cfg("ViT-B-32-256", "datacomp_s34b_b86k")
    preprocess_cfg = {"mean": list(pc["mean"]), "std": list(pc["std"]), "interpolation": pc["interpolation"],
                      "resize_mode": pc["resize_mode"]}
    model = open_clip.model.CLIP(embed_dim=model_cfg["embed_dim"], vision_cfg=model_cfg["vision_cfg"],
                                 text_cfg=model_cfg["text_cfg"], quick_gelu=model_cfg.get("quick_gelu", False))
    mf.randomise_(model, 5001, math.log(100.0))
    sd16 = {k: v.detach().clone().contiguous().half() for k, v in model.state_dict().items()}
    save_file(sd16, str(d / "open_clip_model.safetensors"))
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg},
                                                        indent=2) + "\n")
    del model, sd16
    m, _, pre = open_clip.create_model_and_transforms("local-dir:" + str(d))
    tok = open_clip.get_tokenizer("local-dir:" + str(d))
    m.eval()
    names = mf.image_files()
    pix = []
    for n in names:
        with Image.open(mf.IMAGES / n) as im:
            pix.append(pre(im).numpy())
    pix = np.stack(pix).astype(np.float32)
    # reuse the tiny goldens writer with this folder's settings
    mf.CONFIGS[name] = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    out_json = args.out / f"{name}.json"
    mf.goldens(name, m, pre, tok, names, pix, {p: md.version(q) for p, q in [
        ("torch", "torch"), ("open-clip-torch", "open-clip-torch"), ("torchvision", "torchvision"),
        ("pillow", "pillow")]}, out_path=out_json, folder_desc=f"<out>/{name}",
        resolution=model_cfg["vision_cfg"]["image_size"])
    print(json.dumps({"folder": str(d), "goldens": str(out_json),
                      "files": {p.name: p.stat().st_size for p in sorted(d.iterdir())}}, indent=1))


if __name__ == "__main__":
    main()
