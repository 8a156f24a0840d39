"""LangChain face of the local LLM: `LocalChatModel`, a chat model over OpenVINO GenAI.

Async calls and async streaming run the generation in a worker thread (langchain-core's
defaults for a model without native coroutines: `run_in_executor`), where it waits its turn
for the process's one copy of the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from . import DEFAULT_MAX_TOKENS, DEFAULT_STOP, LocalGenerator, check_options, local_generator

__all__ = ["LocalChatModel"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def to_chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the model's chat: system, user and assistant turns (any other
    kind of message, a tool result say, is given as a user turn)."""
    return [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]


class LocalChatModel(BaseChatModel):
    """SmolLM2-135M-Instruct (or `model_path`, any GGUF chat model) run in this process.

    Greedy at temperature 0 (the default). Generation stops at `max_tokens` or at any of the
    `stop` strings (default: the first newline, where this small model's answer ends); a
    call's own `stop` replaces them. The model loads when the chat model is made (seconds),
    once per process and file.
    """

    model_path: str | None = None
    device: str = "CPU"
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    stop: list[str] | None = Field(default_factory=lambda: list(DEFAULT_STOP))
    _generator: LocalGenerator = PrivateAttr()

    def __init__(self, model_path: str | os.PathLike[str] | None = None, **data: Any) -> None:
        super().__init__(model_path=str(model_path) if model_path else None,  # type: ignore[call-arg]
                         **data)
        check_options(self.max_tokens, self.temperature, self.stop)
        self._generator = local_generator(self.model_path, self.device)

    @property
    def _llm_type(self) -> str:
        return "openvino-genai"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self._generator.path.name, "device": self.device,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    @property
    def model_file(self) -> str:
        """The GGUF file in use."""
        return str(self._generator.path)

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - {"max_tokens", "temperature"}
        if unknown:
            raise TypeError(f"LocalChatModel takes max_tokens, temperature and stop per call, "
                            f"not {sorted(unknown)}")
        return {"max_tokens": kwargs.get("max_tokens", self.max_tokens),
                "temperature": kwargs.get("temperature", self.temperature),
                "stop": self.stop if stop is None else stop}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        on_token = run_manager.on_llm_new_token if run_manager else None
        out = self._generator.generate(to_chat(messages), on_token=on_token,
                                       **self._options(stop, kwargs))
        usage = {"input_tokens": out.input_tokens, "output_tokens": out.output_tokens,
                 "total_tokens": out.input_tokens + out.output_tokens}
        message = AIMessage(content=out.text, usage_metadata=usage,  # type: ignore[arg-type]
                            response_metadata={"model_name": self._generator.path.name})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in self._generator.stream(to_chat(messages), **self._options(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
