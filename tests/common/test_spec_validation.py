"""The run spec: every problem listed by field path in plain words, unknown fields rejected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from osft.common.cli import main
from osft.common.errors import SpecError
from osft.common.spec import json_schema, parse_spec, parse_spec_text

VALID = {"name": "docs", "source": {"type": "local", "path": "corpus.jsonl"}}


def problems_of(data: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "spec.json")
    return caught.value.problems


def with_changes(**changes: object) -> dict:
    return {**VALID, **changes}


MALFORMED = [
    pytest.param(with_changes(name="My Run"), "name: does not have the expected form", id="bad-name"),
    pytest.param(
        with_changes(name="-".join(["ab"] * 24)), "name: String should have at most 48 characters", id="name-too-long"
    ),
    pytest.param({"source": VALID["source"]}, "name: required field is missing", id="missing-name"),
    pytest.param({"name": "x"}, "source: required field is missing", id="missing-source"),
    pytest.param(with_changes(source={"path": "c.jsonl"}), "source: needs a 'type' field", id="source-without-type"),
    pytest.param(
        with_changes(source={"type": "ftp", "path": "c"}), "source: unknown type 'ftp'; expected one of", id="bad-type"
    ),
    pytest.param(
        with_changes(source={"type": "local", "pth": "c"}), "source.pth: unknown field; did you mean 'path'?", id="typo"
    ),
    pytest.param(
        with_changes(model={"bse": "x"}),
        "model.bse: unknown field; did you mean 'base'?",
        id="typo-beside-a-type-field",
    ),
    pytest.param(with_changes(epochs=3), "epochs: unknown field", id="unknown-top-level"),
    pytest.param(
        with_changes(querygen={"provider": "gpt"}), "querygen.provider: Input should be 'offline'", id="bad-provider"
    ),
    pytest.param(
        with_changes(querygen={"queries_per_doc": 0}), "querygen.queries_per_doc: Input should be greater", id="zero"
    ),
    pytest.param(
        with_changes(training={"learning_rate": "fast"}),
        "training.learning_rate: Input should be a valid number",
        id="nan",
    ),
    pytest.param(
        with_changes(querygen={"provider": "openai"}), "querygen: provider 'openai' needs model_id", id="openai-model"
    ),
    pytest.param(
        with_changes(model={"type": "dense", "sparse_mode": "doc-only"}), "model: sparse_mode applies", id="mode"
    ),
    pytest.param(with_changes(deploy={}), "deploy: give sagemaker, opensearch or both", id="empty-deploy"),
    pytest.param(
        with_changes(
            source={
                "type": "opensearch",
                "index": "docs",
                "connection": {"url": "https://h", "auth": {"type": "basic", "username": "u", "password": "p"}},
            }
        ),
        "source.connection.auth.password: passwords are never read from the spec",
        id="clear-password",
    ),
    pytest.param(with_changes(evaluation={"metric": "ndcg10"}), "evaluation.metric: does not have", id="metric"),
    pytest.param([VALID], "(top level): expected a JSON object", id="not-an-object"),
]


@pytest.mark.parametrize(("data", "expected"), MALFORMED)
def test_malformed_spec_names_the_field_and_the_problem(data: object, expected: str) -> None:
    problems = problems_of(data)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_listed_at_once() -> None:
    problems = problems_of({"name": "Bad", "source": {"type": "local"}, "querygen": {"provder": "x"}})
    assert len(problems) == 3
    assert {p.split(":")[0] for p in problems} == {"name", "source.path", "querygen.provder"}


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_text('{\n  "name": "x",\n  "source": }', "spec.json")
    assert "line 3 column" in caught.value.problems[0]


def test_valid_spec_fills_defaults() -> None:
    spec = parse_spec(VALID)
    assert spec.querygen.provider == "offline"
    assert spec.model.type == "dense"
    assert spec.deploy is None


def test_cli_reports_problems_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(with_changes(training={"batch_size": 1}, extra_field=True)))
    result = subprocess.run(
        [sys.executable, "-m", "osft.common.cli", "validate", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "training.batch_size" in result.stderr and "extra_field: unknown field" in result.stderr
    assert "Traceback" not in result.stderr


def test_published_json_schema_matches_the_models() -> None:
    published = json.loads((Path(__file__).resolve().parents[2] / "docs" / "spec.schema.json").read_text())
    assert published == json_schema(), "docs/spec.schema.json is stale: run 'osft schema > docs/spec.schema.json'"


@pytest.mark.parametrize(
    "example", sorted((Path(__file__).parents[2] / "examples").glob("*.json")), ids=lambda p: p.name
)
def test_every_example_spec_is_valid(example: Path) -> None:
    assert parse_spec_text(example.read_text(), source=str(example)).name


def test_json_type_slips_are_named_by_field_path_but_an_int_for_a_float_is_fine(tmp_path: Path) -> None:
    loose = tmp_path / "loose.json"
    loose.write_text(
        json.dumps(
            with_changes(
                training={"epochs": True, "hard_negatives": {"enabled": "yes"}, "export": {"onnx": 1}},
                source={"type": "local", "path": "corpus.jsonl", "bad_records": {"max_skipped": False}},
            )
        )
    )
    result = CliRunner().invoke(main, ["validate", str(loose)])

    assert result.exit_code == SpecError.exit_code
    assert "training.epochs: expected a number, not true or false (got true)" in result.output
    assert "training.hard_negatives.enabled: expected true or false" in result.output and "(got 'yes')" in result.output
    assert "training.export.onnx: expected true or false" in result.output
    assert "source.bad_records.max_skipped: expected a number" in result.output
    spec = parse_spec(with_changes(max_cost_usd=5, cost={"mean_request_kb": 2}, model={"normalize": None}))
    assert spec.max_cost_usd == 5.0 and spec.cost.mean_request_kb == 2.0


def test_a_type_slip_does_not_hide_the_other_problems_of_its_section() -> None:
    problems = problems_of(with_changes(training={"epochs": True, "batch_size": 1, "typo": 2}))
    assert [p.split(":")[0] for p in problems] == ["training.epochs", "training.batch_size", "training.typo"]


def test_a_field_added_with_a_default_leaves_the_fingerprints_of_finished_runs_alone() -> None:
    from osft.common.spec.training import Training

    # What runs made before training.mixed_precision existed hashed: the section without it.
    before = Training().model_dump(mode="json")
    before.pop("mixed_precision")
    assert Training().fingerprint_material() == before
    assert Training(mixed_precision="fp16").fingerprint_material() == {**before, "mixed_precision": "fp16"}


def test_a_nested_field_added_with_a_default_leaves_the_fingerprints_of_finished_runs_alone() -> None:
    from osft.common.spec.deploy import Deploy

    opensearch = {"connection": {"url": "https://search.example:9200"}, "mode": "local"}
    deploy = Deploy.model_validate({"opensearch": opensearch})
    # What runs made before deploy.opensearch.hybrid_search, .passage_vectors and deploy.when_rejected existed
    # hashed: the section without them.
    before = deploy.model_dump(mode="json")
    before["opensearch"].pop("hybrid_search")
    before["opensearch"].pop("passage_vectors")
    before.pop("when_rejected")
    assert deploy.fingerprint_material() == before
    with_hybrid = Deploy.model_validate({"opensearch": {**opensearch, "hybrid_search": {"keyword_weight": 0.3}}})
    assert with_hybrid.fingerprint_material()["opensearch"]["hybrid_search"]["keyword_weight"] == 0.3
    with_passages = Deploy.model_validate({"opensearch": {**opensearch, "passage_vectors": {}}})
    assert with_passages.fingerprint_material()["opensearch"]["passage_vectors"]["ingest_pipeline"] == "osft-passages"
    with_base = Deploy.model_validate({"opensearch": opensearch, "when_rejected": "base"})
    assert with_base.fingerprint_material() == {**before, "when_rejected": "base"}
