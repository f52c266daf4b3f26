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
# Reasoning models served without a reasoning parser (llama.cpp, Ollama, vLLM) write their thinking
# inline; drafts of the JSON in it must not be taken for the answer. An unclosed block was cut off.
_THINKING = re.compile(r"<(think|thinking)>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_KEYED_LIST = re.compile(r'"(?:queries|questions|results)"\s*:\s*\[')


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


def _queries(items: list[Any], kinds: tuple[str, ...]) -> list[tuple[str, str]]:
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
    return parsed


def _items_before_cut(text: str, start: int) -> list[Any]:
    """The whole items of a list a token limit cut off, from ``start`` (just after its '[')."""
    decoder = json.JSONDecoder()
    items: list[Any] = []
    position = start
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            item, position = decoder.raw_decode(text, position)
        except ValueError:
            return items
        items.append(item)


def _queries_before_cut(text: str, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """Queries of an unfinished list: ``{"queries": [{...}, {...}, {"ty`` gives two. The keyed list
    is tried first, then each '[' (one in the prose, such as "[1]", holds none)."""
    keyed = _KEYED_LIST.search(text)
    starts = [keyed.end()] if keyed else []
    starts += [match.end() for match in re.finditer(r"\[", text)]
    for start in starts:
        if parsed := _queries(_items_before_cut(text, start), kinds):
            return parsed
    return []


def parse_reply(text: str, kinds: tuple[str, ...], *, cut: bool = False) -> list[tuple[str, str]]:
    """(query, kind) pairs from a reply; ``kinds`` gives the kind of each position when unlabeled.

    ``cut``: the reply stopped at the token limit, so its list may be unfinished; the queries
    written whole before the cut are kept (they are paid for).
    """
    answer = _THINKING.sub("", text)
    for candidate in _json_candidates(answer):
        items = _items(candidate)
        if items is None:
            continue
        parsed = _queries(items, kinds)
        if parsed:
            return parsed
    if cut and (parsed := _queries_before_cut(answer, kinds)):
        return parsed
    raise UnparseableReply(f"no JSON list of queries in the reply ({text[:80]!r}...)")
