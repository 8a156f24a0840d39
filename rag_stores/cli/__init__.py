"""The `rag-stores` command. Each feature module adds its own group through `register_cli`."""

from __future__ import annotations

import argparse

from . import app, migrate, models, servers


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command: one group per module of this package, which only
    parses arguments and calls the library (no library module imports this package)."""
    parser = argparse.ArgumentParser(prog="rag-stores", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    models.register_cli(groups)
    servers.register_cli(groups)
    app.register_cli(groups)
    migrate.register_cli(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
