"""BM25 fitted to its collection: avg_len from the collection's own documents, kept with it.

BM25 normalises a document's term frequencies by its length over the collection's mean
length (`avg_len`). FastEmbed's encoder takes avg_len as a constant (default 256 tokens);
on CISI, whose abstracts average 72 tokens after stopwords, the fitted value lifts Qdrant's
BM25 nDCG@10 from 0.289 to 0.330 (benchmarks/bench_quality.py).

`CollectionBM25` wraps a `SparseEncoder` for one collection. Each batch of documents it
embeds adds its documents and tokens to running totals kept in the collection's metadata
(Qdrant `create_collection`/`update_collection(metadata=...)`, which servers since 1.16,
local mode and this project's Qdrant Edge client keep), under `METADATA_KEY`:

    {"docs": 1460, "tokens": 105764, "avg_len": 72.4, "settings": {language, stemmer, ...}}

and encodes the batch with the mean so far. So every writer, a reopened store, and the
LangChain and LlamaIndex faces of the same collection use the same value, and the value
follows the collection as it grows.

Tenants (Qdrant `tenant=` stores, which share one collection) keep their own totals, one
entry per tenant: `METADATA_KEY + "/tenant/" + tenant` (`stats_key`). A tenant's writes
read and write its entry only, so its avg_len never moves with another tenant's documents
and its encoder never reads another tenant's counts. The tenant-less store keeps
`METADATA_KEY`, so collections written before keep their totals. Tenant stores of a
collection written before this split (when every tenant added to `METADATA_KEY`) start
their own totals at their next write; the shared entry is left as it was (`refit()`
re-encodes a tenant's records with its own mean). What stays shared: the collection
metadata itself, which Qdrant keeps per collection, so `backend.collection_metadata()`
lists every tenant's entry to anyone holding the collection (tenants are a filter of this
library, not an access boundary of Qdrant); and Qdrant's IDF modifier, which Qdrant
computes over the whole collection. Weaviate ranks with its own BM25 index (nothing is fitted
here): each tenant of a multi-tenant collection is its own shard, with its own lengths and
document counts. The tokenizer settings are kept too: a writer whose
language, stemmer, stopwords, k or b differ from the collection's is refused (its vectors
would not match the index).

What it is not: documents written earlier keep the vectors of the mean at their time (the
first batch sets it; with homogeneous documents it moves little; `refit` re-encodes
everything with today's mean), overwritten or deleted records are not subtracted (the
mean is over every document ever added), and concurrent writers may lose one another's
counts (last write wins). Queries do not depend on avg_len (a query term weighs 1).
Stores opened with only an async client keep the totals in memory, unsaved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .sparse import SparseVector

METADATA_KEY = "rag_stores_bm25"

__all__ = ["METADATA_KEY", "BM25Stats", "CollectionBM25", "fitted", "stats_key"]


def stats_key(backend: Any) -> str:
    """The collection-metadata key of `backend`'s totals: one per tenant (module doc)."""
    tenant = getattr(backend, "tenant", None)
    return METADATA_KEY if tenant is None else f"{METADATA_KEY}/tenant/{tenant}"


@dataclass
class BM25Stats:
    docs: int = 0
    tokens: int = 0

    @property
    def avg_len(self) -> float | None:
        return self.tokens / self.docs if self.docs else None


def _keeps_metadata(backend: Any) -> bool:
    return hasattr(backend, "collection_metadata") and hasattr(backend, "update_collection_metadata")


def fitted(encoder: Any, backend: Any) -> Any:
    """`encoder` fitted to `backend`'s collection, or `encoder` itself where fitting does not
    apply: not BM25, avg_len given, an engine with its own BM25 (Weaviate), or a backend
    that keeps no collection metadata."""
    if isinstance(encoder, CollectionBM25):
        return encoder if encoder.backend is backend else fitted(encoder.encoder, backend)
    if (not getattr(encoder, "is_bm25", False) or getattr(encoder, "avg_len_given", True)
            or getattr(backend, "builtin_bm25", False) or not _keeps_metadata(backend)):
        return encoder
    return CollectionBM25(encoder, backend)


class CollectionBM25:
    """A BM25 `SparseEncoder` whose avg_len is the collection's (module docstring)."""

    def __init__(self, encoder: Any, backend: Any) -> None:
        self.encoder = encoder
        self.backend = backend
        self.settings = encoder.settings()
        self.key = stats_key(backend)  # this tenant's entry in the collection metadata
        self._lock = threading.Lock()
        self._memory: BM25Stats | None = None  # async-only backends: totals not saved
        self._checked = False

    def __repr__(self) -> str:
        return f"CollectionBM25({self.encoder!r}, collection={self.backend.collection_name!r})"

    @property
    def model_name(self) -> str:
        return str(self.encoder.model_name)

    # --- the collection's totals -----------------------------------------------------
    def _saved(self) -> tuple[BM25Stats, bool]:
        """(the totals, whether they come from the collection)."""
        if not getattr(self.backend, "supports_sync", True) or not self.backend.exists():
            return BM25Stats(), False
        entry = (self.backend.collection_metadata() or {}).get(self.key)
        if not entry:
            return BM25Stats(), True
        self._check(entry.get("settings") or {})
        return BM25Stats(int(entry.get("docs", 0)), int(entry.get("tokens", 0))), True

    def _check(self, saved: dict[str, Any]) -> None:
        differ = {k: (saved[k], v) for k, v in self.settings.items() if k in saved and saved[k] != v}
        if differ:
            raise ValueError(
                f"collection {self.backend.collection_name!r} was indexed with other BM25 "
                f"settings: {', '.join(f'{k} {a!r} (this encoder: {b!r})' for k, (a, b) in differ.items())}"
                ". Use an encoder with the collection's settings, or another collection.")
        self._checked = True

    def stats(self) -> BM25Stats:
        """The collection's totals now (documents, tokens, avg_len): this tenant's on a
        tenant store."""
        with self._lock:
            saved, persistent = self._saved()
            return saved if persistent else (self._memory or BM25Stats())

    @property
    def avg_len(self) -> float | None:
        """The collection's mean document length in BM25 tokens (None: no documents yet)."""
        return self.stats().avg_len

    def _add(self, lengths: list[int]) -> float:
        with self._lock:
            saved, persistent = self._saved()
            stats = saved if persistent else (self._memory or BM25Stats())
            stats.docs += len(lengths)
            stats.tokens += sum(lengths)
            if persistent:
                self.backend.update_collection_metadata({self.key: {
                    "docs": stats.docs, "tokens": stats.tokens, "avg_len": stats.avg_len,
                    "settings": self.settings}})
            else:
                self._memory = stats
            return max(stats.avg_len or 1.0, 1.0)

    # --- the encoder interface -------------------------------------------------------------
    def embed_documents(self, texts: Iterable[str]) -> list[SparseVector]:
        tokens = [self.encoder.analyze(t) for t in texts]
        if not tokens:
            return []
        avg_len = self._add([len(t) for t in tokens])
        return [self.encoder.vector_of(t, avg_len) for t in tokens]

    def embed_query(self, text: str) -> SparseVector:
        if not self._checked:
            with self._lock:
                self._saved()  # refuses a collection indexed with other settings
                self._checked = True
        return self.encoder.embed_query(text)  # type: ignore[no-any-return]

    def embed_queries(self, texts: Iterable[str]) -> list[SparseVector]:
        return [self.embed_query(t) for t in texts]

    async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
        import asyncio

        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> SparseVector:
        import asyncio

        return await asyncio.to_thread(self.embed_query, text)

    def refit(self, batch_size: int = 256) -> int:
        """Re-encode every stored record's sparse vector with the collection's avg_len now
        (records are rewritten as they are, with the new sparse vector); returns how many."""
        avg_len = self.avg_len
        if avg_len is None:
            return 0
        done, batch = 0, []
        for record in self.backend.iter_records(with_vectors=True, batch_size=batch_size):
            batch.append(record)
            if len(batch) >= batch_size:
                done += self._rewrite(batch, avg_len)
                batch = []
        return done + (self._rewrite(batch, avg_len) if batch else 0)

    def _rewrite(self, records: list[Any], avg_len: float) -> int:
        for record in records:
            record.sparse = self.encoder.vector_of(self.encoder.analyze(record.text), avg_len)
        self.backend.upsert(records)
        return len(records)
