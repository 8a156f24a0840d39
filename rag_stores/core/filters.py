"""One small filter language, parsed from LangChain dicts and LlamaIndex MetadataFilters.

Each backend translates the tree to its engine (backends/*_filters.py). A native
engine filter object is not a tree: backends pass it through untouched.

Semantics every backend implements identically (tests/test_filters.py runs every case of
tests/filter_cases.py on both engines):
- Keys name metadata keys literally: "a.b" is the key "a.b", never a nested path.
  Keys starting with "$" are reserved: DOC_ID ("$doc_id", the user id) and REF_DOC_ID
  ("$ref_doc_id") name the record's own fields and take eq / ne / in / nin only.
- eq / ne compare with a scalar; on a list field, eq means "the list holds the value".
  Values of different types never equal: 1 != "1", True != 1; 1 == 1.0.
- gt / gte / lt / lte: numbers compare with numbers; a string operand must be an ISO 8601
  date or datetime and compares with stored strings that are dates (UTC when no offset).
  On a list field each operator holds when some element satisfies it.
- in / nin: the field's value (or any element of a list field) is / is not in the list.
- contains: a list field holds the value (LlamaIndex CONTAINS); on a scalar field, = eq.
- any / all: a list field holds any / all of the values (LlamaIndex ANY / ALL).
- text_match: a string field (or an element of a list field) contains the substring,
  case-sensitively; text_match_insensitive ignores case (simple per-character case
  mapping). LlamaIndex TEXT_MATCH / TEXT_MATCH_INSENSITIVE.
- exists: the field holds a value (True) or not (False); a null value and an empty list
  count as no value.
- ne and nin also select records that lack the field (as Mongo and LlamaIndex do):
  ne = not eq, nin = not in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

OPERATORS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "any", "all", "text_match", "text_match_insensitive", "exists"}
)
RANGE_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
Scalar = str | int | float | bool
# Field keys that name a record's own fields rather than a metadata key (translators map them).
DOC_ID = "$doc_id"
REF_DOC_ID = "$ref_doc_id"
RECORD_FIELDS = {DOC_ID: "doc_id", REF_DOC_ID: "ref_doc_id"}


class FilterError(ValueError):
    """A filter that cannot be understood: names the operator or field."""


@dataclass(frozen=True)
class Field:
    key: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise FilterError(f"unknown filter operator {self.op!r} on field {self.key!r}")
        if not isinstance(self.key, str) or not self.key:
            raise FilterError(f"filter field name must be a non-empty string, got {self.key!r}")
        _check_value(self.key, self.op, self.value)


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Field | And | Or | Not


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def _check_value(key: str, op: str, value: Any) -> None:
    if op == "exists":
        if not isinstance(value, bool):
            raise FilterError(f"$exists on {key!r} takes true or false, got {value!r}")
    elif op in ("in", "nin", "any", "all"):
        if not isinstance(value, (list, tuple)) or not all(_is_scalar(v) for v in value):
            raise FilterError(f"operator {op!r} on {key!r} takes a list of scalars, got {value!r}")
        if op in ("any", "all") and not value:
            raise FilterError(f"operator {op!r} on {key!r} needs at least one value")
    elif op in RANGE_OPERATORS:
        if isinstance(value, bool) or not _is_scalar(value) or (
            isinstance(value, str) and parse_date(value) is None
        ):
            raise FilterError(
                f"operator {op!r} on {key!r} takes a number or an ISO 8601 date, got {value!r}"
            )
    elif op in ("text_match", "text_match_insensitive"):
        if not isinstance(value, str):
            raise FilterError(f"text match on {key!r} takes a string, got {value!r}")
    elif not _is_scalar(value):
        raise FilterError(
            f"operator {op!r} on {key!r} takes a string, number or bool, got {type(value).__name__}"
        )


# The date forms Qdrant parses (lib/segment types.rs, qdrant_client.local.datetime_utils):
# date, or date + time (T or space) with optional seconds and fraction; an offset (Z, +HH,
# +HHMM, +HH:MM, " UTC") only after seconds. No offset means UTC.
_DATE_RE = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?"
    r"(?: ?([Zz]|[+-]\d{2}(?::?\d{2})?)| UTC)?)?)?"
)


def parse_date(value: str) -> datetime | None:
    """The UTC datetime an ISO 8601 date string stands for, None if it is not one."""
    m = _DATE_RE.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    tz = timezone.utc
    if offset and offset not in "Zz":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))
    try:
        parsed = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz,
        )
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc)


def and_(*nodes: Node | None) -> Node | None:
    """Combine filters, dropping the empty ones."""
    kept = tuple(n for n in nodes if n is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(kept)


# --- LangChain / Mongo-style dicts -------------------------------------------------

_MONGO_OPS = {
    "$eq": "eq", "$ne": "ne", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte",
    "$in": "in", "$nin": "nin", "$contains": "contains", "$exists": "exists",
    "$like": "text_match", "$text": "text_match", "$ilike": "text_match_insensitive",
    "$all": "all", "$any": "any",
}


def from_dict(spec: Mapping[str, Any]) -> Node | None:
    """Parse `{"year": {"$gte": 2000}, "$or": [...]}`; `{"k": v}` is shorthand for `$eq`.

    >>> from_dict({"year": {"$gte": 2000}, "g": {"$in": ["a"]}})
    And(children=(Field(key='year', op='gte', value=2000), Field(key='g', op='in', value=['a'])))
    >>> from_dict({"genre": "drama"})
    Field(key='genre', op='eq', value='drama')
    """
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter dict was expected, got {type(spec).__name__}")
    nodes: list[Node] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise FilterError(f"filter field name must be a string, got {key!r}")
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{key} takes a non-empty list of filters")
            children = tuple(c for c in (from_dict(v) for v in value) if c is not None)
            if len(children) < len(value):
                # An empty dict matches everything: it makes $or always true, $and ignores it.
                if key == "$or":
                    continue
                if key == "$nor":
                    raise FilterError("$nor over an empty filter matches nothing; remove it")
            if not children:
                continue
            if key == "$and":
                nodes.append(And(children))
            else:
                nodes.append(Or(children) if key == "$or" else Not(Or(children)))
        elif key == "$not":
            child = from_dict(value)
            if child is None:
                raise FilterError("$not takes a non-empty filter")
            nodes.append(Not(child))
        elif key.startswith("$"):
            raise FilterError(f"unknown filter operator {key!r}")
        elif isinstance(value, Mapping):
            if not value:
                raise FilterError(f"empty condition for field {key!r}")
            for op, operand in value.items():
                if op == "$not":
                    inner = from_dict({key: operand if isinstance(operand, Mapping) else {"$eq": operand}})
                    assert inner is not None
                    nodes.append(Not(inner))
                elif op not in _MONGO_OPS:
                    raise FilterError(f"unknown filter operator {op!r} on field {key!r}")
                else:
                    nodes.append(Field(key, _MONGO_OPS[op], _plain(operand)))
        else:
            nodes.append(Field(key, "eq", _plain(value)))
    return and_(*nodes)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- LlamaIndex MetadataFilters (duck-typed: the core does not import llama_index) ---

_LLAMA_OPS: dict[str, str] = {
    "==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte",
    "in": "in", "nin": "nin", "contains": "contains", "any": "any", "all": "all",
    "text_match": "text_match", "text_match_insensitive": "text_match_insensitive", "is_empty": "is_empty",
}


def parse_any(filter: Any) -> Node | Any | None:
    """A filter in any form either framework face takes: None or {} (none), a LangChain dict,
    LlamaIndex `MetadataFilters` (known by its shape: `filters` and `condition`, so the core
    imports neither framework), a tree, or a native engine filter (passed through)."""
    if filter is None or (isinstance(filter, Mapping) and not filter):
        return None
    if isinstance(filter, Mapping):
        return from_dict(filter)
    if hasattr(filter, "filters") and hasattr(filter, "condition"):
        return from_llama(filter)
    return filter


def from_llama(filters: Any) -> Node | None:
    """Parse `MetadataFilters` (nested, every FilterCondition) into a tree."""
    items = getattr(filters, "filters", None)
    if items is None:
        raise FilterError(f"MetadataFilters expected, got {type(filters).__name__}")
    children: list[Node] = []
    for item in items:
        if hasattr(item, "filters"):
            sub = from_llama(item)
            if sub is not None:
                children.append(sub)
            continue
        # ExactMatchFilter (legacy) has no operator: it is an equality.
        operator = getattr(item, "operator", "==")
        op_name = getattr(operator, "value", operator)
        if op_name not in _LLAMA_OPS:
            raise FilterError(f"filter operator {op_name!r} on {item.key!r} is not supported")
        op = _LLAMA_OPS[op_name]
        if op == "is_empty":
            children.append(Not(Field(item.key, "exists", True)))
        else:
            children.append(Field(item.key, op, _plain(item.value)))
    condition = getattr(filters, "condition", None)
    condition = getattr(condition, "value", condition) or "and"
    if not children:
        return None
    if condition == "not":
        # LlamaIndex NOT: none of the filters match (its SimpleVectorStore and Qdrant store).
        return Not(children[0] if len(children) == 1 else Or(tuple(children)))
    if condition not in ("and", "or"):
        raise FilterError(f"unknown filter condition {condition!r}")
    if len(children) == 1:
        return children[0]
    return And(tuple(children)) if condition == "and" else Or(tuple(children))
