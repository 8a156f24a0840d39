"""Weaviate's `collection.generate` API over any of our stores and any LLM.

`GenerativeSearch(store, llm)` offers `near_text`, `near_vector`, `hybrid`, `bm25` and
`fetch_objects` (async twins: `anear_text`, ...), each taking its search arguments plus
`single_prompt`, `grouped_task` and `grouped_properties`, and returns a result shaped like
weaviate-client's `GenerativeReturn`. The store is a LangChain `BackendVectorStore`, or a
LlamaIndex `BackendLlamaStore` with an `embed_model` (either backend); the LLM is any
LangChain chat model / LLM / Runnable, or any LlamaIndex LLM.

Prompts, as Weaviate builds them (usecases/modulecomponents/generative in Weaviate 1.38):
- An object's properties are its text under `text` plus every metadata key (the text wins
  if the metadata also has a key "text"). A value is used as it is when it is a string and
  as compact JSON otherwise (`true`, `2001`, `["a","b"]`); null values are left out.
- `single_prompt` runs once per object: each `{name}` (or `{{name}}`) is replaced by that
  object's property. Names follow Weaviate's pattern: letters, digits, `_` and spaces
  inside the braces; other braces (JSON examples) stay as written.
- `grouped_task` runs once over all objects. Its placeholders are filled from the first
  (best-ranked) object that has the property, and the prompt sent is
  `f"{task}: {json}"`, where json is the list of the objects' properties (restricted to
  `grouped_properties` when given; objects left with none are omitted), each a
  `{name: value-as-text}` dict with sorted keys and no spaces: Go's `json.Marshal` output,
  byte for byte (non-ASCII kept; `<`, `>`, `&`, U+2028 and U+2029 escaped as `\\u003c`...).
- A placeholder that names no property of the objects it applies to is a `PromptError`,
  raised before any LLM call. (Weaviate fails the whole query for a single prompt the same
  way, but silently leaves an unknown grouped-task placeholder as its bare name, and turns
  `{{name}}` into `{value}`; here `{{name}}` is the same placeholder as `{name}`.)
- No objects: no LLM call (as in Weaviate); `result.generative.text` is None.

`max_context_tokens` bounds the grouped prompt (tiktoken, `encoding`): the lowest-ranked
objects are left out first, then the longest values of the last remaining object are
truncated; `result.dropped` / `result.truncated` name them by id. Single prompts are sent
as they are. `result.prompts` holds every prompt sent.

`server_side=True` runs the search and the generation inside Weaviate (`collection.generate.*`,
the collection needs a generative module). Placeholders and `grouped_properties` then name
Weaviate properties; a metadata key is mapped to its layout property (`md_<key>__s`, ...),
whose values Weaviate sends as JSON arrays (`["A"]`). Without `grouped_properties` only
`text` and `metadata_json` (the exact metadata) are sent. The prompts are built by Weaviate,
so `result.prompts` is empty and `max_context_tokens` does not apply.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import Runnable, RunnableLambda

from embedders.tokens import DEFAULT_ENCODING, count_tokens, truncate_to_tokens

from .core.backend import Backend
from .core.filters import from_dict, from_llama
from .core.ids import to_point_id
from .core.query import Query, UnsupportedError
from .core.records import Hit, Record

__all__ = [
    "GenerativeGrouped", "GenerativeObject", "GenerativeResult",
    "GenerativeSearch", "GenerativeSingle", "MetadataReturn", "PromptError", "Prompts",
    "grouped_prompt", "property_text", "single_prompt_for",
]

# Objects per call when `limit` is not given (Weaviate's QUERY_DEFAULTS_LIMIT default).
DEFAULT_LIMIT = 10
Method = Literal["near_text", "near_vector", "hybrid", "bm25", "fetch_objects"]
METHODS: tuple[str, ...] = ("near_text", "near_vector", "hybrid", "bm25", "fetch_objects")
# Weaviate's placeholder pattern `{([\w\s]*?)}`; `{{name}}` is taken as one placeholder.
_PLACEHOLDER = re.compile(r"\{\{([\w\s]*?)\}\}|\{([\w\s]*?)\}")


# Go's json.Marshal escapes these even inside strings (HTML safety); Weaviate's prompts have them so.
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})


class PromptError(ValueError):
    """A prompt that cannot be built (unknown placeholder, budget too small); no LLM was called."""


# --- the result: weaviate-client's GenerativeReturn shape ---------------------------------

@dataclass
class MetadataReturn:
    """Score of the hit (higher is better, core/scores.py) and Weaviate's distance units."""

    score: float | None = None
    distance: float | None = None
    certainty: float | None = None


@dataclass
class GenerativeSingle:
    text: str | None
    prompt: str | None = None  # the exact prompt sent (None server-side)


@dataclass
class GenerativeGrouped:
    text: str | None
    prompt: str | None = None


@dataclass
class GenerativeObject:
    uuid: uuid.UUID  # the engine's point id
    id: str  # the user's id
    properties: dict[str, Any]  # {"text": ..., **metadata}
    metadata: MetadataReturn
    generative: GenerativeSingle | None = None
    vector: dict[str, list[float]] = field(default_factory=dict)
    collection: str = ""
    record: Record | None = None  # the full record (ref_doc_id, relationships)

    @property
    def generated(self) -> str | None:
        return self.generative.text if self.generative else None


@dataclass
class Prompts:
    single: list[str]  # one per object, in the order of `objects` (empty without single_prompt)
    grouped: str | None


@dataclass
class GenerativeResult:
    objects: list[GenerativeObject]
    generative: GenerativeGrouped | None = None
    dropped: list[str] = field(default_factory=list)  # ids left out of the grouped prompt
    truncated: list[str] = field(default_factory=list)  # ids whose values were shortened there
    server_side: bool = False

    @property
    def generated(self) -> str | None:
        """The grouped task's answer (weaviate-client's deprecated name)."""
        return self.generative.text if self.generative else None

    @property
    def grouped(self) -> str | None:
        return self.generated

    @property
    def prompts(self) -> Prompts:
        singles = [o.generative.prompt for o in self.objects if o.generative and o.generative.prompt]
        return Prompts(single=singles,
                       grouped=self.generative.prompt if self.generative else None)


# --- prompt building (pure) ----------------------------------------------------------------

def property_text(value: Any) -> str:
    """A property value as Weaviate puts it into a prompt."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def object_properties(record: Record) -> dict[str, Any]:
    return {"text": record.text, **{k: v for k, v in record.metadata.items() if k != "text"}}


def _substitute(template: str, replace: Callable[[str], str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
        return replace(name) if name else match.group(0)
    return _PLACEHOLDER.sub(one, template)


def placeholders(template: str) -> list[str]:
    """The property names a template refers to, in order, without repeats."""
    found: list[str] = []

    def note(name: str) -> str:
        found.append(name)
        return ""
    _substitute(template, note)
    return list(dict.fromkeys(found))


def single_prompt_for(template: str, properties: dict[str, Any], object_id: str = "?") -> str:
    """`template` with each placeholder replaced by this object's property."""
    def replace(name: str) -> str:
        value = properties.get(name)
        if value is None:
            have = ", ".join(k for k, v in properties.items() if v is not None)
            raise PromptError(f"single_prompt placeholder {{{name}}} names no property of object "
                              f"{object_id!r} (it has: {have})")
        return property_text(value)
    return _substitute(template, replace)


def _context(properties: dict[str, Any], only: Sequence[str] | None) -> dict[str, str]:
    return {k: property_text(v) for k, v in properties.items()
            if v is not None and (only is None or k in only)}


def _fill_task(task: str, contexts: Sequence[dict[str, str]]) -> str:
    def replace(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        raise PromptError(f"grouped_task placeholder {{{name}}} names no property of the "
                          f"{len(contexts)} objects sent (grouped_properties restricts them)")
    return _substitute(task, replace)


def grouped_prompt(task: str, contexts: Sequence[dict[str, str]]) -> str:
    """Weaviate's grouped prompt: the task, then the objects' properties as JSON."""
    kept = [c for c in contexts if c]
    body = json.dumps(kept, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return f"{task}: {body.translate(_GO_ESCAPES)}"


def fit_grouped(task: str, contexts: list[dict[str, str]], ids: list[str],
                max_tokens: int | None, encoding: str = DEFAULT_ENCODING
                ) -> tuple[str, list[str], list[str]]:
    """The grouped prompt within `max_tokens`: (prompt, dropped ids, truncated ids).

    Lowest-ranked objects go first (a binary search on how many to keep), then the longest
    values of the one object left are cut, until the whole prompt fits.
    """
    task = _fill_task(task, contexts)
    if max_tokens is None:
        return grouped_prompt(task, contexts), [], []

    def tokens(n: int) -> int:
        return count_tokens(grouped_prompt(task, contexts[:n]), encoding)

    keep = len(contexts)
    if tokens(keep) > max_tokens:
        low, high = 1, keep - 1  # keep at least the best object
        keep = 1
        while low <= high:
            mid = (low + high) // 2
            if tokens(mid) <= max_tokens:
                keep, low = mid, mid + 1
            else:
                high = mid - 1
    dropped = ids[keep:]
    kept = [dict(c) for c in contexts[:keep]]
    truncated: list[str] = []
    total = count_tokens(grouped_prompt(task, kept), encoding)
    while total > max_tokens:
        best = kept[0]
        sizes = {k: count_tokens(v, encoding) for k, v in best.items()}
        name = max(sizes, key=lambda k: sizes[k], default=None)
        if name is None or sizes[name] == 0:
            raise PromptError(f"grouped_task alone takes {total} tokens, more than "
                              f"max_context_tokens={max_tokens}")
        best[name] = truncate_to_tokens(best[name], max(sizes[name] - (total - max_tokens), 0),
                                        encoding)
        truncated = ids[:1]
        total = count_tokens(grouped_prompt(task, kept), encoding)
    return grouped_prompt(task, kept), dropped, truncated


# --- LLMs ------------------------------------------------------------------------------------

def _check_llm(llm: Any, what: str = "llm") -> Any:
    if isinstance(llm, Runnable) or (hasattr(llm, "complete") and hasattr(llm, "acomplete")):
        return llm
    raise TypeError(f"{what} must be a LangChain chat model, LLM or Runnable, or a LlamaIndex "
                    f"LLM; got {type(llm).__name__}")


def _text_of(output: Any) -> str:
    """The text of an LLM answer: a str, a LangChain message, or a LlamaIndex response."""
    if isinstance(output, str):
        return output
    content = getattr(output, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # LangChain content blocks
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                       if isinstance(b, str) or b.get("type") == "text")
    text = getattr(output, "text", None)
    if isinstance(text, str):
        return text
    raise TypeError(f"cannot read text from an LLM answer of type {type(output).__name__}")


def _call(llm: Any, prompt: str) -> str:
    if isinstance(llm, Runnable):
        return _text_of(llm.invoke(prompt))
    return _text_of(llm.complete(prompt))


async def _acall(llm: Any, prompt: str) -> str:
    if isinstance(llm, Runnable):
        return _text_of(await llm.ainvoke(prompt))
    return _text_of(await llm.acomplete(prompt))


# --- requests and the shared core -----------------------------------------------------------

@dataclass
class _Request:
    method: str
    single_prompt: str | None
    grouped_task: str | None
    grouped_properties: list[str] | None
    provider: Any  # an LLM (client-side) or a weaviate GenerativeConfig (server-side)
    server_side: bool
    raw_single: Any = None  # what the caller passed (a weaviate _SinglePrompt stays one)
    raw_grouped: Any = None
    query: str | list[str] | None = None
    vector: list[float] | None = None
    filters: Any = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    alpha: float | None = None
    fusion: str | None = None
    distance: float | None = None
    certainty: float | None = None
    include_vector: bool = False


def _prompt_text(value: Any, name: str) -> str | None:
    """A prompt given as a str or as weaviate's GenerativeParameters object (`.prompt`)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else getattr(value, "prompt", None)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return text


def _parse_filters(filters: Any) -> Any:
    """A LangChain dict, LlamaIndex MetadataFilters, a filter tree or a native engine filter."""
    if filters is None or (isinstance(filters, dict) and not filters):
        return None
    if isinstance(filters, dict):
        return from_dict(filters)
    if type(filters).__name__ == "MetadataFilters" and hasattr(filters, "condition"):
        return from_llama(filters)
    return filters


_FUSIONS = {"rrf", "dbsf", "ranked", "relative_score"}


def _fusion(value: Any) -> str | None:
    """Our fusion names, or weaviate's HybridFusion (RANKED, RELATIVE_SCORE)."""
    if value is None:
        return None
    name = str(getattr(value, "name", value)).lower()
    if name not in _FUSIONS:
        raise ValueError(f"unknown fusion_type {value!r}; use one of {sorted(_FUSIONS)} "
                         "or weaviate's HybridFusion")
    return name


def _score_threshold(distance: float | None, certainty: float | None,
                     metric: str) -> float | None:
    """Weaviate's `distance` / `certainty` limits as our higher-is-better score threshold."""
    if certainty is not None:
        if distance is not None:
            raise ValueError("pass distance= or certainty=, not both")
        if metric != "cosine":
            raise ValueError(f"certainty= needs a cosine collection (as in Weaviate); this one "
                             f"uses {metric}")
        distance = 2.0 * (1.0 - certainty)
    if distance is None:
        return None
    if metric == "cosine":
        return 1.0 - distance
    if metric == "euclid":  # Weaviate's l2-squared distance
        return -math.sqrt(max(distance, 0.0))
    return -distance  # dot, manhattan


def _metadata(hit: Hit | None, method: str, metric: str) -> MetadataReturn:
    if hit is None:
        return MetadataReturn()
    if method not in ("near_text", "near_vector"):
        return MetadataReturn(score=hit.score)
    s = hit.score
    distance = {"cosine": 1.0 - s, "dot": -s, "euclid": s * s, "manhattan": -s}.get(metric)
    certainty = 1.0 - distance / 2.0 if metric == "cosine" and distance is not None else None
    return MetadataReturn(score=s, distance=distance, certainty=certainty)


@dataclass
class _Job:
    """Everything decided before the LLM calls: objects, prompts, what the budget left out."""

    objects: list[GenerativeObject]
    singles: list[str]
    grouped: str | None
    dropped: list[str]
    truncated: list[str]

    @property
    def prompts(self) -> list[str]:
        return self.singles + ([self.grouped] if self.grouped is not None else [])

    def finish(self, req: _Request, answers: list[str]) -> GenerativeResult:
        for obj, prompt, answer in zip(self.objects, self.singles, answers, strict=False):
            obj.generative = GenerativeSingle(text=answer, prompt=prompt)
        generative = None
        if req.grouped_task is not None:
            generative = GenerativeGrouped(text=answers[-1] if self.grouped is not None else None,
                                           prompt=self.grouped)
        return GenerativeResult(self.objects, generative, self.dropped, self.truncated)


class _Source:
    """What a search needs from the store: backend, query embedding, sparse encoder."""

    def __init__(self, store: Any, embed_model: Any) -> None:
        backend = getattr(store, "backend", store)
        if not isinstance(backend, Backend):
            raise TypeError("store must be a rag_stores LangChain BackendVectorStore, a "
                            f"LlamaIndex BackendLlamaStore or a Backend; got {type(store).__name__}")
        self.backend = backend
        # A LangChain store makes its collection ready on first async use: search through it.
        self.lc_store = store if hasattr(store, "search_hits") else None
        self.embedder = embed_model if embed_model is not None else getattr(store, "embedding", None)
        self.sparse = getattr(store, "sparse_embedding", None) or getattr(store, "_sparse_encoder",
                                                                          None)
        self.builtin_bm25 = bool(getattr(backend, "builtin_bm25", False))
        self.metric = str(getattr(backend, "distance", "cosine"))

    def _embedder(self, method: str) -> Any:
        if self.embedder is None:
            raise ValueError(f"{method} embeds the query: pass embed_model= (a LlamaIndex store "
                             "keeps no embedding model)")
        return self.embedder

    def embed(self, method: str, text: str) -> list[float]:
        model = self._embedder(method)
        if hasattr(model, "embed_query"):
            return list(model.embed_query(text))
        return list(model.get_query_embedding(text))

    async def aembed(self, method: str, text: str) -> list[float]:
        model = self._embedder(method)
        if hasattr(model, "aembed_query"):
            return list(await model.aembed_query(text))
        return list(await model.aget_query_embedding(text))

    def check_keywords(self, method: str) -> None:
        if not self.builtin_bm25 and self.sparse is None:
            raise ValueError(f"{method} needs keyword search: create the store with "
                             "retrieval_mode='hybrid' or sparse_embedding= (LangChain), or "
                             "enable_hybrid=True (LlamaIndex)")

    def query(self, req: _Request, vector: list[float] | None) -> Query:
        mode = {"near_text": "dense", "near_vector": "dense", "hybrid": "hybrid",
                "bm25": "sparse"}[req.method]
        sparse = None
        if mode != "dense":
            self.check_keywords(req.method)
            if self.sparse is not None and not self.builtin_bm25:
                sparse = self.sparse.embed_query(req.query)
        options: dict[str, Any] = {}
        if req.fusion is not None:
            options["fusion"] = req.fusion
        return Query(mode=mode, k=req.limit, vector=vector, sparse=sparse,  # type: ignore[arg-type]
                     text=req.query if isinstance(req.query, str) else None,
                     filter=_parse_filters(req.filters), offset=req.offset, alpha=req.alpha,
                     score_threshold=_score_threshold(req.distance, req.certainty, self.metric),
                     with_vectors=req.include_vector, **options)

    def job(self, req: _Request, hits: list[Hit | None], records: list[Record],
            max_tokens: int | None, encoding: str) -> _Job:
        name = self.backend.collection_name
        objects = []
        for hit, record in zip(hits, records, strict=True):
            objects.append(GenerativeObject(
                uuid=uuid.UUID(to_point_id(record.id)), id=record.id,
                properties=object_properties(record),
                metadata=_metadata(hit, req.method, self.metric),
                vector={self.backend.vector_name: record.vector} if record.vector else {},
                collection=name, record=record))
        singles = []
        if req.single_prompt is not None:
            singles = [single_prompt_for(req.single_prompt, o.properties, o.id) for o in objects]
        grouped: str | None = None
        dropped: list[str] = []
        truncated: list[str] = []
        if req.grouped_task is not None and objects:
            contexts = [_context(o.properties, req.grouped_properties) for o in objects]
            ids = [o.id for o, c in zip(objects, contexts, strict=True) if c]
            contexts = [c for c in contexts if c]
            if not contexts:
                raise PromptError(f"none of the {len(objects)} objects has any of "
                                  f"grouped_properties {req.grouped_properties}")
            grouped, dropped, truncated = fit_grouped(req.grouped_task, contexts, ids,
                                                      max_tokens, encoding)
        return _Job(objects, singles, grouped, dropped, truncated)


def _mean(vectors: list[list[float]]) -> list[float]:
    return [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]


class GenerativeSearch:
    """Weaviate's `collection.generate` methods over a store of either backend and framework.

    `llm` (LangChain or LlamaIndex) answers the prompts; `generative_provider=` per call
    overrides it. `embed_model` embeds queries for a LlamaIndex store (a LangChain store
    uses its own embedding). At most `max_concurrency` LLM calls run at once (threads in
    the sync methods, tasks in the async ones). `server_side=True` (default or per call)
    lets a Weaviate collection with a generative module do the work.

    The methods take weaviate-client 4.x's arguments with the same names and meanings:
    `limit` (default 10), `offset`, `filters` (a LangChain dict, LlamaIndex MetadataFilters,
    a core filter tree or a native engine filter), `include_vector`, `distance` /
    `certainty` (near_*), `alpha`, `vector`, `fusion_type` (hybrid). Prompts may be given
    as weaviate's `GenerativeParameters.single_prompt(...)` / `.grouped_task(...)` objects.
    Weaviate-only options (move_to, auto_limit, rerank, group_by, target_vector,
    return_properties, query_properties, ...) are not offered.
    """

    def __init__(self, store: Any, llm: Any = None, *, embed_model: Any = None,
                 max_concurrency: int = 8, max_context_tokens: int | None = None,
                 encoding: str = DEFAULT_ENCODING, server_side: bool = False) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_context_tokens is not None and max_context_tokens < 1:
            raise ValueError(f"max_context_tokens must be at least 1, got {max_context_tokens}")
        self.store = store
        self.source = _Source(store, embed_model)
        self.llm = _check_llm(llm) if llm is not None else None
        self.max_concurrency = max_concurrency
        self.max_context_tokens = max_context_tokens
        self.encoding = encoding
        self.server_side = server_side

    # --- requests -------------------------------------------------------------------------
    def _request(self, method: str, single_prompt: Any, grouped_task: Any,
                 grouped_properties: list[str] | None, generative_provider: Any,
                 server_side: bool | None, limit: int | None, offset: int | None,
                 **search: Any) -> _Request:
        single = _prompt_text(single_prompt, "single_prompt")
        task = _prompt_text(grouped_task, "grouped_task")
        if single is None and task is None:
            raise ValueError(f"generate.{method} needs single_prompt=, grouped_task= or both")
        if grouped_properties is None and task is not None and not isinstance(grouped_task, str):
            grouped_properties = getattr(grouped_task, "non_blob_properties", None)
        if grouped_properties is not None:
            if task is None:
                raise ValueError("grouped_properties applies to grouped_task; pass grouped_task=")
            if isinstance(grouped_properties, str) or not all(
                    isinstance(p, str) and p for p in grouped_properties):
                raise ValueError(f"grouped_properties must be a list of property names, "
                                 f"got {grouped_properties!r}")
            grouped_properties = list(grouped_properties)
        limit = DEFAULT_LIMIT if limit is None else limit
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if offset is not None and offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        server = self.server_side if server_side is None else server_side
        provider = generative_provider
        if not server:
            provider = _check_llm(provider, "generative_provider") if provider is not None \
                else self.llm
            if provider is None:
                raise ValueError("no LLM: pass llm= to GenerativeSearch or generative_provider= "
                                 "to the call")
        elif provider is not None and (isinstance(provider, Runnable) or hasattr(provider, "complete")):
            raise TypeError("server_side=True generates inside Weaviate: generative_provider= "
                            "must be a weaviate GenerativeConfig (e.g. GenerativeConfig.openai()),"
                            " not a client-side LLM")
        query = search.get("query")
        if method in ("hybrid", "bm25") and (not isinstance(query, str) or not query.strip()):
            raise ValueError(f"{method} needs a non-empty query string")
        if method == "near_text" and (not query or not all(
                isinstance(q, str) and q.strip() for q in ([query] if isinstance(query, str)
                                                           else query))):
            raise ValueError("near_text needs a query string or a list of them")
        if search.get("fusion") is not None:
            search["fusion"] = _fusion(search["fusion"])
        if search.get("vector") is not None:
            search["vector"] = [float(x) for x in search["vector"]]
        return _Request(method=method, single_prompt=single, grouped_task=task,
                        grouped_properties=grouped_properties, provider=provider,
                        server_side=server, raw_single=single_prompt, raw_grouped=grouped_task,
                        limit=limit, offset=offset or 0, **search)

    # --- drivers: the same steps, sync and async -------------------------------------------
    def _execute(self, req: _Request) -> GenerativeResult:
        if req.server_side:
            backend = _server_backend(self.source.backend)
            query = None if req.method == "fetch_objects" else \
                self.source.query(req, self._vector(req))
            return backend._run(_server_plan(backend, req, query))
        hits, records = self._retrieve(req)
        job = self.source.job(req, hits, records, self.max_context_tokens, self.encoding)
        prompts = job.prompts
        if len(prompts) <= 1 or self.max_concurrency == 1:
            answers = [_call(req.provider, p) for p in prompts]
        else:
            with ThreadPoolExecutor(min(self.max_concurrency, len(prompts))) as pool:
                answers = list(pool.map(lambda p: _call(req.provider, p), prompts))
        return job.finish(req, answers)

    async def _aexecute(self, req: _Request) -> GenerativeResult:
        if req.server_side:
            backend = _server_backend(self.source.backend)
            query = None if req.method == "fetch_objects" else \
                await asyncio.to_thread(self.source.query, req, await self._avector(req))
            return await backend._arun(_server_plan(backend, req, query))
        hits, records = await self._aretrieve(req)
        job = self.source.job(req, hits, records, self.max_context_tokens, self.encoding)
        limit = asyncio.Semaphore(self.max_concurrency)

        async def one(prompt: str) -> str:
            async with limit:
                return await _acall(req.provider, prompt)

        results = await asyncio.gather(*(one(p) for p in job.prompts), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return job.finish(req, [str(r) for r in results])

    def _vector(self, req: _Request) -> list[float] | None:
        if req.vector is not None or req.method not in ("near_text", "hybrid"):
            return req.vector
        texts = [req.query] if isinstance(req.query, str) else list(req.query or [])
        return _mean([self.source.embed(req.method, t) for t in texts])

    async def _avector(self, req: _Request) -> list[float] | None:
        if req.vector is not None or req.method not in ("near_text", "hybrid"):
            return req.vector
        texts = [req.query] if isinstance(req.query, str) else list(req.query or [])
        return _mean([await self.source.aembed(req.method, t) for t in texts])

    def _retrieve(self, req: _Request) -> tuple[list[Hit | None], list[Record]]:
        backend = self.source.backend
        if req.method == "fetch_objects":
            records = backend.scroll(_parse_filters(req.filters), req.limit + req.offset,
                                     req.include_vector)[req.offset:]
            return [None] * len(records), records
        query = self.source.query(req, self._vector(req))
        store = self.source.lc_store
        hits = store.search_hits(query) if store is not None else backend.search(query)
        return list(hits), [h.record for h in hits]

    async def _aretrieve(self, req: _Request) -> tuple[list[Hit | None], list[Record]]:
        backend = self.source.backend
        if req.method == "fetch_objects":
            records = await backend.ascroll(_parse_filters(req.filters), req.limit + req.offset,
                                            req.include_vector)
            records = records[req.offset:]
            return [None] * len(records), records
        # the sparse encoder (Qdrant) runs in a thread, off the event loop
        query = await asyncio.to_thread(self.source.query, req, await self._avector(req))
        store = self.source.lc_store
        hits = await store.asearch_hits(query) if store is not None else \
            await backend.asearch(query)
        return list(hits), [h.record for h in hits]

    # --- Weaviate's generate methods ---------------------------------------------------------
    def near_text(self, query: str | list[str], *, single_prompt: Any = None,
                  grouped_task: Any = None, grouped_properties: list[str] | None = None,
                  generative_provider: Any = None, certainty: float | None = None,
                  distance: float | None = None, limit: int | None = None,
                  offset: int | None = None, filters: Any = None, include_vector: bool = False,
                  server_side: bool | None = None) -> GenerativeResult:
        """Search near the embedded query (a list of concepts: their mean), then generate."""
        return self._execute(self._request(
            "near_text", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, query=query, certainty=certainty, distance=distance,
            filters=filters, include_vector=include_vector))

    async def anear_text(self, query: str | list[str], *, single_prompt: Any = None,
                         grouped_task: Any = None, grouped_properties: list[str] | None = None,
                         generative_provider: Any = None, certainty: float | None = None,
                         distance: float | None = None, limit: int | None = None,
                         offset: int | None = None, filters: Any = None,
                         include_vector: bool = False,
                         server_side: bool | None = None) -> GenerativeResult:
        return await self._aexecute(self._request(
            "near_text", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, query=query, certainty=certainty, distance=distance,
            filters=filters, include_vector=include_vector))

    def near_vector(self, near_vector: Sequence[float], *, single_prompt: Any = None,
                    grouped_task: Any = None, grouped_properties: list[str] | None = None,
                    generative_provider: Any = None, certainty: float | None = None,
                    distance: float | None = None, limit: int | None = None,
                    offset: int | None = None, filters: Any = None,
                    include_vector: bool = False,
                    server_side: bool | None = None) -> GenerativeResult:
        return self._execute(self._request(
            "near_vector", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, vector=near_vector, certainty=certainty,
            distance=distance, filters=filters, include_vector=include_vector))

    async def anear_vector(self, near_vector: Sequence[float], *, single_prompt: Any = None,
                           grouped_task: Any = None, grouped_properties: list[str] | None = None,
                           generative_provider: Any = None, certainty: float | None = None,
                           distance: float | None = None, limit: int | None = None,
                           offset: int | None = None, filters: Any = None,
                           include_vector: bool = False,
                           server_side: bool | None = None) -> GenerativeResult:
        return await self._aexecute(self._request(
            "near_vector", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, vector=near_vector, certainty=certainty,
            distance=distance, filters=filters, include_vector=include_vector))

    def hybrid(self, query: str, *, single_prompt: Any = None, grouped_task: Any = None,
               grouped_properties: list[str] | None = None, generative_provider: Any = None,
               alpha: float | None = None, vector: Sequence[float] | None = None,
               fusion_type: Any = None, limit: int | None = None, offset: int | None = None,
               filters: Any = None, include_vector: bool = False,
               server_side: bool | None = None) -> GenerativeResult:
        """Keyword + vector search (alpha: weight of the vector branch), then generate."""
        return self._execute(self._request(
            "hybrid", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, query=query, alpha=alpha, vector=vector,
            fusion=fusion_type, filters=filters, include_vector=include_vector))

    async def ahybrid(self, query: str, *, single_prompt: Any = None, grouped_task: Any = None,
                      grouped_properties: list[str] | None = None,
                      generative_provider: Any = None, alpha: float | None = None,
                      vector: Sequence[float] | None = None, fusion_type: Any = None,
                      limit: int | None = None, offset: int | None = None, filters: Any = None,
                      include_vector: bool = False,
                      server_side: bool | None = None) -> GenerativeResult:
        return await self._aexecute(self._request(
            "hybrid", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, query=query, alpha=alpha, vector=vector,
            fusion=fusion_type, filters=filters, include_vector=include_vector))

    def bm25(self, query: str, *, single_prompt: Any = None, grouped_task: Any = None,
             grouped_properties: list[str] | None = None, generative_provider: Any = None,
             limit: int | None = None, offset: int | None = None, filters: Any = None,
             include_vector: bool = False, server_side: bool | None = None) -> GenerativeResult:
        """Keyword search (Weaviate's BM25 index, or Qdrant's sparse vectors), then generate."""
        return self._execute(self._request(
            "bm25", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, query=query, filters=filters,
            include_vector=include_vector))

    async def abm25(self, query: str, *, single_prompt: Any = None, grouped_task: Any = None,
                    grouped_properties: list[str] | None = None, generative_provider: Any = None,
                    limit: int | None = None, offset: int | None = None, filters: Any = None,
                    include_vector: bool = False,
                    server_side: bool | None = None) -> GenerativeResult:
        return await self._aexecute(self._request(
            "bm25", single_prompt, grouped_task, grouped_properties, generative_provider,
            server_side, limit, offset, query=query, filters=filters,
            include_vector=include_vector))

    def fetch_objects(self, *, single_prompt: Any = None, grouped_task: Any = None,
                      grouped_properties: list[str] | None = None,
                      generative_provider: Any = None, limit: int | None = None,
                      offset: int | None = None, filters: Any = None,
                      include_vector: bool = False,
                      server_side: bool | None = None) -> GenerativeResult:
        """Objects in storage order (no ranking), then generate."""
        return self._execute(self._request(
            "fetch_objects", single_prompt, grouped_task, grouped_properties,
            generative_provider, server_side, limit, offset, filters=filters,
            include_vector=include_vector))

    async def afetch_objects(self, *, single_prompt: Any = None, grouped_task: Any = None,
                             grouped_properties: list[str] | None = None,
                             generative_provider: Any = None, limit: int | None = None,
                             offset: int | None = None, filters: Any = None,
                             include_vector: bool = False,
                             server_side: bool | None = None) -> GenerativeResult:
        return await self._aexecute(self._request(
            "fetch_objects", single_prompt, grouped_task, grouped_properties,
            generative_provider, server_side, limit, offset, filters=filters,
            include_vector=include_vector))

    # --- LCEL -----------------------------------------------------------------------------
    def as_runnable(self, mode: Method = "hybrid", *,
                    output: Literal["result", "text", "texts"] = "result",
                    **kwargs: Any) -> Runnable:
        """A Runnable: input = the query (a vector for near_vector; ignored by fetch_objects)
        or a dict of call arguments (`{"query": ..., "filters": ...}`) merged over `kwargs`.

        output: "result" the GenerativeResult, "text" the grouped answer, "texts" the
        single answers.
        """
        if mode not in METHODS:
            raise ValueError(f"mode must be one of {METHODS}, got {mode!r}")
        if output not in ("result", "text", "texts"):
            raise ValueError(f"output must be 'result', 'text' or 'texts', got {output!r}")
        method, amethod = getattr(self, mode), getattr(self, "a" + mode)
        positional = {"near_text": "query", "near_vector": "near_vector", "hybrid": "query",
                      "bm25": "query"}.get(mode)
        signature = inspect.signature(method)
        signature.bind_partial(**kwargs)  # unknown keywords fail here, not on first use

        def arguments(value: Any) -> dict[str, Any]:
            call = dict(kwargs)
            if isinstance(value, dict):
                call.update(value)
            elif positional is not None:
                call[positional] = value
            signature.bind(**call)
            return call

        def shape(result: GenerativeResult) -> Any:
            if output == "text":
                if result.generative is None:
                    raise ValueError("output='text' returns the grouped answer: pass grouped_task=")
                return result.generated
            if output == "texts":
                return [o.generated for o in result.objects]
            return result

        def run(value: Any) -> Any:
            return shape(method(**arguments(value)))

        async def arun(value: Any) -> Any:
            return shape(await amethod(**arguments(value)))

        return RunnableLambda(run, afunc=arun, name=f"generate.{mode}")



# --- server-side: Weaviate's own generative module --------------------------------------------

def _server_backend(backend: Any) -> Any:
    from .backends.weaviate import WeaviateBackend

    if not isinstance(backend, WeaviateBackend):
        raise UnsupportedError(f"server_side=True needs a Weaviate collection with a generative "
                               f"module; {type(backend).__name__} has no server-side generation "
                               "(use server_side=False and an llm)")
    return backend


def _server_plan(backend: Any, req: _Request, query: Query | None) -> Any:
    """A plan for the Weaviate backend's drivers (`_run` / `_arun`): one generate call.

    Placeholders and grouped_properties are mapped to the layout's property names first,
    so that an unknown name fails before Weaviate calls its model.
    """
    from weaviate.exceptions import WeaviateBaseError

    from .backends import weaviate_layout as layout
    from .backends.weaviate_filters import MATCH_NONE

    name = backend.collection_name
    config = yield "schema", "config.get", {}
    if config.generative_config is None and req.provider is None:
        raise UnsupportedError(
            f"Weaviate collection {name!r} has no generative module: create it with "
            "generative_config=Configure.Generative.<provider>(...) (or add one with "
            "collection.config.update(generative_config=Reconfigure.Generative...)), pass "
            "generative_provider=GenerativeConfig.<provider>(...), or use server_side=False")
    info = yield from backend._load_info(refresh=True)

    def stored(key: str) -> list[str]:
        if key in info.properties:
            return [key]
        # the value kinds only: "d" (dates) and "l" (lowercased) are derived copies of "s"
        return [p for p in (layout.property_for_key(key, kind) for kind in ("s", "n", "b"))
                if p in info.properties]

    def placeholder(key: str) -> str:
        found = stored(key)
        if not found:
            raise PromptError(f"placeholder {{{key}}} is neither a property of Weaviate "
                              f"collection {name!r} nor a metadata key stored in it")
        return "{" + found[0] + "}"

    args: dict[str, Any] = {}
    if req.single_prompt is not None:
        prompt = _substitute(req.single_prompt, placeholder)
        raw = req.raw_single
        args["single_prompt"] = prompt if isinstance(raw, str) else \
            raw.model_copy(update={"prompt": prompt})
    if req.grouped_task is not None:
        task = _substitute(req.grouped_task, placeholder)
        properties = [layout.TEXT, layout.METADATA_JSON]
        if req.grouped_properties is not None:
            properties = [p for key in req.grouped_properties for p in stored(key)]
            if not properties:
                raise PromptError(f"none of grouped_properties {req.grouped_properties} is a "
                                  f"property or stored metadata key of {name!r}")
        raw = req.raw_grouped
        if isinstance(raw, str):
            args.update(grouped_task=task, grouped_properties=properties)
        else:  # weaviate's _GroupedTask carries its own properties
            args["grouped_task"] = raw.model_copy(
                update={"prompt": task, "non_blob_properties": properties})
    if req.provider is not None:
        args["generative_provider"] = req.provider

    where = yield from backend._where(_parse_filters(req.filters))
    if query is None:
        method = "fetch_objects"
        args.update(limit=req.limit, offset=req.offset or None, filters=where,
                    **backend._fetch_args(info, req.include_vector))
    else:
        method, search = backend._search_args(query, info, where)
        args.update(search)
        if query.score_threshold is not None and search.get("distance") is None \
                and query.mode == "dense":
            where = MATCH_NONE  # no distance reaches that score
    if where is MATCH_NONE:
        return GenerativeResult([], GenerativeGrouped(None) if req.grouped_task else None,
                                server_side=True)
    try:
        result = yield "collection", f"generate.{method}", args
    except WeaviateBaseError as exc:
        text = str(exc)
        if "client not found" in text:
            raise UnsupportedError(f"Weaviate found no generative module for collection "
                                   f"{name!r}: {text}") from exc
        if "has empty value" in text or "no such prop" in text:
            raise PromptError(f"Weaviate could not fill a placeholder: {text}") from exc
        raise
    objects = []
    for obj in result.objects:
        hit = backend._hit(obj, info)
        single = None
        if req.single_prompt is not None:
            single = GenerativeSingle(text=obj.generative.text if obj.generative else None)
        objects.append(GenerativeObject(
            uuid=obj.uuid, id=hit.record.id, properties=object_properties(hit.record),
            metadata=_metadata(hit if method != "fetch_objects" else None, req.method,
                               backend.distance),
            generative=single, vector={backend.vector_name: hit.record.vector}
            if hit.record.vector else {}, collection=name, record=hit.record))
    grouped = None
    if req.grouped_task is not None:
        grouped = GenerativeGrouped(text=result.generative.text if result.generative else None)
    return GenerativeResult(objects, grouped, server_side=True)
