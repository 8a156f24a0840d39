"""Filter tree -> `qdrant_client.models.Filter` (semantics: rag_stores.core.filters).

Payload layout (DESIGN.md): metadata sits under `metadata_key` ("metadata"), or at the top
level of the payload when `metadata_key` is "" or None (llama-index-vector-stores-qdrant's
layout). The record field DOC_ID ("$doc_id", the user id) becomes `has_id` on the point ids
(`core.ids.to_point_id`), which holds in every layout; REF_DOC_ID ("$ref_doc_id") reads the
top-level payload key `ref_doc_id`.

Keys are literal: a key that is not a plain name ([A-Za-z_-][A-Za-z0-9_-]*, e.g. "a.b",
"release date", "über") is written as a quoted JSON-path segment (`metadata."a.b"`),
which Qdrant's server and local mode both read as one key. Neither parser has an escape,
so a key holding `"` or `\\` cannot be filtered: FilterError names it.

Operator mapping:
- eq: strings and bools use MatchValue; numbers use Range(gte=v, lte=v), so 1 matches a
  stored 1.0 (MatchValue is exact per type and takes no floats).
- range: numbers -> Range; ISO date strings -> DatetimeRange (Qdrant compares stored strings
  that parse as datetimes). One condition per operator, so on a list each bound may be met
  by a different element, as on Weaviate.
- in: MatchAny for the strings, one condition per number or bool, under `should`.
- text_match: MatchSubstring (case-sensitive substring; MatchText would be a token match).
- text_match_insensitive: an Or of MatchSubstring over every spelling of the value
  (filter_common.case_variants; UnsupportedError above MAX_CASE_VARIANTS spellings).
- exists: not IsEmpty (IsEmpty holds for missing, null and []).
- Not -> must_not, which also selects records that lack the field (ne / nin semantics).
A filter that can match nothing (e.g. `$in: []`) becomes `has_id: []`; one that matches
everything becomes None (no filter).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from qdrant_client import models

from ..core.filters import (
    DOC_ID,
    RANGE_OPERATORS,
    And,
    Field,
    FilterError,
    Node,
    Not,
    Or,
    parse_date,
)
from ..core.query import UnsupportedError
from .filter_common import (
    case_variants,
    fold_and,
    fold_or,
    normalize,
    point_ids,
    record_field,
)

_PLAIN_KEY = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*")
# Native condition types that may stand where a Filter is expected (wrapped in `must`).
_NATIVE_CONDITIONS = (
    models.FieldCondition, models.IsEmptyCondition, models.IsNullCondition,
    models.HasIdCondition, models.HasVectorCondition, models.NestedCondition,
)
_HEAD_SPELLINGS = 8

Condition = Any  # a models.Condition or a nested models.Filter
IdMap = Callable[[str], list[str]]


def key_path(key: str, metadata_key: str | None = "metadata") -> str:
    """The payload path Qdrant reads for metadata key `key` (quoted when not a plain name)."""
    if not _PLAIN_KEY.fullmatch(key):
        if '"' in key or "\\" in key:
            raise FilterError(
                f"metadata key {key!r} holds a quote or backslash, which Qdrant payload "
                "paths cannot express; it cannot be filtered on"
            )
        key = f'"{key}"'
    return f"{metadata_key}.{key}" if metadata_key else key


def to_qdrant(node: Node | Any | None, metadata_key: str | None = "metadata",
              to_ids: IdMap | None = None) -> models.Filter | None:
    """Translate a filter tree; a native Filter passes through untouched, None stays None.
    `to_ids`: the point ids of a user id, when not `core.ids.to_point_id` (tenant stores)."""
    if node is None or isinstance(node, models.Filter):
        return node
    if isinstance(node, _NATIVE_CONDITIONS):
        return models.Filter(must=[node])
    if not isinstance(node, (Field, And, Or, Not)):
        raise FilterError(
            f"a filter tree or a qdrant_client Filter was expected, got {type(node).__name__} "
            "(parse dicts with rag_stores.core.filters.from_dict)"
        )
    result = _translate(normalize(node), metadata_key, to_ids)
    if result is True:
        return None
    if result is False:
        return models.Filter(must=[models.HasIdCondition(has_id=[])])
    return result if isinstance(result, models.Filter) else models.Filter(must=[result])


def _translate(node: Node, metadata_key: str | None, to_ids: IdMap | None) -> Condition | bool:
    if isinstance(node, And):
        parts = fold_and(_translate(c, metadata_key, to_ids) for c in node.children)
        return parts if isinstance(parts, bool) else _one(parts, "must")
    if isinstance(node, Or):
        parts = fold_or(_translate(c, metadata_key, to_ids) for c in node.children)
        return parts if isinstance(parts, bool) else _one(parts, "should")
    if isinstance(node, Not):
        inner = _translate(node.child, metadata_key, to_ids)
        return (not inner) if isinstance(inner, bool) else models.Filter(must_not=[inner])
    return _field(node, metadata_key, to_ids)


def _one(conditions: list[Condition], clause: str) -> Condition:
    if len(conditions) == 1:
        return conditions[0]
    return models.Filter(must=conditions) if clause == "must" else models.Filter(should=conditions)


def _field(field: Field, metadata_key: str | None, to_ids: IdMap | None) -> Condition | bool:
    record = record_field(field)
    if field.key == DOC_ID:
        ids = point_ids(field, to_ids)
        return models.HasIdCondition(has_id=list(ids)) if ids else False
    path = record if record is not None else key_path(field.key, metadata_key)
    op, value = field.op, field.value
    if op == "eq":
        return _eq(path, value)
    if op == "in":
        strings = [v for v in value if isinstance(v, str)]
        parts: list[Condition] = [_eq(path, v) for v in value if not isinstance(v, str)]
        if strings:
            parts.insert(0, models.FieldCondition(key=path, match=models.MatchAny(any=strings)))
        return _one(parts, "should")
    if op in RANGE_OPERATORS:
        if isinstance(value, str):
            when = parse_date(value)
            assert when is not None  # checked by Field
            return models.FieldCondition(key=path, range=models.DatetimeRange(**{op: when}))
        return models.FieldCondition(key=path, range=models.Range(**{op: value}))
    if op == "text_match":
        return _substring(path, value)
    if op == "text_match_insensitive":
        spellings = case_variants(value)
        every = _one([_substring(path, v) for v in spellings], "should")
        if len(spellings) <= _HEAD_SPELLINGS:
            return every
        # Implied by `every`; local mode stops at the first failing `must` condition, so the
        # few spellings of the first characters rule most records out cheaply.
        head = _one([_substring(path, v) for v in case_variants(value[:3])], "should")
        return models.Filter(must=[head, every])
    if op == "exists":
        empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=path))
        return models.Filter(must_not=[empty]) if value else empty
    raise FilterError(f"operator {op!r} on {field.key!r} has no Qdrant translation")


def _substring(path: str, value: str) -> Condition:
    match = getattr(models, "MatchSubstring", None)
    if match is None:
        raise UnsupportedError(
            "text matches need qdrant_client.models.MatchSubstring, which this qdrant-client "
            "lacks (1.20.0 has it)"
        )
    return models.FieldCondition(key=path, match=match(substring=value))


def _eq(path: str, value: Any) -> Condition:
    if isinstance(value, (bool, str)):
        return models.FieldCondition(key=path, match=models.MatchValue(value=value))
    return models.FieldCondition(key=path, range=models.Range(gte=value, lte=value))
