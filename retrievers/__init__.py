"""Retrieval strategies over both engines, for both frameworks."""
