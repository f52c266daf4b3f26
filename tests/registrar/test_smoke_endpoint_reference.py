"""The smoke test's SageMaker reference: InvokeEndpoint on a named variant, AWS failures as user-facing errors."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from osft.common.errors import CredentialsError, ServiceError
from osft.registrar.smoke_test import check_predictions, endpoint_reference
from tests.registrar.conftest import REGION

TEXTS = ["hello world", "a second text"]
TUNED = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
BASE = [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]


def _runtime() -> tuple[object, Stubber]:
    client = boto3.client("sagemaker-runtime", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _answer(embeddings: list) -> dict:
    body = json.dumps(embeddings).encode()
    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"}


def _expected(variant: str) -> dict:
    return {
        "EndpointName": "osft-tiny",
        "TargetVariant": variant,
        "ContentType": "application/json",
        "Body": json.dumps(TEXTS).encode(),
    }


def _check(predicted: list, reference) -> object:
    return check_predictions(
        TEXTS,
        predicted,
        model_id="m1",
        expected_dimension=3,
        reference=reference,
        reference_name="SageMaker endpoint osft-tiny",
        min_cosine=0.99,
    )


def test_the_reference_is_asked_of_the_tuned_variant_not_whichever_the_weights_pick():
    client, stubber = _runtime()
    stubber.add_response("invoke_endpoint", _answer(TUNED), _expected("tuned"))

    with stubber:
        result = _check(TUNED, endpoint_reference(client, "osft-tiny"))

    stubber.assert_no_pending_responses()
    assert result.min_cosine == pytest.approx(1.0)
    assert result.reference == "SageMaker endpoint osft-tiny"


def test_with_both_ab_variants_the_answer_may_match_either_and_says_which():
    client, stubber = _runtime()
    stubber.add_response("invoke_endpoint", _answer(TUNED), _expected("tuned"))
    stubber.add_response("invoke_endpoint", _answer(BASE), _expected("base"))

    with stubber:
        result = _check(BASE, endpoint_reference(client, "osft-tiny", variants=("tuned", "base")))

    assert result.reference == "SageMaker endpoint osft-tiny (variant base)"


def test_an_answer_matching_no_variant_fails_the_smoke_test():
    client, stubber = _runtime()
    stubber.add_response("invoke_endpoint", _answer(TUNED), _expected("tuned"))

    with stubber, pytest.raises(ServiceError, match="embeddings differ from the SageMaker endpoint osft-tiny"):
        _check(BASE, endpoint_reference(client, "osft-tiny"))


@pytest.mark.parametrize(
    ("code", "status", "error", "hint"),
    [
        ("ModelError", 424, ServiceError, "cold start"),
        ("ServiceUnavailable", 503, ServiceError, "cold start"),
        ("ValidationError", 400, ServiceError, "has a variant 'tuned'"),
        ("AccessDeniedException", 403, CredentialsError, "sagemaker:InvokeEndpoint"),
    ],
)
def test_invoke_endpoint_failures_are_user_facing_errors_with_a_hint(code, status, error, hint):
    client, stubber = _runtime()
    stubber.add_client_error("invoke_endpoint", code, "it went wrong", http_status_code=status)

    with stubber, pytest.raises(error) as caught:
        _check(TUNED, endpoint_reference(client, "osft-tiny"))

    assert f"({code}: it went wrong)" in caught.value.message and "osft-tiny" in caught.value.message
    assert hint in (caught.value.hint or "")


def test_an_answer_that_is_not_one_embedding_per_text_is_a_service_error():
    client, stubber = _runtime()
    stubber.add_response("invoke_endpoint", _answer({"error": "bad"}), _expected("tuned"))

    with stubber, pytest.raises(ServiceError, match="did not answer one embedding per text"):
        _check(TUNED, endpoint_reference(client, "osft-tiny"))
