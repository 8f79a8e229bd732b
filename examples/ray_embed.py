#!/usr/bin/env python3
"""Embed a folder of images with clip-rs on a Ray cluster, write the embeddings as Parquet, and
optionally load them into a Chroma collection.

    python examples/ray_embed.py --input photos/ --output embeddings/ --model ViT-B/32
    python examples/ray_embed.py --input s3://bucket/photos/ --output s3://bucket/emb/ \\
        --concurrency 16 --num-cpus 4 --chroma chroma.internal:8000/photos

--input: a local folder or any URI pyarrow understands (s3://, gs://, abfs://, hdfs://, ...),
walked recursively for image files (--extensions). --read bytes (default) reads the files with
Ray Data (any filesystem, any node); --read path hands local paths to the embedders, which read
them in Rust (a local or shared filesystem that every node sees at the same path).

--output: a Parquet dataset in the column names of clip-retrieval / embedding-reader:
``image_path`` (string) and ``embedding`` (fixed_size_list<float32>[dim], L2-normalised), one
row per image that could be embedded, readable by ``pyarrow.parquet.read_table``, pandas or
``ray.data.read_parquet``; the names are embedding-reader's defaults for Parquet
(``file_format="parquet"``, ``embedding_column="embedding"``, ``meta_columns=["image_path"]``). Images that could not be read (truncated,
not an image, decompression bombs) never stop the job: they are listed in
``OUTPUT/_failed/*.jsonl`` as ``{"image_path", "error"}`` (Parquet readers skip ``_`` folders).

--chroma HOST:PORT/COLLECTION: afterwards, add the embeddings (precomputed: nothing is embedded
twice) to that collection of a Chroma server, ids = image paths, metadata ``{"path"}``. The
collection is created with ``clip_rs.chroma.ClipEmbeddingFunction`` for the same model, so that
``collection.query(query_texts=[...])`` works from any client that imports ``clip_rs.chroma``.

The Ray cluster: --address (default: $RAY_ADDRESS, else the cluster `ray start` started on this
machine, else a new local one). --concurrency: embedding actors (each loads the model once);
--num-cpus: CPUs per actor, which is also its number of compute threads. Prints one JSON summary
line on stdout.
"""

import argparse
import json
import os
import sys
import uuid

EXTENSIONS = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--input", required=True, help="folder or pyarrow filesystem URI of images")
    p.add_argument("--output", required=True, help="Parquet output folder or URI")
    p.add_argument("--model", default="ViT-B/32", help="model name or checkpoint path")
    p.add_argument("--precision", default="f32", choices=["f32", "bf16", "f16", "int8"])
    p.add_argument("--read", default="bytes", choices=["bytes", "path"])
    p.add_argument("--extensions", default=",".join(EXTENSIONS), help="comma-separated")
    p.add_argument("--concurrency", type=int, default=1, help="embedding actors")
    p.add_argument("--num-cpus", type=float, default=1, help="CPUs (= threads) per actor")
    p.add_argument(
        "--read-cpus",
        type=float,
        default=0,
        help="CPUs reserved per read/write task (I/O: 0 lets them run beside the actors)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per batch of an actor")
    p.add_argument("--address", default=None, help="Ray cluster address (default: auto)")
    p.add_argument("--chroma", default=None, help="HOST:PORT/COLLECTION to add the embeddings to")
    p.add_argument("--query", action="append", default=[], help="text query to run on --chroma")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return p.parse_args(argv)


def list_images(uri, extensions):
    """Sorted paths of the image files under ``uri`` (for --read path)."""
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(os.path.abspath(uri) if "://" not in uri else uri)
    if not isinstance(fs, pafs.LocalFileSystem):
        sys.exit("--read path needs a local (or shared) folder; use --read bytes for " + uri)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return sorted(
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and i.base_name.rsplit(".", 1)[-1].lower() in extensions
        and not i.base_name.startswith(".")
    )


def output_fs(uri, overwrite):
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(os.path.abspath(uri) if "://" not in uri else uri)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.Directory:
        if fs.get_file_info(pafs.FileSelector(root, recursive=False)):
            if not overwrite:
                sys.exit(f"{uri} exists and is not empty (use --overwrite to replace it)")
            fs.delete_dir_contents(root)
    elif info.type != pafs.FileType.NotFound:
        sys.exit(f"{uri} exists and is not a folder")
    fs.create_dir(root + "/_failed", recursive=True)
    return fs, root


def split_failures(table, output):
    """Writes the failed rows of a batch to ``OUTPUT/_failed/<uuid>.jsonl`` and passes the
    others on without the ``error`` column (a streaming stage: no second pass over the data)."""
    import pyarrow.compute as pc
    import pyarrow.fs as pafs

    failed = table.filter(pc.is_valid(table["error"]))
    if failed.num_rows:
        fs, root = pafs.FileSystem.from_uri(output)
        lines = "".join(
            json.dumps({"image_path": p, "error": e}) + "\n"
            for p, e in zip(failed["image_path"].to_pylist(), failed["error"].to_pylist())
        )
        with fs.open_output_stream(f"{root}/_failed/{uuid.uuid4().hex}.jsonl") as f:
            f.write(lines.encode("utf-8"))
    good = table.filter(pc.is_null(table["error"]))
    return good.select(["image_path", "embedding"])


def actors(ray, n):
    """map_batches arguments for a pool of ``n`` actors (compute= on Ray >= 2.51, where
    concurrency= is deprecated; concurrency= before)."""
    try:
        return {"compute": ray.data.ActorPoolStrategy(size=n)}
    except (AttributeError, TypeError):
        return {"concurrency": n}


def cpus(fn, n):
    """``num_cpus=n`` where ``fn`` takes it (Ray >= 2.5x), else ``ray_remote_args``."""
    import inspect

    if "num_cpus" in inspect.signature(fn).parameters:
        return {"num_cpus": n}
    return {"ray_remote_args": {"num_cpus": n}}


def embed(args):
    import ray

    from clip_rs.ray import ImageEmbedder

    extensions = [e.strip().lower().lstrip(".") for e in args.extensions.split(",") if e.strip()]
    output_uri = os.path.abspath(args.output) if "://" not in args.output else args.output
    fs, root = output_fs(output_uri, args.overwrite)
    model = args.model
    if os.path.exists(model):
        model = os.path.abspath(model)  # the actors may run elsewhere: no relative paths

    ray.init(address=args.address)
    if args.read == "bytes":
        source = os.path.abspath(args.input) if "://" not in args.input else args.input
        ds = ray.data.read_binary_files(
            source,
            include_paths=True,
            file_extensions=extensions,
            **cpus(ray.data.read_binary_files, args.read_cpus),
        )
        kwargs = {"column": "bytes", "keep_input_column": False}
    else:
        paths = list_images(args.input, extensions)
        if not paths:
            sys.exit(f"no images under {args.input}")
        ds = ray.data.from_items([{"path": p} for p in paths])
        kwargs = {"column": "path"}
    ds = ds.map_batches(
        ImageEmbedder,
        fn_constructor_kwargs={
            "model": model,
            "precision": args.precision,
            "batch_size": min(args.batch_size, 32),
            **kwargs,
        },
        batch_size=args.batch_size,
        batch_format="pyarrow",
        num_cpus=args.num_cpus,
        **actors(ray, args.concurrency),
    )
    ds = ds.rename_columns({"path": "image_path"})
    ds = ds.map_batches(
        split_failures, fn_args=(output_uri,), batch_format="pyarrow", num_cpus=args.read_cpus
    )
    ds.write_parquet(output_uri, **cpus(ds.write_parquet, args.read_cpus))

    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    rows = pads.dataset(root, filesystem=fs, format="parquet").count_rows()
    failed = []
    for info in fs.get_file_info(pafs.FileSelector(root + "/_failed")):
        with fs.open_input_stream(info.path) as f:
            failed += [json.loads(line) for line in f.read().decode("utf-8").splitlines() if line]
    return output_uri, fs, root, rows, sorted(failed, key=lambda r: r["image_path"])


def to_chroma(args, fs, root):
    import chromadb
    import pyarrow.dataset as pads

    from clip_rs.chroma import ClipEmbeddingFunction

    address, _, name = args.chroma.partition("/")
    host, _, port = address.rpartition(":")
    if not (host and port and name):
        sys.exit(f"--chroma {args.chroma!r}: expected HOST:PORT/COLLECTION")
    client = chromadb.HttpClient(host=host, port=int(port))
    model = os.path.abspath(args.model) if os.path.exists(args.model) else args.model
    ef = ClipEmbeddingFunction(model=model, precision=args.precision)
    collection = client.get_or_create_collection(name, embedding_function=ef)
    step = min(client.get_max_batch_size(), 1000)
    added = 0
    dataset = pads.dataset(root, filesystem=fs, format="parquet")
    for batch in dataset.to_batches(columns=["image_path", "embedding"], batch_size=step):
        paths = batch.column("image_path").to_pylist()
        if not paths:
            continue
        dim = batch.schema.field("embedding").type.list_size
        values = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
        embeddings = values.reshape(len(paths), dim)
        collection.upsert(
            ids=paths, embeddings=embeddings, metadatas=[{"path": p} for p in paths]
        )
        added += len(paths)
    results = {}
    if args.query:
        found = collection.query(query_texts=args.query, n_results=5, include=["distances"])
        results = {q: ids for q, ids in zip(args.query, found["ids"])}
    return added, results


def main(argv=None):
    args = parse_args(argv)
    output, fs, root, rows, failed = embed(args)
    summary = {"output": output, "images": rows, "failed": len(failed), "failures": failed[:100]}
    if args.chroma:
        added, results = to_chroma(args, fs, root)
        summary["chroma"] = {"collection": args.chroma, "added": added, "queries": results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
