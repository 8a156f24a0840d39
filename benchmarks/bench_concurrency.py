"""Issue 29 part 3: many queries at once on a Qdrant server (REST and gRPC) and on Weaviate.

    python benchmarks/bench_concurrency.py                         # 1, 8, 32, 128 in flight
    python benchmarks/bench_concurrency.py --queries 128 --levels 1,32
    python benchmarks/bench_concurrency.py --engines weaviate --levels 32
    python benchmarks/bench_concurrency.py --model          # query embedding alone, 32 threads

One collection: the 1,460 CISI titles written by our LangChain store (dense all-MiniLM-L6-v2
+ BM25). Queries: the 112 CISI queries, cycled. At each level, `n` queries are in flight at
once (async: `n` tasks on one loop; sync: `n` threads) until --queries are answered; printed:
queries/s, p50 and p99 latency, and the ratio of queries/s to the raw side of the same kind.

- ours-async-text / -hybrid: `await store.asimilarity_search(text, k=10)` (query embedded in a
  worker thread; concurrent queries run the model side by side, one query per run);
- ours-sync-text: `store.similarity_search` from a thread pool;
- ours-async-vector: `asimilarity_search_by_vector` (precomputed query vectors);
- raw-async-vector: `AsyncQdrantClient.query_points`;
- raw-async-text: fastembed `query_embed` of the one query in `asyncio.to_thread`, then
  `query_points` (what a user writes by hand);
- peer-async-text / -hybrid: langchain-qdrant `asimilarity_search` with langchain-community's
  FastEmbedEmbeddings (seeded model) and langchain-qdrant's FastEmbedSparse (if installed);
- ours-li-async-text / -hybrid: the LlamaIndex face, `index.as_retriever(similarity_top_k=10)
  .aretrieve(text)` over our LlamaIndex QdrantVectorStore (same collection) with
  embedders.llama_index.FastEmbedEmbedding (hybrid: vector_store_query_mode="hybrid");
- peer-li-async-text: the same retriever over llama-index-vector-stores-qdrant (aclient=) with
  llama-index's FastEmbedEmbedding (seeded model), on its own collection of the same titles
  (written with their precomputed vectors, in its layout).

Weaviate (--engines weaviate; one Weaviate server, gRPC queries; collection of the same
titles written by our LangChain store, hybrid; the peers' collections in their own layouts):
- raw-async-vector / raw-async-text: weaviate-client `WeaviateAsyncClient` `near_vector` (query
  embedded by fastembed in `asyncio.to_thread` for -text);
- ours-async-vector / -text / -hybrid and ours-li-async-text / -hybrid: as on Qdrant;
- ours-async-hybrid-rrf: our hybrid with fusion="rrf", prefetch_k=None, which Weaviate's own
  hybrid computes (the default, dbsf over 200 candidates per leg, is fused client-side);
- peer-async-text: langchain-weaviate `asimilarity_search` (client_async=; its search is a
  Weaviate hybrid query, alpha 0.5) with langchain-community's FastEmbedEmbeddings;
- peer-li-async-text: llama-index-vector-stores-weaviate on a WeaviateAsyncClient, retriever
  `aretrieve` (its default query: Weaviate hybrid with alpha 1) with llama-index's
  FastEmbedEmbedding.
Sides alternate within each level; the best of --runs is kept.

--model: the query embedding alone (no engine), --levels threads each embedding one query
at a time, CISI queries (long, mixed) and CISI titles (short): our `DenseEncoder.embed_query`
and one fastembed `query_embed` per query. (Until 2026-12-07 this mode measured the
QueryBatcher that shared model runs between concurrent queries: it lost, and was removed.)
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


def raw_and_ours(raw_vector: Any, raw_text: Any, dense: Any, hybrid: Any,
                 vectors: list[list[float]], texts: list[str]) -> dict[str, tuple[str, Any]]:
    """The sides every engine has: raw by vector and by text, our LangChain stores'."""
    n = len(texts)
    return {
        "raw-async-vector": ("async", raw_vector),
        "ours-async-vector": ("async", lambda i: dense.asimilarity_search_by_vector(
            vectors[i % n], k=K)),
        "raw-async-text": ("async", raw_text),
        "ours-async-text": ("async", lambda i: dense.asimilarity_search(texts[i % n], k=K)),
        "ours-async-hybrid": ("async", lambda i: hybrid.asimilarity_search(texts[i % n], k=K)),
    }


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

    out = raw_and_ours(raw_vector, raw_text, dense, hybrid, vectors, texts)
    out["ours-sync-text"] = ("sync", lambda i: dense.similarity_search(texts[i % n], k=K))
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


def li_sides(conn: dict[str, Any], texts: list[str]) -> dict[str, tuple[str, Any]]:
    """The LlamaIndex face on Qdrant: ours and llama-index-vector-stores-qdrant."""
    from llama_index.core import VectorStoreIndex

    from embedders.llama_index import FastEmbedEmbedding
    from rag_stores.llama_index import QdrantVectorStore

    emb = FastEmbedEmbedding()
    n = len(texts)
    ours = VectorStoreIndex.from_vector_store(QdrantVectorStore(NAME, **conn), embed_model=emb)
    ours_h = VectorStoreIndex.from_vector_store(
        QdrantVectorStore(NAME, enable_hybrid=True, **conn), embed_model=emb)
    r = ours.as_retriever(similarity_top_k=K)
    rh = ours_h.as_retriever(similarity_top_k=K, sparse_top_k=K,
                             vector_store_query_mode="hybrid")
    out: dict[str, tuple[str, Any]] = {
        "ours-li-async-text": ("async", lambda i: r.aretrieve(texts[i % n])),
        "ours-li-async-hybrid": ("async", lambda i: rh.aretrieve(texts[i % n])),
    }
    try:
        from llama_index.embeddings.fastembed import FastEmbedEmbedding as PeerEmb
        from llama_index.vector_stores.qdrant import QdrantVectorStore as Peer
        from qdrant_client import AsyncQdrantClient, QdrantClient
    except ImportError as exc:
        print(f"LlamaIndex peer skipped: {exc}")
        return out
    peer = Peer(PEER_LI, client=QdrantClient(**conn), aclient=AsyncQdrantClient(**conn))
    pr = VectorStoreIndex.from_vector_store(peer, embed_model=PeerEmb(
        MINILM, specific_model_path=dense_path())).as_retriever(similarity_top_k=K)
    out["peer-li-async-text"] = ("async", lambda i: pr.aretrieve(texts[i % n]))
    return out


PEER_LI = "cisi_titles_peer_li"


def build_peer_li(conn: dict[str, Any]) -> None:
    """llama-index-vector-stores-qdrant's own collection of the titles (precomputed vectors)."""
    try:
        from llama_index.vector_stores.qdrant import QdrantVectorStore as Peer
        from qdrant_client import QdrantClient
    except ImportError:
        return
    client = QdrantClient(**conn)
    Peer(PEER_LI, client=client).add(title_nodes())
    client.close()


def title_nodes() -> list[Any]:
    from llama_index.core.schema import TextNode

    from embedders import DenseEncoder

    titles = [d.title for d in read_cisi()]
    vectors = DenseEncoder().embed_documents(titles)
    return [TextNode(text=t, embedding=v) for t, v in zip(titles, vectors, strict=True)]


# --- Weaviate ----------------------------------------------------------------------------
WV_NAME, WV_PEER_LC, WV_PEER_LI = "CisiTitles", "CisiTitlesPeerLc", "CisiTitlesPeerLi"


def wv_build(server: Any) -> None:
    import weaviate

    from embedders.langchain import FastEmbedEmbeddings
    from rag_stores.langchain import WeaviateVectorStore

    titles = [d.title for d in read_cisi()]
    store = WeaviateVectorStore(FastEmbedEmbeddings(), collection_name=WV_NAME,
                                retrieval_mode="hybrid", url=server.url,
                                grpc_port=server.grpc_port, progress=False)
    store.add_texts(titles)
    store.close()
    nodes = title_nodes()
    vectors = {node.text: node.embedding for node in nodes}
    client = weaviate.connect_to_local(port=server.http_port, grpc_port=server.grpc_port)
    try:
        try:
            from langchain_core.embeddings import Embeddings
            from langchain_weaviate import WeaviateVectorStore as PeerLc

            class Lookup(Embeddings):
                def embed_documents(self, texts: list[str]) -> list[list[float]]:
                    return [vectors[t] for t in texts]

                def embed_query(self, text: str) -> list[float]:
                    return vectors[text]

            PeerLc.from_texts(titles, Lookup(), client=client, index_name=WV_PEER_LC)
        except ImportError as exc:
            print(f"langchain-weaviate skipped: {exc}")
        try:
            from llama_index.vector_stores.weaviate import WeaviateVectorStore as PeerLi

            PeerLi(weaviate_client=client, index_name=WV_PEER_LI).add(nodes)
        except ImportError as exc:
            print(f"llama-index-vector-stores-weaviate skipped: {exc}")
    finally:
        client.close()


async def wv_sides(server: Any, texts: list[str], vectors: list[list[float]]
                   ) -> tuple[dict[str, tuple[str, Any]], list[Any]]:
    """name -> ("async", query(i)), and the async clients to close."""
    import weaviate
    from fastembed import TextEmbedding
    from llama_index.core import VectorStoreIndex

    from embedders.langchain import FastEmbedEmbeddings
    from embedders.llama_index import FastEmbedEmbedding
    from rag_stores.langchain import WeaviateVectorStore
    from rag_stores.llama_index import WeaviateVectorStore as LiStore

    conn = {"url": server.url, "grpc_port": server.grpc_port}
    emb = FastEmbedEmbeddings()
    dense = WeaviateVectorStore(emb, collection_name=WV_NAME, retrieval_mode="dense",
                                create_collection=False, progress=False, **conn)
    hybrid = WeaviateVectorStore(emb, collection_name=WV_NAME, retrieval_mode="hybrid",
                                 create_collection=False, progress=False, **conn)
    li_emb = FastEmbedEmbedding()
    li = VectorStoreIndex.from_vector_store(LiStore(WV_NAME, enable_hybrid=False, **conn),
                                            embed_model=li_emb).as_retriever(similarity_top_k=K)
    li_h = VectorStoreIndex.from_vector_store(LiStore(WV_NAME, enable_hybrid=True, **conn),
                                              embed_model=li_emb).as_retriever(
        similarity_top_k=K, sparse_top_k=K, vector_store_query_mode="hybrid")
    raw_client = weaviate.use_async_with_local(port=server.http_port, grpc_port=server.grpc_port)
    await raw_client.connect()
    clients: list[Any] = [raw_client]
    raw_coll = raw_client.collections.get(WV_NAME)
    raw_model = TextEmbedding(MINILM, specific_model_path=dense_path())
    n = len(texts)

    async def raw_vector(i: int) -> Any:
        return await raw_coll.query.near_vector(vectors[i % n], target_vector="dense", limit=K)

    async def raw_text(i: int) -> Any:
        vec = await asyncio.to_thread(lambda: next(iter(raw_model.query_embed([texts[i % n]]))))
        return await raw_coll.query.near_vector(vec.tolist(), target_vector="dense", limit=K)

    out = raw_and_ours(raw_vector, raw_text, dense, hybrid, vectors, texts)
    out.update({
        # Weaviate's own hybrid (rrf, no per-leg depth): the query the peers make
        "ours-async-hybrid-rrf": ("async", lambda i: hybrid.asimilarity_search(
            texts[i % n], k=K, fusion="rrf", prefetch_k=None)),
        "ours-li-async-text": ("async", lambda i: li.aretrieve(texts[i % n])),
        "ours-li-async-hybrid": ("async", lambda i: li_h.aretrieve(texts[i % n])),
    })
    community = community_embeddings()
    if community is not None:
        from langchain_weaviate import WeaviateVectorStore as PeerLc

        peer_async = weaviate.use_async_with_local(port=server.http_port,
                                                   grpc_port=server.grpc_port)
        await peer_async.connect()
        clients.append(peer_async)
        peer_sync = weaviate.connect_to_local(port=server.http_port, grpc_port=server.grpc_port)
        clients.append(peer_sync)
        peer = PeerLc(peer_sync, WV_PEER_LC, "text", embedding=community,
                      client_async=peer_async)
        out["peer-async-text"] = ("async", lambda i: peer.asimilarity_search(texts[i % n], k=K))
    try:
        from llama_index.embeddings.fastembed import FastEmbedEmbedding as PeerEmb
        from llama_index.vector_stores.weaviate import WeaviateVectorStore as PeerLi
    except ImportError as exc:
        print(f"LlamaIndex Weaviate peer skipped: {exc}")
        return out, clients
    li_async = weaviate.use_async_with_local(port=server.http_port, grpc_port=server.grpc_port)
    await li_async.connect()
    clients.append(li_async)
    pr = VectorStoreIndex.from_vector_store(
        PeerLi(weaviate_client=li_async, index_name=WV_PEER_LI),
        embed_model=PeerEmb(MINILM, specific_model_path=dense_path())).as_retriever(
        similarity_top_k=K)
    out["peer-li-async-text"] = ("async", lambda i: pr.aretrieve(texts[i % n]))
    return out, clients


def community_embeddings() -> Any:
    try:
        from fastembed import TextEmbedding
        from langchain_community.embeddings.fastembed import FastEmbedEmbeddings as Community
    except ImportError as exc:
        print(f"langchain-community skipped: {exc}")
        return None
    return Community.model_construct(
        model_name=MINILM, max_length=512, cache_dir=None, threads=None,
        doc_embed_type="default", batch_size=256, parallel=None, providers=None,
        model=TextEmbedding(MINILM, specific_model_path=dense_path()))


BASE = {"ours-async-vector": "raw-async-vector", "ours-async-text": "raw-async-text",
        "ours-sync-text": "raw-async-text", "peer-async-text": "raw-async-text",
        "ours-async-hybrid": "raw-async-text", "peer-async-hybrid": "raw-async-text",
        "ours-li-async-text": "raw-async-text", "ours-li-async-hybrid": "raw-async-text",
        "peer-li-async-text": "raw-async-text", "ours-async-hybrid-rrf": "raw-async-text"}


def model_bench(args: argparse.Namespace) -> None:
    from fastembed import TextEmbedding

    from embedders import DenseEncoder

    model = TextEmbedding(MINILM, specific_model_path=dense_path())
    kinds: dict[str, Any] = {
        "ours: DenseEncoder.embed_query": DenseEncoder().embed_query,
        "one query_embed per query": lambda t: next(iter(model.query_embed([t]))),
    }
    sets = {"CISI queries": queries(), "CISI titles": [d.title for d in read_cisi()]}
    rows = []
    for level in (int(x) for x in args.levels.split(",")):
        for set_name, texts in sets.items():
            best: dict[str, tuple[float, list[float]]] = {}
            for r in range(args.runs):
                for name in (list(kinds) if r % 2 == 0 else list(reversed(kinds))):
                    fn = kinds[name]
                    start = time.perf_counter()
                    lat = drive_sync(lambda i, fn=fn, texts=texts: fn(texts[i % len(texts)]),
                                     args.queries, level)
                    qps = args.queries / (time.perf_counter() - start)
                    if qps > best.get(name, (0.0, []))[0]:
                        best[name] = (qps, lat)
            base = best["one query_embed per query"]
            for name, (qps, lat) in best.items():
                rows.append([level, set_name, name, qps, qps / base[0],
                             percentile(lat, 50) * 1000, percentile(lat, 99) * 1000])
            print(table(f"\nQuery embedding alone, {level} threads, {set_name} "
                        f"(load {os.getloadavg()[0]:.1f})",
                        ["threads", "texts", "side", "q/s", "x one per query", "p50 ms",
                         "p99 ms"], rows[-len(best):]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=256, help="queries per run")
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--transports", default="rest,grpc")
    parser.add_argument("--sides", default=None, help="comma-separated subset")
    parser.add_argument("--engines", default="qdrant,weaviate")
    parser.add_argument("--model", action="store_true",
                        help="the query embedding alone: ours vs fastembed, one per query")
    args = parser.parse_args()
    if args.model:
        print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
        model_bench(args)
        return

    from embedders import DenseEncoder
    from rag_stores.servers.qdrant import QdrantServer

    texts = queries()
    vectors = DenseEncoder().embed_queries(texts)
    load = os.getloadavg()
    print(f"{len(texts)} CISI queries cycled, {args.queries} per run; load average "
          f"{load[0]:.1f}; {os.cpu_count()} cores")
    results: dict[str, Any] = {"load": load, "args": vars(args)}
    binary = os.environ.get("RAG_STORES_QDRANT_BIN", "/work/shared/qdrant/qdrant")
    if "qdrant" in args.engines:
        with QdrantServer(data_dir=None, binary=binary) as server:
            assert server.grpc_port is not None
            build(server.url)
            build_peer_li({"url": server.url, "check_compatibility": False})
            # One loop for every async side: the async clients stay bound to it.
            asyncio.run(measure(args, server, texts, vectors, results))
    if "weaviate" in args.engines:
        from rag_stores.servers.weaviate import WeaviateServer

        with WeaviateServer() as wserver:
            wv_build(wserver)
            asyncio.run(wv_measure(args, wserver, texts, vectors, results))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"\nJSON: {write_json('bench_concurrency', results)}")


async def wv_measure(args: argparse.Namespace, server: Any, texts: list[str],
                     vectors: list[list[float]], results: dict[str, Any]) -> None:
    all_sides, clients = await wv_sides(server, texts, vectors)
    try:
        await levels(args, "weaviate", all_sides, results)
    finally:
        for client in clients:
            closed = client.close()
            if asyncio.iscoroutine(closed):
                await closed


async def measure(args: argparse.Namespace, server: Any, texts: list[str],
                  vectors: list[list[float]], results: dict[str, Any]) -> None:
    for transport in args.transports.split(","):
        all_sides = sides(server.url, server.grpc_port, transport, texts, vectors)
        all_sides.update(li_sides({"url": server.url, "grpc_port": server.grpc_port,
                                   "prefer_grpc": transport == "grpc",
                                   "check_compatibility": False}, texts))
        await levels(args, transport, all_sides, results)


async def levels(args: argparse.Namespace, transport: str,
                 all_sides: dict[str, tuple[str, Any]], results: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
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
        print(table(f"\n{transport}, {level} in flight (load {os.getloadavg()[0]:.1f})",
                    ["transport", "n", "side",
                     "q/s", "x raw", "p50 ms", "p99 ms", "p99 x raw"],
                    [r for r in rows if r[0] == transport and r[1] == level]),
              flush=True)


if __name__ == "__main__":
    main()
