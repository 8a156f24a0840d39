"""Every example runs as a script and every notebook runs top to bottom, so none rots.

Examples run as subprocesses against the session's Weaviate server (RAG_STORES_WEAVIATE_URL),
notebooks in a real Jupyter kernel (nbclient). RAG_STORES_LLM=none, so the output is the
documented offline one (fake LLM, labelled) even where an LLM is configured or installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# What each example must print: evidence that it did its job on both backends.
EXPECTED = {
    "langchain_rag.py": ["=== Qdrant (embedded, in memory) ===", "=== Weaviate at",
                         "- [apollo-11", "Question: Who first walked on the Moon",
                         "answer: [fake LLM"],
    "llama_index_rag.py": ["indexed 22 documents as 22 nodes", "sources: [('jwst'",
                           "Query: Which telescope looks at the early universe?",
                           "filtered to topic=cooking: ['espresso'"],
    "hybrid_search.py": ["  bm25          mars-rover\n", "  bm25          (nothing)",
                         "  hybrid a=0.5  espresso"],
    "mmr_and_recommend.py": ["  similarity         ['apollo-11', 'apollo-11-b', 'apollo-11-c'",
                             "  mmr lambda=0.4     ['apollo-11', 'mars-rover'",
                             "  'telescopes'       ['jwst', 'hubble'"],
    "grouped_generation.py": ["  jwst         -> [fake LLM", "grouped: [fake LLM",
                              "Which of these observes in infrared? Answer with its name.: "
                              '[{"text":"The James Webb'],
    "switch_from_peers.py": ["written by langchain-qdrant: 22 points",
                             "read by rag-stores: The James Webb Space Telescope observes the "
                             "early universe in infrared light. 2021\n",
                             "added by rag-stores, read by langchain-qdrant: The Chandra",
                             "written by langchain-weaviate: 22 objects",
                             "infrared light. 2021.0\n",
                             "added by rag-stores, read by langchain-weaviate: The Chandra"],
    "qdrant_to_weaviate.py": ["moved 22 records from Qdrant on disk to Weaviate at",
                              "verified: True",
                              "on Weaviate: ['mars-rover'",
                              "keyword search now runs on Weaviate's BM25: ['sourdough']"],
}


@pytest.fixture(scope="module")
def local_env(seeded_models, tmp_path_factory):
    """The environment of examples and notebooks: no LLM, a private data folder."""
    env = dict(os.environ, RAG_STORES_LLM="none", XDG_DATA_HOME=str(tmp_path_factory.mktemp("xdg")))
    env.pop("MPLBACKEND", None)  # the kernel's inline backend shows plots
    return env


@pytest.fixture(scope="module")
def script_env(local_env, weaviate_server):
    """local_env plus the session's Weaviate server (instead of embedded Weaviate)."""
    return {**local_env, "RAG_STORES_WEAVIATE_URL": weaviate_server.url,
            "RAG_STORES_WEAVIATE_GRPC_PORT": str(weaviate_server.grpc_port)}


def test_every_example_has_expectations():
    assert EXAMPLES and {p.name for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.weaviate
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example(example, script_env):
    proc = subprocess.run([sys.executable, str(example)], cwd=ROOT, env=script_env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for text in EXPECTED[example.name]:
        assert text in proc.stdout, f"{text!r} not in output:\n{proc.stdout}"


def run_notebook(path: Path, env: dict[str, str], monkeypatch) -> str:
    """Execute in a fresh kernel (cwd = the notebook's folder); the text of all outputs."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    book = nbformat.read(path, as_version=4)
    # iopub_timeout: a cell's printed output may arrive after its reply on a loaded machine;
    # nbclient waits 4 s for it by default and then drops it silently.
    NotebookClient(book, timeout=900, kernel_name="python3", iopub_timeout=120,
                   raise_on_iopub_timeout=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    texts = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out["text"])
            elif "data" in out:
                texts.extend(str(v) if k != "image/png" else "<image/png>"
                             for k, v in out["data"].items())
    return "\n".join(texts)


def test_notebooks_are_stored_without_outputs():
    assert {p.stem for p in NOTEBOOKS} == {"quickstart", "retrieval_quality",
                                           "grouped_generation"}
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name


@pytest.mark.weaviate
def test_quickstart_notebook(script_env, monkeypatch):
    out = run_notebook(ROOT / "notebooks" / "quickstart.ipynb", script_env, monkeypatch)
    assert "bm25   BM25 ranks documents" in out  # dense search, on Qdrant and on Weaviate
    assert out.count("bm25   BM25 ranks documents") == 2
    assert "bm25   ['hnsw']" in out
    assert "pesto  Pesto is a sauce" in out  # LlamaIndex reading the LangChain collection


def test_grouped_generation_notebook(local_env, monkeypatch):
    out = run_notebook(ROOT / "notebooks" / "grouped_generation.ipynb", local_env, monkeypatch)
    assert "LLM: no LLM (RAG_STORES_LLM" in out and "using a FakeListChatModel" in out
    assert "Name the main complaint in three words." in out
    assert 'Summarise what buyers think of the kettle in one sentence: [{"stars":"5"' in out
    assert "dropped: [" in out
    assert "kettle   [" in out  # one grouped task per group
    assert "Rephrase politely: Toaster crumb tray is hard to remove." in out


def write_smart_collection(folder: Path) -> None:
    """A tiny SMART-format collection: 8 documents, 3 judged queries."""
    docs = ["Library catalogues index books by subject headings.",
            "Citation analysis counts references between scientific papers.",
            "Automatic indexing assigns keywords to documents by computer.",
            "Users search online catalogues with keyword queries.",
            "Bibliometrics studies the growth of scientific literature.",
            "Relevance feedback refines a query from judged documents.",
            "Classification schemes such as Dewey order library shelves.",
            "Vector space models rank documents by cosine similarity."]
    folder.mkdir()
    (folder / "CISI.ALL").write_text("".join(
        f".I {i}\n.T\nDoc {i}\n.A\nAuthor, A.\n.W\n{text}\n.X\n{i}\t5\t{i}\n"
        for i, text in enumerate(docs, 1)))
    queries = ["How are library books classified?", "Counting citations between papers",
               "Ranking documents automatically"]
    (folder / "CISI.QRY").write_text("".join(f".I {i}\n.W\n{q}\n"
                                             for i, q in enumerate(queries, 1)))
    rel = [(1, 1), (1, 7), (2, 2), (2, 5), (3, 3), (3, 8), (3, 6)]
    (folder / "CISI.REL").write_text("".join(f"{q:6d} {d:6d}\t0\t0.000000\n" for q, d in rel))


@pytest.mark.weaviate
def test_retrieval_quality_notebook(script_env, monkeypatch, tmp_path):
    write_smart_collection(tmp_path / "mini")
    env = {**script_env, "RAG_STORES_CISI": str(tmp_path / "mini"), "RAG_STORES_CISI_DOCS": "all"}
    out = run_notebook(ROOT / "notebooks" / "retrieval_quality.ipynb", env, monkeypatch)
    assert "8 documents, 3 judged queries" in out
    assert "qdrant BM25 avg_len fitted at ingest: " in out
    for engine in ("qdrant", "weaviate"):  # every mode on both engines, both halves
        for mode in ("dense", "bm25", "hybrid default", "hybrid rrf a=0.8", "hybrid rrf k=2",
                     "hybrid convex", "hybrid dbsf a=0.5", "hybrid depth 20", "hybrid+rerank",
                     "mmr l=0.7"):
            line = f"\n{engine:8} {mode:18} nDCG@10 "
            assert line in "\n" + out, line
    assert "held-out" in out and "MRR" in out
    assert "<image/png>" in out  # the plot


def test_retrieval_quality_notebook_without_data(local_env, monkeypatch, tmp_path):
    env = {**local_env, "RAG_STORES_CISI": str(tmp_path / "absent")}
    out = run_notebook(ROOT / "notebooks" / "retrieval_quality.ipynb", env, monkeypatch)
    assert f"No test collection at {tmp_path / 'absent'}" in out
    assert "nDCG" not in out and "<image/png>" not in out
