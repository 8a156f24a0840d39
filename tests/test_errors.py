"""Bad input gets a clear error naming the parameter, the value and what is expected, on
every engine mode, and nothing stored changes."""

from __future__ import annotations

import pytest

from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore
from tests.conformance import Variant
from tests.test_conformance import FRUIT, TableEmbeddings, lc_store

DEEP: dict = {}
_level = DEEP
for _ in range(130):
    _level["a"] = {}
    _level = _level["a"]

CASES = [
    ("similarity_search", ("apple",), {"k": "3"}, ValueError, r"k must be an integer >= 1, got '3'"),
    ("similarity_search", ("apple",), {"k": 0}, ValueError, r"k must be an integer >= 1, got 0"),
    ("similarity_search_with_score", ("apple",), {"score_threshold": "high"}, ValueError,
     r"score_threshold must be a finite number, got 'high'"),
    ("max_marginal_relevance_search", ("apple",), {"fetch_k": "x"}, ValueError,
     r"fetch_k must be an integer >= 1, got 'x'"),
    ("max_marginal_relevance_search", ("apple",), {"lambda_mult": 2}, ValueError,
     r"lambda_mult must be in \[0, 1\], got 2"),
    ("similarity_search_by_vector", ([1.0, 2.0, 3.0],), {}, ValueError,
     r"the query vector has 3 dimensions; collection '\w+' holds 4-dim vectors"),
    ("add_texts", (["a"], ["not a dict"]), {}, TypeError,
     r"metadatas must be dicts \(or None\), got str 'not a dict'"),
    ("add_texts", (["a"],), {"ids": [""]}, ValueError,
     r"ids must be non-empty strings(, uuid.UUIDs or unsigned 64-bit ints)? "
     r"\(None: a generated id\), got ''"),
    ("add_texts", (["a", "b"],), {"ids": ["1"]}, ValueError, r"got 2 texts but 1 ids"),
    ("similarity_search", ("apple",), {"filter": {"n": {"$regex": "a"}}}, ValueError, r"\$regex"),
    # What some engine cannot store or read back is refused before any write (README:
    # Security model): Qdrant Edge took 130 levels and could then never read or reopen.
    ("add_texts", (["a"], [{"d": DEEP}]), {}, ValueError,
     r"metadata of record '[^']+' at \['d'\]\['a'\].*: nested deeper than 64 levels"),
    ("add_texts", (["a"], [{1: "x", "1": "y"}]), {}, TypeError,
     r"metadata of record '[^']+': key 1 is a int; metadata keys must be strings"),
    ("add_texts", (["a"], [{None: 1}]), {}, TypeError, r"key None is a NoneType"),
    ("add_texts", (["a"], [{"n": [1, {"x": 2**64}]}]), {}, ValueError,
     r"at \['n'\]\[1\]\['x'\]: integer 18446744073709551616 is outside the 64-bit range"),
    ("add_texts", (["a"], [{"n": float("nan")}]), {}, ValueError,
     r"at \['n'\]: nan is not a finite number"),
    ("add_texts", (["a"], [{"s": "ok \ud800"}]), {}, ValueError,
     r"at \['s'\] is not valid Unicode"),
    ("add_texts", (["a \udfff"],), {}, ValueError, r"text of record '[^']+' is not valid Unicode"),
    ("add_texts", (["a"], [{"when": {1, 2}}]), {}, TypeError, r"at \['when'\]: set \{1, 2\} is not JSON"),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "error", "message"), CASES,
                         ids=[f"{c[0]}-{sorted(c[2]) or 'args'}-{i}" for i, c in enumerate(CASES)])
async def test_bad_input_is_named_and_changes_nothing(variant: Variant, method, args, kwargs,
                                                      error, message) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT[:3], ids=FRUIT[:3])
    with pytest.raises(error, match=message):
        await variant.call(store, method, *args, **kwargs)
    assert await variant.call(store.backend, "count") == 3


def test_misspelled_store_options_are_named_with_the_close_match(weaviate_server) -> None:
    from rag_stores.llama_index import WeaviateVectorStore as LlamaWeaviate

    with pytest.raises(TypeError, match=r"'replicaton_factor'; did you mean 'replication_factor'"):
        QdrantVectorStore(TableEmbeddings(), "docs", replicaton_factor=3)
    with pytest.raises(TypeError, match=r"'replicaton_factor'; did you mean 'replication_factor'"):
        WeaviateVectorStore(TableEmbeddings(), "Docs", url=weaviate_server.url,
                            replicaton_factor=3)
    with pytest.raises(TypeError, match=r"'consistency_levl'; did you mean 'consistency_level'"):
        LlamaWeaviate("Docs", url=weaviate_server.url, consistency_levl="QUORUM")
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        QdrantVectorStore(TableEmbeddings(), "docs", batch_size=0)
