"""Engine- and framework-neutral records: what a store keeps and what a search returns."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from embedders.sparse import SparseVector

__all__ = ["Record", "Hit", "Group", "SparseVector", "check_record"]

# One encoder for every check: json.dumps(..., allow_nan=False) would build one per call.
_STRICT_JSON = json.JSONEncoder(allow_nan=False)


@dataclass
class Record:
    """One stored item. `id` is the user's id, whatever its form (see core.ids)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    vector: list[float] | None = None
    sparse: SparseVector | None = None
    ref_doc_id: str | None = None
    # LlamaIndex node relationships, serialised (JSON-able); None for LangChain documents.
    relationships: dict[str, Any] | None = None


@dataclass
class Hit:
    """A search result. `score` is the engine's raw score (see README: Scores)."""

    record: Record
    score: float
    # Engine-specific extras (distance, explain score, ...), kept for callers that want them.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Group:
    """Hits that share a value of the grouping field."""

    key: Any
    hits: list[Hit]


def check_record(record: Record, dim: int | None = None) -> None:
    """Reject what an engine would store badly or refuse half-way through a batch."""
    check_records([record], dim)


def check_records(records: Sequence[Record], dim: int | None = None) -> None:
    """`check_record` for a batch."""
    vectors = []
    for record in records:
        if not isinstance(record.id, str) or not record.id:
            raise ValueError(f"record id must be a non-empty string, got {record.id!r}")
        if not isinstance(record.text, str):
            raise TypeError(
                f"text of record {record.id!r} must be a str, got {type(record.text).__name__}")
        if not isinstance(record.metadata, dict):
            raise TypeError(f"metadata of record {record.id!r} must be a dict")
        try:
            _STRICT_JSON.encode(record.metadata)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"metadata of record {record.id!r} is not JSON-serialisable: {exc}") from exc
        if record.vector is not None:
            if dim is not None and len(record.vector) != dim:
                raise ValueError(
                    f"vector of record {record.id!r} has {len(record.vector)} dimensions, "
                    f"the collection expects {dim}")
            vectors.append(record)
    for record in vectors:
        # sum() is finite for finite vectors (fast, in C); the exact check runs only when not
        if not math.isfinite(sum(record.vector or ())) and \
                not all(math.isfinite(x) for x in record.vector or ()):
            raise ValueError(f"vector of record {record.id!r} holds NaN or infinity")
