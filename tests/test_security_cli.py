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
