"""Filtered search on the embedded default with no payload index declared (issue 29): Qdrant
Edge, which indexes a field the first time a store filters on it, against qdrant-client's
local mode in memory, on the same N random points, the same filtered top-10 queries, in one
process. Prints the write time of each engine, the first (indexing) query, the median of
the rest, the ratio, and checks that both return the same ids. Nothing is asserted.

    python benchmarks/bench_edge_filter.py                 # 100,000 points, 64 dims
    python benchmarks/bench_edge_filter.py --n 20000 --dim 384
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.core.filters import from_dict
from rag_stores.core.query import Query
from rag_stores.core.records import Record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(1)
    records = [Record(id=str(i), text="", vector=[rng.gauss(0, 1) for _ in range(args.dim)],
                      metadata={"year": 1990 + i % 40, "genre": f"g{i % 50}"})
               for i in range(args.n)]
    queries = [Query(vector=[rng.gauss(0, 1) for _ in range(args.dim)], k=10,
                     filter=from_dict({"genre": f"g{q % 50}", "year": {"$gte": 2000}}))
               for q in range(args.queries)]
    results: dict[str, list[list[str]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, backend in (("edge", QdrantBackend("c", engine="edge", path=folder)),
                              ("local-memory", QdrantBackend("c", location=":memory:"))):
            backend.ensure_collection(args.dim, False)
            t0 = time.perf_counter()
            for start in range(0, len(records), 1024):
                backend.upsert(records[start:start + 1024])
            write = time.perf_counter() - t0
            times, ids = [], []
            for query in queries:
                t0 = time.perf_counter()
                ids.append([h.record.id for h in backend.search(query)])
                times.append(time.perf_counter() - t0)
            results[name] = ids
            if name == "edge":  # what the created indexes cost later writes
                more = [Record(id=f"m{r.id}", text="", vector=r.vector, metadata=r.metadata)
                        for r in records[:20_000]]
                t0 = time.perf_counter()
                for start in range(0, len(more), 1024):
                    backend.upsert(more[start:start + 1024])
                print(f"{name:13} write with the 2 created indexes "
                      f"{len(more) / (time.perf_counter() - t0):8.0f} points/s")
            rest = statistics.median(times[1:]) if len(times) > 1 else times[0]
            print(f"{name:13} write {args.n / write:8.0f} points/s   first filtered query "
                  f"{times[0] * 1000:8.1f} ms   median of the rest {rest * 1000:8.2f} ms")
            results[f"{name}-median"] = rest  # type: ignore[assignment]
            backend.close()
    ratio = results["local-memory-median"] / results["edge-median"]  # type: ignore[operator]
    same = results["edge"] == results["local-memory"]
    print(f"Edge {ratio:.0f}x local mode on filtered top-10 at {args.n:,} points, "
          f"same ids: {same}")


if __name__ == "__main__":
    main()
