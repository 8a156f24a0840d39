"""What do our stores cost on top of the engine clients, next to the peer integrations?

Sections (figures are printed; nothing is asserted):
1. Qdrant, precomputed vectors: N synthetic normalised vectors with short texts and small
   metadata, ingested in batches into a fresh in-memory Qdrant per contender: raw
   qdrant-client, our LangChain and LlamaIndex stores, langchain-qdrant and
   llama-index-vector-stores-qdrant. Embeddings are a dict lookup, so they cost ~0.
   Then query latency by vector (k=10), contenders alternated query by query.
   Peak memory of each ingestion is measured in a subprocess (`--only NAME`).
2. CISI with real embeddings (all-MiniLM-L6-v2 int8 through FastEmbed): our LangChain
   store vs langchain-qdrant (same embeddings object) vs raw fastembed + qdrant-client.
3. Weaviate, the same kind of data into one real server started here (WeaviateServer),
   a fresh collection per contender: raw weaviate-client (`batch.fixed_size`), our two
   stores, langchain-weaviate and llama-index-vector-stores-weaviate.

Wall-clock figures suffer from whatever else runs on the machine; CPU seconds (this
process, plus the Weaviate server's for Weaviate) are the steadier comparison.

    python benchmarks/bench_stores.py                           # both backends, defaults
    python benchmarks/bench_stores.py --backends qdrant --n 0 --cisi-docs 1460  # full CISI
    python benchmarks/bench_stores.py --only qdrant-ours-lc     # one ingestion, memory only
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import median, percentile, read_cisi, table, write_json  # noqa: E402

K = 10
DIM = 384
COLLECTION = "Bench"
WORDS = ("vector store ranking query index search engine text chunk embedding model "
         "retrieval hybrid filter payload batch memory latency").split()


# --- data -------------------------------------------------------------------------------
@dataclass
class Data:
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    vectors: list[list[float]]  # Python lists: what every framework hands to its client
    queries: list[list[float]]
    _nodes: list[Any] | None = None

    @property
    def nodes(self) -> list[Any]:
        """LlamaIndex TextNodes carrying their embeddings (the input of a LlamaIndex store)."""
        if self._nodes is None:
            from llama_index.core.schema import TextNode

            self._nodes = [TextNode(id_=i, text=t, metadata=m, embedding=v) for i, t, m, v in
                           zip(self.ids, self.texts, self.metadatas, self.vectors, strict=True)]
        return self._nodes

    def id_of_text(self) -> dict[str, str]:
        return dict(zip(self.texts, self.ids, strict=True))


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_data(n: int, n_queries: int, seed: int = 42) -> Data:
    rng = np.random.default_rng(seed)
    words = rng.integers(0, len(WORDS), size=(n, 8))
    return Data(
        ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{i}")) for i in range(n)],
        texts=[f"doc {i}: " + " ".join(WORDS[w] for w in row) for i, row in enumerate(words)],
        metadatas=[{"source": f"file-{i % 50}.txt", "page": i % 100, "lang": "en"}
                   for i in range(n)],
        vectors=unit_vectors(rng, n).tolist(),
        queries=unit_vectors(rng, n_queries).tolist(),
    )


class LookupEmbeddings(Embeddings):
    """Precomputed vectors looked up by text: a LangChain store's embedding step costs ~0."""

    def __init__(self, texts: list[str], vectors: list[list[float]]) -> None:
        self.index = dict(zip(texts, vectors, strict=True))
        self.fallback = [1.0] + [0.0] * (DIM - 1)  # probes such as "dummy_text"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.index.get(t, self.fallback) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.index.get(text, self.fallback)


# --- contenders ---------------------------------------------------------------------------
# A contender ingests `Data` into a fresh collection (Weaviate contenders get the shared
# client as third argument) and returns a handle that queries by vector, returning ids so
# that the neighbours found can be compared, and closes or drops what it made.
@dataclass
class Handle:
    query: Callable[[list[float]], list[str]]
    close: Callable[[], None]


Contender = Callable[[Data, int, Any], Handle]


def qdrant_raw(data: Data, batch: int, _: Any) -> Handle:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(COLLECTION, vectors_config={
        "dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)})
    for start in range(0, len(data.ids), batch):
        client.upsert(COLLECTION, wait=True, points=[
            models.PointStruct(id=data.ids[i], vector={"dense": data.vectors[i]},
                               payload={"text": data.texts[i], "metadata": data.metadatas[i],
                                        "doc_id": data.ids[i]})
            for i in range(start, min(start + batch, len(data.ids)))])

    def query(vec: list[float]) -> list[str]:
        res = client.query_points(COLLECTION, query=vec, using="dense", limit=K,
                                  with_payload=True)
        return [str(p.id) for p in res.points]
    return Handle(query, client.close)


def qdrant_ours_lc(data: Data, batch: int, _: Any) -> Handle:
    from rag_stores.langchain import QdrantVectorStore

    store = QdrantVectorStore(LookupEmbeddings(data.texts, data.vectors), COLLECTION, dim=DIM,
                              progress=False)
    store.add_texts(data.texts, data.metadatas, ids=data.ids, batch_size=batch)
    return Handle(lambda vec: [d.id or "" for d in store.similarity_search_by_vector(vec, k=K)],
                  store.close)


def llama_query(store: Any) -> Callable[[list[float]], list[str]]:
    from llama_index.core.vector_stores.types import VectorStoreQuery

    def query(vec: list[float]) -> list[str]:
        return store.query(VectorStoreQuery(query_embedding=vec, similarity_top_k=K)).ids or []
    return query


def qdrant_ours_li(data: Data, batch: int, _: Any) -> Handle:
    from rag_stores.llama_index import QdrantVectorStore

    store = QdrantVectorStore(COLLECTION, batch_size=batch)
    store.add(data.nodes)
    return Handle(llama_query(store), store.close)


def qdrant_peer_lc(data: Data, batch: int, _: Any) -> Handle:
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(COLLECTION, vectors_config=models.VectorParams(
        size=DIM, distance=models.Distance.COSINE))
    store = QdrantVectorStore(client, COLLECTION, LookupEmbeddings(data.texts, data.vectors))
    store.add_texts(data.texts, data.metadatas, ids=data.ids, batch_size=batch)

    def query(vec: list[float]) -> list[str]:
        return [d.metadata["_id"] for d in store.similarity_search_by_vector(vec, k=K)]
    return Handle(query, client.close)


def qdrant_peer_li(data: Data, batch: int, _: Any) -> Handle:
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    client = QdrantClient(":memory:")
    store = QdrantVectorStore(COLLECTION, client=client, batch_size=batch)
    store.add(data.nodes)
    return Handle(llama_query(store), client.close)


QDRANT: dict[str, Contender] = {
    "qdrant-raw": qdrant_raw,
    "qdrant-ours-lc": qdrant_ours_lc,
    "qdrant-ours-li": qdrant_ours_li,
    "qdrant-langchain-qdrant": qdrant_peer_lc,
    "qdrant-llama-index-qdrant": qdrant_peer_li,
}

_serial = itertools.count()


def fresh_name(prefix: str) -> str:
    """A new Weaviate collection name (the pid keeps memory subprocesses apart)."""
    return f"{prefix}_{os.getpid()}_{next(_serial)}"


def dropper(client: Any, name: str) -> Callable[[], None]:
    return lambda: client.collections.delete(name)


def weaviate_raw(data: Data, batch: int, client: Any) -> Handle:
    from weaviate.classes.config import Configure, DataType, Property, VectorDistances
    from weaviate.classes.query import MetadataQuery

    name = fresh_name("Raw")
    collection = client.collections.create(
        name,
        vector_config=[Configure.Vectors.self_provided(
            name="dense", vector_index_config=Configure.VectorIndex.hnsw(
                distance_metric=VectorDistances.COSINE))],
        properties=[Property(name="text", data_type=DataType.TEXT),
                    Property(name="doc_id", data_type=DataType.TEXT),
                    Property(name="source", data_type=DataType.TEXT),
                    Property(name="page", data_type=DataType.INT),
                    Property(name="lang", data_type=DataType.TEXT)])
    with collection.batch.fixed_size(batch_size=batch) as writer:
        for i in range(len(data.ids)):
            writer.add_object(properties={"text": data.texts[i], "doc_id": data.ids[i],
                                          **data.metadatas[i]},
                              vector={"dense": data.vectors[i]}, uuid=data.ids[i])
    if collection.batch.failed_objects:
        raise RuntimeError(f"raw Weaviate batch failed: {collection.batch.failed_objects[:3]}")

    def query(vec: list[float]) -> list[str]:
        res = collection.query.near_vector(near_vector=vec, target_vector="dense", limit=K,
                                           return_metadata=MetadataQuery(distance=True))
        return [str(o.uuid) for o in res.objects]
    return Handle(query, dropper(client, name))


def weaviate_ours_lc(data: Data, batch: int, client: Any) -> Handle:
    from rag_stores.langchain import WeaviateVectorStore

    name = fresh_name("OursLc")
    store = WeaviateVectorStore(LookupEmbeddings(data.texts, data.vectors), name, client=client,
                                dim=DIM, progress=False)
    store.add_texts(data.texts, data.metadatas, ids=data.ids, batch_size=batch)
    return Handle(lambda vec: [d.id or "" for d in store.similarity_search_by_vector(vec, k=K)],
                  dropper(client, name))


def weaviate_ours_li(data: Data, batch: int, client: Any) -> Handle:
    from rag_stores.llama_index import WeaviateVectorStore

    name = fresh_name("OursLi")
    store = WeaviateVectorStore(name, client=client, batch_size=batch)
    store.add(data.nodes)
    return Handle(llama_query(store), dropper(client, name))


def weaviate_peer_lc(data: Data, batch: int, client: Any) -> Handle:
    from langchain_weaviate import WeaviateVectorStore

    name = fresh_name("PeerLc")
    store = WeaviateVectorStore(client, name, "text", LookupEmbeddings(data.texts, data.vectors))
    store.add_texts(data.texts, data.metadatas, ids=data.ids)  # one dynamic batch, no size
    id_of = data.id_of_text()  # its documents carry no id: find it from the text
    # Its search by vector is a hybrid query with an empty keyword part (server-side cost).

    def query(vec: list[float]) -> list[str]:
        return [id_of[d.page_content] for d in store.similarity_search_by_vector(vec, k=K)]
    return Handle(query, dropper(client, name))


def weaviate_peer_li(data: Data, batch: int, client: Any) -> Handle:
    from llama_index.vector_stores.weaviate import WeaviateVectorStore

    name = fresh_name("PeerLi")
    store = WeaviateVectorStore(weaviate_client=client, index_name=name)
    store.add(data.nodes)  # one dynamic batch, no size
    # Its default query is a hybrid query too, keyword part empty.
    return Handle(llama_query(store), dropper(client, name))


WEAVIATE: dict[str, Contender] = {
    "weaviate-raw": weaviate_raw,
    "weaviate-ours-lc": weaviate_ours_lc,
    "weaviate-ours-li": weaviate_ours_li,
    "weaviate-langchain-weaviate": weaviate_peer_lc,
    "weaviate-llama-index-weaviate": weaviate_peer_li,
}
ALL: dict[str, Contender] = {**QDRANT, **WEAVIATE}


# --- measurements ---------------------------------------------------------------------------
def rotated(names: list[str], i: int) -> list[str]:
    """Each round starts with a different contender, so none always runs first or last."""
    i %= len(names)
    return names[i:] + names[:i]


class CpuClock:
    """CPU seconds of this process (all threads), plus those of a server process if given."""

    def __init__(self, server_pid: int | None = None) -> None:
        import psutil

        self.server = psutil.Process(server_pid) if server_pid else None

    def __call__(self) -> float:
        own = time.process_time()
        if self.server is None:
            return own
        times = self.server.cpu_times()
        return own + times.user + times.system


def warm_up(contenders: dict[str, Contender], batch: int, client: Any) -> None:
    """One tiny ingestion each first: imports and first-call costs stay out of the figures."""
    tiny = make_data(2 * batch + 1, 1, seed=7)
    for contender in contenders.values():
        contender(tiny, batch, client).close()


def bench_ingest(contenders: dict[str, Contender], data: Data, batch: int, runs: int,
                 client: Any, cpu: CpuClock) -> tuple[dict[str, dict[str, list[float]]],
                                                      dict[str, Handle]]:
    """Wall and CPU seconds per run for each contender, runs interleaved.

    The last run's stores stay open for the query benchmark.
    """
    seconds: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []}
                                                  for name in contenders}
    handles: dict[str, Handle] = {}
    warm_up(contenders, batch, client)
    n = len(data.ids)
    for run in range(runs):
        for name in rotated(list(contenders), run):
            if name in handles:
                handles.pop(name).close()
            gc.collect()
            t0, c0 = time.perf_counter(), cpu()
            handles[name] = contenders[name](data, batch, client)
            seconds[name]["cpu"].append(cpu() - c0)
            seconds[name]["wall"].append(time.perf_counter() - t0)
            print(f"  run {run + 1}/{runs} {name}: {n / seconds[name]['wall'][-1]:,.0f} docs/s, "
                  f"{n / seconds[name]['cpu'][-1]:,.0f} docs/cpu-s", flush=True)
    return seconds, {name: handles[name] for name in contenders}


def bench_queries(handles: dict[str, Handle], queries: list[list[float]], reference: str,
                  cpu: CpuClock, warmup: int = 20) -> dict[str, dict[str, float]]:
    """Latency per query, contenders alternated query by query; neighbours compared with
    `reference`'s (exact search agrees fully; HNSW graphs built apart may differ a little)."""
    names = list(handles)
    for vec in queries[:warmup]:
        for name in names:
            handles[name].query(vec)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    overlap: dict[str, float] = dict.fromkeys(names, 0.0)
    for qi, vec in enumerate(queries):
        found = {}
        for name in rotated(names, qi):
            t0, c0 = time.perf_counter(), cpu()
            found[name] = handles[name].query(vec)
            cpus[name].append((cpu() - c0) * 1000)
            wall[name].append((time.perf_counter() - t0) * 1000)
        for name in names:
            overlap[name] += len(set(found[name]) & set(found[reference])) / K
    return {name: {"median_ms": median(wall[name]), "p95_ms": percentile(wall[name], 95),
                   "cpu_median_ms": median(cpus[name]),
                   "overlap_with_raw": overlap[name] / len(queries)} for name in names}


def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
            for k in ("VmRSS", "VmHWM")}


def measure_memory_child(name: str, args: argparse.Namespace) -> None:
    """`--only NAME`: one ingestion; prints the peak RSS it added over the RSS before it."""
    contender = ALL[name]
    weaviate = name.startswith("weaviate")
    data = make_data(args.weaviate_n if weaviate else args.n, 1)
    data.nodes  # noqa: B018  (inputs are built before the baseline)
    client = connect_weaviate(args.weaviate_ports) if weaviate else None
    warm_up({name: contender}, args.batch, client)
    gc.collect()
    gc.freeze()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to now
        method = "VmHWM after ingest - VmRSS before, peak reset via /proc/self/clear_refs"
    except OSError:
        method = "VmHWM after ingest - VmRSS before, peak NOT reset: may understate"
    before = _status()["VmRSS"]
    t0 = time.perf_counter()
    handle = contender(data, args.batch, client)
    seconds = time.perf_counter() - t0
    peak = _status()["VmHWM"]
    handle.close()
    if client is not None:
        client.close()
    print(json.dumps({"name": name, "peak_delta_mb": (peak - before) / 1024,
                      "rss_before_mb": before / 1024, "seconds": seconds, "method": method}))


def measure_memory(names: list[str], args: argparse.Namespace,
                   weaviate_ports: str | None = None) -> dict[str, dict[str, Any]]:
    results = {}
    for name in names:
        cmd = [sys.executable, __file__, "--only", name, "--n", str(args.n), "--batch",
               str(args.batch), "--weaviate-n", str(args.weaviate_n)]
        if weaviate_ports:
            cmd += ["--weaviate-ports", weaviate_ports]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"  memory run of {name} failed:\n{out.stderr[-2000:]}", flush=True)
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {name}: +{results[name]['peak_delta_mb']:.0f} MB peak", flush=True)
    return results


# --- reports ------------------------------------------------------------------------------
def ingest_rows(seconds: dict[str, dict[str, list[float]]], n: int, raw: str,
                memory: dict[str, dict[str, Any]]) -> list[list[Any]]:
    best_raw = n / min(seconds[raw]["wall"])
    cpu_raw = n / min(seconds[raw]["cpu"])
    rows = []
    for name, runs in seconds.items():
        best, med, cpu = n / min(runs["wall"]), n / median(runs["wall"]), n / min(runs["cpu"])
        mem = memory.get(name, {}).get("peak_delta_mb")
        rows.append([name, f"{best:,.0f}", f"{med:,.0f}", f"{best / best_raw:.2f}x",
                     f"{cpu:,.0f}", f"{cpu / cpu_raw:.2f}x",
                     f"{round(mem) + 0}" if mem is not None else "-"])
    return rows


def query_rows(stats: dict[str, dict[str, float]], raw: str) -> list[list[Any]]:
    base = stats[raw]
    return [[name, f"{s['median_ms']:.3f}", f"{s['p95_ms']:.3f}",
             f"{s['median_ms'] / base['median_ms']:.2f}x", f"{s['p95_ms'] / base['p95_ms']:.2f}x",
             f"{s['cpu_median_ms']:.3f}", f"{s['cpu_median_ms'] / base['cpu_median_ms']:.2f}x",
             f"{s['overlap_with_raw']:.1%}"] for name, s in stats.items()]


INGEST_HEADERS = ["contender", "docs/s best", "docs/s median", "best vs raw", "docs/cpu-s best",
                  "cpu vs raw", "peak MB"]
QUERY_HEADERS = ["contender", "median ms", "p95 ms", "median vs raw", "p95 vs raw",
                 "cpu median ms", "cpu vs raw", "top-k overlap with raw"]


def run_precomputed(backend: str, contenders: dict[str, Contender], n: int,
                    args: argparse.Namespace, results: dict[str, Any], client: Any = None,
                    server_pid: int | None = None, weaviate_ports: str | None = None) -> None:
    raw = f"{backend}-raw"
    cpu = CpuClock(server_pid)
    print(f"\n== {backend}: {n:,} x {DIM} precomputed vectors, batch {args.batch}, "
          f"best of {args.runs} interleaved runs ==", flush=True)
    data = make_data(n, args.queries)
    data.nodes  # noqa: B018  (LlamaIndex inputs are built outside the timing)
    # The inputs stay alive all along: out of the cyclic GC's sight, they do not make the
    # collections triggered by one contender's allocations slower than another's.
    gc.collect()
    gc.freeze()
    seconds, handles = bench_ingest(contenders, data, args.batch, args.runs, client, cpu)
    print(f"  queries: {args.queries} vectors, k={K}, contenders alternated", flush=True)
    stats = bench_queries(handles, data.queries, raw, cpu)
    for handle in handles.values():
        handle.close()
    del handles, data
    gc.unfreeze()
    gc.collect()
    memory = {}
    if not args.no_memory:
        print("  peak memory, one subprocess per contender:", flush=True)
        memory = measure_memory(list(contenders), args, weaviate_ports)
    method = next(iter(memory.values()), {}).get("method", "not measured")
    where = "client process only; " if server_pid else ""
    cpu_note = " (cpu = client + server)" if server_pid else ""
    print()
    print(table(f"{backend} ingestion ({n:,} docs{cpu_note}; peak MB = {where}{method})",
                INGEST_HEADERS, ingest_rows(seconds, n, raw, memory)))
    print()
    print(table(f"{backend} query by vector (k={K}, {args.queries} queries{cpu_note})",
                QUERY_HEADERS, query_rows(stats, raw)))
    results[backend] = {"n": n, "batch": args.batch, "ingest_seconds": seconds,
                        "queries": stats, "memory": memory}


# --- CISI with real embeddings --------------------------------------------------------------
def run_cisi(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from langchain_qdrant import QdrantVectorStore as PeerStore
    from qdrant_client import QdrantClient, models

    from embedders.langchain import FastEmbedEmbeddings
    from rag_stores.core.ids import to_point_id
    from rag_stores.langchain import QdrantVectorStore

    docs = read_cisi(limit=args.cisi_docs)
    texts = [d.text for d in docs]
    metadatas = [{"cisi_id": d.id, "title": d.title} for d in docs]
    point_ids = [to_point_id(d.id) for d in docs]  # langchain-qdrant takes UUIDs only
    embeddings = FastEmbedEmbeddings()
    embeddings.embed_documents(texts[:8])  # load and warm the model outside the timing
    batch = args.batch
    print(f"\n== qdrant + embedding: CISI, {len(docs)} abstracts, batch {batch} ==", flush=True)
    if len(docs) < 1460:
        print("  full run: python benchmarks/bench_stores.py --backends qdrant --cisi-docs 1460 "
              "--n 0", flush=True)

    def raw() -> None:
        client = QdrantClient(":memory:")
        client.create_collection(COLLECTION, vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)})
        model = embeddings.encoder.model  # the fastembed.TextEmbedding itself
        vectors = model.passage_embed(texts, batch_size=batch)
        for start in range(0, len(docs), batch):
            client.upsert(COLLECTION, wait=True, points=[
                models.PointStruct(id=point_ids[i], vector={"dense": next(vectors).tolist()},
                                   payload={"text": texts[i], "metadata": metadatas[i]})
                for i in range(start, min(start + batch, len(docs)))])
        client.close()

    def ours() -> None:
        store = QdrantVectorStore(embeddings, COLLECTION, dim=DIM, progress=False)
        store.add_texts(texts, metadatas, ids=[d.id for d in docs], batch_size=batch)
        store.close()

    def peer() -> None:
        client = QdrantClient(":memory:")
        client.create_collection(COLLECTION, vectors_config=models.VectorParams(
            size=DIM, distance=models.Distance.COSINE))
        PeerStore(client, COLLECTION, embeddings).add_texts(texts, metadatas, ids=point_ids,
                                                            batch_size=batch)
        client.close()

    contenders = {"fastembed+qdrant-raw": raw, "qdrant-ours-lc": ours,
                  "qdrant-langchain-qdrant": peer}
    n = len(docs)
    seconds: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []}
                                                  for name in contenders}
    for run in range(args.cisi_runs):
        for name in rotated(list(contenders), run):
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            contenders[name]()
            seconds[name]["cpu"].append(time.process_time() - c0)
            seconds[name]["wall"].append(time.perf_counter() - t0)
            print(f"  run {run + 1}/{args.cisi_runs} {name}: "
                  f"{n / seconds[name]['wall'][-1]:.1f} docs/s", flush=True)
    base = n / min(seconds["fastembed+qdrant-raw"]["wall"])
    rows = []
    for name, runs in seconds.items():
        best = n / min(runs["wall"])
        rows.append([name, n, f"{best:.1f}", f"{n / median(runs['wall']):.1f}",
                     f"{best / base:.2f}x", f"{min(runs['cpu']):.1f}"])
    print()
    print(table(f"CISI ingestion with embedding (all-MiniLM-L6-v2 int8, {n} docs, "
                f"best of {args.cisi_runs} interleaved runs)",
                ["contender", "docs", "docs/s best", "docs/s median", "best vs raw",
                 "cpu s best"], rows))
    results["cisi"] = {"docs": n, "batch": batch, "seconds": seconds}


# --- Weaviate -------------------------------------------------------------------------------
def connect_weaviate(ports: str) -> Any:
    """A client of the parent run's server ("HTTP,GRPC" ports on 127.0.0.1)."""
    import weaviate

    http, grpc = (int(p) for p in ports.split(","))
    return weaviate.connect_to_local(host="127.0.0.1", port=http, grpc_port=grpc)


def run_weaviate(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from rag_stores.servers.weaviate import WeaviateServer

    with WeaviateServer() as server:
        assert server.process is not None
        client = server.connect()
        try:
            run_precomputed("weaviate", WEAVIATE, args.weaviate_n, args, results, client,
                            server_pid=server.process.pid,
                            weaviate_ports=f"{server.http_port},{server.grpc_port}")
        finally:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000,
                        help="synthetic docs for Qdrant (0 skips that section)")
    parser.add_argument("--weaviate-n", type=int, default=5_000,
                        help="synthetic docs for Weaviate, 0 skips it (the server builds HNSW as "
                             "it goes: 20,000 x 5 contenders x 3 runs takes too long on 2 cores)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="interleaved ingestion runs (best kept)")
    parser.add_argument("--cisi-docs", type=int, default=300, help="0 skips the CISI section")
    parser.add_argument("--cisi-runs", type=int, default=2, help="interleaved CISI runs")
    parser.add_argument("--backends", default="qdrant,weaviate")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--only", choices=sorted(ALL), help="one ingestion in this process "
                        "(memory measurement; used by the parent run)")
    parser.add_argument("--weaviate-ports", help=argparse.SUPPRESS)  # for --only weaviate-*
    args = parser.parse_args()
    if args.only:
        if args.only.startswith("weaviate") and not args.weaviate_ports:
            parser.error("--only weaviate-* needs a running server: --weaviate-ports HTTP,GRPC")
        measure_memory_child(args.only, args)
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"qdrant", "weaviate"}
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}; choose from qdrant, weaviate")
    results: dict[str, Any] = {"args": vars(args)}
    if "qdrant" in backends and args.n:
        run_precomputed("qdrant", QDRANT, args.n, args, results)
    if "qdrant" in backends and args.cisi_docs:
        run_cisi(args, results)
    if "weaviate" in backends and args.weaviate_n:
        run_weaviate(args, results)
    print(f"\nJSON: {write_json('bench_stores', results)}")


if __name__ == "__main__":
    main()
