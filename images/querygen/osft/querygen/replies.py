"""Parsing model replies: strict about the shape, tolerant of code fences and prose around it.

The prompt asks for ``{"queries": [{"type": "factoid", "query": "..."}]}``. Accepted too: a
bare list, strings instead of objects, ``text`` instead of ``query``, and the JSON wrapped in
a code fence or preceded by a sentence. Anything else raises ``UnparseableReply``, which the
caller counts and skips.
"""

from __future__ import annotations

import json
import re
from typing import Any

from osft.querygen.prompts import KINDS

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_OPENING = re.compile(r"[{\[]")


class UnparseableReply(ValueError):
    """The reply holds no usable list of queries."""


def _json_candidates(text: str) -> list[Any]:
    """JSON values found in the reply: the whole text, fenced blocks, then each object or list in the
    prose, in order (a bracket in the prose, such as "[1]", must not hide the JSON after it)."""
    found: list[Any] = []
    sources = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    decoder = json.JSONDecoder()
    for source in sources:
        try:
            found.append(json.loads(source))
            continue
        except ValueError:
            pass
        start = 0
        while (match := _OPENING.search(source, start)) is not None:
            try:
                value, start = decoder.raw_decode(source, match.start())
            except ValueError:
                start = match.start() + 1
                continue
            found.append(value)
    return found


def _items(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        for key in ("queries", "questions", "results"):
            if isinstance(value.get(key), list):
                return value[key]
        return None
    return value if isinstance(value, list) else None


def parse_reply(text: str, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """(query, kind) pairs from a reply; ``kinds`` gives the kind of each position when unlabeled."""
    for candidate in _json_candidates(text):
        items = _items(candidate)
        if items is None:
            continue
        parsed: list[tuple[str, str]] = []
        for position, item in enumerate(items):
            fallback = kinds[position] if position < len(kinds) else "factoid"
            if isinstance(item, str):
                query, kind = item, fallback
            elif isinstance(item, dict):
                query = item.get("query", item.get("text"))
                kind = str(item.get("type", item.get("kind", fallback))).lower()
            else:
                continue
            if isinstance(query, str) and query.strip():
                parsed.append((query.strip(), kind if kind in KINDS else fallback))
        if parsed:
            return parsed
    raise UnparseableReply(f"no JSON list of queries in the reply ({text[:80]!r}...)")
