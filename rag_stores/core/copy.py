"""Copy a collection between any two backends: Qdrant Edge or local mode <-> a Qdrant server
or cluster (develop on a laptop, deploy to a cluster, and back), or Qdrant <-> Weaviate.

Records move whole (user id, text, metadata, ref_doc_id, relationships, dense and sparse
vectors) through the backends' reads and upserts, so the target writes them in its own layout
and nothing is re-embedded. Copying again overwrites by id (idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .query import CollectionNotFoundError
from .records import Record


def copy_collection(source: Any, target: Any, batch_size: int = 256) -> int:
    """Copy every record of `source` into `target` (created with the source's vector size
    and sparse setting when missing); returns the number copied."""
    dim = source.dimension()
    if dim is None:
        raise CollectionNotFoundError(f"collection {source.collection_name!r} does not exist")
    target.ensure_collection(dim, source.has_sparse())
    # paged where the backend can (Qdrant); otherwise one read of the whole collection
    records: Iterable[Record] = source.iter_records(with_vectors=True) \
        if hasattr(source, "iter_records") else source.scroll(with_vectors=True)
    copied, batch = 0, []
    for record in records:
        batch.append(record)
        if len(batch) == batch_size:
            target.upsert(batch)
            copied, batch = copied + len(batch), []
    if batch:
        target.upsert(batch)
        copied += len(batch)
    return copied
