"""How a record is laid out as Weaviate properties (persisted: change only with a migration).

Fixed properties (RESERVED; created with the collection, `base_properties()`):

| property             | type            | holds |
|----------------------|-----------------|-------|
| `text`               | TEXT (word)     | the text, BM25-searchable (not filterable) |
| `doc_id`             | TEXT (field)    | the user's id (points use `core.ids.to_point_id`) |
| `ref_doc_id`         | TEXT (field)    | LlamaIndex ref_doc_id, absent when None |
| `metadata_json`      | TEXT, no index  | `json.dumps(metadata)`: the exact copy every read returns |
| `relationships_json` | TEXT, no index  | LlamaIndex relationships as JSON, absent when None |
| `metadata_keys`      | TEXT[] (field)  | the metadata keys that hold a value (not null, not []): `exists` filters; `LAYOUT_V2` (below) |

Filterable metadata: each metadata key gets up to five properties, one per value kind,
all arrays so that a scalar and a list behave alike (eq on a list = "holds the value"):

| kind | property              | type        | values |
|------|-----------------------|-------------|--------|
| `s`  | `md_<stem>__s`        | TEXT[] (field tokenization, exact) | strings |
| `n`  | `md_<stem>__n`        | NUMBER[]    | ints and floats (1 == 1.0, as in JSON) |
| `b`  | `md_<stem>__b`        | BOOL[]      | bools |
| `d`  | `md_<stem>__d`        | DATE[]      | strings that are ISO 8601 dates (`core.filters.parse_date`), in UTC; also kept in `__s` |
| `l`  | `md_<stem>__l`        | TEXT[] (field) | the strings lowercased (`filter_common.fold_case`): text_match_insensitive |

A value goes to the property of its kind; a list is split by element kind, so a key that is
a number in one record and a string in another never breaks Weaviate's fixed property types.
Nested dicts, nested lists and nulls are not filterable on Weaviate (only in metadata_json);
`metadata_keys` still records the key as present.

Keyword-searchable metadata (opt-in, `searchable_keys`): the keys a backend declares also get

| kind | property              | type        | values |
|------|-----------------------|-------------|--------|
| `w`  | `md_<stem>__w`        | TEXT[] (word tokenization, BM25-searchable, not filterable) | strings |

so that BM25 (`Query.query_properties`) can read them beside `text`. Only declared keys get
one: a BM25 index costs space, and Weaviate properties cannot be removed, so keys are chosen
at construction. Filters never read `__w` (they read the exact `__s` copy). A key declared
on an existing collection gets its property on the next write; records written before keep
no `__w` copy until they are written again.

`<stem>` (`key_stem`): a key that is already a safe name (only [a-z0-9_], at most 64
characters) and does not end like a hashed stem ("_" + 8 lowercase hex digits) is its own
stem. Any other key is lowercased, every character outside [a-z0-9_] replaced by "_",
truncated to 64 characters, and "_" + 8 hex digits of the key's SHA-256 appended. Weaviate
property names are case-insensitively unique, hence the lowercasing; the hash keeps "Year",
"year" and "ye ar" apart. The mapping is injective by construction between the two forms: a
key kept as it is never ends in "_<8 hex>", a hashed stem always does, so no key can take
another key's hashed name (rag-stores 0.1.0 kept "owner_4b1b8aa3" as it is, sharing its
properties with "Owner", so a filter on one matched the other). Two hashed keys share a stem only if their 32-bit hash prefixes
collide (findable by brute force); filters on a hashed key therefore also require that the
record holds the key (`metadata_keys`), so a collision can never make a filter match a record
that lacks the key. User properties all start with `md_`, reserved ones never do, so they
cannot collide.

Collections written with the 0.1.0 mapping (`legacy_key_stem`) keep working: the two
mappings agree on every key except safe keys ending in "_<8 hex>" (the only keys that could
collide). A record holding such a key is written under the new stem, and its
`metadata_keys` also holds the marker `LAYOUT_V2` (an encoded key can never equal it). Filters
on such a key read the new property, or the old one in records that hold the key and lack the
marker (records written before): old records need no migration for filters. Grouping,
keyword search (`__w`) and generate placeholders on such a key read the new property only:
re-write records written before (e.g. `upsert(list(iter_records(with_vectors=True)))`) to
use them there.

Strings in `__s`, `doc_id`, `ref_doc_id` and `metadata_keys` pass through `encode_text`:
field tokenization trims surrounding whitespace, which would make " x" equal "x", so a string
with surrounding whitespace (or starting/ending with the marker U+E000) is wrapped in U+E000
markers; `decode_text` undoes it. Other strings are stored as they are.

Properties are never created by Weaviate's auto-schema (it would pick word tokenization):
the backend adds `property_definition(name)` for new names before inserting.

The flat layout (the peers': langchain-weaviate and llama-index-vector-stores-weaviate),
detected on open (a collection without `metadata_json`) and used in place: the text in the
property `text_key` (default "text"), every metadata key a property of its own named as the
key (Weaviate's auto-schema types it, as it does for the peers), the id the object's uuid
(no `doc_id`). llama-index-vector-stores-weaviate's nodes are metadata of this layout too
(`_node_content`, `_node_type`, `ref_doc_id`, `doc_id`, `document_id`: the facade maps them).
New collections take it only when a store is built with a peer's spellings.

The node form (llama-index-vector-stores-weaviate's objects): a flat object whose
`_node_content` holds the node as JSON (text left out: it is in `text_key`), beside
`_node_type`, and `doc_id` / `document_id` / `ref_doc_id` = the node's source document ("None"
when it has none, as the peer writes). Read back: the id, metadata and relationships come
from the JSON. A flat collection gets objects in this form when it already holds a
`_node_content` property or was opened with new_layout="llama" (`node_properties`); its new
collections are created from the peer's default schema (`llama_schema`).
Weaviate refuses the property names in `WEAVIATE_RESERVED` (`check_flat_keys`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import timezone
from typing import Any

from weaviate.classes.config import DataType, Property, Tokenization

from ..core.filters import parse_date
from .filter_common import fold_case

TEXT = "text"
DOC_ID = "doc_id"
REF_DOC_ID = "ref_doc_id"
METADATA_JSON = "metadata_json"
RELATIONSHIPS_JSON = "relationships_json"
METADATA_KEYS = "metadata_keys"
RESERVED = frozenset({TEXT, DOC_ID, REF_DOC_ID, METADATA_JSON, RELATIONSHIPS_JSON, METADATA_KEYS})
PREFIX = "md_"
KINDS = {"s": DataType.TEXT_ARRAY, "n": DataType.NUMBER_ARRAY, "b": DataType.BOOL_ARRAY,
         "d": DataType.DATE_ARRAY, "l": DataType.TEXT_ARRAY, "w": DataType.TEXT_ARRAY}
SEARCHABLE = "w"  # the kind of the keyword-searchable copy of declared keys
MARK = "\ue000"
_STEM_MAX = 64
_UNSAFE = re.compile(r"[^a-z0-9_]")
_HASHED = re.compile(r"_[0-9a-f]{8}\Z")  # how every hashed stem ends
# In `metadata_keys` of records written with a remapped key (module doc). encode_text wraps
# every string that starts with MARK, so no key is ever stored as this value.
LAYOUT_V2 = MARK + "layout:2"


def key_stem(key: str) -> str:
    """The deterministic, GraphQL-safe part of a metadata key's property names (injective
    but for 32-bit hash collisions between hashed keys; module doc)."""
    stem = _UNSAFE.sub("_", key.lower())[:_STEM_MAX]
    if stem != key or _HASHED.search(key):
        stem += "_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return stem


def is_hashed(key: str) -> bool:
    """Whether `key`'s stem carries a hash (filters then also check `metadata_keys`)."""
    return key_stem(key) != key


def legacy_key_stem(key: str) -> str:
    """The stem of the 0.1.0 mapping (keys ending in "_<8 hex>" were kept as they
    are, so "owner_4b1b8aa3" and "Owner" shared a stem); read for records written then."""
    stem = _UNSAFE.sub("_", key.lower())[:_STEM_MAX]
    if stem != key:
        stem += "_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return stem


def remapped(key: str) -> bool:
    """Whether `key`'s properties moved since the 0.1.0 mapping (module doc)."""
    return key_stem(key) != legacy_key_stem(key)


def legacy_property_for_key(key: str, kind: str) -> str | None:
    """The property the earlier mapping gave `key`, where it differs from today's (else None)."""
    if not remapped(key):
        return None
    property_for_key(key, kind)  # checks the kind
    return f"{PREFIX}{legacy_key_stem(key)}__{kind}"


def property_for_key(key: str, kind: str) -> str:
    """The property holding values of `kind` ("s", "n", "b", "d", "l", "w") of metadata key `key`."""
    if kind not in KINDS:
        raise ValueError(f"unknown value kind {kind!r}, expected one of {sorted(KINDS)}")
    return f"{PREFIX}{key_stem(key)}__{kind}"


def value_kind(value: Any) -> str | None:
    """"b", "n" or "s" for a filterable scalar, None otherwise (null, dict, list, inf)."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "n" if abs(value) < 1e308 else None
    if isinstance(value, float):
        return "n" if math.isfinite(value) else None
    if isinstance(value, str):
        return "s"
    return None


def encode_text(value: str) -> str:
    """The stored form of a string: wrapped when field tokenization would trim it."""
    if value != value.strip() or value.startswith(MARK) or value.endswith(MARK):
        return f"{MARK}{value}{MARK}"
    return value


def decode_text(value: str) -> str:
    if len(value) >= 2 and value.startswith(MARK) and value.endswith(MARK):
        return value[1:-1]
    return value


def date_value(value: str) -> str | None:
    """RFC 3339 UTC form of an ISO date string (what DATE properties take), else None."""
    when = parse_date(value)
    if when is None:
        return None
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def filterable_properties(metadata: Mapping[str, Any]) -> dict[str, list[Any]]:
    """`md_*` properties of one record's metadata (see module doc)."""
    props: dict[str, list[Any]] = {}
    for key, value in metadata.items():
        for item in value if isinstance(value, list) else [value]:
            kind = value_kind(item)
            if kind is None:
                continue
            stored: Any = float(item) if kind == "n" else item
            if kind == "s":
                stored = encode_text(item)
                props.setdefault(property_for_key(key, "l"), []).append(encode_text(fold_case(item)))
                date = date_value(item)
                if date is not None:
                    props.setdefault(property_for_key(key, "d"), []).append(date)
            props.setdefault(property_for_key(key, kind), []).append(stored)
    return props


def searchable_properties(metadata: Mapping[str, Any],
                          keys: Iterable[str]) -> dict[str, list[str]]:
    """`md_<stem>__w` properties: the strings of the declared `keys` (see module doc)."""
    props: dict[str, list[str]] = {}
    for key in keys:
        value = metadata.get(key)
        words = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        if words:
            props[property_for_key(key, SEARCHABLE)] = words
    return props


def present_keys(metadata: Mapping[str, Any]) -> list[str]:
    """The `metadata_keys` value: keys holding a value (not null, not an empty list), and
    `LAYOUT_V2` when one of them is remapped (module doc)."""
    keys = [k for k, v in metadata.items() if v is not None and v != []]
    marker = [LAYOUT_V2] if any(remapped(k) for k in keys) else []
    return [encode_text(k) for k in keys] + marker


def object_properties(text: str, metadata: Mapping[str, Any], doc_id: str,
                      ref_doc_id: str | None = None,
                      relationships: Mapping[str, Any] | None = None,
                      searchable_keys: Iterable[str] = ()) -> dict[str, Any]:
    """Every property of one record's Weaviate object (`__w` copies for `searchable_keys`)."""
    props: dict[str, Any] = {
        TEXT: text,
        DOC_ID: encode_text(doc_id),
        METADATA_JSON: json.dumps(metadata, ensure_ascii=False),
        METADATA_KEYS: present_keys(metadata),
        **filterable_properties(metadata),
        **searchable_properties(metadata, searchable_keys),
    }
    if ref_doc_id is not None:
        props[REF_DOC_ID] = encode_text(ref_doc_id)
    if relationships is not None:
        props[RELATIONSHIPS_JSON] = json.dumps(relationships, ensure_ascii=False)
    return props


def record_fields(props: Mapping[str, Any]) -> dict[str, Any]:
    """doc_id, text, metadata, ref_doc_id, relationships read back from an object's properties."""
    ref = props.get(REF_DOC_ID)
    rel = props.get(RELATIONSHIPS_JSON)
    return {
        "doc_id": decode_text(props[DOC_ID]),
        "text": props.get(TEXT) or "",
        "metadata": json.loads(props.get(METADATA_JSON) or "{}"),
        "ref_doc_id": decode_text(ref) if ref is not None else None,
        "relationships": json.loads(rel) if rel else None,
    }


def base_properties() -> list[Property]:
    """The fixed properties a new collection is created with."""
    return [property_definition(name) for name in
            (TEXT, DOC_ID, REF_DOC_ID, METADATA_JSON, RELATIONSHIPS_JSON, METADATA_KEYS)]


def property_definition(name: str) -> Property:
    """The Weaviate definition of a reserved or `md_*` property."""
    field = Tokenization.FIELD
    if name == TEXT:
        return Property(name=name, data_type=DataType.TEXT, tokenization=Tokenization.WORD,
                        index_searchable=True, index_filterable=False)
    if name in (DOC_ID, REF_DOC_ID):
        return Property(name=name, data_type=DataType.TEXT, tokenization=field,
                        index_searchable=False, index_filterable=True)
    if name in (METADATA_JSON, RELATIONSHIPS_JSON):
        return Property(name=name, data_type=DataType.TEXT, index_searchable=False,
                        index_filterable=False)
    if name == METADATA_KEYS:
        return Property(name=name, data_type=DataType.TEXT_ARRAY, tokenization=field,
                        index_searchable=False, index_filterable=True)
    kind = name.rpartition("__")[2]
    if not name.startswith(PREFIX) or kind not in KINDS:
        raise ValueError(f"{name!r} is not a property of the rag-stores layout")
    if kind == SEARCHABLE:
        return Property(name=name, data_type=KINDS[kind], tokenization=Tokenization.WORD,
                        index_searchable=True, index_filterable=False)
    return Property(name=name, data_type=KINDS[kind], index_searchable=False,
                    index_filterable=True, tokenization=field if kind in "sl" else None)


def missing_properties(names: Iterable[str], existing: Iterable[str]) -> list[Property]:
    """Definitions for the names a collection does not have yet (add them before inserting)."""
    have = set(existing)
    return [property_definition(n) for n in dict.fromkeys(names) if n not in have]


def flat_schema(name: str, text_key: str, multi_tenancy: bool | dict[str, Any]
                ) -> dict[str, Any]:
    """A new collection of the flat layout: the schema dict langchain-weaviate creates (its
    `MultiTenancyConfig` spelling, which the server reads; a dict is that config as given)."""
    enabled = bool(multi_tenancy)
    config = multi_tenancy if isinstance(multi_tenancy, dict) else {
        "enabled": enabled, "autoTenantCreation": enabled, "autoTenantActivation": enabled}
    return {"class": name, "properties": [{"name": text_key, "dataType": ["text"]}],
            "MultiTenancyConfig": config}


def schema_multi_tenant(schema: Mapping[str, Any]) -> bool:
    """Whether a schema dict enables multi-tenancy (either spelling of the key)."""
    config = schema.get("multiTenancyConfig") or schema.get("MultiTenancyConfig") or {}
    return bool(config.get("enabled")) if isinstance(config, Mapping) else False


def flat_properties(text_key: str, text: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A record's properties in the flat layout: the metadata as it is, the text beside it."""
    if text_key in metadata:
        raise ValueError(f"metadata key {text_key!r} is the text property of this collection "
                         "(text_key): rename the key")
    return {**metadata, text_key: text}


def flat_fields(text_key: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """text and metadata of an object of the flat layout; for the node form (module doc)
    also the id, ref_doc_id and relationships the node JSON holds."""
    metadata = dict(props)
    text = metadata.pop(text_key, None) or ""
    content = metadata.get(NODE_CONTENT)
    if not isinstance(content, str):
        return {"text": text, "metadata": metadata}
    try:
        node = json.loads(content)
    except ValueError:
        return {"text": text, "metadata": metadata}
    ref = props.get(REF_DOC_ID)
    return {"text": text or node.get("text") or "",
            "metadata": node.get("metadata") if isinstance(node.get("metadata"), dict) else
            {k: v for k, v in metadata.items() if k not in LLAMA_KEYS},
            "id": node.get("id_"), "ref_doc_id": ref if ref not in (None, "None") else None,
            "relationships": node.get("relationships") or None}


NODE_CONTENT = "_node_content"
# Properties of the node form that are not node metadata.
LLAMA_KEYS = frozenset({NODE_CONTENT, "_node_type", "doc_id", "document_id", "ref_doc_id"})
# Property names Weaviate refuses (its schema validation).
WEAVIATE_RESERVED = ("_additional", "_id", "id")


def node_properties(text_key: str, record_id: str, text: str, metadata: Mapping[str, Any],
                    ref_doc_id: str | None, relationships: Mapping[str, Any] | None
                    ) -> dict[str, Any]:
    """A record's properties in the node form (module doc), as the peer writes a node."""
    node = {"id_": record_id, "embedding": None, "metadata": dict(metadata),
            "relationships": dict(relationships or {}), "text": "", "class_name": "TextNode"}
    ref = str(ref_doc_id)  # "None" without one, as llama-index-vector-stores-weaviate
    return {**flat_properties(text_key, text, metadata), NODE_CONTENT: json.dumps(node),
            "_node_type": "TextNode", "doc_id": ref, "document_id": ref, "ref_doc_id": ref}


def check_flat_keys(text_key: str, record_id: str, uuid: str,
                    metadata: Mapping[str, Any]) -> None:
    """Refuse metadata keys Weaviate cannot take as properties (the flat layout), before
    anything is written; langchain-weaviate writes the others and logs the refusal."""
    where = record_id if record_id == uuid else f"{record_id} (uuid {uuid})"
    if text_key in metadata:
        raise ValueError(f"metadata key {text_key!r} of record {where} is the text property "
                         "of this collection (text_key): nothing was written; rename the key")
    for key in WEAVIATE_RESERVED:
        if key in metadata:
            raise ValueError(
                f"metadata key {key!r} of record {where} is a reserved "
                f"property name in Weaviate ({', '.join(WEAVIATE_RESERVED)}), and this "
                "collection keeps each metadata key as a property (the peers' flat layout): "
                "nothing was written; rename the key (langchain-weaviate would write the other "
                "records and only log this one)")


def llama_schema(name: str) -> dict[str, Any]:
    """A new collection of the node form: llama-index-vector-stores-weaviate's default schema,
    but its document ids exact (field tokenization: with the peer's word tokenization, a
    filter on "doc-a" also matches "doc-b")."""
    exact = [{"name": p, "dataType": ["text"], "tokenization": "field"}
             for p in (REF_DOC_ID, DOC_ID, "document_id")]
    return {"class": name, "description": f"Class for {name}",
            "properties": [{"name": TEXT, "dataType": ["text"]}, *exact,
                           *({"name": p, "dataType": ["text"]} for p in
                             ("node_info", "relationships"))]}
