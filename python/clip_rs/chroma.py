"""Chroma integration: ``ClipEmbeddingFunction``, an embedding function for chromadb >= 1.0 that
embeds documents (strings) and images (the H x W [x C] numpy arrays Chroma passes, directly or
through its ``ImageLoader`` from ``uris``) with a clip-rs model::

    import chromadb
    from chromadb.utils.data_loaders import ImageLoader
    from clip_rs.chroma import ClipEmbeddingFunction

    client = chromadb.PersistentClient(path="db")
    photos = client.get_or_create_collection(
        "photos",
        embedding_function=ClipEmbeddingFunction(model="ViT-B/32"),
        data_loader=ImageLoader(),
    )
    photos.add(ids=["cat"], uris=["cat.jpg"])
    photos.query(query_texts=["a photo of a cat"], n_results=5)

The function is registered with chromadb under the name ``"clip_rs"`` and serialises as
``{"model": ..., "precision": ...}``, so a collection created with it records it in its
configuration: reopened later (another process, the same server) with
``client.get_collection("photos")`` it is rebuilt from that configuration, and reopening it with
``embedding_function=ClipEmbeddingFunction(...)`` is no conflict. The process that reopens the
collection must have imported ``clip_rs.chroma`` (that import is the registration).

Images: H x W x 3 uint8 arrays (``np.asarray(image.convert("RGB"))``) are read as RGB. Chroma's
``ImageLoader`` hands over ``np.array(PIL.Image.open(uri))``, which keeps the mode's samples for
RGB, RGBA, L, LA, 1-bit and 16-bit files (they embed exactly as the files do) but drops the
palette of palette images and turns CMYK into 4 channels read as RGBA: for such files, pass RGB
arrays or precomputed embeddings (``Model.embed_images(paths)``).

Embeddings are L2-normalised float32 (the collection's default space is cosine). Models are
loaded once per process for each ``(model, precision)``: chromadb rebuilds the function from the
configuration often (each call of a collection reopened without one), and these rebuilds share
the loaded model.

This module is the only part of clip_rs that imports chromadb.
"""

import os
import threading

import numpy as np

try:
    from chromadb.api.types import EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "clip_rs.chroma needs chromadb >= 1.0 (pip install 'clip-rs[chroma]' or pip install "
        f"chromadb): {e}"
    ) from e

from ._api import load
from ._errors import ClipError, ImageError

__all__ = ["ClipEmbeddingFunction"]

_PRECISIONS = ("f32", "bf16", "f16", "int8")
_CONFIG_KEYS = ("model", "precision")

_models = {}
_models_lock = threading.Lock()


def _shared_model(model, precision):
    """The loaded model for ``(model, precision)``, loaded on first use in this process."""
    key = (model, precision)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            loaded, _ = load(model, precision=precision)
            _models[key] = loaded
        return loaded


def _image_item(array, index):
    """One image of Chroma's (an array as ``np.array(PIL.Image.open(...))`` gives it, or the
    H x W x 3 uint8 array users pass) as an item ``Model.embed_images`` accepts."""
    array = np.asarray(array)
    if array.dtype == np.uint8 and (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    ):
        return array  # RGB, RGBA or L: read as they are, without a round trip through PIL
    if array.ndim == 3 and array.shape[2] == 1:
        return _image_item(array[:, :, 0], index)
    # Anything else PIL can represent (LA, 1-bit, 16-bit, 32-bit ...), as OpenCLIP's
    # embedding function reads it: PIL.Image.fromarray, then the model's transform.
    try:
        from PIL import Image
    except ImportError:
        raise ImageError(
            f"image {index}: an array of shape {array.shape} and dtype {array.dtype} needs "
            "Pillow installed (pip install Pillow); without it, pass H x W x 3 uint8 arrays"
        ) from None
    try:
        return Image.fromarray(np.ascontiguousarray(array))
    except Exception as e:
        raise ImageError(
            f"image {index}: cannot use an array of shape {array.shape} and dtype "
            f"{array.dtype} as an image ({e}); expected H x W x 3 uint8"
        ) from None


@register_embedding_function
class ClipEmbeddingFunction(EmbeddingFunction):
    """Chroma embedding function backed by a clip-rs model: documents (strings) through the
    text tower, images (numpy arrays) through the image tower, into the same L2-normalised
    space, so text queries find images and the reverse.

    ``model``: a name from ``clip_rs.available_models()`` (downloaded into the cache once) or a
    checkpoint path, stored as given in the collection's configuration (use a path that exists
    wherever the collection is reopened). ``precision``: ``f32`` (the reference's numbers),
    ``bf16``, ``f16`` or ``int8``. ``batch_size``: inputs per forward pass (not part of the
    configuration)."""

    def __init__(self, model="ViT-B/32", precision="f32", batch_size=32):
        model = os.fspath(model)
        precision = str(precision)
        self.validate_config({"model": model, "precision": precision})
        self.model_name = model
        self.precision = precision
        self.batch_size = int(batch_size)
        self._model = _shared_model(model, precision)

    @property
    def model(self):
        """The loaded ``clip_rs.Model``."""
        return self._model

    @property
    def dim(self):
        """Width of the embeddings."""
        return self._model._native.embed_dim

    def __call__(self, input):
        """Embeddings of ``input``, a list of documents (str) and/or images (numpy arrays), in
        order: one float32 numpy array per item, L2-normalised. A bad image raises
        ``clip_rs.ImageError`` naming it (Chroma has no way to store a failed row)."""
        if isinstance(input, str) or (isinstance(input, np.ndarray) and input.ndim in (2, 3)):
            input = [input]  # one document or one image
        items = list(input)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        texts, text_rows, images, image_rows = [], [], [], []
        for i, item in enumerate(items):
            if isinstance(item, str):
                texts.append(item)
                text_rows.append(i)
            elif isinstance(item, np.ndarray) or _is_pil(item):
                images.append(item if _is_pil(item) else _image_item(item, i))
                image_rows.append(i)
            elif item is None:
                raise ImageError(f"item {i}: nothing to embed (None: a missing uri?)")
            else:
                raise ClipError(
                    f"item {i}: expected a document (str) or an image (numpy array), got "
                    f"{type(item).__name__}"
                )
        if texts:
            out[text_rows] = self._model.embed_texts(texts, batch_size=self.batch_size)
        if images:
            embedded, failed = self._model.embed_images(
                images, batch_size=self.batch_size, errors="collect"
            )
            if failed:
                i, message = failed[0]
                more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
                raise ImageError(f"image {image_rows[i]}: {message}{more}")
            out[image_rows] = embedded
        return [row for row in out]

    # -- chromadb's embedding-function protocol -------------------------------------------------
    @staticmethod
    def name():
        return "clip_rs"

    def default_space(self):
        return "cosine"

    def supported_spaces(self):
        return ["cosine", "l2", "ip"]

    def get_config(self):
        return {"model": self.model_name, "precision": self.precision}

    @staticmethod
    def build_from_config(config):
        ClipEmbeddingFunction.validate_config(config)
        return ClipEmbeddingFunction(
            model=config.get("model", "ViT-B/32"), precision=config.get("precision", "f32")
        )

    def is_legacy(self):
        return False

    @staticmethod
    def validate_config(config):
        if not isinstance(config, dict):
            raise ValueError(f"clip_rs embedding function: config must be a dict, got {config!r}")
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise ValueError(f"clip_rs embedding function: unknown config keys {unknown}")
        model = config.get("model", "ViT-B/32")
        if not isinstance(model, str) or not model:
            raise ValueError(
                f"clip_rs embedding function: model must be a non-empty string, got {model!r}"
            )
        precision = config.get("precision", "f32")
        if precision not in _PRECISIONS:
            raise ValueError(
                f"clip_rs embedding function: precision must be one of {', '.join(_PRECISIONS)}, "
                f"got {precision!r}"
            )

    def validate_config_update(self, old_config, new_config):
        if "model" in new_config and new_config["model"] != old_config.get("model"):
            raise ValueError(
                "the model of a clip_rs embedding function cannot be changed: the collection's "
                "embeddings were made with the old one"
            )
        if "precision" in new_config:
            self.validate_config({"precision": new_config["precision"]})

    def __repr__(self):
        return f"ClipEmbeddingFunction(model={self.model_name!r}, precision={self.precision!r})"


def _is_pil(x):
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(x, Image.Image)
