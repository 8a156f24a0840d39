"""One small filter language, parsed from LangChain dicts and LlamaIndex MetadataFilters.

Each backend translates the tree to its engine (backends/*_filters.py). A native
engine filter object is not a tree: backends pass it through untouched.

Semantics every backend implements identically (the conformance suite checks it):
- eq / ne / gt / gte / lt / lte compare a metadata field with a scalar;
  on a list field, eq means "the list holds the value".
- in / nin: the field's value (or any element of a list field) is / is not in the list.
- contains: a list field holds the value (LlamaIndex CONTAINS).
- any / all: a list field holds any / all of the values (LlamaIndex ANY / ALL).
- text_match / text_match_insensitive: the string field contains the substring
  (LlamaIndex TEXT_MATCH / TEXT_MATCH_INSENSITIVE; the second ignores case).
- exists: the field is present (value True) or absent (value False).
- ne and nin also select records that lack the field (as Mongo and LlamaIndex do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

OPERATORS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "any", "all", "text_match", "text_match_insensitive", "exists"}
)
RANGE_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
Scalar = Union[str, int, float, bool]


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


Node = Union[Field, And, Or, Not]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


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
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FilterError(f"operator {op!r} on {key!r} takes a number or an ISO date, got {value!r}")
    elif op in ("text_match", "text_match_insensitive"):
        if not isinstance(value, str):
            raise FilterError(f"text match on {key!r} takes a string, got {value!r}")
    elif not _is_scalar(value):
        raise FilterError(
            f"operator {op!r} on {key!r} takes a string, number or bool, got {type(value).__name__}"
        )


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
    "$like": "text_match", "$text": "text_match", "$all": "all", "$any": "any",
}


def from_dict(spec: Mapping[str, Any]) -> Node | None:
    """Parse `{"year": {"$gte": 2000}, "$or": [...]}`; `{"k": v}` is shorthand for `$eq`."""
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter dict was expected, got {type(spec).__name__}")
    nodes: list[Node] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{key} takes a non-empty list of filters")
            children = tuple(c for c in (from_dict(v) for v in value) if c is not None)
            nodes.append(And(children) if key == "$and" else Or(children))
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
        op_name = getattr(item.operator, "value", item.operator)
        if op_name not in _LLAMA_OPS:
            raise FilterError(f"filter operator {op_name!r} on {item.key!r} is not supported")
        op = _LLAMA_OPS[op_name]
        if op == "is_empty":
            children.append(Not(Field(item.key, "exists", True)))
        else:
            children.append(Field(item.key, op, _plain(item.value)))
    condition = getattr(filters.condition, "value", filters.condition) or "and"
    if not children:
        return None
    if condition == "not":
        return Not(children[0] if len(children) == 1 else And(tuple(children)))
    if condition not in ("and", "or"):
        raise FilterError(f"unknown filter condition {condition!r}")
    if len(children) == 1:
        return children[0]
    return And(tuple(children)) if condition == "and" else Or(tuple(children))
