"""`rag-stores migrate SOURCE TARGET`: copy a collection between any two engine modes.

An endpoint is `ENGINE:COLLECTION[?option=value&...]`, the options being the backend's own
keyword arguments (`true` / `false` and integers are converted, `%xx` escapes decoded):

    qdrant:docs?path=./qdrant                      embedded Qdrant on disk (Edge; local mode
                                                   for folders it wrote)
    qdrant:docs?path=./qdrant&engine=local         qdrant-client's local mode
    qdrant:docs?url=http://127.0.0.1:6333&prefer_grpc=true
    weaviate:Docs                                  embedded Weaviate (the default folder)
    weaviate:Docs?url=http://127.0.0.1:8080&grpc_port=50051

Ids, text, metadata, LlamaIndex fields and vectors move without re-embedding (sparse vectors
where both sides store them), one batch in memory at a time, with a progress bar. A re-run
skips what the target already holds, so an interrupted migration resumes; at the end counts
and a random sample of records are compared. Collections written by langchain-qdrant or
llama-index-vector-stores-qdrant are read in their own layout and written in ours.
API keys are better given by environment (RAG_STORES_QDRANT_API_KEY,
RAG_STORES_WEAVIATE_API_KEY) than in an endpoint: they are never printed either way.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any
from urllib.parse import parse_qsl

ENGINES = ("qdrant", "weaviate")
_ENDPOINT = re.compile(r"^(?P<engine>[a-z]+):(?P<collection>[^?]+)(?:\?(?P<options>.*))?$")
_KEY_ENV = {"qdrant": "RAG_STORES_QDRANT_API_KEY", "weaviate": "RAG_STORES_WEAVIATE_API_KEY"}


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def parse_endpoint(spec: str) -> tuple[str, str, dict[str, Any]]:
    """(engine, collection, backend options) of `ENGINE:COLLECTION[?k=v&...]`."""
    match = _ENDPOINT.match(spec)
    if match is None or match["engine"] not in ENGINES:
        raise ValueError(f"endpoint {spec!r} is not ENGINE:COLLECTION[?option=value&...] with "
                         f"ENGINE one of {ENGINES} (e.g. qdrant:docs?path=./qdrant)")
    options = {key: _value(value) for key, value in
               parse_qsl(match["options"] or "", keep_blank_values=True, strict_parsing=False)}
    return match["engine"], match["collection"], options


def open_backend(spec: str) -> Any:
    """The backend an endpoint names (a misspelled option is an error naming it)."""
    engine, collection, options = parse_endpoint(spec)
    if "api_key" not in options and os.environ.get(_KEY_ENV[engine]) and (
            "url" in options or "host" in options):
        options["api_key"] = os.environ[_KEY_ENV[engine]]
    if engine == "qdrant":
        from .backends.qdrant import QdrantBackend

        if "url" in options or "host" in options:
            options.setdefault("check_compatibility", False)
        return QdrantBackend(collection, **options)
    from .backends.weaviate import WeaviateBackend

    return WeaviateBackend(collection, **options)


def _redact(spec: str) -> str:
    return re.sub(r"(api_key=)[^&]*", r"\1***", spec)


def migrate(source_spec: str, target_spec: str, batch_size: int = 256, sample: int = 20,
            progress: bool = True) -> dict[str, Any]:
    """Copy, resumably, then verify; returns the figures the command prints."""
    from .core.copy import copy_collection, verify_copy

    source = open_backend(source_spec)
    try:
        target = open_backend(target_spec)
        try:
            start = time.perf_counter()
            written = copy_collection(source, target, batch_size, skip_existing=True,
                                      progress=progress)
            seconds = time.perf_counter() - start
            problems = verify_copy(source, target, sample=sample)
            return {"written": written, "source_count": source.count(),
                    "target_count": target.count(), "seconds": seconds, "problems": problems}
        finally:
            target.close()
    finally:
        source.close()


def _cmd_migrate(args: argparse.Namespace) -> int:
    try:
        report = migrate(args.source, args.target, args.batch_size, args.sample,
                         progress=not args.quiet)
    except (ValueError, TypeError, LookupError, ConnectionError, PermissionError,
            RuntimeError) as exc:  # bad endpoints, missing collections, held folders
        print(f"rag-stores migrate: error: {exc}", file=sys.stderr)
        return 2
    print(f"{_redact(args.source)} -> {_redact(args.target)}: wrote {report['written']} records "
          f"in {report['seconds']:.1f}s (the rest were there already); source holds "
          f"{report['source_count']}, target {report['target_count']}")
    if report["problems"]:
        print("verification found differences:\n  " + "\n  ".join(report["problems"]),
              file=sys.stderr)
        return 1
    print(f"verified: counts agree and {args.sample} sampled records match")
    return 0


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate", help="copy a collection between engines and modes (resumable, verified)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="ENGINE:COLLECTION[?option=value&...]")
    parser.add_argument("target", help="ENGINE:COLLECTION[?option=value&...]")
    parser.add_argument("--batch-size", type=int, default=256, help="records per batch")
    parser.add_argument("--sample", type=int, default=20, help="records compared at the end")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_migrate)
