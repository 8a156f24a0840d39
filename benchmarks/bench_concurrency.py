"""Issue 29 part 3: many queries at once on a Qdrant server (REST and gRPC).

    python benchmarks/bench_concurrency.py                         # 1, 8, 32, 128 in flight
    python benchmarks/bench_concurrency.py --queries 128 --levels 1,32

One collection: the 1,460 CISI titles written by our LangChain store (dense all-MiniLM-L6-v2
+ BM25). Queries: the 112 CISI queries, cycled. At each level, `n` queries are in flight at
once (async: `n` tasks on one loop; sync: `n` threads) until --queries are answered; printed:
queries/s, p50 and p99 latency, and the ratio of queries/s to the raw side of the same kind.

- ours-async-text / -hybrid: `await store.asimilarity_search(text, k=10)` (query embedded in a
  worker thread; concurrent query embeddings share model runs: embedders QueryBatcher);
- ours-sync-text: `store.similarity_search` from a thread pool;
- ours-async-vector: `asimilarity_search_by_vector` (precomputed query vectors);
- raw-async-vector: `AsyncQdrantClient.query_points`;
- raw-async-text: fastembed `query_embed` of the one query in `asyncio.to_thread`, then
  `query_points` (what a user writes by hand);
- peer-async-text / -hybrid: langchain-qdrant `asimilarity_search` with langchain-community's
  FastEmbedEmbeddings (seeded model) and langchain-qdrant's FastEmbedSparse (if installed).
Sides alternate within each level; the best of --runs is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest_text import MINILM, bm25_path, dense_path  # noqa: E402
from benchmarks.common import CISI_DIR, percentile, read_cisi, read_smart, table, write_json  # noqa: E402

K = 10
NAME = "cisi_titles"
AsyncQuery = Callable[[int], Awaitable[Any]]
SyncQuery = Callable[[int], Any]


def queries() -> list[str]:
    return [" ".join(r.get("W", [])).strip() for r in read_smart(CISI_DIR / "CISI.QRY")
            if r.get("W")]


async def drive_async(query: AsyncQuery, total: int, in_flight: int) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            await query(i)
            latencies.append(time.perf_counter() - start)
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return latencies


def drive_sync(query: SyncQuery, total: int, in_flight: int) -> list[float]:
    def one(i: int) -> float:
        start = time.perf_counter()
        query(i)
        return time.perf_counter() - start
    with ThreadPoolExecutor(in_flight) as pool:
        return list(pool.map(one, range(total)))


def build(url: str) -> None:
    from embedders.langchain import FastEmbedEmbeddings
    from rag_stores.langchain import QdrantVectorStore

    titles = [d.title for d in read_cisi()]
    store = QdrantVectorStore(FastEmbedEmbeddings(), NAME, retrieval_mode="hybrid", url=url,
                              check_compatibility=False, progress=False)
    store.add_texts(titles)
    store.close()


def sides(url: str, grpc_port: int, transport: str, texts: list[str],
          vectors: list[list[float]]) -> dict[str, tuple[str, Any]]:
    """name -> ("async" | "sync", query(i))."""
    from fastembed import TextEmbedding
    from qdrant_client import AsyncQdrantClient

    from embedders.langchain import FastEmbedEmbeddings
    from rag_stores.langchain import QdrantVectorStore

    conn = {"url": url, "grpc_port": grpc_port, "prefer_grpc": transport == "grpc",
            "check_compatibility": False}
    emb = FastEmbedEmbeddings()
    dense = QdrantVectorStore(emb, NAME, retrieval_mode="dense", create_collection=False,
                              progress=False, **conn)
    hybrid = QdrantVectorStore(emb, NAME, retrieval_mode="hybrid", create_collection=False,
                               progress=False, **conn)
    raw_client = AsyncQdrantClient(**conn)
    raw_model = TextEmbedding(MINILM, specific_model_path=dense_path())
    n = len(texts)

    async def raw_vector(i: int) -> Any:
        return await raw_client.query_points(NAME, query=vectors[i % n], using="dense", limit=K,
                                             with_payload=True)

    async def raw_text(i: int) -> Any:
        vec = await asyncio.to_thread(lambda: next(iter(raw_model.query_embed([texts[i % n]]))))
        return await raw_client.query_points(NAME, query=vec.tolist(), using="dense", limit=K,
                                             with_payload=True)

    out: dict[str, tuple[str, Any]] = {
        "raw-async-vector": ("async", raw_vector),
        "ours-async-vector": ("async", lambda i: dense.asimilarity_search_by_vector(
            vectors[i % n], k=K)),
        "raw-async-text": ("async", raw_text),
        "ours-async-text": ("async", lambda i: dense.asimilarity_search(texts[i % n], k=K)),
        "ours-sync-text": ("sync", lambda i: dense.similarity_search(texts[i % n], k=K)),
        "ours-async-hybrid": ("async", lambda i: hybrid.asimilarity_search(texts[i % n], k=K)),
    }
    try:
        from langchain_community.embeddings.fastembed import FastEmbedEmbeddings as Community
        from langchain_qdrant import FastEmbedSparse, RetrievalMode
        from langchain_qdrant import QdrantVectorStore as Peer
        from qdrant_client import QdrantClient
    except ImportError as exc:
        print(f"peers skipped: {exc}")
        return out
    community = Community.model_construct(
        model_name=MINILM, max_length=512, cache_dir=None, threads=None,
        doc_embed_type="default", batch_size=256, parallel=None, providers=None,
        model=TextEmbedding(MINILM, specific_model_path=dense_path()))
    common = {"client": QdrantClient(**conn), "async_client": AsyncQdrantClient(**conn),
              "collection_name": NAME, "embedding": community, "vector_name": "dense",
              "content_payload_key": "text", "metadata_payload_key": "metadata"}
    try:
        peer = Peer(**common)
    except TypeError:  # a langchain-qdrant without async_client=
        common.pop("async_client")
        peer = Peer(**common)
    peer_h = Peer(**common, sparse_embedding=FastEmbedSparse(
        "Qdrant/bm25", specific_model_path=bm25_path()), sparse_vector_name="sparse",
        retrieval_mode=RetrievalMode.HYBRID)
    out["peer-async-text"] = ("async", lambda i: peer.asimilarity_search(texts[i % n], k=K))
    out["peer-async-hybrid"] = ("async", lambda i: peer_h.asimilarity_search(texts[i % n], k=K))
    return out


BASE = {"ours-async-vector": "raw-async-vector", "ours-async-text": "raw-async-text",
        "ours-sync-text": "raw-async-text", "peer-async-text": "raw-async-text",
        "ours-async-hybrid": "raw-async-text", "peer-async-hybrid": "raw-async-text"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=256, help="queries per run")
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--transports", default="rest,grpc")
    parser.add_argument("--sides", default=None, help="comma-separated subset")
    args = parser.parse_args()

    from embedders import DenseEncoder
    from rag_stores.servers.qdrant import QdrantServer

    texts = queries()
    vectors = DenseEncoder().embed_queries(texts)
    load = os.getloadavg()
    print(f"{len(texts)} CISI queries cycled, {args.queries} per run; load average "
          f"{load[0]:.1f}; {os.cpu_count()} cores")
    results: dict[str, Any] = {"load": load, "args": vars(args)}
    binary = os.environ.get("RAG_STORES_QDRANT_BIN", "/work/shared/qdrant/qdrant")
    with QdrantServer(data_dir=None, binary=binary) as server:
        assert server.grpc_port is not None
        build(server.url)
        # One loop for every async side: the async clients stay bound to it.
        asyncio.run(measure(args, server, texts, vectors, results))
    print(f"\nJSON: {write_json('bench_concurrency', results)}")


async def measure(args: argparse.Namespace, server: Any, texts: list[str],
                  vectors: list[list[float]], results: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    for transport in args.transports.split(","):
        all_sides = sides(server.url, server.grpc_port, transport, texts, vectors)
        chosen = {k: v for k, v in all_sides.items()
                  if not args.sides or k in args.sides.split(",")}
        for kind, query in chosen.values():  # warm up: connections, first model runs
            if kind == "async":
                await drive_async(query, 8, 4)
            else:
                await asyncio.to_thread(drive_sync, query, 8, 4)
        for level in (int(x) for x in args.levels.split(",")):
            best: dict[str, tuple[float, list[float]]] = {}
            for r in range(args.runs):
                for name in (list(chosen) if r % 2 == 0 else list(reversed(chosen))):
                    kind, query = chosen[name]
                    start = time.perf_counter()
                    if kind == "async":
                        lat = await drive_async(query, args.queries, level)
                    else:
                        lat = await asyncio.to_thread(drive_sync, query, args.queries, level)
                    qps = args.queries / (time.perf_counter() - start)
                    if qps > best.get(name, (0.0, []))[0]:
                        best[name] = (qps, lat)
            for name, (qps, lat) in best.items():
                base = best.get(BASE.get(name, name), (qps, lat))
                rows.append([transport, level, name, qps, qps / base[0],
                             percentile(lat, 50) * 1000, percentile(lat, 99) * 1000,
                             percentile(lat, 99) / percentile(base[1], 99)])
                results.setdefault("qps", {})[f"{transport}/{level}/{name}"] = {
                    "qps": qps, "p50_ms": percentile(lat, 50) * 1000,
                    "p99_ms": percentile(lat, 99) * 1000}
            print(table(f"\n{transport}, {level} in flight", ["transport", "n", "side",
                        "q/s", "x raw", "p50 ms", "p99 ms", "p99 x raw"],
                        [r for r in rows if r[0] == transport and r[1] == level]),
                  flush=True)


if __name__ == "__main__":
    main()
