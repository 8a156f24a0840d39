"""Issue 25, the command line: what `ingest` reads, API keys for `ingest` / `query` against
servers, and `migrate` with tenants, numeric option values and credentials (never printed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.cli import main


@pytest.fixture(autouse=True)
def _models(seeded_models, monkeypatch, tmp_path):
    """Models seeded once; no key leaks in from the environment; data under the test's folder."""
    for var in ("RAG_STORES_QDRANT_API_KEY", "RAG_STORES_WEAVIATE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_ids(path: Path, collection: str = "docs") -> set[str]:
    backend = QdrantBackend(collection, path=str(path))
    try:
        return {r.id for r in backend.scroll()}
    finally:
        backend.close()


# --- 1. ingest reads only .txt / .md files inside the folder -----------------------------------
def _notes_with_links(tmp_path: Path) -> Path:
    notes, outside = tmp_path / "notes", tmp_path / "outside"
    (notes / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("the secret outside the folder")
    (outside / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    (notes / "real.md").write_text("A real note about cats.")
    (notes / "sub" / "run.sh").write_text("echo a script, not a note")
    (notes / "readme.md").symlink_to("../outside/secret.txt")  # a link out of the folder
    (notes / "key.md").symlink_to(outside / "id_rsa")  # out, and not a text file
    (notes / "script.md").symlink_to("sub/run.sh")  # inside, but not a .txt / .md file
    (notes / "same.md").symlink_to("real.md")  # inside: fine (the same file, once)
    (notes / "elsewhere").symlink_to("../outside", target_is_directory=True)
    return notes


def test_ingest_of_a_folder_skips_links_out_of_it_and_says_so(tmp_path, capsys):
    notes = _notes_with_links(tmp_path)
    data = tmp_path / "qdrant"
    code, out, err = run(capsys, "ingest", str(notes), "--root", str(tmp_path), "--path",
                         str(data), "--quiet")
    assert code == 0, err
    assert stored_ids(data) == {"notes/real.md#0"}
    assert "1 file(s): 1 chunk(s) written" in out
    for name, why in (("readme.md", "outside"), ("key.md", "outside"),
                      ("script.md", "not a .txt or .md file")):
        line = next((x for x in err.splitlines() if f"notes/{name}" in x), "")
        assert line.startswith("rag-stores ingest: skipped") and why in line, err
    assert "secret" not in out


def test_a_file_named_on_the_command_line_must_be_text(tmp_path, capsys):
    notes = _notes_with_links(tmp_path)
    data = tmp_path / "qdrant"
    for named, message in ((notes / "script.md", "links to a file that is not .txt or .md"),
                           (tmp_path / "outside" / "id_rsa", "only .txt and .md files")):
        code, out, err = run(capsys, "ingest", str(named), "--path", str(data), "--quiet")
        assert code == 2 and message in err and err.startswith("rag-stores ingest: error:"), err
    assert not data.exists() or stored_ids(data) == set()
    # a link named explicitly is the user's choice: it is read like the file it points to
    code, _, err = run(capsys, "ingest", str(notes / "readme.md"), "--root", str(tmp_path),
                       "--path", str(data), "--quiet")
    assert code == 0, err
    assert stored_ids(data) == {"outside/secret.txt#0"}
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "is refused" in " ".join(capsys.readouterr().out.split())


# --- 4. ingest / query against servers that want an API key -------------------------------------
def _auth_cases(request, backend: str):
    """(server, location arguments, environment variable) for a server that wants a key."""
    import uuid

    if backend == "qdrant":
        server = request.getfixturevalue("qdrant_auth_server")
        where = ["--url", server.url, "--collection", f"auth_{uuid.uuid4().hex[:8]}"]
        return server, where, "RAG_STORES_QDRANT_API_KEY"
    server = request.getfixturevalue("weaviate_auth_server")
    where = ["--backend", "weaviate", "--url", server.url, "--grpc-port", str(server.grpc_port),
             "--collection", f"Auth{uuid.uuid4().hex[:8]}"]
    return server, where, "RAG_STORES_WEAVIATE_API_KEY"


@pytest.mark.parametrize("backend", ["qdrant", "weaviate"])
def test_ingest_and_query_take_the_key_from_the_environment_or_api_key(
        backend, request, tmp_path, capsys, monkeypatch):
    server, where, env = _auth_cases(request, backend)
    doc = tmp_path / "a.md"
    doc.write_text("Weaviate and Qdrant are vector databases.")
    ingest = ["ingest", str(doc), "--root", str(tmp_path), "--quiet", *where]
    query = ["query", "vector database", "--k", "1", *where]
    # no key, and a wrong key: one line naming the variable, no traceback, the key never shown
    for key in (None, "not-the-key-4711"):
        if key is not None:
            monkeypatch.setenv(env, key)
        for argv in (ingest, query):
            code, out, err = run(capsys, *argv)
            assert code == 2, (argv, out, err)
            assert err.startswith(f"rag-stores {argv[0]}: error:") and err.count("\n") == 1, err
            assert "refused" in err and env in err and "Traceback" not in err
            assert key is None or key not in out + err
    monkeypatch.setenv(env, server.api_key)  # the environment variable
    code, out, err = run(capsys, *ingest)
    assert code == 0 and "1 chunk(s) written" in out, err
    code, out, err = run(capsys, *query)
    assert code == 0 and "a.md#0" in out, err
    monkeypatch.setenv(env, "not-the-key-4711")  # --api-key wins over the environment
    code, out, err = run(capsys, *query, "--api-key", server.api_key)
    assert code == 0 and "a.md#0" in out, err
    assert server.api_key not in out + err


def test_api_key_needs_a_server_and_its_help_prefers_the_environment(tmp_path, capsys):
    code, _, err = run(capsys, "query", "x", "--path", str(tmp_path / "q"), "--api-key", "k")
    assert code == 2 and "--api-key is for a server: give its --url too" in err
    for command in ("ingest", "query"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "RAG_STORES_QDRANT_API_KEY" in text and "RAG_STORES_WEAVIATE_API_KEY" in text
        assert "show in `ps`" in text


# --- 5. servers started with --api-key --------------------------------------------------------
@pytest.mark.parametrize("argv, env", [
    (["qdrant", "serve"], "RAG_STORES_QDRANT_API_KEY"),
    (["qdrant", "cluster"], "RAG_STORES_QDRANT_API_KEY"),
    (["weaviate", "serve"], "RAG_STORES_WEAVIATE_API_KEY"),
    (["weaviate", "cluster"], "RAG_STORES_WEAVIATE_API_KEY")])
def test_serve_help_says_the_key_shows_in_ps_and_names_the_variable(argv, env, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    help_text = text[text.index("--api-key API_KEY"):]
    assert "shows in `ps`" in help_text and f"Prefer setting ${env}" in help_text
