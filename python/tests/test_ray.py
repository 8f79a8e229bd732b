"""clip_rs.ray on a real local Ray cluster (2 CPUs): ImageEmbedder over every committed good and
broken image with two actors, each good row bit for bit the embedding `clip embed` prints, each
broken one an error and a NaN row, through Parquet and back; the bytes column as
read_binary_files gives it; TextEmbedder; threads following the CPUs Ray assigns; and
examples/ray_embed.py end to end (Parquet in clip-retrieval's column names, then Chroma)."""

import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from _chroma_server import chroma_server
from conftest import ROOT, need

DIM = 32
TEXTS = [
    "a dog",
    "a photo of a tabby cat, a type of pet.",
    "café crème brûlée naïve résumé",
    "",
    "a very long caption " + " ".join(f"word{i} and more" for i in range(60)),
]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = need("ray")
    need("ray.data")
    need("pyarrow")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=256 * 1024 * 1024,
        )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    # Functions of this module run in Ray workers, which cannot import it: send them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    if started:
        ray.shutdown()


def actors(ray, n):
    """map_batches arguments for ``n`` actors (``compute=`` where ``concurrency=`` is
    deprecated, Ray >= 2.51)."""
    try:
        return {"compute": ray.data.ActorPoolStrategy(size=n)}
    except (AttributeError, TypeError):
        return {"concurrency": n}


def clip_embed(clip_bin, model_path, images=(), texts=()):
    """``clip embed``'s normalised embeddings (printed JSON, cast to float32)."""
    args = [clip_bin, "embed", "--model", model_path]
    for image in images:
        args += ["--image", str(image)]
    for text in texts:
        args += ["--text", text]
    out = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    return (
        {r["path"]: np.asarray(r["embedding"], dtype=np.float32) for r in out["images"]},
        [np.asarray(r["embedding"], dtype=np.float32) for r in out["texts"]],
    )


def rows_by(table, key):
    embeddings = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    return {
        k: (embeddings[i], e)
        for i, (k, e) in enumerate(zip(table.column(key).to_pylist(), table["error"].to_pylist()))
    }


def check_embedding_column(table):
    import pyarrow as pa

    assert table.schema.field("embedding").type == pa.list_(pa.float32(), DIM)
    assert table.schema.field("error").type == pa.string()


def test_importing_clip_rs_ray_does_not_import_ray():
    code = (
        "import sys, clip_rs, clip_rs.ray; "
        "print('ray' in sys.modules, 'chromadb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_image_embedder_on_a_cluster(
    ray_cluster, tmp_path, model_path, good_images, bad_images, clip_bin
):
    import pyarrow.parquet as pq

    from clip_rs.ray import ImageEmbedder

    ray = ray_cluster
    missing = tmp_path / "missing.jpg"
    inputs = [str(p) for p in good_images + bad_images] + [str(missing)]
    expected, _ = clip_embed(clip_bin, model_path, images=good_images)

    ds = ray.data.from_items([{"path": p} for p in inputs], override_num_blocks=6)
    ds = ds.map_batches(
        ImageEmbedder,
        fn_constructor_kwargs={"model": model_path, "column": "path", "batch_size": 3},
        batch_size=4,
        num_cpus=1,
        **actors(ray, 2),
    )
    ds.write_parquet(str(tmp_path / "by-path"))
    table = pq.read_table(tmp_path / "by-path")
    check_embedding_column(table)
    assert table.num_rows == len(inputs)
    rows = rows_by(table, "path")
    assert sorted(rows) == sorted(inputs)
    for p in good_images:
        embedding, error = rows[str(p)]
        assert error is None, f"{p.name}: {error}"
        assert embedding.tobytes() == expected[str(p)].tobytes(), p.name
    for p in bad_images + [missing]:
        embedding, error = rows[str(p)]
        assert isinstance(error, str) and error, p.name
        assert np.isnan(embedding).all(), p.name

    # The same files as ray.data.read_binary_files gives them (bytes and path columns).
    ds = ray.data.read_binary_files(
        [str(p) for p in good_images + bad_images], include_paths=True
    )
    ds = ds.map_batches(
        ImageEmbedder,
        fn_constructor_kwargs={"model": model_path, "column": "bytes", "keep_input_column": False},
        batch_size=8,
        batch_format="pyarrow",
        num_cpus=1,
        **actors(ray, 1),
    )
    ds.write_parquet(str(tmp_path / "by-bytes"))
    table = pq.read_table(tmp_path / "by-bytes")
    check_embedding_column(table)
    assert "bytes" not in table.column_names
    by_bytes = rows_by(table, "path")
    assert sorted(by_bytes) == sorted(str(p) for p in good_images + bad_images)
    for path, (embedding, error) in by_bytes.items():
        if path in expected:
            assert error is None and embedding.tobytes() == expected[path].tobytes(), path
        else:
            assert error and np.isnan(embedding).all(), path


def test_text_embedder_on_a_cluster(ray_cluster, model_path, clip_bin):
    from clip_rs.ray import TextEmbedder

    ray = ray_cluster
    _, expected = clip_embed(clip_bin, model_path, texts=TEXTS)
    ds = ray.data.from_items([{"text": t, "n": i} for i, t in enumerate(TEXTS)])
    ds = ds.union(ray.data.from_items([{"text": None, "n": len(TEXTS)}]))
    ds = ds.map_batches(
        TextEmbedder,
        fn_constructor_kwargs={"model": model_path},
        batch_size=4,
        num_cpus=1,
        **actors(ray, 1),
    )
    rows = ds.take_all()
    assert len(rows) == len(TEXTS) + 1
    for row in rows:
        embedding = np.asarray(row["embedding"], dtype=np.float32)
        assert embedding.shape == (DIM,)
        if row["n"] < len(TEXTS):
            assert row["error"] is None
            assert embedding.tobytes() == expected[row["n"]].tobytes(), row["text"]
        else:
            assert row["error"] and np.isnan(embedding).all()


def embedder_in_a_worker(model_path, image, threads):
    """Runs in a Ray task: the threads an ImageEmbedder picks there, and its output for one
    batch given as a dict of numpy arrays, a pandas DataFrame and a pyarrow Table."""
    import pandas as pd
    import pyarrow as pa

    from clip_rs.ray import ImageEmbedder

    embedder = ImageEmbedder(model=model_path, threads=threads)
    paths = [image, "/nonexistent/image.png"]
    outputs = [
        embedder({"path": np.array(paths, dtype=object), "n": np.arange(2)}),
        embedder(pd.DataFrame({"path": paths, "n": [0, 1]})),
        embedder(pa.table({"path": paths, "n": [0, 1]})),
    ]
    return embedder.threads, [
        (t.column_names, str(t.schema.field("embedding").type), t.to_pylist()) for t in outputs
    ]


def test_threads_follow_the_cpus_of_the_actor(ray_cluster, model_path, good_images):
    ray = ray_cluster
    image = str(good_images[0])
    work = ray.remote(embedder_in_a_worker)
    runs = ray.get(
        [
            work.options(num_cpus=1).remote(model_path, image, None),
            work.options(num_cpus=2).remote(model_path, image, None),
            work.options(num_cpus=1).remote(model_path, image, 3),
        ]
    )
    assert [threads for threads, _ in runs] == [1, 2, 3]
    first = None
    for _, outputs in runs:
        for columns, embedding_type, rows in outputs:
            assert columns == ["path", "n", "embedding", "error"]
            assert embedding_type == f"fixed_size_list<item: float>[{DIM}]"
            assert rows[0]["error"] is None and rows[1]["error"]
            assert all(np.isnan(rows[1]["embedding"]))
            first = first or rows[0]["embedding"]
            assert rows[0]["embedding"] == first  # same numbers whatever the threads


@pytest.fixture(scope="module")
def chroma_address(tmp_path_factory):
    need("chromadb")
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as address:
        yield address


def test_example_script(
    ray_cluster, tmp_path, model_path, good_images, bad_images, clip_bin, chroma_address
):
    import chromadb
    import pyarrow as pa
    import pyarrow.parquet as pq

    ray = ray_cluster
    expected, _ = clip_embed(clip_bin, model_path, images=good_images)
    collection = f"clip-rs-ray-{uuid.uuid4().hex[:12]}"
    output = tmp_path / "out"
    args = [
        sys.executable, str(ROOT / "examples" / "ray_embed.py"),
        "--input", str(ROOT / "fixtures" / "images"),
        "--output", str(output),
        "--model", model_path,
        "--concurrency", "2",
        "--num-cpus", "1",
        "--batch-size", "4",
        "--address", ray.get_runtime_context().gcs_address,
        "--chroma", f"{chroma_address[0]}:{chroma_address[1]}/{collection}",
        "--query", "a dog",
    ]
    run = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["images"] == len(good_images)
    assert summary["failed"] == len(bad_images)
    assert sorted(f["image_path"] for f in summary["failures"]) == [str(p) for p in bad_images]
    assert all(f["error"] for f in summary["failures"])

    table = pq.read_table(output)  # skips _failed/
    assert table.column_names == ["image_path", "embedding"]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), DIM)
    got = dict(zip(table["image_path"].to_pylist(), table["embedding"].to_pylist()))
    assert sorted(got) == sorted(expected)
    for path, embedding in got.items():
        assert np.asarray(embedding, dtype=np.float32).tobytes() == expected[path].tobytes(), path
    failed = []
    for name in os.listdir(output / "_failed"):
        lines = (output / "_failed" / name).read_text(encoding="utf-8").splitlines()
        failed += [json.loads(line) for line in lines]
    assert sorted(f["image_path"] for f in failed) == [str(p) for p in bad_images]

    client = chromadb.HttpClient(host=chroma_address[0], port=chroma_address[1])
    try:
        import clip_rs.chroma  # noqa: F401  (registers the collection's embedding function)

        stored = client.get_collection(collection)
        assert stored.count() == len(good_images)
        assert stored.configuration_json["embedding_function"]["name"] == "clip_rs"
        assert summary["chroma"]["added"] == len(good_images)
        here = stored.query(query_texts=["a dog"], n_results=5)["ids"][0]
        assert set(summary["chroma"]["queries"]["a dog"]) == set(here)  # ties: any order
        assert set(here) <= set(expected)
    finally:
        client.delete_collection(collection)
