"""deploy.when_rejected 'base': a tuned model the gate rejected is replaced by the base model evaluate saved."""

from __future__ import annotations

import json
import tarfile

import pytest

from osft.common.errors import OsftError, SpecError
from osft.common.spec import parse_spec
from osft.common.stage import run_stage
from osft.registrar.stage import STAGE
from tests.registrar.conftest import opensearch_section, sagemaker_section


def local_section(url: str, **overrides) -> dict:
    return opensearch_section(url, mode="local", local_upload="chunks", **overrides)


def registered_hashes(server) -> set[str]:
    return {model["model_content_hash_value"] for model in server.models.values()}


def test_a_rejected_model_gives_way_to_the_base_model_and_its_hybrid_search(run_folder, ml_server) -> None:
    server = ml_server()
    deploy = {"opensearch": local_section(server.url, search_check={}, hybrid_search={}), "when_rejected": "base"}
    spec, run_dir = run_folder(deploy, accepted=False, base_saved=True)
    evaluate = json.loads((run_dir / "evaluate" / "manifest.json").read_text())["stats"]

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    assert stats.deployed_model == "base" and stats.skipped_reason is None
    assert registered_hashes(server) == {evaluate["base_exports"]["opensearch_torchscript_zip"]["sha256"]}
    (model,) = server.models.values()
    description = model["description"]
    assert "base model sentence-transformers/all-MiniLM-L6-v2, deployed because the gate rejected" in description
    assert stats.search_pipeline == "osft-hybrid" and "osft-hybrid returned the right document first" in (
        stats.smoke_test
    )
    registration = json.loads((run_dir / "register" / "registration.json").read_text())
    assert registration["deployed"] is True and registration["deployed_model"] == "base"
    assert registration["reason"].startswith("the evaluation gate rejected the model")
    assert registration["model_id"] == stats.model_id
    assert any(note.startswith("deployed the base model") for note in manifest.notes)


def test_an_accepted_model_is_deployed_itself_whatever_when_rejected_says(run_folder, ml_server) -> None:
    server = ml_server()
    spec, run_dir = run_folder(
        {"opensearch": local_section(server.url), "when_rejected": "base"}, accepted=True, base_saved=True
    )
    train = json.loads((run_dir / "train" / "manifest.json").read_text())["stats"]

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    assert manifest.stats.deployed_model == "tuned"
    assert registered_hashes(server) == {train["exports"]["opensearch_torchscript_zip"]["sha256"]}


def test_a_rejected_model_without_a_saved_base_says_to_re_run_evaluate(run_folder) -> None:
    deploy = {"opensearch": local_section("http://127.0.0.1:9"), "when_rejected": "base"}
    spec, run_dir = run_folder(deploy, accepted=False, base_saved=False)

    with pytest.raises(OsftError) as error:
        run_stage(STAGE, str(spec), str(run_dir))

    assert "evaluate/manifest.json" in error.value.message and "saved no base model" in error.value.message
    assert "evaluate run --force" in error.value.hint


def test_the_sagemaker_endpoint_serves_the_base_model_folder(aws, run_folder) -> None:
    spec, run_dir = run_folder(
        {"sagemaker": sagemaker_section(), "when_rejected": "base"}, accepted=False, base_saved=True, weights=False
    )

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    assert manifest.stats.deployed_model == "base" and manifest.stats.endpoint_action == "created"
    with tarfile.open(run_dir / "register" / "model.tar.gz") as archive:
        shipped = archive.extractfile("osft-folder.txt")
        assert shipped is not None and shipped.read().decode() == "evaluate/base_model"


@pytest.mark.parametrize(
    ("deploy", "problem"),
    [
        (
            {"when_rejected": "base", "require_gate": False},
            "deploy: when_rejected 'base' needs require_gate true",
        ),
        (
            {"when_rejected": "base", "sagemaker": sagemaker_section(mode="real-time", ab_base_weight=0.2)},
            "deploy: when_rejected 'base' cannot go with sagemaker.ab_base_weight",
        ),
        ({"when_rejected": "always"}, "deploy.when_rejected: Input should be 'skip' or 'base'"),
    ],
)
def test_settings_that_cannot_deploy_the_base_are_refused_by_field(deploy: dict, problem: str) -> None:
    spec = {
        "name": "tiny",
        "source": {"type": "local", "path": "corpus.jsonl"},
        "deploy": {"opensearch": local_section("http://127.0.0.1:9"), **deploy},
    }
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert any(line.startswith(problem) for line in error.value.problems), error.value.problems


def test_a_sparse_model_cannot_deploy_its_base_this_way() -> None:
    spec = {
        "name": "tiny",
        "source": {"type": "local", "path": "corpus.jsonl"},
        "model": {"type": "sparse"},
        "deploy": {"opensearch": local_section("http://127.0.0.1:9"), "when_rejected": "base"},
    }
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert error.value.problems == [
        "deploy.when_rejected: 'base' deploys dense base models only; register a sparse base model as one of "
        "OpenSearch's pretrained sparse models instead"
    ]


def test_a_base_saved_without_the_zip_local_mode_needs_says_to_export_and_re_run_evaluate(run_folder) -> None:
    deploy = {"opensearch": local_section("http://127.0.0.1:9"), "when_rejected": "base"}
    spec, run_dir = run_folder(deploy, accepted=False, base_saved=True)
    manifest_path = run_dir / "evaluate" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["stats"]["base_exports"] = {}
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(OsftError) as error:
        run_stage(STAGE, str(spec), str(run_dir))

    assert error.value.message.startswith("evaluate/manifest.json: no 'opensearch_torchscript_zip' export")
    assert error.value.hint == "set training.export.opensearch_zip: true and re-run the evaluate stage"
