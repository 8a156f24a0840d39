"""Every Python code block of the README and of docs/ runs, so no example goes stale; the
site builds strictly (a broken link or reference fails).

A page's blocks run in order in one fresh process (later blocks use what earlier ones
defined; top-level `await` works, as in a notebook), in an empty working folder, on the
embedded engines. A comment line right before a block marks it:
- `<!-- test: qdrant-server -->` / `<!-- test: weaviate-server -->`: the block talks to a
  server; it runs against the loopback server the tests start (`http://localhost:6333` and
  `http://localhost:8080` in the block are replaced by the server's address);
- `<!-- test: skip <reason> -->`: not run (e.g. it needs a cloud API key); the reason shows
  as the skip reason of that block's test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^```python\s*$\n(.*?)^```\s*$", re.M | re.S)
_MARK = re.compile(r"<!-- test: (?P<mark>[^>]*?) -->\s*$")
_SERVERS = {"qdrant-server": "http://localhost:6333", "weaviate-server": "http://localhost:8080"}


@dataclass
class Block:
    page: Path
    line: int
    code: str
    mark: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        found.append(Block(page, text.count("\n", 0, match.start()) + 2, match.group(1),
                           mark["mark"].strip() if mark else ""))
    return found


ALL = [b for page in PAGES for b in blocks(page)]
SKIPPED = [b for b in ALL if b.mark.startswith("skip")]
RUN_PAGES = sorted({b.page for b in ALL if not b.mark.startswith("skip")})

# Runs one page's blocks: each compiled with top-level await allowed, in one namespace and
# one event loop, the way a notebook runs its cells.
_RUNNER = textwrap.dedent('''
    import ast, asyncio, json, sys
    blocks = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__main__"}
    async def main():
        for name, code in blocks:
            print(f"--- {name}", flush=True)
            compiled = compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, namespace)
            if asyncio.iscoroutine(result):
                await result
    asyncio.run(main())
''')


def test_every_python_block_is_run_or_marked_with_a_reason() -> None:
    assert len(ALL) >= 10  # the pages hold their examples
    for block in ALL:
        assert block.mark in ("", *_SERVERS) or re.match(r"skip \S", block.mark), (
            f"{block.name}: unknown mark {block.mark!r}")


@pytest.mark.parametrize("block", SKIPPED, ids=[b.name for b in SKIPPED])
def test_marked_blocks_say_why_they_are_not_run(block: Block) -> None:
    pytest.skip(f"{block.name} not run: {block.mark[len('skip'):].strip()}")


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import json

    run = [b for b in blocks(page) if not b.mark.startswith("skip")]
    codes = []
    for block in run:
        code = block.code
        if block.mark == "qdrant-server":
            server = request.getfixturevalue("qdrant_server")
            code = code.replace(_SERVERS["qdrant-server"], server.url)
        elif block.mark == "weaviate-server":
            server = request.getfixturevalue("weaviate_server")
            code = code.replace(f'"{_SERVERS["weaviate-server"]}"',
                                f'"{server.url}", grpc_port={server.grpc_port}')
        codes.append((block.name, code))
    (tmp_path / "blocks.json").write_text(json.dumps(codes))
    (tmp_path / "run.py").write_text(_RUNNER)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, RAG_STORES_LLM="none", XDG_DATA_HOME=str(tmp_path / "xdg"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "blocks.json")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert done.stdout.count("--- ") == len(run)


def test_docs_site_builds_strictly(tmp_path: Path) -> None:
    if shutil.which("mkdocs") is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[dev]'")
    done = subprocess.run(["mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stderr[-5000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "rag-stores ingest" in cli and "--api-key" in cli  # generated from the parsers
    assert "QdrantVectorStore" in (tmp_path / "site" / "api" / "langchain" / "index.html").read_text()


# Public modules whose docstrings hold examples (`>>>`); each runs as a doctest.
DOCTEST_MODULES = ["rag_stores.core.filters"]


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    failed, attempted = doctest.testmod(importlib.import_module(module))
    assert attempted > 0 and failed == 0


def test_every_module_with_docstring_examples_is_listed() -> None:
    with_examples = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in ("rag_stores", "retrievers", "embedders")
        for path in (ROOT / package).rglob("*.py") if ">>> " in path.read_text()}
    assert with_examples == set(DOCTEST_MODULES)
