"""Engine- and framework-neutral records: what a store keeps and what a search returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from embedders.sparse import SparseVector

from .ids import is_int_id

__all__ = ["Record", "Hit", "Group", "SparseVector", "check_record", "MAX_METADATA_DEPTH"]

# Limits of what a record may hold, the same on every engine (README: Security model).
# Depth: Qdrant's server refuses payloads nested ~128 deep, and Qdrant Edge accepts them and
# then can neither read the collection nor reopen its shard; 64 leaves room for our layout.
MAX_METADATA_DEPTH = 64
# Integers: Qdrant servers and Weaviate's filterable properties hold 64-bit integers; a larger
# one would come back as a rounded float (Qdrant) or fail half-way through a batch (Weaviate).
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


@dataclass
class Record:
    """One stored item. `id` is the user's id, whatever its form (see core.ids)."""

    id: str  # or an int on Qdrant: an unsigned 64-bit point id (core.ids.is_int_id)
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
        if not (isinstance(record.id, str) and record.id) and not is_int_id(record.id):
            raise ValueError(f"record id must be a non-empty string (or, on Qdrant, an "
                             f"unsigned 64-bit integer), got {record.id!r}")
        if not isinstance(record.text, str):
            raise TypeError(
                f"text of record {record.id!r} must be a str, got {type(record.text).__name__}")
        _check_string(record.text, record.id, "text", [])
        if not isinstance(record.metadata, dict):
            raise TypeError(f"metadata of record {record.id!r} must be a dict")
        check_json(record.metadata, record.id, "metadata")
        if record.relationships is not None:
            check_json(record.relationships, record.id, "relationships")
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


def _path(keys: Sequence[Any]) -> str:
    """A key path as Python would index it: ['a'][0]['b'] (long ones elided in the middle)."""
    parts = [f"[{k!r}]" for k in keys]
    if len(parts) > 8:
        parts = parts[:4] + [f"...({len(parts) - 6} more)..."] + parts[-2:]
    return "".join(parts)


def _where(record_id: str, part: str, keys: Sequence[Any]) -> str:
    return f"{part} of record {record_id!r}" + (f" at {_path(keys)}" if keys else "")


def _check_string(text: str, record_id: str, part: str, keys: Sequence[Any]) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates: no engine can store them
            raise ValueError(f"{_where(record_id, part, keys)} is not valid Unicode "
                             f"({exc.reason} at position {exc.start})") from None


def check_json(value: Any, record_id: str, part: str = "metadata") -> None:
    """Refuse what some engine cannot store or read back exactly, naming the key path:
    non-string keys, non-JSON values, NaN and infinity, integers beyond 64 bits, lone
    surrogates, nesting deeper than MAX_METADATA_DEPTH. One walk, no copy."""
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        item, keys = stack.pop()
        if isinstance(item, str):
            _check_string(item, record_id, part, keys)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not _INT_MIN <= item <= _INT_MAX:
                raise ValueError(f"{_where(record_id, part, keys)}: integer {item} is outside "
                                 "the 64-bit range every engine stores exactly; store it as a "
                                 "string")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{_where(record_id, part, keys)}: {item} is not a finite "
                                 "number (JSON has no NaN or infinity)")
        elif isinstance(item, (dict, list, tuple)):
            if len(keys) >= MAX_METADATA_DEPTH:
                raise ValueError(f"{_where(record_id, part, keys)}: nested deeper than "
                                 f"{MAX_METADATA_DEPTH} levels of dicts and lists; flatten it "
                                 "or store it as a JSON string")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise TypeError(f"{_where(record_id, part, keys)}: key {key!r} is a "
                                        f"{type(key).__name__}; metadata keys must be strings")
                    _check_string(key, record_id, part + " key", [*keys, key])
                    stack.append((child, [*keys, key]))
            else:
                stack.extend((child, [*keys, i]) for i, child in enumerate(item))
        else:
            raise TypeError(f"{_where(record_id, part, keys)}: {type(item).__name__} "
                            f"{item!r:.60} is not JSON (str, int, float, bool, None, dict, list)")
