"""Issue 25: metadata key names that collide on Weaviate, and non-finite query vectors.

Real engines only: the Weaviate server of tests/conftest.py, Qdrant local mode and Qdrant Edge.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
import weaviate
from weaviate.classes.config import Configure

from rag_stores.backends import weaviate_layout as layout
from rag_stores.backends.weaviate import WeaviateBackend
from rag_stores.core.filters import from_dict
from rag_stores.core.ids import to_point_id
from rag_stores.core.query import Query
from rag_stores.core.records import Record
from tests.conformance import Variant, fresh_name

_names = itertools.count()
VEC = [1.0, 0.0, 0.0, 0.0]
# The hashed stem of "Owner" is "owner_4b1b8aa3": rag-stores 0.1.0 kept that key as it is.
OWNER_ESCAPED = "owner_" + hashlib.sha256(b"Owner").hexdigest()[:8]


def old_key_stem(key: str) -> str:
    """The 0.1.0 mapping, copied here as it was (the persisted layout of old collections)."""
    stem = re.sub(r"[^a-z0-9_]", "_", key.lower())[:64]
    if stem != key:
        stem += "_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return stem


def old_object(doc_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    """The properties 0.1.0 wrote for a record of string metadata (layout of that version)."""
    props: dict[str, Any] = {layout.TEXT: doc_id, layout.DOC_ID: doc_id,
                             layout.METADATA_JSON: layout.json.dumps(metadata),
                             layout.METADATA_KEYS: list(metadata)}
    for key, value in metadata.items():
        stem = old_key_stem(key)
        props.setdefault(f"md_{stem}__s", []).append(value)
        props.setdefault(f"md_{stem}__l", []).append(value.lower())
    return props


# --- the key -> property mapping -----------------------------------------------------------
def test_the_mapping_is_injective_where_0_1_0_collided() -> None:
    assert OWNER_ESCAPED == "owner_4b1b8aa3" == old_key_stem("Owner")
    assert old_key_stem(OWNER_ESCAPED) == old_key_stem("Owner")  # the bug
    assert layout.key_stem(OWNER_ESCAPED) != layout.key_stem("Owner")
    keys = ["Owner", OWNER_ESCAPED, "owner", "OWNER", "own er", "x" * 64, "x" * 65,
            "x" * 65 + "_" + hashlib.sha256(b"x" * 65).hexdigest()[:8],
            old_key_stem("x" * 65), old_key_stem("A b"), "A b", "a_b", "a_0123456",
            "a_0123456g", "a_ABCDEF01", "tag_deadbeef", "_deadbeef"]
    stems = [layout.key_stem(k) for k in keys]
    assert len(set(stems)) == len(keys)
    for key, stem in zip(keys, stems, strict=True):
        kept = stem == key
        assert kept == (re.fullmatch(r"[a-z0-9_]{0,64}", key) is not None
                        and re.search(r"_[0-9a-f]{8}\Z", key) is None)
        assert kept or re.search(r"_[0-9a-f]{8}\Z", stem)  # kept stems never look hashed


def test_the_mapping_is_unchanged_for_every_key_that_could_not_collide() -> None:
    """Every key but safe ones ending in "_<8 hex>" keeps its 0.1.0 properties."""
    keys = ["year", "Year", "ye ar", "über", "", " ", "_", "a" * 200, "md_x", "x__s", "1st",
            "Owner", "tag_deadbee", "tag_deadbeeff", "TAG_DEADBEEF", "tag-deadbeef",
            "owner_4B1B8AA3"]
    for key in keys:
        assert layout.key_stem(key) == old_key_stem(key), key
        assert not layout.remapped(key) and layout.legacy_property_for_key(key, "s") is None
    for key in ("tag_deadbeef", OWNER_ESCAPED, "_00000000"):
        assert layout.remapped(key)
        assert layout.legacy_property_for_key(key, "n") == f"md_{old_key_stem(key)}__n"
    assert layout.present_keys({"a": 1}) == ["a"]
    assert layout.present_keys({"a": 1, OWNER_ESCAPED: "x"}) == ["a", OWNER_ESCAPED,
                                                                  layout.LAYOUT_V2]
    assert layout.LAYOUT_V2 not in {layout.encode_text(k) for k in
                                    (layout.LAYOUT_V2, layout.MARK, "layout:2")}


# --- on the engine -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(weaviate_server) -> Iterator[weaviate.WeaviateClient]:
    c = weaviate_server.connect()
    yield c
    c.close()


@pytest.fixture
def name(client) -> Iterator[str]:
    collection = f"WvSec{next(_names)}"
    yield collection
    client.collections.delete(collection)


def found(backend: WeaviateBackend, flt: dict) -> list[str]:
    return sorted(r.id for r in backend.scroll(from_dict(flt)))


@pytest.mark.weaviate
def test_colliding_keys_do_not_match_each_other(client, name) -> None:
    backend = WeaviateBackend(name, client=client, index="flat")
    backend.upsert([
        Record(id="owner", text="t", metadata={"Owner": "alice"}, vector=VEC),
        Record(id="escaped", text="t", metadata={OWNER_ESCAPED: "alice"}, vector=VEC),
        Record(id="both", text="t", metadata={"Owner": "bob", OWNER_ESCAPED: "carol"},
               vector=VEC),
        Record(id="none", text="t", metadata={"other": "alice"}, vector=VEC)])
    assert found(backend, {"Owner": "alice"}) == ["owner"]
    assert found(backend, {OWNER_ESCAPED: "alice"}) == ["escaped"]
    assert found(backend, {"Owner": {"$in": ["alice", "carol"]}}) == ["owner"]
    assert found(backend, {OWNER_ESCAPED: {"$in": ["bob", "carol"]}}) == ["both"]
    assert found(backend, {"Owner": {"$ne": "alice"}}) == ["both", "escaped", "none"]
    assert found(backend, {OWNER_ESCAPED: {"$like": "ali"}}) == ["escaped"]
    assert found(backend, {"Owner": {"$exists": True}}) == ["both", "owner"]
    assert backend.get(["both"])[0].metadata == {"Owner": "bob", OWNER_ESCAPED: "carol"}


@pytest.mark.weaviate
def test_a_collection_written_with_the_0_1_0_mapping_keeps_working(client, name) -> None:
    """Objects written in the 0.1.0 layout (raw weaviate-client writes), then read, filtered
    and extended through today's backend; the 0.1.0 collision is gone for filters too."""
    WeaviateBackend(name, client=client, index="flat").upsert(
        [Record(id="seed", text="t", metadata={}, vector=VEC)])  # today's base properties
    raw = client.collections.get(name)
    olds = {"old-owner": {"Owner": "alice"}, "old-escaped": {OWNER_ESCAPED: "alice"},
            "old-tag": {"tag_deadbeef": "red", "Year": "2001"}}
    objects = [(i, old_object(i, m)) for i, m in olds.items()]
    for prop in sorted({p for _, props in objects for p in props} - set(layout.RESERVED)):
        raw.config.add_property(layout.property_definition(prop))
    for doc_id, props in objects:
        raw.data.insert(properties=props, uuid=to_point_id(doc_id), vector=VEC)
    assert "md_owner_4b1b8aa3__s" in {p.name for p in raw.config.get().properties}
    # With 0.1.0, both "Owner" and "owner_4b1b8aa3" filters returned both records.
    backend = WeaviateBackend(name, client=client, index="flat")
    assert found(backend, {"Owner": "alice"}) == ["old-owner"]
    assert found(backend, {OWNER_ESCAPED: "alice"}) == ["old-escaped"]
    assert found(backend, {"tag_deadbeef": "red", "Year": "2001"}) == ["old-tag"]
    assert found(backend, {"tag_deadbeef": {"$ilike": "RE"}}) == ["old-tag"]
    assert found(backend, {"tag_deadbeef": {"$ne": "red"}}) == ["old-escaped", "old-owner", "seed"]
    assert {r.id: r.metadata for r in backend.get(list(olds))} == olds
    # New records beside the old ones: each filter finds its own key's records only.
    backend.upsert([
        Record(id="new-escaped", text="t", metadata={OWNER_ESCAPED: "alice"}, vector=VEC),
        Record(id="new-both", text="t", metadata={"Owner": "alice", OWNER_ESCAPED: "zed"},
               vector=VEC),
        Record(id="new-tag", text="t", metadata={"tag_deadbeef": "red"}, vector=VEC)])
    assert found(backend, {"Owner": "alice"}) == ["new-both", "old-owner"]
    assert found(backend, {OWNER_ESCAPED: "alice"}) == ["new-escaped", "old-escaped"]
    assert found(backend, {OWNER_ESCAPED: "zed"}) == ["new-both"]
    assert found(backend, {"tag_deadbeef": "red"}) == ["new-tag", "old-tag"]
    # Rewriting an old record moves it to today's layout, found the same.
    backend.upsert(backend.get(["old-escaped"], with_vectors=True))
    assert found(backend, {OWNER_ESCAPED: "alice"}) == ["new-escaped", "old-escaped"]
    assert found(backend, {"Owner": "alice"}) == ["new-both", "old-owner"]


# --- non-finite query vectors ----------------------------------------------------------------
ENGINES = ["qdrant-memory", "qdrant-edge", "weaviate"]


def _queries(bad: list[float]) -> list[tuple[Query, str]]:
    return [(Query(vector=bad), "query vector"),
            (Query(mode="hybrid", vector=bad, text="apple"), "query vector"),
            (Query(mode="mmr", vector=bad, fetch_k=3), "query vector"),
            (Query(mode="recommend", positive=["a", bad]), r"query positive\[1\]"),
            (Query(mode="recommend", positive=["a"], negative=[bad]), r"query negative\[0\]"),
            (Query(vector=bad, group_by="g"), "query vector")]


@pytest.mark.parametrize("variant", ENGINES, indirect=True)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_non_finite_query_vectors_are_refused_alike(variant: Variant, value: float,
                                                          sparse_encoder) -> None:
    backend = variant.make_backend(fresh_name("Nan"))
    texts = {"a": "apple pie", "b": "banana bread"}
    sparse = sparse_encoder.embed_documents(list(texts.values()))
    await variant.call(backend, "ensure_collection", 4, True)
    await variant.call(backend, "upsert", [
        Record(id=i, text=t, metadata={"g": i}, vector=[1.0, n, 0.0, 0.0], sparse=s)
        for n, ((i, t), s) in enumerate(zip(texts.items(), sparse, strict=True))])
    bad = [0.5, value, 0.0, 0.0]
    for query, name in _queries(bad):
        if query.mode == "hybrid":
            query.sparse = sparse_encoder.embed_query("apple")
        method = "search_groups" if query.group_by else "search"
        with pytest.raises(ValueError, match=rf"{name} must hold finite numbers; "
                                             rf"element 1 is {value!r}"):
            await variant.call(backend, method, query)
    # A finite vector still searches.
    hits = await variant.call(backend, "search", Query(vector=[0.5, 0.5, 0.0, 0.0], k=2))
    assert len(hits) == 2


def test_weaviate_alone_would_rank_by_nan(weaviate_server) -> None:
    """Why the check exists: the server itself answers a NaN near_vector with results."""
    with weaviate_server.connect() as c:
        name = f"WvSecRaw{next(_names)}"
        col = c.collections.create(name, vector_config=Configure.Vectors.self_provided())
        try:
            col.data.insert({"text": "x"}, vector=VEC)
            assert len(col.query.near_vector([math.nan, 0.0, 0.0, 0.0], limit=3).objects) == 1
        finally:
            c.collections.delete(name)
