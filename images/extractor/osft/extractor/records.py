"""Turning a raw record into a document with the spec's field mapping."""

from __future__ import annotations

import re
from typing import Any

from osft.common.corpus import Document
from osft.common.spec.source import FieldMapping

# Lone UTF-16 surrogates: JSON may escape them ("\ud800"), but no UTF-8 writer or hash accepts them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so it can be encoded as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


class MissingField(ValueError):
    """The record lacks a field the mapping needs."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def get_path(record: dict[str, Any], dotted: str) -> Any:
    """``body.content`` → record["body"]["content"]; lists of objects yield a list of values.

    A key that itself contains dots (``"body.content"`` as one key) is found too.
    """
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list):
            value = [item.get(part) for item in value if isinstance(item, dict)]
        else:
            return None
        if value is None:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(t for t in (_as_text(v) for v in value) if t)
    if isinstance(value, dict):
        return ""
    return valid_unicode(str(value))


def _keys(record: dict[str, Any]) -> str:
    keys = sorted(str(k) for k in record)
    shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
    return shown or "none"


def top_level_fields(mapping: FieldMapping) -> list[str]:
    """The top-level keys a mapping reads (to read only those columns or ``_source`` fields)."""
    names = [*mapping.text, mapping.title, mapping.id]
    return sorted({n.split(".")[0] for n in names if n and not n.startswith("_")})


def to_document(record: dict[str, Any], mapping: FieldMapping, position: int) -> Document:
    """Map a record to ``{id, title, text}``; raise MissingField when no text field has content."""
    parts = [_as_text(get_path(record, name)).strip() for name in mapping.text]
    text = mapping.join_with.join(p for p in parts if p)
    if not text:
        raise MissingField(
            f"no text in field(s) {', '.join(mapping.text)} (record has: {_keys(record)})", reason="missing_text"
        )
    if mapping.id is None:
        doc_id = str(position)
    else:
        raw_id = get_path(record, mapping.id)
        if raw_id is None or raw_id == "" or isinstance(raw_id, (dict, list)):
            raise MissingField(f"no id in field '{mapping.id}' (record has: {_keys(record)})", reason="missing_id")
        doc_id = valid_unicode(str(raw_id))
    title = _as_text(get_path(record, mapping.title)).strip() if mapping.title else ""
    return {"id": doc_id, "title": title, "text": text}
