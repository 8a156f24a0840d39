"""LlamaIndex faces: BaseEmbedding for indexes and Settings, sparse functions for hybrid stores."""

from __future__ import annotations

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings.utils import resolve_embed_model

from embedders.llama_index import FastEmbedEmbedding, FastEmbedSparseEmbedding
from tests.test_embedders import CAT, FELINE, STOCKS, cos


def test_nearer_meaning_is_nearer(llama_embed_model):
    cat = llama_embed_model.get_query_embedding(CAT)
    feline, stocks = llama_embed_model.get_text_embedding_batch([FELINE, STOCKS])
    assert len(cat) == 384
    assert cos(cat, feline) > cos(cat, stocks) + 0.3
    assert llama_embed_model.get_text_embedding(FELINE) == feline


async def test_async_matches_sync(llama_embed_model):
    assert await llama_embed_model.aget_query_embedding(CAT) == (
        llama_embed_model.get_query_embedding(CAT)
    )
    assert await llama_embed_model.aget_text_embedding(STOCKS) == (
        llama_embed_model.get_text_embedding(STOCKS)
    )
    assert await llama_embed_model.aget_text_embedding_batch([CAT, STOCKS]) == (
        llama_embed_model.get_text_embedding_batch([CAT, STOCKS])
    )


def test_vector_store_index_retrieves_by_meaning(llama_embed_model):
    docs = [Document(text=t, id_=str(i)) for i, t in enumerate([STOCKS, FELINE])]
    index = VectorStoreIndex.from_documents(docs, embed_model=llama_embed_model)
    (hit,) = index.as_retriever(similarity_top_k=1).retrieve(CAT)
    assert hit.node.get_content() == FELINE


def test_settings_embed_model(seeded_models, dense_encoder):
    model = FastEmbedEmbedding(embed_batch_size=32)
    assert model.encoder.model is dense_encoder.model
    assert model.encoder.batch_size == 32
    previous = Settings._embed_model
    try:
        Settings.embed_model = model
        assert resolve_embed_model(Settings.embed_model) is model
        index = VectorStoreIndex.from_documents([Document(text=FELINE)])
        assert index.as_retriever(similarity_top_k=1).retrieve(CAT)[0].node.get_content() == FELINE
    finally:
        Settings._embed_model = previous


def test_fields_and_pass_through(seeded_models):
    model = FastEmbedEmbedding(num_workers=2, lazy_load=True)
    assert model.num_workers == 2  # a BaseEmbedding field stays with LlamaIndex
    assert model.fastembed_kwargs == {"lazy_load": True}  # the rest goes to FastEmbed
    assert model.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert model.class_name() == "FastEmbedEmbedding"
    assert len(model.get_query_embedding(CAT)) == model.dim == 384


async def test_sparse_embedding_and_functions(sparse_encoder):
    sparse = FastEmbedSparseEmbedding()
    assert sparse.encoder.model is sparse_encoder.model
    doc = sparse.get_text_embedding("The cats are sitting on the mats")
    assert len(doc) == 3 and all(isinstance(k, int) for k in doc)
    query = sparse.get_query_embedding("cat")
    assert set(query) <= set(doc) and list(query.values()) == [1.0]
    assert await sparse.aget_query_embedding("cat") == query

    indices, values = sparse.sparse_doc_fn(["The cats are sitting on the mats", "markets"])
    assert len(indices) == len(values) == 2
    assert dict(zip(indices[0], values[0], strict=True)) == doc
    q_indices, q_values = sparse.sparse_query_fn(["cat"])
    assert q_indices == [list(query)] and q_values == [[1.0]]
