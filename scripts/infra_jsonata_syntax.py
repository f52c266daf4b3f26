"""Parse every JSONata expression (``{% ... %}``) of a state machine definition; report syntax errors.

Runs in the .tools/lint venv (jsonata-python comes with statelint[jsonata]); statelint itself
checks the definition's structure but not the syntax of JSONata expressions.

    .tools/lint/bin/python scripts/infra_jsonata_syntax.py terraform/statemachine/pipeline.asl.json
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from jsonata import Jsonata

EXPRESSION = re.compile(r"^\{%(.*)%\}$", re.DOTALL)


def expressions(node: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """Yield (JSON path, expression) for every string value written as ``{% expression %}``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from expressions(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from expressions(value, f"{path}[{index}]")
    elif isinstance(node, str):
        match = EXPRESSION.match(node.strip())
        if match:
            yield path, match.group(1)


def main(argv: list[str]) -> int:
    problems: list[str] = []
    count = 0
    for file in argv:
        with open(file, encoding="utf-8") as handle:
            definition = json.load(handle)
        for path, expression in expressions(definition):
            count += 1
            try:
                Jsonata(expression)
            except Exception as exc:  # noqa: BLE001 - jsonata-python raises its own JException
                problems.append(f"{file}: {path}: {exc}")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{count} JSONata expressions parsed, {len(problems)} with syntax errors")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
