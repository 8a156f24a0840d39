"""FastEmbed encoders (dense, sparse, and the cross-encoder reranker in `embedders.rerank`),
offline model assets and token counting.

Framework faces live in `embedders.langchain` and `embedders.llama_index`; importing this
package imports neither framework (and not FastEmbed until a model is loaded).
"""

from .encoders import DenseEncoder, SparseEncoder
from .offline import (
    DEFAULT_DENSE_MODEL,
    DEFAULT_SPARSE_MODEL,
    AssetHashError,
    ModelNotAvailableError,
)
from .sparse import SparseVector
from .tokens import use_seeded_encodings

# tiktoken.get_encoding finds the seeded ranks offline, whoever calls it first (embedders.tokens).
use_seeded_encodings()

__all__ = [
    "DEFAULT_DENSE_MODEL",
    "DEFAULT_SPARSE_MODEL",
    "AssetHashError",
    "DenseEncoder",
    "ModelNotAvailableError",
    "SparseEncoder",
    "SparseVector",
]
