"""`rag-stores migrate SOURCE TARGET`: the arguments, and the report of
`rag_stores.migrate.migrate` (the endpoints and the copy are described there)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import migrate as migration


def _run(args: argparse.Namespace) -> int:
    try:
        report = migration.migrate(args.source, args.target, args.batch_size, args.sample,
                                   progress=not args.quiet)
    except (ValueError, TypeError, LookupError, ConnectionError, PermissionError,
            RuntimeError) as exc:  # bad endpoints, missing collections, held folders, keys
        print(f"rag-stores migrate: error: {migration.scrub(str(exc), args.source, args.target)}",
              file=sys.stderr)
        return 2
    except Exception as exc:  # anything else: one line too, never a credential in a traceback
        print(f"rag-stores migrate: error: {type(exc).__name__}: "
              f"{migration.scrub(str(exc), args.source, args.target)}", file=sys.stderr)
        return 2
    tenants = f" ({len(report['tenants'])} tenants, each into its own)" if report["tenants"] \
        else ""
    print(f"{migration.redact(args.source)} -> {migration.redact(args.target)}: wrote "
          f"{report['written']} records{tenants} in {report['seconds']:.1f}s (the rest were "
          f"there already); source holds {report['source_count']}, target "
          f"{report['target_count']}")
    if report["problems"]:
        print("verification found differences:\n  " + "\n  ".join(report["problems"]),
              file=sys.stderr)
        return 1
    per = " per tenant" if report["tenants"] else ""
    print(f"verified: counts agree and {args.sample} sampled records{per} match")
    return 0


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate", help="copy a collection between engines and modes (resumable, verified)",
        description=migration.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="ENGINE:COLLECTION[?option=value&...]")
    parser.add_argument("target", help="ENGINE:COLLECTION[?option=value&...]")
    parser.add_argument("--batch-size", type=int, default=256, help="records per batch")
    parser.add_argument("--sample", type=int, default=20, help="records compared at the end")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)
