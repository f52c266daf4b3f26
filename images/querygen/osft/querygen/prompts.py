"""Prompt templates and the per-document prompt records sent to an LLM.

Templates are plain-text files using ``$name`` placeholders (``string.Template``), so JSON
examples inside them need no escaping. The built-in set lives in ``prompts/``; a
``querygen.prompt_dir`` folder overrides any of its files by name:

- ``system.txt``: the system prompt;
- ``user.txt``: the request, with ``$document``, ``$count``, ``$instructions``, ``$examples``;
- ``factoid.txt`` / ``conceptual.txt``: one instruction line per kind, with ``$n`` and ``$plural``;
- ``examples.txt``: the few-shot block, with ``$examples`` (one real query per line).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from osft.common.corpus import Document, document_text
from osft.common.errors import InputDataError, OsftError
from osft.common.jsonl import read_jsonl_numbered
from osft.common.spec.querygen import QueryGen

TEMPLATE_FILES: dict[str, set[str]] = {
    "system.txt": set(),
    "user.txt": {"document"},
    "factoid.txt": {"n"},
    "conceptual.txt": {"n"},
    "examples.txt": {"examples"},
}
# Every placeholder each template is filled with; any other $name would fail mid-run with a KeyError.
TEMPLATE_PLACEHOLDERS: dict[str, set[str]] = {
    "system.txt": set(),
    "user.txt": {"document", "count", "instructions", "examples"},
    "factoid.txt": {"n", "plural"},
    "conceptual.txt": {"n", "plural"},
    "examples.txt": {"examples"},
}
KINDS = ("factoid", "conceptual")


@dataclass(frozen=True)
class PromptRecord:
    """One request to the model: the prompts for one document and the kinds of query asked."""

    record_id: str
    doc_id: str
    system: str
    user: str
    kinds: tuple[str, ...]


def record_id(index: int) -> str:
    """An 11-character alphanumeric id, the form Bedrock batch inference documents for recordId."""
    return f"R{index:010d}"


def load_templates(prompt_dir: Path | None) -> dict[str, Template]:
    """The five templates, each from ``prompt_dir`` when it has the file, else built in."""
    builtin = resources.files("osft.querygen") / "prompts"
    templates: dict[str, Template] = {}
    for name in TEMPLATE_FILES:
        override = prompt_dir / name if prompt_dir is not None else None
        if override is not None and override.is_file():
            templates[name] = _checked_template(_read_template(override), name, str(override))
        else:
            templates[name] = _checked_template((builtin / name).read_text(), name, f"built-in prompts/{name}")
    if prompt_dir is not None and not prompt_dir.is_dir():
        raise OsftError(f"querygen.prompt_dir: {prompt_dir} is not a folder", hint="give a folder of .txt templates")
    return templates


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputDataError(
            f"prompt template is not UTF-8 text (byte {exc.start})", path=str(path), hint="save the file as UTF-8"
        ) from None


def _checked_template(text: str, name: str, where: str) -> Template:
    """The template, or an error naming the file and line of a bad '$', an unknown or a missing placeholder."""
    template = Template(text)
    allowed = TEMPLATE_PLACEHOLDERS[name]
    hint = "write placeholders as $name (or ${name}); a literal dollar sign as $$"
    for match in template.pattern.finditer(text):
        placeholder = match.group("named") or match.group("braced")
        line = text.count("\n", 0, match.start()) + 1
        if match.group("invalid") is not None:
            raise InputDataError("a '$' that starts no placeholder", path=where, line=line, hint=hint)
        if placeholder is not None and placeholder not in allowed:
            known = ", ".join(f"${p}" for p in sorted(allowed)) or "none"
            raise InputDataError(
                f"unknown placeholder ${placeholder} (placeholders of {name}: {known})",
                path=where,
                line=line,
                hint=hint,
            )
    missing = TEMPLATE_FILES[name] - set(template.get_identifiers())
    if missing:
        raise InputDataError(
            f"prompt template is missing placeholder(s) {', '.join('$' + p for p in sorted(missing))}",
            path=where,
            hint=hint,
        )
    return template


def templates_digest(templates: dict[str, Template]) -> str:
    return hashlib.sha256("\n\x00".join(t.template for t in templates.values()).encode()).hexdigest()


def read_query_texts(path: Path, *, allow_blank: bool = False) -> list[str]:
    """The ``query`` (or BEIR's ``text``) string of each JSONL line, as written; blank ones only if allowed."""
    texts: list[str] = []
    for line_no, record in read_jsonl_numbered(path):
        value = record.get("query", record.get("text"))
        if not isinstance(value, str) or not (allow_blank or value.strip()):
            raise InputDataError(
                "expected a 'query' (or 'text') string field",
                path=str(path),
                line=line_no,
                hint='write one {"query": "..."} object per line',
            )
        texts.append(value)
    return texts


def load_examples(path: Path) -> list[str]:
    """Real queries from a JSONL file; each line needs a ``query`` or ``text`` field (BEIR queries work)."""
    examples = [" ".join(value.split()) for value in read_query_texts(path)]
    if not examples:
        raise InputDataError("no example queries found", path=str(path), hint="add a few real queries, one per line")
    return examples


def kind_counts(count: int, conceptual_fraction: float, rng: random.Random) -> dict[str, int]:
    """Split ``count`` queries into factoid and conceptual, rounding the fraction at random."""
    exact = count * conceptual_fraction
    conceptual = int(exact) + (1 if rng.random() < exact - int(exact) else 0)
    return {"factoid": count - conceptual, "conceptual": conceptual}


class PromptBuilder:
    """Fills the templates for one document: its text (cut to ``max_document_chars``), the kinds
    of query asked (``conceptual_fraction``) and a seeded handful of few-shot examples."""

    def __init__(self, options: QueryGen, templates: dict[str, Template], examples: list[str]) -> None:
        self.options = options
        self.templates = templates
        self.examples = examples

    def build(self, index: int, doc: Document) -> PromptRecord:
        rng = random.Random(f"{self.options.seed}:prompt:{doc['id']}")
        counts = kind_counts(self.options.queries_per_doc, self.options.conceptual_fraction, rng)
        instructions = "\n".join(
            self.templates[f"{kind}.txt"].substitute(n=n, plural="y" if n == 1 else "ies").rstrip()
            for kind, n in counts.items()
            if n
        )
        shots = ""
        if self.examples and self.options.few_shot:
            picked = rng.sample(self.examples, k=min(self.options.few_shot, len(self.examples)))
            shots = self.templates["examples.txt"].substitute(examples="\n".join(f"- {q}" for q in picked))
        user = self.templates["user.txt"].substitute(
            document=document_text(doc)[: self.options.max_document_chars],
            count=self.options.queries_per_doc,
            instructions=instructions,
            examples=shots,
        )
        kinds = tuple(kind for kind, n in counts.items() for _ in range(n))
        system = self.templates["system.txt"].substitute().strip()  # turns $$ into $
        return PromptRecord(record_id(index), doc["id"], system, user, kinds)
