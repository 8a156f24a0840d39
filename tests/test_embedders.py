"""Dense and sparse encoders on the real all-MiniLM-L6-v2 and FastEmbed BM25, offline."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from embedders import (
    AssetHashError,
    DenseEncoder,
    ModelNotAvailableError,
    SparseEncoder,
    SparseVector,
    offline,
)

CAT, FELINE, STOCKS = (
    "The cat sits on the mat",
    "A feline rests on a rug",
    "Stock markets fell sharply today",
)


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_dense_default_model(dense_encoder):
    assert dense_encoder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert dense_encoder.dim == 384
    # sentence-transformers' max_seq_length, not the 512 of the raw tokenizer_config.json
    assert dense_encoder.model.model.tokenizer.truncation["max_length"] == 256
    cat, feline, stocks = dense_encoder.embed_documents([CAT, FELINE, STOCKS])
    assert all(len(v) == 384 and isinstance(v[0], float) for v in (cat, feline, stocks))
    assert cos(cat, feline) > 0.45
    assert cos(cat, feline) > cos(cat, stocks) + 0.3


def test_query_and_document_vectors_agree_for_a_model_without_prefixes(dense_encoder):
    query = dense_encoder.embed_query(CAT)
    assert isinstance(query, list) and len(query) == 384
    assert cos(query, dense_encoder.embed_documents([CAT])[0]) == pytest.approx(1.0, abs=1e-5)
    assert dense_encoder.embed_queries([CAT, STOCKS])[0] == pytest.approx(query, abs=1e-6)


def test_empty_input_gives_no_vectors(dense_encoder, sparse_encoder):
    assert dense_encoder.embed_documents([]) == []
    assert sparse_encoder.embed_documents([]) == []


@pytest.mark.parametrize("bad", ["just one string", [CAT, 3], [None]])
def test_bad_texts_are_refused_clearly(dense_encoder, bad):
    with pytest.raises(TypeError, match="str"):
        dense_encoder.embed_documents(bad)


def test_bad_query_is_refused(dense_encoder, sparse_encoder):
    with pytest.raises(TypeError, match="str"):
        dense_encoder.embed_query(["a list"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        sparse_encoder.embed_query(42)  # type: ignore[arg-type]


def test_streaming_pulls_texts_one_window_at_a_time(seeded_models):
    encoder = DenseEncoder(batch_size=4, sort_window=8)
    pulled = 0

    def texts():
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield f"sentence number {i}"

    first = list(islice(encoder.embed_documents_iter(texts()), 3))
    assert len(first) == 3
    assert pulled <= 8 + 4  # one sort window (plus a batch ahead), not the whole corpus


def test_batches_have_the_requested_size(dense_encoder):
    batches = list(dense_encoder.embed_documents_batches((f"t{i}" for i in range(10)), 4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0][1] == pytest.approx(dense_encoder.embed_documents(["t1"])[0], abs=1e-6)


def test_same_options_share_one_loaded_model(dense_encoder):
    assert DenseEncoder().model is dense_encoder.model
    # embed-time options (batch size, workers) do not need another copy
    assert DenseEncoder(batch_size=8, parallel=None).model is dense_encoder.model


def test_concurrent_first_loads_load_once(seeded_models):
    # threads=2 is a key no other test uses, so all eight threads race for the first load
    with ThreadPoolExecutor(8) as pool:
        models = list(pool.map(lambda _: DenseEncoder(threads=2).model, range(8)))
    assert all(m is models[0] for m in models)
    assert models[0] is not DenseEncoder().model


def test_threads_can_share_one_model(dense_encoder):
    texts = [f"sentence {i} about cats and markets" for i in range(24)]
    expected = dense_encoder.embed_documents(texts)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: dense_encoder.embed_documents(texts[i::4]), range(4)))
    for i in range(4):
        assert np.allclose(got[i], expected[i::4], atol=1e-5)


def test_unhashable_options_still_cache(seeded_models):
    words = {"cat"}
    a = SparseEncoder(stopwords=words)
    assert SparseEncoder(stopwords={"cat"}).model is a.model
    assert SparseEncoder(stopwords={"dog"}).model is not a.model


def test_bm25_english_stopwords_and_stemming(sparse_encoder):
    bm25 = sparse_encoder.model.model
    assert bm25.language == "english"
    assert {"the", "and", "of", "is"} <= bm25.stopwords
    (doc,) = sparse_encoder.embed_documents(["The cats are sitting on the mats"])
    assert isinstance(doc, SparseVector)
    assert len(doc.indices) == 3  # cat, sit, mat: "the", "are", "on" are stopwords
    query = sparse_encoder.embed_query("a sitting cat")
    assert sorted(query.indices) == sorted(set(query.indices) & set(doc.indices))
    assert query.values == [1.0, 1.0] and all(isinstance(v, float) for v in query.values)


def test_other_keywords_reach_fastembed_untouched(seeded_models):
    plain = SparseEncoder(disable_stemmer=True)
    assert plain.model.model.stemmer is None
    cats, cat = plain.embed_documents(["cats", "cat"])
    assert cats.indices != cat.indices
    stemmed_cats, stemmed_cat = SparseEncoder().embed_documents(["cats", "cat"])
    assert stemmed_cats.indices == stemmed_cat.indices


def test_default_download_cache_is_persistent(seeded_models, monkeypatch):
    monkeypatch.delenv("FASTEMBED_CACHE_PATH", raising=False)
    expected = offline.default_models_dir().parent / "fastembed"
    assert DenseEncoder().cache_dir == str(expected)
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", "/somewhere/else")
    assert offline.default_fastembed_cache() == Path("/somewhere/else")


def test_parallel_workers_give_the_same_vectors(dense_encoder):
    texts = [f"sentence {i} about cats" for i in range(8)]
    parallel = DenseEncoder(batch_size=4, parallel=2)
    assert parallel.model is dense_encoder.model
    assert np.allclose(
        parallel.embed_documents(texts), dense_encoder.embed_documents(texts), atol=1e-5
    )


def test_explicit_model_path(seeded_models, dense_encoder):
    folder = seeded_models / "sentence-transformers" / "all-MiniLM-L6-v2"
    encoder = DenseEncoder(model_path=folder)
    assert encoder.embed_query(CAT) == pytest.approx(dense_encoder.embed_query(CAT), abs=1e-6)


def test_model_path_without_the_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.onnx"):
        DenseEncoder(model_path=tmp_path)


def test_unknown_model_name_is_named():
    with pytest.raises(ValueError, match="no/such-model"):
        DenseEncoder("no/such-model")


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        DenseEncoder(batch_size=0)


def test_offline_and_not_seeded_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(offline.MODELS_ENV, raising=False)
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "fastembed"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for cls in (DenseEncoder, SparseEncoder):
        with pytest.raises(ModelNotAvailableError) as info:
            cls()
        message = str(info.value)
        assert "rag-stores models seed" in message
        assert "offline" in message and str(tmp_path / "home") in message


def test_a_corrupt_seeded_file_is_an_error_not_a_wrong_model(tmp_path, monkeypatch):
    root = tmp_path / "models"
    offline.seed(root, fetch=False)
    tokenizer = root / "sentence-transformers" / "all-MiniLM-L6-v2" / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b'"cat"', b'"dog"', 1))
    monkeypatch.setenv(offline.MODELS_ENV, str(root))
    with pytest.raises(AssetHashError, match="tokenizer.json.*rag-stores models seed"):
        DenseEncoder()


def test_framework_modules_do_not_import_each_other():
    check = (
        "import sys, embedders.{mod}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == '{other}'); "
        "assert not bad, bad"
    )
    for mod, other in (("langchain", "llama_index"), ("llama_index", "langchain_core")):
        code = check.format(mod=mod, other=other)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-c", check.format(mod="tokens", other="fastembed")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
