#!/usr/bin/env python3
"""Tiny random SigLIP fixtures and their goldens, made with the reference `transformers`.

Run (from anywhere; paths are taken from this file's location):

    /path/to/ref-venv/bin/python tools/siglip/make_fixtures.py

The reference venv holds the pinned versions listed in tools/siglip/README.md
(torch 2.15.0, transformers 5.24.0, tokenizers 0.23.3, sentencepiece 0.2.3, Pillow 13.0.0, numpy 2.4.6).
Deterministic: fixed seeds, every weight on the float16 grid, single-threaded tokenizer training.

Writes (relative to the repository root):
  fixtures/tokenizer/multilingual.jsonl          token-golden corpus ({"text": ...} per line)
  fixtures/models/tiny-siglip2/                  SiglipModel (model_type "siglip") laid out like
        google/siglip2-base-patch16-224: config.json, model.safetensors, preprocessor_config.json,
        tokenizer.json (BPE+byte fallback, Gemma kind, trained here), tokenizer_config.json,
        special_tokens_map.json
  fixtures/models/tiny-siglip1-spm/              SiglipModel laid out like google/siglip-base-patch16-224:
        config.json, model.safetensors, preprocessor_config.json, spiece.model (sentencepiece unigram,
        trained here), tokenizer_config.json, special_tokens_map.json; NO tokenizer.json
  fixtures/preprocess/<model>/<image>.npy        float32 [3,32,32] pixel_values of the folder's own
        processor (PIL backend) for every image in fixtures/images/good
  fixtures/goldens/<model>.json                  embeddings/logits goldens (schema of tiny-vit.json + extras)
  fixtures/goldens/<model>.tokens.jsonl          token ids of the folder's tokenizer for the corpus
Stages: --stage models|pixels|goldens|tokens|all (default all; later stages need the models).
"""
import argparse
import importlib.metadata as md
import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

sys.dont_write_bytecode = True  # keep __pycache__ out of tools/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import MULTILINGUAL, TRAIN  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
MODELS = FIX / "models"
IMAGES = FIX / "images" / "good"

torch.set_num_threads(1)

CONTEXT = 64
SEEDS = {"tiny-siglip2": 2001, "tiny-siglip1-spm": 2002}
# Stored logit_scale/logit_bias: not the init values (log(10) / -10 in HF init), nonzero bias.
LOGIT = {"tiny-siglip2": (math.log(16.0), -2.5), "tiny-siglip1-spm": (math.log(12.0), 1.75)}

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

TEXT_CFG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=CONTEXT, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
VISION_CFG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8, num_channels=3, hidden_act="gelu_pytorch_tanh",
                  layer_norm_eps=1e-6)


def versions():
    out = {}
    for p in ("torch", "transformers", "tokenizers", "sentencepiece", "safetensors", "pillow", "numpy"):
        try:
            out[p] = md.version(p)
        except Exception:
            out[p] = "?"
    return out


def image_files():
    return sorted(p.name for p in IMAGES.iterdir() if p.is_file() and not p.name.startswith("."))


# ---------------------------------------------------------------- corpus
def write_corpus():
    d = FIX / "tokenizer"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "multilingual.jsonl", "w", encoding="utf-8") as f:
        for t in MULTILINGUAL:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")


def train_lines():
    # the training text plus the corpus (so most of its words have merges), repeated for counts
    return (TRAIN * 3) + MULTILINGUAL[:60]


# ---------------------------------------------------------------- tokenizers
def bpe_train(lines, vocab_size, n_alphabet, reserved):
    """A small deterministic BPE trainer (the `tokenizers` BpeTrainer breaks ties in hash order, so its
    output changes from run to run).  Words are "▁"-prefixed pieces of the normalized text; the most
    frequent pair is merged, ties broken by the pair's text.  Characters outside the n_alphabet most
    frequent ones are left to byte fallback."""
    from collections import Counter
    words = Counter()
    for line in lines:
        t = line.replace(" ", "\u2581")
        piece = ""
        for ch in t:
            if ch == "\u2581" and piece:
                words[piece] += 1
                piece = ""
            piece += ch
        if piece:
            words[piece] += 1
    chars = Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
    alphabet = [ch for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:n_alphabet]]
    vocab = {tok: i for i, tok in enumerate(reserved)}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    known = set(alphabet)
    segs = {w: [ch for ch in w] for w in words}
    merges = []
    while len(vocab) < vocab_size:
        pairs = Counter()
        for w, c in words.items():
            sy = segs[w]
            for a, b in zip(sy, sy[1:]):
                if a in vocab and b in vocab and (len(a) > 1 or a in known) and (len(b) > 1 or b in known):
                    pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append((a, b))
        vocab.setdefault(a + b, len(vocab))
        for w in words:
            sy = segs[w]
            i, out = 0, []
            while i < len(sy):
                if i + 1 < len(sy) and sy[i] == a and sy[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sy[i])
                    i += 1
            segs[w] = out
    return vocab, merges


def train_gemma_kind(path):
    """BPE with byte fallback like Gemma's tokenizer.json (which SigLIP 2 uses): ids <pad>=0 <eos>=1
    <bos>=2 <unk>=3 <mask>=4, then the 256 byte tokens <0x00>..<0xFF>, then characters and merges;
    normalizer Replace(" ", "▁") only (Gemma's: no lowercasing; the SigLIP 2 conversion took Gemma's
    tokenizer.json as is, so lowercasing is left to the caller, as the model card says, and
    tokenizer_config's "do_lower_case": true is not applied by transformers' GemmaTokenizer), no
    pre-tokenizer, and a post-processor appending <eos> (add_eos_token=True, add_bos_token=False)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    vocab, merges = bpe_train(train_lines(), 2000, 300, specials + byte_tokens)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.add_special_tokens(specials)
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single="$A <eos>", pair="$A <eos> $B <eos>",
                                                       special_tokens=[("<eos>", 1)])
    for i, s in enumerate(specials):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    tok.save(str(path))
    return tok.get_vocab_size()


def train_spm(prefix):
    """sentencepiece unigram with the ids of SigLIP 1's spiece.model (T5 style):
    <pad>=0, </s>=1, <unk>=2, no <s>."""
    import sentencepiece as spm
    txt = prefix.parent / "_spm_train.txt"
    txt.write_text("\n".join(train_lines()) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(txt), model_prefix=str(prefix), model_type="unigram", vocab_size=1000,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        character_coverage=0.9995, normalization_rule_name="nmt_nfkc", add_dummy_prefix=True,
        num_threads=1, seed_sentencepiece_size=100000, shuffle_input_sentence=False,
        hard_vocab_limit=False, minloglevel=2)
    txt.unlink()
    (prefix.parent / (prefix.name + ".vocab")).unlink()
    sp = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    return sp.get_piece_size()


# ---------------------------------------------------------------- model
def f16_grid_(model):
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def randomise_(model, seed, logit_scale, logit_bias):
    g = torch.Generator().manual_seed(seed)

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
            if id(p) in done or name in ("logit_scale", "logit_bias"):
                continue
            if name.endswith("bias"):
                p.copy_(rn(p.shape, 0.05))
            elif p.numel() > 1 and float(p.std()) == 0.0:  # constant init (e.g. zeros): make it random
                p.copy_(rn(p.shape, 0.02))
        model.logit_scale.fill_(logit_scale)
        model.logit_bias.fill_(logit_bias)
    f16_grid_(model)


def make_model(name, vocab_size, folder):
    from transformers import SiglipConfig, SiglipModel
    torch.manual_seed(SEEDS[name])
    cfg = SiglipConfig(text_config=dict(vocab_size=vocab_size, **TEXT_CFG), vision_config=dict(VISION_CFG))
    model = SiglipModel(cfg).eval()
    randomise_(model, SEEDS[name], *LOGIT[name])
    model.config.architectures = ["SiglipModel"]
    # float32 file (like the releases), values on the float16 grid
    model.save_pretrained(str(folder), safe_serialization=True)
    for extra in folder.iterdir():
        if extra.name == "generation_config.json":
            extra.unlink()
    os.chmod(folder / "model.safetensors", 0o644)
    write_release_config(folder / "config.json", model.config)
    return model


def write_release_config(path, cfg):
    """config.json the way the google/siglip* releases have it: only the values that differ from the
    transformers defaults (the releases list almost nothing under text_config/vision_config), plus
    model_type and torch_dtype.  A loader has to know the defaults."""
    from transformers import SiglipTextConfig, SiglipVisionConfig
    import transformers

    def prune(sub, default):
        d, ref = sub.to_dict(), default.to_dict()
        keep = {k: v for k, v in d.items()
                if k not in ("dtype", "torch_dtype", "transformers_version", "output_hidden_states",
                             "output_attentions", "return_dict", "chunk_size_feed_forward", "architectures")
                and (k not in ref or ref[k] != v)}
        keep["model_type"] = sub.model_type
        keep["torch_dtype"] = "float32"
        return dict(sorted(keep.items()))

    out = {
        "architectures": ["SiglipModel"],
        "initializer_factor": 1.0,
        "model_type": "siglip",
        "text_config": prune(cfg.text_config, SiglipTextConfig()),
        "torch_dtype": "float32",
        "transformers_version": transformers.__version__,
        "vision_config": prune(cfg.vision_config, SiglipVisionConfig()),
    }
    write_json(path, out)


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def preprocessor_cfg(resample, convert_rgb_key):
    cfg = {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor",
        "resample": resample,
        "rescale_factor": 1 / 255,
        "size": {"height": 32, "width": 32},
    }
    if convert_rgb_key:
        cfg = {"do_convert_rgb": None, **cfg}
    return cfg


def make_siglip2():
    name = "tiny-siglip2"
    d = MODELS / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    vocab = train_gemma_kind(d / "tokenizer.json")
    make_model(name, vocab, d)
    # as google/siglip2-base-patch16-224 (converted with convert_siglip_to_hf, GemmaTokenizerFast with
    # add_bos_token=False, add_eos_token=True, padding_side="right", do_lower_case=True,
    # model_input_names=["input_ids"], model_max_length=64)
    write_json(d / "tokenizer_config.json", {
        "add_bos_token": False,
        "add_eos_token": True,
        "bos_token": "<bos>",
        "clean_up_tokenization_spaces": False,
        "do_lower_case": True,
        "eos_token": "<eos>",
        "mask_token": "<mask>",
        "model_input_names": ["input_ids"],
        "model_max_length": CONTEXT,
        "pad_token": "<pad>",
        "padding_side": "right",
        "processor_class": "SiglipProcessor",
        "spaces_between_special_tokens": False,
        "tokenizer_class": "GemmaTokenizer",
        "unk_token": "<unk>",
    })
    write_json(d / "special_tokens_map.json", {
        "bos_token": "<bos>", "eos_token": "<eos>", "mask_token": "<mask>", "pad_token": "<pad>",
        "unk_token": "<unk>"})
    write_json(d / "preprocessor_config.json", preprocessor_cfg(2, True))  # SigLIP 2: bilinear
    return name


def make_siglip1():
    name = "tiny-siglip1-spm"
    d = MODELS / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    vocab = train_spm(d / "spiece")
    make_model(name, vocab, d)
    # as google/siglip-base-patch16-224: SiglipTokenizer, pad = eos = "</s>" (id 1), lowercased,
    # punctuation stripped (canonicalize_text), model_max_length 64
    write_json(d / "tokenizer_config.json", {
        "additional_special_tokens": [],
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": "</s>",
        "model_input_names": ["input_ids"],
        "model_max_length": CONTEXT,
        "pad_token": "</s>",
        "processor_class": "SiglipProcessor",
        "sp_model_kwargs": {},
        "tokenizer_class": "SiglipTokenizer",
        "unk_token": "<unk>",
    })
    write_json(d / "special_tokens_map.json", {"eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"})
    write_json(d / "preprocessor_config.json", preprocessor_cfg(3, False))  # SigLIP 1: bicubic
    return name


# ---------------------------------------------------------------- reference loading
def load_ref(name, folder=None):
    from transformers import AutoModel, AutoProcessor
    d = str(folder or MODELS / name)
    model = AutoModel.from_pretrained(d, dtype=torch.float32).eval()
    proc = AutoProcessor.from_pretrained(d, backend="pil")
    ip = proc.image_processor
    assert type(ip).__name__.endswith("Pil"), type(ip).__name__
    return model, proc


def preprocess_desc(ip):
    return {"size": [int(ip.size["height"]), int(ip.size["width"])], "resize_mode": "squash",
            "interpolation": {2: "bilinear", 3: "bicubic"}[int(ip.resample)],
            "mean": [float(v) for v in ip.image_mean], "std": [float(v) for v in ip.image_std],
            "rescale_factor": float(ip.rescale_factor), "do_convert_rgb": True,
            "folder_do_convert_rgb": ip.do_convert_rgb,
            "backend": f"{type(ip).__name__} (Pillow)",
            "rgb_conversion": "before resize; images with an alpha band or a 'transparency' entry are "
                              "converted to RGBA and alpha-composited onto opaque white, others convert('RGB')",
            "center_crop": False}


def pixels(name, proc, save=True, size=32):
    """pixel_values of the folder's PIL image processor, one image per call.  SigLIP 2 releases have
    "do_convert_rgb": null in preprocessor_config.json, and with it transformers (4.x and 5.x alike)
    skips the RGB conversion: every image that is not already RGB (L, LA, P, RGBA, CMYK, 1, I;16)
    then fails in normalize ("mean must have 1 elements...").  So the goldens are made with
    do_convert_rgb=True passed to the call (identical output for the images that succeed without it),
    and index.json records what the folder's own setting does for each image."""
    write = save
    out = FIX / "preprocess" / name
    if write:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    ip = proc.image_processor
    names = image_files()
    arrs, index = [], []
    for n in names:
        with Image.open(IMAGES / n) as im:
            mode = im.mode
            pv = proc(images=im, do_convert_rgb=True, return_tensors="np")["pixel_values"][0]
            try:
                own = proc(images=im, return_tensors="np")["pixel_values"][0]
                if own.shape == pv.shape and np.array_equal(own, pv):
                    status = "same"
                else:
                    status = f"differs: shape {list(own.shape)}"
            except Exception as e:
                status = f"error: {type(e).__name__}: {str(e)[:120]}"
        pv = np.ascontiguousarray(pv, dtype=np.float32)
        assert pv.shape == (3, size, size), pv.shape
        if write:
            np.save(out / f"{n}.npy", pv)
        arrs.append(pv)
        index.append({"image": n, "mode": mode, "file": f"{n}.npy", "shape": list(pv.shape), "dtype": "float32",
                      "with_folder_do_convert_rgb": status})
    if not write:
        return names, np.stack(arrs)
    write_json(out / "index.json", {
        "model": name,
        "made_with": f"AutoProcessor.from_pretrained(dir, backend='pil') -> {type(ip).__name__}; "
                     f"processor(images=PIL.Image.open(file), do_convert_rgb=True, return_tensors='np')",
        "folder_do_convert_rgb": ip.do_convert_rgb,
        "note": "with_folder_do_convert_rgb: what the folder's own preprocessor_config gives without the "
                "do_convert_rgb=True override ('same' = identical array)",
        "images": index})
    return names, np.stack(arrs)


def tolist(t):
    return [[float(v) for v in row] for row in t.detach().float().cpu()]


def feats(x):
    return x if isinstance(x, torch.Tensor) else x.pooler_output


def goldens(name, model, proc, names, pix, v, out_path=None, folder_desc=None, resolution=32):
    tok = proc.tokenizer
    enc = tok(TEXTS, padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="pt")
    ids = enc["input_ids"]
    px = torch.from_numpy(pix)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=px)
        txt = model.get_text_features(input_ids=ids)
        kinds = [type(img).__name__, type(txt).__name__]
        img, txt = feats(img).float(), feats(txt).float()
        out = model(input_ids=ids, pixel_values=px)
    lpi = out.logits_per_image.float()
    # cross-check the model's forward against the documented formula
    ni, nt = img / img.norm(dim=-1, keepdim=True), txt / txt.norm(dim=-1, keepdim=True)
    ref = (ni @ nt.T * model.logit_scale.exp() + model.logit_bias).detach()
    assert float((ref - lpi).abs().max()) < 1e-4
    # pooler_output of get_*_features is the projected embedding the model's forward normalises
    assert float((ni - out.image_embeds).abs().max()) < 1e-5 and float((nt - out.text_embeds).abs().max()) < 1e-5
    ip = proc.image_processor
    fam = "GemmaTokenizer (tokenizer.json)" if name == "tiny-siglip2" else "SiglipTokenizer (spiece.model)"
    src = (f"transformers {v['transformers']} on torch {v['torch']}, CPU float32: "
           f"AutoModel.from_pretrained('{folder_desc or 'fixtures/models/' + name}', dtype=float32) -> SiglipModel (default attention); "
           f"pixels = AutoProcessor.from_pretrained(dir, backend='pil') -> {type(ip).__name__} (Pillow "
           f"{v['pillow']}), one image per call with do_convert_rgb=True, each opened with PIL.Image.open; tokens = processor.tokenizer "
           f"({type(tok).__name__}, {fam}; tokenizers {v['tokenizers']}, sentencepiece {v['sentencepiece']})"
           f"(texts, padding='max_length', max_length={CONTEXT}, truncation=True); input_ids only, no "
           f"attention_mask (as the model card); embeddings = get_image_features(pixel_values) / "
           f"get_text_features(input_ids) (they return {kinds[0]}/{kinds[1]}; its .pooler_output, the projected "
           f"embedding, checked equal after normalisation to forward's image_embeds/text_embeds), raw, not normalised; "
           f"logits_per_image = SiglipModel.forward = logit_scale.exp() * norm(img) @ norm(txt).T + logit_bias; "
           f"probs_per_image = sigmoid(logits_per_image)")
    ls = float(model.logit_scale)
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
        "family": "siglip",
        "logit_bias": float(model.logit_bias),
        "probs_per_image": tolist(torch.sigmoid(lpi)),
        "context_length": CONTEXT,
        "pad_id": int(tok.pad_token_id),
        "preprocess": preprocess_desc(ip),
    }
    if out_path is None:
        (FIX / "goldens").mkdir(parents=True, exist_ok=True)
        out_path = FIX / "goldens" / f"{name}.json"
    out_path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return kinds


def token_goldens(name, tok):
    lines = [json.loads(x)["text"] for x in
             (FIX / "tokenizer" / "multilingual.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(FIX / "goldens" / f"{name}.tokens.jsonl", "w", encoding="utf-8") as f:
        for t in lines:
            ids = tok(t, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
            full = tok(t)["input_ids"]
            assert len(ids) == CONTEXT
            f.write(json.dumps({"text": t, "ids": [int(x) for x in ids], "untruncated_len": len(full)},
                               ensure_ascii=False) + "\n")
    n_diff = None
    if name == "tiny-siglip2":
        # the `tokenizers` library reading tokenizer.json as written must agree with transformers
        from tokenizers import Tokenizer
        raw = Tokenizer.from_file(str(MODELS / name / "tokenizer.json"))
        raw.enable_truncation(CONTEXT)
        raw.enable_padding(length=CONTEXT, pad_id=0, pad_token="<pad>", direction="right")
        n_diff = sum(raw.encode(t).ids != tok(t, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
                     for t in lines)
        assert n_diff == 0, n_diff
    return len(lines), n_diff


def checks(name, proc):
    """Facts about the reference tokenizer worth reporting (printed, not written)."""
    tok = proc.tokenizer
    rep = {"class": type(tok).__name__, "pad": [tok.pad_token, tok.pad_token_id],
           "eos": [tok.eos_token, tok.eos_token_id], "bos": [getattr(tok, "bos_token", None)],
           "padding_side": tok.padding_side}
    for t in ["A Photo of a CAT!", "", "ein Hund", "नमस्ते"]:
        ids = tok(t)["input_ids"]
        rep[repr(t)] = [ids, tok.convert_ids_to_tokens(ids)]
    long = tok("word " * 100, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
    rep["truncated ends with"] = long[-3:]
    if name == "tiny-siglip2":
        from tokenizers import Tokenizer
        raw = Tokenizer.from_file(str(MODELS / name / "tokenizer.json"))
        lines = MULTILINGUAL
        diff = [t for t in lines if raw.encode(t).ids != tok(t)["input_ids"]]
        rep["tokenizers.Tokenizer(tokenizer.json) differs from AutoTokenizer on"] = diff[:5]
        rep["n differ"] = len(diff)
    # torchvision backend vs PIL backend, for information
    try:
        from transformers import AutoImageProcessor
        tv = AutoImageProcessor.from_pretrained(str(MODELS / name), backend="torchvision")
        n = image_files()[0]
        with Image.open(IMAGES / n) as im:
            a = tv(images=im, return_tensors="np")["pixel_values"][0]
            b = proc.image_processor(images=im, return_tensors="np")["pixel_values"][0]
        rep[f"torchvision vs pil backend max abs diff on {n}"] = float(np.abs(a - b).max())
    except Exception as e:
        rep["torchvision backend"] = f"{type(e).__name__}: {e}"[:200]
    return rep


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", default="all", choices=["models", "pixels", "goldens", "tokens", "all"])
    args = ap.parse_args()
    v = versions()
    report = {"versions": v}
    names = ("tiny-siglip2", "tiny-siglip1-spm")
    if args.stage in ("models", "all"):
        write_corpus()
        make_siglip2()
        make_siglip1()
    for name in names:
        model, proc = load_ref(name)
        if args.stage in ("pixels", "goldens", "all"):
            imgs, pix = pixels(name, proc)
        if args.stage in ("goldens", "all"):
            report[name + " feature types"] = goldens(name, model, proc, imgs, pix, v)
        if args.stage in ("tokens", "all"):
            report[name + " token lines"] = token_goldens(name, proc.tokenizer)
        report[name] = checks(name, proc)
    print(json.dumps(report, indent=1, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
