"""Shared fixtures of the Python tests. They run against the *installed* package (``pip install
.``), on the committed fixture model and images, and read the full reference fixtures from
``CLIP_REFERENCE_DIR`` (default ``../shared/reference`` beside the repository).

Optional dependencies (torch, chromadb, ray, openai, Pillow): a test that needs one calls
``need("ray")``; outside CI a missing one skips the test and says so, under ``CI=true`` it fails.
"""

import importlib
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")


def need(module):
    """The imported module, or a skip (outside CI) / failure (under CI=true) naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if IN_CI:
            pytest.fail(f"CI=true but the optional dependency {module!r} is missing: {e}")
        pytest.skip(f"{module} is not installed")


def reference_dir():
    """The full reference fixtures, or a skip (outside CI) / failure (under CI=true)."""
    path = pathlib.Path(os.environ.get("CLIP_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
    if path.is_dir():
        return path
    if IN_CI:
        pytest.fail(f"CI=true but the reference fixtures are missing at {path}")
    pytest.skip(f"reference fixtures not found at {path} (set CLIP_REFERENCE_DIR)")


@pytest.fixture(scope="session")
def model_path():
    """The committed tiny ViT model (random weights: numbers test exactness, not accuracy)."""
    return str(FIXTURES / "models" / "tiny-vit.safetensors")


@pytest.fixture(scope="session")
def good_images():
    """Every committed good image, sorted by name."""
    return sorted(p for p in (FIXTURES / "images" / "good").iterdir() if p.is_file())


@pytest.fixture(scope="session")
def bad_images():
    """Every committed broken image, sorted by name."""
    return sorted(p for p in (FIXTURES / "images" / "bad").iterdir() if p.is_file())


@pytest.fixture(scope="session")
def clip_bin():
    """The `clip` binary built by `cargo build --release` (the test command builds it first)."""
    path = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "clip"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --release -p clip-cli` first")
    return str(path)
