"""The package a user installs, not the checkout (issue 27): the wheel's metadata, and the wheel
installed into a fresh virtualenv and run from a folder outside the checkout.

Nothing is downloaded: the wheel is built with the environment's setuptools (no build
isolation), and the virtualenv sees the environment's packages (--system-site-packages) while
the wheel itself goes into the virtualenv (--no-deps --force-reinstall, not editable).
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from embedders import offline

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag_stores", "retrievers", "embedders")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """What the build reads, copied out of the checkout (a build writes build/ and egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


@pytest.fixture(scope="module")
def sdist(source, tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("sdist")
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"
    _run([sys.executable, "-c", code], cwd=source)
    (built,) = dist.glob("rag_stores-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def wheel(sdist, tmp_path_factory) -> Path:
    """Built from the unpacked sdist, as `python -m build` does: the sdist must be complete."""
    unpacked, dist = tmp_path_factory.mktemp("unpacked"), tmp_path_factory.mktemp("dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (tree,) = unpacked.iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", str(dist), str(tree)])
    (built,) = dist.glob("rag_stores-*.whl")
    return built


def test_sdist_files(sdist):
    with tarfile.open(sdist) as tar:
        top, *_ = tar.getnames()
        names = {n.removeprefix(f"{top.split('/')[0]}/") for n in tar.getnames()}
    assert {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE"} <= names
    assert {f"{package}/py.typed" for package in PACKAGES} <= names
    assert "embedders/assets/bm25/english.txt" in names


def test_wheel_metadata_and_files(wheel, source):
    """What a package index shows, and exactly the three packages' files."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()

    assert meta["Name"] == "rag-stores"
    assert "Qdrant" in meta["Summary"] and "Weaviate" in meta["Summary"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "README.md").read_text().strip()
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert "rag-stores = rag_stores.cli:main" in entry_points

    # every module and data file of the three packages, py.typed in each; nothing else
    shipped = {
        p.relative_to(source).as_posix()
        for package in PACKAGES for p in (source / package).rglob("*") if p.is_file()
    }
    assert {f"{package}/py.typed" for package in PACKAGES} <= shipped
    assert "embedders/assets/bm25/english.txt" in shipped
    assert {n for n in names if not n.startswith(dist_info)} == shipped


SMOKE = """
import importlib, pkgutil, sys
from pathlib import Path

prefix, checkout = Path(sys.prefix).resolve(), Path(sys.argv[1]).resolve()
names = []
for top in ("rag_stores", "retrievers", "embedders"):
    names.append(top)
    package = importlib.import_module(top)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")
              if not any(part.startswith("_") for part in m.name.split("."))]
for name in names:
    path = Path(importlib.import_module(name).__file__).resolve()
    assert path.is_relative_to(prefix) and not path.is_relative_to(checkout), (name, path)
print(len(names), "modules from", prefix)
"""

DOCS = {
    "cats.md": "# Cats\n\nCats are small carnivorous mammals that people keep as pets.\n\n"
               "A cat sleeps for most of the day and hunts mice at night.\n",
    "rust.txt": "Rust is a systems programming language focused on memory safety without a "
                "garbage collector.\n",
}


@pytest.mark.weaviate
def test_installed_wheel_seeds_ingests_and_queries_outside_the_checkout(wheel, tmp_path):
    from rag_stores.servers.weaviate import ensure_binary

    ensure_binary()  # embedded Weaviate runs the built server (cached; as the fixtures do)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python, cli = str(venv / "bin" / "python"), str(venv / "bin" / "rag-stores")
    # pip comes from the environment; it installs into the virtualenv it runs in
    _run([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index",
          "--disable-pip-version-check", "-q", str(wheel)])

    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    for name, text in DOCS.items():
        (work / "docs" / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({offline.MODELS_ENV: str(work / "models"), "HF_HUB_OFFLINE": "1",
                "FASTEMBED_CACHE_PATH": str(work / "fastembed"),
                "TIKTOKEN_CACHE_DIR": str(work / "tiktoken"), "XDG_DATA_HOME": str(work / "data")})

    def run(*cmd: str) -> str:
        return _run(list(cmd), cwd=work, env=env).stdout

    assert f"from {venv.resolve()}" in run(python, "-c", SMOKE, str(ROOT))
    run(cli, "models", "seed", "--no-fetch", "--no-llm")  # from the installed packages
    listing = run(cli, "models", "list", "--dir", str(work / "models"))
    for asset in offline.ASSETS:
        assert f"ok       {asset.target}" in listing, listing

    for backend in ("qdrant", "weaviate"):
        where = ["--backend", backend, "--path", str(work / backend)]
        assert "2 file(s): 2 chunk(s) written" in run(cli, "ingest", "docs", "--quiet", *where)
        out = run(cli, "query", "which animal hunts mice", "--k", "1", *where)  # hybrid
        assert "docs/cats.md#0" in out and "rust" not in out, (backend, out)
