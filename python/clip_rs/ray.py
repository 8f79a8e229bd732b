"""Ray Data integration: ``ImageEmbedder`` and ``TextEmbedder``, callable classes for
``Dataset.map_batches`` that load a clip-rs model once per actor and add an ``embedding`` column
(``fixed_size_list<float32>[dim]``, L2-normalised) and an ``error`` column (null, or why that
row could not be embedded: a bad file never fails the job)::

    import ray
    from clip_rs.ray import ImageEmbedder

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    ds = ds.map_batches(
        ImageEmbedder,
        fn_constructor_kwargs={"model": "ViT-B/32", "column": "bytes", "keep_input_column": False},
        batch_size=256,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=8),  # concurrency=8 on older Ray
        num_cpus=4,
    )
    ds.write_parquet("embeddings/")

Each actor computes with as many threads as Ray gave it CPUs (``num_cpus``), unless ``threads``
says otherwise. A batch may be a dict of numpy arrays (Ray's default), a pandas DataFrame or a
pyarrow Table; the result is always a pyarrow Table (the input's columns, then ``embedding`` and
``error``), so the embedding column keeps its fixed-size float32 type in every block and in the
Parquet files written from it. Failed rows have a NaN embedding and a non-null ``error``.

Importing this module does not import ray (nor does ``import clip_rs``); pyarrow is needed.
"""

import os

import numpy as np

from ._api import load
from ._errors import ClipError

__all__ = ["ImageEmbedder", "TextEmbedder"]


def _assigned_cpus():
    """The CPUs Ray assigned to this actor or task, or None outside a Ray worker."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None:
        try:
            import ray
        except ImportError:
            return None
    try:
        if not ray.is_initialized():
            return None
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:
        return None
    if not cpus:
        return None
    return max(1, int(round(float(cpus))))


def _affinity_cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _threads(threads):
    if threads is not None:
        threads = int(threads)
        if threads < 1:
            raise ClipError(f"threads must be at least 1, got {threads}")
        return threads
    return _assigned_cpus() or _affinity_cpus()


def _to_table(batch):
    """A batch of any of Ray's formats as a pyarrow Table."""
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, dict):
        try:
            from ray.data.block import BlockAccessor

            block = BlockAccessor.batch_to_block(batch)
            if isinstance(block, pa.Table):
                return block
            batch = block
        except ImportError:
            columns = {}
            for name, values in batch.items():
                values = np.asarray(values)
                if values.ndim > 1:
                    flat = pa.array(values.reshape(len(values), -1).ravel())
                    columns[name] = pa.FixedSizeListArray.from_arrays(
                        flat, int(np.prod(values.shape[1:]))
                    )
                else:
                    columns[name] = pa.array(values.tolist())
            return pa.table(columns)
    if hasattr(batch, "columns") and hasattr(batch, "iloc"):  # pandas
        return pa.Table.from_pandas(batch, preserve_index=False).replace_schema_metadata(None)
    raise ClipError(
        f"expected a batch as a dict of numpy arrays, a pandas DataFrame or a pyarrow Table, "
        f"got {type(batch).__name__}"
    )


def _column_values(table, column):
    if column not in table.column_names:
        raise ClipError(
            f"the batch has no column {column!r} (columns: {', '.join(table.column_names)}); "
            "set column=..."
        )
    return table.column(column).to_pylist()


def _output(table, embeddings, errors, drop, dim):
    import pyarrow as pa

    if drop is not None and drop in table.column_names:
        table = table.drop_columns([drop])
    for name in ("embedding", "error"):
        if name in table.column_names:
            table = table.drop_columns([name])
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1))
    embedding = pa.FixedSizeListArray.from_arrays(flat, dim)
    table = table.append_column("embedding", embedding)
    return table.append_column("error", pa.array(errors, type=pa.string()))


class _Embedder:
    def __init__(self, model, precision, column, batch_size, threads, keep_input_column):
        self.column = column
        self.batch_size = int(batch_size)
        self.threads = _threads(threads)
        self.keep_input_column = bool(keep_input_column)
        self.model, _ = load(model, precision=precision, threads=self.threads)
        self.dim = self.model._native.embed_dim

    def _empty(self, n):
        return np.full((n, self.dim), np.nan, dtype=np.float32)


class ImageEmbedder(_Embedder):
    """Image embeddings for ``Dataset.map_batches``: reads ``column`` (``"path"``: local file
    paths, as ``clip embed`` reads them; ``"bytes"``: encoded images, as
    ``ray.data.read_binary_files`` gives them), decodes in parallel in Rust and adds
    ``embedding`` (``fixed_size_list<float32>[dim]``, L2-normalised, NaN when failed) and
    ``error`` (null, or the message: a missing, truncated or non-image file is a row with an
    error, never an exception).

    ``model``: a name of ``clip_rs.available_models()`` or a checkpoint path (reachable from
    every node). ``threads``: compute threads of the actor (default: the CPUs Ray assigned it,
    else the CPUs this process may use). ``keep_input_column``: keep ``column`` in the output
    (drop it for ``bytes``)."""

    def __init__(
        self,
        model="ViT-B/32",
        precision="f32",
        column="path",
        batch_size=32,
        threads=None,
        keep_input_column=True,
    ):
        super().__init__(model, precision, column, batch_size, threads, keep_input_column)

    def __call__(self, batch):
        table = _to_table(batch)
        values = _column_values(table, self.column)
        n = len(values)
        embeddings = self._empty(n)
        errors = [None] * n
        items, rows = [], []
        for i, value in enumerate(values):
            if isinstance(value, (bytes, bytearray, memoryview)):
                if len(value) == 0:
                    errors[i] = "empty file"
                    continue
                items.append(bytes(value))
            elif isinstance(value, (str, os.PathLike)):
                items.append(os.fspath(value))
            else:
                errors[i] = (
                    f"expected a path or encoded image bytes in column {self.column!r}, "
                    f"got {type(value).__name__}"
                )
                continue
            rows.append(i)
        if items:
            embedded, failed = self.model.embed_images(
                items, batch_size=self.batch_size, errors="collect", workers=self.threads
            )
            embeddings[rows] = embedded
            for j, message in failed:
                message = message or "could not embed this image"
                name = f"item[{j}]: "
                if message.startswith(name):  # bytes are named by their place in `items`
                    message = message[len(name):]
                errors[rows[j]] = message
                embeddings[rows[j]] = np.nan
        drop = None if self.keep_input_column else self.column
        return _output(table, embeddings, errors, drop, self.dim)


class TextEmbedder(_Embedder):
    """Text embeddings for ``Dataset.map_batches``: reads ``column`` (strings) and adds
    ``embedding`` (``fixed_size_list<float32>[dim]``, L2-normalised; texts over the context are
    truncated, as ``clip embed`` does) and ``error`` (null, or why the row has no embedding: a
    value that is not a string)."""

    def __init__(
        self,
        model="ViT-B/32",
        precision="f32",
        column="text",
        batch_size=32,
        threads=None,
        keep_input_column=True,
    ):
        super().__init__(model, precision, column, batch_size, threads, keep_input_column)

    def __call__(self, batch):
        table = _to_table(batch)
        values = _column_values(table, self.column)
        n = len(values)
        embeddings = self._empty(n)
        errors = [None] * n
        texts, rows = [], []
        for i, value in enumerate(values):
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError as e:
                    errors[i] = f"not UTF-8 text: {e}"
                    continue
            if not isinstance(value, str):
                errors[i] = (
                    f"expected a string in column {self.column!r}, got {type(value).__name__}"
                )
                continue
            texts.append(value)
            rows.append(i)
        if texts:
            try:
                embeddings[rows] = self.model.embed_texts(texts, batch_size=self.batch_size)
            except Exception:
                # One text spoilt the batch: embed them one by one to find it.
                for text, i in zip(texts, rows):
                    try:
                        embeddings[i] = self.model.embed_texts([text])[0]
                    except Exception as e:
                        errors[i] = str(e) or type(e).__name__
        drop = None if self.keep_input_column else self.column
        return _output(table, embeddings, errors, drop, self.dim)
