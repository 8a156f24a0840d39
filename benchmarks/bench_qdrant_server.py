"""Issue 9: our Qdrant stores on a real Qdrant server, next to raw qdrant-client and the peers.

Figures are printed and written to benchmarks/out/bench_qdrant_server-<time>.json; nothing is
asserted. One server (`rag_stores.servers.qdrant.QdrantServer`, binary from
$RAG_STORES_QDRANT_BIN) serves every side; each side ingests into a fresh collection with a
payload index on `year`:

1. Raw sweep: qdrant-client `upload_points` (PointStructs built from the same Python lists the
   frameworks hand over) over REST and gRPC, `parallel` 1 / 2 / 4 x batch sizes. The best
   configuration of each transport is "raw-rest" / "raw-grpc" below; the best of all is
   "raw's best", the baseline of the ratios.
2. Ingestion of N x 384 seeded random unit vectors with payloads {"year", "tag"}: our LangChain
   store (`add_texts`, precomputed vectors through a lookup `Embeddings`) and LlamaIndex store
   (TextNodes carrying embeddings), over REST and gRPC; raw; langchain-qdrant and
   llama-index-vector-stores-qdrant over REST and gRPC; all at the same batch size, sides
   interleaved over --runs rounds (best kept). A run ends when the server counts all N points
   (`upload_points` returns before the server has applied its writes: `wait=False`).
   Between runs a collection is deleted, or (last round) left to finish indexing, so no
   side runs beside another side's background indexing.
3. Client peak memory of each ingestion: one subprocess per side, peak RSS above the RSS
   before it (VmHWM after a reset via /proc/self/clear_refs; plus the upload worker processes
   of `parallel` > 1, sampled).
4. Queries on the last round's collections once indexed: top-10 by vector without and with
   the filter year >= 2027 (~10% of the points), sides alternated query by query. Ratios are
   to raw on its own collection and to raw on the side's collection ("raw@side", the same
   server work: the side's client cost alone).
5. Streaming: --stream-n documents from a generator through our LangChain store's
   `add_documents` (a subprocess; vectors made per batch, never all at once): docs/s and
   client RSS above the baseline, sampled all along.

    python benchmarks/bench_qdrant_server.py                        # full: 100,000 and 1,000,000
    python benchmarks/bench_qdrant_server.py --n 5000 --stream-n 20000   # quick
    python benchmarks/bench_qdrant_server.py --stream-n 0            # no streaming section

Wall-clock figures suffer from whatever else runs on the machine; the sides are alternated
and the best of several rounds is kept. docs/cpu-s counts this process and the server.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_stores import (  # noqa: E402
    DIM,
    CpuClock,
    Data,
    Handle,
    K,
    LookupEmbeddings,
    _status,
    bench_queries,
    fresh_name,
    rotated,
    unit_vectors,
)
from benchmarks.common import median, table, write_json  # noqa: E402

YEARS = (2000, 2030)  # uniform: year >= FILTER_YEAR holds for 3 of 30 years, ~10%
FILTER_YEAR = 2027
TAGS = ("news", "paper", "blog", "wiki", "mail", "code", "note")
BIN = "/work/shared/qdrant/qdrant"
TRANSPORTS = ("rest", "grpc")


# --- data ---------------------------------------------------------------------------------
def make_data(n: int, n_queries: int, seed: int = 9) -> Data:
    rng = np.random.default_rng(seed)
    years = rng.integers(*YEARS, size=n)
    return Data(
        ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, f"issue9-{i}")) for i in range(n)],
        texts=[f"doc {i}" for i in range(n)],
        metadatas=[{"year": int(years[i]), "tag": TAGS[i % len(TAGS)]} for i in range(n)],
        vectors=unit_vectors(rng, n).tolist(),
        queries=unit_vectors(rng, n_queries).tolist(),
    )


# --- sides --------------------------------------------------------------------------------
@dataclass
class Side(Handle):
    """A side's collection: query, query with the year filter, close (drops it)."""

    filtered: Callable[[list[float]], list[str]]
    name: str


@dataclass
class Server:
    """What a side needs of the server (picklable: memory subprocesses get it as flags)."""

    url: str
    grpc_port: int

    def kwargs(self, transport: str) -> dict[str, Any]:
        return {"url": self.url, "grpc_port": self.grpc_port,
                "prefer_grpc": transport == "grpc", "check_compatibility": False}

    def client(self, transport: str = "rest") -> Any:
        from qdrant_client import QdrantClient

        return QdrantClient(**self.kwargs(transport))

    @contextmanager
    def admin(self) -> Iterator[Any]:
        client = self.client()
        try:
            yield client
        finally:
            client.close()


Ingest = Callable[[Data, int, Server], Side]


def year_filter(key: str) -> Any:
    from qdrant_client import models

    return models.Filter(must=[models.FieldCondition(key=key, range=models.Range(gte=FILTER_YEAR))])


def dropper(server: Server, name: str, *closing: Callable[[], Any]) -> Callable[[], None]:
    def close() -> None:
        for c in closing:
            c()
        with server.admin() as admin:
            admin.delete_collection(name)
    return close


def raw(transport: str, parallel: int) -> Ingest:
    def ingest(data: Data, batch: int, server: Server) -> Side:
        from qdrant_client import models

        name = fresh_name("raw")
        client = server.client(transport)
        client.create_collection(name, vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)})
        client.create_payload_index(name, "metadata.year", models.PayloadSchemaType.INTEGER)
        client.upload_points(name, (
            models.PointStruct(id=data.ids[i], vector={"dense": data.vectors[i]},
                               payload={"text": data.texts[i], "metadata": data.metadatas[i],
                                        "doc_id": data.ids[i]})
            for i in range(len(data.ids))), batch_size=batch, parallel=parallel)
        wait_for_count(client, name, len(data.ids))
        reader = raw_reader(server, name, transport)
        return Side(reader.query, dropper(server, name, client.close, reader.close),
                    reader.filtered, name)
    return ingest


def raw_reader(server: Server, name: str, transport: str) -> Side:
    """Raw qdrant-client queries on another side's collection (its vector and its indexed
    year field): the same server work as that side's queries, so the ratio is the side's
    client cost alone. Collections built apart have different HNSW graphs and segments
    (the overlap column), which moves their latency by itself."""
    client = server.client(transport)
    info = client.get_collection(name)
    vectors = info.config.params.vectors
    using = next(iter(vectors)) if isinstance(vectors, dict) else None
    flt = year_filter(next(k for k in info.payload_schema if k.split(".")[-1] == "year"))

    def query(vec: list[float], query_filter: Any = None) -> list[str]:
        res = client.query_points(name, query=vec, using=using, limit=K,
                                  query_filter=query_filter, with_payload=True)
        return [str(p.id) for p in res.points]
    return Side(query, client.close, lambda v: query(v, flt), name)


def ours_lc(transport: str, parallel: int | None = None) -> Ingest:
    def ingest(data: Data, batch: int, server: Server) -> Side:
        from rag_stores.langchain import QdrantVectorStore

        name = fresh_name("ours_lc")
        store = QdrantVectorStore(LookupEmbeddings(data.texts, data.vectors), name, dim=DIM,
                                  progress=False, payload_indexes={"year": "integer"},
                                  parallel=parallel, **server.kwargs(transport))
        store.add_texts(data.texts, data.metadatas, ids=data.ids, batch_size=batch)
        flt = {"year": {"$gte": FILTER_YEAR}}

        def query(vec: list[float], filter: Any = None) -> list[str]:
            return [d.id or "" for d in store.similarity_search_by_vector(vec, k=K, filter=filter)]
        return Side(query, dropper(server, name, store.close), lambda v: query(v, flt), name)
    return ingest


def llama_queries(store: Any) -> tuple[Callable[[list[float]], list[str]],
                                       Callable[[list[float]], list[str]]]:
    from llama_index.core.vector_stores.types import (
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
    )

    flt = MetadataFilters(filters=[MetadataFilter(key="year", operator=FilterOperator.GTE,
                                                  value=FILTER_YEAR)])

    def query(vec: list[float], filters: Any = None) -> list[str]:
        q = VectorStoreQuery(query_embedding=vec, similarity_top_k=K, filters=filters)
        return store.query(q).ids or []
    return query, lambda v: query(v, flt)


def ours_li(transport: str, parallel: int | None = None) -> Ingest:
    def ingest(data: Data, batch: int, server: Server) -> Side:
        from rag_stores.llama_index import QdrantVectorStore

        name = fresh_name("ours_li")
        store = QdrantVectorStore(name, batch_size=batch, payload_indexes={"year": "integer"},
                                  parallel=parallel, **server.kwargs(transport))
        store.add(data.nodes)
        query, filtered = llama_queries(store)
        return Side(query, dropper(server, name, store.close), filtered, name)
    return ingest


def peer_lc(transport: str) -> Ingest:
    def ingest(data: Data, batch: int, server: Server) -> Side:
        from langchain_qdrant import QdrantVectorStore
        from qdrant_client import models

        name = fresh_name("peer_lc")
        client = server.client(transport)
        client.create_collection(name, vectors_config=models.VectorParams(
            size=DIM, distance=models.Distance.COSINE))
        client.create_payload_index(name, "metadata.year", models.PayloadSchemaType.INTEGER)
        store = QdrantVectorStore(client, name, LookupEmbeddings(data.texts, data.vectors))
        store.add_texts(data.texts, data.metadatas, ids=data.ids, batch_size=batch)
        flt = year_filter("metadata.year")

        def query(vec: list[float], filter: Any = None) -> list[str]:
            docs = store.similarity_search_by_vector(vec, k=K, filter=filter)
            return [d.metadata["_id"] for d in docs]
        return Side(query, dropper(server, name, client.close), lambda v: query(v, flt), name)
    return ingest


def peer_li(transport: str) -> Ingest:
    def ingest(data: Data, batch: int, server: Server) -> Side:
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        name = fresh_name("peer_li")
        client = server.client(transport)
        indexes: Any = [{"field_name": "year", "field_schema": "integer"}]
        store = QdrantVectorStore(name, client=client, batch_size=batch, payload_indexes=indexes)
        store.add(data.nodes)
        query, filtered = llama_queries(store)
        return Side(query, dropper(server, name, client.close), filtered, name)
    return ingest


def sides(raw_best: dict[str, tuple[int, int]], ours_parallel: int | None = None
          ) -> dict[str, tuple[Ingest, int | None]]:
    """Every side of the main rounds, with its batch size (None: the run's --batch)."""
    out: dict[str, tuple[Ingest, int | None]] = {}
    for t in TRANSPORTS:
        parallel, batch = raw_best[t]
        out[f"raw-{t}"] = (raw(t, parallel), batch)
    for t in TRANSPORTS:
        out[f"ours-lc-{t}"] = (ours_lc(t, ours_parallel), None)
        out[f"ours-li-{t}"] = (ours_li(t, ours_parallel), None)
    for t in TRANSPORTS:
        out[f"langchain-qdrant-{t}"] = (peer_lc(t), None)
        out[f"llama-index-qdrant-{t}"] = (peer_li(t), None)
    return out


# --- server helpers -------------------------------------------------------------------------
def wait_for_count(client: Any, name: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while client.count(name, exact=True).count < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the server counts fewer than {n} points")
        time.sleep(0.02)


def wait_for_green(server: Server, name: str, timeout: float = 1800) -> float:
    """Wait until the server has finished optimising (indexing) a collection."""
    from qdrant_client import models

    t0 = time.monotonic()
    with server.admin() as admin:
        while admin.get_collection(name).status != models.CollectionStatus.GREEN:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{name} is not indexed after {timeout} s")
            time.sleep(0.5)
    return time.monotonic() - t0


# --- measurements ---------------------------------------------------------------------------
def timed(ingest: Ingest, data: Data, batch: int, server: Server,
          cpu: CpuClock) -> tuple[Side, float, float]:
    gc.collect()
    t0, c0 = time.perf_counter(), cpu()
    side = ingest(data, batch, server)
    return side, time.perf_counter() - t0, cpu() - c0


def raw_sweep(data: Data, server: Server, cpu: CpuClock, parallels: list[int],
              batches: list[int]) -> tuple[dict[str, tuple[int, int]], list[dict[str, Any]]]:
    n = len(data.ids)
    print(f"\n== raw qdrant-client upload_points sweep: {n:,} points, parallel {parallels} "
          f"x batch {batches} ==", flush=True)
    rows: list[dict[str, Any]] = []
    for t in TRANSPORTS:
        for parallel in parallels:
            for batch in batches:
                side, wall, cpus = timed(raw(t, parallel), data, batch, server, cpu)
                side.close()
                rows.append({"transport": t, "parallel": parallel, "batch": batch,
                             "docs_per_s": n / wall, "docs_per_cpu_s": n / cpus})
                print(f"  {t} parallel={parallel} batch={batch}: {n / wall:,.0f} docs/s",
                      flush=True)
    best: dict[str, tuple[int, int]] = {}
    for t in TRANSPORTS:
        top = max((r for r in rows if r["transport"] == t), key=lambda r: r["docs_per_s"])
        best[t] = (top["parallel"], top["batch"])
    return best, rows


def bench_ingest(contenders: dict[str, tuple[Ingest, int | None]], data: Data, batch: int,
                 runs: int, server: Server, cpu: CpuClock
                 ) -> tuple[dict[str, dict[str, list[float]]], dict[str, Side]]:
    n = len(data.ids)
    seconds: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in contenders}
    kept: dict[str, Side] = {}
    for run in range(runs):
        last = run == runs - 1
        for name in rotated(list(contenders), run):
            ingest, side_batch = contenders[name]
            side, wall, cpus = timed(ingest, data, side_batch or batch, server, cpu)
            seconds[name]["wall"].append(wall)
            seconds[name]["cpu"].append(cpus)
            extra = ""
            if last:  # kept for the queries: indexed now, not beside the next side's run
                kept[name] = side
                extra = f" (indexed {wait_for_green(server, side.name):.0f} s later)"
            else:
                side.close()
            print(f"  run {run + 1}/{runs} {name}: {n / wall:,.0f} docs/s, "
                  f"{n / cpus:,.0f} docs/cpu-s{extra}", flush=True)
    return seconds, kept


class RssSampler:
    """Peak RSS of this process's descendants (upload workers), sampled in a thread."""

    def __init__(self, every: float = 0.05) -> None:
        import psutil

        self.me = psutil.Process()
        self.every = every
        self.peak_children = 0
        self.samples: list[tuple[float, int]] = []  # (seconds, own RSS bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.every):
            total = 0
            for child in self.me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_children = max(self.peak_children, total)
            self.samples.append((time.perf_counter() - self._t0, self.me.memory_info().rss))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def reset_peak() -> str:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return "VmHWM after - VmRSS before, peak reset via /proc/self/clear_refs"
    except OSError:
        return "VmHWM after - VmRSS before, peak NOT reset: may understate"


def memory_child(args: argparse.Namespace) -> None:
    """`--only SIDE`: one ingestion in this process; prints its peak RSS above the baseline."""
    server = Server(args.url, args.grpc_port)
    raw_best = json.loads(args.raw_best)
    ingest, side_batch = sides({t: tuple(v) for t, v in raw_best.items()},
                               args.ours_parallel)[args.only]
    batch = side_batch or args.batch
    data = make_data(args.n, 1)
    data.nodes  # noqa: B018  (the inputs are built before the baseline)
    ingest(make_data(2 * batch + 1, 1, seed=7), batch, server).close()  # imports, first calls
    gc.collect()
    gc.freeze()
    method = reset_peak()
    before = _status()["VmRSS"]
    with RssSampler() as sampler:
        t0 = time.perf_counter()
        side = ingest(data, batch, server)
        seconds = time.perf_counter() - t0
    peak = _status()["VmHWM"]
    side.close()
    print(json.dumps({"name": args.only, "peak_delta_mb": (peak - before) / 1024,
                      "workers_peak_mb": sampler.peak_children / 2**20,
                      "rss_before_mb": before / 1024, "seconds": seconds, "method": method}))


def measure_memory(names: list[str], args: argparse.Namespace, server: Server,
                   raw_best: dict[str, tuple[int, int]]) -> dict[str, dict[str, Any]]:
    results = {}
    for name in names:
        cmd = [sys.executable, __file__, "--only", name, "--n", str(args.n), "--batch",
               str(args.batch), "--url", server.url, "--grpc-port", str(server.grpc_port),
               "--raw-best", json.dumps(raw_best)]
        if args.ours_parallel:
            cmd += ["--ours-parallel", str(args.ours_parallel)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"  memory run of {name} failed:\n{out.stderr[-2000:]}", flush=True)
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[name]
        workers = f" + {r['workers_peak_mb']:.0f} MB in upload workers" \
            if r["workers_peak_mb"] else ""
        print(f"  {name}: +{r['peak_delta_mb']:.0f} MB peak{workers}", flush=True)
    return results


# --- streaming ------------------------------------------------------------------------------
class BatchVectors(Embeddings):
    """Random unit vectors made per call (seeded): a stream's embeddings cost little and are
    never all in memory at once."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = np.random.default_rng(seed)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return unit_vectors(self.rng, len(texts)).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def documents(n: int) -> Iterator[Any]:
    from langchain_core.documents import Document

    for i in range(n):
        yield Document(page_content=f"streamed doc {i}",
                       metadata={"year": YEARS[0] + i % (YEARS[1] - YEARS[0]),
                                 "tag": TAGS[i % len(TAGS)]},
                       id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"issue9-stream-{i}")))


def stream_child(args: argparse.Namespace) -> None:
    """`--only stream`: --stream-n documents from a generator through our LangChain store."""
    from rag_stores.langchain import QdrantVectorStore

    server = Server(args.url, args.grpc_port)
    name = fresh_name("stream")
    store = QdrantVectorStore(BatchVectors(), name, dim=DIM, progress=False,
                              payload_indexes={"year": "integer"}, parallel=args.ours_parallel,
                              **server.kwargs(args.stream_transport))
    store.add_documents(documents(2 * args.batch + 1), batch_size=args.batch)  # warm up
    gc.collect()
    method = reset_peak()
    before = _status()["VmRSS"]
    with RssSampler(every=0.5) as sampler:
        t0 = time.perf_counter()
        ids = store.add_documents(documents(args.stream_n), batch_size=args.batch)
        seconds = time.perf_counter() - t0
    peak = _status()["VmHWM"]
    after = _status()["VmRSS"]
    with server.admin() as admin:
        wait_for_count(admin, name, args.stream_n)
    store.close()
    with server.admin() as admin:
        admin.delete_collection(name)
    print(json.dumps({"n": args.stream_n, "ids_returned": len(ids), "seconds": seconds,
                      "docs_per_s": args.stream_n / seconds, "transport": args.stream_transport,
                      "batch": args.batch, "peak_delta_mb": (peak - before) / 1024,
                      "end_delta_mb": (after - before) / 1024, "rss_before_mb": before / 1024,
                      "rss_samples_mb": [(round(t, 1), round(r / 2**20 - before / 1024, 1))
                                         for t, r in sampler.samples[::10]],
                      "method": method}))


def run_stream(args: argparse.Namespace, server: Server) -> dict[str, Any] | None:
    print(f"\n== streaming: {args.stream_n:,} documents from a generator through our LangChain "
          f"store ({args.stream_transport}, batch {args.batch}), one subprocess ==", flush=True)
    cmd = [sys.executable, __file__, "--only", "stream", "--stream-n", str(args.stream_n),
           "--batch", str(args.batch), "--url", server.url, "--grpc-port",
           str(server.grpc_port), "--stream-transport", args.stream_transport]
    if args.ours_parallel:
        cmd += ["--ours-parallel", str(args.ours_parallel)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"  streaming run failed:\n{out.stderr[-3000:]}", flush=True)
        return None
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print()
    print(table(f"streaming ingest ({result['method']}; the {result['ids_returned']:,} ids "
                "returned are part of it)",
                ["documents", "docs/s", "client RSS peak above baseline MB",
                 "RSS at the end MB", "target < 300 MB"],
                [[f"{result['n']:,}", f"{result['docs_per_s']:,.0f}",
                  f"{result['peak_delta_mb']:.0f}", f"{result['end_delta_mb']:.0f}",
                  "met" if result["peak_delta_mb"] < 300 else "MISSED"]]))
    return result


# --- reports --------------------------------------------------------------------------------
def ingest_rows(seconds: dict[str, dict[str, list[float]]], n: int, base: str,
                memory: dict[str, dict[str, Any]]) -> list[list[Any]]:
    best_base = n / min(seconds[base]["wall"])
    rows = []
    for name, runs in seconds.items():
        best = n / min(runs["wall"])
        mem = memory.get(name, {})
        peak = mem.get("peak_delta_mb")
        peak_text = "-" if peak is None else f"{peak:.0f}" + (
            f" (+{mem['workers_peak_mb']:.0f} workers)" if mem.get("workers_peak_mb") else "")
        rows.append([name, f"{best:,.0f}", f"{n / median(runs['wall']):,.0f}",
                     f"{best / best_base:.2f}x", f"{n / min(runs['cpu']):,.0f}", peak_text])
    return rows


def query_rows(plain: dict[str, dict[str, float]], filtered: dict[str, dict[str, float]]
               ) -> list[list[Any]]:
    rows = []
    for name in plain:
        if name.startswith("raw@"):
            continue
        t = name.rsplit("-", 1)[1]
        base_p, base_f = plain[f"raw-{t}"], filtered[f"raw-{t}"]
        p, f = plain[name], filtered[name]
        rows.append([name, f"{p['median_ms']:.2f}", f"{p['p95_ms']:.2f}",
                     f"{p['median_ms'] / base_p['median_ms']:.2f}x",
                     f"{p['p95_ms'] / base_p['p95_ms']:.2f}x",
                     f"{f['median_ms']:.2f}", f"{f['p95_ms']:.2f}",
                     f"{f['median_ms'] / base_f['median_ms']:.2f}x",
                     f"{f['p95_ms'] / base_f['p95_ms']:.2f}x",
                     f"{p['overlap_with_raw']:.0%} / {f['overlap_with_raw']:.0%}",
                     "-" if name.startswith("raw-") else f"{worst_ratio(name, plain, filtered, f'raw@{name}'):.2f}x"])
    return rows


def worst_ratio(name: str, plain: dict[str, dict[str, float]],
                filtered: dict[str, dict[str, float]], base: str) -> float:
    """The worst of p50 and p95, plain and filtered, of `name` over `base`."""
    return max(s[name][m] / s[base][m] for s in (plain, filtered) for m in ("median_ms", "p95_ms"))


def target_rows(seconds: dict[str, dict[str, list[float]]], n: int, raw_best_rate: float,
                plain: dict[str, dict[str, float]] | None,
                filtered: dict[str, dict[str, float]] | None) -> list[list[Any]]:
    def rate(name: str) -> float:
        return n / min(seconds[name]["wall"])

    rows: list[list[Any]] = []
    for face, peer in (("lc", "langchain-qdrant"), ("li", "llama-index-qdrant")):
        for t in TRANSPORTS:
            ours = f"ours-{face}-{t}"
            vs_peer = rate(ours) / rate(f"{peer}-{t}")
            vs_raw = rate(ours) / raw_best_rate
            row = [ours, f"{vs_peer:.2f}x {peer}-{t}", "met" if vs_peer >= 1.5 else "MISSED",
                   f"{vs_raw:.2f}x", "met" if vs_raw >= 0.9 else "MISSED",
                   f"{rate(ours) / rate(f'raw-{t}'):.2f}x"]
            if plain is not None and filtered is not None:
                for base in (f"raw-{t}", f"raw@{ours}"):
                    worst = worst_ratio(ours, plain, filtered, base)
                    row += [f"{worst:.2f}x", "met" if worst <= 1.1 else "MISSED"]
            rows.append(row)
    return rows


# --- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="documents per side (0: skip)")
    parser.add_argument("--stream-n", type=int, default=1_000_000,
                        help="documents of the streaming section (0: skip)")
    parser.add_argument("--batch", type=int, default=256,
                        help="batch size of our stores and the peers")
    parser.add_argument("--raw-parallel", default="1,2,4", help="raw sweep: parallel values")
    parser.add_argument("--raw-batch", default="64,256,1024", help="raw sweep: batch sizes")
    parser.add_argument("--runs", type=int, default=2, help="interleaved rounds (best kept)")
    parser.add_argument("--queries", type=int, default=1000, help="query vectors (each side)")
    parser.add_argument("--stream-transport", choices=TRANSPORTS, default="grpc")
    parser.add_argument("--ours-parallel", type=int, default=None,
                        help="writes in flight for our stores (default: the stores' default)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # a memory or streaming subprocess
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--grpc-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw-best", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only == "stream":
        stream_child(args)
        return
    if args.only:
        memory_child(args)
        return

    os.environ.setdefault("RAG_STORES_QDRANT_BIN", BIN)
    from importlib.metadata import version

    from rag_stores.servers.qdrant import QdrantServer

    results: dict[str, Any] = {"args": vars(args), "qdrant_client": version("qdrant-client")}
    qdrant = QdrantServer(data_dir=None)
    with qdrant:
        assert qdrant.process is not None and qdrant.grpc_port is not None
        server = Server(qdrant.url, qdrant.grpc_port)
        cpu = CpuClock(qdrant.process.pid)
        results["server"] = qdrant.get("/")
        if args.n:
            run_main(args, server, cpu, results)
        if args.stream_n:
            results["stream"] = run_stream(args, server)
    print(f"\nJSON: {write_json('bench_qdrant_server', results)}")


def run_main(args: argparse.Namespace, server: Server, cpu: CpuClock,
             results: dict[str, Any]) -> None:
    n = args.n
    data = make_data(n, args.queries)
    data.nodes  # noqa: B018  (LlamaIndex inputs are built outside the timing)
    gc.collect()
    gc.freeze()  # the inputs stay alive all along, out of the cyclic GC's sight
    warm = make_data(2 * args.batch + 1, 1, seed=7)
    for t in TRANSPORTS:  # imports and first calls of every side outside the timing
        for ingest in (raw(t, 1), ours_lc(t), ours_li(t), peer_lc(t), peer_li(t)):
            ingest(warm, args.batch, server).close()
    parallels = [int(p) for p in args.raw_parallel.split(",")]
    batches = [int(b) for b in args.raw_batch.split(",")]
    raw_best, sweep = raw_sweep(data, server, cpu, parallels, batches)
    print("  best: " + ", ".join(f"{t} parallel={p} batch={b}" for t, (p, b) in raw_best.items()),
          flush=True)
    contenders = sides(raw_best, args.ours_parallel)
    print(f"\n== ingestion: {n:,} x {DIM}, batch {args.batch} (raw: its best), "
          f"{args.runs} interleaved rounds ==", flush=True)
    seconds, kept = bench_ingest(contenders, data, args.batch, args.runs, server, cpu)
    print(f"  queries: {args.queries} vectors, k={K}, without and with year >= {FILTER_YEAR}",
          flush=True)
    readers = {f"raw@{k}": raw_reader(server, s.name, k.rsplit("-", 1)[1])
               for k, s in kept.items() if not k.startswith("raw-")}
    queried = {**kept, **readers}
    plain = bench_queries(dict(queried), data.queries, "raw-grpc", cpu)
    filtered = bench_queries({k: Handle(s.filtered, s.close) for k, s in queried.items()},
                             data.queries, "raw-grpc", cpu)
    for side in queried.values():
        side.close()
    del kept, data
    gc.unfreeze()
    gc.collect()
    memory: dict[str, dict[str, Any]] = {}
    if not args.no_memory:
        print("  client peak memory, one subprocess per side:", flush=True)
        memory = measure_memory(list(contenders), args, server, raw_best)
    raw_rates = {name: n / min(seconds[name]["wall"]) for name in seconds
                 if name.startswith("raw-")}
    base = max(raw_rates, key=lambda k: raw_rates[k])
    print()
    print(table(f"raw upload_points sweep ({n:,} points, one run each)",
                ["transport", "parallel", "batch", "docs/s", "docs/cpu-s (client main + server)"],
                [[r["transport"], r["parallel"], r["batch"], f"{r['docs_per_s']:,.0f}",
                  f"{r['docs_per_cpu_s']:,.0f}"] for r in sweep]))
    print()
    print(table(f"ingestion ({n:,} docs, best of {args.runs} rounds; vs {base} = raw's best; "
                f"peak MB = client RSS above baseline, {next(iter(memory.values()), {}).get('method', 'not measured')})",
                ["side", "docs/s best", "docs/s median", "vs raw's best",
                 "docs/cpu-s (client+server)", "peak MB"],
                ingest_rows(seconds, n, base, memory)))
    print()
    print(table(f"queries, top-{K} by vector, ms (ratios vs raw on the same transport; "
                f"filter: year >= {FILTER_YEAR}, ~10%)",
                ["side", "p50", "p95", "p50 vs raw", "p95 vs raw", "filtered p50",
                 "filtered p95", "f. p50 vs raw", "f. p95 vs raw", "top-k overlap w/ raw-grpc",
                 "worst vs raw on its collection"],
                query_rows(plain, filtered)))
    print()
    print(table("targets: ingestion >= 1.5x the peer (same transport) and >= 0.9x raw's best; "
                "query p50 and p95 <= 1.1x raw (same transport; worst of plain and filtered)",
                ["side", "vs peer", "1.5x", "vs raw's best", "0.9x", "vs raw same transport",
                 "query vs raw", "1.1x", "query vs raw on its collection", "1.1x"],
                target_rows(seconds, n, raw_rates[base], plain, filtered)))
    results["ingest"] = {"n": n, "batch": args.batch, "raw_best": raw_best, "sweep": sweep,
                         "seconds": seconds, "memory": memory, "baseline": base}
    results["queries"] = {"plain": plain, "filtered": filtered, "filter_year": FILTER_YEAR}


if __name__ == "__main__":
    main()
