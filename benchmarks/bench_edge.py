"""Embedded Qdrant engines side by side, through our LangChain store: local mode in memory and
on disk, Qdrant Edge (exact, then indexed after `optimize()`), and the Qdrant server.

Each engine runs in its own child process (its peak RSS is its own; Edge's optimize holds
the GIL of its process only), one after the other on the same data: N random 384-dim unit
vectors with small payloads, ingested in batches of 256; then top-10 queries by vector with
and without a filter (`year >= 2022`, 12% of points; Edge and the server are given
`payload_indexes={"year": "integer"}`, as the README advises for filtered fields). Recall@10 is measured against exact
neighbours computed with numpy. Local mode on disk writes about 56 docs/s: its ingest is
time-bound (`--disk-seconds`) and its docs/s extrapolated from that part; it is not queried.
A second section measures HNSW recall on real embeddings: the 1,460 CISI abstracts
(all-MiniLM-L6-v2, cached under benchmarks/out/ by bench_quality.dense_vectors) and their
112 queries, in Edge with the index forced on every point, for several search efforts.
Figures are printed (and saved as JSON); nothing is asserted.

    python benchmarks/bench_edge.py                        # 20,000 and 100,000 docs
    python benchmarks/bench_edge.py --sizes 20000 --engines edge,local-memory
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchmarks.bench_stores import DIM, LookupEmbeddings, unit_vectors  # noqa: E402
from benchmarks.common import OUT_DIR, percentile, table, write_json  # noqa: E402

K = 10
BATCH = 256
ENGINES = ("local-memory", "local-disk", "edge", "server")
FILTER = {"year": {"$gte": 2022}}


def make(n: int, n_queries: int, seed: int = 7) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    vectors = unit_vectors(rng, n)
    queries = unit_vectors(rng, n_queries)
    ids = [f"doc-{i}" for i in range(n)]
    texts = [f"document {i}" for i in range(n)]
    metadatas = [{"year": 2000 + i % 25, "source": f"file-{i % 50}"} for i in range(n)]
    return vectors, queries, ids, texts, metadatas


def exact_top(vectors: np.ndarray, queries: np.ndarray, mask: np.ndarray | None) -> list[list[int]]:
    scores = queries @ vectors.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    return [list(np.argsort(-row, kind="stable")[:K]) for row in scores]


def recall(found: list[list[str]], truth: list[list[int]]) -> float:
    hits = sum(len({f"doc-{i}" for i in t} & set(f)) for f, t in zip(found, truth, strict=True))
    return hits / (K * len(truth))


def rss_mb() -> tuple[float, float]:
    text = Path("/proc/self/status").read_text()
    get = lambda key: int(re.search(rf"{key}:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]  # noqa: E731
    return get("VmRSS"), get("VmHWM")


def timed_queries(store: Any, queries: np.ndarray, flt: Any, budget: float) -> tuple[list[float], list[list[str]]]:
    """Latencies (ms) and ids of up to len(queries) queries, stopping after `budget` seconds."""
    latencies, found = [], []
    start = time.perf_counter()
    for q in queries.tolist():
        t = time.perf_counter()
        docs = store.similarity_search_by_vector(q, k=K, filter=flt)
        latencies.append((time.perf_counter() - t) * 1000)
        found.append([d.id for d in docs])
        if time.perf_counter() - start > budget:
            break
    return latencies, found


def child(engine: str, n: int, n_queries: int, disk_seconds: float, query_seconds: float) -> dict[str, Any]:
    """One engine: ingest, query (and for Edge: optimize, query again); figures as a dict."""
    from rag_stores.langchain import QdrantVectorStore

    vectors, queries, ids, texts, metadatas = make(n, n_queries)
    mask = np.array([m["year"] >= 2022 for m in metadatas])
    truth, truth_f = exact_top(vectors, queries, None), exact_top(vectors, queries, mask)
    emb = LookupEmbeddings(texts, vectors.tolist())
    base_rss, _ = rss_mb()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on
    tmp = tempfile.mkdtemp(prefix=f"bench-edge-{engine}-")
    server = None
    # The filtered field is declared for the engines with payload indexes (local mode has none)
    indexes = {"payload_indexes": {"year": "integer"}}
    if engine == "server":
        from rag_stores.servers.qdrant import QdrantServer

        server = QdrantServer().start()
        options: dict[str, Any] = {**server.connect_kwargs(prefer_grpc=True), **indexes}
    elif engine == "edge":
        options = {"engine": "edge", "path": tmp, **indexes}
    else:
        options = {"engine": "local", **({"path": tmp} if engine == "local-disk" else {})}
    store = QdrantVectorStore(emb, "bench", dim=DIM, progress=False, **options)
    out: dict[str, Any] = {"engine": engine, "n": n}
    start, done = time.perf_counter(), 0
    for i in range(0, n, BATCH):
        store.add_texts(texts[i:i + BATCH], metadatas[i:i + BATCH], ids=ids[i:i + BATCH],
                        batch_size=BATCH)
        done = min(n, i + BATCH)
        if engine == "local-disk" and time.perf_counter() - start > disk_seconds:
            break
    seconds = time.perf_counter() - start
    out.update(ingest_docs_s=done / seconds, ingested=done,
               ingest_note="" if done == n else f"time-bound: {done} docs in {seconds:.0f}s, "
               f"full ingest extrapolated to {n / (done / seconds) / 60:.0f} min")
    if done < n:
        out["peak_rss_mb"] = rss_mb()[1] - base_rss
        store.close()
        return out
    if engine == "server":  # let the server's optimizer index what it was given
        from qdrant_client import models

        deadline = time.perf_counter() + 1800
        while time.perf_counter() < deadline:
            info = store.backend.client.get_collection("bench")
            if info.status == models.CollectionStatus.GREEN:
                break
            time.sleep(1)
        out["optimize_s"] = f"background ({time.perf_counter() - start - seconds:.0f}s to green)"

    def measure(label: str) -> None:
        lat, found = timed_queries(store, queries, None, query_seconds)
        lat_f, found_f = timed_queries(store, queries, FILTER, query_seconds)
        out[label] = {"p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
                      "filtered_p50_ms": percentile(lat_f, 50),
                      "filtered_p95_ms": percentile(lat_f, 95),
                      "recall": recall(found, truth[:len(found)]),
                      "filtered_recall": recall(found_f, truth_f[:len(found_f)]),
                      "queries": len(lat)}

    measure("queries")
    if engine == "edge":
        t = time.perf_counter()
        store.backend.optimize()
        out["optimize_s"] = time.perf_counter() - t
        measure("indexed")
    out["peak_rss_mb"] = rss_mb()[1] - base_rss
    store.close()
    if server is not None:
        server.stop()
    return out


def cisi_recall(efs: list[int]) -> list[list[Any]]:
    """HNSW recall@10 vs exact on the CISI embeddings, index forced on all 1,460 abstracts."""
    import bench_quality as bq
    from qdrant_client import models

    from embedders import DenseEncoder
    from rag_stores.backends.qdrant import QdrantBackend
    from rag_stores.core.filters import from_dict
    from rag_stores.core.query import Query
    from rag_stores.core.records import Record

    docs, queries, _ = bq.load_cisi()
    doc_vecs, query_vecs = bq.dense_vectors(DenseEncoder(), docs, queries, OUT_DIR)
    # queries: CISI's own, then every 10th abstract as a query (harder: a near-duplicate)
    qs = np.concatenate([query_vecs, doc_vecs[::10]])
    backend = QdrantBackend("cisi", engine="edge",
                            optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
                            hnsw_config=models.HnswConfigDiff(full_scan_threshold=1))
    backend.ensure_collection(doc_vecs.shape[1], False)
    keys = list(docs)
    backend.upsert([Record(id=k, text="", metadata={"even": i % 2 == 0}, vector=v.tolist())
                    for i, (k, v) in enumerate(zip(keys, doc_vecs, strict=True))])
    backend.optimize()
    indexed = backend.client.get_collection("cisi").indexed_vectors_count
    rows = []
    for flt in (None, {"even": True}):
        node = from_dict(flt) if flt else None
        backend.exact, backend.hnsw_ef = True, None
        truth = [[h.record.id for h in backend.search(Query(k=K, vector=q.tolist(), filter=node))]
                 for q in qs]
        for ef in efs:
            backend.exact, backend.hnsw_ef = False, ef
            t = time.perf_counter()
            got = [[h.record.id for h in backend.search(Query(k=K, vector=q.tolist(), filter=node))]
                   for q in qs]
            ms = (time.perf_counter() - t) * 1000 / len(qs)
            hits = sum(len(set(a) & set(b)) for a, b in zip(got, truth, strict=True))
            rows.append(["CISI abstracts" + (" + filter (50%)" if flt else ""), ef,
                         hits / (K * len(qs)), ms, indexed, len(qs)])
    backend.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--disk-seconds", type=float, default=60.0)
    parser.add_argument("--query-seconds", type=float, default=90.0,
                        help="time bound per query series (local mode filtered at 100k: ~4 s each)")
    parser.add_argument("--efs", default="16,32,64,128,256")
    parser.add_argument("--no-cisi", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.queries, args.disk_seconds,
                               args.query_seconds)))
        return
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        for engine in args.engines.split(","):
            cmd = [sys.executable, __file__, "--child", engine, "--n", str(n), "--queries",
                   str(args.queries), "--disk-seconds", str(args.disk_seconds),
                   "--query-seconds", str(args.query_seconds)]
            print(f"{n:,} docs, {engine} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            print("  " + json.dumps(r), flush=True)
            for label in ("queries", "indexed"):
                q = r.get(label)
                if label == "indexed" and q is None:
                    continue
                name = engine if engine != "edge" else \
                    ("edge, exact" if label == "queries" else "edge, indexed")
                q = q or {}
                rows.append([n, name, r["ingest_docs_s"] if label == "queries" else None,
                             r.get("optimize_s") if label == "indexed" or engine == "server"
                             else None,
                             q.get("p50_ms"), q.get("p95_ms"), q.get("filtered_p50_ms"),
                             q.get("filtered_p95_ms"), q.get("recall"), q.get("filtered_recall"),
                             r["peak_rss_mb"], r.get("ingest_note", "")])
    headers = ["N", "engine", "ingest docs/s", "optimize s", "top-10 p50 ms", "p95 ms",
               "filtered p50 ms", "p95 ms", "recall@10", "filtered recall@10",
               "peak RSS MB", "note"]
    print(table("\nEngines through the LangChain store (random 384-dim vectors)", headers, rows))
    cisi: list[list[Any]] = []
    if not args.no_cisi:
        cisi = cisi_recall([int(e) for e in args.efs.split(",")])
        print(table("\nHNSW recall@10 vs exact, Qdrant Edge, real embeddings", [
            "data", "hnsw_ef", "recall@10", "ms/query", "indexed vectors", "queries"], cisi))
    print("saved", write_json("bench_edge", {"engines": results, "cisi": cisi}))


if __name__ == "__main__":
    main()
