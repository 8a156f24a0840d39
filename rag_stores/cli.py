"""The `rag-stores` command. Each feature module adds its own group through `register_cli`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute a command group; each defines register_cli(subparsers).
COMMAND_MODULES = ("embedders.models", "rag_stores.servers.weaviate", "rag_stores.servers.qdrant",
                   "rag_stores.app", "rag_stores.migrate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag-stores", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not a module still to be written
                raise
            continue
        module.register_cli(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
