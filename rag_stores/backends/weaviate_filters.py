"""Filter tree -> Weaviate filter (semantics: rag_stores.core.filters; layout: weaviate_layout).

A comparison picks the property of its value's kind: eq "x" reads `md_<key>__s`, eq 3 reads
`md_<key>__n`, gt "2020-01-01" reads `md_<key>__d`. The record field DOC_ID (the user id)
becomes an id filter on `core.ids.to_point_id` of the value; REF_DOC_ID reads `ref_doc_id`.

Weaviate refuses a filter on a property the collection does not have, and a key's
properties appear only once a record wrote a value of that kind. Given the collection's
property names (`known_properties`), a comparison on a missing property is the constant
false (nothing holds that value), and constants fold: not false = true, `x or true` = true.
The result of `to_weaviate` is then:
- None: the filter matches every record (search without a filter);
- MATCH_NONE: it matches no record (the backend returns nothing without asking Weaviate,
  and delete_where deletes nothing);
- a Weaviate filter otherwise.
Without `known_properties` every property is assumed to exist. `needed_properties(node)`
names the properties a filter reads: a backend whose cached schema lacks one of them
should re-read the schema before translating (another writer may have added it).

Operator mapping: eq -> equal (on an array property: holds the value), in -> contains_any,
range -> greater_than/... (numbers, or datetimes on the DATE[] property), text_match ->
like("*value*") on the field-tokenized TEXT[] property (case-sensitive substring),
text_match_insensitive -> the same on the lowercased copy (kind "l"), exists ->
`metadata_keys` holds the key (so no null-state index is needed), Not -> Filter.not_ (the
complement over all objects, so ne / nin select records lacking the field).

What Weaviate cannot do exactly, raised as UnsupportedError: text matches on a value holding
`*` or `?` (`like` wildcards have no escape), or the U+E000 marker of `encode_text`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from weaviate.classes.query import Filter
from weaviate.collections.classes.filters import (
    _FilterAnd,
    _FilterNot,
    _FilterOr,
    _Filters,
    _FilterValue,
    _Operator,
)

from ..core.filters import DOC_ID, And, Field, FilterError, Node, Not, Or, parse_date
from ..core.query import UnsupportedError
from . import weaviate_layout as layout
from .filter_common import fold_and, fold_case, fold_or, normalize, point_ids, record_field


class MatchNone:
    """The filter that matches no record (see module doc)."""

    _instance: MatchNone | None = None

    def __new__(cls) -> MatchNone:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MATCH_NONE"


MATCH_NONE = MatchNone()
_RANGE = {"gt": "greater_than", "gte": "greater_or_equal", "lt": "less_than",
          "lte": "less_or_equal"}


def to_weaviate(node: Node | Any | None,
                known_properties: Collection[str] | None = None) -> _Filters | MatchNone | None:
    """Translate a filter tree; a native Weaviate filter passes through, its conditions on
    metadata keys mapped to the layout's properties (`native`)."""
    if node is None or isinstance(node, MatchNone):
        return node
    if not isinstance(node, (Field, And, Or, Not, _Filters)):
        raise FilterError(
            f"a filter tree or a Weaviate filter was expected, got {type(node).__name__} "
            "(parse dicts with rag_stores.core.filters.from_dict)"
        )
    known = None if known_properties is None else set(known_properties)
    result = (native(node, known) if isinstance(node, _Filters)
              else _translate(normalize(node), known))
    if result is True:
        return None
    if result is False:
        return MATCH_NONE
    return result


def _translate(node: Node, known: set[str] | None) -> _Filters | bool:
    if isinstance(node, (And, Or)):
        return _combine(isinstance(node, And), (_translate(c, known) for c in node.children))
    if isinstance(node, Not):
        return _negate(_translate(node.child, known))
    return _field(node, known)


# Native conditions -> filter tree operators (IsNull and Like are mapped apart).
_NATIVE_OPS = {_Operator.EQUAL: "eq", _Operator.NOT_EQUAL: "ne", _Operator.GREATER_THAN: "gt",
               _Operator.GREATER_THAN_EQUAL: "gte", _Operator.LESS_THAN: "lt",
               _Operator.LESS_THAN_EQUAL: "lte", _Operator.CONTAINS_ANY: "in",
               _Operator.CONTAINS_NONE: "nin", _Operator.CONTAINS_ALL: "all"}


def native(flt: _Filters, known: set[str] | None) -> _Filters | bool:
    """A native Weaviate filter on a collection of this layout: `Filter.by_property("page")`
    names a metadata key, whose values live in `md_<stem>__<kind>` properties, so each such
    condition is translated like the tree's Field("page", ...). Conditions on the layout's
    own properties (text, doc_id, md_..., ids) pass through as they are."""
    if isinstance(flt, (_FilterAnd, _FilterOr)):
        return _combine(isinstance(flt, _FilterAnd), (native(f, known) for f in flt.filters))
    if isinstance(flt, _FilterNot):
        return _negate(native(flt.filters[0], known))
    field = _native_field(flt)
    return flt if field is None else _translate(normalize(field), known)


def _native_leaves(flt: _Filters) -> list[Field]:
    """The conditions on metadata keys in a native filter, as tree Fields."""
    if isinstance(flt, (_FilterAnd, _FilterOr, _FilterNot)):
        return [f for child in flt.filters for f in _native_leaves(child)]
    field = _native_field(flt)
    return [] if field is None else [field]


def _native_field(flt: _Filters) -> Field | None:
    """A native condition on a metadata key as a tree Field; None for the layout's own
    properties (text, doc_id, md_...) and ids, which pass through."""
    key = getattr(flt, "target", None)
    if (not isinstance(flt, _FilterValue) or not isinstance(key, str)
            or key in layout.RESERVED or key.startswith((layout.PREFIX, "_"))):
        return None
    operator, value = flt.operator, flt.value

    def plain(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else v

    value = [plain(v) for v in value] if isinstance(value, list) else plain(value)
    if operator == _Operator.IS_NULL:
        return Field(key, "exists", not value)
    if operator == _Operator.LIKE and isinstance(value, str):
        inner = value.strip("*")
        if value == f"*{inner}*" and inner and "*" not in inner and "?" not in inner:
            return Field(key, "text_match", inner)
    op = _NATIVE_OPS.get(operator)
    if op is None or (isinstance(value, list) and op in {"eq", "ne", *_RANGE}):
        raise UnsupportedError(
            f"native Weaviate filter {operator.value} {value!r} on metadata key {key!r} has no "
            "translation to this collection's layout (metadata lives in md_<key>__<kind> "
            "properties): write it as a filter dict, e.g. {" + repr(key) + ": {\"$eq\": ...}}")
    return Field(key, op, value)


def _combine(conjunction: bool, parts: Iterable[_Filters | bool]) -> _Filters | bool:
    """And (or Or) of translated parts, constants folded (module doc)."""
    fold, combine = (fold_and, Filter.all_of) if conjunction else (fold_or, Filter.any_of)
    folded = fold(parts)
    return folded if isinstance(folded, bool) else _one(folded, combine)


def _negate(inner: _Filters | bool) -> _Filters | bool:
    return (not inner) if isinstance(inner, bool) else Filter.not_(inner)


def _one(parts: list[_Filters], combine: Any) -> _Filters:
    return parts[0] if len(parts) == 1 else combine(parts)


def _kind(value: Any) -> str:
    kind = layout.value_kind(value)
    assert kind is not None  # Field accepts scalars only
    return kind


def _field(field: Field, known: set[str] | None) -> _Filters | bool:
    key, op, value = field.key, field.op, field.value
    record = record_field(field)
    if key == DOC_ID:
        ids = point_ids(field)
        return Filter.by_id().contains_any(ids) if ids else False

    def on(kind: str, make: Any) -> _Filters | bool:
        """`make(property)` on the property of `kind` holding this key's values (layout)."""
        if record is not None:
            return make(record) if kind == "s" else False  # record fields hold strings only
        return _key_filter(key, kind, make, known)

    if op == "eq":
        return on(_kind(value), lambda name: Filter.by_property(name).equal(_stored(value)))
    if op == "in":
        by_kind: dict[str, list[Any]] = {}
        for v in value:
            by_kind.setdefault(_kind(v), []).append(_stored(v))
        return _combine(False, (on(kind, lambda name, vs=values: Filter.by_property(name)
                                   .contains_any(vs)) for kind, values in by_kind.items()))
    if op in _RANGE:
        operand: Any = parse_date(value) if isinstance(value, str) else float(value)
        return on("d" if isinstance(value, str) else "n",
                  lambda name: getattr(Filter.by_property(name), _RANGE[op])(operand))
    if op in ("text_match", "text_match_insensitive"):
        if "*" in value or "?" in value or layout.MARK in value:
            raise UnsupportedError(
                f"{op} on {key!r} with {value!r}: Weaviate's like has no escape for the "
                "wildcards * and ?"
            )
        insensitive = op == "text_match_insensitive"
        pattern = fold_case(value) if insensitive else value
        return on("l" if insensitive else "s",
                  lambda name: Filter.by_property(name).like(f"*{pattern}*"))
    if op == "exists":
        if known is not None and layout.METADATA_KEYS not in known:
            return not value
        holds = _holds(key)
        return holds if value else Filter.not_(holds)
    raise FilterError(f"operator {op!r} on {key!r} has no Weaviate translation")


def _holds(key: str) -> _Filters:
    """The record holds a value of metadata key `key` (`metadata_keys`)."""
    return Filter.by_property(layout.METADATA_KEYS).equal(layout.encode_text(key))


def _key_filter(key: str, kind: str, make: Any, known: set[str] | None) -> _Filters | bool:
    """`make(property)` on metadata key `key`'s property of `kind`, exact whatever the
    property names (layout module doc): on a hashed key, the record must also hold the key
    (two hashed keys can share a name); on a remapped key, records written with the 0.1.0
    mapping (holding the key, without the LAYOUT_V2 marker) are read from the old name."""
    def have(name: str) -> bool:
        return known is None or name in known

    branches: list[_Filters | bool] = []
    name = layout.property_for_key(key, kind)
    if have(name):
        branches.append(Filter.all_of([make(name), _holds(key)]) if layout.is_hashed(key)
                        else make(name))
    legacy = layout.legacy_property_for_key(key, kind)
    if legacy is not None and have(legacy):
        marked = Filter.by_property(layout.METADATA_KEYS).equal(layout.LAYOUT_V2)
        branches.append(Filter.all_of([make(legacy), _holds(key), Filter.not_(marked)]))
    folded = fold_or(branches)
    return folded if isinstance(folded, bool) else _one(folded, Filter.any_of)


def needed_properties(node: Node | Any | None) -> set[str]:
    """The property names the translation of `node` reads (to refresh a cached schema)."""
    if isinstance(node, _Filters):
        return set().union(*(_needed(normalize(f)) for f in _native_leaves(node)))
    if not isinstance(node, (Field, And, Or, Not)):
        return set()
    return _needed(normalize(node))


def _needed(node: Node) -> set[str]:
    if isinstance(node, (And, Or)):
        return set().union(*(_needed(c) for c in node.children))
    if isinstance(node, Not):
        return _needed(node.child)
    record = record_field(node)
    if record is not None:
        return set() if node.key == DOC_ID else {record}
    op, value = node.op, node.value
    if op == "exists":
        return {layout.METADATA_KEYS}
    if op in _RANGE:
        kinds = {"d" if isinstance(value, str) else "n"}
    elif op in ("text_match", "text_match_insensitive"):
        kinds = {"s" if op == "text_match" else "l"}
    else:
        kinds = {_kind(v) for v in (value if op == "in" else [value])}
    names = {layout.property_for_key(node.key, k) for k in kinds}
    if layout.is_hashed(node.key):
        names.add(layout.METADATA_KEYS)
    return names


def _stored(value: Any) -> Any:
    """A filter operand in the form the layout stores it."""
    if isinstance(value, str):
        return layout.encode_text(value)
    if isinstance(value, bool):
        return value
    return float(value)


def to_weaviate_flat(node: Node | Any | None, text_key: str = "text") -> _Filters | MatchNone | None:
    """A filter tree on a collection of the flat layout (weaviate_layout): each metadata key
    is the property of that name. A native Weaviate filter passes through untouched."""
    if node is None or isinstance(node, (_Filters, MatchNone)):
        return node
    if not isinstance(node, (Field, And, Or, Not)):
        raise FilterError(f"a filter tree or a Weaviate filter was expected, got "
                          f"{type(node).__name__}")
    result = _flat(normalize(node), text_key)
    return None if result is True else MATCH_NONE if result is False else result


def _flat(node: Node, text_key: str) -> _Filters | bool:
    if isinstance(node, (And, Or)):
        return _combine(isinstance(node, And), (_flat(c, text_key) for c in node.children))
    if isinstance(node, Not):
        return _negate(_flat(node.child, text_key))
    key, op, value = node.key, node.op, node.value
    if key == DOC_ID:
        ids = point_ids(node)
        return Filter.by_id().contains_any(ids) if ids else False
    prop = Filter.by_property(record_field(node) or key)  # $ref_doc_id: its property
    if op == "eq":
        return prop.equal(value)
    if op == "in":
        return prop.contains_any(list(value)) if value else False
    if op in _RANGE:
        return getattr(prop, _RANGE[op])(parse_date(value) if isinstance(value, str)
                                         and parse_date(value) else value)
    if op in ("text_match", "text_match_insensitive"):
        return prop.like(f"*{value}*")
    if op == "exists":
        return prop.is_none(not value)
    raise FilterError(f"operator {op!r} on {key!r} has no Weaviate translation")
