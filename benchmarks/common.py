"""Helpers shared by the benchmark scripts: the CISI reader, percentiles, tables, JSON output."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CISI_DIR = ROOT.parent / "shared" / "datasets" / "cisi"
OUT_DIR = Path(__file__).resolve().parent / "out"

_FIELD = re.compile(r"^\.([A-Z])(?:\s+(.*))?$")


@dataclass
class CisiDoc:
    id: str
    title: str
    authors: list[str] = field(default_factory=list)
    abstract: str = ""

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.abstract}".strip()


def read_smart(path: Path) -> list[dict[str, list[str]]]:
    """SMART-format records: `.I id` starts one; `.T`, `.A`, `.W`, ... start its fields."""
    records: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] | None = None
    key = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _FIELD.match(line)
        if m and m.group(1) == "I":
            current = {"I": [(m.group(2) or "").strip()]}
            records.append(current)
            key = ""
        elif m and current is not None:
            key = m.group(1)
            current.setdefault(key, []).append((m.group(2) or "").strip())
        elif current is not None and key:
            current[key].append(line.strip())
    return records


def read_cisi(path: Path | None = None, limit: int | None = None) -> list[CisiDoc]:
    """CISI.ALL as documents: title + abstract as text, `.I` as the id (cross-refs dropped)."""
    docs = []
    for rec in read_smart(path or CISI_DIR / "CISI.ALL"):
        docs.append(CisiDoc(
            id=rec["I"][0],
            title=" ".join(x for x in rec.get("T", []) if x),
            authors=[a for a in rec.get("A", []) if a],
            abstract=" ".join(x for x in rec.get("W", []) if x),
        ))
    return docs[:limit] if limit else docs


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    for row in cells[1:]:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 1 \
            else f"{value:.2f}"
    return "" if value is None else str(value)


def write_json(name: str, data: Any) -> Path:
    """Write results to benchmarks/out/<name>-<timestamp>.json (the folder is gitignored)."""
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
