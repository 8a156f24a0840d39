"""Shared fixtures. Each block belongs to one area; keep them apart."""

from __future__ import annotations

# --- conformance variants ---
from collections.abc import AsyncIterator

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient

from rag_stores.backends.qdrant import QdrantBackend
from tests.conformance import Variant

VARIANTS = ["qdrant-memory", "qdrant-disk", "qdrant-async"]


@pytest.fixture(params=VARIANTS)
async def variant(request, tmp_path) -> AsyncIterator[Variant]:
    """One backend variant per run of each conformance test; clients closed after it."""
    name = request.param
    if name == "qdrant-memory":
        client = QdrantClient(":memory:")
        yield Variant(name, False, lambda c: QdrantBackend(c, client=client))
        client.close()
    elif name == "qdrant-disk":
        client = QdrantClient(path=str(tmp_path / "qdrant"))
        yield Variant(name, False, lambda c: QdrantBackend(c, client=client))
        client.close()
    elif name == "qdrant-async":
        aclient = AsyncQdrantClient(":memory:")
        yield Variant(name, True, lambda c: QdrantBackend(c, async_client=aclient))
        await aclient.close()
# --- end conformance variants ---
