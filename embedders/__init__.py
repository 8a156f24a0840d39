"""FastEmbed encoders, offline model assets and token counting."""

from .sparse import SparseVector

__all__ = ["SparseVector"]
