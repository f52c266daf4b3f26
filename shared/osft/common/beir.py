"""Reading judged query sets in BEIR layout: ``queries.jsonl`` and ``qrels/<split>.tsv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from osft.common.errors import InputDataError
from osft.common.jsonl import read_jsonl


@dataclass(frozen=True)
class JudgedSet:
    queries: dict[str, str]
    relevant: dict[str, set[str]]


def read_qrels(path: Path) -> dict[str, set[str]]:
    """qrels TSV (``query-id``, ``corpus-id``, ``score``; header optional) → query id → relevant doc ids."""
    if not path.exists():
        raise InputDataError(
            "qrels file not found", path=str(path), hint="expected BEIR layout: <dir>/qrels/<split>.tsv"
        )
    relevant: dict[str, set[str]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (line_no == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InputDataError("expected query-id, corpus-id, score", path=str(path), line=line_no)
            try:
                score = float(row[2])
            except ValueError:
                raise InputDataError(f"score {row[2]!r} is not a number", path=str(path), line=line_no) from None
            if score > 0:
                relevant.setdefault(row[0], set()).add(row[1])
    return relevant


def read_judged_set(folder: Path, split: str, queries_file: str = "queries.jsonl") -> JudgedSet:
    """Queries that have at least one relevant document in the split's qrels."""
    relevant = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries_path = folder / queries_file
    if not queries_path.exists():
        raise InputDataError("queries file not found", path=str(queries_path), hint="expected BEIR queries.jsonl")
    queries = {}
    for record in read_jsonl(queries_path):
        qid = str(record.get("_id", record.get("id", "")))
        if qid in relevant and record.get("text"):
            queries[qid] = str(record["text"])
    return JudgedSet(queries=queries, relevant={q: relevant[q] for q in queries})
