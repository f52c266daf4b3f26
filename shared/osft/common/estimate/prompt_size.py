"""Tokens of one querygen prompt beyond the document: the templates and the few-shot examples.

The querygen stage fills five templates (``osft.querygen`` ``prompts/``; ``querygen.prompt_dir``
overrides any of them by file name) and adds ``few_shot`` real queries from ``examples_path``.
The built-in templates' token counts are in ``prices.json`` (``querygen_assumptions.builtin_prompt_tokens``,
kept equal to the querygen package's files by ``tests/estimate``), because the cost guard runs on
the extractor image, which has no querygen package. Overriding files and the examples are read
and measured with the same tokenizer as the corpus sample.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from osft.common.errors import OsftError
from osft.common.spec.querygen import QueryGen
from osft.common.stage import resolve_spec_path
from osft.common.storage import Location, is_s3, join

TEMPLATE_NAMES = ("system.txt", "user.txt", "factoid.txt", "conceptual.txt", "examples.txt")
BUILTIN_USER_PLACEHOLDERS = frozenset({"document", "count", "instructions", "examples"})
CountTokens = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class PromptSize:
    tokens: float
    """Mean tokens of a prompt without its document text."""
    described: str


def spec_relative(spec_uri: str | None, path: str) -> str | None:
    """A path written in the spec, resolved as the stages resolve it (relative to the spec); None if unknown."""
    if spec_uri is None:
        return path if is_s3(path) or Path(path).is_absolute() else None
    return resolve_spec_path(spec_uri, path)


def template_part_tokens(name: str, text: str, queries_per_doc: int, count: CountTokens) -> int:
    """Tokens one template adds to a prompt, filled as the querygen stage fills it, without document or examples."""
    template = Template(text)
    if name == "system.txt":
        filled = text.strip()
    elif name == "user.txt":
        filled = template.safe_substitute(document="", count=str(queries_per_doc), instructions="", examples="")
    elif name == "examples.txt":
        filled = template.safe_substitute(examples="")
    else:  # factoid.txt, conceptual.txt: one instruction line
        filled = template.safe_substitute(n="1", plural="y").rstrip()
    return count([filled])[0] if filled else 0


def placeholders(text: str) -> set[str]:
    """The ``$name`` / ``${name}`` placeholders of a template (a user.txt without one leaves that part out)."""
    return {m.group("named") or m.group("braced") for m in Template.pattern.finditer(text)} - {None}


def instruction_shares(queries_per_doc: int, conceptual_fraction: float) -> dict[str, float]:
    """How often each instruction line is in a prompt: the stage asks ``queries_per_doc × conceptual_fraction``
    conceptual queries, the fraction rounded at random, and writes a kind's line only when it asks for one."""
    exact = queries_per_doc * conceptual_fraction
    floor, rest = int(exact), exact - int(exact)  # floor conceptual queries, one more with probability rest
    conceptual = (1 - rest) * (floor >= 1) + rest
    factoid = (1 - rest) * (floor < queries_per_doc) + rest * (floor + 1 < queries_per_doc)
    return {"factoid.txt": factoid, "conceptual.txt": conceptual}


def _read_examples(uri: str) -> list[str]:
    """The example queries of an ``examples_path`` JSONL file (``query`` or ``text``), as the querygen stage reads them."""
    examples = []
    for line in Location(uri).read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        value = row.get("query", row.get("text")) if isinstance(row, dict) else None
        if isinstance(value, str) and value.strip():
            examples.append(" ".join(value.split()))
    return examples


def measure_prompt(qg: QueryGen, spec_uri: str | None, count: CountTokens, assumptions: dict[str, Any]) -> PromptSize:
    """Mean tokens of a prompt beyond its document, from the templates in force and the example queries."""
    builtin: dict[str, int] = assumptions["builtin_prompt_tokens"]
    parts = dict(builtin)
    user_placeholders = set(BUILTIN_USER_PLACEHOLDERS)
    overridden: list[str] = []
    prompt_dir = spec_relative(spec_uri, qg.prompt_dir) if qg.prompt_dir else None
    if qg.prompt_dir and prompt_dir is None:
        overridden.append("prompt_dir not read (spec location unknown): built-in sizes assumed")
    for name in TEMPLATE_NAMES if prompt_dir else ():
        location = Location(join(prompt_dir, name))
        try:
            text = location.read_text() if location.exists() else None
        except (OsftError, OSError, UnicodeDecodeError):
            text = None
        if text is not None:
            parts[name] = template_part_tokens(name, text, qg.queries_per_doc, count)
            overridden.append(name)
            if name == "user.txt":
                user_placeholders = placeholders(text)
    shares = instruction_shares(qg.queries_per_doc, qg.conceptual_fraction)
    if "instructions" not in user_placeholders:
        shares = dict.fromkeys(shares, 0.0)
    tokens = assumptions["message_overhead_tokens"] + parts["system.txt"] + parts["user.txt"]
    tokens += sum(parts[name] * share for name, share in shares.items())
    described = "templates: " + (f"prompt_dir ({', '.join(overridden)}) and built in" if overridden else "built in")

    if qg.examples_path and qg.few_shot and "examples" in user_placeholders:
        uri = spec_relative(spec_uri, qg.examples_path)
        examples: list[str] = []
        try:
            examples = _read_examples(uri) if uri else []
        except (OsftError, OSError, ValueError):
            examples = []
        if examples:
            shots = min(qg.few_shot, len(examples))
            per_example = sum(count([f"- {q}" for q in examples])) / len(examples)
            described += f"; {shots} examples of {len(examples):,} in examples_path, {per_example:.0f} tokens each"
        else:
            shots, per_example = qg.few_shot, float(assumptions["tokens_per_example_query"])
            described += f"; examples_path not read: {shots} examples of {per_example:.0f} tokens assumed"
        tokens += parts["examples.txt"] + shots * per_example
    return PromptSize(tokens, f"{tokens:,.0f} tokens besides the document ({described})")
