"""The drop-in API: ``load``, ``tokenize``, ``available_models``, the model and its preprocess,
mirroring OpenAI's ``clip`` package, plus the fast paths (``embed_images``, ``embed_texts``,
``classify``, ``moderate``, ``similarity``) that run the Rust task layer directly."""

import os
import sys
import warnings

import numpy as np

from . import _native
from ._errors import ClipError, DeviceError, ImageError

_BACKENDS = ("auto", "torch", "numpy")
_backend = os.environ.get("CLIP_RS_ARRAYS", "auto").lower()
if _backend not in _BACKENDS:
    _backend = "auto"


def set_array_backend(name):
    """Which arrays the drop-in API takes and returns: ``"torch"`` (tensors, as OpenAI's
    ``clip``), ``"numpy"``, or ``"auto"`` (torch when it is installed). ``CLIP_RS_ARRAYS``
    sets the default. The fast paths (``embed_images`` ...) always return numpy arrays."""
    global _backend
    name = str(name).lower()
    if name not in _BACKENDS:
        raise ClipError(f"unknown array backend {name!r}: one of {', '.join(_BACKENDS)}")
    if name == "torch" and _import_torch() is None:
        raise ClipError("the torch backend needs torch installed (pip install torch)")
    _backend = name


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch():
    """The torch module when the drop-in API speaks torch, else None."""
    if _backend == "numpy":
        return None
    return _import_torch()


def get_array_backend():
    """``"torch"`` or ``"numpy"``: what the drop-in API returns now."""
    return "torch" if _torch() is not None else "numpy"


def _loaded_torch():
    """torch if something already imported it, without importing it (seconds) here: a value can
    only be a torch tensor or dtype if torch is loaded."""
    return sys.modules.get("torch")


def _numpy(x, dtype):
    """Any array-like (torch tensor, numpy array, nested lists) as a C-contiguous numpy array."""
    torch = _loaded_torch()
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x), dtype=dtype)


def _out(array):
    """A numpy array as the backend's array type (sharing memory where it can)."""
    torch = _torch()
    if torch is None:
        return array
    return torch.from_numpy(array)


def _floats(data, *shape):
    return np.frombuffer(data, dtype=np.float32).reshape(shape)


def _check_device(device):
    name = str(device)
    if name.split(":")[0] != "cpu":
        raise DeviceError(
            f"device {name!r} is not supported: clip-rs runs on the CPU (use device=\"cpu\")"
        )


def available_models():
    """The model names ``load`` accepts besides paths (OpenAI's nine and the rest of the
    registry of ``clip models``)."""
    return _native.available_models()


def tokenize(texts, context_length=77, truncate=False):
    """Token ids exactly as ``clip.tokenize`` gives them: one row per text, ``context_length``
    ids, zero-padded, int32 (what the reference returns on torch >= 1.8). A text over the context
    raises ``TokenizeError`` (a ``RuntimeError``, with the reference's message) unless
    ``truncate``."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    data = _native.tokenize(texts, int(context_length), bool(truncate))
    ids = np.frombuffer(data, dtype=np.int32).reshape(len(texts), int(context_length)).copy()
    return _out(ids)


def load(name, device="cpu", jit=False, download_root=None, *, precision="f32", threads=None):
    """``(model, preprocess)`` for a model name (``available_models()``) or a checkpoint path
    (OpenAI ``.pt``, safetensors, Hugging Face or OpenCLIP folder), as ``clip.load``. Names are
    downloaded into the cache once (``download_root`` replaces it) and verified. ``device`` must
    be the CPU; ``jit`` is accepted and ignored. ``precision``: ``f32`` (the reference's numbers),
    ``bf16``, ``f16`` or ``int8``. ``threads``: compute threads for this process (set before the
    first model runs; default: every core)."""
    _check_device(device)
    if threads is not None and not _native.set_threads(int(threads)):
        warnings.warn(
            f"threads={threads} ignored: this process's thread pool is already running with "
            "another size (it is set once, by the first model loaded)",
            RuntimeWarning,
            stacklevel=2,
        )
    path = os.fspath(name)
    if not os.path.exists(path):
        path = os.fspath(
            _native.resolve_model(path, None if download_root is None else os.fspath(download_root))
        )
    native = _native.Model(path, str(precision))
    return Model(native, os.fspath(name)), Preprocess(native)


def _pil_item(image, name):
    """A PIL image as the native side reads it: its mode and raw samples (no conversion, no
    re-encoding: the reference's resize depends on the mode)."""
    mode = image.mode
    width, height = image.size
    palette = alpha = None
    if mode == "1":
        data = (np.asarray(image, dtype=np.uint8) * 255).tobytes()
    elif mode == "I;16":
        data = np.asarray(image).astype("<u2").tobytes()
    elif mode == "P":
        data = image.tobytes()
        palette = bytes(image.getpalette("RGB") or [])
        alpha = _palette_alpha(image)
    else:
        data = image.tobytes()
    return ("pil", name, mode, width, height, data, palette, alpha)


def _palette_alpha(image):
    """A P image's transparency as one alpha per palette entry (``None`` when it has none): what
    transforms that composite onto white before resizing (SigLIP's) need."""
    t = image.info.get("transparency")
    if isinstance(t, (bytes, bytearray)):
        return bytes(t)
    if isinstance(t, int) and 0 <= t < 256:
        return bytes(0 if i == t else 255 for i in range(t + 1))
    if image.palette is not None and image.palette.mode == "RGBA":
        return bytes(image.getpalette("RGBA")[3::4])
    return None


def _is_pil(x):
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(x, Image.Image)


def _item(x, index):
    """One image for the native side: a path, encoded bytes, a PIL image or an H x W x 3 uint8
    array (what Chroma passes)."""
    name = f"item[{index}]"
    if isinstance(x, (str, os.PathLike)):
        return ("path", os.fspath(x))
    if isinstance(x, (bytes, bytearray, memoryview)):
        return ("bytes", name, bytes(x))
    if _is_pil(x):
        return _pil_item(x, name)
    array = np.asarray(x)
    if array.ndim == 3 and array.shape[2] in (3, 4) and array.dtype == np.uint8:
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
        height, width = array.shape[:2]
        return ("pil", name, mode, width, height, np.ascontiguousarray(array).tobytes(), None, None)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2 and array.dtype == np.uint8:
        height, width = array.shape
        return ("pil", name, "L", width, height, np.ascontiguousarray(array).tobytes(), None, None)
    if array.ndim in (2, 3) and array.dtype != object:
        # Other layouts (LA, 1-bit, 16-bit) take the mode Pillow gives them, as the image file
        # they were read from had.
        try:
            from PIL import Image
        except ImportError:
            Image = None
        if Image is not None:
            try:
                return _pil_item(Image.fromarray(array), name)
            except (TypeError, ValueError):
                pass
    raise ImageError(
        f"{name}: expected a path, encoded bytes, a PIL image or an H x W x 3 uint8 array, "
        f"got {type(x).__name__}"
        + (f" of shape {array.shape} and dtype {array.dtype}" if hasattr(array, "shape") else "")
    )


class Preprocess:
    """The model's image transform, as the ``preprocess`` that ``clip.load`` returns: a PIL image
    in, the ``[3, N, N]`` float32 tensor out, bit-identical to the reference's."""

    def __init__(self, native):
        self._native = native

    def __call__(self, image):
        data = self._native.preprocess(_item(image, "image"))
        n = self._native.resolution
        return _out(_floats(data, 3, n, n).copy())

    def __repr__(self):
        n = self._native.resolution
        return f"clip_rs.Preprocess(resolution={n})"


class _Visual:
    """``model.visual``: what tutorial code reads off the image tower."""

    def __init__(self, resolution):
        self.input_resolution = resolution


class Model:
    """A loaded model, with the methods of OpenAI's ``CLIP`` module (``encode_image``,
    ``encode_text``, ``model(image, text)``, ``logit_scale``, ``visual.input_resolution``) and
    the fast paths of clip-rs."""

    def __init__(self, native, name):
        self._native = native
        self.name = name
        self.visual = _Visual(native.resolution)
        self.context_length = native.context_length
        self.vocab_size = native.vocab_size

    def __repr__(self):
        return (
            f"clip_rs.Model({self.name!r}, family={self._native.family!r}, "
            f"precision={self._native.precision!r}, dim={self._native.embed_dim})"
        )

    # -- what tutorial code calls on a torch module: harmless here ---------------------------
    def eval(self):
        """Returns the model (inference only: there is no training mode)."""
        return self

    def train(self, mode=True):
        """Returns the model; training is not supported, so ``train(True)`` is refused."""
        if mode:
            raise ClipError("clip-rs runs inference only: train() is not supported")
        return self

    def to(self, *args, **kwargs):
        """Returns the model for CPU devices and float dtypes (it stays float32 on the CPU)."""
        device = kwargs.get("device", args[0] if args else "cpu")
        torch = _loaded_torch()
        if torch is not None and isinstance(device, torch.dtype):
            return self
        _check_device(device)
        return self

    def float(self):
        """Returns the model (it is float32 already)."""
        return self

    def cpu(self):
        """Returns the model (it is on the CPU already)."""
        return self

    def requires_grad_(self, requires_grad=True):
        """Returns the model (no gradients are ever computed)."""
        return self

    @property
    def dtype(self):
        """float32, the dtype of every output."""
        torch = _torch()
        return torch.float32 if torch is not None else np.float32

    @property
    def logit_scale(self):
        """The stored ``logit_scale`` parameter (its ``exp()`` is the factor of the logits)."""
        return _out(np.array(self._native.logit_scale, dtype=np.float32))

    # -- the reference's forward functions -----------------------------------------------------
    def encode_image(self, image):
        """Raw image embeddings ``[n, dim]`` of preprocessed pixels ``[n, 3, N, N]``."""
        pixels = _numpy(image, np.float32)
        if pixels.ndim == 3:
            pixels = pixels[None]
        n = pixels.shape[0]
        data = self._native.encode_pixels(pixels.tobytes(), n)
        return _out(_floats(data, n, self._native.embed_dim))

    def tokenize(self, texts, truncate=False):
        """Token ids ``[n, context_length]`` (int32) exactly as this model is fed them: its own
        tokenizer (CLIP's BPE; a SigLIP folder's ``tokenizer.json`` or ``spiece.model``), padded
        with its pad id to its context length (64 for SigLIP, as the model cards prescribe). A
        text over the context raises ``TokenizeError`` unless ``truncate``. For OpenAI models
        this equals the module-level ``tokenize``."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        data = self._native.tokenize(texts, bool(truncate))
        ids = np.frombuffer(data, dtype=np.int32).reshape(len(texts), self.context_length).copy()
        return _out(ids)

    def encode_text(self, text):
        """Raw text embeddings ``[n, dim]`` of token ids ``[n, L]`` (from ``tokenize``, or for
        another family from ``model.tokenize``)."""
        tokens = _numpy(text, np.int64)
        if tokens.ndim == 1:
            tokens = tokens[None]
        n, length = tokens.shape
        data = self._native.encode_tokens(tokens.tobytes(), n, length)
        return _out(_floats(data, n, self._native.embed_dim))

    def __call__(self, image, text):
        """``(logits_per_image, logits_per_text)``, as the reference's ``forward``: normalised
        embeddings, ``logit_scale.exp() * image @ text.T`` (plus the bias of sigmoid models),
        computed by the task layer."""
        image_features = _numpy(self.encode_image(image), np.float32)
        text_features = _numpy(self.encode_text(text), np.float32)
        _, logits, _ = self._native.similarity(image_features.tobytes(), text_features.tobytes())
        logits_per_image = _floats(logits, len(image_features), len(text_features)).copy()
        return _out(logits_per_image), _out(np.ascontiguousarray(logits_per_image.T))

    forward = __call__

    # -- the fast paths ------------------------------------------------------------------------
    def embed_images(self, items, batch_size=32, normalize=True, errors="raise", workers=None):
        """Embeddings of many images — paths, encoded bytes, PIL images or H x W x 3 uint8
        arrays — decoded in parallel in Rust (the GIL released), as a float32 numpy array
        ``[n, dim]`` in input order, L2-normalised unless ``normalize=False``. A bad item raises
        ``ImageError`` naming it; with ``errors="collect"`` the result is ``(embeddings,
        errors)`` instead, the failed rows NaN and ``errors`` a list of ``(index, message)``."""
        if errors not in ("raise", "collect"):
            raise ClipError('errors must be "raise" or "collect"')
        items = [_item(x, i) for i, x in enumerate(items)]
        workers = workers or _cpu_count()
        data, failed = self._native.embed_images(items, bool(normalize), int(workers), int(batch_size))
        embeddings = _floats(data, len(items), self._native.embed_dim)
        if errors == "collect":
            return embeddings, [(i, message) for i, message in failed]
        if failed:
            i, message = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise ImageError(f"item {i}: {message}{more}")
        return embeddings

    def embed_texts(self, texts, batch_size=32, normalize=True, truncate=True):
        """Embeddings of texts as a float32 numpy array ``[n, dim]``, L2-normalised unless
        ``normalize=False``; over-long texts are cut to the context (``truncate=False``: a
        ``TokenizeError`` naming the text)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        data = self._native.encode_texts(texts, bool(truncate), bool(normalize))
        return _floats(data, len(texts), self._native.embed_dim)

    def classify(self, images, labels, templates=None, top_k=None):
        """Zero-shot classification with ``clip classify``'s semantics: for each image, a list of
        ``(label, probability)`` best first. ``templates``: a list with ``{}`` for the label, or a
        built-in set's name (``"imagenet"``, ``"simple"``); several are ensembled."""
        embeddings = self.embed_images(images, normalize=False)
        return self._native.classify(
            embeddings.tobytes(), len(embeddings), list(labels), templates, top_k
        )

    def moderate(self, images, policy=None):
        """Moderation with ``clip moderate``'s semantics: ``{"policy": "name@version",
        "results": [{"flagged", "categories": [{"name", "score", "threshold"}]}]}`` per image.
        ``policy``: a TOML file path or TOML text (default: the built-in policy)."""
        if policy is not None and os.path.exists(os.fspath(policy)):
            with open(os.fspath(policy), encoding="utf-8") as f:
                policy = f.read()
        embeddings = self.embed_images(images, normalize=False)
        policy_id, results = self._native.moderate(embeddings.tobytes(), policy)
        return {"policy": policy_id, "results": results}

    def similarity(self, images, texts):
        """``{"cosine", "logits", "probs"}`` of images (rows) against texts, as ``clip
        similarity --logits --probs`` prints them (numpy arrays)."""
        image = self.embed_images(images, normalize=False)
        text = self.embed_texts(texts, normalize=False)
        matrices = self._native.similarity(image.tobytes(), text.tobytes())
        names = ("cosine", "logits", "probs")
        return {k: _floats(m, len(image), len(text)).copy() for k, m in zip(names, matrices)}


def _cpu_count():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
