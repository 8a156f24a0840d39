"""End-to-end RAG quality on the demo's corpus: retrieve, answer, and check the answer.

    python benchmarks/bench_rag_quality.py [--engines qdrant,weaviate] [--questions N] [--k 4]

The corpus is `rag-stores demo`'s: the docstrings of the standard library's modules (300
chunks, every module's first chunk first). Each question below was written from one
module's docstring and has that module as its answer. For every retrieval mode (dense, BM25,
hybrid, hybrid + MMR) on both embedded engines (Qdrant in memory, a private Weaviate server or
$RAG_STORES_WEAVIATE_URL) the question goes through `rag-stores ask`'s pipeline
(`app.retrieve`, `app.ask_prompt`, `app.answer`) and two fractions are kept:
- retrieved: the expected module is among the k chunks given to the LLM (the retrieval half);
- answered: the LLM's answer names the expected module (the whole pipeline).
LLMs: the local model (SmolLM2-135M-Instruct on OpenVINO GenAI) and, when OPENAI_BASE_URL /
OPENAI_API_KEY are set, that endpoint too; with RAG_STORES_LLM=none only `retrieved` is
measured. Identical prompts are answered once (greedy decoding: the same answer).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag_stores import app  # noqa: E402
from rag_stores.core.mmr import mmr_select  # noqa: E402

# (question, the module whose docstring answers it)
QUESTIONS: list[tuple[str, str]] = [
    ("Which module parses command line options in the style of the C getopt() function?", "getopt"),
    ("Which module reads from and writes to tar format archives?", "tarfile"),
    ("Which module reads and writes gzipped files?", "gzip"),
    ("Which module is the interface to the libbzip2 compression library?", "bz2"),
    ("Which module is the interface to the liblzma compression library?", "lzma"),
    ("Which module reads, writes and investigates CSV files?", "csv"),
    ("Which module gives a DB-API 2.0 interface to the SQLite library?", "sqlite3"),
    ("Which module implements the heap queue algorithm, also known as a priority queue?", "heapq"),
    ("Which module manages shelves: persistent, dictionary-like objects of pickled values?", "shelve"),
    ("Which module creates portable serialized representations of Python objects?", "pickle"),
    ("Which module provides generic shallow and deep copying operations?", "copy"),
    ("Which module has helpers for computing deltas between sequences, such as get_close_matches?", "difflib"),
    ("Which module does text wrapping and filling?", "textwrap"),
    ("Which module has calendar printing functions?", "calendar"),
    ("Which module implements infinite-precision rational numbers?", "fractions"),
    ("Which module calculates averages, variance and other statistics of data?", "statistics"),
    ("Which module generates cryptographically strong random numbers for passwords and tokens?", "secrets"),
    ("Which module implements keyed-hashing for message authentication (RFC 2104)?", "hmac"),
    ("Which module provides Base16, Base32, Base64 and Base85 data encodings?", "base64"),
    ("Which module creates temporary files and directories?", "tempfile"),
    ("Which module copies and archives files and whole directory trees?", "shutil"),
    ("Which module matches file names against shell patterns?", "fnmatch"),
    ("Which module compares files and directories?", "filecmp"),
    ("Which module is an SMTP/ESMTP client for sending mail?", "smtplib"),
    ("Which module is an IMAP4 client?", "imaplib"),
    ("Which module is a POP3 client?", "poplib"),
    ("Which module is an FTP client (RFC 959)?", "ftplib"),
    ("Which module manipulates IPv4 and IPv6 addresses and networks?", "ipaddress"),
    ("Which module guesses the MIME type of a file from its name?", "mimetypes"),
    ("Which module reads and writes Maildir, mbox and MH mailboxes?", "mailbox"),
    ("Which module pretty-prints lists, tuples and dictionaries?", "pprint"),
    ("Which module measures the execution time of small code snippets?", "timeit"),
    ("Which module is the Python debugger?", "pdb"),
    ("Which module extracts, formats and prints stack traces?", "traceback"),
    ("Which module has utilities for with-statement contexts?", "contextlib"),
    ("Which module disassembles Python byte code into mnemonics?", "dis"),
    ("Which module breaks Python source code into tokens?", "tokenize"),
    ("Which module provides internationalization and localization (I18N) support?", "gettext"),
    ("Which module is a multi-producer, multi-consumer queue?", "queue"),
    ("Which module is a general event scheduler?", "sched"),
    ("Which module spawns processes and connects to their input, output and error pipes?", "subprocess"),
    ("Which module converts colours between RGB and other colour systems?", "colorsys"),
    ("Which module parses configuration files with [section] headers?", "configparser"),
    ("Which module is an object-oriented interface to .netrc files?", "netrc"),
    ("Which module converts to and from quoted-printable transport encoding?", "quopri"),
    ("Which module builds line-oriented command interpreters?", "cmd"),
    ("Which module is a lexical analyzer for simple shell-like syntaxes?", "shlex"),
    ("Which module prompts for a password without echoing it?", "getpass"),
]
MODES = ("dense", "bm25", "hybrid", "hybrid+mmr")


def names(answer: str, module: str) -> bool:
    """Whether `answer` names `module` as a word (`gzip`, `gzip.open`; not `gzipped`)."""
    return re.search(rf"(?<![\w.]){re.escape(module)}(?!\w)", answer, re.IGNORECASE) is not None


def retrieve(store: Any, question: str, mode: str, k: int) -> list[Any]:
    """k hits for a mode; hybrid+mmr: MMR (lambda 0.5) over 20 hybrid candidates."""
    if mode != "hybrid+mmr":
        return app.retrieve(store, question, "sparse" if mode == "bm25" else mode, k)
    query = app.make_query(store, question, "hybrid", max(20, 4 * k), with_vectors=True)
    candidates = [h for h in store.search_hits(query) if h.record.vector is not None]
    picked = mmr_select(query.vector or [], [h.record.vector for h in candidates], k, 0.5)
    return [candidates[i] for i in picked]


def open_engine(engine: str, stack: ExitStack, embedding: Any) -> Any:
    """The demo's corpus in an embedded store of `engine`."""
    if engine == "qdrant":
        store = app.open_store("qdrant", "rag_quality", path=":memory:", embedding=embedding,
                               progress=False)
    else:
        url = os.environ.get("RAG_STORES_WEAVIATE_URL")
        grpc = int(os.environ.get("RAG_STORES_WEAVIATE_GRPC_PORT", "50051"))
        if not url:  # a private server on free ports, its data in a temporary folder
            from rag_stores.servers.weaviate import WeaviateServer

            server = stack.enter_context(WeaviateServer())
            url, grpc = server.url, server.grpc_port
        store = app.open_store("weaviate", "RagQuality", url=url, grpc_port=grpc,
                               embedding=embedding, progress=False)
        stack.callback(store.close)  # after the drop below (callbacks run last-in first-out)
        if store.backend.exists():
            store.backend.drop()
        stack.callback(store.backend.drop)
    if engine == "qdrant":
        stack.callback(store.close)
    chunks = app.stdlib_chunks(300)
    store.add_texts([c.text for c in chunks], [c.metadata for c in chunks],
                    ids=[c.id for c in chunks])
    return store


def llms() -> list[tuple[str, Any]]:
    """(label, chat model): the local model, and an OpenAI-compatible endpoint if configured."""
    if (os.environ.get(app.LLM_ENV) or "auto") == "none":
        return []
    found = []
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        found.append(("openai", app.choose_llm("openai")[0]))
    local, _ = app.choose_llm("local")
    found.append(("SmolLM2-135M", local))
    return found


def run(engines: Sequence[str] = ("qdrant", "weaviate"), questions: int | None = None,
        k: int = 4, log: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """One row per (engine, mode, LLM): retrieved and answered fractions, seconds."""
    from embedders.langchain import FastEmbedEmbeddings

    asked = QUESTIONS[:questions]
    models = llms()
    log(f"{len(asked)} questions, k={k}, LLMs: {', '.join(m for m, _ in models) or 'none'}")
    embedding = FastEmbedEmbeddings()
    answers: dict[tuple[str, str], str] = {}  # (llm, prompt) -> answer
    rows = []
    with ExitStack() as stack:
        for engine in engines:
            t0 = time.perf_counter()
            store = open_engine(engine, stack, embedding)
            log(f"{engine}: 300 chunks ingested in {time.perf_counter() - t0:.1f}s")
            for mode in MODES:
                t0 = time.perf_counter()
                found = [(q, module, retrieve(store, q, mode, k)) for q, module in asked]
                retrieved = sum(any(h.record.metadata.get("module") == module for h in hits)
                                for _, module, hits in found) / len(found)
                row = {"engine": engine, "mode": mode, "llm": "none", "questions": len(found),
                       "retrieved": retrieved, "answered": None,
                       "seconds": time.perf_counter() - t0}
                for label, llm in models:
                    t0 = time.perf_counter()
                    right = 0
                    for q, module, hits in found:
                        key = (label, json.dumps(app.ask_prompt(q, hits)))
                        if key not in answers:
                            answers[key] = app.answer(llm, q, hits)
                        right += names(answers[key], module)
                    rows.append({**row, "llm": label, "answered": right / len(found),
                                 "seconds": time.perf_counter() - t0})
                if not models:
                    rows.append(row)
                log(format_row(rows[-1]))
    return rows


def format_row(row: dict[str, Any]) -> str:
    answered = "-" if row["answered"] is None else f"{row['answered']:.2f}"
    return (f"{row['engine']:8} {row['mode']:11} {row['llm']:13} {row['retrieved']:9.2f} "
            f"{answered:>8} {row['seconds']:7.1f}")


def table(rows: Sequence[dict[str, Any]]) -> str:
    header = f"{'engine':8} {'mode':11} {'llm':13} {'retrieved':>9} {'answered':>8} {'seconds':>7}"
    return "\n".join([header, "-" * len(header), *map(format_row, rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="qdrant,weaviate")
    parser.add_argument("--questions", type=int, default=None, help="the first N only")
    parser.add_argument("--k", type=int, default=4, help="chunks given to the LLM")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = run(args.engines.split(","), args.questions, args.k, log=lambda s: None)
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
