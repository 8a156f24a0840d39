"""The project's modules import one another as a tree (no cycle, lazy imports included), so
each layer can be read, tested and changed without the ones above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag_stores", "retrievers", "embedders")


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports anywhere in its body."""
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in modules and t != name)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_project_imports_form_a_tree() -> None:
    graph = import_graph()
    assert graph["rag_stores.langchain"] >= {"retrievers.langchain", "rag_stores.documents"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_embedders_import_no_other_project_package() -> None:
    graph = import_graph()
    outside = {m: sorted(d for d in deps if not d.startswith("embedders"))
               for m, deps in graph.items() if m.startswith("embedders")}
    assert not any(outside.values()), outside


def test_only_the_command_line_imports_the_command_line() -> None:
    """`rag_stores.cli` parses arguments and calls the library: no library module imports it,
    and the server modules (the layer below the backends' users) never import a backend."""
    graph = import_graph()
    assert {"rag_stores.cli", "rag_stores.cli.app", "rag_stores.cli.servers"} <= set(graph)
    upward = {m: sorted(d for d in deps if d == "rag_stores.cli" or d.startswith("rag_stores.cli."))
              for m, deps in graph.items()
              if m != "rag_stores.cli" and not m.startswith("rag_stores.cli.")}
    assert not any(upward.values()), {m: d for m, d in upward.items() if d}
    servers = {m: sorted(d for d in deps if d.startswith("rag_stores.backends"))
               for m, deps in graph.items() if m.startswith("rag_stores.servers")}
    assert not any(servers.values()), servers
