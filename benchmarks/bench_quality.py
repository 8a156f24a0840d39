"""Retrieval quality on CISI: every mode on Qdrant and Weaviate, on both halves of the queries.

    python benchmarks/bench_quality.py [--backends qdrant,weaviate] [--out benchmarks/out]
                                       [--keyword-variants | --no-keyword-variants]

CISI (`../shared/datasets/cisi`): 1,460 abstracts, 76 judged queries. The queries are split
in two fixed halves by id order (positions 0, 2, 4, ... = "tune", 1, 3, 5, ... = "held-out"):
defaults are chosen on the tuning half (the rule is printed, `select_default`) and checked on
the held-out half, so they are not fitted to the figures they are judged by.

Documents are embedded once (all-MiniLM-L6-v2, cached in `<out>/cisi-<model>.npz`); the same
vectors go into both engines. Qdrant's BM25 vectors come from the project's ingest path
(`embedders.sparse_fit.CollectionBM25`: avg_len fitted to the collection, kept in its
metadata). Every configuration runs through `rag_stores.core.strategies`, i.e. what the
retrievers do. Per configuration: nDCG@10 (from a k=10 search), recall@100 and MRR (from a
k=100 search; MRR over the top 100). Keyword variants of Qdrant, measured on BM25 alone:
FastEmbed's default avg_len (256), the 1.18 server's own BM25 inference
(`models.Document(model="qdrant/bm25")`, needs RAG_STORES_QDRANT_BIN), and BM25 over a text
index with `scoring` (local mode: default tokenization only; Qdrant Edge: stemming and
stopwords; the 1.18.3 server refuses text queries, shown in the output).

Prints the table, the target check and the tuning-half selection; writes
`<out>/quality.json` and `<out>/quality.png` (matplotlib).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embedders import DenseEncoder, SparseEncoder  # noqa: E402
from embedders.sparse_fit import CollectionBM25  # noqa: E402
from rag_stores.core.records import Record  # noqa: E402
from rag_stores.core.strategies import (  # noqa: E402
    BM25,
    DEFAULT_ALPHA,
    DEFAULT_FUSION,
    DEFAULT_PREFETCH_LIMIT,
    MMR,
    BackendEngine,
    Dense,
    Hybrid,
    Strategy,
    run,
)

DATA = ROOT.parent / "shared" / "datasets" / "cisi"
ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
HALVES = ("tune", "held-out")
DEFAULT_LABEL = f"hybrid default ({DEFAULT_FUSION}, alpha={DEFAULT_ALPHA}, " \
                f"prefetch={DEFAULT_PREFETCH_LIMIT})"
Metrics = dict[str, list[float]]  # metric -> per-query values, in query order


# --- data -------------------------------------------------------------------------------
def parse_smart(path: Path) -> dict[str, dict[str, str]]:
    """SMART records: `.I id` then fields `.T .A .W .X .B`, each running to the next marker."""
    records: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    key = None
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"^\.([A-Z])\s*(.*)$", line)
        if match and match.group(1) == "I":
            current = {}
            records[match.group(2).strip()] = current
            key = None
        elif match:
            key = match.group(1)
            current.setdefault(key, [])
            if match.group(2).strip():
                current[key].append(match.group(2))
        elif key is not None:
            current[key].append(line)
    return {i: {k: " ".join(" ".join(v).split()) for k, v in r.items()}
            for i, r in records.items()}


def load_cisi() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    docs = {i: f"{r.get('T', '')}\n{r.get('W', '')}".strip()
            for i, r in parse_smart(DATA / "CISI.ALL").items()}
    queries = {i: r.get("W", "") or r.get("T", "") for i, r in parse_smart(DATA / "CISI.QRY").items()}
    qrels: dict[str, set[str]] = {}
    for line in (DATA / "CISI.REL").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            qrels.setdefault(parts[0], set()).add(parts[1])
    queries = {q: t for q, t in queries.items() if q in qrels}
    return docs, queries, qrels


def halves(queries: dict[str, str]) -> dict[str, list[str]]:
    """The two fixed query halves: alternate positions in id order."""
    order = sorted(queries, key=int)
    return {"tune": order[0::2], "held-out": order[1::2]}


def dense_vectors(encoder: DenseEncoder, docs: dict[str, str], queries: dict[str, str],
                  out: Path, cache_name: str = "cisi") -> tuple[np.ndarray, np.ndarray]:
    """Document and query vectors, cached per model (and its behaviour on a long probe) and data."""
    probe = [round(x, 4) for x in encoder.embed_query(" ".join(docs.values())[:4000])]
    digest = hashlib.sha256(json.dumps([encoder.model_name, probe, docs, queries]).encode()).hexdigest()
    cache = out / f"{cache_name}-{re.sub(r'[^A-Za-z0-9]+', '-', encoder.model_name)}.npz"
    if cache.exists():
        saved = np.load(cache)
        if str(saved["digest"]) == digest:
            return saved["docs"], saved["queries"]
    start = time.perf_counter()
    doc_vecs = np.asarray(encoder.embed_documents(list(docs.values())), dtype=np.float32)
    query_vecs = np.asarray(encoder.embed_queries(list(queries.values())), dtype=np.float32)
    print(f"embedded {len(docs)} documents in {time.perf_counter() - start:.0f}s; cached in {cache}")
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cache, digest=digest, docs=doc_vecs, queries=query_vecs)
    return doc_vecs, query_vecs


# --- metrics ------------------------------------------------------------------------------
def ndcg(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def mrr(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if d in relevant), 0.0)


def measure(ranking: Callable[[str, str, int], list[str]], queries: dict[str, str],
            qrels: dict[str, set[str]], same_top: bool = False) -> Metrics:
    """Per-query metrics of ranking(qid, text, k); `same_top`: the k=10 ranking is the top of
    the k=100 one (one search per query instead of two)."""
    out: Metrics = {"ndcg@10": [], "recall@100": [], "mrr": []}
    for qid, text in queries.items():
        top100 = ranking(qid, text, 100)
        top10 = top100[:10] if same_top else ranking(qid, text, 10)
        out["ndcg@10"].append(ndcg(top10, qrels[qid]))
        out["recall@100"].append(recall(top100, qrels[qid]))
        out["mrr"].append(mrr(top100, qrels[qid]))
    return out


def summary(m: Metrics, qids: list[str], parts: dict[str, list[str]]) -> dict[str, float]:
    index = {q: i for i, q in enumerate(qids)}
    row = {name: float(np.mean(values)) for name, values in m.items()}
    for half, members in parts.items():
        row[f"ndcg@10 {half}"] = float(np.mean([m["ndcg@10"][index[q]] for q in members]))
    return row


# --- configurations ---------------------------------------------------------------------
def configs(backend: str) -> list[tuple[str, Strategy]]:
    """(name, strategy) pairs; k is set per run."""
    items: list[tuple[str, Strategy]] = [("dense", Dense()), ("bm25", BM25()),
                                         (DEFAULT_LABEL, Hybrid())]
    items += [(f"hybrid rrf k=60 alpha={a}", Hybrid(fusion="rrf", alpha=a)) for a in ALPHAS]
    items += [(f"hybrid rrf k={k} alpha=0.8", Hybrid(fusion="rrf", alpha=0.8, rrf_k=k))
              for k in (2, 10, 30, 100)]
    items += [(f"hybrid dbsf alpha={a}", Hybrid(fusion="dbsf", alpha=a)) for a in ALPHAS]
    items += [(f"hybrid convex alpha={a}", Hybrid(fusion="convex", alpha=a)) for a in ALPHAS]
    items += [(f"hybrid default, prefetch={p}", Hybrid(prefetch_limit=p)) for p in (50, 100, 500)]
    if backend == "weaviate":  # Weaviate's own hybrid: its legs are max(100, k) deep
        items += [("hybrid rrf alpha=0.8, Weaviate server-side", Hybrid(
                      fusion="rrf", alpha=0.8, prefetch_limit=None)),
                  ("hybrid convex alpha=0.7, Weaviate server-side", Hybrid(
                      fusion="convex", alpha=0.7, prefetch_limit=None))]
    items += [("mmr lambda=0.5", MMR(fetch_k=200, lambda_mult=0.5)),
              ("mmr lambda=0.8", MMR(fetch_k=200, lambda_mult=0.8))]
    return items


def one_search(strategy: Strategy) -> bool:
    """True when a k=10 search returns the top 10 of the k=100 one (every leg is >= 100 deep)."""
    if isinstance(strategy, Hybrid):
        return strategy.prefetch_limit is None or strategy.prefetch_limit >= 100
    return isinstance(strategy, Dense | BM25)


# --- backends ------------------------------------------------------------------------------
def open_backend(name: str, stack: list[Callable[[], Any]]) -> Any:
    if name == "qdrant":
        from rag_stores.backends.qdrant import QdrantBackend

        backend: Any = QdrantBackend("cisi")
    elif name == "weaviate":
        from rag_stores.backends.weaviate import WeaviateBackend
        from rag_stores.servers.weaviate import WeaviateServer

        server = WeaviateServer().start()
        stack.append(server.stop)
        client = server.connect()
        stack.append(client.close)
        backend = WeaviateBackend("Cisi", client=client, index="flat")
    else:
        raise SystemExit(f"unknown backend {name!r}: qdrant or weaviate")
    stack.append(backend.close)
    return backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="qdrant,weaviate")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--keyword-variants", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    docs, queries, qrels = load_cisi()
    parts = halves(queries)
    qids = list(queries)
    print(f"CISI: {len(docs)} documents, {len(queries)} judged queries "
          f"(halves: {len(parts['tune'])} tune, {len(parts['held-out'])} held-out)")
    # Small batches: long abstracts in big batches take gigabytes for attention.
    dense, sparse = DenseEncoder(batch_size=16), SparseEncoder(batch_size=64)
    doc_vecs, query_vecs = dense_vectors(dense, docs, queries, args.out)
    texts = list(docs.values())
    query_dense = {t: list(map(float, v)) for t, v in zip(queries.values(), query_vecs, strict=True)}
    # BM25 query vectors do not depend on avg_len (every query term weighs 1).
    query_sparse = dict(zip(queries.values(), sparse.embed_queries(list(queries.values())), strict=True))

    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.backends.split(","):
        stack: list[Callable[[], Any]] = []
        try:
            backend = open_backend(name, stack)
            backend.ensure_collection(doc_vecs.shape[1], True)
            fitted = CollectionBM25(sparse, backend) if name == "qdrant" else None
            for start in range(0, len(texts), 256):  # as the stores ingest: batch by batch
                batch = texts[start:start + 256]
                vectors = fitted.embed_documents(batch) if fitted else [None] * len(batch)
                backend.upsert([Record(id=i, text=t, vector=list(map(float, v)), sparse=sv)
                                for i, t, v, sv in zip(list(docs)[start:start + 256], batch,
                                                       doc_vecs[start:start + 256], vectors,
                                                       strict=True)])
            if fitted:
                print(f"{name}: BM25 avg_len fitted at ingest: {fitted.avg_len:.1f} tokens")
            engine = BackendEngine(backend, query_dense.__getitem__, query_sparse.__getitem__)
            results[name] = {}
            for label, strategy in configs(name):
                def ranking(qid: str, text: str, k: int, strategy: Strategy = strategy,
                            engine: BackendEngine = engine) -> list[str]:
                    return [h.record.id for h in run(strategy.with_options(k=k).plan(text), engine)]

                started = time.perf_counter()
                row = summary(measure(ranking, queries, qrels, one_search(strategy)), qids, parts)
                results[name][label] = row
                print(f"  {name:9} {label:48} nDCG@10 {row['ndcg@10']:.3f} (tune "
                      f"{row['ndcg@10 tune']:.3f}, held-out {row['ndcg@10 held-out']:.3f})  "
                      f"R@100 {row['recall@100']:.3f}  MRR {row['mrr']:.3f}  "
                      f"[{time.perf_counter() - started:.0f}s]", flush=True)
        finally:
            for close in reversed(stack):
                close()
    if args.keyword_variants and "qdrant" in results:
        results["qdrant"].update(keyword_variants(docs, queries, qrels, parts, sparse, query_sparse,
                                                  doc_vecs))
    report(results, args.out)
    check_targets(results)
    select_default(results)
    return 0


# --- Qdrant keyword variants (BM25 alone) -----------------------------------------------------
def keyword_variants(docs: dict[str, str], queries: dict[str, str], qrels: dict[str, set[str]],
                     parts: dict[str, list[str]], sparse: SparseEncoder,
                     query_sparse: dict[str, Any], doc_vecs: np.ndarray) -> dict[str, dict[str, float]]:
    """FastEmbed BM25 with avg_len 256; the server's BM25 inference; text-index BM25."""
    from qdrant_client import QdrantClient, models

    from rag_stores.backends.qdrant import QdrantBackend

    qids, texts, ids = list(queries), list(docs.values()), list(docs)
    out: dict[str, dict[str, float]] = {}

    def add(label: str, ranking: Callable[[str, str, int], list[str]]) -> None:
        try:
            row = summary(measure(ranking, queries, qrels, True), qids, parts)
        except Exception as exc:  # an engine without the feature: say so, with its words
            print(f"  qdrant    {label:48} not available: {type(exc).__name__}: "
                  f"{' '.join(str(exc).split())[:260]}")
            return
        out[label] = row
        print(f"  qdrant    {label:48} nDCG@10 {row['ndcg@10']:.3f} (tune {row['ndcg@10 tune']:.3f}, "
              f"held-out {row['ndcg@10 held-out']:.3f})  R@100 {row['recall@100']:.3f}  "
              f"MRR {row['mrr']:.3f}", flush=True)

    # 1. FastEmbed's default avg_len (256), as before the collection fit.
    backend = QdrantBackend("cisi256")
    backend.ensure_collection(doc_vecs.shape[1], True)
    vectors = sparse.embed_documents_with_avg_len(texts, 256.0)
    backend.upsert([Record(id=i, text=t, vector=list(map(float, v)), sparse=sv)
                    for i, t, v, sv in zip(ids, texts, doc_vecs, vectors, strict=True)])
    engine = BackendEngine(backend, lambda t: [0.0], query_sparse.__getitem__)
    add("bm25, FastEmbed avg_len=256 (not fitted)",
        lambda q, t, k: [h.record.id for h in run(BM25(k=k).plan(t), engine)])
    backend.close()
    avg_len = float(np.mean([len(sparse.analyze(t)) for t in texts]))

    # 2. BM25 over a text index with scoring, local mode (it takes only default tokenization).
    local = QdrantClient(":memory:")
    local.create_collection("t", vectors_config={})
    local.create_payload_index("t", "text", models.TextIndexParams(type=models.TextIndexType.TEXT,
                                                                   scoring=True))
    local.upsert("t", [models.PointStruct(id=int(i), vector={}, payload={"text": t})
                       for i, t in zip(ids, texts, strict=True)])
    add("bm25, text index scoring (local mode, no stemming)",
        lambda q, t, k: [str(p.id) for p in local.query_points(
            "t", query=models.TextQuery(text=t), using="text", limit=k).points])
    local.close()

    # 3. The same on Qdrant Edge, with English stopwords and stemming.
    add("bm25, text index scoring (Qdrant Edge, stemmed)", edge_text_index(ids, texts))

    # 4. The 1.18.3 server: its own BM25 inference, and (refused) text queries.
    try:
        from rag_stores.servers.qdrant import QdrantServer

        server: Any = QdrantServer().start()
    except Exception as exc:
        print(f"  qdrant    server variants skipped: {exc}")
        return out
    try:
        client = server.connect()
        client.create_collection("s", vectors_config={}, sparse_vectors_config={
            "bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
        options = {"avg_len": avg_len, "language": "english"}
        for start in range(0, len(texts), 256):
            client.upsert("s", [models.PointStruct(id=int(i), payload={"text": t}, vector={
                "bm25": models.Document(text=t, model="qdrant/bm25", options=options)})
                for i, t in zip(ids[start:start + 256], texts[start:start + 256], strict=True)])
        add(f"bm25, server-side inference (1.18.3, avg_len={avg_len:.0f})",
            lambda q, t, k: [str(p.id) for p in client.query_points(
                "s", query=models.Document(text=t, model="qdrant/bm25", options=options),
                using="bm25", limit=k).points])
        client.create_payload_index("s", "text", models.TextIndexParams(
            type=models.TextIndexType.TEXT, scoring=True))
        add("bm25, text index scoring (1.18.3 server)",
            lambda q, t, k: [str(p.id) for p in client.query_points(
                "s", query=models.TextQuery(text=t), using="text", limit=k).points])
        client.close()
    finally:
        server.stop()
    return out


def edge_text_index(ids: list[str], texts: list[str]) -> Callable[[str, str, int], list[str]]:
    """A Qdrant Edge shard with a scored, stemmed text index on "text"; its BM25 ranking."""
    import tempfile

    import qdrant_edge as qe

    folder = tempfile.mkdtemp(prefix="bench-quality-edge-")
    shard = qe.EdgeShard.create(folder, qe.EdgeConfig(vectors={  # a 1-dim placeholder vector
        "": qe.EdgeVectorParams(size=1, distance=qe.Distance.Dot)}))
    shard.update(qe.UpdateOperation.create_field_index("text", qe.TextIndexParams(
        tokenizer=qe.TokenizerType.Word, lowercase=True, stopwords=qe.Language.English,
        stemmer=qe.SnowballParams(qe.SnowballLanguage.English), scoring=True)))
    shard.update(qe.UpdateOperation.upsert_points(
        [qe.Point(int(i), [1.0], {"text": t}) for i, t in zip(ids, texts, strict=True)]))

    def ranking(qid: str, text: str, k: int) -> list[str]:
        found = shard.query(qe.QueryRequest(limit=k, query=qe.TextQuery("text", text),
                                            with_payload=False))
        return [str(p.id) for p in found]

    return ranking


# --- report ---------------------------------------------------------------------------------
def report(results: dict[str, dict[str, dict[str, float]]], out: Path) -> None:
    labels = list(dict.fromkeys(label for r in results.values() for label in r))
    names = list(results)
    cols = ("ndcg@10", "ndcg@10 tune", "ndcg@10 held-out", "recall@100", "mrr")
    short = ("nDCG", "tune", "held", "R@100", "MRR")
    head = f"{'configuration':52}" + "".join(
        f" | {n:^34}" for n in names) + "\n" + f"{'':52}" + "".join(
        " | " + " ".join(f"{c:>6}" for c in short) for _ in names)
    print("\n" + head + "\n" + "-" * (52 + 37 * len(names)))
    for label in labels:
        cells = "".join(" | " + " ".join(f"{results[n][label][c]:6.3f}" for c in cols)
                        if label in results[n] else " | " + " " * 34 for n in names)
        print(f"{label:52}{cells}")
    (out / "quality.json").write_text(json.dumps(results, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(19, max(6, 0.3 * len(labels))), sharey=True)
    y = np.arange(len(labels))
    height = 0.8 / max(len(names), 1)
    for ax, metric, title in zip(axes, ("ndcg@10", "recall@100", "mrr"),
                                 ("nDCG@10", "recall@100", "MRR"), strict=True):
        for j, n in enumerate(names):
            values = [results[n].get(label, {}).get(metric, np.nan) for label in labels]
            ax.barh(y + j * height, values, height, label=n)
            if metric == "ndcg@10" and "dense" in results[n]:  # the line hybrid should pass
                best_half = max(results[n]["dense"][metric], results[n]["bm25"][metric])
                ax.axvline(best_half, color=f"C{j}", linestyle=":", linewidth=1)
        ax.set_title(f"CISI {title} (76 queries)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y + height * (len(names) - 1) / 2, labels)
    axes[0].invert_yaxis()
    handles, names_ = axes[0].get_legend_handles_labels()
    fig.legend(handles, names_, loc="lower center", ncol=len(names))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out / "quality.png", dpi=100)
    print(f"\nwrote {out / 'quality.json'} and {out / 'quality.png'}")


def check_targets(results: dict[str, dict[str, dict[str, float]]]) -> None:
    """Default hybrid vs the better of its halves: +0.02 nDCG@10 on all queries, ahead on
    the held-out half."""
    print("\ntarget: default hybrid >= max(dense, bm25) + 0.02 nDCG@10, and ahead of both on "
          "the held-out half")
    for name, rows in results.items():
        if DEFAULT_LABEL not in rows:
            continue
        hybrid = rows[DEFAULT_LABEL]
        for col in ("ndcg@10", "ndcg@10 tune", "ndcg@10 held-out"):
            best = max(rows["dense"][col], rows["bm25"][col])
            need = 0.02 if col == "ndcg@10" else 0.0
            verdict = "met" if hybrid[col] - best >= need and hybrid[col] > best else "NOT met"
            print(f"  {name:9} {col:17} hybrid {hybrid[col]:.3f}  dense {rows['dense'][col]:.3f}"
                  f"  bm25 {rows['bm25'][col]:.3f}  margin {hybrid[col] - best:+.3f}  {verdict}")


def select_default(results: dict[str, dict[str, dict[str, float]]]) -> None:
    """The rule the defaults come from, on the tuning half only: the hybrid setting (fusion,
    alpha, rrf_k; legs at most 200 deep) with the best nDCG@10 averaged over the engines;
    settings within 0.002 of the best count as tied, and the one with fewer knobs wins
    (dbsf and convex have no rrf_k)."""
    names = [n for n in ("qdrant", "weaviate") if n in results]
    swept = [label for label in results[names[0]] if label.startswith("hybrid ")
             and label != DEFAULT_LABEL and "prefetch=500" not in label
             and "server-side" not in label
             and all(label in results[n] for n in names)]
    scored = sorted(((float(np.mean([results[n][label]["ndcg@10 tune"] for n in names])), label)
                     for label in swept), reverse=True)
    print(f"\nselection on the tuning half (mean over {', '.join(names)}):")
    for value, label in scored[:8]:
        print(f"  {value:.3f}  {label}")
    best = scored[0][0]
    tied = [label for value, label in scored if best - value <= 0.002]
    chosen = sorted(tied, key=lambda label: (" rrf " in label, tied.index(label)))[0]
    print(f"chosen: {chosen} (tied within 0.002: {len(tied)}); the defaults are {DEFAULT_LABEL}")


if __name__ == "__main__":
    raise SystemExit(main())
