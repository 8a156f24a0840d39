"""Issue 25, the command line: what `ingest` reads, API keys for `ingest` / `query` against
servers, and `migrate` with tenants, numeric option values and credentials (never printed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.cli import main
from tests.test_app import run


@pytest.fixture(autouse=True)
def _models(seeded_models, monkeypatch, tmp_path):
    """Models seeded once; no key leaks in from the environment; data under the test's folder."""
    for var in ("RAG_STORES_QDRANT_API_KEY", "RAG_STORES_WEAVIATE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


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
    (notes / ".private").mkdir()
    (notes / ".private" / "diary.md").write_text("hidden folders are not read")
    (notes / "diary.md").symlink_to(".private/diary.md")  # inside, but hidden
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
                      ("script.md", "links to run.sh, not a .txt or .md file"),
                      ("diary.md", "links to a hidden file")):
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


# --- 2. migrate carries the tenants of a multi-tenant collection -----------------------------
TENANTS = ("acme", "globex")


def _records(tenant: str, n: int = 10) -> list:
    from rag_stores.core.records import Record

    return [Record(id=f"doc-{i}", text=f"{tenant} {i}", metadata={"i": i, "who": tenant},
                   vector=[1.0, i / n, 0.5, len(tenant) / 10]) for i in range(n)]


def _endpoint(kind: str, name: str, folder: Path, request) -> tuple[str, dict]:
    """(endpoint, backend options) of a collection on one engine mode."""
    if kind in ("local", "edge"):
        options = {"path": str(folder), "engine": kind}
        return f"qdrant:{name}?path={folder}&engine={kind}", options
    if kind == "server":
        server = request.getfixturevalue("qdrant_server")
        return f"qdrant:{name}?url={server.url}", {"url": server.url, "check_compatibility": False}
    server = request.getfixturevalue("weaviate_server")
    return (f"weaviate:{name}?url={server.url}&grpc_port={server.grpc_port}",
            {"url": server.url, "grpc_port": server.grpc_port})


def _open(kind: str, name: str, options: dict, tenant: str | None = None):
    if kind == "weaviate":
        from rag_stores.backends.weaviate import WeaviateBackend

        return WeaviateBackend(name, tenant=tenant, **options)
    return QdrantBackend(name, tenant=tenant, **options)


def _write_tenants(kind: str, name: str, options: dict, plain: int = 0) -> None:
    """Two tenants with the same ids and different texts; `plain` records without a tenant."""
    for tenant in TENANTS:
        backend = _open(kind, name, options, tenant)
        backend.ensure_collection(4, False)
        backend.upsert(_records(tenant))
        backend.close()
    if plain:
        backend = _open(kind, name, options)
        backend.upsert(_records("plain", plain))
        backend.close()


@pytest.mark.parametrize("source_kind, target_kind", [
    ("local", "edge"), ("edge", "local"), ("edge", "weaviate"), ("server", "weaviate"),
    ("local", "server"), ("weaviate", "edge")])
def test_migrate_copies_every_tenant_into_its_own_tenant(source_kind, target_kind, tmp_path,
                                                         request):
    from rag_stores.migrate import migrate
    from tests.conformance import fresh_name

    name = fresh_name("Tenants")
    source, source_options = _endpoint(source_kind, name, tmp_path / "source", request)
    target, target_options = _endpoint(target_kind, name, tmp_path / "target", request)
    _write_tenants(source_kind, name, source_options)
    report = migrate(source, target, progress=False)
    assert report["problems"] == [] and report["written"] == 20, report
    assert report["tenants"] == list(TENANTS)
    assert report["source_count"] == report["target_count"] == 20
    for tenant in TENANTS:  # each tenant's records, in its own tenant, none overwritten
        moved = _open(target_kind, name, target_options, tenant)
        assert sorted((r.id, r.text) for r in moved.scroll()) == sorted(
            (r.id, r.text) for r in _records(tenant))
        assert moved.get(["doc-3"])[0].metadata == {"i": 3, "who": tenant}
        moved.close()
    again = migrate(source, target, progress=False)  # resumable per tenant: nothing to do
    assert again["written"] == 0 and again["problems"] == []
    for kind, options in ((source_kind, source_options), (target_kind, target_options)):
        if kind in ("server", "weaviate"):
            for tenant in TENANTS:
                backend = _open(kind, name, options, tenant)
                backend.drop()
                backend.close()


def test_migrate_of_tenants_and_records_without_one(tmp_path, request):
    """Records without a tenant beside tenants' records: all carried to a Qdrant target; a
    Weaviate target (whose multi-tenant collections hold only tenants' records) is refused."""
    from rag_stores.migrate import migrate
    from tests.conformance import fresh_name

    name = fresh_name("Mixed")
    source, options = _endpoint("edge", name, tmp_path / "source", request)
    _write_tenants("edge", name, options, plain=3)
    weaviate, _ = _endpoint("weaviate", name, tmp_path, request)
    with pytest.raises(ValueError, match=r"3 records without a tenant.*'acme', 'globex'"):
        migrate(source, weaviate, progress=False)
    with pytest.raises(ValueError, match=r"tenants \['acme', 'globex'\].*tenant='acme'"):
        migrate(source, weaviate + "&tenant=acme", progress=False)
    target, target_options = _endpoint("local", name, tmp_path / "target", request)
    report = migrate(source, target, progress=False)
    assert report["problems"] == [] and report["written"] == 23, report
    assert report["source_count"] == report["target_count"] == 23
    everything = _open("local", name, target_options)
    assert sorted(r.text for r in everything.scroll() if r.text.startswith("plain")) == [
        "plain 0", "plain 1", "plain 2"]
    everything.close()
    one = migrate(source + "&tenant=globex", f"qdrant:{name}?path={tmp_path / 'one'}",
                  progress=False)  # one tenant named: that tenant only, as before
    assert one["written"] == 10 and one["problems"] == [] and one["tenants"] == []


# --- 3. migrate endpoints: typed option values, repeated options, credentials never printed -----
def test_endpoint_values_are_typed_by_the_backend_parameter():
    from rag_stores.migrate import parse_endpoint

    assert parse_endpoint("qdrant:docs?api_key=918273645&tenant=2024&port=6333&prefer_grpc=true"
                          "&path=007&timeout=30") == ("qdrant", "docs", {
                              "api_key": "918273645", "tenant": "2024", "port": 6333,
                              "prefer_grpc": True, "path": "007", "timeout": 30})
    assert parse_endpoint("weaviate:Docs?grpc_port=50051&timeout=2.5&tenant=42&api_key=1") == (
        "weaviate", "Docs", {"grpc_port": 50051, "timeout": 2.5, "tenant": "42", "api_key": "1"})
    with pytest.raises(ValueError, match=r"option 'port' of a qdrant endpoint must be an "
                                         r"integer, got 'http'"):
        parse_endpoint("qdrant:docs?port=http")
    with pytest.raises(ValueError, match=r"option 'prefer_grpc' .* must be true or false, "
                                         r"got 'yes'"):
        parse_endpoint("qdrant:docs?prefer_grpc=yes")


def test_a_repeated_option_is_an_error_naming_it():
    from rag_stores.migrate import parse_endpoint

    with pytest.raises(ValueError, match=r"option 'tenant' is given more than once"):
        parse_endpoint("qdrant:docs?path=q&tenant=a&tenant=b")
    with pytest.raises(ValueError, match=r"option 'api_key' is given more than once") as info:
        parse_endpoint("qdrant:docs?api_key=first-secret&api%5Fkey=second-secret")
    assert "first-secret" not in str(info.value) and "second-secret" not in str(info.value)


@pytest.mark.parametrize("spec, secret", [
    ("qdrant:docs?url=http://127.0.0.1:6333&api%5Fkey=k-7f3a9", "k-7f3a9"),
    ("qdrant:docs?url=http://127.0.0.1:6333&%61pi_key=k-7f3a9", "k-7f3a9"),
    ("qdrant:docs?url=http://alice:pw-5c1e@127.0.0.1:6333", "pw-5c1e"),
    ("qdrant:docs?url=http%3A%2F%2Falice%3Apw-5c1e%40127.0.0.1%3A6333", "pw-5c1e"),
    ("qdrant:docs?url=http%253A%252F%252Falice%253Apw-5c1e%2540127.0.0.1", "pw-5c1e"),
    ("weaviate:Docs?url=http://127.0.0.1:8080&headers=X-Api-Key%3Ah-9e2d", "h-9e2d")])
def test_credentials_are_redacted_however_written(spec, secret):
    from rag_stores.migrate import redact

    shown = redact(spec)
    assert secret not in shown and "***" in shown, shown
    assert "127.0.0.1" in shown


def test_the_command_never_prints_credentials(tmp_path, capsys, monkeypatch, request):
    """Success and failure lines, with the key URL-encoded in the option name and a password
    in the URL (real servers: an anonymous Qdrant, and one that wants a numeric key)."""
    from rag_stores.servers.qdrant import QdrantServer
    from tests.conformance import fresh_name

    name = fresh_name("creds")
    source = f"qdrant:{name}?path={tmp_path / 'src'}&engine=edge"
    backend = QdrantBackend(name, path=str(tmp_path / "src"), engine="edge")
    backend.ensure_collection(4, False)
    backend.upsert(_records("plain", 5))
    backend.close()
    anonymous = request.getfixturevalue("qdrant_server")
    with QdrantServer(api_key="918273645") as numeric:  # a key that looks like a number
        target = f"qdrant:{name}?url={numeric.url}&api%5Fkey=918273645"
        code, out, err = run(capsys, "migrate", source, target, "--quiet")
        assert code == 0, err
        assert "wrote 5 records" in out and "verified" in out
        assert "918273645" not in out + err and "api_key=***" in out
        code, out, err = run(capsys, "migrate", source, target.replace("918273645", "918273646"),
                             "--quiet")  # a wrong key: refused, one line, not shown
        assert code == 2 and "refused" in err and "918273646" not in out + err, err
    with_password = anonymous.url.replace("http://", "http://alice:pw-5c1e@")
    for url in (with_password, "http://alice:pw-5c1e@127.0.0.1:9"):  # works / unreachable
        code, out, err = run(capsys, "migrate", source, f"qdrant:{fresh_name('pw')}?url={url}",
                             "--quiet")
        assert "pw-5c1e" not in out + err and ("alice:" not in out + err), (out, err)
        assert code == (0 if url == with_password else 2), err


def test_a_tenant_named_like_a_number_migrates(tmp_path):
    from rag_stores.migrate import migrate

    backend = QdrantBackend("numbers", path=str(tmp_path / "src"), engine="edge", tenant="2024")
    backend.ensure_collection(4, False)
    backend.upsert(_records("y2024", 4))
    backend.close()
    report = migrate(f"qdrant:numbers?path={tmp_path / 'src'}&engine=edge&tenant=2024",
                     f"qdrant:numbers?path={tmp_path / 'dst'}&engine=edge&tenant=2024",
                     progress=False)
    assert report["written"] == 4 and report["problems"] == []
    moved = QdrantBackend("numbers", path=str(tmp_path / "dst"), engine="edge", tenant="2024")
    assert sorted(r.text for r in moved.scroll()) == [f"y2024 {i}" for i in range(4)]
    moved.close()
