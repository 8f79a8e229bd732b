"""The model families beside OpenAI CLIP from Python: ``clip_rs.load`` on a SigLIP 2, a SigLIP 1
(``spiece.model``) and two OpenCLIP folders gives the reference packages' tokens
(``model.tokenize``), pixels (``preprocess``), embeddings and logits (SigLIP: ``scale * cos +
bias``), against the goldens transformers and open_clip made from the same folders
(fixtures/goldens/<model>.json)."""

import json

import numpy as np
import pytest

import clip_rs
import parity
from clip_rs import _api
from conftest import FIXTURES, need

MODELS = ["tiny-siglip2", "tiny-siglip1-spm", "tiny-openclip-squash", "tiny-openclip-longest"]


@pytest.fixture
def numpy_arrays(monkeypatch):
    monkeypatch.setattr(_api, "_backend", _api._backend)
    clip_rs.set_array_backend("numpy")


@pytest.mark.parametrize("name", MODELS)
def test_family_matches_its_reference(name, numpy_arrays):
    Image = need("PIL.Image")
    golden = json.loads((FIXTURES / "goldens" / f"{name}.json").read_text(encoding="utf-8"))
    model, preprocess = clip_rs.load(str(FIXTURES / "models" / name))
    assert model.context_length == golden["context_length"]

    tokens = model.tokenize(golden["texts"], truncate=True)
    assert tokens.dtype == np.int32
    assert tokens.tolist() == golden["text_tokens"]

    pixels = []
    for image_name in golden["images"]:
        x = preprocess(Image.open(FIXTURES / "images" / "good" / image_name))
        expected = np.load(FIXTURES / "preprocess" / name / f"{image_name}.npy")
        assert np.array_equal(x, expected), f"{name}: {image_name}: pixels differ"
        pixels.append(x)
    pixels = np.stack(pixels)

    parity.assert_embeddings_close(model.encode_image(pixels), golden["image_embeddings"], f"{name} images")
    parity.assert_embeddings_close(model.encode_text(tokens), golden["text_embeddings"], f"{name} texts")
    logits_per_image, _ = model(pixels, tokens)
    want = np.asarray(golden["logits_per_image"], dtype=np.float64)
    assert np.abs(np.asarray(logits_per_image, dtype=np.float64) - want).max() <= parity.LOGIT_TOL


def test_siglip_tokenize_refuses_an_over_long_text():
    model, _ = clip_rs.load(str(FIXTURES / "models" / "tiny-siglip2"))
    with pytest.raises(clip_rs.TokenizeError):
        model.tokenize("a dog " * 100)
    assert model.tokenize("a dog " * 100, truncate=True).shape == (1, 64)
