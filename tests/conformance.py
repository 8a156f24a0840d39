"""What every backend variant must provide to the conformance suite (tests/test_conformance.py).

A variant makes backends for fresh collections. `is_async` variants are driven through the
async methods only (e.g. a store given just an AsyncQdrantClient); the others through sync.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# LlamaIndex names its async add `async_add`; everything else is `a` + name.
_ASYNC_NAMES = {"add": "async_add"}
_counter = itertools.count()


def fresh_name(prefix: str = "Conf") -> str:
    return f"{prefix}{next(_counter)}"


@dataclass
class Variant:
    name: str
    is_async: bool
    # make_backend(collection_name) -> a Backend over this variant's engine and client(s)
    make_backend: Callable[[str], Any]
    cleanup: list[Callable[[], Any]] = field(default_factory=list)

    def lc_store(self, embedding: Any, name: str, **kwargs: Any) -> Any:
        from rag_stores.langchain import BackendVectorStore

        return BackendVectorStore(embedding, self.make_backend(name), **kwargs)

    def llama_store(self, name: str, **kwargs: Any) -> Any:
        from rag_stores.llama_index import BackendLlamaStore

        return BackendLlamaStore(self.make_backend(name), **kwargs)

    async def call(self, obj: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call `method` the way this variant is used: sync, or its async twin awaited."""
        if not self.is_async:
            return getattr(obj, method)(*args, **kwargs)
        result = getattr(obj, _ASYNC_NAMES.get(method, "a" + method))(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
