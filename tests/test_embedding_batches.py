"""Length-aware embedding (issue 29): texts sorted by length within a window give the same
vectors as the given order, in the caller's order, on the encoders and both faces; the
ingest pipeline prepares a window of batches at once and still writes batch by batch; and
concurrent queries run side by side, each with its own vector, never on the event loop."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from embedders import DenseEncoder, SparseEncoder
from embedders.encoders import SORT_WINDOW
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
    assert li.embed_batch_size == SORT_WINDOW == 1024 and li.encoder.batch_size == 8
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
def test_queries_embedded_at_once_get_their_own_vectors(seeded_models) -> None:
    encoder = DenseEncoder()
    queries = texts(24)
    with ThreadPoolExecutor(max_workers=12) as pool:
        together = list(pool.map(encoder.embed_query, queries))
    alone = [next(iter(encoder.model.query_embed([q]))) for q in queries]
    assert cosines(together, alone).min() >= 0.99999


def test_async_query_embedding_leaves_the_loop_free(seeded_models) -> None:
    from embedders.langchain import FastEmbedEmbeddings

    emb = FastEmbedEmbeddings()
    released = threading.Event()
    inner = emb.encoder._query

    def held(text: str) -> Any:
        assert released.wait(10), "the event loop was blocked while a query was embedded"
        return inner(text)

    async def main() -> list[list[float]]:
        task = asyncio.gather(*(emb.aembed_query(f"query {i}") for i in range(8)))
        await asyncio.sleep(0.05)
        released.set()  # only runs if the loop is free while the model runs
        return await task

    emb.encoder._query = held  # type: ignore[method-assign]
    try:
        vectors = asyncio.run(main())
    finally:
        del emb.encoder._query
    expected = [emb.embed_query(f"query {i}") for i in range(8)]
    assert cosines(vectors, expected).min() >= 0.99999
