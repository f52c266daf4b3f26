"""After registration: ``_predict`` on sample texts, checked against the local model.

The reference embeddings come from the trained model folder through sentence-transformers
when it is installed (a full local install), else from the SageMaker endpoint itself
(``InvokeEndpoint`` on the ``tuned`` variant, so an A/B endpoint's weights do not pick the
variant), else only the dimension is checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.errors import CredentialsError, ServiceError
from osft.registrar.sagemaker_api import ACCESS_DENIED_CODES, client_error
from osft.registrar.sagemaker_deploy import TUNED_VARIANT

Embedding = list[float] | dict[str, float]
# A reference gives one embedding per text, or, for several endpoint variants, one list per variant name.
Reference = Callable[[list[str]], list[Embedding] | dict[str, list[Embedding]]]


@dataclass(frozen=True)
class SmokeResult:
    texts: int
    dimension: int | None
    min_cosine: float | None
    reference: str

    def summary(self) -> str:
        checked = (
            f"min cosine {self.min_cosine:.4f} vs {self.reference}" if self.min_cosine is not None else "no reference"
        )
        size = f"dimension {self.dimension}" if self.dimension is not None else "sparse"
        return f"passed: {self.texts} texts, {size}, {checked}"


def embeddings_from_predict(response: dict[str, Any]) -> list[Embedding]:
    """The embeddings in an ML Commons ``_predict`` answer, local or remote, dense or sparse."""
    found: list[Embedding] = []
    for result in response.get("inference_results", []):
        for output in result.get("output", []):
            if "data" in output:
                found.append([float(x) for x in output["data"]])
                continue
            data = output.get("dataAsMap") or {}
            value = data.get("response", data.get("sparse_embedding"))
            items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
            for item in items:
                if isinstance(item, dict):
                    found.append({str(k): float(v) for k, v in item.items()})
                elif isinstance(item, list):
                    found.append([float(x) for x in item])
    return found


def cosine(a: Embedding, b: Embedding) -> float:
    if isinstance(a, dict) and isinstance(b, dict):
        dot = sum(w * b.get(t, 0.0) for t, w in a.items())
        na, nb = math.sqrt(sum(w * w for w in a.values())), math.sqrt(sum(w * w for w in b.values()))
    elif isinstance(a, list) and isinstance(b, list):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    else:
        return 0.0
    return dot / (na * nb) if na and nb else 0.0


def local_reference(model_dir: Path, kind: str) -> Callable[[list[str]], list[Embedding]] | None:
    """Embeddings of the trained model folder via sentence-transformers, when it is installed here."""
    try:
        from sentence_transformers import SentenceTransformer, SparseEncoder
    except ImportError:
        return None

    def encode(texts: list[str]) -> list[Embedding]:
        if kind == "sparse":
            model = SparseEncoder(str(model_dir), device="cpu")
            decoded = model.decode(model.encode_document(texts, convert_to_tensor=True))
            return [{t: float(w) for t, w in pairs} for pairs in decoded]
        model = SentenceTransformer(str(model_dir), device="cpu")
        return model.encode(texts, convert_to_numpy=True).tolist()

    return encode


def invoke_endpoint(runtime_client: Any, endpoint_name: str, texts: list[str], variant: str) -> list[Embedding]:
    """``InvokeEndpoint`` on one production variant; every AWS failure becomes a user-facing error."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    action = f"invoking SageMaker endpoint {endpoint_name} (variant {variant}) for the smoke test's reference"
    logs = f"see /aws/sagemaker/Endpoints/{endpoint_name} in CloudWatch Logs"
    try:
        response = runtime_client.invoke_endpoint(
            EndpointName=endpoint_name,
            TargetVariant=variant,
            ContentType="application/json",
            Body=json.dumps(texts).encode(),
        )
        body = response["Body"].read()
    except NoCredentialsError:
        raise CredentialsError(f"no AWS credentials while {action}", hint="set AWS_PROFILE or AWS keys") from None
    except ClientError as exc:
        code, message = client_error(exc)
        if code in ACCESS_DENIED_CODES:
            raise CredentialsError(
                f"SageMaker refused {action} ({code}: {message})",
                hint=f"allow the registrar's role sagemaker:InvokeEndpoint on endpoint {endpoint_name}",
            ) from None
        if code in ("ModelError", "ModelNotReadyException", "ServiceUnavailable", "ThrottlingException"):
            raise ServiceError(
                f"SageMaker failed while {action} ({code}: {message})",
                hint=f"{logs}; a serverless endpoint may still be starting (cold start): re-run the register stage",
            ) from None
        raise ServiceError(
            f"SageMaker failed while {action} ({code}: {message})",
            hint=f"{logs}; check that the endpoint is InService and has a variant '{variant}'",
        ) from None
    except BotoCoreError as exc:
        raise ServiceError(
            f"SageMaker failed while {action} ({exc})",
            hint=f"{logs}; a serverless endpoint may still be starting (cold start): re-run the register stage",
        ) from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, list) or len(answer) != len(texts):
        raise ServiceError(
            f"SageMaker endpoint {endpoint_name} (variant {variant}) did not answer one embedding per text "
            f"for the smoke test ({body[:200]!r})",
            hint="the endpoint does not run the trainer image's serve command",
        )
    return answer


def endpoint_reference(
    runtime_client: Any, endpoint_name: str, *, variants: Sequence[str] = (TUNED_VARIANT,)
) -> Reference:
    """Embeddings straight from the SageMaker endpoint (the same contract the connector uses).

    Each call names its variant (``TargetVariant``): the endpoint's weights route the
    connector's request, so an unnamed reference call could hit another variant. One variant
    gives one embedding list; several (an A/B endpoint) give one list per variant, and the
    check accepts the variant the connector's answer matches.
    """

    def encode(texts: list[str]) -> list[Embedding] | dict[str, list[Embedding]]:
        if len(variants) == 1:
            return invoke_endpoint(runtime_client, endpoint_name, texts, variants[0])
        return {variant: invoke_endpoint(runtime_client, endpoint_name, texts, variant) for variant in variants}

    return encode


def check_predictions(
    texts: list[str],
    predicted: list[Embedding],
    *,
    model_id: str,
    expected_dimension: int | None,
    reference: Reference | None,
    reference_name: str,
    min_cosine: float,
) -> SmokeResult:
    """Raise ServiceError unless ``predicted`` has one embedding per text, the right size, and matches the reference."""
    where = f"smoke test of model {model_id}"
    if len(predicted) != len(texts):
        raise ServiceError(
            f"{where}: _predict returned {len(predicted)} embeddings for {len(texts)} texts",
            hint="the connector's pre/post-process functions do not match the endpoint's answer",
        )
    dense = all(isinstance(p, list) for p in predicted)
    dimension = len(predicted[0]) if dense else None
    if dense and expected_dimension is not None and any(len(p) != expected_dimension for p in predicted):
        raise ServiceError(
            f"{where}: embeddings have dimension {sorted({len(p) for p in predicted})}, expected {expected_dimension}",
            hint="the registered model is not the trained one; delete it in OpenSearch and re-run",
        )
    lowest = None
    if reference is not None:
        expected = reference(texts)
        candidates = expected if isinstance(expected, dict) else {"": expected}
        # One _predict request reaches one variant: the best-matching variant's reference is the one to compare.
        variant, lowest = max(
            (
                (name, min(cosine(p, e) for p, e in zip(predicted, embeddings, strict=True)))
                for name, embeddings in candidates.items()
            ),
            key=lambda pair: pair[1],
        )
        if variant:
            reference_name = f"{reference_name} (variant {variant})"
        if lowest < min_cosine:
            raise ServiceError(
                f"{where}: embeddings differ from the {reference_name} (lowest cosine {lowest:.4f}, need {min_cosine})",
                hint="the model in OpenSearch is not the trained one, or its export is broken; "
                "lower deploy.opensearch.smoke_min_cosine only for a quantized model",
            )
    return SmokeResult(len(texts), dimension, lowest, reference_name if reference else "none")
