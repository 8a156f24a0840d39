"""`rag-stores weaviate install|serve|cluster` and `rag-stores qdrant serve|cluster|optimize`:
the arguments, and the servers of `rag_stores.servers` (or, for `qdrant optimize`, the
Qdrant Edge backend) run with them."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ..servers import qdrant, weaviate
from ..servers.process import ServerError, serve_until_stopped


def _api_key_help(env: str, default: str = "anonymous") -> str:
    return (f"require this API key; default: {default}. Prefer setting ${env}: a command-line "
            "argument shows in `ps` to every user of this machine")


def register_cli(subparsers: Any) -> None:
    """Add the `weaviate` and `qdrant` groups to the `rag-stores` command."""
    _register_weaviate(subparsers)
    _register_qdrant(subparsers)


# --- weaviate ---------------------------------------------------------------------------


def _weaviate_install(args: argparse.Namespace) -> int:
    start = time.monotonic()
    try:
        binary = weaviate.ensure_binary(args.version)
        kwargs = weaviate.ensure_embedded_ready(args.version)
    except (weaviate.WeaviateBinaryError, ValueError) as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1
    print(f"weaviate-server v{kwargs['version']}: {binary}")
    print(f"embedded binary_path: {kwargs['binary_path']}")
    print(f"ready in {time.monotonic() - start:.1f}s")
    return 0


def _weaviate_serve(args: argparse.Namespace) -> int:
    try:
        server = weaviate.WeaviateServer(
            port=args.port, grpc_port=args.grpc_port, data_dir=args.data_dir,
            api_key=args.api_key or os.environ.get(weaviate.ENV_API_KEY) or None,
            version=args.version)
    except ValueError as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 2

    def announce() -> str:
        assert server.data_dir is not None
        auth = (f" (API key required: set {weaviate.ENV_API_KEY} for clients)"
                if server.api_key else "")
        return (f"Weaviate v{server.version} ready at {server.url} (gRPC port "
                f"{server.grpc_port}), pid {server.pid}{auth}\n"
                f"data: {server.data_dir}{' (temporary)' if server._temp_dir else ''}; "
                f"log: {server.log_path}\nConnect from Python:\n\n{server.connection_help()}"
                "\n\nCtrl-C stops the server.")

    try:
        return serve_until_stopped([server], announce)
    except weaviate.WeaviateBinaryError as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1


def _weaviate_cluster(args: argparse.Namespace) -> int:
    try:
        cluster = weaviate.WeaviateCluster(
            args.nodes, api_key=args.api_key or os.environ.get(weaviate.ENV_API_KEY) or None,
            data_dir=args.data_dir, version=args.version)
    except ValueError as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 2

    def announce() -> str:
        lines = [f"node {n.hostname}: {n.url} (gRPC port {n.grpc_port}), pid {n.pid}, "
                 f"log: {n.log_path}" for n in cluster.nodes]
        return "\n".join([*lines, "urls: " + " ".join(cluster.urls), "Ctrl-C stops the cluster."])

    try:
        return serve_until_stopped(cluster.nodes, announce, start=cluster.start)
    except weaviate.WeaviateBinaryError as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1


def _register_weaviate(subparsers: Any) -> None:
    """Add the `weaviate` group (install, serve, cluster) to the `rag-stores` command."""
    group = subparsers.add_parser("weaviate", help="build and run a local Weaviate server")
    commands = group.add_subparsers(dest="command", required=True)

    install = commands.add_parser(
        "install", help="build weaviate-server with Go (or reuse the cached build)",
        description="Build weaviate-server from its Go module into the cache, or reuse it, "
                    "and link it where weaviate.connect_to_embedded looks.")
    install.add_argument("--version", default=weaviate.DEFAULT_VERSION,
                         help="Weaviate release (%(default)s)")
    install.set_defaults(func=_weaviate_install)

    serve = commands.add_parser(
        "serve", help="run a Weaviate server on loopback until Ctrl-C",
        description="Run weaviate-server on 127.0.0.1 (building it first if needed).")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    serve.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default: a free one)")
    serve.add_argument("--data-dir", default=None,
                       help="data directory (default: a temporary one, deleted on exit)")
    serve.add_argument("--api-key", default=None, help=_api_key_help(weaviate.ENV_API_KEY))
    serve.add_argument("--version", default=weaviate.DEFAULT_VERSION,
                       help="Weaviate release (%(default)s)")
    serve.set_defaults(func=_weaviate_serve)

    cluster = commands.add_parser(
        "cluster", help="run a local Weaviate cluster on loopback until Ctrl-C",
        description="Run N weaviate-server nodes on 127.0.0.1 forming one cluster.")
    cluster.add_argument("--nodes", type=int, default=3, help="number of nodes (%(default)s)")
    cluster.add_argument("--data-dir", default=None,
                         help="data directory, one folder per node (default: temporary ones)")
    cluster.add_argument("--api-key", default=None, help=_api_key_help(weaviate.ENV_API_KEY))
    cluster.add_argument("--version", default=weaviate.DEFAULT_VERSION,
                         help="Weaviate release (%(default)s)")
    cluster.set_defaults(func=_weaviate_cluster)


# --- qdrant -----------------------------------------------------------------------------


def _qdrant_api_key(args: argparse.Namespace) -> str | None:
    return args.api_key or os.environ.get(qdrant.ENV_API_KEY) or None


def _qdrant_describe(server: qdrant.QdrantServer) -> str:
    assert server.data_dir is not None
    auth = f" (API key required: set {qdrant.ENV_API_KEY} for clients)" if server.api_key else ""
    return (f"Qdrant ready at {server.url} (gRPC port {server.grpc_port}), pid {server.pid}"
            f"{auth}\ndata: {server.data_dir}{' (temporary)' if server._temp_dir else ''}; "
            f"log: {server.log_path}")


def _qdrant_serve(args: argparse.Namespace) -> int:
    try:
        server = qdrant.QdrantServer(port=args.port, grpc_port=args.grpc_port,
                                     data_dir=args.storage, api_key=_qdrant_api_key(args),
                                     binary=args.binary)
    except (ServerError, ValueError) as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1
    return serve_until_stopped(
        [server], lambda: _qdrant_describe(server) + "\nConnect from Python:\n\n"
        + server.connection_help() + "\n\nCtrl-C stops the server.")


def _qdrant_cluster(args: argparse.Namespace) -> int:
    try:
        cluster = qdrant.QdrantCluster(args.nodes, api_key=_qdrant_api_key(args),
                                       binary=args.binary, data_dir=args.storage)
    except (ServerError, ValueError) as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1
    return serve_until_stopped(
        cluster.nodes, lambda: "\n".join(_qdrant_describe(n) for n in cluster.nodes)
        + "\nurls: " + " ".join(cluster.urls) + "\nCtrl-C stops the cluster.",
        start=cluster.start)


def _register_qdrant(subparsers: Any) -> None:
    """Add the `qdrant` group (serve, cluster, optimize) to the `rag-stores` command."""
    group = subparsers.add_parser("qdrant", help="run a local Qdrant server or cluster")
    commands = group.add_subparsers(dest="command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--binary", default=None,
                            help=f"the qdrant server binary (default: ${qdrant.ENV_BIN}, "
                                 "then PATH)")
        parser.add_argument("--storage", default=None,
                            help="data directory (default: a temporary one, deleted on exit)")
        parser.add_argument("--api-key", default=None,
                            help=_api_key_help(qdrant.ENV_API_KEY, default="none"))

    serve = commands.add_parser("serve", help="run a Qdrant server on loopback until Ctrl-C")
    common(serve)
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    serve.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default: a free one)")
    serve.set_defaults(func=_qdrant_serve)

    cluster = commands.add_parser("cluster", help="run a local Qdrant cluster until Ctrl-C")
    common(cluster)
    cluster.add_argument("--nodes", type=int, default=3, help="number of nodes (%(default)s)")
    cluster.set_defaults(func=_qdrant_cluster)

    optimize = commands.add_parser(
        "optimize", help="build the HNSW index of a Qdrant Edge collection (blocks until done)")
    optimize.add_argument("--path", required=True, help="the Qdrant Edge folder")
    optimize.add_argument("--collection", required=True)
    optimize.set_defaults(func=_qdrant_optimize)


def _qdrant_optimize(args: argparse.Namespace) -> int:
    from ..backends.qdrant import QdrantBackend  # an Edge task: the backend, from the top
    from ..core.query import CollectionNotFoundError

    start = time.perf_counter()
    backend = QdrantBackend(args.collection, engine="edge", path=args.path)
    try:
        if not backend.exists():
            raise CollectionNotFoundError(f"no collection {args.collection!r} in {args.path}")
        changed = backend.optimize()
    except Exception as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print(f"{args.collection}: {'optimized' if changed else 'already optimal'} in "
          f"{time.perf_counter() - start:.1f}s")
    return 0
