"""Length-aware embedding (issue 29): texts sorted by length within a window give the same
vectors as the given order, in the caller's order, on the encoders and both faces; the
ingest pipeline prepares a window of batches at once and still writes batch by batch; and
concurrent queries share model runs without running the model on the event loop."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from embedders import DenseEncoder, SparseEncoder
from embedders.encoders import QueryBatcher
from rag_stores.core.ingest import apipeline, batched, pipeline

WORDS = "library catalogue retrieval index query document user search abstract term".split()


def texts(n: int = 40, seed: int = 3) -> list[str]:
    """Texts of very different lengths (1 to ~300 words: some truncated), shuffled."""
    rng = random.Random(seed)
    out = [" ".join(rng.choice(WORDS) for _ in range(1 + (i * 37) % 300)) for i in range(n)]
    rng.shuffle(out)
    return out


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)


@pytest.fixture(scope="module")
def given_order(seeded_models) -> list[list[float]]:
    return DenseEncoder(batch_size=8, sort_window=0).embed_documents(texts())


@pytest.mark.parametrize("window", [16, 256])  # a generator in windows; a list in one
def test_sorted_windows_give_the_given_order_vectors(given_order, window) -> None:
    encoder = DenseEncoder(batch_size=8, sort_window=window)
    got = encoder.embed_documents(iter(texts()) if window == 16 else texts())
    assert len(got) == len(given_order)
    assert cosines(got, given_order).min() >= 0.99999


def test_faces_give_the_given_order_vectors(given_order) -> None:
    from embedders.langchain import FastEmbedEmbeddings
    from embedders.llama_index import FastEmbedEmbedding

    lc = FastEmbedEmbeddings(batch_size=8)
    li = FastEmbedEmbedding(batch_size=8)
    assert li.embed_batch_size == 256 and li.encoder.batch_size == 8
    assert cosines(lc.embed_documents(texts()), given_order).min() >= 0.99999
    assert cosines(li.get_text_embedding_batch(texts()), given_order).min() >= 0.99999
    assert cosines(asyncio.run(lc.aembed_documents(texts())), given_order).min() >= 0.99999


def test_sparse_bm25_is_unchanged(seeded_models) -> None:
    sorted_, given = SparseEncoder(), SparseEncoder(sort_window=0)
    assert sorted_.embed_documents(texts(20)) == given.embed_documents(texts(20))


def test_bad_sort_window(seeded_models) -> None:
    with pytest.raises(ValueError, match="sort_window"):
        DenseEncoder(sort_window=-1)


# --- the pipeline's window ---------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_window_is_prepared_together_and_written_batch_by_batch(mode) -> None:
    prepared: list[int] = []
    written: list[list[int]] = []
    read = [0]
    ahead: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            read[0] = i
            ahead.append(i - sum(map(len, written)))
            yield i

    def prepare(batch: list[int]) -> list[int]:
        prepared.append(len(batch))
        return [x * 10 for x in batch]

    def write(batch: list[int]) -> None:
        written.append(batch)

    async def awrite(batch: list[int]) -> None:
        written.append(batch)

    if mode == "sync":
        pipeline(batched(items(), 8), prepare, write, window=30)
    else:
        asyncio.run(apipeline(batched(items(), 8), prepare, awrite, window=30))
    assert prepared == [32, 32, 32, 4]  # whole batches up to >= 30 items, then the rest
    assert [len(b) for b in written] == [8] * 12 + [4]
    assert [x for b in written for x in b] == [x * 10 for x in range(100)]
    assert max(ahead) <= 32 * 2 + 8  # the window prepared, the one read, a batch


# --- queries at once ---------------------------------------------------------------------
def _queued_runs(*, runners: int, queued: int, limit: int = 64, fair: bool = True) -> list[int]:
    """Sizes of the model runs when `queued` callers queue while the first `runners` run
    (each run holds on until every caller has queued); every caller gets its own result."""
    runs: list[int] = []
    lock = threading.Lock()
    gate = threading.Event()

    def embed(batch: list[str]) -> list[str]:
        with lock:
            runs.append(len(batch))
        gate.wait(5)
        return [t.upper() for t in batch]

    batcher = QueryBatcher(embed, limit=limit, runners=runners, fair=fair)
    results: dict[int, str] = {}

    def call(i: int) -> None:
        results[i] = batcher(f"q{i}")

    total = runners + queued
    threads = [threading.Thread(target=call, args=(i,)) for i in range(total)]
    for t in threads[:runners]:
        t.start()
    while len(runs) < runners:
        threading.Event().wait(0.001)
    for t in threads[runners:]:
        t.start()
    while len(batcher.queue) < queued:
        threading.Event().wait(0.001)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == {i: f"Q{i}" for i in range(total)}
    return runs


def test_concurrent_queries_share_runs_and_get_their_own_vectors() -> None:
    assert _queued_runs(runners=1, queued=19, limit=8) == [1, 8, 8, 3]


def test_a_free_runner_takes_its_share_of_the_queue_not_all_of_it() -> None:
    """One runner taking all 24 queued queries ran them while the other 3 idled (CISI
    queries: benchmarks/bench_concurrency.py --batcher)."""
    runs = _queued_runs(runners=4, queued=24)
    assert runs[:4] == [1, 1, 1, 1]
    assert sum(runs[4:]) == 24 and max(runs[4:]) <= 6  # ceil(24 / 4 runners)
    assert len(runs[4:]) >= 4
    greedy = _queued_runs(runners=4, queued=24, fair=False)
    assert greedy[4:] == [24]


def test_a_failed_run_fails_each_of_its_callers_and_not_the_next() -> None:
    def embed(batch: list[str]) -> list[str]:
        if "bad" in batch:
            raise RuntimeError("model failed")
        return batch

    batcher = QueryBatcher(embed)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher("bad")
    assert batcher("good") == "good"


def test_async_query_embedding_leaves_the_loop_free(seeded_models) -> None:
    from embedders.langchain import FastEmbedEmbeddings

    emb = FastEmbedEmbeddings()
    batcher = emb.encoder._queries_batcher
    released = threading.Event()
    inner = batcher.embed

    def held(batch: list[str]) -> list:
        assert released.wait(10), "the event loop was blocked while a query was embedded"
        return inner(batch)

    async def main() -> list[list[float]]:
        task = asyncio.gather(*(emb.aembed_query(f"query {i}") for i in range(8)))
        await asyncio.sleep(0.05)
        released.set()  # only runs if the loop is free while the model runs
        return await task

    batcher.embed = held
    try:
        vectors = asyncio.run(main())
    finally:
        batcher.embed = inner
    expected = [emb.embed_query(f"query {i}") for i in range(8)]
    assert cosines(vectors, expected).min() >= 0.99999


def test_a_batch_of_queries_runs_by_length_with_the_single_query_vectors(seeded_models) -> None:
    from embedders.encoders import _query_embedder, _runs

    assert list(_runs([0, 1, 2, 3], [100, 90, 20, 18])) == [[0, 1], [2, 3]]
    encoder = DenseEncoder()
    queries = texts(12)
    batched_ = _query_embedder(encoder.model)(queries)
    alone = [next(iter(encoder.model.query_embed([q]))) for q in queries]
    assert cosines(batched_, alone).min() >= 0.99999
