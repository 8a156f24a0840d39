"""Retrieval quality on CISI: nDCG@10 and recall@100 per strategy, on Qdrant and Weaviate.

    python benchmarks/bench_quality.py [--backends qdrant,weaviate] [--out benchmarks/out]

Documents are embedded once (all-MiniLM-L6-v2, cached in `<out>/cisi-<model>.npz`) and the
same vectors go into both engines. Every configuration runs through `retrievers.strategies`,
so it measures what the retrievers do: k=10 for nDCG@10 (the prefetch a k=10 search really
uses) and k=100 for recall@100. Prints a table, writes `<out>/quality.json` and
`<out>/quality.png` (matplotlib). Weaviate needs the server binary (rag_stores.weaviate_server).
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
from rag_stores.core.records import Record  # noqa: E402
from retrievers.strategies import (  # noqa: E402
    BM25,
    DEFAULT_ALPHA,
    DEFAULT_FUSION,
    MMR,
    BackendEngine,
    Dense,
    Hybrid,
    Strategy,
    run,
)

DATA = ROOT.parent / "shared" / "datasets" / "cisi"
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Qdrant again, with BM25 vectors whose length normalisation uses the corpus's real mean
# document length (FastEmbed's default avg_len is 256 tokens; CISI abstracts have ~72).
FITTED = "qdrant bm25-fit"


# --- data -------------------------------------------------------------------------------
def parse_smart(path: Path) -> dict[str, dict[str, str]]:
    """SMART records: `.I id` then fields `.T .A .W .X .B`, each running to the next marker."""
    records: dict[str, dict[str, str]] = {}
    current: dict[str, list[str]] = {}
    key = None
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"^\.([A-Z])\s*(.*)$", line)
        if match and match.group(1) == "I":
            current = {}
            records[match.group(2).strip()] = current  # type: ignore[assignment]
            key = None
        elif match:
            key = match.group(1)
            current.setdefault(key, [])
            if match.group(2).strip():
                current[key].append(match.group(2))
        elif key is not None:
            current[key].append(line)
    return {i: {k: " ".join(" ".join(v).split()) for k, v in r.items()}  # type: ignore[attr-defined]
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


def dense_vectors(encoder: DenseEncoder, docs: dict[str, str], queries: dict[str, str],
                  out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Document and query vectors, cached per model (and its behaviour on a long probe) and data."""
    probe = [round(x, 4) for x in encoder.embed_query(" ".join(docs.values())[:4000])]
    digest = hashlib.sha256(json.dumps([encoder.model_name, probe, docs, queries]).encode()).hexdigest()
    cache = out / f"cisi-{re.sub(r'[^A-Za-z0-9]+', '-', encoder.model_name)}.npz"
    if cache.exists():
        saved = np.load(cache)
        if str(saved["digest"]) == digest:
            return saved["docs"], saved["queries"]
    start = time.perf_counter()
    doc_vecs = np.asarray(encoder.embed_documents(list(docs.values())), dtype=np.float32)
    query_vecs = np.asarray(encoder.embed_queries(list(queries.values())), dtype=np.float32)
    print(f"embedded {len(docs)} documents in {time.perf_counter() - start:.0f}s; cached in {cache}")
    np.savez(cache, digest=digest, docs=doc_vecs, queries=query_vecs)
    return doc_vecs, query_vecs


# --- metrics ------------------------------------------------------------------------------
def ndcg(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


# --- configurations ---------------------------------------------------------------------
def configs(backend: str) -> list[tuple[str, Strategy]]:
    """(name, strategy) pairs; k is set per run."""
    default = (f"hybrid default ({DEFAULT_FUSION}, alpha={DEFAULT_ALPHA})", Hybrid())
    rrf = [(f"hybrid rrf alpha={a}", Hybrid(alpha=a, fusion="rrf")) for a in ALPHAS]
    dbsf = ("hybrid dbsf, equal weights", Hybrid(fusion="dbsf"))
    if backend == FITTED:  # only what the keyword side changes
        return [("bm25", BM25()), default, dbsf, *rrf[4:]]
    items: list[tuple[str, Strategy]] = [("dense", Dense()), ("bm25", BM25()), default, dbsf, *rrf]
    if backend == "weaviate":  # Weaviate weighs relativeScoreFusion (our dbsf) too
        items += [(f"hybrid dbsf alpha={a}", Hybrid(alpha=a, fusion="dbsf")) for a in ALPHAS]
    else:
        items += [(f"hybrid default, prefetch_k={p}", Hybrid(prefetch_k=p)) for p in (100, 200)]
    items += [("mmr lambda=0.5", MMR(fetch_k=200, lambda_mult=0.5)),
              ("mmr lambda=0.8", MMR(fetch_k=200, lambda_mult=0.8))]
    return items


def mean_bm25_length(encoder: SparseEncoder, texts: list[str]) -> float:
    """Average document length as FastEmbed's BM25 counts it (after stopwords)."""
    from fastembed.sparse.bm25 import remove_non_alphanumeric

    bm25 = encoder.model.model  # FastEmbed's Bm25 (private attributes: benchmark only)
    return float(np.mean([len(bm25._stem(bm25.tokenizer.tokenize(remove_non_alphanumeric(t))))
                          for t in texts]))


def evaluate(engine: BackendEngine, strategy: Strategy, queries: dict[str, str],
             qrels: dict[str, set[str]]) -> tuple[float, float]:
    n, r = [], []
    for qid, text in queries.items():
        top10 = [h.record.id for h in run(strategy.with_options(k=10).plan(text), engine)]
        top100 = [h.record.id for h in run(strategy.with_options(k=100).plan(text), engine)]
        n.append(ndcg(top10, qrels[qid]))
        r.append(recall(top100, qrels[qid]))
    return float(np.mean(n)), float(np.mean(r))


# --- backends ------------------------------------------------------------------------------
def open_backend(name: str, stack: list[Callable[[], Any]]) -> Any:
    if name in ("qdrant", FITTED):
        from rag_stores.backends.qdrant import QdrantBackend

        backend = QdrantBackend("cisi")
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
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    docs, queries, qrels = load_cisi()
    print(f"CISI: {len(docs)} documents, {len(queries)} judged queries")
    # Small batches: long abstracts in big batches take gigabytes for attention.
    dense, sparse = DenseEncoder(batch_size=16), SparseEncoder(batch_size=64)
    doc_vecs, query_vecs = dense_vectors(dense, docs, queries, args.out)
    texts = list(docs.values())
    query_dense = {t: list(map(float, v)) for t, v in zip(queries.values(), query_vecs, strict=True)}
    # BM25 query vectors do not depend on avg_len (every query term weighs 1).
    query_sparse = dict(zip(queries.values(), sparse.embed_queries(list(queries.values())), strict=True))
    names = args.backends.split(",")
    if "qdrant" in names:
        names.insert(names.index("qdrant") + 1, FITTED)

    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name in names:
        encoder = sparse
        if name == FITTED:
            avg_len = mean_bm25_length(sparse, texts)
            print(f"{FITTED}: SparseEncoder(avg_len={avg_len:.1f})")
            encoder = SparseEncoder(batch_size=64, avg_len=avg_len)
        records = [Record(id=i, text=t, vector=list(map(float, v)), sparse=sv)
                   for i, t, v, sv in zip(docs, texts, doc_vecs, encoder.embed_documents(texts),
                                          strict=True)]
        stack: list[Callable[[], Any]] = []
        try:
            backend = open_backend(name, stack)
            backend.ensure_collection(doc_vecs.shape[1], True)
            for start in range(0, len(records), 256):
                backend.upsert(records[start:start + 256])
            engine = BackendEngine(backend, query_dense.__getitem__, query_sparse.__getitem__)
            results[name] = {}
            for label, strategy in configs(name):
                results[name][label] = evaluate(engine, strategy, queries, qrels)
                nd, rc = results[name][label]
                print(f"  {name:16} {label:40} nDCG@10 {nd:.3f}  recall@100 {rc:.3f}", flush=True)
        finally:
            for close in reversed(stack):
                close()

    report(results, args.out)
    return 0


def report(results: dict[str, dict[str, tuple[float, float]]], out: Path) -> None:
    labels = list(dict.fromkeys(label for r in results.values() for label in r))
    names = list(results)
    head = f"{'configuration':44}" + "".join(f"{n + ' nDCG@10':>26}{'R@100':>8}" for n in names)
    print("\n" + head + "\n" + "-" * len(head))
    for label in labels:
        cells = "".join(f"{results[n][label][0]:26.3f}{results[n][label][1]:8.3f}"
                        if label in results[n] else f"{'':26}{'':8}" for n in names)
        print(f"{label:44}{cells}")
    (out / "quality.json").write_text(json.dumps(results, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, max(5, 0.28 * len(labels))), sharey=True)
    y = np.arange(len(labels))
    height = 0.8 / max(len(names), 1)
    for metric, ax, title in ((0, axes[0], "nDCG@10"), (1, axes[1], "recall@100")):
        for j, n in enumerate(names):
            values = [results[n].get(label, (np.nan, np.nan))[metric] for label in labels]
            ax.barh(y + j * height, values, height, label=n)
            if metric == 0 and "dense" in results[n]:  # the line hybrid should reach
                ax.axvline(results[n]["dense"][0], color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"CISI {title}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y + height * (len(names) - 1) / 2, labels)
    axes[0].invert_yaxis()
    handles, names_ = axes[0].get_legend_handles_labels()
    fig.legend(handles, names_, loc="lower center", ncol=len(names))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out / "quality.png", dpi=110)
    print(f"\nwrote {out / 'quality.json'} and {out / 'quality.png'}")


if __name__ == "__main__":
    raise SystemExit(main())
