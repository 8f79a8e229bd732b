"""clip_rs.chroma against a real chromadb: the embedding-function protocol and its registration,
the vector-database pattern (precomputed embeddings, a text-embedding query) and the multimodal
pattern (the collection embeds numpy images, ImageLoader uris and query texts itself), on an
embedded PersistentClient reopened by a second process and on a real `chroma run` server.

Rankings are checked against the reference: the goldens hold the reference's raw image and text
embeddings of the committed images and texts, and the nearest images of a text are the top 5 by
their cosine (ties within 1e-6 may come in either order)."""

import json
import pathlib
import subprocess
import sys
import uuid

import numpy as np
import pytest

from _chroma_server import chroma_server
from conftest import FIXTURES, need

GOLDENS = FIXTURES / "goldens" / "tiny-vit.json"
MANIFEST = FIXTURES / "images" / "MANIFEST.json"
K = 5
TIE = 1e-6


@pytest.fixture(scope="module")
def chromadb():
    return need("chromadb")


@pytest.fixture(scope="module")
def goldens():
    return json.loads(GOLDENS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def golden_cosines(goldens):
    """``[text][image name]``: the reference's cosine of each golden text with each image."""
    images = np.asarray(goldens["image_embeddings"], dtype=np.float64)
    texts = np.asarray(goldens["text_embeddings"], dtype=np.float64)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    cosine = texts @ images.T
    return [dict(zip(goldens["images"], row)) for row in cosine]


@pytest.fixture(scope="module")
def rgb_images(good_images):
    """The committed images stored as RGB: ``convert("RGB")`` leaves their pixels as the
    reference's transform reads them, so their arrays embed exactly as the files do."""
    modes = {
        pathlib.PurePosixPath(f["file"]).name: f.get("mode")
        for f in json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]
    }
    images = [p for p in good_images if modes.get(p.name) == "RGB"]
    assert len(images) >= 2 * K
    return images


@pytest.fixture(scope="module")
def model(model_path):
    import clip_rs

    return clip_rs.load(model_path)[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need("chromadb")
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as address:
        yield address


def check_golden_order(got, cosines, candidates, context):
    """``got`` (image names, nearest first) are the reference's top K of ``candidates``."""
    expected = sorted(candidates, key=lambda name: -cosines[name])[:K]
    assert len(got) == K and len(set(got)) == K, f"{context}: {got}"
    for rank, (name, want) in enumerate(zip(got, expected)):
        assert name in candidates, f"{context}: {name} was not added"
        assert abs(cosines[name] - cosines[want]) <= TIE, (
            f"{context}: rank {rank} is {name} (reference cosine {cosines[name]:.7f}); the "
            f"reference's nearest are {expected} (rank {rank}: {cosines[want]:.7f}); got {got}"
        )


def check_same_answers(first, second, context):
    """Two query results (ids, distances) agree: the same distances, and the same ids except
    among images at the same distance (exact duplicates, such as chelsea_small.bmp and
    png_named_as.jpg, come in either order)."""
    for t, (ids1, ids2, d1, d2) in enumerate(
        zip(first["ids"], second["ids"], first["distances"], second["distances"])
    ):
        np.testing.assert_allclose(d2, d1, rtol=0, atol=TIE, err_msg=f"{context}, query {t}")
        distance = dict(zip(ids1, d1))
        for id_, d in zip(ids2, d2):
            assert id_ in distance or abs(d - d1[-1]) <= TIE, f"{context}, query {t}: {ids2} {ids1}"
            if id_ in distance:
                assert abs(distance[id_] - d) <= TIE, f"{context}, query {t}: {ids2} vs {ids1}"


def unique_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def http_client(chromadb, address):
    host, port = address
    return chromadb.HttpClient(host=host, port=port)


# -- the package's surface --------------------------------------------------------------------


def test_importing_clip_rs_does_not_import_chromadb():
    code = "import sys, clip_rs; print('chromadb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_embedding_function_protocol_and_registration(chromadb, model_path, model):
    from chromadb.api.types import validate_embeddings
    from chromadb.utils.embedding_functions import (
        config_to_embedding_function,
        known_embedding_functions,
    )

    from clip_rs.chroma import ClipEmbeddingFunction

    ef = ClipEmbeddingFunction(model=model_path)
    assert known_embedding_functions["clip_rs"] is ClipEmbeddingFunction
    assert ClipEmbeddingFunction.name() == ef.name() == "clip_rs"
    assert ef.get_config() == {"model": model_path, "precision": "f32"}
    assert ef.is_legacy() is False
    assert ef.default_space() == "cosine"
    assert set(ef.supported_spaces()) == {"cosine", "l2", "ip"}

    rebuilt = ClipEmbeddingFunction.build_from_config(ef.get_config())
    assert isinstance(rebuilt, ClipEmbeddingFunction)
    assert rebuilt.get_config() == ef.get_config()
    assert rebuilt.model is ef.model, "rebuilding from the config must not load the model again"
    via_chroma = config_to_embedding_function(
        {"name": "clip_rs", "type": "known", "config": ef.get_config()}
    )
    assert isinstance(via_chroma, ClipEmbeddingFunction)

    ClipEmbeddingFunction.validate_config({"model": "ViT-B/32", "precision": "int8"})
    with pytest.raises(ValueError, match="precision"):
        ClipEmbeddingFunction.validate_config({"model": "ViT-B/32", "precision": "f64"})
    with pytest.raises(ValueError, match="unknown config keys"):
        ClipEmbeddingFunction.validate_config({"model": "ViT-B/32", "device": "cuda"})
    with pytest.raises(ValueError, match="cannot be changed"):
        ef.validate_config_update(ef.get_config(), {"model": "ViT-L/14"})
    ef.validate_config_update(ef.get_config(), {"precision": "bf16"})

    texts = ["a dog", "a photo of a tabby cat, a type of pet."]
    out = ef(texts)
    validate_embeddings(out)
    assert len(out) == 2 and all(e.dtype == np.float32 and e.shape == (32,) for e in out)
    np.testing.assert_array_equal(np.stack(out), model.embed_texts(texts))
    assert abs(float(np.linalg.norm(out[0])) - 1) < 1e-5


def test_images_as_chroma_passes_them(chromadb, model_path, model, good_images):
    """Every committed image as ImageLoader hands it over (``np.array(Image.open(uri))``, any
    mode) and as users pass it (RGB arrays); mixed with documents in one call."""
    Image = need("PIL.Image")
    from clip_rs.chroma import ClipEmbeddingFunction
    from clip_rs import ImageError

    ef = ClipEmbeddingFunction(model=model_path)
    loaded = {}
    for p in good_images:
        with Image.open(p) as image:
            loaded[p.name] = (image.mode, np.array(image))
    out = ef([array for _, array in loaded.values()])
    assert len(out) == len(loaded)
    by_path = model.embed_images(good_images)
    for (name, (mode, array)), row, want in zip(loaded.items(), out, by_path):
        assert np.isfinite(row).all() and abs(float(np.linalg.norm(row)) - 1) < 1e-5, name
        # The array keeps all the file's information except for palette (indices without the
        # palette) and CMYK (read as RGBA) images: the others embed exactly as the file does.
        if mode not in ("P", "CMYK"):
            assert row.tobytes() == want.tobytes(), f"{name} ({mode}, {array.dtype} {array.shape})"

    mixed = ef(["a dog", loaded["chelsea_small.bmp"][1], "a cat"])
    np.testing.assert_array_equal(mixed[0], model.embed_texts(["a dog"])[0])
    np.testing.assert_array_equal(mixed[1], model.embed_images([loaded["chelsea_small.bmp"][1]])[0])
    np.testing.assert_array_equal(mixed[2], model.embed_texts(["a cat"])[0])

    with pytest.raises(ImageError):
        ef([np.zeros((4, 4, 3), dtype=np.complex64)])
    with pytest.raises(ImageError):
        ef([np.zeros((0, 4, 3), dtype=np.uint8)])


# -- the vector-database pattern: precomputed embeddings ----------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "server"])
def test_vector_database_pattern(
    chromadb, backend, request, tmp_path, model, good_images, goldens, golden_cosines
):
    if backend == "server":
        client = http_client(chromadb, request.getfixturevalue("server"))
    else:
        client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    name = unique_name("clip-rs-vectors")
    embeddings = model.embed_images(good_images)
    collection = client.create_collection(
        name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    try:
        ids = [p.name for p in good_images]
        collection.add(
            ids=ids, embeddings=embeddings, metadatas=[{"path": str(p)} for p in good_images]
        )
        # Chroma stores what it was given, renormalised for the cosine space (last bits).
        stored = collection.get(ids=ids, include=["embeddings"])
        for id_, row in zip(stored["ids"], stored["embeddings"]):
            np.testing.assert_allclose(row, embeddings[ids.index(id_)], rtol=0, atol=1e-6)

        queries = model.embed_texts(goldens["texts"])
        found = collection.query(
            query_embeddings=queries, n_results=K, include=["metadatas", "distances"]
        )
        candidates = set(ids)
        for t, text in enumerate(goldens["texts"]):
            got = [pathlib.Path(m["path"]).name for m in found["metadatas"][t]]
            assert got == found["ids"][t]
            check_golden_order(got, golden_cosines[t], candidates, f"{backend}, text {text!r}")
            ours = embeddings[[ids.index(g) for g in got]] @ queries[t]
            np.testing.assert_allclose(found["distances"][t], 1 - ours, atol=1e-5)
    finally:
        client.delete_collection(name)


# -- the multimodal pattern: the collection embeds with ClipEmbeddingFunction --------------------

REOPEN = r"""
import json, sys
import chromadb
from chromadb.utils.data_loaders import ImageLoader
from clip_rs.chroma import ClipEmbeddingFunction

spec = json.loads(sys.argv[1])
if "path" in spec:
    client = chromadb.PersistentClient(path=spec["path"])
else:
    client = chromadb.HttpClient(host=spec["host"], port=spec["port"])

def nearest(collection):
    out = {}
    for via in ("array", "uri"):
        found = collection.query(
            query_texts=spec["texts"], n_results=spec["k"], where={"via": via},
            include=["distances"],
        )
        out[via] = {"ids": found["ids"], "distances": found["distances"]}
    return out

out = {}
# As it was stored: the function is rebuilt from the collection's configuration.
collection = client.get_collection(spec["name"], data_loader=ImageLoader())
out["config"] = collection.configuration_json.get("embedding_function")
out["plain"] = nearest(collection)
# With the function given again: no "embedding function conflict".
ef = ClipEmbeddingFunction(model=spec["model"])
out["explicit"] = nearest(client.get_collection(spec["name"], embedding_function=ef))
collection = client.get_or_create_collection(
    spec["name"], embedding_function=ef, data_loader=ImageLoader()
)
out["get_or_create"] = nearest(collection)
collection.add(ids=["reopened"], uris=[spec["uri"]], metadatas=[{"via": "reopened"}])
row = collection.get(ids=["reopened"], include=["embeddings"])["embeddings"][0]
out["reopened"] = [float(x) for x in row]
print(json.dumps(out))
"""


def multimodal_roundtrip(chromadb, client, spec, model_path, model, images, goldens, cosines):
    """Creates a collection with ClipEmbeddingFunction on ``client``, adds ``images`` as RGB
    arrays and as uris (ImageLoader), checks the stored embeddings and the text queries, then
    reopens the collection in a second process (``spec``) and checks it answers the same."""
    Image = need("PIL.Image")
    from chromadb.utils.data_loaders import ImageLoader

    from clip_rs.chroma import ClipEmbeddingFunction

    name = spec["name"]
    ef = ClipEmbeddingFunction(model=model_path)
    collection = client.create_collection(name, embedding_function=ef, data_loader=ImageLoader())
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in images]
    by_array = model.embed_images(arrays)
    by_path = model.embed_images(images)
    # What the collection will compute: RGB arrays, and ImageLoader's arrays of the uris, embed
    # bit for bit as embed_images does (and, RGB files, as the files do).
    assert np.stack(ef(arrays)).tobytes() == by_array.tobytes() == by_path.tobytes()
    loaded = ImageLoader()([str(p) for p in images])
    assert np.stack(ef(loaded)).tobytes() == by_path.tobytes()
    collection.add(
        ids=[f"array:{p.name}" for p in images],
        images=arrays,
        metadatas=[{"path": str(p), "via": "array"} for p in images],
    )
    collection.add(
        ids=[f"uri:{p.name}" for p in images],
        uris=[str(p) for p in images],
        metadatas=[{"path": str(p), "via": "uri"} for p in images],
    )
    assert collection.configuration_json["embedding_function"] == {
        "type": "known",
        "name": "clip_rs",
        "config": {"model": model_path, "precision": "f32"},
    }

    # Stored: those embeddings, renormalised by Chroma for the cosine space (last bits).
    stored = collection.get(include=["embeddings", "metadatas"])
    assert len(stored["ids"]) == 2 * len(images)
    for id_, row, meta in zip(stored["ids"], stored["embeddings"], stored["metadatas"]):
        i = [p.name for p in images].index(id_.split(":", 1)[1])
        np.testing.assert_allclose(row, by_path[i], rtol=0, atol=1e-6, err_msg=id_)

    texts = goldens["texts"]
    text_embeddings = model.embed_texts(texts)
    names = {p.name for p in images}
    here = {}
    for via in ("array", "uri"):
        found = collection.query(
            query_texts=texts, n_results=K, where={"via": via}, include=["distances"]
        )
        here[via] = {"ids": found["ids"], "distances": found["distances"]}
        for t, text in enumerate(texts):
            got = [id_.split(":", 1)[1] for id_ in found["ids"][t]]
            check_golden_order(got, cosines[t], names, f"{via}, text {text!r}")
            ours = by_path[[[p.name for p in images].index(g) for g in got]] @ text_embeddings[t]
            np.testing.assert_allclose(found["distances"][t], 1 - ours, atol=1e-5)

    spec = dict(spec, model=model_path, texts=texts, k=K, uri=str(images[0]))
    run = subprocess.run(
        [sys.executable, "-c", REOPEN, json.dumps(spec)], capture_output=True, text=True
    )
    assert run.returncode == 0, f"reopening failed:\n{run.stderr[-4000:]}"
    there = json.loads(run.stdout.strip().splitlines()[-1])
    assert there["config"] == {
        "type": "known",
        "name": "clip_rs",
        "config": {"model": model_path, "precision": "f32"},
    }
    for how in ("plain", "explicit", "get_or_create"):
        for via in ("array", "uri"):
            check_same_answers(here[via], there[how][via], f"reopened ({how}), {via}")
    np.testing.assert_allclose(there["reopened"], by_path[0], rtol=0, atol=1e-6)


def test_multimodal_persistent_client_reopened(
    chromadb, tmp_path, model_path, model, rgb_images, goldens, golden_cosines
):
    path = str(tmp_path / "db")
    client = chromadb.PersistentClient(path=path)
    spec = {"path": path, "name": "clip-rs-multimodal"}
    multimodal_roundtrip(
        chromadb, client, spec, model_path, model, rgb_images, goldens, golden_cosines
    )


def test_multimodal_server(
    chromadb, server, model_path, model, rgb_images, goldens, golden_cosines
):
    client = http_client(chromadb, server)
    spec = {"host": server[0], "port": server[1], "name": unique_name("clip-rs-multimodal")}
    try:
        multimodal_roundtrip(
            chromadb, client, spec, model_path, model, rgb_images, goldens, golden_cosines
        )
    finally:
        try:
            client.delete_collection(spec["name"])
        except Exception:
            pass
