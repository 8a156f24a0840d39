"""Issue 10, faster writes: our Weaviate stores on a real server and a 3-node cluster, next to
raw weaviate-client and the peers.

Figures are printed and written to benchmarks/out/bench_weaviate_server-<time>.json; nothing
is asserted. The sibling of bench_qdrant_server.py (its data, streaming and RSS helpers are
imported from there). Per topology (one `WeaviateServer`; a `WeaviateCluster(3)` with
replication factor 3 on every side (--cluster-rf), clients on node 1):

1. Raw sweep, one run each: weaviate-client `collection.batch.fixed_size(batch, concurrent)`
   and `collection.data.insert_many` chunks sent by a bounded thread pool (gRPC). The best
   configuration of each kind is "raw-fixed" / "raw-insert-many" below; the better of the two
   is "raw's best", the baseline of the ratios.
2. Sweep of our LangChain store's (parallel, batch) settings, one run each; the best is used
   for "ours-*-best" on both faces.
3. Ingestion of N documents (--data cisi, the default: CISI sentences with their real
   all-MiniLM-L6-v2 embeddings, at most 7,103; --data random: N x 384 seeded random unit
   vectors, the HNSW worst case) with small payloads {"year", "tag"}, sides
   interleaved over --runs rounds (best kept), each into a fresh collection (dropped after):
   raw's two kinds, our LangChain store (`add_texts`, a lookup `Embeddings`) and LlamaIndex
   store (TextNodes carrying embeddings) at default settings and at the best setting,
   langchain-weaviate (`add_texts`, its dynamic batch) and llama-index-vector-stores-weaviate
   (`add`, its dynamic batch). Peers' collections are made with their own schema plus the
   replication config (langchain-weaviate takes `schema=`; LlamaIndex's is created first
   with its default schema). Every run's count is checked after its timing.
4. Streaming (single server): --stream-n documents from a generator through our LangChain
   store's `add_documents` in a subprocess: docs/s and client RSS above the baseline.

    python benchmarks/bench_weaviate_server.py                          # full
    python benchmarks/bench_weaviate_server.py --n 2000 --stream-n 5000  # quick
    python benchmarks/bench_weaviate_server.py --topologies single --stream-n 0

Wall-clock figures suffer from whatever else runs on the machine (2 shared cores): sides are
alternated and the best of --runs rounds is kept. Client and server CPU per document are
measured apart (this process; the server processes): the server's share bounds what any
client can reach on this machine (the "ceiling" of the target table).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import bench_quality as bq  # noqa: E402
from benchmarks.bench_qdrant_server import (  # noqa: E402
    BatchVectors,
    RssSampler,
    documents,
    make_data,
    reset_peak,
)
from benchmarks.bench_stores import (  # noqa: E402
    DIM,
    Data,
    LookupEmbeddings,
    _status,
    fresh_name,
    rotated,
)
from benchmarks.common import OUT_DIR, median, table, write_json  # noqa: E402

PEERS = ("langchain-weaviate", "llama-index-weaviate")


# --- servers ------------------------------------------------------------------------------
@dataclass
class Target:
    """What a side needs of the server or cluster (flags for the streaming subprocess)."""

    http_port: int
    grpc_port: int
    replication: int | None = None  # replication factor of every side's collection
    pids: list[int] = field(default_factory=list)

    def client(self) -> Any:
        import weaviate

        return weaviate.connect_to_local(host="127.0.0.1", port=self.http_port,
                                         grpc_port=self.grpc_port)

    def replication_config(self) -> Any:
        from weaviate.classes.config import Configure

        return Configure.replication(factor=self.replication) if self.replication else None


class Cpu:
    """CPU seconds of this process (the client) and of the server processes."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.servers = [psutil.Process(p) for p in pids]

    def __call__(self) -> tuple[float, float]:
        server = 0.0
        for s in self.servers:
            t = s.cpu_times()
            server += t.user + t.system
        return time.process_time(), server


# --- data ---------------------------------------------------------------------------------
@functools.cache
def _cisi_sentences() -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """{sentence: the abstract it is first found in}, their vectors and the query vectors:
    read and embedded (or loaded from the cache) once per process, whatever the topologies."""
    docs, _, _ = bq.load_cisi()
    queries = {i: r.get("W", "") or r.get("T", "")
               for i, r in bq.parse_smart(bq.DATA / "CISI.QRY").items()}
    doc_of: dict[str, str] = {}
    for doc_id, text in docs.items():
        for part in re.split(r"(?<=[.!?])\s+", text):
            if len(part.strip()) > 20:
                doc_of.setdefault(part.strip(), doc_id)
    vectors, query_vectors = bq.dense_vectors(
        bq.DenseEncoder(batch_size=32), dict(zip(map(str, range(len(doc_of))), doc_of, strict=True)),
        queries, OUT_DIR, cache_name="cisi-sentences")
    return doc_of, vectors, query_vectors


def sentence_data(limit: int | None = None) -> Data:
    """CISI abstracts' sentences (unique, over 20 characters; the first `limit`) as Data,
    embedded with all-MiniLM-L6-v2 (cached in benchmarks/out); queries: the 112 CISI queries."""
    doc_of, vectors, query_vectors = _cisi_sentences()
    texts = list(doc_of)[:limit]
    return Data(ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, f"cisi-sentence-{i}"))
                     for i in range(len(texts))],
                texts=texts, metadatas=[{"year": int(doc_of[t]), "tag": "cisi"} for t in texts],
                vectors=vectors[:len(texts)].tolist(), queries=query_vectors.tolist())


# --- sides --------------------------------------------------------------------------------
# A side ingests Data into a fresh collection with the shared client and returns its name.
Ingest = Callable[[Data, Any, Target], str]


def _props(data: Data, i: int) -> dict[str, Any]:
    return {"text": data.texts[i], "doc_id": data.ids[i], **data.metadatas[i]}


def _raw_collection(client: Any, target: Target) -> tuple[str, Any]:
    from weaviate.classes.config import Configure, DataType, Property, VectorDistances

    name = fresh_name("Raw")
    collection = client.collections.create(
        name, vector_config=[Configure.Vectors.self_provided(
            name="dense", vector_index_config=Configure.VectorIndex.hnsw(
                distance_metric=VectorDistances.COSINE))],
        properties=[Property(name="text", data_type=DataType.TEXT),
                    Property(name="doc_id", data_type=DataType.TEXT),
                    Property(name="year", data_type=DataType.INT),
                    Property(name="tag", data_type=DataType.TEXT)],
        replication_config=target.replication_config())
    return name, collection


def raw_fixed(batch: int, concurrent: int) -> Ingest:
    def ingest(data: Data, client: Any, target: Target) -> str:
        name, collection = _raw_collection(client, target)
        with collection.batch.fixed_size(batch_size=batch, concurrent_requests=concurrent) as w:
            for i in range(len(data.ids)):
                w.add_object(properties=_props(data, i), vector={"dense": data.vectors[i]},
                             uuid=data.ids[i])
        if collection.batch.failed_objects:
            raise RuntimeError(f"raw batch failed: {collection.batch.failed_objects[:3]}")
        return name
    return ingest


def raw_insert_many(batch: int, parallel: int) -> Ingest:
    """insert_many chunks over gRPC, at most `parallel` in flight (built as they are sent)."""
    def ingest(data: Data, client: Any, target: Target) -> str:
        from weaviate.classes.data import DataObject

        name, collection = _raw_collection(client, target)
        n = len(data.ids)

        def send(start: int) -> None:
            chunk = [DataObject(properties=_props(data, i), vector={"dense": data.vectors[i]},
                                uuid=data.ids[i]) for i in range(start, min(n, start + batch))]
            result = collection.data.insert_many(chunk)
            if result.errors:
                raise RuntimeError(f"raw insert_many failed: {list(result.errors.values())[:3]}")

        with ThreadPoolExecutor(parallel) as pool:  # map() would queue every chunk at once
            pending: list[Any] = []
            for start in range(0, n, batch):
                if len(pending) >= parallel:
                    pending.pop(0).result()
                pending.append(pool.submit(send, start))
            for f in pending:
                f.result()
        return name
    return ingest


def ours_lc(parallel: int | None = None, batch: int | None = None) -> Ingest:
    def ingest(data: Data, client: Any, target: Target) -> str:
        from rag_stores.langchain import WeaviateVectorStore

        name = fresh_name("OursLc")
        store = WeaviateVectorStore(LookupEmbeddings(data.texts, data.vectors), name,
                                    client=client, dim=DIM, progress=False, parallel=parallel,
                                    replication_factor=target.replication)
        store.add_texts(data.texts, data.metadatas, ids=data.ids, batch_size=batch)
        return name
    return ingest


def ours_li(parallel: int | None = None, batch: int | None = None) -> Ingest:
    def ingest(data: Data, client: Any, target: Target) -> str:
        from rag_stores.llama_index import WeaviateVectorStore

        name = fresh_name("OursLi")
        extra: dict[str, Any] = {"batch_size": batch} if batch else {}
        store = WeaviateVectorStore(name, client=client, parallel=parallel,
                                    replication_factor=target.replication, **extra)
        store.add(data.nodes)
        return name
    return ingest


def peer_lc(data: Data, client: Any, target: Target) -> str:
    from langchain_weaviate import WeaviateVectorStore
    from langchain_weaviate.vectorstores import _default_schema

    name = fresh_name("PeerLc")
    schema = _default_schema(name, "text")
    if target.replication:
        schema["replicationConfig"] = {"factor": target.replication}
    store = WeaviateVectorStore(client, name, "text", LookupEmbeddings(data.texts, data.vectors),
                                schema=schema)
    store.add_texts(data.texts, data.metadatas, ids=data.ids)  # one dynamic batch
    return name


def peer_li(data: Data, client: Any, target: Target) -> str:
    from llama_index.vector_stores.weaviate import WeaviateVectorStore
    from llama_index.vector_stores.weaviate.utils import NODE_SCHEMA

    name = fresh_name("PeerLi")
    if target.replication:  # its default schema, made first, plus the replication config
        client.collections.create_from_dict({
            "class": name, "description": f"Class for {name}", "properties": NODE_SCHEMA,
            "replicationConfig": {"factor": target.replication}})
    store = WeaviateVectorStore(weaviate_client=client, index_name=name)
    store.add(data.nodes)  # one dynamic batch
    return name


# --- measurements ---------------------------------------------------------------------------
def timed(ingest: Ingest, data: Data, client: Any, target: Target, cpu: Cpu,
          inspect: Callable[[str], None] | None = None) -> tuple[float, float, float]:
    """Wall seconds, client CPU seconds and server CPU seconds of one ingest; `inspect` sees
    the collection (by name) after the timing, before it is dropped."""
    gc.collect()
    t0, (client0, server0) = time.perf_counter(), cpu()
    name = ingest(data, client, target)
    wall, (client1, server1) = time.perf_counter() - t0, cpu()
    count = client.collections.use(name).aggregate.over_all(total_count=True).total_count
    if inspect is not None:
        inspect(name)
    client.collections.delete(name)
    if count != len(data.ids):
        raise RuntimeError(f"{name}: {count} objects stored, {len(data.ids)} written")
    return wall, client1 - client0, server1 - server0


def sweep(label: str, configs: dict[str, Ingest], data: Data, client: Any, target: Target,
          cpu: Cpu) -> list[dict[str, Any]]:
    n = len(data.ids)
    rows = []
    for name, ingest in configs.items():
        wall, client_cpu, server_cpu = timed(ingest, data, client, target, cpu)
        rows.append({"config": name, "docs_per_s": n / wall,
                     "docs_per_cpu_s": n / (client_cpu + server_cpu)})
        print(f"  {label} {name}: {n / wall:,.0f} docs/s", flush=True)
    return rows


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """"200x4,100x2" -> [(200, 4), (100, 2)]."""
    return [(int(a), int(b)) for a, b in (p.split("x") for p in text.split(",") if p)]


def run_topology(label: str, target: Target, n: int, args: argparse.Namespace
                 ) -> dict[str, Any]:
    client = target.client()
    cpu = Cpu(target.pids)
    try:
        data = sentence_data(n) if args.data == "cisi" else make_data(n, 1)
        n = len(data.ids)
        data.nodes  # noqa: B018  (LlamaIndex inputs are built outside the timing)
        gc.collect()
        gc.freeze()
        warm = make_data(600, 1, seed=7)
        for ingest in (raw_fixed(100, 2), raw_insert_many(100, 2), ours_lc(), ours_li(),
                       peer_lc, peer_li):  # imports and first calls outside the timing
            timed(ingest, warm, client, target, cpu)
        print(f"\n== {label}: raw sweep, {n:,} docs, one run each ==", flush=True)
        raw_rows = sweep("raw", {
            **{f"fixed_size batch={b} concurrent={c}": raw_fixed(b, c)
               for b, c in parse_pairs(args.raw_fixed)},
            **{f"insert_many batch={b} parallel={p}": raw_insert_many(b, p)
               for b, p in parse_pairs(args.raw_insert_many)}}, data, client, target, cpu)
        best_fixed = max((r for r in raw_rows if r["config"].startswith("fixed")),
                         key=lambda r: r["docs_per_s"])["config"]
        best_many = max((r for r in raw_rows if r["config"].startswith("insert")),
                        key=lambda r: r["docs_per_s"])["config"]
        fb, fc = (int(x.split("=")[1]) for x in best_fixed.split()[1:])
        mb, mp = (int(x.split("=")[1]) for x in best_many.split()[1:])
        print(f"\n== {label}: our LangChain store, parallel x batch sweep ==", flush=True)
        ours_rows = sweep("ours-lc", {f"parallel={p} batch={b}": ours_lc(p, b)
                                      for p, b in parse_pairs(args.ours_sweep)},
                          data, client, target, cpu)
        best_ours = max(ours_rows, key=lambda r: r["docs_per_s"])["config"]
        op, ob = (int(x.split("=")[1]) for x in best_ours.split())
        sides: dict[str, Ingest] = {
            "raw-fixed": raw_fixed(fb, fc), "raw-insert-many": raw_insert_many(mb, mp),
            "ours-lc": ours_lc(), "ours-li": ours_li(),
            "ours-lc-best": ours_lc(op, ob), "ours-li-best": ours_li(op, ob),
            "langchain-weaviate": peer_lc, "llama-index-weaviate": peer_li,
        }
        settings = {"raw-fixed": best_fixed, "raw-insert-many": best_many,
                    "ours-lc": "defaults", "ours-li": "defaults",
                    "ours-lc-best": best_ours, "ours-li-best": best_ours,
                    "langchain-weaviate": "defaults (dynamic batch)",
                    "llama-index-weaviate": "defaults (dynamic batch)"}
        print(f"\n== {label}: ingestion, {n:,} x {DIM}, {args.runs} interleaved rounds ==",
              flush=True)
        seconds: dict[str, dict[str, list[float]]] = {
            s: {"wall": [], "client_cpu": [], "server_cpu": []} for s in sides}
        for run in range(args.runs):
            for name in rotated(list(sides), run):
                wall, client_cpu, server_cpu = timed(sides[name], data, client, target, cpu)
                seconds[name]["wall"].append(wall)
                seconds[name]["client_cpu"].append(client_cpu)
                seconds[name]["server_cpu"].append(server_cpu)
                print(f"  run {run + 1}/{args.runs} {name}: {n / wall:,.0f} docs/s, "
                      f"client {client_cpu / n * 1e6:,.0f} us/doc, server "
                      f"{server_cpu / n * 1e6:,.0f} us/doc", flush=True)
        gc.unfreeze()
        return {"n": n, "replication_factor": target.replication, "raw_sweep": raw_rows,
                "ours_sweep": ours_rows, "settings": settings, "seconds": seconds}
    finally:
        client.close()


# --- reports --------------------------------------------------------------------------------
def report(label: str, r: dict[str, Any]) -> list[list[Any]]:
    """The ingestion table, and this topology's rows of the target table.

    The ceiling of a side is the rate it would reach if its server CPU per document stayed as
    measured and the server had every core of the machine (a client costing nothing, no core
    idle): the most any client could get from this server here."""
    n, seconds = r["n"], r["seconds"]
    cores = os.cpu_count() or 1
    rate = {s: n / min(v["wall"]) for s, v in seconds.items()}
    client_us = {s: median(v["client_cpu"]) / n * 1e6 for s, v in seconds.items()}
    server_us = {s: median(v["server_cpu"]) / n * 1e6 for s, v in seconds.items()}
    busy = {s: median([(c + sv) / w for w, c, sv in zip(
        v["wall"], v["client_cpu"], v["server_cpu"], strict=True)]) for s, v in seconds.items()}
    base = max(("raw-fixed", "raw-insert-many"), key=lambda s: rate[s])
    rows = [[s, r["settings"][s], f"{rate[s]:,.0f}", f"{n / median(v['wall']):,.0f}",
             f"{client_us[s]:,.0f}", f"{server_us[s]:,.0f}", f"{busy[s]:.2f}",
             f"{rate[s] / rate[base]:.2f}x", *(f"{rate[s] / rate[p]:.2f}x" for p in PEERS)]
            for s, v in seconds.items()]
    rf = r["replication_factor"]
    print()
    print(table(f"{label}: ingestion of {n:,} docs (best of {len(seconds['ours-lc']['wall'])} "
                f"rounds; replication factor {rf or 1}; vs {base} = raw's best; CPU per doc "
                f"and cores busy (of {cores}): medians)",
                ["side", "setting", "docs/s best", "docs/s median", "client us/doc",
                 "server us/doc", "cores busy", "vs raw's best", *(f"vs {p}" for p in PEERS)],
                rows))
    targets = []
    for s in ("ours-lc", "ours-li", "ours-lc-best", "ours-li-best"):
        ratios = [rate[s] / rate[p] for p in PEERS]
        ceiling = cores / (server_us[s] / 1e6)
        targets.append([label, s, *(f"{x:.2f}x" for x in ratios),
                        "met" if min(ratios) >= 1.5 else "MISSED",
                        *(f"{ceiling / rate[p]:.2f}x" for p in PEERS)])
    return targets


# --- streaming ------------------------------------------------------------------------------
def stream_child(args: argparse.Namespace) -> None:
    """`--only stream`: --stream-n documents from a generator through our LangChain store."""
    from rag_stores.langchain import WeaviateVectorStore

    target = Target(args.http_port, args.grpc_port)
    client = target.client()
    name = fresh_name("Stream")
    store = WeaviateVectorStore(BatchVectors(), name, client=client, dim=DIM, progress=False,
                                parallel=args.stream_parallel)
    store.add_documents(documents(2 * 64 + 1))  # warm up: imports, collection, first calls
    gc.collect()
    method = reset_peak()
    before = _status()["VmRSS"]
    with RssSampler(every=0.5) as sampler:
        t0 = time.perf_counter()
        ids = store.add_documents(documents(args.stream_n))
        seconds = time.perf_counter() - t0
    peak = _status()["VmHWM"]
    after = _status()["VmRSS"]
    count = client.collections.use(name).aggregate.over_all(total_count=True).total_count
    client.collections.delete(name)
    client.close()
    print(json.dumps({"n": args.stream_n, "ids_returned": len(ids), "count": count,
                      "seconds": seconds, "docs_per_s": args.stream_n / seconds,
                      "parallel": args.stream_parallel or "default",
                      "peak_delta_mb": (peak - before) / 1024,
                      "end_delta_mb": (after - before) / 1024, "rss_before_mb": before / 1024,
                      "rss_samples_mb": [(round(t, 1), round(r / 2**20 - before / 1024, 1))
                                         for t, r in sampler.samples[::10]],
                      "method": method}))


def run_stream(args: argparse.Namespace, target: Target) -> dict[str, Any] | None:
    print(f"\n== streaming: {args.stream_n:,} documents from a generator through our LangChain "
          "store (defaults), one subprocess ==", flush=True)
    cmd = [sys.executable, __file__, "--only", "stream", "--stream-n", str(args.stream_n),
           "--http-port", str(target.http_port), "--grpc-port", str(target.grpc_port)]
    if args.stream_parallel:
        cmd += ["--stream-parallel", str(args.stream_parallel)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"  streaming run failed:\n{out.stderr[-3000:]}", flush=True)
        return None
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print()
    print(table(f"streaming ingest, single server ({result['method']}; the "
                f"{result['ids_returned']:,} ids returned are part of it)",
                ["documents", "stored", "docs/s", "client RSS peak above baseline MB",
                 "RSS at the end MB"],
                [[f"{result['n']:,}", f"{result['count']:,}", f"{result['docs_per_s']:,.0f}",
                  f"{result['peak_delta_mb']:.0f}", f"{result['end_delta_mb']:.0f}"]]))
    return result


# --- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None,
                        help="documents per side (default 20,000 single, 10,000 cluster)")
    parser.add_argument("--cluster-n", type=int, default=None,
                        help="documents per side on the cluster (default: --n, else 10,000)")
    parser.add_argument("--stream-n", type=int, default=200_000,
                        help="documents of the streaming section (0: skip)")
    parser.add_argument("--topologies", default="single,cluster")
    parser.add_argument("--cluster-rf", default="3",
                        help="replication factors measured on the cluster, e.g. 1,3 (its "
                             "collections have 3 shards: RF 1 spreads them, RF 3 copies each "
                             "to every node)")
    parser.add_argument("--data", choices=("cisi", "random"), default="cisi",
                        help="cisi: CISI sentences embedded with all-MiniLM-L6-v2 (at most N, "
                             "7,103 in all); random: N seeded random unit vectors")
    parser.add_argument("--runs", type=int, default=2, help="interleaved rounds (best kept)")
    parser.add_argument("--raw-fixed", default="100x2,200x4",
                        help="raw sweep: fixed_size BATCHxCONCURRENT")
    parser.add_argument("--raw-insert-many", default="100x1,200x4",
                        help="raw sweep: insert_many BATCHxPARALLEL")
    parser.add_argument("--ours-sweep", default="2x256,4x256,8x256,8x512",
                        help="our LangChain store: PARALLELxBATCH settings tried")
    parser.add_argument("--stream-parallel", type=int, default=None,
                        help="streaming: writes in flight (default: the store's default)")
    parser.add_argument("--async-indexing", action="store_true",
                        help="servers with ASYNC_INDEXING=true (vectors indexed after the ack)")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--http-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--grpc-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only == "stream":
        stream_child(args)
        return

    from importlib.metadata import version

    from rag_stores.servers.weaviate import WeaviateCluster, WeaviateServer

    topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
    results: dict[str, Any] = {"args": vars(args), "weaviate_client": version("weaviate-client"),
                               "langchain_weaviate": version("langchain-weaviate"),
                               "llama_index_weaviate": version(
                                   "llama-index-vector-stores-weaviate")}
    targets: list[list[Any]] = []
    server_env = {"ASYNC_INDEXING": "true"} if args.async_indexing else None
    if "single" in topologies or args.stream_n:
        with WeaviateServer(env=server_env) as server:
            assert server.process is not None and server.http_port and server.grpc_port
            target = Target(server.http_port, server.grpc_port, None, [server.process.pid])
            if "single" in topologies:
                results["single"] = run_topology("single server", target, args.n or 20_000,
                                                 args)
                targets += report("single server", results["single"])
            if args.stream_n:
                results["stream"] = run_stream(args, target)
    if "cluster" in topologies:
        with WeaviateCluster(3) as cluster:
            node: Any = cluster.nodes[0]  # a WeaviateServer
            assert node.http_port and node.grpc_port
            pids = [s.process.pid for s in cluster.nodes if s.process is not None]
            for rf in (int(f) for f in args.cluster_rf.split(",")):
                label = f"3-node cluster, replication factor {rf}"
                target = Target(node.http_port, node.grpc_port, rf if rf > 1 else None, pids)
                results[f"cluster-rf{rf}"] = run_topology(
                    label, target, args.cluster_n or args.n or 10_000, args)
                targets += report(label, results[f"cluster-rf{rf}"])
    if targets:
        print()
        print(table("target: our stores >= 1.5x each peer on the same server (ceiling: our "
                    "server CPU per doc on every core, no client cost, vs the peer's rate)",
                    ["topology", "side", *(f"vs {p}" for p in PEERS), "1.5x each",
                     *(f"ceiling vs {p}" for p in PEERS)], targets))
    results["targets"] = targets
    print(f"\nJSON: {write_json('bench_weaviate_server', results)}")


if __name__ == "__main__":
    main()
