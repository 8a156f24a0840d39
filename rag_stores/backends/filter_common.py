"""What both filter translators share: rewriting the tree to a few primitives, constants.

`normalize` rewrites every operator into eq / in / gt / gte / lt / lte / text_match /
text_match_insensitive / exists under And / Or / Not, so each engine's translator handles
only those, and the derived operators mean exactly the same thing on both engines
(ne = not eq, nin = not in, contains = eq, any = in, all = and of eq). `And(())` is the
constant true and `Or(())` the constant false; the translators fold them away
(`fold_and`, `fold_or`).

text_match_insensitive means `fold_case(value) in fold_case(stored)`, where `fold_case`
lowercases each character whose lowercase is one character. Neither engine has it
natively (Qdrant's MatchText is a token match; Weaviate's `like` is case-sensitive on a
field-tokenized property): Weaviate reads a lowercased copy of the strings
(weaviate_layout, kind "l"); Qdrant, whose payload is the user's exact metadata, gets an Or
of case-sensitive substring matches over every spelling that folds to the value
(`case_variants`), which grows as 2^letters: above MAX_CASE_VARIANTS it raises
UnsupportedError.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..core.filters import RECORD_FIELDS, And, Field, FilterError, Node, Not, Or
from ..core.ids import to_point_id
from ..core.query import UnsupportedError

# 256 spellings = 8 letters. Each spelling is one substring condition in the engine.
MAX_CASE_VARIANTS = 256
# Operators a record field ($doc_id, $ref_doc_id) takes.
RECORD_FIELD_OPS = frozenset({"eq", "ne", "in", "nin"})

TRUE: Node = And(())
FALSE: Node = Or(())

T = TypeVar("T")


def record_field(field: Field) -> str | None:
    """The record field a reserved key names (doc_id, ref_doc_id), None for metadata keys."""
    if not field.key.startswith("$"):
        return None
    name = RECORD_FIELDS.get(field.key)
    if name is None:
        raise FilterError(
            f"filter key {field.key!r} is reserved (keys starting with '$'); "
            f"record fields are {sorted(RECORD_FIELDS)}"
        )
    if field.op not in RECORD_FIELD_OPS:
        raise FilterError(f"operator {field.op!r} is not supported on record field {field.key!r}")
    return name


def point_ids(field: Field, to_ids: Callable[[str], list[str]] | None = None) -> list[str]:
    """Engine point ids for an eq / in on DOC_ID: every store keys a record by
    `to_point_id(user id)` (a Qdrant tenant store: by `to_ids(user id)`), so the id filter is
    an indexed id lookup in any payload layout."""
    values = field.value if field.op == "in" else [field.value]
    ids = to_ids or (lambda v: [to_point_id(v)])
    return list(dict.fromkeys(p for v in values if isinstance(v, str) and v for p in ids(v)))


def _fold(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else ch


def fold_case(text: str) -> str:
    """Lowercase character by character (length-preserving), the text_match_insensitive key."""
    if text.isascii():  # the same, in C (str.lower differs only beyond ASCII: final sigma...)
        return text.lower()
    return "".join(_fold(ch) for ch in text)


@functools.cache
def _spellings() -> dict[str, tuple[str, ...]]:
    """Every character that folds to a given one, for the characters with more than one."""
    table: dict[str, list[str]] = {}
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        folded = _fold(ch)
        if folded != ch:
            table.setdefault(folded, [folded]).append(ch)
    return {k: tuple(v) for k, v in table.items()}


def case_variants(value: str, limit: int = MAX_CASE_VARIANTS) -> list[str]:
    """Every string that folds to `fold_case(value)`, e.g. "ab" -> ab, aB, Ab, AB."""
    table = _spellings()
    options = [table.get(_fold(ch), (_fold(ch),)) for ch in value]
    count = math.prod(len(o) for o in options)
    if count > limit:
        raise UnsupportedError(
            f"text_match_insensitive on {value!r}: Qdrant has no case-insensitive substring "
            f"match; it is emulated with one condition per upper/lower spelling, and this "
            f"value has {count} (limit {limit}). Use a shorter value or text_match."
        )
    return ["".join(p) for p in itertools.product(*options)]


def normalize(node: Node) -> Node:
    """The same filter using only eq, in, range, text matches and exists (see module doc)."""
    if isinstance(node, And):
        return And(tuple(normalize(c) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(normalize(c) for c in node.children))
    if isinstance(node, Not):
        return Not(normalize(node.child))
    if not isinstance(node, Field):
        raise FilterError(f"a filter tree node was expected, got {type(node).__name__}")
    key, op, value = node.key, node.op, node.value
    record_field(node)  # rejects unknown reserved keys and operators early
    if op == "ne":
        return Not(Field(key, "eq", value))
    if op == "nin":
        return Not(Field(key, "in", value)) if value else TRUE
    if op == "contains":
        return Field(key, "eq", value)
    if op == "any":
        return Field(key, "in", value)
    if op == "in":
        return Field(key, "in", value) if value else FALSE
    if op == "all":
        return And(tuple(Field(key, "eq", v) for v in value))
    return node


def fold_and(parts: Iterable[T | bool]) -> list[T] | bool:
    """Conditions of an And after constant folding, or the constant it reduces to."""
    kept: list[T] = []
    for part in parts:
        if part is False:
            return False
        if part is not True:
            kept.append(part)  # type: ignore[arg-type]
    return kept or True


def fold_or(parts: Iterable[T | bool]) -> list[T] | bool:
    """Conditions of an Or after constant folding, or the constant it reduces to."""
    kept: list[T] = []
    for part in parts:
        if part is True:
            return True
        if part is not False:
            kept.append(part)  # type: ignore[arg-type]
    return kept or False
