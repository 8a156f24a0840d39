"""LangChain faces: langchain-tests' standard embeddings suites plus meaning checks."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from embedders import SparseVector
from embedders.langchain import FastEmbedEmbeddings, FastEmbedSparse

ENV_CACHE = os.path.join(tempfile.gettempdir(), "rag-stores-test-fastembed-env")


@pytest.fixture(autouse=True)
def _seeded(seeded_models):
    """The standard suites build the class from params, so the models must be seeded first."""


class TestFastEmbedEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return FastEmbedEmbeddings

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        # FastEmbed's own variable picks the download cache when no cache_dir is given.
        return {"FASTEMBED_CACHE_PATH": ENV_CACHE}, {}, {"cache_dir": ENV_CACHE}


class TestFastEmbedEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return FastEmbedEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"batch_size": 2}


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_nearer_meaning_is_nearer(lc_embeddings):
    cat = lc_embeddings.embed_query("The cat sits on the mat")
    feline, stocks = lc_embeddings.embed_documents(
        ["A feline rests on a rug", "Stock markets fell sharply today"]
    )
    assert cos(cat, feline) > cos(cat, stocks) + 0.3


async def test_async_matches_sync(lc_embeddings):
    texts = ["The cat sits on the mat", "Stock markets fell sharply today"]
    assert await lc_embeddings.aembed_documents(texts) == lc_embeddings.embed_documents(texts)
    assert await lc_embeddings.aembed_query(texts[0]) == lc_embeddings.embed_query(texts[0])


def test_shares_the_session_model(lc_embeddings, dense_encoder):
    assert lc_embeddings.dim == 384
    assert FastEmbedEmbeddings().encoder.model is dense_encoder.model
    assert (
        list(lc_embeddings.embed_documents_iter(iter(["a", "b"])))[1]
        == (lc_embeddings.embed_documents(["b"])[0])
    )


async def test_sparse_face(sparse_encoder):
    sparse = FastEmbedSparse()
    assert sparse.encoder.model is sparse_encoder.model
    docs = sparse.embed_documents(["The cats sat", "Markets fell"])
    assert all(isinstance(d, SparseVector) for d in docs)
    query = sparse.embed_query("cat")
    assert set(query.indices) <= set(docs[0].indices)
    assert not set(query.indices) & set(docs[1].indices)
    assert await sparse.aembed_query("cat") == query
    assert await sparse.aembed_documents(["Markets fell"]) == docs[1:]
