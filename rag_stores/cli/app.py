"""`rag-stores demo | ingest | query | ask`: the arguments, and the output of the library's
functions in `rag_stores.app` (chunking, stores, search, the LLM choice, `write_files`,
`retrieve`, `answer`)."""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .. import app
from ..core.query import Query


def _label(chunk_id: str) -> str:
    """`gzip#0` -> `gzip`: the demo's first chunks are named by their module alone."""
    return chunk_id[:-2] if chunk_id.endswith("#0") else chunk_id


def _open_demo_store(args: argparse.Namespace, stack: ExitStack) -> tuple[Any, str]:
    if args.backend == "qdrant":
        where = args.url or "embedded Qdrant, in memory"
        store = app.open_store("qdrant", "rag_stores_demo", path=None if args.url else ":memory:",
                           url=args.url)
    else:
        from ..servers.weaviate import WeaviateServer

        options: dict[str, Any] = {"grpc_port": args.grpc_port}
        url = args.url
        if url:
            where = url
        else:  # a private server of this run on free ports, its data in a temporary folder
            server = stack.enter_context(WeaviateServer())
            url, options = server.url, {"grpc_port": server.grpc_port}
            where = "a private Weaviate server (temporary data folder)"
        store = app.open_store("weaviate", "RagStoresDemo", url=url, **options)
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
        raise app.AppError(f"--k must be at least 1, got {args.k}")
    with ExitStack() as stack:
        t0 = time.perf_counter()
        chunks = app.stdlib_chunks(args.limit)
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
        queries = args.query or list(app.DEMO_QUERIES)
        for text in queries:
            print(f"query: {text!r}")
            columns = {}
            for mode in ("dense", "sparse", "hybrid", "mmr"):
                hits = store.search_hits(
                    app.make_query(store, text, mode, args.k))  # type: ignore[arg-type]
                columns["bm25" if mode == "sparse" else mode] = [h.record.id for h in hits]
            top = columns["dense"][:1]
            if top:  # more like the best dense hit (which itself is left out)
                hits = store.search_hits(Query(mode="recommend", k=args.k, positive=top))
                columns[f"like {_label(top[0])}"] = [h.record.id for h in hits]
            rows = [[str(i + 1)] + [_label(c[i]) if i < len(c) else "" for c in columns.values()]
                    for i in range(args.k)]
            print(app.table(["#", *columns], rows, [2] + [15] * (len(columns) - 1) + [20]))
            print()
        _demo_generation(store, queries[0], args)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s")
    return 0


def _demo_generation(store: Any, query: str, args: argparse.Namespace) -> None:
    """A grouped task over the hybrid results, and a single prompt per result."""
    from langchain_core.runnables import RunnableLambda

    from ..generate import GenerativeSearch

    llm, why = app.choose_llm(args.llm)
    print(f"grouped generation over the hybrid results for {query!r}")
    print(f"LLM: {why}")
    # Without an LLM, a stand-in that answers nothing: the prompts are built exactly as sent.
    # Short answers are asked for; max_tokens keeps a small model from rambling on.
    answerer = llm.bind(max_tokens=64) if llm is not None else RunnableLambda(lambda p: "")
    search = GenerativeSearch(store, answerer, max_context_tokens=1500)
    t0 = time.perf_counter()
    result = search.hybrid(query, limit=args.k, grouped_task=app.DEMO_TASK.format(query=query),
                           grouped_properties=["module", "text"], single_prompt=app.DEMO_SINGLE)
    if llm is None:
        print("so no answers; these are the exact prompts the LLM would get:")
        print("-" * 72)
        for prompt in [*result.prompts.single, result.prompts.grouped]:
            print(prompt)
            print("-" * 72)
        return
    for obj in result.objects:
        print(f"  {obj.properties.get('module', '?'):16} {app._short(obj.generated or '', 80)}")
    print(f"grouped answer: {app._short(result.generated or '', 400)}")
    print(f"(generation: {time.perf_counter() - t0:.1f}s)")


# --- ingest / query -------------------------------------------------------------------------
def _store_args(args: argparse.Namespace, create: bool) -> Any:
    options = {}
    if args.api_key and not args.url:
        raise app.AppError("--api-key is for a server: give its --url too (embedded stores take "
                       "no key)")
    if args.url:  # a server: the key from --api-key, else from the environment
        key = args.api_key or os.environ.get(app.API_KEY_ENV[args.backend])
        if key:
            options["api_key"] = key
    return app.open_store(args.backend, args.collection, path=args.path, url=args.url,
                      grpc_port=args.grpc_port, create=create,
                      progress=not args.quiet if create else None, **options)


def _ingest(args: argparse.Namespace) -> int:
    not_read: list[str] = []
    files = app.collect_files(args.paths, not_read)
    for line in not_read:
        print(f"rag-stores ingest: skipped {line}", file=sys.stderr)
    root = Path(args.root).expanduser() if args.root else Path.cwd()
    overlap = args.overlap if args.overlap is not None else min(app.DEFAULT_OVERLAP,
                                                                 args.chunk_tokens // 10)
    t0 = time.perf_counter()
    try:
        prepared = [app.file_chunks(f, root, args.chunk_tokens, overlap) for f in files]
    except ValueError as exc:
        raise app.AppError(str(exc).replace("max_tokens", "--chunk-tokens")
                       .replace("overlap", "--overlap")) from None
    with ExitStack() as stack:
        store = _store_args(args, create=True)
        stack.callback(store.close)
        written, skipped = app.write_files(store, prepared, force=args.force)
        total = store.backend.count()
    print(f"{len(files)} file(s): {written} chunk(s) written, {skipped} file(s) unchanged; "
          f"collection {args.collection!r} holds {total} chunk(s) "
          f"({time.perf_counter() - t0:.1f}s)")
    return 0


def _hits(args: argparse.Namespace, text: str) -> list[Any]:
    """The hits of `text` in the collection the arguments name (query and ask alike)."""
    flt = app.parse_filter_json(args.filter)
    if args.k < 1:
        raise app.AppError(f"--k must be at least 1, got {args.k}")
    with ExitStack() as stack:
        store = _store_args(args, create=False)
        stack.callback(store.close)
        return app.retrieve(store, text, args.mode, args.k, flt)


def _query(args: argparse.Namespace) -> int:
    hits = _hits(args, args.text)
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, 1):
        score = "" if args.mode == "mmr" else f"{hit.score:7.3f}"
        print(f"{rank:2}  {score:7}  {hit.record.id}")
        print(f"    {app._short(hit.record.text, 150)}")
    return 0


def _ask(args: argparse.Namespace) -> int:
    hits = _hits(args, args.question)
    llm, why = app.choose_llm(args.llm)
    if llm is None:
        print(f"LLM: {why}\nso no answer; this is the exact prompt the LLM would get:")
        for role, text in app.ask_prompt(args.question, hits):
            print(f"--- {role}\n{text}")
    else:
        t0 = time.perf_counter()
        text = app.answer(llm, args.question, hits)
        print(text)
        print(f"({app._short(why, 60)}; {time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    print("sources:" if hits else "sources: none found")
    for n, hit in enumerate(hits, 1):
        print(f"  [{n}] {hit.record.id}  {app._short(hit.record.text, 90)}")
    return 0


def _run(command: Any) -> Any:
    from ..core.query import StorageLockedError

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args) or 0)
        except (app.AppError, ConnectionError, StorageLockedError) as exc:
            message = str(exc)  # StorageLockedError: a Qdrant Edge folder another process holds
        except PermissionError as exc:  # a server refused the API key, or a file is unreadable
            env = app.API_KEY_ENV.get(getattr(args, "backend", ""), "")
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
    parser.add_argument("--collection", default=app.DEFAULT_COLLECTION,
                        help=f"collection name (default {app.DEFAULT_COLLECTION!r})")
    parser.add_argument("--backend", choices=("qdrant", "weaviate"), default="qdrant")
    parser.add_argument("--path", default=None,
                        help=f"data folder (default: qdrant {app.default_qdrant_path()}, weaviate "
                             "~/.local/share/rag-stores/weaviate)")
    _server_args(parser)
    parser.add_argument("--api-key", default=None,
                        help="the server's API key (with --url). Prefer the environment "
                             f"variable ${app.API_KEY_ENV['qdrant']} (Qdrant) or "
                             f"${app.API_KEY_ENV['weaviate']} (Weaviate), read when this option is "
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
    demo.add_argument("--llm", choices=app.LLM_CHOICES, default=None,
                      help=f"auto (default, or ${app.LLM_ENV}): an OpenAI-compatible endpoint from "
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
    ingest.add_argument("--chunk-tokens", type=int, default=app.DEFAULT_CHUNK_TOKENS,
                        help=f"tokens per chunk at most (default {app.DEFAULT_CHUNK_TOKENS})")
    ingest.add_argument("--overlap", type=int, default=None,
                        help="tokens shared by consecutive windows of an unbreakable run "
                             f"(default {app.DEFAULT_OVERLAP}, at most a tenth of --chunk-tokens)")
    ingest.add_argument("--force", action="store_true", help="re-embed unchanged files too")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=_run(_ingest))

    query = subparsers.add_parser("query", help="search a collection")
    query.add_argument("text", metavar="TEXT")
    query.add_argument("--mode", choices=app.QUERY_MODES, default="hybrid")
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
    ask.add_argument("--mode", choices=app.QUERY_MODES, default="hybrid")
    ask.add_argument("--k", type=int, default=4, help="sources to give the LLM (default 4)")
    ask.add_argument("--filter", default=None,
                     help='metadata filter as JSON, e.g. \'{"source": "docs/a.md"}\'')
    ask.add_argument("--llm", choices=app.LLM_CHOICES, default=None,
                     help=f"auto (default, or ${app.LLM_ENV}), openai, local or none")
    _location_args(ask)
    ask.set_defaults(func=_run(_ask), quiet=True)
