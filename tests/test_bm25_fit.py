"""BM25 done right: avg_len fitted to the collection and kept with it, tokenizer settings per
language, on every Qdrant engine (Weaviate ranks with its own BM25 index: nothing to fit).

Real engines (Qdrant local mode, Qdrant Edge, a Qdrant 1.18 server), real FastEmbed BM25.
"""

from __future__ import annotations

import pytest
from fastembed import SparseTextEmbedding

from embedders import SparseEncoder
from embedders.sparse_fit import METADATA_KEY, CollectionBM25, fitted
from rag_stores.langchain import BackendVectorStore
from rag_stores.llama_index import BackendLlamaStore
from tests.conformance import Variant, fresh_name

QDRANT = ["qdrant-memory", "qdrant-edge", "qdrant-server", "qdrant-server-grpc-async"]
qdrant_engines = pytest.mark.parametrize("variant", QDRANT, indirect=True)

SHORT = ["Cats sleep on mats", "Dogs bark", "Owls hunt at night in the woods"]
LONG = ["The library catalogue lists every book, journal and map the library holds, with "
        "its shelf, its subjects and the readers who borrowed it over the last ten years",
        "Indexing languages and thesauri for the retrieval of scientific documents"]


def lengths(encoder: SparseEncoder, texts: list[str]) -> list[int]:
    return [len(encoder.analyze(t)) for t in texts]


def test_vectors_match_fastembed_at_the_same_avg_len(sparse_encoder) -> None:
    raw = SparseTextEmbedding("Qdrant/bm25", specific_model_path=str(
        sparse_encoder.model.model._model_dir), avg_len=7.5)
    texts = SHORT + LONG
    want = list(raw.passage_embed(texts))
    got = sparse_encoder.embed_documents_with_avg_len(texts, 7.5)
    for w, g in zip(want, got, strict=True):
        assert dict(zip(g.indices, g.values, strict=True)) == pytest.approx(
            dict(zip(w.indices.tolist(), w.values.tolist(), strict=True)))
    assert sparse_encoder.analyze("The cats were sleeping!") == ["cat", "sleep"]


@qdrant_engines
async def test_avg_len_is_fitted_kept_and_shared(variant: Variant, lc_embeddings,
                                                 llama_embed_model, sparse_encoder) -> None:
    name = fresh_name("Fit")
    store = variant.lc_store(lc_embeddings, name, retrieval_mode="hybrid")
    assert isinstance(store.sparse_embedding, CollectionBM25)
    await variant.call(store, "add_texts", SHORT, ids=["s0", "s1", "s2"])
    short = lengths(sparse_encoder, SHORT)
    if variant.is_async and not store.backend.supports_sync:
        return  # async-only backends keep the totals in memory (module docstring)
    meta = store.backend.collection_metadata()[METADATA_KEY]
    assert (meta["docs"], meta["tokens"]) == (3, sum(short))
    assert meta["avg_len"] == pytest.approx(sum(short) / 3)
    assert meta["settings"]["language"] == "english" and meta["settings"]["stopwords"] > 100
    # The stored vectors use that avg_len, not FastEmbed's 256.
    stored = {r.id: r.sparse for r in store.backend.get(["s0"], with_vectors=True)}
    want = sparse_encoder.embed_documents_with_avg_len(SHORT[:1], sum(short) / 3)[0]
    assert dict(zip(stored["s0"].indices, stored["s0"].values, strict=True)) == pytest.approx(
        dict(zip(want.indices, want.values, strict=True)), rel=1e-6)
    # A reopened store on the other framework face adds to the same totals.
    llama = BackendLlamaStore(variant.make_backend(name), enable_hybrid=True)
    from llama_index.core.schema import TextNode

    nodes = [TextNode(id_=f"l{i}", text=t, embedding=llama_embed_model.get_text_embedding(t))
             for i, t in enumerate(LONG)]
    await variant.call(llama, "add", nodes)
    long = lengths(sparse_encoder, LONG)
    assert llama._sparse_encoder.avg_len == pytest.approx((sum(short) + sum(long)) / 5)
    assert store.sparse_embedding.avg_len == llama._sparse_encoder.avg_len
    # Keyword search finds the long documents by their words.
    from retrievers.langchain import BM25Retriever

    found = await variant.call(BM25Retriever(vectorstore=store, k=2), "invoke", "thesauri")
    assert [d.id for d in found][:1] == ["l1"]
    # refit re-encodes everything with today's mean.
    if store.backend.supports_sync:
        assert store.sparse_embedding.refit() == 5
        again = {r.id: r.sparse for r in store.backend.get(["s0"], with_vectors=True)}
        want = sparse_encoder.embed_documents_with_avg_len(SHORT[:1], (sum(short) + sum(long)) / 5)[0]
        assert dict(zip(again["s0"].indices, again["s0"].values, strict=True)) == pytest.approx(
            dict(zip(want.indices, want.values, strict=True)), rel=1e-6)


@pytest.mark.parametrize("variant", ["qdrant-memory", "qdrant-edge"], indirect=True)
def test_other_settings_are_refused_and_explicit_avg_len_is_kept(
        variant: Variant, lc_embeddings, sparse_encoder) -> None:
    name = fresh_name("Fit")
    store = BackendVectorStore(lc_embeddings, variant.make_backend(name), retrieval_mode="hybrid")
    store.add_texts(SHORT)
    other = SparseEncoder(stopwords=set())  # no stopwords: other tokens, other lengths
    mixed = BackendVectorStore(lc_embeddings, variant.make_backend(name), retrieval_mode="hybrid",
                               sparse_embedding=other)
    with pytest.raises(ValueError, match="other BM25 settings: stopwords"):
        mixed.add_texts(["more text"])
    with pytest.raises(ValueError, match="other BM25 settings"):
        mixed.sparse_embedding.embed_query("x")
    explicit = SparseEncoder(avg_len=40.0)
    assert fitted(explicit, variant.make_backend(name)) is explicit
    assert explicit.model.model.avg_len == 40.0


def test_languages_stem_and_need_their_stopwords(sparse_encoder) -> None:
    with pytest.raises(ValueError, match="no german stopword list"):
        SparseEncoder(language="german")
    german = SparseEncoder(language="german", stopwords={"der", "die", "das", "und"})
    assert german.analyze("Die Katzen und der Hund") == ["katz", "hund"]
    assert german.settings()["language"] == "german"
    bare = SparseEncoder(disable_stemmer=True)
    assert bare.analyze("The cats were sleeping") == ["the", "cats", "were", "sleeping"]
    assert bare.settings()["stemmer"] is None and sparse_encoder.settings()["stemmer"]


@pytest.mark.parametrize("variant", ["weaviate"], indirect=True)
def test_weaviate_keeps_its_own_bm25(variant: Variant, lc_embeddings) -> None:
    store = variant.lc_store(lc_embeddings, fresh_name("Fit"), retrieval_mode="hybrid")
    assert store.sparse_embedding is None
    assert fitted(SparseEncoder(), store.backend).__class__ is SparseEncoder


@pytest.mark.parametrize("variant", ["weaviate"], indirect=True)
def test_weaviate_bm25_settings(variant: Variant, lc_embeddings) -> None:
    """Weaviate's BM25 index takes its stopwords (preset or a list), k1 and b at creation."""
    from rag_stores.backends.weaviate import WeaviateBackend
    from retrievers.langchain import BM25Retriever

    texts = ["the cat", "a dog and the owl", "birds"]
    found = {}
    for name, bm25 in (("preset", None), ("none", {"stopwords": "none", "k1": 1.5, "b": 0.5}),
                       ("list", {"stopwords": ["dog", "owl"]})):
        backend = variant.make_backend(fresh_name("Bm"))
        if bm25 is not None:
            backend = WeaviateBackend(backend.collection_name, client=backend.client,
                                      index="flat", bm25=bm25)
        store = BackendVectorStore(lc_embeddings, backend, retrieval_mode="hybrid")
        store.add_texts(texts, ids=["cat", "dog", "birds"])
        found[name] = {q: [d.id for d in BM25Retriever(vectorstore=store, k=3).invoke(q)]
                       for q in ("the", "owl")}
        if name == "none":
            config = backend.client.collections.get(backend.collection_name).config.get()
            assert config.inverted_index_config.bm25.k1 == 1.5
            assert config.inverted_index_config.bm25.b == 0.5
    assert found["preset"] == {"the": [], "owl": ["dog"]}  # "the" is an English stopword
    assert set(found["none"]["the"]) == {"cat", "dog"}
    assert found["list"]["owl"] == [] and set(found["list"]["the"]) == {"cat", "dog"}
    with pytest.raises(ValueError, match="presets are 'en' and 'none'"):
        WeaviateBackend("X", client=backend.client, bm25={"stopwords": "de"})
    with pytest.raises(TypeError, match="no stemming"):
        WeaviateBackend("X", client=backend.client, bm25={"stemmer": "snowball"})


# --- tenants keep their own totals (issue 25) ---------------------------------------------
@pytest.fixture(params=["qdrant-memory", "qdrant-edge", "qdrant-server"])
def tenant_backend(request, tmp_path):
    """make(collection, tenant) -> a Qdrant `tenant=` backend; tenants share the collection."""
    from qdrant_client import QdrantClient

    from rag_stores.backends.qdrant import QdrantBackend

    made: list[QdrantBackend] = []
    if request.param == "qdrant-memory":
        client = QdrantClient(":memory:")
        options: dict = {"client": client}
    elif request.param == "qdrant-edge":
        client, options = None, {"engine": "edge", "path": str(tmp_path / "edge")}
    else:
        client, options = None, request.getfixturevalue("qdrant_server").connect_kwargs(False)

    def make(collection: str, tenant: str | None) -> QdrantBackend:
        made.append(QdrantBackend(collection, tenant=tenant, **options))
        return made[-1]

    yield make
    if request.param == "qdrant-server" and made and made[0].exists():
        QdrantBackend(made[0].collection_name, **options).drop()
    for backend in made:
        backend.close()
    if client is not None:
        client.close()


def test_tenants_keep_their_own_bm25_totals(tenant_backend, lc_embeddings,
                                            sparse_encoder) -> None:
    """Tenant b's avg_len does not move with tenant a's documents, and b's encoder never
    reads a's counts; each tenant's vectors use its own mean."""
    name = fresh_name("FitTenant")
    a = BackendVectorStore(lc_embeddings, tenant_backend(name, "a"), retrieval_mode="hybrid")
    b = BackendVectorStore(lc_embeddings, tenant_backend(name, "b"), retrieval_mode="hybrid")
    short, long = lengths(sparse_encoder, SHORT), lengths(sparse_encoder, LONG)
    b.add_texts(SHORT, ids=["s0", "s1", "s2"])
    before = b.sparse_embedding.stats()
    assert (before.docs, before.tokens) == (3, sum(short))
    a.add_texts(LONG * 3)  # a's documents are longer: a shared mean would move b's
    after = b.sparse_embedding.stats()
    assert (after.docs, after.tokens, after.avg_len) == (before.docs, before.tokens,
                                                         before.avg_len)
    assert a.sparse_embedding.stats().docs == 6
    assert a.sparse_embedding.avg_len == pytest.approx(sum(long) / 2)
    # b's next batch is encoded with b's own mean (3 + 1 documents), not a's.
    b.add_texts(SHORT[:1], ids=["s3"])
    mean = (sum(short) + short[0]) / 4
    assert b.sparse_embedding.avg_len == pytest.approx(mean)
    stored = b.backend.get(["s3"], with_vectors=True)[0].sparse
    want = sparse_encoder.embed_documents_with_avg_len(SHORT[:1], mean)[0]
    assert dict(zip(stored.indices, stored.values, strict=True)) == pytest.approx(
        dict(zip(want.indices, want.values, strict=True)), rel=1e-6)
    # One entry per tenant; the tenant-less key (old collections, tenant-less stores) untouched.
    # A tenant sees its own entry only.
    meta = b.backend.collection_metadata()
    assert meta[f"{METADATA_KEY}/tenant/b"]["docs"] == 4
    assert f"{METADATA_KEY}/tenant/a" not in meta
    assert a.backend.collection_metadata()[f"{METADATA_KEY}/tenant/a"]["docs"] == 6
    assert METADATA_KEY not in meta
    # A reopened tenant store reads its own totals.
    again = BackendVectorStore(lc_embeddings, tenant_backend(name, "b"), retrieval_mode="hybrid")
    assert again.sparse_embedding.stats().docs == 4


def test_a_collection_with_shared_totals_keeps_them(tenant_backend, lc_embeddings) -> None:
    """Totals written under METADATA_KEY (a tenant-less store, or tenants before the split)
    stay there for the tenant-less store; a tenant starts its own."""
    name = fresh_name("FitOld")
    plain = BackendVectorStore(lc_embeddings, tenant_backend(name, None), retrieval_mode="hybrid")
    plain.add_texts(SHORT)
    assert plain.backend.collection_metadata()[METADATA_KEY]["docs"] == 3
    tenant = BackendVectorStore(lc_embeddings, tenant_backend(name, "t"), retrieval_mode="hybrid")
    assert tenant.sparse_embedding.stats().docs == 0
    tenant.add_texts(LONG)
    assert tenant.sparse_embedding.stats().docs == 2
    assert plain.sparse_embedding.stats().docs == 3


@pytest.mark.weaviate
def test_weaviate_tenants_rank_with_their_own_bm25_statistics(weaviate_server) -> None:
    """Nothing to fit on Weaviate (its own BM25): each tenant is a shard with its own
    document count and lengths, so b's BM25 scores do not move with a's documents."""
    from rag_stores.backends.weaviate import WeaviateBackend, normalize_collection_name
    from rag_stores.core.query import Query
    from rag_stores.core.records import Record

    name = fresh_name("WvFitTenant")
    with weaviate_server.connect() as client:
        try:
            a, b = (WeaviateBackend(name, client=client, index="flat", tenant=t) for t in "ab")
            assert fitted(SparseEncoder(), b).__class__ is SparseEncoder

            def recs(texts: list[str], prefix: str) -> list[Record]:
                return [Record(id=f"{prefix}{i}", text=t, vector=[1.0, float(i)])
                        for i, t in enumerate(texts)]

            def scores() -> dict[str, float]:
                hits = b.search(Query(mode="sparse", text="cats owls night", k=5))
                return {h.record.id: h.score for h in hits}

            b.upsert(recs(SHORT, "b"))
            before = scores()
            assert set(before) == {"b0", "b2"}
            a.upsert(recs(LONG * 20 + ["cats and owls at night"] * 10, "a"))
            assert scores() == before
        finally:
            client.collections.delete(normalize_collection_name(name))
