"""The OpenAI CLIP README's snippets (python/tests/snippets/) run unchanged except for
``import clip_rs as clip`` and give the reference's numbers, and their numpy rewrites
(python/tests/snippets_numpy/) run where torch is not installed and give the same numbers.

The goldens, fixtures/goldens/python-snippets.json, come from running the very same snippet files
with OpenAI's ``clip`` (tools/python/make_snippet_goldens.py); tolerances are in parity.py.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import parity
import snippet_runner
from conftest import FIXTURES, need

HERE = pathlib.Path(__file__).resolve().parent
GOLDENS = FIXTURES / "goldens" / "python-snippets.json"
SNIPPETS = ["usage", "zero_shot", "semantic_search", "moderation", "batch"]

# the vector each snippet's `indices` were taken from by topk (for the tie rule)
TOPK_OVER = {
    "zero_shot": lambda results: results["similarity"]["data"][0],
    "semantic_search": lambda results: results["scores"]["data"],
}


@pytest.fixture(scope="module")
def goldens():
    return json.loads(GOLDENS.read_text(encoding="utf-8"))


def _inputs(golden, model_path):
    return {"MODEL": model_path, **_resolve(golden["inputs"])}


def _resolve(inputs):
    out = dict(inputs)
    if "IMAGE" in out:
        out["IMAGE"] = str(FIXTURES / "images" / out["IMAGE"])
    if "IMAGES" in out:
        out["IMAGES"] = [str(FIXTURES / "images" / p) for p in out["IMAGES"]]
    return out


def _compare(snippet, golden, ours):
    """Every result variable of the golden against ours (both in snippet_runner.export form)."""
    results = golden["results"]
    for var, g in results.items():
        assert var in ours, f"{snippet}: the snippet left no `{var}`"
        o = ours[var]
        what = f"{snippet}.{var}"
        assert o["shape"] == g["shape"], f"{what}: shape {o['shape']} != golden {g['shape']}"
        assert o["dtype"] == g["dtype"], f"{what}: dtype {o['dtype']} != golden {g['dtype']}"
        if g["dtype"] == "bool":
            # flagged = argmax over the labels < 2: compare rows whose decision is not a near tie
            probs = np.asarray(results["probs"]["data"], dtype=np.float64)
            top2 = np.sort(probs, axis=-1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > parity.LOGIT_TOL
            assert np.array_equal(np.asarray(o["data"])[clear], np.asarray(g["data"])[clear]), what
        elif g["dtype"].startswith("int"):
            if var == "indices":
                parity.assert_topk_indices(o["data"], g["data"], TOPK_OVER[snippet](results), what)
            else:
                assert o["data"] == g["data"], f"{what}: token ids differ"
        elif "features" in var:
            parity.assert_embeddings_close(o["data"], g["data"], what)
        else:
            parity.assert_logits_close(o["data"], g["data"], what)


def test_goldens_cover_every_snippet(goldens):
    names = sorted(p.stem for p in (HERE / "snippets").glob("*.py"))
    assert names == sorted(SNIPPETS)
    assert sorted(p.stem for p in (HERE / "snippets_numpy").glob("*.py")) == names
    assert sorted(goldens["snippets"]) == names
    for name in names:
        # the clip_rs source is the snippet with only its import line changed
        ref = snippet_runner.source(HERE / "snippets" / f"{name}.py", "clip").splitlines()
        ours = snippet_runner.source(HERE / "snippets" / f"{name}.py", "clip_rs").splitlines()
        changed = [(a, b) for a, b in zip(ref, ours) if a != b]
        assert changed == [("import clip", "import clip_rs as clip")], changed


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_readme_snippet_under_torch(snippet, goldens, model_path, monkeypatch):
    torch = need("torch")
    need("PIL")
    import clip_rs

    from clip_rs import _api

    # The snippets pick `"cuda" if torch.cuda.is_available() else "cpu"`; clip-rs runs on the
    # CPU only (device="cuda" is a DeviceError, see test_dropin) and the goldens are CPU goldens.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(_api, "_backend", _api._backend)  # restored after the test
    clip_rs.set_array_backend("torch")
    golden = goldens["snippets"][snippet]
    scope = snippet_runner.run(HERE / "snippets" / f"{snippet}.py", "clip_rs",
                               _inputs(golden, model_path))
    assert scope["clip"] is clip_rs
    ours = {var: snippet_runner.export(scope[var]) for var in golden["results"]}
    for var in golden["results"]:
        # what the README's code gets is a tensor wherever the reference's is
        value = scope[var]
        ref_dtype = golden["results"][var]["dtype"]
        if var != "probs":  # probs is `.cpu().numpy()` in the README
            assert isinstance(value, torch.Tensor), f"{snippet}.{var} is {type(value).__name__}"
        assert ours[var]["dtype"] == ref_dtype
    _compare(snippet, golden, ours)


HIDE_TORCH = textwrap.dedent(
    '''
    """Test helper: makes `import torch` (and torchvision) fail, as if torch were not installed."""
    import sys


    class _HideTorch:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "torchvision", "torchaudio"):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
            return None


    sys.meta_path.insert(0, _HideTorch())
    '''
)


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory):
    """An environment whose Python cannot import torch (a sitecustomize on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("hide-torch")
    (site / "sitecustomize.py").write_text(HIDE_TORCH, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("CLIP_RS_ARRAYS", None)  # "auto": numpy because torch is missing
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "hidden by the test" in probe.stderr, probe.stderr
    return env


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_numpy_snippet_without_torch(snippet, goldens, model_path, no_torch_env, tmp_path):
    need("PIL")
    golden = goldens["snippets"][snippet]
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps(_inputs(golden, model_path)), encoding="utf-8")
    out = tmp_path / "out.json"
    cmd = [sys.executable, str(HERE / "snippet_runner.py"), str(HERE / "snippets_numpy" / f"{snippet}.py"),
           "clip_rs", str(inputs), str(out), *golden["results"]]
    proc = subprocess.run(cmd, env=no_torch_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ours = json.loads(out.read_text(encoding="utf-8"))
    env = ours.pop("_env")
    assert env["torch_importable"] is False and env["torch_loaded"] is False, env
    assert env["backend"] == "numpy", env
    _compare(snippet, golden, ours)
