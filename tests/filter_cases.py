"""Shared filter cases: a fixed dataset and the ids every filter must select on every engine.

Data only (plus `records()`), reused by tests/test_filters.py and the store conformance suite.
A case gives the same filter as a LangChain (Mongo-style) dict and/or as LlamaIndex
MetadataFilters; either may be None when that language cannot say it. TREE_CASES filter on
the record fields (DOC_ID, REF_DOC_ID), which only the tree can name.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llama_index.core.vector_stores.types import FilterCondition as C
from llama_index.core.vector_stores.types import FilterOperator as O
from llama_index.core.vector_stores.types import MetadataFilter as MF
from llama_index.core.vector_stores.types import MetadataFilters as MFS

from rag_stores.core.filters import DOC_ID, REF_DOC_ID, And, Field, Node
from rag_stores.core.records import Record

# id, text, metadata, ref_doc_id
DATASET: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("r01", "A cat sits on the mat", {
        "genre": "scifi", "year": 1999, "rating": 4.5, "published": True,
        "tags": ["space", "robots"], "author name": "Ann Lee", "release.date": "1999-03-31",
        "score-x": 10}, "docA"),
    ("r02", "Dragons and wizards", {
        "genre": "fantasy", "year": 2005, "rating": 3.0, "published": False, "tags": ["magic"],
        "author name": "Bob Stone", "release.date": "2005-07-16T10:00:00Z", "score-x": 3}, "docA"),
    ("r03", "Minds of silicon", {
        "genre": "scifi", "year": 2015, "rating": 4.9, "published": True, "tags": ["space", "ai"],
        "author name": "ann marie", "release.date": "2015-01-01T01:00:00+02:00"}, "docB"),
    ("r04", "A kitchen drama", {
        "genre": "drama", "year": 2015.0, "rating": 2, "published": True, "tags": ["family"],
        "author name": "Chloé Dupont"}, " docA"),
    ("r05", "Numbers written as text", {
        "genre": "Drama", "year": "2015", "rating": "4.5", "published": "true", "tags": "space"},
     None),
    ("r06", "Nulls and empties", {"genre": None, "year": None, "tags": [], "author name": ""}, None),
    ("r07", "No metadata at all", {}, None),
    ("r08", "Mixed lists and padding", {
        "genre": " scifi ", "tags": ["space", 7, True], "nested": {"a": 1}, "year": [2001, 2003]},
     None),
    ("r09", "Keys that differ by case", {
        "Genre": "SCIFI", "genre": "SciFi Classics", "release.date": "not a date", "score-x": 7.5},
     None),
    ("r10", "Star* wars?", {
        "genre": "sci*fi?", "year": 1977, "rating": 5, "published": False,
        "tags": ["space", "classic"]}, None),
]
ALL_IDS = [d[0] for d in DATASET]


def records() -> list[Record]:
    """The dataset as core records, with small distinct vectors (dimension 2)."""
    return [Record(id=i, text=t, metadata=dict(m), vector=[1.0, (n + 1) / 10], ref_doc_id=r)
            for n, (i, t, m, r) in enumerate(DATASET)]


def but(*ids: str) -> list[str]:
    """Every id except these."""
    return [i for i in ALL_IDS if i not in ids]


class FilterCase(NamedTuple):
    name: str
    langchain: dict[str, Any] | None
    llama: MFS | None
    expected: list[str]


def _l(*filters: MF | MFS, condition: C = C.AND) -> MFS:
    return MFS(filters=list(filters), condition=condition)


CASES: list[FilterCase] = [
    # eq and types: 1 == 1.0, "2015" != 2015, True != "true"
    FilterCase("eq_string", {"genre": "scifi"}, _l(MF(key="genre", value="scifi")), ["r01", "r03"]),
    FilterCase("eq_explicit", {"genre": {"$eq": "scifi"}},
               _l(MF(key="genre", value="scifi", operator=O.EQ)), ["r01", "r03"]),
    FilterCase("eq_int_matches_float", {"year": 2015}, _l(MF(key="year", value=2015)), ["r03", "r04"]),
    FilterCase("eq_float", {"rating": 4.5}, _l(MF(key="rating", value=4.5)), ["r01"]),
    FilterCase("eq_float_matches_int", {"rating": 2.0}, _l(MF(key="rating", value=2.0)), ["r04"]),
    FilterCase("eq_string_is_not_number", {"year": "2015"}, _l(MF(key="year", value="2015")), ["r05"]),
    FilterCase("eq_bool", {"published": True}, None, ["r01", "r03", "r04"]),
    FilterCase("eq_list_holds", {"tags": "space"}, _l(MF(key="tags", value="space")),
               ["r01", "r03", "r05", "r08", "r10"]),
    FilterCase("eq_mixed_list_number", {"tags": 7}, _l(MF(key="tags", value=7)), ["r08"]),
    FilterCase("eq_mixed_list_bool", {"tags": True}, None, ["r08"]),
    FilterCase("eq_padded_string", {"genre": " scifi "}, _l(MF(key="genre", value=" scifi ")), ["r08"]),
    FilterCase("eq_empty_string", {"author name": ""}, _l(MF(key="author name", value="")), ["r06"]),
    FilterCase("eq_wildcard_chars", {"genre": "sci*fi?"}, _l(MF(key="genre", value="sci*fi?")), ["r10"]),
    FilterCase("eq_nested_dict_never", {"nested": 1}, _l(MF(key="nested", value=1)), []),
    FilterCase("eq_unknown_key", {"nope": "x"}, _l(MF(key="nope", value="x")), []),
    FilterCase("eq_key_with_dot", {"release.date": "1999-03-31"},
               _l(MF(key="release.date", value="1999-03-31")), ["r01"]),
    FilterCase("keys_are_case_sensitive", {"Genre": "SCIFI"}, _l(MF(key="Genre", value="SCIFI")), ["r09"]),
    FilterCase("values_are_case_sensitive", {"genre": "SCIFI"}, _l(MF(key="genre", value="SCIFI")), []),
    # ne: selects records lacking the field; on a list, no element equals
    FilterCase("ne_string", {"genre": {"$ne": "scifi"}},
               _l(MF(key="genre", value="scifi", operator=O.NE)), but("r01", "r03")),
    FilterCase("ne_list", {"tags": {"$ne": "space"}},
               _l(MF(key="tags", value="space", operator=O.NE)), ["r02", "r04", "r06", "r07", "r09"]),
    FilterCase("ne_unknown_key", {"nope": {"$ne": "x"}},
               _l(MF(key="nope", value="x", operator=O.NE)), ALL_IDS),
    # ranges: numbers, and ISO dates (UTC when no offset)
    FilterCase("gt_int", {"year": {"$gt": 2005}}, _l(MF(key="year", value=2005, operator=O.GT)),
               ["r03", "r04"]),
    FilterCase("gte_int", {"year": {"$gte": 2005}}, _l(MF(key="year", value=2005, operator=O.GTE)),
               ["r02", "r03", "r04"]),
    FilterCase("lt_int_list_element", {"year": {"$lt": 2002}},
               _l(MF(key="year", value=2002, operator=O.LT)), ["r01", "r08", "r10"]),
    FilterCase("lte_float_bound", {"rating": {"$lte": 3.0}},
               _l(MF(key="rating", value=3.0, operator=O.LTE)), ["r02", "r04"]),
    FilterCase("range_between", {"year": {"$gt": 2000, "$lt": 2010}},
               _l(MF(key="year", value=2000, operator=O.GT), MF(key="year", value=2010, operator=O.LT)),
               ["r02", "r08"]),
    # each bound may hold for a different element of a list
    FilterCase("range_bounds_independent_on_list", {"year": {"$gt": 2002, "$lt": 2002.5}},
               _l(MF(key="year", value=2002, operator=O.GT), MF(key="year", value=2002.5, operator=O.LT)),
               ["r08"]),
    FilterCase("range_dash_key", {"score-x": {"$gte": 7}},
               _l(MF(key="score-x", value=7, operator=O.GTE)), ["r01", "r09"]),
    FilterCase("date_gt", {"release.date": {"$gt": "2005-01-01"}},
               _l(MF(key="release.date", value="2005-01-01", operator=O.GT)), ["r02", "r03"]),
    FilterCase("date_lt_offset", {"release.date": {"$lt": "2015-01-01T00:00:00Z"}},
               _l(MF(key="release.date", value="2015-01-01T00:00:00Z", operator=O.LT)),
               ["r01", "r02", "r03"]),
    FilterCase("date_lte_date_only", {"release.date": {"$lte": "1999-03-31"}},
               _l(MF(key="release.date", value="1999-03-31", operator=O.LTE)), ["r01"]),
    FilterCase("date_gte_minutes", {"release.date": {"$gte": "2005-07-16 10:00"}},
               _l(MF(key="release.date", value="2005-07-16 10:00", operator=O.GTE)), ["r02", "r03"]),
    # in / nin / contains / any / all
    FilterCase("in_strings", {"genre": {"$in": ["fantasy", "drama"]}},
               _l(MF(key="genre", value=["fantasy", "drama"], operator=O.IN)), ["r02", "r04"]),
    FilterCase("in_mixed_types", {"year": {"$in": [1999, "2015"]}}, None, ["r01", "r05"]),
    FilterCase("in_numbers", {"year": {"$in": [1977, 2003]}},
               _l(MF(key="year", value=[1977, 2003], operator=O.IN)), ["r08", "r10"]),
    FilterCase("in_list_field", {"tags": {"$in": ["ai", "magic"]}},
               _l(MF(key="tags", value=["ai", "magic"], operator=O.IN)), ["r02", "r03"]),
    FilterCase("in_empty", {"genre": {"$in": []}}, _l(MF(key="genre", value=[], operator=O.IN)), []),
    FilterCase("nin_strings", {"genre": {"$nin": ["scifi", "fantasy"]}},
               _l(MF(key="genre", value=["scifi", "fantasy"], operator=O.NIN)),
               but("r01", "r02", "r03")),
    FilterCase("nin_empty", {"genre": {"$nin": []}}, _l(MF(key="genre", value=[], operator=O.NIN)),
               ALL_IDS),
    FilterCase("contains", {"tags": {"$contains": "ai"}},
               _l(MF(key="tags", value="ai", operator=O.CONTAINS)), ["r03"]),
    FilterCase("contains_scalar_field", {"genre": {"$contains": "drama"}},
               _l(MF(key="genre", value="drama", operator=O.CONTAINS)), ["r04"]),
    FilterCase("any", {"tags": {"$any": ["robots", "classic"]}},
               _l(MF(key="tags", value=["robots", "classic"], operator=O.ANY)), ["r01", "r10"]),
    FilterCase("all", {"tags": {"$all": ["space", "ai"]}},
               _l(MF(key="tags", value=["space", "ai"], operator=O.ALL)), ["r03"]),
    FilterCase("all_mixed_types", {"tags": {"$all": ["space", 7]}}, None, ["r08"]),
    # text match: substring; the insensitive one ignores case
    FilterCase("text_match", {"author name": {"$like": "ann"}},
               _l(MF(key="author name", value="ann", operator=O.TEXT_MATCH)), ["r03"]),
    FilterCase("text_match_list_element", {"tags": {"$like": "obo"}},
               _l(MF(key="tags", value="obo", operator=O.TEXT_MATCH)), ["r01"]),
    FilterCase("text_match_keeps_spaces", {"genre": {"$like": " sci"}},
               _l(MF(key="genre", value=" sci", operator=O.TEXT_MATCH)), ["r08"]),
    FilterCase("text_match_insensitive", {"author name": {"$ilike": "ANN"}},
               _l(MF(key="author name", value="ANN", operator=O.TEXT_MATCH_INSENSITIVE)),
               ["r01", "r03"]),
    FilterCase("text_match_insensitive_accents", {"author name": {"$ilike": "CHLOÉ"}},
               _l(MF(key="author name", value="CHLOÉ", operator=O.TEXT_MATCH_INSENSITIVE)), ["r04"]),
    FilterCase("text_match_insensitive_long", {"author name": {"$ilike": "ANN MARIE"}},
               _l(MF(key="author name", value="ANN MARIE", operator=O.TEXT_MATCH_INSENSITIVE)), ["r03"]),
    FilterCase("text_match_insensitive_list", {"genre": {"$ilike": "SciF"}},
               _l(MF(key="genre", value="SciF", operator=O.TEXT_MATCH_INSENSITIVE)),
               ["r01", "r03", "r08", "r09"]),
    # exists: null and [] are no value; "" and {} are values
    FilterCase("exists_true", {"genre": {"$exists": True}}, None, but("r06", "r07")),
    FilterCase("exists_false", {"genre": {"$exists": False}},
               _l(MF(key="genre", value=None, operator=O.IS_EMPTY)), ["r06", "r07"]),
    FilterCase("exists_false_empty_list", {"tags": {"$exists": False}},
               _l(MF(key="tags", value=None, operator=O.IS_EMPTY)), ["r06", "r07", "r09"]),
    FilterCase("exists_empty_string", {"author name": {"$exists": True}}, None,
               ["r01", "r02", "r03", "r04", "r06"]),
    FilterCase("exists_nested_dict", {"nested": {"$exists": True}}, None, ["r08"]),
    FilterCase("exists_unknown_key", {"nope": {"$exists": False}},
               _l(MF(key="nope", value=None, operator=O.IS_EMPTY)), ALL_IDS),
    # and / or / not, nested
    FilterCase("implicit_and", {"genre": "scifi", "year": 1999},
               _l(MF(key="genre", value="scifi"), MF(key="year", value=1999)), ["r01"]),
    FilterCase("and", {"$and": [{"genre": "scifi"}, {"year": {"$gt": 2000}}]},
               _l(MF(key="genre", value="scifi"), MF(key="year", value=2000, operator=O.GT)), ["r03"]),
    FilterCase("or", {"$or": [{"genre": "fantasy"}, {"rating": {"$gte": 4.9}}]},
               _l(MF(key="genre", value="fantasy"), MF(key="rating", value=4.9, operator=O.GTE),
                  condition=C.OR), ["r02", "r03", "r10"]),
    FilterCase("not", {"$not": {"genre": "scifi"}},
               _l(MF(key="genre", value="scifi"), condition=C.NOT), but("r01", "r03")),
    FilterCase("not_any_of", {"$nor": [{"genre": "scifi"}, {"year": {"$lt": 2000}}]},
               _l(MF(key="genre", value="scifi"), MF(key="year", value=2000, operator=O.LT),
                  condition=C.NOT), but("r01", "r03", "r10")),
    FilterCase("field_not", {"year": {"$not": {"$gt": 2000}}},
               _l(MF(key="year", value=2000, operator=O.GT), condition=C.NOT),
               ["r01", "r05", "r06", "r07", "r09", "r10"]),
    FilterCase("nested", {"$or": [{"$and": [{"genre": "scifi"}, {"published": True}]},
                                  {"$not": {"tags": {"$exists": True}}}]}, None,
               ["r01", "r03", "r06", "r07", "r09"]),
    FilterCase("nested_llama", {"$and": [{"tags": {"$contains": "space"}},
                                         {"$or": [{"year": {"$gt": 2010}}, {"year": {"$lt": 1980}}]}]},
               _l(MF(key="tags", value="space", operator=O.CONTAINS),
                  _l(MF(key="year", value=2010, operator=O.GT), MF(key="year", value=1980, operator=O.LT),
                     condition=C.OR)),
               ["r03", "r10"]),
    FilterCase("nested_not_inside_or", {"$or": [{"genre": "drama"},
                                                {"$nor": [{"tags": {"$exists": False}}]}]},
               _l(MF(key="genre", value="drama"),
                  _l(MF(key="tags", value=None, operator=O.IS_EMPTY), condition=C.NOT), condition=C.OR),
               ["r01", "r02", "r03", "r04", "r05", "r08", "r10"]),
    FilterCase("or_with_empty_dict_matches_all", {"$or": [{}, {"genre": "x"}]}, None, ALL_IDS),
]


class TreeCase(NamedTuple):
    name: str
    tree: Node
    expected: list[str]


TREE_CASES: list[TreeCase] = [
    TreeCase("doc_id_eq", Field(DOC_ID, "eq", "r03"), ["r03"]),
    TreeCase("doc_id_in", Field(DOC_ID, "in", ["r01", "r10", "zz"]), ["r01", "r10"]),
    TreeCase("doc_id_nin", Field(DOC_ID, "nin", ["r01", "r10"]), but("r01", "r10")),
    TreeCase("ref_doc_id_eq", Field(REF_DOC_ID, "eq", "docA"), ["r01", "r02"]),
    TreeCase("ref_doc_id_padded", Field(REF_DOC_ID, "eq", " docA"), ["r04"]),
    TreeCase("ref_doc_id_ne", Field(REF_DOC_ID, "ne", "docA"), but("r01", "r02")),
    TreeCase("ref_doc_id_nin", Field(REF_DOC_ID, "nin", ["docA", "docB"]), but("r01", "r02", "r03")),
    TreeCase("ref_doc_id_and_metadata",
             And((Field(REF_DOC_ID, "eq", "docA"), Field("genre", "eq", "scifi"))), ["r01"]),
    TreeCase("doc_id_number_never", Field(DOC_ID, "eq", 3), []),
]
