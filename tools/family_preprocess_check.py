#!/usr/bin/env python3
"""Compare clip-image's Preprocess with the reference processors at several resolutions.

Not part of CI: needs Pillow 13, torch, open_clip 3.3 and transformers 5.24 installed, and the
`preprocess_dump` example of clip-image built (`cargo build --release -p clip-image --example
preprocess_dump`). For each model family configuration below and each resolution, every image of
fixtures/images/good goes through the reference (opened with PIL.Image.open, as the references
do) and through the example, and the float32 tensors are compared bit for bit.

    python tools/family_preprocess_check.py [--bin target/release/examples/preprocess_dump]
                                            [--sizes 32,224,256]
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import PIL.Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = sorted(glob.glob(os.path.join(ROOT, "fixtures", "images", "good", "*")))
IMAGES = [p for p in IMAGES if not p.endswith(".safetensors")]

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def siglip(resample):
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    def make(n):
        proc = SiglipImageProcessorPil(
            size={"height": n, "width": n},
            resample=resample,
            image_mean=[0.5] * 3,
            image_std=[0.5] * 3,
            rescale_factor=0.00392156862745098,
            do_convert_rgb=True,
        )
        return lambda img: proc(images=img, return_tensors="np")["pixel_values"][0]

    return make


def open_clip_tf(mean, std, resize_mode, interpolation, fill_color=0):
    def make(n):
        import open_clip

        tf = open_clip.image_transform(
            n,
            is_train=False,
            mean=mean,
            std=std,
            resize_mode=resize_mode,
            interpolation=interpolation,
            fill_color=fill_color,
        )
        return lambda img: tf(img).numpy()

    return make


def fmt(t):
    return ",".join(repr(float(x)) for x in t)


# name: (reference factory, preprocess_dump arguments after the resolution)
CONFIGS = {
    "clip (open_clip shortest)": (
        open_clip_tf(OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),
        ["shortest", "bicubic", "after", fmt(OPENAI_MEAN), fmt(OPENAI_STD)],
    ),
    "tiny-siglip2": (
        siglip(2),
        ["squash", "bilinear", "white-first", fmt([0.5] * 3), fmt([0.5] * 3)],
    ),
    "tiny-siglip1-spm": (
        siglip(3),
        ["squash", "bicubic", "white-first", fmt([0.5] * 3), fmt([0.5] * 3)],
    ),
    "tiny-openclip-squash": (
        open_clip_tf([0.5] * 3, [0.5] * 3, "squash", "bilinear"),
        ["squash", "bilinear", "after", fmt([0.5] * 3), fmt([0.5] * 3)],
    ),
    "tiny-openclip-longest": (
        open_clip_tf(IMAGENET_MEAN, IMAGENET_STD, "longest", "bicubic", fill_color=128),
        ["longest:128,128,128", "bicubic", "after", fmt(IMAGENET_MEAN), fmt(IMAGENET_STD)],
    ),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--bin",
        default=os.path.join(
            os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
            "release",
            "examples",
            "preprocess_dump",
        ),
    )
    ap.add_argument("--sizes", default="32,224,256")
    args = ap.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            for name, (factory, dump_args) in CONFIGS.items():
                ref = factory(n)
                out = os.path.join(tmp, f"{n}-{len(name)}-{abs(hash(name))}")
                subprocess.run([args.bin, str(n), *dump_args, out, *IMAGES], check=True,
                               stdout=subprocess.DEVNULL)
                same = 0
                for path in IMAGES:
                    base = os.path.basename(path)
                    want = np.asarray(ref(PIL.Image.open(path)), dtype=np.float32)
                    got = np.fromfile(os.path.join(out, base + ".f32"), dtype="<f4")
                    got = got.reshape(want.shape)
                    diff = got.view(np.uint32) != want.view(np.uint32)
                    if diff.any():
                        failures += 1
                        print(f"  {n:4} {name:26} {base:30} differing {int(diff.sum())} "
                              f"max |d| {float(np.abs(got - want).max())}")
                    else:
                        same += 1
                print(f"{n:4} {name:26} bit-identical {same}/{len(IMAGES)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
