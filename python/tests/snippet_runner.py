"""Runs the README snippets of ``snippets/`` and ``snippets_numpy/`` and exports their result
variables. Shared by ``tools/python/make_snippet_goldens.py`` (OpenAI's ``clip``, which writes
``fixtures/goldens/python-snippets.json``) and ``test_snippets.py`` (``clip_rs``), so that both
run the snippets the same way.

A snippet is a README code block: its one ``import clip`` line is the placeholder rewritten to
``import <module> as clip``; the model, image paths and class names are variables injected into
its globals (``MODEL``, ``IMAGE``, ``IMAGES``, ``CLASSES``, ``QUERY``); it leaves its results in
named variables.

As a script (the test runs the numpy snippets this way, in a subprocess that hides torch)::

    python snippet_runner.py SNIPPET.py MODULE INPUTS.json OUT.json NAME...

runs SNIPPET.py with ``import MODULE as clip`` and the globals in INPUTS.json and writes the
named result variables (``export`` form) plus ``"_env"`` (array backend, whether torch can be
imported) to OUT.json.
"""

import contextlib
import io
import json
import math
import re
import sys

_IMPORT = re.compile(r"^import clip$", re.M)


def source(path, module):
    """The snippet's code with its ``import clip`` line rewritten for ``module``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if len(_IMPORT.findall(text)) != 1:
        raise ValueError(f"{path}: expected exactly one `import clip` line (the placeholder)")
    if module == "clip":
        return text
    return _IMPORT.sub(f"import {module} as clip", text)


def run(path, module, inputs, quiet=True):
    """Executes the snippet as a script (``__name__ == "__main__"``) with ``inputs`` as globals;
    returns its globals. ``quiet``: swallow what it prints."""
    code = compile(source(path, module), str(path), "exec")
    scope = {"__name__": "__main__", "__file__": str(path), **inputs}
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        exec(code, scope)
    scope["__stdout__"] = out.getvalue()
    return scope


def _short(x):
    """A float32 value as the shortest decimal that reads back as the same float32."""
    import numpy as np

    if not math.isfinite(x):
        return None
    return float(str(np.float32(x)))


def export(value):
    """A tensor / numpy array / scalar as ``{"dtype", "shape", "data"}`` (data: nested lists;
    floats are float32 values written as the shortest decimal that casts back to them)."""
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        dtype = str(value.dtype).replace("torch.", "")
        value = value.detach().cpu().numpy()
    else:
        value = np.asarray(value)
        dtype = str(value.dtype)
    shape = list(value.shape)
    if value.dtype.kind == "f":
        flat = [_short(x) for x in value.astype(np.float32).ravel().tolist()]
        data = np.array(flat, dtype=object).reshape(value.shape).tolist()
    else:
        data = value.tolist()
    return {"dtype": dtype, "shape": shape, "data": data}


def main(argv):
    snippet, module, inputs_file, out_file, *names = argv
    with open(inputs_file, encoding="utf-8") as f:
        inputs = json.load(f)
    scope = run(snippet, module, inputs)
    result = {name: export(scope[name]) for name in names}
    try:
        import torch  # noqa: F401

        torch_importable = True
    except ImportError:
        torch_importable = False
    clip = sys.modules.get(module)
    result["_env"] = {
        "backend": clip.get_array_backend() if hasattr(clip, "get_array_backend") else None,
        "torch_importable": torch_importable,
        "torch_loaded": "torch" in sys.modules,
        "stdout": scope["__stdout__"],
    }
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])
