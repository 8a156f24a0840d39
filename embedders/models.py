"""The models folder beyond what the seed puts there (`rag-stores models list` shows both; the
command itself is `rag_stores.cli.models`, the seed `embedders.offline`)."""

from __future__ import annotations

from pathlib import Path


def other_models(root: Path, known: set[str]) -> list[str]:
    """Folders two levels down (org/name) that the seed did not make: models a user put there."""
    if not root.is_dir():
        return []
    found = []
    for org in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "tiktoken"):
        for model in sorted(p for p in org.iterdir() if p.is_dir()):
            name = f"{org.name}/{model.name}"
            if name not in known:
                found.append(name)
    return found
