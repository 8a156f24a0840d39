"""Documents per second and peak memory: our FastEmbedEmbeddings vs raw FastEmbed, same texts.

    python benchmarks/bench_embedders.py            # CISI titles + first 200 abstracts
    python benchmarks/bench_embedders.py --full     # all 1,460 CISI abstracts

At each batch size, raw `fastembed.TextEmbedding.embed` and our
`FastEmbedEmbeddings.embed_documents` embed the same texts from the same seeded
all-MiniLM-L6-v2 files: the ratio is the wrapper's own cost. Raw yields numpy rows, ours
returns lists of floats (LangChain's contract), so that conversion is part of what is
measured. The sides take turns 256 texts at a time, so a busy machine's load falls on both
alike. Titles also run at FastEmbed's default batch (256) to show why ours is 32.

Peak memory: each side runs once more over the whole corpus in a fresh process; the figure is
the process's peak resident set size (VmHWM) above its size after loading the model. ONNX
Runtime's arena keeps a block per batch shape, so long texts at batch 256 grow it by gigabytes
(all 1,460 abstracts at 256 ran a 23 GB machine out of memory): keep 256 to subsets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CISI = ROOT.parent / "shared" / "datasets" / "cisi" / "CISI.ALL"
DEFAULT_BATCH = 32  # embedders.encoders.DEFAULT_BATCH_SIZE; FastEmbed's own default is 256


def parse_cisi(path: Path) -> tuple[list[str], list[str]]:
    """(titles, abstracts) from the SMART-format file: the .T and .W fields of each .I record."""
    titles: list[str] = []
    abstracts: list[str] = []
    field = ""
    buf: list[str] = []

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


def corpus(name: str, n: int | None) -> list[str]:
    titles, abstracts = parse_cisi(CISI)
    texts = titles if name == "titles" else abstracts
    return texts[:n] if n else texts


def make_sides(batch: int) -> dict[str, Callable[[list[str]], object]]:
    from fastembed import TextEmbedding

    from embedders import offline
    from embedders.langchain import FastEmbedEmbeddings

    folder = offline.seeded_model_dir(offline.DEFAULT_DENSE_MODEL, "model.onnx")
    if folder is None:
        raise SystemExit(f"not seeded: run `{offline.SEED_COMMAND}` first")
    raw_model = TextEmbedding(offline.DEFAULT_DENSE_MODEL, specific_model_path=str(folder))
    ours = FastEmbedEmbeddings(batch_size=batch)

    def raw(texts: list[str]) -> object:
        return list(raw_model.embed(texts, batch_size=batch))

    def streamed(texts: list[str]) -> object:
        # vectors consumed as they come, never all held at once
        return sum(1 for _ in ours.embed_documents_iter(texts))

    return {
        "raw TextEmbedding.embed": raw,
        "FastEmbedEmbeddings.embed_documents": ours.embed_documents,
        "embed_documents_iter (streamed)": streamed,
    }


def chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def throughput(
    sides: dict[str, Callable[[list[str]], object]], texts: list[str], repeat: int
) -> dict[str, tuple[float, float]]:
    """(documents per wall second, per CPU second) per side, taking turns 256 texts at a time.

    CPU seconds (all threads of this process) are less sensitive to other processes' load.
    """
    wall = dict.fromkeys(sides, 0.0)
    cpu = dict.fromkeys(sides, 0.0)
    order = list(sides)
    for fn in sides.values():
        fn(texts[:8])  # warm every session before timing
    for _ in range(repeat):
        for part in chunks(texts, 256):
            for label in order:
                t0, c0 = time.perf_counter(), time.process_time()
                sides[label](part)
                wall[label] += time.perf_counter() - t0
                cpu[label] += time.process_time() - c0
            order.reverse()
    docs = repeat * len(texts)
    return {label: (docs / wall[label], docs / cpu[label]) for label in sides}


def proc_status(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(side: str, batch: int, name: str, n: int | None) -> None:
    """Runs in a fresh process: one side over the whole corpus; prints the peak growth."""
    texts = corpus(name, n)
    fn = make_sides(batch)[side]
    fn(texts[:1])
    base = proc_status("VmRSS")
    fn(texts)
    # VmHWM, not ru_maxrss: the latter survives exec, so it would report the parent's peak.
    peak = proc_status("VmHWM")
    print(json.dumps({"peak_mb": max(peak - base, 0) / 2**20}))


def peak_memory(side: str, batch: int, name: str, n: int | None) -> float:
    cmd = [sys.executable, __file__, "--memory-of", side, "--batch", str(batch), "--corpus", name]
    cmd += ["--n", str(n)] if n else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def run(
    title: str, name: str, n: int | None, batches: list[int], repeat: int, memory: bool
) -> None:
    texts = corpus(name, n)
    words = statistics.mean(len(t.split()) for t in texts)
    print(f"\n{title}: {len(texts)} texts, {words:.0f} words on average, x{repeat}")
    for batch in batches:
        sides = make_sides(batch)
        rates = throughput({k: v for k, v in sides.items() if "streamed" not in k}, texts, repeat)
        raw_wall, raw_cpu = next(iter(rates.values()))
        for label in sides:
            line = f"  batch {batch:3}  {label:36}"
            if label in rates:
                w, c = rates[label]
                line += f" {w:6.1f} docs/s {w / raw_wall:5.3f}x raw"
                line += f" | {c:6.1f} docs/cpu-s {c / raw_cpu:5.3f}x"
            else:
                line += " " * 55
            if memory:
                line += f"   peak +{peak_memory(label, batch, name, n):7.1f} MB"
            print(line, flush=True)
        del sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="all 1,460 abstracts")
    parser.add_argument("--abstracts", type=int, default=200, help="abstracts without --full")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the titles")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument(
        "--abstract-batches",
        default=str(DEFAULT_BATCH),
        help="batch sizes for the abstracts, comma-separated (256 on all 1,460 needs >18 GB)",
    )
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        memory_child(args.memory_of, args.batch, args.corpus, args.n)
        return

    print(f"CISI from {CISI}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    memory = not args.no_memory
    run("short sentences (CISI titles)", "titles", None, [DEFAULT_BATCH, 256], args.repeat, memory)
    n = None if args.full else args.abstracts
    batches = [int(b) for b in args.abstract_batches.split(",")]
    run("CISI abstracts (.W)", "abstracts", n, batches, 1, memory)


if __name__ == "__main__":
    main()
