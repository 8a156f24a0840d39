"""Issue 10: what a Weaviate collection's HNSW build settings cost and give, on real embeddings.

The write benchmark (bench_weaviate_server.py) finds the server's vector index, not the
client, bounding the write rate: ~84% of the server's CPU goes to HNSW inserts. This measures
the one lever left to a user, the index a collection is built with (`vector_index_config=` of
our stores), against the recall it keeps.

Data: CISI abstracts (`../shared/datasets/cisi`) split into sentences, embedded with
all-MiniLM-L6-v2 (FastEmbed; cached in benchmarks/out), and the 112 CISI queries. Per HNSW
setting, our LangChain store (`add_texts`, defaults otherwise) and langchain-weaviate (its
`schema=` with the same `vectorIndexConfig`) write every sentence into a fresh collection on
one server (or a 3-node cluster with replication factor 3, clients on node 1), sides
interleaved over --runs rounds; llama-index-vector-stores-weaviate runs at Weaviate's
defaults. Per side: docs/s (best round), client and server CPU per document (medians), and
recall@10 of a near-vector search against exact search (numpy), at Weaviate's default query
effort. Nothing is asserted.

    python benchmarks/bench_weaviate_index.py [--topology single|cluster] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_stores import DIM, Data, LookupEmbeddings, fresh_name, rotated  # noqa: E402
from benchmarks.bench_weaviate_server import (  # noqa: E402
    Cpu,
    Ingest,
    Target,
    peer_li,
    sentence_data,
    timed,
)
from benchmarks.common import median, table, write_json  # noqa: E402

# label -> keyword arguments of weaviate-client's Configure.VectorIndex.hnsw
SETTINGS: dict[str, dict[str, Any]] = {
    "weaviate defaults (max_connections 32, ef_construction 128)": {},
    "ef_construction=64": {"ef_construction": 64},
    "max_connections=16, ef_construction=100 (Qdrant's m, ef_construct)":
        {"max_connections": 16, "ef_construction": 100},
    "8-bit RQ quantizer": {"rq_bits": 8},
}


def hnsw(setting: dict[str, Any]) -> Any:
    from weaviate.classes.config import Configure

    options = dict(setting)
    bits = options.pop("rq_bits", None)
    quantizer = Configure.VectorIndex.Quantizer.rq(bits=bits) if bits else None
    return Configure.VectorIndex.hnsw(quantizer=quantizer, **options)


def ours(setting: dict[str, Any]) -> Ingest:
    def ingest(data: Data, client: Any, target: Target) -> str:
        from rag_stores.langchain import WeaviateVectorStore

        name = fresh_name("IdxOurs")
        store = WeaviateVectorStore(LookupEmbeddings(data.texts, data.vectors), name,
                                    client=client, dim=DIM, progress=False,
                                    replication_factor=target.replication,
                                    vector_index_config=hnsw(setting))
        store.add_texts(data.texts, data.metadatas, ids=data.ids)
        return name
    return ingest


def peer_lc(setting: dict[str, Any]) -> Ingest:
    def ingest(data: Data, client: Any, target: Target) -> str:
        from langchain_weaviate import WeaviateVectorStore
        from langchain_weaviate.vectorstores import _default_schema

        name = fresh_name("IdxLc")
        schema = _default_schema(name, "text")
        schema["vectorIndexConfig"] = hnsw(setting)._to_dict()
        if target.replication:
            schema["replicationConfig"] = {"factor": target.replication}
        store = WeaviateVectorStore(client, name, "text",
                                    LookupEmbeddings(data.texts, data.vectors), schema=schema)
        store.add_texts(data.texts, data.metadatas, ids=data.ids)
        return name
    return ingest


def recall_at_10(client: Any, name: str, data: Data, truth: list[set[str]]) -> float:
    """Share of the exact top 10 that a near-vector search (limit 10) returns."""
    collection = client.collections.use(name)
    vectors = collection.config.get().vector_config or {}
    target = next(iter(vectors), None)  # ours: "dense"; the peers: the unnamed vector
    hits = 0
    for query, expected in zip(data.queries, truth, strict=True):
        found = collection.query.near_vector(query, limit=10, target_vector=target,
                                             return_properties=["text"]).objects
        hits += len({o.properties["text"] for o in found} & expected)
    return hits / (10 * len(truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", choices=("single", "cluster"), default="single")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds (best kept)")
    args = parser.parse_args()
    from rag_stores.servers.weaviate import WeaviateCluster, WeaviateServer

    data = sentence_data()
    exact = np.argsort(-(np.asarray(data.queries, dtype=np.float32)
                         @ np.asarray(data.vectors, dtype=np.float32).T), axis=1)
    truth = [{data.texts[j] for j in row[:10]} for row in exact]
    n = len(data.ids)
    print(f"{n:,} CISI sentences x {DIM}, {len(truth)} queries, {args.topology}", flush=True)
    sides: dict[str, tuple[str, Ingest]] = {}
    for label, setting in SETTINGS.items():
        sides[f"ours-lc | {label}"] = (label, ours(setting))
        sides[f"langchain-weaviate | {label}"] = (label, peer_lc(setting))
    sides["llama-index-weaviate | weaviate defaults"] = (next(iter(SETTINGS)), peer_li)
    figures: dict[str, dict[str, list[float]]] = {
        s: {"wall": [], "client_cpu": [], "server_cpu": [], "recall": []} for s in sides}
    cluster = args.topology == "cluster"
    running: Any = WeaviateCluster(3) if cluster else WeaviateServer()
    with running:
        servers: list[Any] = running.nodes if cluster else [running]
        node, pids = servers[0], [s.process.pid for s in servers]
        target = Target(node.http_port, node.grpc_port, 3 if cluster else None, pids)
        client, cpu = target.client(), Cpu(pids)
        try:
            warm = Data(data.ids[:300], data.texts[:300], data.metadatas[:300],
                        data.vectors[:300], [])
            for _, ingest in sides.values():  # imports and first calls outside the timing
                timed(ingest, warm, client, target, cpu)
            for run in range(args.runs):
                for side in rotated(list(sides), run):
                    recalls = figures[side]["recall"]
                    wall, client_cpu, server_cpu = timed(
                        sides[side][1], data, client, target, cpu,
                        lambda name, out=recalls: out.append(  # type: ignore[misc]
                            recall_at_10(client, name, data, truth)))
                    figures[side]["wall"].append(wall)
                    figures[side]["client_cpu"].append(client_cpu)
                    figures[side]["server_cpu"].append(server_cpu)
                    print(f"  run {run + 1}/{args.runs} {side}: {n / wall:,.0f} docs/s, "
                          f"server {server_cpu / n * 1e6:,.0f} us/doc, recall@10 "
                          f"{recalls[-1]:.4f}", flush=True)
        finally:
            client.close()
    rate = {s: n / min(f["wall"]) for s, f in figures.items()}
    default_lc = rate[f"langchain-weaviate | {next(iter(SETTINGS))}"]
    rows = [[s, f"{rate[s]:,.0f}", f"{median(f['client_cpu']) / n * 1e6:,.0f}",
             f"{median(f['server_cpu']) / n * 1e6:,.0f}", f"{median(f['recall']):.4f}",
             f"{rate[s] / default_lc:.2f}x",
             f"{rate[s] / rate['langchain-weaviate | ' + sides[s][0]]:.2f}x"
             if not s.startswith("llama") else "-"] for s, f in figures.items()]
    print()
    print(table(f"{args.topology}: {n:,} CISI sentences (best of {args.runs} rounds; CPU per "
                "doc and recall@10: medians)",
                ["side | HNSW setting", "docs/s", "client us/doc", "server us/doc",
                 "recall@10", "vs lc-weaviate defaults", "vs lc-weaviate same index"], rows))
    print(f"\nJSON: {write_json('bench_weaviate_index', {'args': vars(args), 'n': n, 'figures': figures})}")


if __name__ == "__main__":
    main()
