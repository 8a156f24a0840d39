"""Issue 29 part 1, where ingestion time goes: ONNX Runtime thread settings and a profile.

    python benchmarks/bench_ingest_profile.py --limit 256
    python benchmarks/bench_ingest_profile.py --limit 256 --skip-profile

1. Thread settings: the model alone (all-MiniLM-L6-v2, seeded files) on the abstracts sorted
   by length, batch 32, for FastEmbed's `threads=` None (ONNX Runtime's default: one
   intra-op thread per physical core), 1 and 2 (intra- and inter-op), and ONNX Runtime with
   intra-op 2 / inter-op 1 and sequential execution; then two sessions of threads=1 side by
   side on half the texts each (FastEmbed's `parallel=2` without its process start-up).
   Settings alternate within each round; the best of --runs is kept; real tokens/s.
2. The cost of each step on the ingest path besides the model, per text: tokenising for the
   sort (`_by_length`), FastEmbed's own tokenising, BM25 (`SparseEncoder` and the collection
   fitted `CollectionBM25`), `tolist()` copies.
3. cProfile of our LangChain store's `add_texts` (hybrid, embedded `:memory:`): the top
   functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest_text import MINILM, dense_path  # noqa: E402
from benchmarks.common import read_cisi, table  # noqa: E402


def session(threads: int | None, **extra: Any) -> Any:
    """A FastEmbed model; `extra` edits ONNX Runtime's session options before loading."""
    from fastembed import TextEmbedding

    if not extra:
        return TextEmbedding(MINILM, specific_model_path=dense_path(), threads=threads)
    import onnxruntime as ort

    real = ort.SessionOptions

    def patched() -> Any:
        so = real()
        for k, v in extra.items():
            if k == "config":
                for entry, value in v.items():
                    so.add_session_config_entry(entry, value)
            else:
                setattr(so, k, v)
        return so
    ort.SessionOptions = patched  # type: ignore[misc]
    try:
        return TextEmbedding(MINILM, specific_model_path=dense_path(), threads=threads)
    finally:
        ort.SessionOptions = real  # type: ignore[misc]


def threads_sweep(texts: list[str], tokens: int, runs: int) -> list[list[Any]]:
    import onnxruntime as ort

    ordered = sorted(texts, key=len)
    configs: dict[str, Any] = {
        "threads=None (default)": session(None),
        "threads=1": session(1),
        "threads=2": session(2),
        "intra 2, inter 1, sequential": session(
            None, intra_op_num_threads=2, inter_op_num_threads=1,
            execution_mode=ort.ExecutionMode.ORT_SEQUENTIAL),
        # no busy-wait of idle intra-op threads (may help on a shared machine)
        "intra 2, no spinning": session(None, intra_op_num_threads=2, config={
            "session.intra_op.allow_spinning": "0"}),
    }
    two = [session(1), session(1)]
    best: dict[str, float] = {}
    for r in range(runs):
        names = list(configs) + ["2 sessions x threads=1"]
        for name in (names if r % 2 == 0 else reversed(names)):
            start = time.perf_counter()
            if name in configs:
                list(configs[name].embed(ordered, batch_size=32))
            else:
                halves = [ordered[0::2], ordered[1::2]]
                workers = [threading.Thread(target=lambda m, t: list(m.embed(t, batch_size=32)),
                                            args=(m, t)) for m, t in zip(two, halves, strict=True)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    base = best["threads=None (default)"]
    return [[name, tokens / s, len(texts) / s, base / s] for name, s in best.items()]


def steps(texts: list[str]) -> list[list[Any]]:
    from embedders import DenseEncoder, SparseEncoder
    from embedders.encoders import _by_length
    from embedders.sparse_fit import CollectionBM25

    dense = DenseEncoder()
    tok = dense.model.model.tokenizer
    sparse = SparseEncoder()

    class _Mem:  # a backend that keeps no metadata: CollectionBM25 keeps totals in memory
        collection_name = "x"
        supports_sync = False

    rows: list[list[Any]] = []

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        rows.append([name, seconds * 1000 / len(texts), seconds])
        return out

    timed("sort: tokenise for lengths (_by_length)", lambda: _by_length(texts, tok))
    timed("FastEmbed's tokenising (encode_batch, batch 32)",
          lambda: [tok.encode_batch(texts[i:i + 32]) for i in range(0, len(texts), 32)])
    vecs = timed("dense model + sort (DenseEncoder._passages)",
                 lambda: list(dense._passages(texts)))
    timed("tolist() of the vectors", lambda: [v.tolist() for v in vecs])
    timed("BM25, FastEmbed (SparseEncoder)", lambda: sparse.embed_documents(texts))
    timed("BM25 fitted to the collection (CollectionBM25)",
          lambda: CollectionBM25(sparse, _Mem()).embed_documents(texts))
    model = rows[2][2]
    for row in rows:
        row.append(row[2] / model)
    return rows


def profile(texts: list[str], top: int) -> str:
    from embedders.langchain import FastEmbedEmbeddings
    from rag_stores.langchain import QdrantVectorStore

    emb = FastEmbedEmbeddings()
    emb.embed_documents(texts[:8])  # load
    store = QdrantVectorStore(emb, f"prof_{uuid.uuid4().hex[:8]}", retrieval_mode="hybrid",
                              progress=False)
    # cProfile sees one thread: the preparation (embedding) runs in the pipeline's worker
    # thread, one call at a time, so its calls are profiled there; writes are timed apart.
    from rag_stores.core import ingest

    prof = cProfile.Profile()
    real = ingest._together

    def together(prepare: Any) -> Any:
        run = real(prepare)

        def profiled(group: Any) -> Any:
            prof.enable()
            try:
                return run(group)
            finally:
                prof.disable()
        return profiled
    ingest._together = together  # type: ignore[assignment]
    start = time.perf_counter()
    try:
        store.add_texts(texts)
    finally:
        ingest._together = real  # type: ignore[assignment]
    wall = time.perf_counter() - start
    store.close()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    prepared = stats.total_tt  # type: ignore[attr-defined]
    out.write(f"add_texts {wall:.2f} s wall, of which preparing (embedding) {prepared:.2f} s "
              f"under the profiler\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=256)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-threads", action="store_true")
    args = parser.parse_args()
    texts = [d.text for d in read_cisi() if d.abstract][: args.limit]
    from fastembed import TextEmbedding

    tok = TextEmbedding(MINILM, specific_model_path=dense_path()).model.tokenizer
    tokens = sum(sum(e.attention_mask) for e in tok.encode_batch(texts))
    print(f"{len(texts)} CISI abstracts, {tokens} real tokens; load average "
          f"{os.getloadavg()[0]:.1f}; {os.cpu_count()} cores", flush=True)
    if not args.skip_threads:
        print(table(f"\nThread settings, model alone, sorted, batch 32 (best of {args.runs})",
                    ["setting", "real tokens/s", "texts/s", "x default"],
                    threads_sweep(texts, tokens, args.runs)), flush=True)
    print(table("\nSteps of the ingest path", ["step", "ms / text", "s", "x dense model"],
                steps(texts)), flush=True)
    if not args.skip_profile:
        print("\ncProfile, ours LangChain add_texts (hybrid, :memory:), by own time:")
        print(profile(texts, 25))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
