"""Filter parsing and translation, checked on the real engines.

Every case of tests/filter_cases.py runs as a LangChain dict and as LlamaIndex
MetadataFilters on Qdrant local mode (nested and flat payload layouts) and on a real
Weaviate server; each must select exactly the expected ids. A small Python reference of
the semantics (`_matches`) also checks the expected ids of the table itself.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import grpc
import pytest
from llama_index.core.vector_stores.types import (
    ExactMatchFilter,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_client.local import datetime_utils
from weaviate.classes.config import Configure
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter
from weaviate.collections.filters import _FilterToREST

from rag_stores.backends import weaviate_layout as layout
from rag_stores.backends.filter_common import MAX_CASE_VARIANTS, case_variants, fold_case
from rag_stores.backends.qdrant_filters import key_path, to_qdrant
from rag_stores.backends.weaviate_filters import MATCH_NONE, needed_properties, to_weaviate
from rag_stores.core.filters import (
    DOC_ID,
    REF_DOC_ID,
    And,
    Field,
    FilterError,
    Node,
    Not,
    Or,
    from_dict,
    from_llama,
    parse_date,
)
from rag_stores.core.ids import to_point_id
from rag_stores.core.query import UnsupportedError

from .filter_cases import CASES, DATASET, TREE_CASES

# --- reference semantics (core/filters.py docstring), used to check the table ------------


def _values(metadata: dict[str, Any], key: str) -> list[Any]:
    value = metadata.get(key)
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(stored, (int, float)) and isinstance(wanted, (int, float)):
        return stored == wanted
    return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted


def _fold(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _in_range(stored: Any, op: str, bound: Any) -> bool:
    if isinstance(bound, str):
        stored = parse_date(stored) if isinstance(stored, str) else None
        bound = parse_date(bound)
    elif isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return False
    if stored is None:
        return False
    return {"gt": stored > bound, "gte": stored >= bound, "lt": stored < bound,
            "lte": stored <= bound}[op]


def _matches(node: Node, rec: tuple[str, str, dict[str, Any], str | None]) -> bool:
    if isinstance(node, And):
        return all(_matches(c, rec) for c in node.children)
    if isinstance(node, Or):
        return any(_matches(c, rec) for c in node.children)
    if isinstance(node, Not):
        return not _matches(node.child, rec)
    assert isinstance(node, Field)
    doc_id, _, metadata, ref_doc_id = rec
    if node.key in (DOC_ID, REF_DOC_ID):
        metadata = {node.key: doc_id if node.key == DOC_ID else ref_doc_id}
    vals, op, value = _values(metadata, node.key), node.op, node.value
    if op in ("eq", "contains"):
        return any(_same(v, value) for v in vals)
    if op == "ne":
        return not any(_same(v, value) for v in vals)
    if op in ("in", "any"):
        return any(_same(v, w) for v in vals for w in value)
    if op == "nin":
        return not any(_same(v, w) for v in vals for w in value)
    if op == "all":
        return all(any(_same(v, w) for v in vals) for w in value)
    if op == "text_match":
        return any(isinstance(v, str) and value in v for v in vals)
    if op == "text_match_insensitive":
        return any(isinstance(v, str) and _fold(value) in _fold(v) for v in vals)
    if op == "exists":
        raw = metadata.get(node.key)
        return (raw is not None and raw != []) == value
    return any(_in_range(v, op, value) for v in vals)


def _forms() -> list[Any]:
    params = []
    for case in CASES:
        if case.langchain is not None:
            params.append(pytest.param(case, "langchain", id=f"{case.name}-langchain"))
        if case.llama is not None:
            params.append(pytest.param(case, "llama", id=f"{case.name}-llama"))
    return params


FORMS = _forms()


def _tree(case: Any, form: str) -> Node | None:
    return from_dict(case.langchain) if form == "langchain" else from_llama(case.llama)


@pytest.mark.parametrize(("case", "form"), FORMS)
def test_table_agrees_with_reference(case: Any, form: str) -> None:
    tree = _tree(case, form)
    selected = [r[0] for r in DATASET if tree is None or _matches(tree, r)]
    assert selected == sorted(case.expected)


@pytest.mark.parametrize("case", TREE_CASES, ids=[c.name for c in TREE_CASES])
def test_tree_table_agrees_with_reference(case: Any) -> None:
    assert [r[0] for r in DATASET if _matches(case.tree, r)] == sorted(case.expected)


# --- parsers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "named"), [
    ({"year": {"$regex": "x"}}, "$regex"),
    ({"$xor": [{"a": 1}]}, "$xor"),
    ({"year": {"$in": 2000}}, "year"),
    ({"year": {"$exists": "yes"}}, "year"),
    ({"year": {"$gt": "soon"}}, "ISO 8601"),
    ({"year": {"$gt": True}}, "year"),
    ({"year": {"$lt": [1, 2]}}, "year"),
    ({"tags": ["a", "b"]}, "tags"),
    ({"tags": {}}, "tags"),
    ({"rating": float("nan")}, "rating"),
    ({"author": {"$like": 3}}, "author"),
    ({"tags": {"$all": []}}, "tags"),
    ({"$and": []}, "$and"),
    ({"$not": {}}, "$not"),
    ({1: "x"}, "1"),
])
def test_from_dict_errors_name_the_problem(spec: dict[Any, Any], named: str) -> None:
    with pytest.raises(FilterError, match=re.escape(named)):
        from_dict(spec)


def test_from_dict_needs_a_dict() -> None:
    with pytest.raises(FilterError, match="list"):
        from_dict([{"a": 1}])  # type: ignore[arg-type]


def test_field_rejects_unknown_operator() -> None:
    with pytest.raises(FilterError, match="'bogus'"):
        Field("year", "bogus", 1)


def test_from_llama_rejects_unknown_operator_and_condition() -> None:
    class Item:
        key, value, operator = "year", 1, "regex"

    class Filters:
        filters, condition = [Item()], "and"

    with pytest.raises(FilterError, match="'regex'"):
        from_llama(Filters())
    bad = MetadataFilters(filters=[MetadataFilter(key="a", value=1)])
    object.__setattr__(bad, "condition", "xor")
    with pytest.raises(FilterError, match="'xor'"):
        from_llama(bad)
    with pytest.raises(FilterError, match="dict"):
        from_llama({"a": 1})


def test_from_llama_reads_legacy_exact_match_and_bad_values() -> None:
    assert from_llama(MetadataFilters(filters=[ExactMatchFilter(key="a", value="x")])) == Field("a", "eq", "x")
    with pytest.raises(FilterError, match="'in' on 'a'"):
        from_llama(MetadataFilters(filters=[MetadataFilter(key="a", value="x", operator=FilterOperator.IN)]))


def test_llama_not_means_none_match() -> None:
    tree = from_llama(MetadataFilters(
        filters=[MetadataFilter(key="a", value=1), MetadataFilter(key="b", value=2)], condition=FilterCondition.NOT))
    assert tree == Not(Or((Field("a", "eq", 1), Field("b", "eq", 2))))


def test_empty_filters_are_none() -> None:
    assert from_dict({}) is None
    assert from_dict({"$and": [{}]}) is None
    assert from_llama(MetadataFilters(filters=[])) is None
    assert to_qdrant(None) is None and to_weaviate(None) is None


@pytest.mark.parametrize("text", [
    "2020-01-02", "2020-01-02T03:04", "2020-01-02 03:04", "2020-01-02T03:04:05",
    "2020-01-02T03:04:05.5", "2020-01-02T03:04:05.123456789", "2020-01-02T03:04:05Z",
    "2020-01-02T03:04:05z", "2020-01-02T03:04:05+02:00", "2020-01-02T03:04:05-0330",
    "2020-01-02T03:04:05+05", "2020-01-02 03:04:05 +01:00", "2020-01-02T03:04:05 UTC",
    "  2020-01-02", "2020-01-02T03:04Z", "2020-02-30", "2020-01-02T25:00", "not a date",
    "2020-01-02 ", "20200102", "2020-01-02T03", "1999-12-31T23:59:59.999999+00:00",
])
def test_parse_date_agrees_with_qdrant(text: str) -> None:
    assert parse_date(text) == datetime_utils.parse(text)


# --- translation units ------------------------------------------------------------------


def test_qdrant_key_paths() -> None:
    assert key_path("year") == "metadata.year"
    assert key_path("score-x") == "metadata.score-x"
    assert key_path("release.date") == 'metadata."release.date"'
    assert key_path("2nd") == 'metadata."2nd"'
    assert key_path("a b", metadata_key=None) == '"a b"'
    for bad in ('say "hi"', "back\\slash"):
        with pytest.raises(FilterError, match=re.escape(repr(bad))):
            key_path(bad)


def test_reserved_keys_and_record_field_operators() -> None:
    for translate in (to_qdrant, to_weaviate):
        with pytest.raises(FilterError, match=re.escape("'$other'")):
            translate(Field("$other", "eq", 1))
        with pytest.raises(FilterError, match="'gt'"):
            translate(Field(REF_DOC_ID, "gt", 1))
        with pytest.raises(FilterError, match="dict"):
            translate({"genre": "x"})


def test_native_filters_pass_through() -> None:
    q = models.Filter(must=[models.FieldCondition(key="x", match=models.MatchValue(value=1))])
    assert to_qdrant(q) is q
    for w in (Filter.by_property("md_x__n").equal(1), Filter.by_id().equal(str(uuid.uuid4())),
              Filter.by_property(layout.REF_DOC_ID).equal("d")):
        assert to_weaviate(w) is w  # the layout's own properties and ids: as they are
    # a metadata key: its layout property (README: a native filter on our collections)
    assert _wire(to_weaviate(Filter.by_property("x").equal(1))) == _wire(
        to_weaviate(Field("x", "eq", 1)))
    for bad in (Filter.by_property("x").like("a*b"), Filter.by_property("x").equal([1, 2])):
        with pytest.raises(UnsupportedError, match="metadata key 'x'.*filter dict"):
            to_weaviate(bad)
    cond = models.IsEmptyCondition(is_empty=models.PayloadField(key="x"))
    assert to_qdrant(cond) == models.Filter(must=[cond])


def test_weaviate_constants() -> None:
    assert to_weaviate(Field("a", "eq", 1), known_properties=set()) is MATCH_NONE
    assert to_weaviate(Field("a", "ne", 1), known_properties=set()) is None
    assert to_weaviate(from_dict({"$or": [{"a": 1}, {"b": {"$nin": ["x"]}}]}), known_properties=set()) is None
    assert to_qdrant(Field("a", "in", [])) == models.Filter(must=[models.HasIdCondition(has_id=[])])
    assert to_qdrant(Field("a", "nin", [])) is None


def _wire(flt: Any) -> Any:
    """A Weaviate filter as the client sends it (filters have no equality of their own)."""
    return _FilterToREST.convert(flt) if flt not in (None, MATCH_NONE) else flt


@pytest.mark.parametrize(("case", "form"), FORMS)
def test_needed_properties_cover_the_translation(case: Any, form: str) -> None:
    tree = _tree(case, form)
    assert _wire(to_weaviate(tree, needed_properties(tree))) == _wire(to_weaviate(tree))


def test_case_variants_and_qdrant_limit() -> None:
    assert sorted(case_variants("a1")) == ["A1", "a1"]
    assert len(case_variants("é-z")) == 4
    assert sorted(case_variants("k")) == ["K", "k", "\u212a"]  # KELVIN SIGN folds to k
    letters = "x" * (int(math.log2(MAX_CASE_VARIANTS)) + 1)
    with pytest.raises(UnsupportedError, match="text_match_insensitive"):
        to_qdrant(Field("k", "text_match_insensitive", letters))
    assert to_weaviate(Field("k", "text_match_insensitive", letters)) is not None


def test_weaviate_like_wildcards_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="wildcards"):
        to_weaviate(Field("genre", "text_match", "i*f"))


# --- layout -----------------------------------------------------------------------------

_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def test_property_names_are_valid_distinct_and_deterministic() -> None:
    keys = ["year", "Year", "YEAR", "ye ar", "ye-ar", "ye_ar", "ye.ar", "", " ", "_", "über",
            "a" * 200, "a" * 201, "text", "doc_id", "md_x", "x__s", "1st"]
    names = [layout.property_for_key(k, kind) for k in keys for kind in layout.KINDS]
    assert len({n.lower() for n in names}) == len(names)  # Weaviate compares names case-insensitively
    assert all(_GRAPHQL_NAME.fullmatch(n) for n in names)
    assert not set(names) & layout.RESERVED
    assert layout.property_for_key("year", "n") == "md_year__n"
    assert layout.property_for_key("Year", "n") == layout.property_for_key("Year", "n")
    with pytest.raises(ValueError, match="'x'"):
        layout.property_for_key("year", "x")


def test_filterable_properties_and_round_trip() -> None:
    metadata = {"tags": ["a", 2, True, None, {"x": 1}], "when": "2020-01-02", "pad": " p ",
                "nested": {"a": 1}, "none": None, "empty": []}
    props = layout.filterable_properties(metadata)
    p = layout.property_for_key
    padded = layout.MARK + " p " + layout.MARK
    assert props == {p("tags", "s"): ["a"], p("tags", "l"): ["a"], p("tags", "n"): [2.0],
                     p("tags", "b"): [True], p("when", "s"): ["2020-01-02"],
                     p("when", "l"): ["2020-01-02"], p("when", "d"): ["2020-01-02T00:00:00.000000Z"],
                     p("pad", "s"): [padded], p("pad", "l"): [padded]}
    assert layout.filterable_properties({"A": "Kelvin \u212a"})[p("A", "l")] == ["kelvin k"]
    assert layout.present_keys(metadata) == ["tags", "when", "pad", "nested"]
    obj = layout.object_properties("t", metadata, " id ", ref_doc_id="r", relationships={"1": "x"})
    assert layout.record_fields(obj) == {"doc_id": " id ", "text": "t", "metadata": metadata,
                                         "ref_doc_id": "r", "relationships": {"1": "x"}}
    for s in ["", " ", "x", " x", layout.MARK, layout.MARK + "x" + layout.MARK]:
        assert layout.decode_text(layout.encode_text(s)) == s


# --- engines ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["local", "edge", "server", "server-grpc"])
def qdrant(request) -> Iterator[QdrantClient]:
    """The dataset in Qdrant local mode, Qdrant Edge (through the backend's qdrant-client-shaped
    EdgeClient), and on the real server over REST and gRPC."""
    if request.param == "local":
        client = QdrantClient(":memory:")
    elif request.param == "edge":
        from rag_stores.backends.qdrant_edge import EdgeClient

        client = EdgeClient()  # type: ignore[assignment]  # a temporary folder
    else:
        client = request.getfixturevalue("qdrant_server").connect(request.param == "server-grpc")
        for name in ("nested", "flat"):
            if client.collection_exists(name):
                client.delete_collection(name)
    for name, nested in (("nested", True), ("flat", False)):
        client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
        points = []
        for n, (doc_id, text, metadata, ref) in enumerate(DATASET):
            fields = {"text": text, "doc_id": doc_id, "ref_doc_id": ref}
            payload = {**fields, "metadata": metadata, "relationships": None} if nested else {**metadata, **fields}
            points.append(models.PointStruct(id=to_point_id(doc_id), vector=[1.0, (n + 1) / 10], payload=payload))
        client.upsert(name, points)
    yield client
    client.close()


def _qdrant_ids(client: QdrantClient, collection: str, flt: models.Filter | None) -> list[str]:
    points, _ = client.scroll(collection, scroll_filter=flt, limit=100)
    return sorted(p.payload["doc_id"] for p in points if p.payload)


def _server_lacks_substring(client: QdrantClient, case_name: str) -> bool:
    """The tested Qdrant server (1.18.3) predates MatchSubstring: it refuses the request,
    which the backend turns into UnsupportedError (test_qdrant_server.py)."""
    if not isinstance(client, QdrantClient) or client.init_options.get("url") is None \
            or not case_name.startswith("text_match"):
        return False
    return True


@pytest.fixture(scope="module")
def weaviate_collection(weaviate_server: Any) -> Iterator[tuple[Any, set[str]]]:
    """The dataset in a Weaviate collection laid out by weaviate_layout, and its property names."""
    client = weaviate_server.connect()
    try:
        name = "Filters_" + uuid.uuid4().hex[:8]
        collection = client.collections.create(
            name, vector_config=Configure.Vectors.self_provided(), properties=layout.base_properties())
        objects = [DataObject(properties=layout.object_properties(text, metadata, doc_id, ref_doc_id=ref),
                              uuid=to_point_id(doc_id), vector=[1.0, (n + 1) / 10])
                   for n, (doc_id, text, metadata, ref) in enumerate(DATASET)]
        names = [p for o in objects for p in o.properties]  # type: ignore[union-attr]
        existing = [p.name for p in collection.config.get().properties]
        for prop in layout.missing_properties(names, existing):
            collection.config.add_property(prop)
        result = collection.data.insert_many(objects)
        assert not result.errors, result.errors
        known = {p.name for p in collection.config.get().properties}
        yield collection, known
        client.collections.delete(name)
    finally:
        client.close()


def _weaviate_ids(collection: Any, flt: Any) -> list[str]:
    if flt is MATCH_NONE:
        return []
    result = collection.query.fetch_objects(filters=flt, limit=100, return_properties=[layout.DOC_ID])
    return sorted(layout.decode_text(o.properties[layout.DOC_ID]) for o in result.objects)


@pytest.mark.parametrize(("case", "form"), FORMS)
def test_qdrant_selects_expected(qdrant: QdrantClient, case: Any, form: str) -> None:
    tree = _tree(case, form)
    if _server_lacks_substring(qdrant, case.name):
        with pytest.raises((UnexpectedResponse, grpc.RpcError)):
            _qdrant_ids(qdrant, "nested", to_qdrant(tree))
        return
    assert _qdrant_ids(qdrant, "nested", to_qdrant(tree)) == sorted(case.expected)
    assert _qdrant_ids(qdrant, "flat", to_qdrant(tree, metadata_key="")) == sorted(case.expected)


@pytest.mark.parametrize("case", TREE_CASES, ids=[c.name for c in TREE_CASES])
def test_qdrant_record_fields(qdrant: QdrantClient, case: Any) -> None:
    assert _qdrant_ids(qdrant, "nested", to_qdrant(case.tree)) == sorted(case.expected)
    assert _qdrant_ids(qdrant, "flat", to_qdrant(case.tree, metadata_key=None)) == sorted(case.expected)


@pytest.mark.weaviate
@pytest.mark.parametrize(("case", "form"), FORMS)
def test_weaviate_selects_expected(weaviate_collection: Any, case: Any, form: str) -> None:
    collection, known = weaviate_collection
    flt = to_weaviate(_tree(case, form), known_properties=known)
    assert _weaviate_ids(collection, flt) == sorted(case.expected)


@pytest.mark.weaviate
@pytest.mark.parametrize("case", TREE_CASES, ids=[c.name for c in TREE_CASES])
def test_weaviate_record_fields(weaviate_collection: Any, case: Any) -> None:
    collection, known = weaviate_collection
    assert _weaviate_ids(collection, to_weaviate(case.tree, known_properties=known)) == sorted(case.expected)


@pytest.mark.weaviate
def test_native_filters_select_the_same(qdrant: QdrantClient, weaviate_collection: Any) -> None:
    collection, known = weaviate_collection
    tree = from_dict({"genre": "scifi", "year": {"$gte": 2000}})
    expected = ["r03"]
    native_q = models.Filter(must=[
        models.FieldCondition(key="metadata.genre", match=models.MatchValue(value="scifi")),
        models.FieldCondition(key="metadata.year", range=models.Range(gte=2000))])
    native_w = (Filter.by_property(layout.property_for_key("genre", "s")).equal("scifi")
                & Filter.by_property(layout.property_for_key("year", "n")).greater_or_equal(2000))
    for flt in (tree, native_q, to_qdrant(tree)):
        assert _qdrant_ids(qdrant, "nested", to_qdrant(flt)) == expected
    # the same native filter naming the metadata keys, as a user of the peers writes it
    by_key = Filter.by_property("genre").equal("scifi") & Filter.by_property("year").greater_or_equal(2000)
    for wflt in (tree, native_w, to_weaviate(tree, known), by_key):
        assert _weaviate_ids(collection, to_weaviate(wflt, known)) == expected
    pairs = [(Filter.by_property("tags").contains_any(["ai", "magic"]), {"tags": {"$in": ["ai", "magic"]}}),
             (Filter.by_property("author name").like("*ann*"), {"author name": {"$like": "ann"}}),
             (Filter.by_property("genre").is_none(False), {"genre": {"$exists": True}}),
             (Filter.not_(Filter.by_property("year").less_than(2000))
              | Filter.by_property("release.date").greater_than(datetime(2010, 1, 1, tzinfo=timezone.utc)),
              {"$or": [{"$not": {"year": {"$lt": 2000}}},
                       {"release.date": {"$gt": "2010-01-01T00:00:00+00:00"}}]})]
    for native, spec in pairs:
        assert needed_properties(native) == needed_properties(from_dict(spec))
        got = _weaviate_ids(collection, to_weaviate(native, known))
        assert got == _weaviate_ids(collection, to_weaviate(from_dict(spec), known)) and got


def test_qdrant_does_what_weaviate_cannot(qdrant: QdrantClient) -> None:
    """Substrings holding like's wildcards work on Qdrant (Weaviate raises, see above)."""
    if _server_lacks_substring(qdrant, "text_match"):
        pytest.skip("the tested Qdrant server has no MatchSubstring (checked above)")
    assert _qdrant_ids(qdrant, "nested", to_qdrant(Field("genre", "text_match", "i*f"))) == ["r10"]


@pytest.mark.parametrize("text", ["Title: A Tale", "path/To/FILE.md", "", "ΣΟΦΟΣ", "İstanbul",
                                  "Straße", "mixed ascii ΣΑΣ"])
def test_fold_case_lowercases_each_character_alone(text) -> None:
    """Stored lowercase keys must not depend on neighbours (final sigma) or change length
    (İ lowercases to two characters, so it stays as it is)."""
    folded = fold_case(text)
    assert len(folded) == len(text)
    assert folded == "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
