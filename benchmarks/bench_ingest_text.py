"""Issue 29 part 1: end-to-end ingestion of CISI abstracts from text (embedding included).

    python benchmarks/bench_ingest_text.py --limit 256            # quick
    python benchmarks/bench_ingest_text.py                        # all 1,460 abstracts
    python benchmarks/bench_ingest_text.py --targets local --modes dense

Each side embeds the same abstracts with the same seeded all-MiniLM-L6-v2 files (and BM25
for hybrid) and writes them to a fresh Qdrant collection (embedded `:memory:` = "local", and
a Qdrant server over REST = "server"); the time runs from the texts to the last write.

- raw: fastembed `TextEmbedding.embed` in the given order (batch 32) + qdrant-client
  `upsert` of 64 points at a time (the baseline of the ratios);
- ours-lc: `rag_stores.langchain.QdrantVectorStore(FastEmbedEmbeddings()).add_texts`;
- ours-li: `VectorStoreIndex(nodes, embed_model=embedders.llama_index.FastEmbedEmbedding())`
  on `rag_stores.llama_index.QdrantVectorStore`;
- peer-lc: langchain-qdrant with langchain-community's `FastEmbedEmbeddings` (its model
  swapped for one loaded from the seeded folder) and langchain-qdrant's `FastEmbedSparse`;
- peer-li: llama-index-vector-stores-qdrant with llama-index's `FastEmbedEmbedding`, hybrid
  through sparse_doc_fn / sparse_query_fn over FastEmbed BM25 from the seeded folder.
  The peers run with their own default batch sizes (what a new user gets); install them with
  `pip install langchain-community llama-index-embeddings-fastembed` (skipped if absent).

- model-sorted: the model alone on the texts sorted by length, nothing written (the
  ceiling of any side; the "x ceiling" column).
Sides alternate within each round; the best of --runs rounds is kept. Also measured first:
the model's real tokens/s in the given and the sorted order, and the padding each carries.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import read_cisi, table, write_json  # noqa: E402

BATCH = 64  # points per write for raw; our stores' default too
Side = Callable[[list[str], list[str], dict[str, Any]], None]


def folder(model: str, file: str) -> str:
    from embedders import offline

    found = offline.seeded_model_dir(model, file)
    if found is None:
        raise SystemExit(f"not seeded: run `{offline.SEED_COMMAND}`")
    return str(found)


MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def dense_path() -> str:
    return folder(MINILM, "model.onnx")


def bm25_path() -> str:
    return str(Path(dense_path()).parents[1] / "Qdrant" / "bm25")


def client_kwargs(target: dict[str, Any]) -> dict[str, Any]:
    if target["url"] is None:
        return {"location": ":memory:"}
    return {"url": target["url"], "check_compatibility": False}


# --- sides -------------------------------------------------------------------------------
def raw(mode: str) -> Side:
    from fastembed import SparseTextEmbedding, TextEmbedding
    from qdrant_client import QdrantClient, models

    dense = TextEmbedding(MINILM, specific_model_path=dense_path())
    sparse = SparseTextEmbedding("Qdrant/bm25", specific_model_path=bm25_path())

    def run(texts: list[str], ids: list[str], target: dict[str, Any]) -> None:
        client = QdrantClient(**client_kwargs(target))
        name = f"raw_{uuid.uuid4().hex[:8]}"
        client.create_collection(
            name, vectors_config={"dense": models.VectorParams(size=384,
                                                               distance=models.Distance.COSINE)},
            sparse_vectors_config={"bm25": models.SparseVectorParams(
                modifier=models.Modifier.IDF)} if mode == "hybrid" else None)
        for start in range(0, len(texts), BATCH):
            chunk = texts[start:start + BATCH]
            vecs = [v.tolist() for v in dense.embed(chunk, batch_size=32)]
            sps = list(sparse.embed(chunk)) if mode == "hybrid" else None
            points = []
            for i, text in enumerate(chunk):
                vector: dict[str, Any] = {"dense": vecs[i]}
                if sps is not None:
                    vector["bm25"] = models.SparseVector(indices=sps[i].indices.tolist(),
                                                         values=sps[i].values.tolist())
                points.append(models.PointStruct(id=ids[start + i], vector=vector,
                                                 payload={"text": text}))
            client.upsert(name, points)
        client.delete_collection(name)
        client.close()
    return run


def ours_lc(mode: str) -> Side:
    from embedders.langchain import FastEmbedEmbeddings
    from rag_stores.langchain import QdrantVectorStore

    emb = FastEmbedEmbeddings()

    def run(texts: list[str], ids: list[str], target: dict[str, Any]) -> None:
        kw = {} if target["url"] is None else {"url": target["url"], "check_compatibility": False}
        store = QdrantVectorStore(emb, f"ourslc_{uuid.uuid4().hex[:8]}", retrieval_mode=mode,
                                  progress=False, **kw)
        store.add_texts(texts, ids=ids)
        store.close()
    return run


def _nodes(texts: list[str], ids: list[str]) -> list[Any]:
    from llama_index.core.schema import TextNode

    return [TextNode(text=t, id_=i) for t, i in zip(texts, ids, strict=True)]


def _index(store: Any, nodes: list[Any], embed_model: Any) -> None:
    from llama_index.core import StorageContext, VectorStoreIndex

    VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                     embed_model=embed_model)


def ours_li(mode: str) -> Side:
    from embedders.llama_index import FastEmbedEmbedding
    from rag_stores.llama_index import QdrantVectorStore

    emb = FastEmbedEmbedding()

    def run(texts: list[str], ids: list[str], target: dict[str, Any]) -> None:
        kw = {} if target["url"] is None else {"url": target["url"], "check_compatibility": False}
        store = QdrantVectorStore(f"oursli_{uuid.uuid4().hex[:8]}",
                                  enable_hybrid=mode == "hybrid", **kw)
        _index(store, _nodes(texts, ids), emb)
        store.close()
    return run


def peer_lc(mode: str) -> Side:
    from fastembed import TextEmbedding
    from langchain_community.embeddings.fastembed import FastEmbedEmbeddings
    from langchain_qdrant import FastEmbedSparse, QdrantVectorStore, RetrievalMode

    emb = FastEmbedEmbeddings.model_construct(
        model_name=MINILM, max_length=512, cache_dir=None, threads=None,
        doc_embed_type="default", batch_size=256, parallel=None, providers=None,
        model=TextEmbedding(MINILM, specific_model_path=dense_path()))
    sparse = FastEmbedSparse("Qdrant/bm25", specific_model_path=bm25_path())

    def run(texts: list[str], ids: list[str], target: dict[str, Any]) -> None:
        hybrid = mode == "hybrid"
        store = QdrantVectorStore.from_texts(
            texts, emb, ids=ids, collection_name=f"peerlc_{uuid.uuid4().hex[:8]}",
            sparse_embedding=sparse if hybrid else None,
            retrieval_mode=RetrievalMode.HYBRID if hybrid else RetrievalMode.DENSE,
            **client_kwargs(target))
        store.client.close()
    return run


def peer_li(mode: str) -> Side:
    from fastembed import SparseTextEmbedding
    from llama_index.embeddings.fastembed import FastEmbedEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    emb = FastEmbedEmbedding(MINILM, specific_model_path=dense_path())
    bm25 = SparseTextEmbedding("Qdrant/bm25", specific_model_path=bm25_path())

    def sparse_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        out = list(bm25.embed(texts))
        return [e.indices.tolist() for e in out], [e.values.tolist() for e in out]

    def run(texts: list[str], ids: list[str], target: dict[str, Any]) -> None:
        client = QdrantClient(**client_kwargs(target))
        name = f"peerli_{uuid.uuid4().hex[:8]}"
        hybrid = mode == "hybrid"
        store = QdrantVectorStore(name, client=client, enable_hybrid=hybrid,
                                  sparse_doc_fn=sparse_fn if hybrid else None,
                                  sparse_query_fn=sparse_fn if hybrid else None)
        _index(store, _nodes(texts, ids), emb)
        client.close()
    return run


def model_only(mode: str) -> Side:
    """The model alone on length-sorted batches of 32, nothing written: the ceiling of any
    side, measured in the same rounds as the sides."""
    from fastembed import TextEmbedding

    model = TextEmbedding(MINILM, specific_model_path=dense_path())

    def run(texts: list[str], ids: list[str], target: dict[str, Any]) -> None:
        list(model.embed(sorted(texts, key=len), batch_size=32))
    return run


SIDES: dict[str, Callable[[str], Side]] = {
    "model-sorted": model_only, "raw": raw, "ours-lc": ours_lc, "ours-li": ours_li, "peer-lc": peer_lc, "peer-li": peer_li}


# --- the model's ceiling -----------------------------------------------------------------
def ceiling(texts: list[str], runs: int) -> dict[str, float]:
    """Real tokens/s: given order (batch 32), sorted by length (batch 32)."""
    import numpy as np
    from fastembed import TextEmbedding

    model = TextEmbedding(MINILM, specific_model_path=dense_path())
    tok = model.model.tokenizer
    lens = np.array([sum(e.attention_mask) for e in tok.encode_batch(texts)])
    order = np.argsort(lens, kind="stable")

    def padded(o: Any) -> int:
        ls = lens[o]
        return int(sum(len(ls[i:i + 32]) * ls[i:i + 32].max() for i in range(0, len(ls), 32)))

    best: dict[str, float] = {}
    for _ in range(runs):
        for name, texts_in in (("given", texts), ("sorted", [texts[i] for i in order])):
            start = time.perf_counter()
            list(model.embed(texts_in, batch_size=32))
            best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    total = int(lens.sum())
    return {"tokens": total, "mean_tokens": total / len(texts),
            "padding_given": padded(np.arange(len(texts))) / total,
            "padding_sorted": padded(order) / total,
            "tok_s_given": total / best["given"], "tok_s_sorted": total / best["sorted"],
            "docs_s_ceiling": len(texts) / best["sorted"]}


def drop_all(url: str) -> None:
    from qdrant_client import QdrantClient

    client = QdrantClient(url=url, check_compatibility=False)
    for c in client.get_collections().collections:
        client.delete_collection(c.name)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N abstracts")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--modes", default="dense,hybrid")
    parser.add_argument("--targets", default="local,server")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--ceiling-limit", type=int, default=None,
                        help="measure the model's tokens/s on the first N texts only (0: skip)")
    args = parser.parse_args()

    docs = [d for d in read_cisi() if d.abstract][: args.limit]
    texts = [d.text for d in docs]
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"cisi-{d.id}")) for d in docs]
    load = os.getloadavg()
    print(f"{len(texts)} CISI abstracts; load average {load[0]:.1f}; {os.cpu_count()} cores")
    results: dict[str, Any] = {"n": len(texts), "load": load}

    ceil = ceiling(texts[: args.ceiling_limit], args.runs) if args.ceiling_limit != 0 else {}
    results["ceiling"] = ceil
    if ceil:
        print(table(f"Model ceiling (raw fastembed, batch 32, {len(texts[: args.ceiling_limit])}"
                    " texts)", ["", "value"], [
                        ["real tokens / text", ceil["mean_tokens"]],
                        ["padded / real tokens, given order", ceil["padding_given"]],
                        ["padded / real tokens, sorted", ceil["padding_sorted"]],
                        ["real tokens/s, given order", ceil["tok_s_given"]],
                        ["real tokens/s, sorted (ceiling)", ceil["tok_s_sorted"]],
                        ["texts/s, sorted", ceil["docs_s_ceiling"]]]))

    from rag_stores.servers.qdrant import QdrantServer

    binary = os.environ.get("RAG_STORES_QDRANT_BIN", "/work/shared/qdrant/qdrant")
    server = QdrantServer(data_dir=None, binary=binary) if "server" in args.targets else None
    try:
        if server is not None:
            server.__enter__()
        targets = {t: {"url": server.url if t == "server" and server else None}
                   for t in args.targets.split(",")}
        rows = []
        for m, mode in enumerate(args.modes.split(",")):
            sides: dict[str, Side] = {}
            for name in args.sides.split(","):
                try:
                    sides[name] = SIDES[name](mode)
                except ImportError as exc:
                    print(f"skipped {name}: {exc}")
            for target_name, target in targets.items():
                best: dict[str, float] = {}
                for r in range(args.runs):
                    # alternated by round, and by mode (one round: dense forward, hybrid back)
                    names = list(sides) if (r + m) % 2 == 0 else list(reversed(sides))
                    for name in names:
                        start = time.perf_counter()
                        sides[name](texts, ids, target)
                        best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
                        print(f"  {mode} {target_name} {name}: {time.perf_counter() - start:.1f} s"
                              f" (load {os.getloadavg()[0]:.1f})", flush=True)
                        if server is not None and target_name == "server":
                            drop_all(server.url)
                base = len(texts) / best["raw"] if "raw" in best else None
                top = len(texts) / best["model-sorted"] if "model-sorted" in best else None
                for name, seconds in best.items():
                    rate = len(texts) / seconds
                    rows.append([mode, target_name, name, rate,
                                 rate / base if base else None, rate / top if top else None])
                results.setdefault("best_s", {})[f"{mode}/{target_name}"] = best
        print(table(f"\nEnd-to-end ingestion, {len(texts)} abstracts (best of {args.runs})",
                    ["mode", "target", "side", "texts/s", "x raw", "x ceiling"], rows))
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"\nJSON: {write_json('bench_ingest_text', results)}")


if __name__ == "__main__":
    main()
