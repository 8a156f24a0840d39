"""Copy a collection between any two backends: Qdrant Edge or local mode <-> a Qdrant server
or cluster (develop on a laptop, deploy to a cluster, and back), or Qdrant <-> Weaviate.

Records move whole (user id, text, metadata, ref_doc_id, relationships, dense and sparse
vectors) through the backends' streaming reads and upserts, so the target writes them in its
own layout, nothing is re-embedded and memory stays bounded by one batch. Copying again
overwrites by id (idempotent); `skip_existing=True` skips what the target already holds, so
an interrupted copy resumes where it stopped. Sparse vectors go along when the source stores
them (Qdrant); Weaviate ranks keywords itself and stores none.
"""

from __future__ import annotations

import math
import random
from typing import Any

from tqdm.auto import tqdm

from .ingest import batched
from .query import CollectionNotFoundError
from .records import Record


def copy_collection(source: Any, target: Any, batch_size: int = 256, *,
                    skip_existing: bool = False, progress: bool = False,
                    filter: Any = None, desc: str = "copying") -> int:
    """Copy every record of `source` (matching `filter`) into `target` (created with the
    source's vector size, and sparse vectors when the source stores them, if missing);
    returns how many records were written."""
    dim = source.dimension()
    if dim is None:
        raise CollectionNotFoundError(f"collection {source.collection_name!r} does not exist")
    stores_sparse = source.has_sparse() and not getattr(source, "builtin_bm25", False)
    target.ensure_collection(dim, stores_sparse)
    written = 0
    with tqdm(total=source.count(filter) if progress else None, unit="record", desc=desc,
              disable=not progress) as bar:
        for batch in batched(source.iter_records(filter, batch_size=batch_size,
                                                 with_vectors=True), batch_size):
            seen = len(batch)
            if skip_existing:
                present = {r.id for r in target.get([r.id for r in batch])}
                batch = [r for r in batch if r.id not in present]
            if batch:
                target.upsert(batch)
                written += len(batch)
            bar.update(seen)
    return written


def verify_copy(source: Any, target: Any, sample: int = 20, seed: int = 0,
                filter: Any = None) -> list[str]:
    """What differs between `source` and its copy (empty: none): the counts, and `sample`
    records drawn at random (one streaming pass, reservoir sampling) compared field by field.
    `filter`: the records compared, on both sides (counts) and in the source (sample)."""
    problems = []
    counts = source.count(filter), target.count(filter)
    if counts[0] != counts[1]:
        problems.append(f"counts differ: source {counts[0]}, target {counts[1]}")
    rng, chosen = random.Random(seed), list[str]()
    for n, record in enumerate(source.iter_records(filter, with_vectors=False)):
        if len(chosen) < sample:
            chosen.append(record.id)
        elif (slot := rng.randrange(n + 1)) < sample:
            chosen[slot] = record.id
    originals = {r.id: r for r in source.get(chosen, with_vectors=True)}
    copies = {r.id: r for r in target.get(chosen, with_vectors=True)}
    # Cosine engines may store vectors normalised (Qdrant does): compare directions then.
    cosine = getattr(source, "distance", None) == getattr(target, "distance", None) == "cosine"
    for rid in chosen:
        if rid not in originals:  # listed, yet not found by its id: never a silent pass
            problems.append(f"record {rid!r} is listed by the source but not found by its id")
        elif rid not in copies:
            problems.append(f"record {rid!r} is missing from the target")
        elif (difference := _difference(originals[rid], copies[rid], cosine)) is not None:
            problems.append(f"record {rid!r} differs: {difference}")
    return problems


def _difference(a: Record, b: Record, cosine: bool) -> str | None:
    for name in ("text", "metadata", "ref_doc_id"):
        if getattr(a, name) != getattr(b, name):
            return f"{name} {getattr(a, name)!r} != {getattr(b, name)!r}"
    if (a.vector is None) != (b.vector is None):
        return "one side has no dense vector"
    if a.vector is not None and b.vector is not None:
        x, y = (_unit(a.vector), _unit(b.vector)) if cosine else (a.vector, b.vector)
        if len(x) != len(y) or not all(math.isclose(p, q, rel_tol=1e-4, abs_tol=1e-5)
                                       for p, q in zip(x, y, strict=True)):
            return "dense vectors differ"
    return None


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
