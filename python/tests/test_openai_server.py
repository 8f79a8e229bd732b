"""`clip serve` as the most common real clients of an "OpenAI-compatible" endpoint use it: the
official `openai` package with its defaults (it asks for base64 embeddings) and Chroma's
`OpenAIEmbeddingFunction` (which uses that client). The server is the real binary on loopback."""

import json
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest

from conftest import need


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(clip_bin, model_path):
    """`clip serve` on a free loopback port with the fixture model, stopped after the module."""
    port = _free_port()
    proc = subprocess.Popen(
        [clip_bin, "serve", "--port", str(port), "--model", model_path],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"clip serve exited: {proc.stderr.read()}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _float_embeddings(url, texts):
    """What the server answers with encoding_format "float", straight over HTTP."""
    body = json.dumps({"input": texts, "model": "any", "encoding_format": "float"}).encode()
    request = urllib.request.Request(
        url + "/v1/embeddings", body, {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        data = json.load(response)["data"]
    return np.array([d["embedding"] for d in data], dtype=np.float32)


def test_the_official_openai_client_with_its_defaults(server):
    openai = need("openai")
    client = openai.OpenAI(base_url=server + "/v1", api_key="not-needed")
    texts = ["a photo of a cat", "a photo of a dog"]
    # Default encoding: the client asks for base64 and decodes it itself.
    response = client.embeddings.create(model="tiny-vit", input=texts)
    got = np.array([d.embedding for d in response.data], dtype=np.float32)
    assert got.shape == (2, 32)
    assert np.array_equal(got, _float_embeddings(server, texts))
    assert [d.index for d in response.data] == [0, 1]
    # float explicitly, and dimensions equal to the model's width.
    response = client.embeddings.create(
        model="tiny-vit", input=texts, encoding_format="float", dimensions=32
    )
    assert np.array_equal(
        np.array([d.embedding for d in response.data], dtype=np.float32), got
    )
    # A width the model does not have is a 400 naming the parameter.
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="tiny-vit", input=texts, dimensions=16)
    assert "dimensions" in str(e.value)
    # Token arrays keep their clear 400.
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="tiny-vit", input=[[1, 2, 3]])
    assert "token arrays are not supported" in str(e.value)
    # GET /v1/models in OpenAI's shape.
    models = client.models.list()
    assert len(models.data) == 1 and models.data[0].object == "model"


def test_chromas_openai_embedding_function(server, tmp_path, monkeypatch):
    need("chromadb")
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    monkeypatch.setenv("CHROMA_OPENAI_API_KEY", "not-needed")
    ef = OpenAIEmbeddingFunction(model_name="tiny-vit", api_base=server + "/v1")
    texts = ["a photo of a cat", "a red car"]
    got = np.array(ef(texts), dtype=np.float32)
    assert np.array_equal(got, _float_embeddings(server, texts))
    # In a collection, as users wire it.
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    collection = client.create_collection("docs", embedding_function=ef)
    collection.add(ids=["cat", "car"], documents=texts)
    found = collection.query(query_texts=["a photo of a cat"], n_results=1)
    assert found["ids"][0] == ["cat"]
