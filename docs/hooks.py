"""MkDocs hook: the CLI reference is generated from the argparse parsers (rag_stores.cli),
so the commands' help is written once, where the commands are."""

from __future__ import annotations

import argparse
from typing import Any

MARKER = "<!-- cli-reference -->"


def _sections(parser: argparse.ArgumentParser, name: str, level: int) -> list[str]:
    out = [f"{'#' * level} `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                out += _sections(sub, f"{name} {sub_name}", min(level + 1, 4))
    return out


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from rag_stores.cli import build_parser

    return markdown.replace(MARKER, "\n".join(_sections(build_parser(), "rag-stores", 2)))
