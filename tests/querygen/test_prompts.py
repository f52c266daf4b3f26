"""Prompt templates, user overrides, few-shot examples and the factoid/conceptual mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osft.common.errors import InputDataError, OsftError
from osft.common.spec.querygen import QueryGen
from osft.querygen.prompts import PromptBuilder, load_examples, load_templates
from tests.querygen.conftest import make_docs, run_querygen


def builder(tmp_path: Path | None = None, examples: list[str] | None = None, **options) -> PromptBuilder:
    return PromptBuilder(QueryGen(**options), load_templates(tmp_path), examples or [])


def test_conceptual_fraction_sets_the_mix_of_kinds():
    docs = make_docs(40)
    kinds = [
        k for i, d in enumerate(docs) for k in builder(queries_per_doc=2, conceptual_fraction=0.25).build(i, d).kinds
    ]
    assert 0.15 < kinds.count("conceptual") / len(kinds) < 0.35
    only = builder(queries_per_doc=3, conceptual_fraction=0.0).build(0, docs[0])
    assert only.kinds == ("factoid",) * 3 and '(type "conceptual")' not in only.user


def test_prompt_asks_for_json_and_holds_the_document():
    record = builder(queries_per_doc=2, conceptual_fraction=0.5).build(3, make_docs(4)[3])
    assert record.record_id == "R0000000003" and len(record.record_id) == 11
    assert "DOCID d3" in record.user and '{"queries": [' in record.user and "JSON" in record.system


def test_prompt_dir_overrides_one_template_by_name(tmp_path: Path):
    (tmp_path / "user.txt").write_text("Doc: $document\nGive $count queries as JSON.\n$instructions$examples")
    record = builder(tmp_path, queries_per_doc=1).build(0, make_docs(1)[0])
    assert record.user.startswith("Doc: A study of")
    assert "You write the search queries" in record.system, "other templates stay built in"


def test_template_without_the_document_placeholder_is_refused(tmp_path: Path):
    (tmp_path / "user.txt").write_text("Write queries.")
    with pytest.raises(OsftError, match=r"user\.txt.*document"):
        load_templates(tmp_path)


def test_few_shot_examples_from_a_jsonl_of_real_queries(run_folder, fake_converse, tmp_path: Path):
    examples = tmp_path / "queries.jsonl"
    examples.write_text("".join(json.dumps({"_id": str(i), "text": f"real query number {i}"}) + "\n" for i in range(9)))
    fake = fake_converse()
    spec, run_dir = run_folder(
        {"provider": "bedrock", "examples_path": "queries.jsonl", "few_shot": 3, "bedrock": {"region": "us-east-1"}},
        make_docs(2),
    )
    record = builder(examples=load_examples(examples), few_shot=3).build(0, make_docs(1)[0])
    assert record.user.count("- real query number") == 3
    run_querygen(spec, run_dir)
    assert len(fake.served) == 2


def test_examples_file_without_query_text_names_the_line(tmp_path: Path):
    path = tmp_path / "queries.jsonl"
    path.write_text('{"query": "ok"}\n{"q": "no"}\n')
    with pytest.raises(InputDataError, match=r"queries\.jsonl:2"):
        load_examples(path)


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("user.txt", "Title: $title\nDoc: $document\n", 1, r"unknown placeholder \$title"),
        ("factoid.txt", "- $n factoid queries\n- out of $count\n", 2, r"unknown placeholder \$count"),
        ("system.txt", "You write queries.\nIt costs $5.\n", 2, r"a '\$' that starts no placeholder"),
    ],
)
def test_a_template_placeholder_that_is_never_filled_names_the_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, message: str
):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputDataError, match=rf"{name}:{line}: {message}"):
        load_templates(tmp_path)


def test_a_template_that_is_not_utf8_is_a_named_error(tmp_path: Path):
    (tmp_path / "user.txt").write_bytes("Document : $document, café".encode("latin-1"))
    with pytest.raises(InputDataError, match=r"user\.txt: prompt template is not UTF-8"):
        load_templates(tmp_path)


def test_a_dollar_sign_written_as_two_in_the_system_prompt_is_sent_as_one(tmp_path: Path):
    (tmp_path / "system.txt").write_text("Queries about prices in $$ are welcome.\n")
    assert builder(tmp_path).build(0, make_docs(1)[0]).system == "Queries about prices in $ are welcome."
