"""deploy.sagemaker checks that spare a failed CreateEndpointConfig after the models were created, and its image."""

from __future__ import annotations

import pytest

from osft.common.errors import OsftError, SpecError
from osft.common.spec import parse_spec
from osft.registrar.stage import serving_image

BASE_SPEC = {"name": "tiny", "source": {"type": "local", "path": "corpus.jsonl"}}


def _spec(sagemaker: dict) -> dict:
    return {**BASE_SPEC, "deploy": {"sagemaker": sagemaker}}


@pytest.mark.parametrize("sagemaker", [{"ab_base_weight": 0.2}, {"mode": "serverless", "ab_base_weight": 0.2}])
def test_an_ab_rollout_on_a_serverless_endpoint_is_refused_by_field_path(sagemaker):
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec(sagemaker), "spec.json")
    (problem,) = caught.value.problems
    assert problem.startswith("deploy.sagemaker.ab_base_weight: needs mode 'real-time'")
    assert "only one production variant" in problem


def test_an_ab_rollout_on_a_real_time_endpoint_is_accepted():
    spec = parse_spec(_spec({"mode": "real-time", "ab_base_weight": 0.2}))
    assert spec.deploy.sagemaker.ab_base_weight == 0.2


def test_a_bad_mode_is_reported_once_not_also_as_an_ab_problem():
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec({"mode": "lambda", "ab_base_weight": 0.2}), "spec.json")
    assert [p.split(":")[0] for p in caught.value.problems] == ["deploy.sagemaker.mode"]


TRAINER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/osft/trainer:abc"


@pytest.mark.parametrize(
    ("sagemaker", "expected"),
    [
        ({}, f"{TRAINER_IMAGE}-cpu"),  # serverless: no GPU, and images over 10 GB are refused
        ({"mode": "real-time", "instance_type": "ml.m5.xlarge"}, f"{TRAINER_IMAGE}-cpu"),
        ({"mode": "real-time", "instance_type": "ml.c7i.large"}, f"{TRAINER_IMAGE}-cpu"),
        ({"mode": "real-time", "instance_type": "ml.g5.xlarge"}, TRAINER_IMAGE),
        ({"mode": "real-time", "instance_type": "ml.p4d.24xlarge"}, TRAINER_IMAGE),
        ({"image_uri": "my/own:image"}, "my/own:image"),
    ],
)
def test_cpu_endpoints_serve_the_cpu_build_and_gpu_endpoints_the_cuda_trainer_image(sagemaker, expected, monkeypatch):
    monkeypatch.setenv("OSFT_TRAINER_IMAGE_URI", TRAINER_IMAGE)
    monkeypatch.setenv("OSFT_SERVE_CPU_IMAGE_URI", f"{TRAINER_IMAGE}-cpu")

    assert serving_image(parse_spec(_spec(sagemaker)).deploy.sagemaker) == expected


def test_without_a_cpu_build_every_endpoint_serves_the_trainer_image(monkeypatch):
    monkeypatch.setenv("OSFT_TRAINER_IMAGE_URI", TRAINER_IMAGE)
    monkeypatch.delenv("OSFT_SERVE_CPU_IMAGE_URI", raising=False)

    assert serving_image(parse_spec(_spec({})).deploy.sagemaker) == TRAINER_IMAGE


def test_no_image_at_all_names_the_field_to_set(monkeypatch):
    for name in ("OSFT_TRAINER_IMAGE_URI", "OSFT_SERVE_CPU_IMAGE_URI"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(OsftError, match=r"deploy\.sagemaker\.image_uri is not set"):
        serving_image(parse_spec(_spec({})).deploy.sagemaker)
