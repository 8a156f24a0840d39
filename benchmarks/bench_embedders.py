"""Documents per second and peak memory: our FastEmbedEmbeddings vs raw FastEmbed, same texts.

    python benchmarks/bench_embedders.py            # CISI titles + first 300 abstracts
    python benchmarks/bench_embedders.py --full     # all 1,460 CISI abstracts

Both sides load the same seeded all-MiniLM-L6-v2 files with the same batch size; raw FastEmbed
yields numpy rows, ours returns lists of floats (LangChain's contract), so the conversion cost
is part of what is measured. Runs alternate (raw, ours, raw, ours...) to share the noise of a
busy machine. Peak memory is resident set size sampled every 5 ms, above the phase's start.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
from fastembed import TextEmbedding

from embedders import offline
from embedders.langchain import FastEmbedEmbeddings

ROOT = Path(__file__).resolve().parents[1]
CISI = ROOT.parent / "shared" / "datasets" / "cisi" / "CISI.ALL"


def parse_cisi(path: Path) -> tuple[list[str], list[str]]:
    """(titles, abstracts) from the SMART-format file: the .T and .W fields of each .I record."""
    titles: list[str] = []
    abstracts: list[str] = []
    field, buf = "", []

    def flush() -> None:
        text = " ".join(" ".join(buf).split())
        if field == ".T":
            titles.append(text)
        elif field == ".W":
            abstracts.append(text)

    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        tag = line[:2]
        if tag in {".I", ".T", ".A", ".W", ".X", ".B", ".K", ".N"} and line[2:3] in {"", " "}:
            flush()
            field, buf = tag, []
        else:
            buf.append(line)
    flush()
    return titles, abstracts


class PeakRSS:
    """Samples the process's resident memory on a thread; peak above the starting value."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc = psutil.Process()
        self.interval = interval

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return (self.peak - self.start) / 2**20


def measure(fn: Callable[[list[str]], object], texts: list[str]) -> tuple[float, float]:
    """(documents per second, peak RSS growth in MB) for one call."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        result = fn(texts)
        elapsed = time.perf_counter() - t0
    del result
    return len(texts) / elapsed, mem.mb


def run(name: str, texts: list[str], repeat: int, batch_size: int) -> None:
    folder = offline.seeded_model_dir(offline.DEFAULT_DENSE_MODEL, "model.onnx")
    if folder is None:
        raise SystemExit(f"not seeded: run `{offline.SEED_COMMAND}` first")
    raw_model = TextEmbedding(offline.DEFAULT_DENSE_MODEL, specific_model_path=str(folder))
    ours = FastEmbedEmbeddings(batch_size=batch_size)

    def raw(ts: list[str]) -> object:
        return list(raw_model.embed(ts, batch_size=batch_size))

    def ours_stream(ts: list[str]) -> object:
        # streaming form: vectors are consumed as they come, never all held at once
        return sum(1 for _ in ours.embed_documents_iter(ts))

    ours.embed_documents(texts[:8])  # warm both sessions before timing
    raw(texts[:8])
    sides: dict[str, Callable[[list[str]], object]] = {
        "raw fastembed (numpy)": raw,
        "FastEmbedEmbeddings.embed_documents": ours.embed_documents,
        "embed_documents_iter (streamed)": ours_stream,
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for _ in range(repeat):
        for label, fn in sides.items():
            results[label].append(measure(fn, texts))

    words = statistics.mean(len(t.split()) for t in texts)
    print(
        f"\n{name}: {len(texts)} texts, {words:.0f} words on average, batch {batch_size}, x{repeat}"
    )
    raw_rate = statistics.median(r for r, _ in results["raw fastembed (numpy)"])
    for label, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        peak = max(m for _, m in runs)
        print(f"  {label:38} {rate:9.1f} docs/s  {rate / raw_rate:5.2f}x raw  peak +{peak:6.1f} MB")


def chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="all 1,460 abstracts")
    parser.add_argument("--abstracts", type=int, default=300, help="abstracts without --full")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    titles, abstracts = parse_cisi(CISI)
    print(f"CISI: {len(titles)} titles, {len(abstracts)} abstracts from {CISI}")
    print(f"CPU cores: {psutil.cpu_count()}, load average: {psutil.getloadavg()[0]:.2f}")
    run("short sentences (CISI titles)", titles, args.repeat, args.batch_size)
    subset = abstracts if args.full else abstracts[: args.abstracts]
    run("CISI abstracts", subset, 1 if args.full else args.repeat, args.batch_size)


if __name__ == "__main__":
    main()
