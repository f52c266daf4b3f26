"""deploy.sagemaker checks that spare a failed CreateEndpointConfig after the models were created."""

from __future__ import annotations

import pytest

from osft.common.errors import SpecError
from osft.common.spec import parse_spec

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
