"""The register stage: deploy an accepted model to SageMaker and register it in OpenSearch ML Commons.

Order: the evaluation gate (a rejected model is not deployed), the SageMaker endpoint (when
``deploy.sagemaker`` is set), the ML Commons registration (``deploy.opensearch``), the smoke
test. Every step finds what an earlier run created and reuses it, so a re-run (``--force``,
or after a failure half-way) creates nothing twice. ``registration.json`` in the stage
folder records the endpoint name, connector id, model group id and model id.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from osft.common.aws_clients import sagemaker_client
from osft.common.errors import OsftError
from osft.common.hybrid_search import search_pipeline_body
from osft.common.manifests import EvaluateManifest, RegisterStats, TrainManifest
from osft.common.opensearch import opensearch_client
from osft.common.spec.deploy import OpenSearchRegistration, SageMakerEndpoint
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.common.storage import Location, is_s3, join
from osft.registrar.artifacts import INT8_KIND, TrainedModel, build_model_tarball, fetch, upload_artifact
from osft.registrar.connector import run_marker
from osft.registrar.ml_commons import MLCommons
from osft.registrar.opensearch_registration import (
    OpenSearchResult,
    download_url,
    register_cross_encoder,
    register_remote,
    register_zip,
)
from osft.registrar.passage_index import (
    PASSAGE_INDEX_FILE,
    ensure_passage_ingest_pipeline,
    ensure_passage_search_pipeline,
    passage_index_file,
)
from osft.registrar.sagemaker_deploy import (
    TUNED_VARIANT,
    EndpointResult,
    SageMakerDeployer,
    plan_variants,
    variant_names,
)
from osft.registrar.sagemaker_orphans import RUN_TAG
from osft.registrar.search_check import run_search_check
from osft.registrar.search_pipeline import ensure_search_pipeline, example_query
from osft.registrar.smoke_test import check_predictions, embeddings_from_predict, endpoint_reference, local_reference

REGISTRATION_FILE = "registration.json"
HYBRID_QUERY_FILE = "hybrid_query.json"
TARBALL = "model.tar.gz"
SAGEMAKER_TRAINING_TARBALL = "train/model.tar.gz"


def endpoint_name_for(ctx: StageContext, spec: SageMakerEndpoint) -> str:
    return spec.endpoint_name or f"osft-{ctx.spec.name}"


def _required(value: str | None, env: str, field: str, what: str) -> str:
    resolved = value or os.environ.get(env)
    if not resolved:
        raise OsftError(f"{field} is not set (nor ${env})", hint=f"give {what}")
    return resolved


GPU_INSTANCE = re.compile(r"^ml\.[gp]\d")


def serving_image(spec: SageMakerEndpoint) -> str:
    """The spec's image, else the trainer image on a GPU instance and its CPU build everywhere else.

    The trainer image carries CUDA (several GB); a serverless endpoint has no GPU and refuses
    images over 10 GB, so CPU endpoints serve the ``serve-cpu`` build (``$OSFT_SERVE_CPU_IMAGE_URI``)
    when there is one.
    """
    if spec.image_uri:
        return spec.image_uri
    on_gpu = spec.mode == "real-time" and GPU_INSTANCE.match(spec.instance_type)
    if not on_gpu and os.environ.get("OSFT_SERVE_CPU_IMAGE_URI"):
        return os.environ["OSFT_SERVE_CPU_IMAGE_URI"]
    return _required(None, "OSFT_TRAINER_IMAGE_URI", "deploy.sagemaker.image_uri", "the trainer image URI in ECR")


def model_artifact(
    ctx: StageContext, spec: SageMakerEndpoint, model: TrainedModel, train: TrainManifest
) -> tuple[str, str, dict[str, str]]:
    """The s3:// URI and SHA-256 of the ``model.tar.gz`` to serve, and the serving container's environment."""
    environment: dict[str, str] = {}
    extra: dict[str, Path] = {}
    if spec.precision == "int8":
        export = model.export(
            INT8_KIND,
            needed_for="deploy.sagemaker.precision 'int8'",
            hint="set training.export.onnx_int8: true and re-run the {stage} stage, or use precision 'fp32'",
        )
        name = f"onnx/{Path(export.path).name}"
        extra[name] = fetch(ctx, export.path)
        environment = {"OSFT_SERVE_PRECISION": "int8", "OSFT_SERVE_ONNX_FILE": name}
    elif is_s3(ctx.run_dir):
        # A SageMaker training job already packed the model folder: serve that archive as it is.
        packed = (
            None if model.is_base else next((r for r in train.outputs if r.path == SAGEMAKER_TRAINING_TARBALL), None)
        )
        if packed is not None and packed.sha256:
            return join(ctx.run_dir, packed.path), packed.sha256, environment
    uri = spec.artifact_uri or (join(ctx.run_dir, "register", TARBALL) if is_s3(ctx.run_dir) else None)
    if uri is None:
        raise OsftError(
            "deploy.sagemaker.artifact_uri: the run folder is local, so SageMaker needs an s3:// URI for model.tar.gz",
            hint="set deploy.sagemaker.artifact_uri (e.g. s3://my-bucket/osft/<run>/model.tar.gz), or use an s3:// run folder",
        )
    if uri.endswith("/"):
        uri += TARBALL
    tarball = ctx.output_path(TARBALL)
    sha256 = build_model_tarball(fetch(ctx, model.model_dir), tarball, extra)
    uploaded = upload_artifact(tarball, uri, sha256)
    ctx.log.info("model_artifact_ready", uri=uri, sha256=sha256, bytes=tarball.stat().st_size, uploaded=uploaded)
    return uri, sha256, environment


def deploy_to_sagemaker(
    ctx: StageContext, spec: SageMakerEndpoint, model: TrainedModel, train: TrainManifest
) -> tuple[EndpointResult, str]:
    """Create or update the endpoint; returns what was done and the model.tar.gz URI."""
    role = _required(
        spec.execution_role_arn,
        "OSFT_SAGEMAKER_ROLE_ARN",
        "deploy.sagemaker.execution_role_arn",
        "the endpoint's IAM role ARN",
    )
    image = serving_image(spec)
    endpoint_name = endpoint_name_for(ctx, spec)
    model_data_url, sha256, environment = model_artifact(ctx, spec, model, train)
    variants = plan_variants(
        spec,
        endpoint_name=endpoint_name,
        image_uri=image,
        model_data_url=model_data_url,
        artifact_sha256=sha256,
        tuned_environment=environment,
        base_model=ctx.spec.model.base,
    )
    deployer = SageMakerDeployer(
        sagemaker_client(spec.region), timeout_s=spec.wait_timeout_s, poll_s=30, tags={RUN_TAG: ctx.spec.name}
    )
    result = deployer.deploy(spec, endpoint_name, variants, image_uri=image, role_arn=role)
    ctx.log.info(
        "sagemaker_endpoint_ready", endpoint=endpoint_name, action=result.action, config=result.endpoint_config_name
    )
    return result, model_data_url


def register_in_opensearch(
    ctx: StageContext,
    spec: OpenSearchRegistration,
    model: TrainedModel,
    endpoint: EndpointResult | None,
    result: OpenSearchResult,
) -> str | None:
    """Register (and deploy) the model in ML Commons, filling ``result`` with each id as soon as it exists
    (so a failure later still names what was created); returns the smoke test's summary."""
    client = opensearch_client(spec.connection, field="deploy.opensearch.connection")
    ml = MLCommons(
        client, url=spec.connection.url, task_timeout_s=spec.task_timeout_s, poll_interval_s=spec.poll_interval_s
    )
    name = spec.model_name or ctx.spec.model.output_name or ctx.spec.name
    description = (
        f"{run_marker(ctx.spec.name)} base model {ctx.spec.model.base}, deployed because the gate rejected the "
        "model fine-tuned from it"
        if model.is_base
        else f"{run_marker(ctx.spec.name)} {model.kind} model fine-tuned from {ctx.spec.model.base}"
    )
    zips = [] if spec.mode == "remote" else model.local_zips(spec.local_format)  # a missing zip fails before any call
    group_id, created = ml.ensure_model_group(spec.model_group, "Models fine-tuned by osft")
    result.model_group_id = group_id
    result.note(f"model group {group_id}", created)

    if spec.mode == "remote":
        assert endpoint is not None  # the spec validator guarantees a sagemaker section
        register_remote(
            ml,
            spec,
            result,
            model_name=name,
            endpoint_name=endpoint.endpoint_name,
            region=endpoint.region,
            kind=model.kind,
            description=description,
        )
        tokenizer = model.tokenizer_zip()
        zips = [tokenizer] if tokenizer else []
    for export in zips:
        local = fetch(ctx, export.path)
        is_tokenizer = export.function_name == "SPARSE_TOKENIZE"
        model_id, created = register_zip(
            ml,
            spec,
            export,
            local,
            download_url(spec, ctx.run_dir, export, local),
            name=f"{name}-tokenizer" if is_tokenizer else name,
            model_group_id=group_id,
            description=description,
        )
        result.note(f"model {model_id}", created)
        if is_tokenizer:
            result.tokenizer_model_id = model_id
        else:
            result.model_id, result.function_name = model_id, export.function_name
        ml.deploy(model_id)  # after the id is in ``result``: a failed deploy still names the model for cleanup
    if spec.cross_encoder is not None:
        result.cross_encoder_model_id, created = register_cross_encoder(ml, spec.cross_encoder, group_id, name)
        result.note(f"cross-encoder {result.cross_encoder_model_id}", created)
    hybrid, passages = spec.hybrid_search, spec.passage_vectors
    if hybrid is not None:
        body = search_pipeline_body(hybrid.keyword_weight)
        sent = ensure_search_pipeline(ml, hybrid.pipeline, body, "deploy.opensearch.hybrid_search.pipeline")
        result.note(f"search pipeline {hybrid.pipeline}", sent)
        query = example_query(hybrid, model.kind, result.model_id, result.tokenizer_model_id)
        ctx.output_path(HYBRID_QUERY_FILE).write_text(json.dumps(query, indent=2))
    if passages is not None and hybrid is not None:
        result.note(*ensure_passage_search_pipeline(ml, passages, hybrid))
    dimension = None
    if model.kind == "dense" and (passages is not None or spec.search_check is not None):
        dimension = model_dimension(ml, result, zips)

    checks = []
    if spec.smoke_test:
        checks.append(run_smoke_test(ctx, spec, ml, model, result, endpoint, zips))
    if spec.search_check is not None:
        checks.append(
            run_search_check(
                ml,
                spec.search_check,
                kind=model.kind,
                model_id=result.model_id,
                query_model_id=result.tokenizer_model_id,
                dimension=dimension,
                texts=list(spec.smoke_texts),
                hybrid_pipeline=hybrid.pipeline if hybrid else None,
                passages=passages is not None,
                passages_pipeline=passages.hybrid_pipeline if passages and hybrid else None,
            )
        )
        ctx.log.info("search_check_passed", index=spec.search_check.index)
    if passages is not None:
        # After the checks: the ingest pipeline is an index's default, so it names a model only once it passed.
        assert dimension is not None  # the spec refuses passage vectors for sparse models
        result.note(*ensure_passage_ingest_pipeline(ml, passages, result.model_id))
        written = passage_index_file(passages, hybrid, result.model_id, dimension)
        ctx.output_path(PASSAGE_INDEX_FILE).write_text(json.dumps(written, indent=2))
    return "; ".join(checks) or None


def model_dimension(ml: MLCommons, result: OpenSearchResult, zips: list) -> int:
    """The dense model's embedding size: from its ML Commons config, or from one ``_predict``."""
    config = next((z.model_config for z in zips if z.model_config), None) or {}
    if config.get("embedding_dimension") is not None:
        return int(config["embedding_dimension"])
    return len(embeddings_from_predict(ml.predict(result.model_id, result.function_name, ["dimension"]))[0])


def run_smoke_test(
    ctx: StageContext,
    spec: OpenSearchRegistration,
    ml: MLCommons,
    model: TrainedModel,
    result: OpenSearchResult,
    endpoint: EndpointResult | None,
    zips: list,
) -> str:
    texts = list(spec.smoke_texts)
    predicted = embeddings_from_predict(ml.predict(result.model_id, result.function_name, texts))
    sagemaker = ctx.spec.deploy.sagemaker if ctx.spec.deploy else None
    ab_test = sagemaker is not None and sagemaker.ab_base_weight is not None
    # Behind an A/B endpoint the connector's request may reach the base variant, which the trained folder
    # does not match: the reference then comes from each variant of the endpoint itself.
    reference = None if ab_test else local_reference(fetch(ctx, model.model_dir), model.kind)
    reference_name = "trained model folder"
    if reference is None and endpoint is not None:
        reference = endpoint_reference(
            sagemaker_client(endpoint.region, "sagemaker-runtime"),
            endpoint.endpoint_name,
            variants=variant_names(sagemaker) if sagemaker is not None else (TUNED_VARIANT,),
        )
        reference_name = f"SageMaker endpoint {endpoint.endpoint_name}"
    config = next((z.model_config for z in zips if z.model_config), None) or {}
    outcome = check_predictions(
        texts,
        predicted,
        model_id=result.model_id,
        expected_dimension=config.get("embedding_dimension"),
        reference=reference,
        reference_name=reference_name,
        min_cosine=spec.smoke_min_cosine,
    )
    ctx.log.info("smoke_test_passed", model_id=result.model_id, texts=outcome.texts, min_cosine=outcome.min_cosine)
    return outcome.summary()


def run(ctx: StageContext) -> StageResult:
    deploy = ctx.spec.deploy
    if deploy is None:
        raise OsftError("the spec has no deploy section, so there is nothing to register")
    evaluation = ctx.upstream("evaluate")
    assert isinstance(evaluation, EvaluateManifest)
    rejected = deploy.require_gate and not evaluation.stats.accepted
    reason = f"the evaluation gate rejected the model: {evaluation.stats.reason}"
    if rejected and deploy.when_rejected == "skip":
        ctx.output_path(REGISTRATION_FILE).write_text(json.dumps({"deployed": False, "reason": reason}, indent=2))
        ctx.log.info("deployment_skipped", reason=reason)
        return StageResult(stats=RegisterStats(skipped_reason=reason), outputs=[REGISTRATION_FILE])

    train = ctx.upstream("train")
    assert isinstance(train, TrainManifest)
    if rejected:
        model = TrainedModel.base_from_evaluation(evaluation)
        ctx.log.info("deploying_base_model", reason=reason, model=ctx.spec.model.base)
    else:
        model = TrainedModel.from_manifest(train, ctx.spec.model.sparse_mode)
    stats = RegisterStats(deployed_model="base" if model.is_base else "tuned")
    registration: dict[str, Any] = {
        "deployed": True,
        "run_id": ctx.spec.name,
        "model_type": model.kind,
        "deployed_model": stats.deployed_model,
        **({"base_model": ctx.spec.model.base, "reason": reason} if model.is_base else {}),
    }
    result = OpenSearchResult(model_group_id="")
    try:
        _deploy_and_register(ctx, model, train, stats, registration, result)
    except BaseException as exc:
        _record_incomplete(ctx, registration, result, exc)
        raise
    registration.update(
        endpoint_name=stats.endpoint_name,
        connector_id=stats.connector_id,
        model_group_id=stats.model_group_id,
        model_id=stats.model_id,
    )
    ctx.output_path(REGISTRATION_FILE).write_text(json.dumps(registration, indent=2))
    outputs = [
        REGISTRATION_FILE,
        *([HYBRID_QUERY_FILE] if stats.search_pipeline else []),
        *([PASSAGE_INDEX_FILE] if stats.passage_pipeline else []),
    ]
    notes = [f"created: {', '.join(stats.created)}"] if stats.created else []
    if model.is_base:
        notes.insert(0, f"deployed the base model {ctx.spec.model.base} (deploy.when_rejected 'base'): {reason}")
    if stats.reused:
        notes.append(f"reused: {', '.join(stats.reused)}")
    if stats.smoke_test:
        notes.append(f"smoke test {stats.smoke_test}")
    if stats.search_pipeline:
        notes.append(f"hybrid queries: search pipeline {stats.search_pipeline}, example in {HYBRID_QUERY_FILE}")
    if stats.passage_pipeline:
        notes.append(
            f"passage vectors: ingest pipeline {stats.passage_pipeline}; the index body and queries that use it are "
            f"in {PASSAGE_INDEX_FILE}"
        )
    return StageResult(stats=stats, outputs=outputs, notes=notes)


def _opensearch_record(url: str, mode: str, result: OpenSearchResult) -> dict[str, Any]:
    return {
        "url": url,
        "mode": mode,
        "model_group_id": result.model_group_id,
        "connector_id": result.connector_id,
        "model_id": result.model_id,
        "function_name": result.function_name,
        "tokenizer_model_id": result.tokenizer_model_id,
        "cross_encoder_model_id": result.cross_encoder_model_id,
    }


def _deploy_and_register(
    ctx: StageContext,
    model: TrainedModel,
    train: TrainManifest,
    stats: RegisterStats,
    registration: dict[str, Any],
    result: OpenSearchResult,
) -> None:
    """The SageMaker endpoint, then ML Commons; ``registration`` and ``result`` grow as things are created."""
    deploy = ctx.spec.deploy
    assert deploy is not None
    endpoint = None
    if deploy.sagemaker is not None:
        endpoint, model_data_url = deploy_to_sagemaker(ctx, deploy.sagemaker, model, train)
        stats.endpoint_name, stats.endpoint_config_name = endpoint.endpoint_name, endpoint.endpoint_config_name
        stats.sagemaker_models, stats.sagemaker_region = endpoint.model_names, endpoint.region
        stats.endpoint_action, stats.model_data_url = endpoint.action, model_data_url
        registration["sagemaker"] = {
            "endpoint_name": endpoint.endpoint_name,
            "endpoint_config_name": endpoint.endpoint_config_name,
            "model_names": endpoint.model_names,
            "region": endpoint.region,
            "action": endpoint.action,
            "model_data_url": model_data_url,
            "deleted_previous": endpoint.deleted,
        }
    if deploy.opensearch is not None:
        smoke = register_in_opensearch(ctx, deploy.opensearch, model, endpoint, result)
        stats.connector_id, stats.model_group_id, stats.model_id = (
            result.connector_id,
            result.model_group_id,
            result.model_id,
        )
        stats.function_name, stats.tokenizer_model_id = result.function_name, result.tokenizer_model_id
        stats.cross_encoder_model_id, stats.smoke_test = result.cross_encoder_model_id, smoke
        stats.search_pipeline = deploy.opensearch.hybrid_search.pipeline if deploy.opensearch.hybrid_search else None
        passages = deploy.opensearch.passage_vectors
        stats.passage_pipeline = passages.ingest_pipeline if passages else None
        stats.created, stats.reused = result.created, result.reused
        registration["opensearch"] = {
            **_opensearch_record(deploy.opensearch.connection.url, deploy.opensearch.mode, result),
            "smoke_test": smoke,
            "search_pipeline": stats.search_pipeline,
            "passage_pipeline": stats.passage_pipeline,
        }


def _record_incomplete(
    ctx: StageContext, registration: dict[str, Any], result: OpenSearchResult, error: BaseException
) -> None:
    """Write what a failed registration created, so ``register cleanup`` can find it (in the run folder itself:
    a failed stage publishes no outputs)."""
    deploy = ctx.spec.deploy
    record = {**registration, "incomplete": getattr(error, "message", None) or repr(error)}
    record["deployed"] = False
    if (
        deploy is not None
        and deploy.opensearch is not None
        and (result.model_id or result.tokenizer_model_id or result.connector_id)
    ):
        record["opensearch"] = _opensearch_record(deploy.opensearch.connection.url, deploy.opensearch.mode, result)
    if "sagemaker" not in record and "opensearch" not in record:
        return
    try:
        Location(join(ctx.run_dir, ctx.stage, REGISTRATION_FILE)).write_text(json.dumps(record, indent=2))
    except Exception as exc:  # noqa: BLE001 - the registration's own error is the one to report
        ctx.log.warning("incomplete_registration_not_recorded", error=str(exc))
    else:
        ctx.log.warning("registration_incomplete", created=result.created, recorded=REGISTRATION_FILE)


STAGE = StageDefinition(
    name="register", upstream=("train", "evaluate"), spec_sections=("deploy", "model"), run=run, version="2"
)
