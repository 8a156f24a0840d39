#!/usr/bin/env bash
# CI: build the Weaviate server with Go (first run on a machine: several minutes, mostly
# module downloads) or reuse the cached build, and link it for embedded mode.
# Needs the project installed (`rag-stores` on PATH) and, for a build, Go >= 1.26.
# RAG_STORES_WEAVIATE_BIN may name a prebuilt binary or a cache directory.
set -euo pipefail
start=$(date +%s)
rag-stores weaviate install "$@"
echo "weaviate install took $(( $(date +%s) - start )) s"
