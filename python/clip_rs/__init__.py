"""clip_rs: CLIP (Contrastive Language-Image Pre-training) in Rust, as a drop-in for OpenAI's
``clip`` package::

    import clip_rs as clip
    model, preprocess = clip.load("ViT-B/32")
    image = preprocess(Image.open("cat.jpg")).unsqueeze(0)
    text = clip.tokenize(["a cat", "a dog"])
    logits_per_image, logits_per_text = model(image, text)

Arrays are torch tensors when torch is installed (numpy arrays otherwise, or always after
``clip_rs.set_array_backend("numpy")`` / ``CLIP_RS_ARRAYS=numpy``). The fast path for real work
is ``model.embed_images(paths_or_bytes_or_images)`` and ``model.embed_texts(texts)``, which
decode in parallel in Rust and return numpy arrays. ``clip_rs.chroma`` and ``clip_rs.ray`` hold
the Chroma embedding function and the Ray Data embedders (imported on their own).
"""

from ._api import (
    Model,
    Preprocess,
    available_models,
    get_array_backend,
    load,
    set_array_backend,
    tokenize,
)
from ._errors import CheckpointError, ClipError, DeviceError, ImageError, TokenizeError

__all__ = [
    "CheckpointError",
    "ClipError",
    "DeviceError",
    "ImageError",
    "Model",
    "Preprocess",
    "TokenizeError",
    "available_models",
    "get_array_backend",
    "load",
    "set_array_backend",
    "tokenize",
]
