"""Dense and sparse encoders: thin wrappers over FastEmbed shared by every store and framework.

A loaded model is cached per (model, load options) for the whole process, so ten stores
built with the same settings share one ONNX session instead of loading ten copies.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from . import offline
from .offline import DEFAULT_DENSE_MODEL, DEFAULT_SPARSE_MODEL, ModelNotAvailableError
from .sparse import SparseVector

# Texts per ONNX run. FastEmbed's default is 256, but ONNX Runtime's arena grows with the
# largest batch shape: 256 texts of 256 tokens peak at about 2.7 GB, 32 at about 1.3 GB,
# for the same throughput on 2 cores (benchmarks/bench_embedders.py).
DEFAULT_BATCH_SIZE = 32
# Texts sorted by length together. FastEmbed pads each batch to its longest text; CISI
# abstracts in the given order carry 1.70x their tokens in padding at batch 32, sorted within
# 256 texts 1.09x, within 1,024 1.03x: 8-11% faster than 256 (docs/performance.md, third
# pass). A window is held in memory at a time (1,024 texts and their vectors: ~15 MB).
SORT_WINDOW = 1024

_models: dict[tuple[Any, ...], Any] = {}
_models_lock = threading.Lock()


class _Identity:
    """Hashes an unhashable option (a custom stemmer, say) by identity for the cache key."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return _Identity(value)
    return value


def _fastembed_class(kind: str) -> Any:
    # Imported here so that `import embedders` (and embedders.tokens) stays cheap.
    if kind == "dense":
        from fastembed import TextEmbedding

        return TextEmbedding
    if kind == "rerank":
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        return TextCrossEncoder
    from fastembed import SparseTextEmbedding

    return SparseTextEmbedding


def _description(cls: Any, model_name: str) -> Any:
    for desc in cls._list_supported_models():
        if desc.model.lower() == model_name.lower():
            return desc
    raise ValueError(
        f"{model_name!r} is not a model {cls.__name__} knows; see "
        f"{cls.__name__}.list_supported_models() or register it with add_custom_model"
    )


def _is_offline(kwargs: dict[str, Any]) -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(kwargs.get("local_files_only")) or flag in {"1", "TRUE", "YES", "ON"}


def load_model(
    kind: str,
    model_name: str,
    *,
    model_path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    providers: Sequence[Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A shared FastEmbed model, loaded once per process for the same options.

    Where the files come from, first match wins: `model_path`, a seeded folder
    ($RAG_STORES_MODELS, then ~/.cache/rag-stores/models), FastEmbed's usual download.
    """
    cls = _fastembed_class(kind)
    desc = _description(cls, model_name)
    explicit = model_path or kwargs.pop("specific_model_path", None)
    if explicit:
        folder: Path | None = Path(explicit).expanduser()
        if not (folder / desc.model_file).is_file():
            raise FileNotFoundError(
                f"model_path {folder} has no {desc.model_file}, the file {model_name} needs"
            )
    else:
        folder = offline.seeded_model_dir(desc.model, desc.model_file)
    cache = Path(cache_dir).expanduser() if cache_dir else offline.default_fastembed_cache()
    key = (
        kind,
        desc.model.lower(),
        str(folder),
        str(cache),
        threads,
        _freeze(providers),
        _freeze(kwargs),
    )
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _instantiate(cls, desc.model, folder, cache, threads, providers, kwargs)
            _models[key] = model
    return model


def _instantiate(
    cls: Any,
    model_name: str,
    folder: Path | None,
    cache: Path,
    threads: int | None,
    providers: Sequence[Any] | None,
    kwargs: dict[str, Any],
) -> Any:
    if folder is not None:
        kwargs = {**kwargs, "specific_model_path": str(folder)}
    try:
        return cls(model_name, cache_dir=str(cache), threads=threads, providers=providers, **kwargs)
    except ValueError as exc:
        # FastEmbed reports "Could not load model ... from any source" after its hub and
        # cache attempts fail; anything else (bad options) is the caller's to see as is.
        if folder is not None or "could not load model" not in str(exc).lower():
            raise
        defaults = (DEFAULT_DENSE_MODEL, DEFAULT_SPARSE_MODEL)
        if model_name in defaults:
            fix = f"run `{offline.SEED_COMMAND}` (pip install 'rag-stores[offline]' first)"
        else:
            fix = (
                f"pass model_path=<folder with its files> (`{offline.SEED_COMMAND}` covers only "
                f"{', '.join(defaults)})"
            )
        where = "offline mode is on (HF_HUB_OFFLINE / local_files_only)"
        if not _is_offline(kwargs):
            where = "the model hub could not be reached"
        roots = ", ".join(str(r) for r in offline.model_roots())
        raise ModelNotAvailableError(
            f"Cannot load {model_name}: it is not seeded in {roots}, not in the FastEmbed "
            f"cache {cache}, and {where}. To use it without the hub, {fix}."
        ) from None


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected a text (str), got {type(text).__name__}")
    return text


def _checked_texts(texts: Iterable[str]) -> Iterable[str]:
    """Lists are checked up front (and passed on as lists); other iterables lazily."""
    if isinstance(texts, str):
        raise TypeError("expected an iterable of texts, got a single str; wrap it in a list")
    if isinstance(texts, list):
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text at position {i} is {type(t).__name__}, expected str")
        return texts
    return (_check_text(t) for t in texts)


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(items, size)):
        yield batch


class _Encoder:
    _kind = ""

    def __init__(
        self,
        model_name: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        parallel: int | None = None,
        providers: Sequence[Any] | None = None,
        model_path: str | os.PathLike[str] | None = None,
        sort_window: int = SORT_WINDOW,
        **kwargs: Any,
    ) -> None:
        if sort_window < 0:
            raise ValueError(f"sort_window must be >= 0 (0: given order), got {sort_window}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if parallel is not None and parallel < 0:
            raise ValueError(
                f"parallel must be None, 0 (all cores) or a worker count, got {parallel}"
            )
        self.model_name = model_name
        self.batch_size = batch_size
        self.sort_window = sort_window
        self.parallel = parallel
        self.cache_dir = str(
            Path(cache_dir).expanduser() if cache_dir else offline.default_fastembed_cache()
        )
        self.model = load_model(
            self._kind,
            model_name,
            model_path=model_path,
            cache_dir=self.cache_dir,
            threads=threads,
            providers=providers,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_name!r})"

    def _embed(self, texts: Iterable[str]) -> Iterator[Any]:
        return iter(self.model.passage_embed(texts, batch_size=self.batch_size,
                                             parallel=self.parallel))

    def _passages(self, texts: Iterable[str]) -> Iterator[Any]:
        """Passage embeddings in the caller's order, computed on windows sorted by length."""
        texts = _checked_texts(texts)
        tokenizer = getattr(getattr(self.model, "model", None), "tokenizer", None)
        if self.sort_window < 2 or not hasattr(tokenizer, "encode_batch"):  # BM25: no padding
            return self._embed(texts)
        if isinstance(texts, list) and len(texts) <= self.sort_window:
            order = _by_length(texts, tokenizer)
            return _unsorted(self._embed([texts[i] for i in order]), deque([order]))
        orders: deque[list[int]] = deque()

        def sorted_windows() -> Iterator[str]:
            for window in _chunks(iter(texts), self.sort_window):
                orders.append(_by_length(window, tokenizer))
                yield from (window[i] for i in orders[-1])

        # One FastEmbed call over all windows: its worker pool (parallel=) starts once.
        return _unsorted(self._embed(sorted_windows()), orders)

    def _queries(self, texts: Iterable[str]) -> Iterator[Any]:
        return iter(self.model.query_embed(_checked_texts(texts), batch_size=self.batch_size))

    def _query(self, text: str) -> Any:
        """One query, one model run. Concurrent callers (threads) run side by side: batching
        them (QueryBatcher, removed 2026-12-07) was 0.67-0.83x this on 2 cores, 32 threads,
        short and long queries alike (docs/performance.md)."""
        return next(iter(self.model.query_embed([_check_text(text)], batch_size=1)))


def _by_length(texts: list[str], tokenizer: Any) -> list[int]:
    """Positions of `texts` by token count (the model's own tokenizer: Rust, ~0.3% of the
    model's time on abstracts, and what decides the padding)."""
    lengths = [sum(e.attention_mask) for e in tokenizer.encode_batch(texts)]
    return sorted(range(len(texts)), key=lengths.__getitem__)


def _unsorted(vectors: Iterator[Any], orders: deque[list[int]]) -> Iterator[Any]:
    """Vectors of sorted windows back in input order; `orders` fills as windows are read."""
    for first in vectors:
        order = orders.popleft()
        out: list[Any] = [None] * len(order)
        for position, vector in zip(order, [first, *islice(vectors, len(order) - 1)],
                                    strict=True):
            out[position] = vector
        yield from out


class DenseEncoder(_Encoder):
    """Dense text vectors (default: all-MiniLM-L6-v2, 384 dims, cosine).

    Documents go through FastEmbed's `passage_embed` and queries through `query_embed`,
    so models with query/passage prefixes (bge, e5) get them right.
    """

    _kind = "dense"

    def __init__(self, model_name: str = DEFAULT_DENSE_MODEL, **options: Any) -> None:
        super().__init__(model_name, **options)

    @property
    def dim(self) -> int:
        return int(self.model.embedding_size)

    def embed_documents_iter(self, texts: Iterable[str]) -> Iterator[list[float]]:
        """One vector per text, computed `batch_size` texts at a time: memory stays flat."""
        for vector in self._passages(texts):
            yield vector.tolist()

    def embed_documents_batches(
        self, texts: Iterable[str], batch_size: int | None = None
    ) -> Iterator[list[list[float]]]:
        """Lists of at most `batch_size` vectors, for writing to a store batch by batch."""
        yield from _chunks(self.embed_documents_iter(texts), batch_size or self.batch_size)

    def embed_documents(self, texts: Iterable[str]) -> list[list[float]]:
        return list(self.embed_documents_iter(texts))

    def embed_queries(self, texts: Iterable[str]) -> list[list[float]]:
        return [v.tolist() for v in self._queries(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self._query(text).tolist()  # type: ignore[no-any-return]


def _sparse(embedding: Any) -> SparseVector:
    # BM25 queries carry integer weights (all 1); stores want floats.
    return SparseVector(
        indices=[int(i) for i in embedding.indices],
        values=[float(v) for v in embedding.values],
    )


class SparseEncoder(_Encoder):
    """Sparse text vectors (default: FastEmbed BM25, English stopwords and stemming).

    BM25 vectors hold term frequencies only: the collection must apply IDF
    (Qdrant: `modifier=IDF` on the sparse vector). Options of FastEmbed's BM25: `language`
    (stemmer and stopword list), `stopwords` (a set: your own list; an empty set: none),
    `disable_stemmer`, `k`, `b`, `avg_len`. The seeded folder carries English stopwords only:
    another `language=` without `stopwords=` is refused offline rather than silently
    dropping none (FastEmbed's download brings every language's list).

    `avg_len` (the mean document length of the collection, in tokens after stopwords) sets
    BM25's length normalisation; FastEmbed's default, 256, is far from most collections
    (CISI abstracts: 72). Stores fit it to their collection (`embedders.sparse_fit`) unless
    it is given here.
    """

    _kind = "sparse"

    def __init__(self, model_name: str = DEFAULT_SPARSE_MODEL, **options: Any) -> None:
        self.is_bm25 = model_name.lower() == DEFAULT_SPARSE_MODEL.lower()
        if self.is_bm25:
            options.setdefault("language", "english")
        # Fitted to the collection by the stores unless given (embedders.sparse_fit).
        self.avg_len_given = "avg_len" in options
        super().__init__(model_name, **options)
        if self.is_bm25:
            self._check_stopwords(options)

    def _check_stopwords(self, options: dict[str, Any]) -> None:
        bm25 = self.model.model
        language = bm25.language
        if options.get("stopwords") is not None or bm25.disable_stemmer:
            return
        if not (Path(bm25._model_dir) / f"{language}.txt").is_file() and language != "tamil":
            raise ValueError(
                f"no {language} stopword list in {bm25._model_dir} (the seeded folder ships "
                "English only): pass stopwords={...} (a set; set() for none), or let FastEmbed "
                "download Qdrant/bm25 with every language's list")

    @property
    def bm25(self) -> Any:
        """FastEmbed's Bm25 model (default model only)."""
        if not self.is_bm25:
            raise TypeError(f"{self.model_name} is not BM25: it has no tokens or avg_len")
        return self.model.model

    def analyze(self, text: str) -> list[str]:
        """The BM25 tokens of a text, as FastEmbed makes them (lowercased, punctuation and
        stopwords dropped, stemmed): what document lengths and vectors are made of."""
        from fastembed.sparse.bm25 import remove_non_alphanumeric

        bm25 = self.bm25
        return list(bm25._stem(bm25.tokenizer.tokenize(remove_non_alphanumeric(_check_text(text)))))

    def settings(self) -> dict[str, Any]:
        """What decides the tokens and weights; a collection keeps them (sparse_fit) so that
        every writer indexes alike."""
        bm25 = self.bm25
        stopwords = sorted(bm25.stopwords)
        return {"model": self.model_name, "language": bm25.language,
                "stemmer": None if bm25.stemmer is None else type(bm25.stemmer).__name__,
                "stopwords": len(stopwords),
                "stopwords_sha1": hashlib.sha1("\n".join(stopwords).encode()).hexdigest()[:12],
                "k": float(bm25.k), "b": float(bm25.b)}

    def vector_of(self, tokens: Sequence[str], avg_len: float) -> SparseVector:
        """The BM25 document vector of analysed tokens with this avg_len (FastEmbed's formula:
        tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len)), token ids by mmh3)."""
        bm25 = self.bm25
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        norm = bm25.k * (1 - bm25.b + bm25.b * len(tokens) / avg_len)
        weights: dict[int, float] = {}
        for token, tf in counts.items():
            weights[int(bm25.compute_token_id(token))] = tf * (bm25.k + 1) / (tf + norm)
        return SparseVector(indices=list(weights), values=list(weights.values()))

    def embed_documents_with_avg_len(self, texts: Iterable[str],
                                     avg_len: float) -> list[SparseVector]:
        """Document vectors for another avg_len than the model's (the shared model is left
        as it is)."""
        if avg_len <= 0:
            raise ValueError(f"avg_len must be > 0, got {avg_len}")
        return [self.vector_of(self.analyze(t), avg_len) for t in _checked_texts(texts)]

    def for_collection(self, backend: Any) -> Any:
        """This encoder with avg_len fitted to `backend`'s collection (embedders.sparse_fit),
        or itself where that does not apply (not BM25, avg_len given, or an engine with its
        own BM25)."""
        from .sparse_fit import fitted

        return fitted(self, backend)

    def embed_documents_iter(self, texts: Iterable[str]) -> Iterator[SparseVector]:
        for embedding in self._passages(texts):
            yield _sparse(embedding)

    def embed_documents_batches(
        self, texts: Iterable[str], batch_size: int | None = None
    ) -> Iterator[list[SparseVector]]:
        yield from _chunks(self.embed_documents_iter(texts), batch_size or self.batch_size)

    def embed_documents(self, texts: Iterable[str]) -> list[SparseVector]:
        return list(self.embed_documents_iter(texts))

    def embed_queries(self, texts: Iterable[str]) -> list[SparseVector]:
        return [_sparse(e) for e in self._queries(texts)]

    def embed_query(self, text: str) -> SparseVector:
        return _sparse(self._query(text))
