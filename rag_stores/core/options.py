"""Unknown keyword options are mistakes: a typo would otherwise be accepted and ignored."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable


def parameters(*functions: Callable[..., object]) -> set[str]:
    """The keyword parameters the functions take (not `self`, not `**kwargs`)."""
    return {name for f in functions for name, p in inspect.signature(f).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def check_options(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """TypeError naming the first unknown option and the closest known one."""
    choices = sorted(set(known))
    for name in given:
        if name not in choices:
            close = difflib.get_close_matches(name, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unknown {what} option {name!r}{hint}")
