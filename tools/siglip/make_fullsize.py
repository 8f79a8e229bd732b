#!/usr/bin/env python3
"""Random full-size SigLIP 2 (google/siglip2-base-patch16-224 hyper-parameters) folder + goldens.

NOT run in CI and never committed: ~1.5 GB of float32 weights.  Use it for a parity check at real size:

    /path/to/ref-venv/bin/python tools/siglip/make_fixtures.py        # first: the tiny tokenizer
    /path/to/ref-venv/bin/python tools/siglip/make_fullsize.py --out /some/dir

Writes DIR/siglip2-base-patch16-224-random/ laid out like the hub release (config.json with only
vocab_size 256000 under text_config, everything else the transformers SiglipConfig defaults = the
release's hyper-parameters: 768 wide, 12 layers, 12 heads, MLP 3072, patch 16, 224 px, 64 tokens,
gelu_pytorch_tanh, eps 1e-6; model.safetensors float32 with values on the float16 grid;
preprocessor_config.json with 224x224 bilinear), and DIR/siglip2-base-patch16-224-random.json: goldens in
the schema of fixtures/goldens/tiny-siglip2.json.  The real 256k Gemma vocabulary cannot be downloaded
here, so the tokenizer files are the tiny trained ones (ids < 2000; embedding rows above are random and
unused).  Weights: fixed seed, random, LayerNorms/biases randomised, logit_scale ln(16), logit_bias -2.5.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of tools/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    name = "siglip2-base-patch16-224-random"
    d = args.out / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    tiny = mf.MODELS / "tiny-siglip2"
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny / f, d / f)
    from transformers import SiglipConfig, SiglipModel
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.manual_seed(4001)
    cfg = SiglipConfig(text_config=dict(vocab_size=256000), vision_config=dict())
    model = SiglipModel(cfg).eval()
    mf.randomise_(model, 4001, *mf.LOGIT["tiny-siglip2"])
    model.config.architectures = ["SiglipModel"]
    model.save_pretrained(str(d), safe_serialization=True)
    gc = d / "generation_config.json"
    if gc.exists():
        gc.unlink()
    mf.write_release_config(d / "config.json", model.config)
    pp = mf.preprocessor_cfg(2, True)
    pp["size"] = {"height": 224, "width": 224}
    mf.write_json(d / "preprocessor_config.json", pp)
    del model
    v = mf.versions()
    model, proc = mf.load_ref(name, folder=d)
    names, pix = mf.pixels(name, proc, save=False, size=224)
    mf.goldens(name, model, proc, names, pix, v, out_path=args.out / f"{name}.json",
               folder_desc=f"<out>/{name}", resolution=224)
    print(json.dumps({"folder": str(d), "goldens": str(args.out / f"{name}.json"),
                      "files": {p.name: p.stat().st_size for p in sorted(d.iterdir())}}, indent=1))


if __name__ == "__main__":
    main()
