"""LlamaIndex face of the local LLM: `LocalLLM`, a chat LLM over OpenVINO GenAI.

Chats go to the model as chats (its own chat template), a completion as one user turn.
The async methods run the generation in a worker thread (`asyncio.to_thread`; LlamaIndex's
`CustomLLM` would run it on the event loop), where it waits its turn for the process's one
copy of the model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from . import (
    CONTEXT_WINDOW,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STOP,
    LocalGenerator,
    check_options,
    local_generator,
)

__all__ = ["LocalLLM"]

_ROLES = {MessageRole.SYSTEM: "system", MessageRole.USER: "user",
          MessageRole.ASSISTANT: "assistant"}


def to_chat(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """System, user and assistant turns; any other role (tool, ...) is given as a user turn."""
    return [{"role": _ROLES.get(m.role, "user"), "content": m.content or ""} for m in messages]


async def _aiter(items: Iterator[Any]) -> AsyncGenerator[Any, None]:
    """A blocking iterator walked in a worker thread, one item at a time."""
    done = object()
    try:
        while (item := await asyncio.to_thread(next, items, done)) is not done:
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


class LocalLLM(CustomLLM):
    """SmolLM2-135M-Instruct (or `model_path`, any GGUF chat model) run in this process.

    Greedy at temperature 0 (the default). Generation stops at `max_tokens` or at any of the
    `stop` strings (default: the first newline, where this small model's answer ends); a
    call's own `stop=` replaces them. The model loads when the LLM is made (seconds), once per
    process and file.
    """

    model_path: str | None = Field(default=None, description="a GGUF file; default SmolLM2")
    device: str = Field(default="CPU")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, description="new tokens at most")
    temperature: float = Field(default=0.0, description="0: greedy decoding")
    stop: list[str] | None = Field(default_factory=lambda: list(DEFAULT_STOP))
    _generator: LocalGenerator = PrivateAttr()

    def __init__(self, model_path: str | os.PathLike[str] | None = None, **data: Any) -> None:
        super().__init__(model_path=str(model_path) if model_path else None, **data)
        check_options(self.max_tokens, self.temperature, self.stop)
        self._generator = local_generator(self.model_path, self.device)

    @classmethod
    def class_name(cls) -> str:
        return "rag_stores_local_llm"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=CONTEXT_WINDOW, num_output=self.max_tokens,
                           is_chat_model=True, model_name=self._generator.path.name)

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = {"max_tokens": self.max_tokens, "temperature": self.temperature,
                   "stop": self.stop}
        unknown = set(kwargs) - set(options)
        if unknown:
            raise TypeError(f"LocalLLM takes max_tokens, temperature and stop per call, "
                            f"not {sorted(unknown)}")
        return {**options, **kwargs}

    # --- chat ----------------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        out = self._generator.generate(to_chat(messages), **self._options(kwargs))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=out.text),
                            raw={"input_tokens": out.input_tokens,
                                 "output_tokens": out.output_tokens})

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        pieces = self._generator.stream(to_chat(messages), **self._options(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            for piece in pieces:
                text += piece
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                                   delta=piece)
        return gen()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self.chat, messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage],
                           **kwargs: Any) -> ChatResponseAsyncGen:
        return _aiter(self.stream_chat(messages, **kwargs))

    # --- completion ----------------------------------------------------------------------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        out = self._generator.generate([{"role": "user", "content": prompt}],
                                       **self._options(kwargs))
        return CompletionResponse(text=out.text, raw={"input_tokens": out.input_tokens,
                                                      "output_tokens": out.output_tokens})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        pieces = self._generator.stream([{"role": "user", "content": prompt}],
                                        **self._options(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            for piece in pieces:
                text += piece
                yield CompletionResponse(text=text, delta=piece)
        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponse:
        return await asyncio.to_thread(self.complete, prompt, formatted, **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        return _aiter(self.stream_complete(prompt, formatted, **kwargs))
