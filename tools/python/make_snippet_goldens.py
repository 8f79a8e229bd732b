#!/usr/bin/env python3
"""Goldens of the README snippets (python/tests/snippets/*.py) computed by the REAL OpenAI
``clip`` package: writes fixtures/goldens/python-snippets.json, which
python/tests/test_snippets.py compares clip_rs against.

Each snippet runs unchanged (its ``import clip`` line stays ``import clip``) through
python/tests/snippet_runner.py, the same runner the test uses, with these globals:

- ``MODEL``: ``$CLIP_REFERENCE_DIR/models/tiny-vit/tiny-vit.torchscript.pt``, the tiny-vit
  weights (the same as the committed fixtures/models/tiny-vit.safetensors and as
  tiny-vit.pt) in the form of OpenAI's released archives. The snippets call
  ``clip.load(MODEL, device)`` with clip's default ``jit=False``: ``torch.jit.load`` succeeds
  and clip.load builds the eager ``clip.model.CLIP`` from the archive's state dict
  (``build_model``, then ``.float()`` on the CPU), i.e. exactly what a README user gets.
  ``tiny-vit.pt`` (a torch-zip state dict) cannot be used: with torch 2.15, ``clip.load`` of a
  state-dict file raises ``EOFError`` (its failed ``torch.jit.load`` leaves the file object at
  the end and ``torch.load`` then reads from there; see the reference NOTES.md). This script
  checks all of that before it runs anything.
- ``IMAGE`` / ``IMAGES``: committed images under fixtures/images/good (stored in the JSON as
  paths relative to fixtures/images), ``CLASSES`` / ``QUERY``: the texts in ``SNIPPETS`` below.

The snippets pick ``device = "cuda" if torch.cuda.is_available() else "cpu"``: this script
forces the CPU (``torch.cuda.is_available`` returns False) and one thread
(``torch.set_num_threads(1)``), so the output is deterministic: running it twice writes the same
bytes.

Rerun (from the repository root, with the reference venv that has openai-clip 1.0.1, torch,
torchvision and Pillow; CLIP_REFERENCE_DIR defaults to ../shared/reference)::

    /path/to/ref-venv/bin/python tools/python/make_snippet_goldens.py

JSON layout: ``{"source": ..., "versions": {...}, "model": ..., "snippets": {name: {"inputs":
{...}, "results": {var: {"dtype", "shape", "data"}}}}}``; floats are the float32 results written
as the shortest decimal that casts back to the same float32.
"""

import importlib.metadata as md
import inspect
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTS = ROOT / "python" / "tests"
IMAGES_DIR = ROOT / "fixtures" / "images"
OUT = ROOT / "fixtures" / "goldens" / "python-snippets.json"
REFERENCE = pathlib.Path(os.environ.get("CLIP_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
MODEL = REFERENCE / "models" / "tiny-vit" / "tiny-vit.torchscript.pt"
STATE_DICT = REFERENCE / "models" / "tiny-vit" / "tiny-vit.pt"

# CIFAR-100's class names (torchvision's CIFAR100(...).classes), the zero-shot example's labels.
CIFAR100_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]

ALL_GOOD = sorted(f"good/{p.name}" for p in (IMAGES_DIR / "good").iterdir() if p.is_file())

# name -> (inputs: globals besides MODEL, image paths relative to fixtures/images; result names)
SNIPPETS = {
    "usage": (
        {"IMAGE": "good/logo_rgba.png"},
        ["text", "logits_per_image", "logits_per_text", "probs"],
    ),
    "zero_shot": (
        {"IMAGE": "good/chelsea_small.bmp", "CLASSES": CIFAR100_CLASSES},
        ["text_inputs", "image_features", "text_features", "similarity", "values", "indices"],
    ),
    "semantic_search": (
        {
            "IMAGES": [
                "good/chelsea_baseline_420.jpg", "good/astronaut_progressive.jpg",
                "good/coffee_lossy.webp", "good/rocket_cmyk.jpg", "good/moon_16bit.png",
                "good/logo_rgba.png", "good/text_1bit.png", "good/coins_la.png",
            ],
            "QUERY": "a photo of a cat",
        },
        ["text", "image_features", "text_features", "scores", "values", "indices"],
    ),
    "moderation": (
        {
            "IMAGES": [
                "good/astronaut_palette_trns.png", "good/camera_gray.jpg",
                "good/chelsea_animated.gif", "good/coffee_444_exif_orient6.jpg",
                "good/hubble_portrait_rgb.png", "good/retina_panorama_1500x60.jpg",
                "good/astronaut_tall_50x1200.png", "good/tiny_7x5.png",
            ],
        },
        ["text", "probs", "unsafe", "flagged"],
    ),
    "batch": (
        {
            "IMAGES": ALL_GOOD,
            "CLASSES": [
                "a photo of a cat", "a photo of an astronaut", "a cup of coffee", "a rocket",
                "the moon", "a page of text", "a logo", "coins",
            ],
        },
        ["text", "image_features", "logits_per_image", "logits_per_text", "probs"],
    ),
}


def resolve(inputs, images_dir):
    """The snippet's globals: image paths made absolute under ``images_dir``."""
    out = dict(inputs)
    if "IMAGE" in out:
        out["IMAGE"] = str(images_dir / out["IMAGE"])
    if "IMAGES" in out:
        out["IMAGES"] = [str(images_dir / p) for p in out["IMAGES"]]
    return out


def versions():
    out = {}
    for name in ("openai-clip", "torch", "torchvision", "pillow", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    out["python"] = sys.version.split()[0]
    return out


def check_loader(clip, torch):
    """clip.load's default is jit=False; MODEL loads as the eager CLIP module (float32 on the
    CPU), with the same weights as the state dict tiny-vit.pt; clip.load of that state-dict file
    itself fails with torch 2.15 (EOFError), which is why MODEL is the TorchScript archive."""
    default = inspect.signature(clip.load).parameters["jit"].default
    assert default is False, f"clip.load's jit default is {default!r}"
    model, _ = clip.load(str(MODEL), device="cpu")
    assert type(model) is clip.model.CLIP, type(model)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    state = torch.load(STATE_DICT, map_location="cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k].to(v.dtype)), k
    try:
        clip.load(str(STATE_DICT), device="cpu")
        state_dict_loads = True
    except EOFError:
        state_dict_loads = False
    return state_dict_loads


def dumps(doc):
    """JSON with one line per input / result variable (readable diffs, small file)."""
    def compact(x):
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    for key in ("source", "versions", "model"):
        lines.append(f"{compact(key)}: {compact(doc[key])},")
    lines.append('"snippets": {')
    for i, (name, snippet) in enumerate(doc["snippets"].items()):
        lines.append(f" {compact(name)}: {{")
        lines.append('  "inputs": {')
        items = list(snippet["inputs"].items())
        for j, (k, v) in enumerate(items):
            lines.append(f"   {compact(k)}: {compact(v)}{',' if j < len(items) - 1 else ''}")
        lines.append("  },")
        lines.append('  "results": {')
        items = list(snippet["results"].items())
        for j, (k, v) in enumerate(items):
            lines.append(f"   {compact(k)}: {compact(v)}{',' if j < len(items) - 1 else ''}")
        lines.append("  }")
        lines.append(" }" + ("," if i < len(doc["snippets"]) - 1 else ""))
    lines.append("}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(doc))
    return text


def main():
    import numpy as np
    import torch

    import clip

    torch.cuda.is_available = lambda: False  # the snippets' device line picks the CPU
    torch.set_num_threads(1)
    sys.path.insert(0, str(TESTS))
    import snippet_runner

    if not MODEL.is_file():
        sys.exit(f"{MODEL} not found (set CLIP_REFERENCE_DIR)")
    state_dict_loads = check_loader(clip, torch)

    snippets = {}
    for name, (inputs, results) in SNIPPETS.items():
        scope = snippet_runner.run(TESTS / "snippets" / f"{name}.py", "clip",
                                   {"MODEL": str(MODEL), **resolve(inputs, IMAGES_DIR)})
        snippets[name] = {
            "inputs": inputs,
            "results": {r: snippet_runner.export(scope[r]) for r in results},
        }
        print(f"{name}: {', '.join(results)}", file=sys.stderr)

    # Cross-check with goldens/tiny-vit.json (make_goldens.py): same model, same images.
    golden = json.loads((ROOT / "fixtures" / "goldens" / "tiny-vit.json").read_text())
    names = [p.split("/", 1)[1] for p in SNIPPETS["batch"][0]["IMAGES"]]
    if names == golden["images"]:
        ours = np.array(snippets["batch"]["results"]["image_features"]["data"], dtype=np.float32)
        theirs = np.array(golden["image_embeddings"], dtype=np.float32)
        print(f"batch image_features vs tiny-vit.json: max abs diff "
              f"{float(np.abs(ours - theirs).max()):.3g}", file=sys.stderr)

    v = versions()
    doc = {
        "source": (
            f"tools/python/make_snippet_goldens.py: OpenAI clip {v['openai-clip']} on torch "
            f"{v['torch']} (torchvision {v['torchvision']}, Pillow {v['pillow']}, numpy "
            f"{v['numpy']}, Python {v['python']}), CPU float32, torch.set_num_threads(1), "
            "torch.cuda.is_available forced False; each python/tests/snippets/<name>.py run "
            "unchanged (`import clip`) by python/tests/snippet_runner.py with MODEL = "
            "<CLIP_REFERENCE_DIR>/models/tiny-vit/tiny-vit.torchscript.pt (OpenAI's archive "
            "format; same weights as fixtures/models/tiny-vit.safetensors, checked) loaded by "
            "the snippet's clip.load(MODEL, device) with the default jit=False (the eager "
            "clip.model.CLIP built from the archive's state dict, float32); "
            + ("" if state_dict_loads else "clip.load of the state-dict tiny-vit.pt raises "
               "EOFError with this torch, hence the archive; ")
            + "images from "
            "fixtures/images (inputs), results exported as float32 (shortest round-trip "
            "decimals) / int lists"
        ),
        "versions": v,
        "model": "tiny-vit (reference: models/tiny-vit/tiny-vit.torchscript.pt; clip_rs: the same weights in fixtures/models/tiny-vit.safetensors)",
        "snippets": snippets,
    }
    OUT.write_text(dumps(doc), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
