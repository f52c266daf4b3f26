"""After registration: ``_predict`` on sample texts, checked against the local model.

The reference embeddings come from the trained model folder through sentence-transformers
when it is installed (a full local install), else from the SageMaker endpoint itself
(``InvokeEndpoint``), else only the dimension is checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.errors import ServiceError

Embedding = list[float] | dict[str, float]


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


def endpoint_reference(runtime_client: Any, endpoint_name: str) -> Callable[[list[str]], list[Embedding]]:
    """Embeddings straight from the SageMaker endpoint (the same contract the connector uses)."""

    def encode(texts: list[str]) -> list[Embedding]:
        response = runtime_client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType="application/json", Body=json.dumps(texts).encode()
        )
        return json.loads(response["Body"].read())

    return encode


def check_predictions(
    texts: list[str],
    predicted: list[Embedding],
    *,
    model_id: str,
    expected_dimension: int | None,
    reference: Callable[[list[str]], list[Embedding]] | None,
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
        lowest = min(cosine(p, e) for p, e in zip(predicted, expected, strict=True))
        if lowest < min_cosine:
            raise ServiceError(
                f"{where}: embeddings differ from the {reference_name} (lowest cosine {lowest:.4f}, need {min_cosine})",
                hint="the model in OpenSearch is not the trained one, or its export is broken; "
                "lower deploy.opensearch.smoke_min_cosine only for a quantized model",
            )
    return SmokeResult(len(texts), dimension, lowest, reference_name if reference else "none")
