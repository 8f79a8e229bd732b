"""The exceptions of clip_rs. Every one is a ``ClipError``; each is also the builtin exception a
caller would catch for that kind of problem (``ValueError`` for bad inputs, ``OSError`` for
files, ``RuntimeError`` where OpenAI's ``clip`` raises one)."""


class ClipError(Exception):
    """Base class of every error clip_rs raises (messages are the `clip` command's)."""


class ImageError(ClipError, ValueError):
    """An image that cannot be read, decoded or used (names the image and the reason)."""


class CheckpointError(ClipError, OSError):
    """A model that cannot be found, downloaded or loaded (names the file and the reason)."""


class TokenizeError(ClipError, RuntimeError):
    """A text longer than the context length, as ``clip.tokenize`` raises it (RuntimeError)."""


class DeviceError(ClipError, ValueError):
    """A device other than the CPU was asked for."""
