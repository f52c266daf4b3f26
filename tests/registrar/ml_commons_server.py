"""A strict stand-in for OpenSearch ML Commons on 127.0.0.1: the documented endpoints the registrar calls.

Endpoints (ML Commons REST API, OpenSearch 2.x/3.x):

- ``POST /_plugins/_ml/model_groups/_register`` (name unique: 400 "already being used by a model group with ID"),
  ``POST /_plugins/_ml/model_groups/_search``;
- ``POST /_plugins/_ml/connectors/_create`` (400 unless every action URL matches
  ``plugins.ml_commons.trusted_connector_endpoints_regex``), ``POST /_plugins/_ml/connectors/_search`` (credentials
  hidden);
- ``POST /_plugins/_ml/models/_register`` (remote with ``connector_id``; local with ``url`` +
  ``model_content_hash_value`` + ``model_config``, refused unless
  ``plugins.ml_commons.allow_registering_model_via_url`` is true; OpenSearch pretrained by name),
  ``POST /_plugins/_ml/models/_register_meta`` + ``POST /_plugins/_ml/models/<id>/upload_chunk/<n>``,
  ``POST /_plugins/_ml/models/_search``, ``GET /_plugins/_ml/models/<id>``;
- ``POST /_plugins/_ml/models/<id>/_undeploy``; ``DELETE /_plugins/_ml/models/<id>`` (400 while deployed; an
  emptied model group stays, as since ML Commons 2.11; without a refresh: with ``refresh_lag`` set, searches
  still see the deleted model that many times); ``GET|DELETE /_plugins/_ml/connectors/<id>`` (400 while a
  search of the model index finds a model using it);
- ``POST /_plugins/_ml/models/<id>/_deploy`` (400 "no eligible node found" for a local model on a cluster without
  ML nodes, ``ml_nodes=False``, while ``plugins.ml_commons.only_run_on_ml_node`` is true),
  ``GET /_plugins/_ml/tasks/<id>``: tasks move one state per
  read (of the task, or of its model: the cluster works on when nobody polls), CREATED → RUNNING → COMPLETED,
  or FAILED with an ``error`` (``fail_tasks``, a downloaded zip whose hash or size differs from the
  registration, or a second deploy of a model still DEPLOYING: "Duplicate deploy model task");
- ``POST /_plugins/_ml/_predict/<algorithm>/<id>`` (``text_docs``, as neural search sends them): remote
  models call their connector's URL (``connector_urls`` maps it to a local server) with ML Commons'
  default pre/post-processing; local models answer with ``local_embed``;
  ``POST /_plugins/_ml/models/<id>/_predict`` parses the body by the model's own algorithm, as
  ``RestMLPredictionAction`` does: ``text_docs`` for local models, only ``parameters`` for remote ones
  (no pre-process function; an unfilled ``${parameters.input}`` is a 400);
- ``GET|PUT /_cluster/settings`` (``flat_settings``);
- ``PUT|GET|DELETE /_ingest/pipeline/<id>`` (GET of a missing id: 404 with ``{}``), with ``text_embedding`` /
  ``sparse_encoding`` processors, ingest-common's ``trim``, and the neural-search plugin's ``text_chunking`` (configuration checked as
  TextChunkingProcessorFactory and the chunkers check it; documents are cut with the ``delimiter`` algorithm only).
  Processors run in order: ``text_embedding`` over a list of strings writes ``[{"knn": <vector>}, ...]``;
- ``HEAD|PUT|DELETE /<index>`` (``knn_vector``, also inside a ``nested`` field, needs ``index.knn`` and a
  ``dimension``), ``PUT /<index>/_doc/<id>`` through the default pipeline (vector dimensions checked, nested ones
  too), ``POST /<index>/_search`` with ``neural`` (its top ``k`` documents) / ``neural_sparse``, ``nested`` (a
  ``neural`` on a ``knn_vector`` under a nested path: k-NN keeps each document's best nested vector, its top ``k``
  documents, scored by ``score_mode``) and ``bool`` ``should`` of those (a document scores the sum of the clauses
  that returned it);
- ``PUT|GET|DELETE /_search/pipeline/<id>`` (search pipelines; the one processor known is the neural-search plugin's
  ``normalization-processor``, its weights checked as the plugin checks them), and
  ``POST /<index>/_search?search_pipeline=<id>`` with a top-level ``hybrid`` query of ``match`` (Lucene BM25),
  ``neural``, ``neural_sparse``, ``nested`` and ``bool`` clauses, each clause's top ``size`` hits normalised and
  combined as the plugin does.

Unknown fields and malformed bodies get 400 (``parsing_exception``/``illegal_argument_exception``),
unknown ids 404 (``status_exception``), searches before the ML system index exists 404
``index_not_found_exception``, and with ``users`` set, requests without valid basic auth 401. Searches analyse text
fields as OpenSearch does (``name``, ``description``, and ``connector_id``, which the model index maps dynamically as
text): a ``term`` query on them matches a lower-cased word, not the whole mixed-case value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

DEFAULT_SETTINGS = {
    "plugins.ml_commons.trusted_connector_endpoints_regex": [
        "^https://runtime\\.sagemaker\\..*[a-z0-9-]\\.amazonaws\\.com/.*$",
        "^https://api\\.openai\\.com/.*$",
    ],
    "plugins.ml_commons.allow_registering_model_via_url": "false",
    "plugins.ml_commons.only_run_on_ml_node": "true",
}
TRUSTED_ENDPOINTS = "plugins.ml_commons.trusted_connector_endpoints_regex"
ONLY_ML_NODE = "plugins.ml_commons.only_run_on_ml_node"
# TransportDeployModelAction's answer when no node may run a local model (a cluster without ML nodes).
NO_ELIGIBLE_NODE = "no eligible node found"
NODE_ID = "sv7-3CbwQW-4PiIsDOfLxQ"
PRETRAINED = {"huggingface/cross-encoders/ms-marco-MiniLM-L-6-v2": "TEXT_SIMILARITY"}
GROUP_FIELDS = {"name", "description", "access_mode", "backend_roles", "add_all_backend_roles"}
CONNECTOR_FIELDS = {
    "name",
    "description",
    "version",
    "protocol",
    "parameters",
    "credential",
    "actions",
    "backend_roles",
    "add_all_backend_roles",
    "access_mode",
    "client_config",
}
ACTION_FIELDS = {
    "action_type",
    "method",
    "url",
    "headers",
    "request_body",
    "pre_process_function",
    "post_process_function",
}
REGISTER_FIELDS = {
    "name",
    "version",
    "description",
    "model_group_id",
    "model_format",
    "function_name",
    "model_config",
    "model_content_hash_value",
    "model_content_size_in_bytes",
    "url",
    "connector_id",
    "connector",
    "is_enabled",
    "rate_limiter",
    "interface",
    "guardrails",
}
META_FIELDS = REGISTER_FIELDS - {"url", "connector_id", "connector"} | {"total_chunks"}
FUNCTIONS = {"TEXT_EMBEDDING", "SPARSE_ENCODING", "SPARSE_TOKENIZE", "TEXT_SIMILARITY", "remote"}
SEARCH_PIPELINE_FIELDS = {
    "description",
    "version",
    "request_processors",
    "response_processors",
    "phase_results_processors",
}
PROCESSOR_LISTS = ("request_processors", "response_processors", "phase_results_processors")
NORMALIZATION_PROCESSOR = "normalization-processor"
NORMALIZATION_FIELDS = {"normalization", "combination", "tag", "description", "ignore_failure"}
NORMALIZATIONS = ("min_max", "l2", "z_score")
COMBINATIONS = ("arithmetic_mean", "geometric_mean", "harmonic_mean")
# The neural-search plugin accepts weights whose sum is within 0.01 of 1.0; this stand-in asks for 1.0 up to float error.
WEIGHT_SUM_TOLERANCE = 1e-6
# HybridQueryBuilder.MAX_NUMBER_OF_SUB_QUERIES.
MAX_HYBRID_SUB_QUERIES = 5
HYBRID_TOP_LEVEL = "hybrid query must be a top level query and cannot be wrapped into other queries"
HYBRID_NEEDS_PIPELINE = (
    "a [hybrid] query needs a search pipeline with a normalization processor: "
    "send it with search_pipeline=<id> naming a pipeline whose phase_results_processors hold a normalization-processor"
)
# Lucene's BM25Similarity defaults, which OpenSearch text fields use.
BM25_K1 = 1.2
BM25_B = 0.75
# The neural-search plugin's text_chunking processor: ChunkerFactory's algorithms (the processor's default first),
# Chunker's max_chunk_limit default and the value that disables it, DelimiterChunker's default delimiter, and
# FixedTokenLengthChunker's word tokenizers.
CHUNKING = "text_chunking"
CHUNKING_ALGORITHMS = ("fixed_token_length", "delimiter", "fixed_char_length")
DEFAULT_MAX_CHUNK_LIMIT = 100
DISABLED_MAX_CHUNK_LIMIT = -1
DEFAULT_DELIMITER = "\n\n"
WORD_TOKENIZERS = ("standard", "letter", "lowercase", "whitespace", "uax_url_email", "classic", "thai")
# Read and removed by ConfigurationUtils.readProcessor for every processor; this stand-in runs none of them.
COMMON_PROCESSOR_KEYS = ("ignore_failure", "if", "on_failure")
# TextEmbeddingProcessor.LIST_TYPE_NESTED_MAP_KEY: the key of each vector written for a list of strings.
LIST_TYPE_NESTED_MAP_KEY = "knn"
# NestedQueryBuilder.parseScoreMode ("sum" is Lucene's ScoreMode.Total); "avg" when none is given.
SCORE_MODES = ("avg", "max", "min", "sum", "none")


class ApiError(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.body = {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}}
        self.body["status"] = status


def new_id() -> str:
    """An id like OpenSearch's (20 URL-safe base64 characters); always mixed case, as real ids almost always are."""
    return "Q" + secrets.token_urlsafe(15)[:19]


def bad_request(reason: str, kind: str = "illegal_argument_exception") -> ApiError:
    return ApiError(400, kind, reason)


def not_found(reason: str) -> ApiError:
    return ApiError(404, "status_exception", reason)


# MLModelChunkUploader refuses larger chunks.
MAX_CHUNK_BYTES = 10 * 1024 * 1024


@dataclass
class Task:
    task_type: str
    function_name: str
    model_id: str | None
    fail_reason: str | None = None
    reads: int = 0
    on_complete: Callable[[], str | None] | None = None
    final: dict[str, Any] | None = None
    keeps_model_state: bool = False


@dataclass
class FakeMLCommons:
    """The server and its state; ``requests`` records (method, path, body) for assertions."""

    users: dict[str, str] | None = None
    local_embed: Callable[[dict[str, Any], list[str]], list[Any]] | None = None
    connector_urls: dict[str, str] = field(default_factory=dict)
    fail_tasks: set[str] = field(default_factory=set)
    settings_forbidden: bool = False
    ml_nodes: bool = True
    refresh_lag: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    search_pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # Deleted models that searches still see (id → (source, reads left)): ML Commons deletes without a refresh.
        self._unrefreshed: dict[str, tuple[dict[str, Any], int]] = {}
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = owner.handle(self.command, self.path, raw, dict(self.headers))
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=UTF-8")
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="OpenSearch Security"')
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def calls(self, method: str, path_part: str) -> list[Any]:
        return [body for m, p, body in self.requests if m == method and path_part in p]

    # --- dispatch ------------------------------------------------------------------------
    def handle(self, method: str, target: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(target)
        path, params = parts.path.rstrip("/"), dict(parse_qsl(parts.query))
        if self.users is not None:
            auth = headers.get("Authorization") or headers.get("authorization") or ""
            try:
                user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            except ValueError:
                user, password = "", ""
            if not auth.startswith("Basic ") or self.users.get(user) != password:
                return 401, b"Unauthorized"
        chunk = "/upload_chunk/" in path
        try:
            body = None if chunk or not raw else json.loads(raw)
        except ValueError:
            return 400, ApiError(400, "parsing_exception", "request body is not valid JSON").body
        with self._lock:
            self.requests.append((method, path, raw if chunk else body))
            try:
                return 200, self._route(method, path, params, body, raw)
            except ApiError as exc:
                return exc.status, exc.body

    def _route(self, method: str, path: str, params: dict[str, str], body: Any, raw: bytes) -> Any:
        ml = "/_plugins/_ml"
        segments = path.removeprefix(ml).strip("/").split("/")
        if path == "/_cluster/settings":
            return self._settings(method, params, body)
        if not path.startswith(ml):
            return self._route_search(method, path, params, body)
        match method, segments:
            case "POST", ["model_groups", "_register"]:
                return self._register_group(body)
            case "POST", ["model_groups", "_search"]:
                return self._search("model group", self.groups, body)
            case "POST", ["connectors", "_create"]:
                return self._create_connector(body)
            case "POST", ["connectors", "_search"]:
                hidden = {k: {f: v for f, v in c.items() if f != "credential"} for k, c in self.connectors.items()}
                return self._search("connector", hidden, body)
            case "POST", ["models", "_register"]:
                return self._register_model(body)
            case "POST", ["models", "_register_meta"]:
                return self._register_meta(body)
            case "POST", ["models", "_search"]:
                return self._search("model", self._searchable_models(), body)
            case "POST", ["models", model_id, "upload_chunk", number]:
                return self._upload_chunk(model_id, number, raw)
            case "GET", ["models", model_id]:
                self._work_in_background(model_id)
                return {k: v for k, v in self._model(model_id).items() if not k.startswith("_")}
            case "POST", ["models", model_id, "_deploy"]:
                return self._deploy(model_id)
            case "POST", ["models", model_id, "_undeploy"]:
                return self._undeploy(model_id)
            case "DELETE", ["models", model_id]:
                return self._delete_model(model_id)
            case "GET", ["connectors", connector_id]:
                return {k: v for k, v in self._connector(connector_id).items() if k != "credential"}
            case "DELETE", ["connectors", connector_id]:
                return self._delete_connector(connector_id)
            case "POST", ["models", model_id, "_predict"]:
                return self._predict(model_id, body)
            case "POST", ["_predict", algorithm, model_id]:
                return self._predict_algorithm(algorithm, model_id, body)
            case "GET", ["tasks", task_id]:
                return self._task(task_id)
        raise bad_request(f"no handler found for uri [{path}] and method [{method}]")

    # --- settings ------------------------------------------------------------------------
    def _settings(self, method: str, params: dict[str, str], body: Any) -> Any:
        if method == "GET":
            if params.get("flat_settings") != "true":
                raise bad_request("this stand-in answers flat_settings=true only")
            answer: dict[str, Any] = {"persistent": dict(self.settings), "transient": {}}
            if params.get("include_defaults") == "true":
                answer["defaults"] = {k: v for k, v in DEFAULT_SETTINGS.items() if k not in self.settings}
            return answer
        if method != "PUT" or not isinstance(body, dict) or not set(body) <= {"persistent", "transient"}:
            raise bad_request("request body must hold 'persistent' and/or 'transient'")
        if self.settings_forbidden:
            raise ApiError(403, "security_exception", "no permissions for [cluster:admin/settings/update]")
        for key, value in body.get("persistent", {}).items():
            if not key.startswith("plugins.ml_commons."):
                raise bad_request(f"persistent setting [{key}], not recognized")
            self.settings[key] = value
        return {"acknowledged": True, "persistent": body.get("persistent", {}), "transient": {}}

    def _setting(self, key: str) -> Any:
        return self.settings.get(key, DEFAULT_SETTINGS[key])

    def _check_ml_node(self, function_name: str) -> None:
        """Local models run on ML nodes only unless ``only_run_on_ml_node`` is false; remote ones on any node."""
        if function_name != "remote" and not self.ml_nodes and str(self._setting(ONLY_ML_NODE)).lower() == "true":
            raise bad_request(NO_ELIGIBLE_NODE)

    # --- groups, connectors --------------------------------------------------------------
    def _register_group(self, body: Any) -> Any:
        _require_object(body, GROUP_FIELDS, required={"name"})
        for group_id, group in self.groups.items():
            if group["name"] == body["name"]:
                raise bad_request(f"The name you provided is already being used by a model group with ID: {group_id}.")
        group_id = new_id()
        self.groups[group_id] = {**body, "latest_version": 0, "access": body.get("access_mode", "private")}
        return {"model_group_id": group_id, "status": "CREATED"}

    def _create_connector(self, body: Any) -> Any:
        _require_object(body, CONNECTOR_FIELDS, required={"name", "protocol", "actions"})
        if body["protocol"] not in ("http", "aws_sigv4"):
            raise bad_request(f"Unsupported connector protocol: {body['protocol']}")
        credential = body.get("credential") or {}
        if body["protocol"] == "aws_sigv4" and not (
            "roleArn" in credential or {"access_key", "secret_key"} <= set(credential)
        ):
            raise bad_request("Missing credential: aws_sigv4 needs roleArn or access_key and secret_key")
        if body["protocol"] == "aws_sigv4" and not {"region", "service_name"} <= set(body.get("parameters", {})):
            raise bad_request("aws_sigv4 connectors need parameters.region and parameters.service_name")
        actions = body["actions"]
        if not isinstance(actions, list) or not actions:
            raise bad_request("actions must be a non-empty list")
        for action in actions:
            _require_object(action, ACTION_FIELDS, required={"action_type", "method", "url"})
            # AbstractConnector.validateConnectorURL: every action URL must fully match a trusted regex.
            if not any(re.fullmatch(regex, action["url"]) for regex in self._setting(TRUSTED_ENDPOINTS)):
                raise bad_request(
                    f"Connector URL is not matching the trusted connector endpoint regex, URL is: {action['url']}"
                )
        connector_id = new_id()
        self.connectors[connector_id] = body
        return {"connector_id": connector_id}

    # --- models --------------------------------------------------------------------------
    def _group_or_404(self, body: dict[str, Any]) -> str:
        group_id = body.get("model_group_id")
        if group_id is None:
            raise bad_request("model_group_id is required in this stand-in")
        if group_id not in self.groups:
            raise not_found(f"Failed to find model group with ID: {group_id}")
        return group_id

    def _new_model(self, body: dict[str, Any], state: str) -> str:
        group_id = self._group_or_404(body)
        self.groups[group_id]["latest_version"] += 1
        model_id = new_id()
        record = {k: v for k, v in body.items() if k != "url"}
        record.update(
            model_state=state,
            model_version=str(self.groups[group_id]["latest_version"]),
            algorithm=body.get("function_name", "remote").upper(),
        )
        self.models[model_id] = record
        return model_id

    def _register_model(self, body: Any) -> Any:
        _require_object(body, REGISTER_FIELDS, required={"name"})
        function = body.get("function_name")
        if function is not None and function not in FUNCTIONS:
            raise bad_request(f"No enum constant FunctionName.{function}")
        if function == "remote" or "connector_id" in body:
            if body.get("connector_id") not in self.connectors:
                raise not_found(f"Failed to find connector {body.get('connector_id')}")
            model_id = self._new_model({**body, "function_name": "remote"}, "REGISTERED")
            task = self._new_task("REGISTER_MODEL", "REMOTE", model_id)
            return {"task_id": task, "status": "CREATED", "model_id": model_id}
        if "url" not in body:
            if body["name"] not in PRETRAINED:
                raise bad_request(f"Invalid model name {body['name']}: neither a pretrained model nor a url given")
            _require_keys(body, {"version", "model_format"})
            model_id = self._new_model({**body, "function_name": PRETRAINED[body["name"]]}, "REGISTERING")
            return {"task_id": self._new_task("REGISTER_MODEL", PRETRAINED[body["name"]], model_id, hidden=True)}
        if str(self.settings.get("plugins.ml_commons.allow_registering_model_via_url", "false")).lower() != "true":
            raise bad_request(
                "To upload custom model user needs to enable allow_registering_model_via_url settings. "
                "Otherwise please use OpenSearch pre-trained models."
            )
        _require_keys(body, {"version", "model_format", "model_content_hash_value", "function_name"})
        if body["function_name"] == "TEXT_EMBEDDING" and "model_config" not in body:
            raise bad_request("model_config is required for a TEXT_EMBEDDING model")
        model_id = self._new_model(body, "REGISTERING")
        url, expected, size = body["url"], body["model_content_hash_value"], body.get("model_content_size_in_bytes")

        def download() -> str | None:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
            if size is not None and len(data) != size:
                return f"model content size {len(data)} does not match model_content_size_in_bytes {size}"
            if hashlib.sha256(data).hexdigest() != expected:
                return "model content hash can't match original hash value"
            self.models[model_id]["_content"] = data
            self.models[model_id]["model_state"] = "REGISTERED"
            return None

        return {
            "task_id": self._new_task("REGISTER_MODEL", body["function_name"], model_id, download),
            "status": "CREATED",
        }

    def _register_meta(self, body: Any) -> Any:
        _require_object(
            body, META_FIELDS, required={"name", "version", "model_format", "model_content_hash_value", "total_chunks"}
        )
        if not isinstance(body["total_chunks"], int) or body["total_chunks"] < 1:
            raise bad_request("total_chunks must be a positive integer")
        if body.get("function_name") == "TEXT_EMBEDDING" and "model_config" not in body:
            raise bad_request("model_config is required for a TEXT_EMBEDDING model")
        model_id = self._new_model(body, "REGISTERING")
        self.models[model_id]["_chunks"] = {}
        return {"model_id": model_id, "status": "CREATED"}

    def _upload_chunk(self, model_id: str, number: str, raw: bytes) -> Any:
        model = self._model(model_id)
        if "_chunks" not in model:
            raise bad_request(f"model {model_id} was not registered with _register_meta")
        if not number.isdigit() or int(number) >= model["total_chunks"]:
            raise bad_request(f"chunk number {number} out of range (total_chunks {model['total_chunks']})")
        if not raw or len(raw) > MAX_CHUNK_BYTES:
            raise bad_request("Chunk size either 0 or exceeds 10MB")
        model["_chunks"][int(number)] = raw
        if len(model["_chunks"]) == model["total_chunks"]:
            data = b"".join(model["_chunks"][i] for i in range(model["total_chunks"]))
            ok = hashlib.sha256(data).hexdigest() == model["model_content_hash_value"]
            model["model_state"] = "REGISTERED" if ok else "REGISTER_FAILED"
            model["_content"] = data
        return {"status": "Uploaded"}

    def _model(self, model_id: str) -> dict[str, Any]:
        if model_id not in self.models:
            raise not_found(f"Failed to find model with ID: {model_id}")
        return self.models[model_id]

    def _deploy(self, model_id: str) -> Any:
        model = self._model(model_id)
        self._check_ml_node(model["function_name"])
        if model["model_state"] == "DEPLOYING":
            # MLModelCacheHelper.initModelState: a node already deploying the model fails the new task.
            task_id = self._new_task("DEPLOY_MODEL", model.get("algorithm", ""), model_id)
            self.tasks[task_id].fail_reason, self.tasks[task_id].keeps_model_state = "Duplicate deploy model task", True
            return {"task_id": task_id, "task_type": "DEPLOY_MODEL", "status": "CREATED"}
        if model["model_state"] not in ("REGISTERED", "DEPLOYED", "UNDEPLOYED", "DEPLOY_FAILED", "PARTIALLY_DEPLOYED"):
            raise bad_request(f"Model {model_id} is in state {model['model_state']} and can't be deployed")
        model["model_state"] = "DEPLOYING"

        def deployed() -> str | None:
            model["model_state"] = "DEPLOYED"
            return None

        return {
            "task_id": self._new_task("DEPLOY_MODEL", model.get("algorithm", ""), model_id, deployed),
            "task_type": "DEPLOY_MODEL",
            "status": "CREATED",
        }

    def _undeploy(self, model_id: str) -> Any:
        model = self._model(model_id)
        if model["model_state"] not in ("DEPLOYED", "PARTIALLY_DEPLOYED", "DEPLOYING"):
            return {}
        model["model_state"] = "UNDEPLOYED"
        return {NODE_ID: {"stats": {model_id: "UNDEPLOYED"}}}

    def _delete_model(self, model_id: str) -> Any:
        model = self._model(model_id)
        if model["model_state"] in ("DEPLOYED", "PARTIALLY_DEPLOYED", "DEPLOYING"):
            raise bad_request(
                "Model cannot be deleted in deploying or deployed state. Try undeploy model first then delete",
                kind="status_exception",
            )
        del self.models[model_id]  # an emptied model group stays (ML Commons 2.11+, despite its docs)
        if self.refresh_lag:
            self._unrefreshed[model_id] = (model, self.refresh_lag)
        return _deleted(".plugins-ml-model", model_id)

    def _searchable_models(self) -> dict[str, dict[str, Any]]:
        """What a search of the model index sees: the models, plus deleted ones until the index refreshes."""
        visible = dict(self.models)
        for model_id, (model, reads) in list(self._unrefreshed.items()):
            visible[model_id] = model
            if reads > 1:
                self._unrefreshed[model_id] = (model, reads - 1)
            else:
                del self._unrefreshed[model_id]
        return visible

    def _connector(self, connector_id: str) -> dict[str, Any]:
        if connector_id not in self.connectors:
            raise not_found(f"Failed to find connector with the provided connector id: {connector_id}")
        return self.connectors[connector_id]

    def _delete_connector(self, connector_id: str) -> Any:
        self._connector(connector_id)
        # DeleteConnectorTransportAction looks for the connector's models with a search of the model index.
        users = [i for i, m in self._searchable_models().items() if m.get("connector_id") == connector_id]
        if users:
            raise bad_request(
                f"{len(users)} models are still using this connector, please delete or update the models first: "
                f"{users}",
                kind="status_exception",
            )
        del self.connectors[connector_id]
        return _deleted(".plugins-ml-connector", connector_id)

    # --- tasks ---------------------------------------------------------------------------
    def _new_task(
        self,
        task_type: str,
        function_name: str,
        model_id: str,
        on_complete: Callable[[], str | None] | None = None,
        hidden: bool = False,
    ) -> str:
        task_id = new_id()
        fail = f"{task_type} failed: this stand-in was told to fail it" if task_type in self.fail_tasks else None
        if hidden and on_complete is None:

            def registered() -> str | None:
                self.models[model_id]["model_state"] = "REGISTERED"
                return None

            on_complete = registered
        self.tasks[task_id] = Task(task_type, function_name, model_id, fail, on_complete=on_complete)
        return task_id

    def _task(self, task_id: str) -> Any:
        if task_id not in self.tasks:
            raise not_found(f"Failed to find task with ID: {task_id}")
        task = self.tasks[task_id]
        task.reads += 1
        base = {
            "task_type": task.task_type,
            "function_name": task.function_name,
            "model_id": task.model_id,
            "is_async": True,
        }
        if task.final is not None:
            return task.final
        if task.reads == 1:
            return {**base, "state": "CREATED"}
        if task.reads == 2:
            return {**base, "state": "RUNNING"}
        error = task.fail_reason
        if error is None and task.on_complete is not None:
            error = task.on_complete()
        if error is not None:
            model = None if task.keeps_model_state else self.models.get(task.model_id or "")
            if model is not None:
                model["model_state"] = "REGISTER_FAILED" if task.task_type == "REGISTER_MODEL" else "DEPLOY_FAILED"
            task.final = {**base, "state": "FAILED", "error": error}
        else:
            task.final = {**base, "state": "COMPLETED"}
        return task.final

    def _work_in_background(self, model_id: str) -> None:
        """The cluster goes on with a model's unfinished tasks when nobody polls them (a killed client)."""
        for task_id, task in list(self.tasks.items()):
            if task.model_id == model_id and task.final is None:
                self._task(task_id)

    # --- predict -------------------------------------------------------------------------
    def _deployed(self, model_id: str) -> dict[str, Any]:
        model = self._model(model_id)
        if model["model_state"] != "DEPLOYED":
            raise bad_request(
                f"Model not ready yet. Please run this first: POST /_plugins/_ml/models/{model_id}/_deploy"
            )
        return model

    def _predict(self, model_id: str, body: Any) -> Any:
        """``models/<id>/_predict``: the body is parsed by the model's algorithm (REMOTE reads ``parameters``)."""
        model = self._deployed(model_id)
        if model["function_name"] != "remote":
            return self._predict_docs(model_id, _text_docs(body))
        parameters = body.get("parameters") if isinstance(body, dict) else None
        if not isinstance(parameters, dict) or "input" not in parameters:
            raise bad_request("Some parameter placeholder not filled in payload: input")
        return self._call_connector(self.connectors[model["connector_id"]], parameters["input"])

    def _predict_algorithm(self, algorithm: str, model_id: str, body: Any) -> Any:
        """``_predict/<algorithm>/<id>``: ``text_docs``, run through a remote connector's pre/post-processing."""
        if algorithm.upper() not in ("TEXT_EMBEDDING", "SPARSE_ENCODING", "SPARSE_TOKENIZE"):
            raise bad_request(f"Wrong function name: {algorithm}")
        model = self._deployed(model_id)
        if model["function_name"] not in ("remote", algorithm.upper()):
            raise bad_request(f"model {model_id} is a {model['function_name']} model, not {algorithm}")
        return self._predict_docs(model_id, _text_docs(body))

    def _predict_docs(self, model_id: str, texts: list[str]) -> Any:
        """What ML Commons answers for text documents (the input neural search and ingest pipelines send)."""
        model = self._deployed(model_id)
        if model["function_name"] == "remote":
            return self._predict_remote(self.connectors[model["connector_id"]], texts)
        assert self.local_embed is not None, "local_embed is needed to predict with local models"
        results = self.local_embed(model, texts)
        if model["function_name"] in ("SPARSE_ENCODING", "SPARSE_TOKENIZE"):
            return {
                "inference_results": [{"output": [{"name": "output", "dataAsMap": {"response": [r]}}]} for r in results]
            }
        return {
            "inference_results": [
                {"output": [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [len(r)], "data": r}]}
                for r in results
            ]
        }

    def _predict_remote(self, connector: dict[str, Any], texts: list[str]) -> Any:
        action = next(a for a in connector["actions"] if a["action_type"] == "predict")
        if action.get("pre_process_function") != "connector.pre_process.default.embedding":
            raise bad_request("this stand-in runs the default embedding pre-process function only")
        return self._call_connector(connector, texts)

    def _call_connector(self, connector: dict[str, Any], model_input: Any) -> Any:
        action = next(a for a in connector["actions"] if a["action_type"] == "predict")
        payload = action["request_body"].replace("${parameters.input}", json.dumps(model_input))
        target = self.connector_urls.get(action["url"])
        if target is None:
            raise ApiError(
                400, "illegal_argument_exception", f"Connector URL is not trusted or unreachable: {action['url']}"
            )
        reply = httpx.post(target, content=payload, headers=action.get("headers"), timeout=60)
        if reply.status_code != 200:
            raise ApiError(400, "status_exception", f"Error from remote service: {reply.text}")
        answer = reply.json()
        if action.get("post_process_function") == "connector.post_process.default.embedding":
            outputs = [
                {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [len(v)], "data": v} for v in answer
            ]
            return {"inference_results": [{"output": outputs, "status_code": 200}]}
        return {
            "inference_results": [
                {"output": [{"name": "response", "dataAsMap": {"response": answer}}], "status_code": 200}
            ]
        }

    # --- ingest pipelines, indices, neural queries -----------------------------------------
    def _route_search(self, method: str, path: str, params: dict[str, str], body: Any) -> Any:
        segments = path.strip("/").split("/")
        match method, segments:
            case "PUT", ["_search", "pipeline", pipeline_id]:
                return self._put_search_pipeline(pipeline_id, body)
            case "GET", ["_search", "pipeline"]:
                return dict(self.search_pipelines)
            case "GET", ["_search", "pipeline", pipeline_id]:
                if pipeline_id not in self.search_pipelines:
                    raise _empty_not_found(f"search pipeline [{pipeline_id}] is missing")
                return {pipeline_id: self.search_pipelines[pipeline_id]}
            case "DELETE", ["_search", "pipeline", pipeline_id]:
                if self.search_pipelines.pop(pipeline_id, None) is None:
                    raise ApiError(404, "resource_not_found_exception", f"pipeline [{pipeline_id}] is missing")
                return {"acknowledged": True}
            case "PUT", ["_ingest", "pipeline", pipeline_id]:
                return self._put_pipeline(pipeline_id, body)
            case "GET", ["_ingest", "pipeline", pipeline_id]:
                if pipeline_id not in self.pipelines:
                    raise _empty_not_found(f"pipeline [{pipeline_id}] is missing")  # GetPipelineResponse: {} and 404
                return {pipeline_id: self.pipelines[pipeline_id]}
            case "DELETE", ["_ingest", "pipeline", pipeline_id]:
                if self.pipelines.pop(pipeline_id, None) is None:
                    raise ApiError(404, "resource_not_found_exception", f"pipeline [{pipeline_id}] is missing")
                return {"acknowledged": True}
            case "HEAD", [index]:
                if index not in self.indices:
                    raise ApiError(404, "index_not_found_exception", f"no such index [{index}]")
                return {}
            case "PUT", [index]:
                return self._create_index(index, body)
            case "DELETE", [index]:
                if self.indices.pop(index, None) is None:
                    raise ApiError(404, "index_not_found_exception", f"no such index [{index}]")
                return {"acknowledged": True}
            case (("PUT" | "POST"), [index, "_doc", doc_id]):
                return self._index_doc(index, doc_id, body, params)
            case (("GET" | "POST"), [index, "_search"]):
                return self._search_index(index, body, params)
        raise bad_request(f"no handler found for uri [{path}] and method [{method}]")

    def _put_pipeline(self, pipeline_id: str, body: Any) -> Any:
        _require_object(body, {"description", "processors"}, required={"processors"})
        for kind, config in _processors(body, "processors"):
            if kind == CHUNKING:
                _check_text_chunking(config)
                continue
            if kind == TRIM:
                _check_trim(config)
                continue
            if kind not in ("text_embedding", "sparse_encoding"):
                raise ApiError(400, "parse_exception", f"No processor type exists with name [{kind}]")
            _require_object(config, {"model_id", "field_map", "tag", "description"}, required={"model_id", "field_map"})
            self._model(config["model_id"])
        self.pipelines[pipeline_id] = body
        return {"acknowledged": True}

    def _create_index(self, index: str, body: Any) -> Any:
        if index in self.indices:
            raise bad_request(f"index [{index}] already exists", kind="resource_already_exists_exception")
        _require_object(body or {}, {"settings", "mappings", "aliases"}, required=set())
        settings = (body or {}).get("settings", {}).get("index", {})
        properties = (body or {}).get("mappings", {}).get("properties", {})
        _check_mappings(properties, knn=settings.get("knn") is True)
        pipeline = settings.get("default_pipeline")
        if pipeline is not None and pipeline not in self.pipelines:
            raise bad_request(f"default pipeline [{pipeline}] does not exist")
        self.indices[index] = {"settings": settings, "properties": properties, "docs": {}}
        return {"acknowledged": True, "shards_acknowledged": True, "index": index}

    def _embed(self, model_id: str, texts: list[str]) -> list[Any]:
        response = self._predict_docs(model_id, texts)
        found: list[Any] = []
        for result in response["inference_results"]:
            for output in result["output"]:
                if "data" in output:
                    found.append(output["data"])
                else:
                    found.extend(output["dataAsMap"]["response"])
        return found

    def _embed_fields(self, doc: dict[str, Any], config: dict[str, Any]) -> None:
        """A ``text_embedding`` processor (InferenceProcessor): every text of its fields embedded in one call.

        A string becomes its vector; a list of strings a list of ``{"knn": <vector>}``, one per string. Blank
        strings and lists holding anything but non-blank strings are refused, as ProcessorDocumentUtils does (the
        processor checks with ``allowEmpty`` false); a document with nothing to embed passes unchanged.
        """
        texts: list[str] = []
        written: list[tuple[str, int | None]] = []  # (target, None for a string or the list's length)
        for source, target in config["field_map"].items():
            value = doc.get(source)
            if value is None:
                continue
            if isinstance(value, list):
                _check_string_list(source, value, allow_blank=False)
                texts.extend(value)
                written.append((target, len(value)))
            elif isinstance(value, str):
                if not value.strip():
                    raise bad_request(f"map type field [{source}] has empty string value, cannot process it")
                texts.append(value)
                written.append((target, None))
            else:
                _check_leaf(source, value)
        if not texts:
            return
        vectors = iter(self._embed(config["model_id"], texts))
        for target, count in written:
            if count is None:
                doc[target] = next(vectors)
            else:
                doc[target] = [{LIST_TYPE_NESTED_MAP_KEY: next(vectors)} for _ in range(count)]

    def _index_doc(self, index: str, doc_id: str, body: Any, params: dict[str, str]) -> Any:
        if index not in self.indices:
            raise ApiError(404, "index_not_found_exception", f"no such index [{index}]")
        target = self.indices[index]
        doc = dict(body)
        pipeline = self.pipelines.get(target["settings"].get("default_pipeline", ""))
        for kind, config in _processors(pipeline or {}, "processors"):  # in order: each sees what the last wrote
            if kind == CHUNKING:
                _chunk_document(doc, config)
            elif kind == TRIM:
                _trim_field(doc, config)
            elif kind == "text_embedding":
                self._embed_fields(doc, config)
            else:
                for source, destination in config["field_map"].items():
                    if source in doc:
                        doc[destination] = self._embed(config["model_id"], [doc[source]])[0]
        _check_vectors(target["properties"], doc)
        target["docs"][doc_id] = doc
        return {"_index": index, "_id": doc_id, "result": "created", "forced_refresh": params.get("refresh") == "true"}

    def _search_index(self, index: str, body: Any, params: dict[str, str]) -> Any:
        """``GET|POST /<index>/_search``: ``neural``, ``neural_sparse``, ``nested``, ``bool``, or ``hybrid`` through a
        pipeline."""
        if index not in self.indices:
            raise ApiError(404, "index_not_found_exception", f"no such index [{index}]")
        _require_object(body, {"query", "size", "_source"}, required={"query"})
        kind, spec = _one_query(body["query"])
        if _holds_hybrid(spec):
            raise bad_request(HYBRID_TOP_LEVEL)
        pipeline = self._resolve_search_pipeline(params)
        target = self.indices[index]
        size = body.get("size", 10)
        if kind == "hybrid":
            ranked = self._hybrid(target, spec, pipeline, size)
        elif kind in SCORED_QUERIES:
            ranked = self._clause_hits(target, target["docs"], body["query"])
        else:
            raise ApiError(
                400,
                "parsing_exception",
                f"this stand-in answers {', '.join(SCORED_QUERIES)} and hybrid queries only, not [{kind}]",
            )
        hits = [
            {"_index": index, "_id": doc_id, "_score": score, "_source": {"text": target["docs"][doc_id].get("text")}}
            for score, doc_id in ranked[:size]
        ]
        return {"hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits}}

    def _clause_hits(
        self, target: dict[str, Any], docs: dict[str, dict[str, Any]], query: Any
    ) -> list[tuple[float, str]]:
        """What one query matches among ``docs``, best first: a top-level query, a ``bool`` or ``hybrid`` clause."""
        kind, spec = _one_query(query)
        if kind == "match":
            return _bm25(target, docs, spec)
        if kind == "neural":
            name, clause = _neural_clause(spec, kind)
            if _nested_path(target, name) is not None:
                raise bad_request(
                    f"[neural] field [{name}] lies under the nested field [{_nested_path(target, name)}]: a cluster "
                    "matches no document with it unless a [nested] query wraps it; this stand-in refuses it"
                )
            return self._neural_scores(docs, kind, name, clause)[: clause["k"]]
        if kind == "neural_sparse":
            name, clause = _neural_clause(spec, kind)
            # A document sharing no token with the query does not match the feature queries neural_sparse builds.
            return [(score, doc_id) for score, doc_id in self._neural_scores(docs, kind, name, clause) if score > 0]
        if kind == "nested":
            return self._nested(target, docs, spec)
        if kind == "bool":
            return self._bool_should(target, docs, spec)
        raise ApiError(
            400,
            "parsing_exception",
            f"this stand-in answers {', '.join(SCORED_QUERIES)} as a query or a clause, not [{kind}]",
        )

    def _neural_scores(
        self, docs: dict[str, dict[str, Any]], kind: str, name: str, clause: dict[str, Any]
    ) -> list[tuple[float, str]]:
        """A ``neural`` / ``neural_sparse`` query: every document holding the field, best first."""
        query = self._embed(clause["model_id"], [clause["query_text"]])[0]
        scored = [
            (_model_score(kind, query, doc[name]), doc_id) for doc_id, doc in docs.items() if doc.get(name) is not None
        ]
        return _best_first(scored)

    def _bool_should(
        self, target: dict[str, Any], docs: dict[str, dict[str, Any]], spec: Any
    ) -> list[tuple[float, str]]:
        """A ``bool`` of ``should`` clauses only: the documents some clause returned, each scoring the sum of those
        clauses' scores (BooleanQuery without ``must``: one matching clause is enough)."""
        if not isinstance(spec, dict):
            raise ApiError(400, "parsing_exception", "[bool] query malformed, no start_object after query name")
        for key in spec:
            if key not in BOOL_KEYS:
                raise ApiError(400, "parsing_exception", f"[bool] query does not support [{key}]")
            if key != "should":
                raise bad_request(f"this stand-in scores a [bool] of [should] clauses only, not [{key}]")
        should = spec.get("should")
        clauses = [should] if isinstance(should, dict) else should
        if not isinstance(clauses, list) or not clauses:
            raise bad_request("this stand-in scores a [bool] of [should] clauses only: give at least one")
        totals: dict[str, float] = {}
        for clause in clauses:
            for score, doc_id in self._clause_hits(target, docs, clause):
                totals[doc_id] = totals.get(doc_id, 0.0) + score
        return _best_first([(totals[doc_id], doc_id) for doc_id in docs if doc_id in totals])

    def _nested(self, target: dict[str, Any], docs: dict[str, dict[str, Any]], spec: Any) -> list[tuple[float, str]]:
        """A ``nested`` query around a ``neural`` one on a ``knn_vector`` inside the nested objects.

        As the k-NN plugin searches nested fields (without ``expand_nested_docs``), only each document's nearest
        nested vector matches, and the query keeps the top ``k`` documents; ``score_mode`` then combines the scores
        of the matched nested objects, that one: ``avg``, ``max``, ``min`` and ``sum`` give its score, ``none`` 0.
        """
        path, score_mode, inner = _nested_parts(spec)
        mapping = target["properties"].get(path)
        if mapping is None:
            raise _query_shard_error(f"[nested] failed to find nested object under path [{path}]")
        if mapping.get("type") != "nested":
            raise _query_shard_error(f"[nested] nested object under path [{path}] is not of nested type")
        kind, inner_spec = _one_query(inner)
        if kind != "neural":
            raise bad_request(f"this stand-in answers a [neural] query inside [nested], not [{kind}]")
        name, clause = _neural_clause(inner_spec, kind)
        field_name = name.removeprefix(f"{path}.")
        if field_name == name:
            raise bad_request(
                f"[neural] field [{name}] is not under the nested path [{path}]: name it [{path}.<field>] (a cluster "
                "matches no document otherwise; this stand-in refuses it)"
            )
        if mapping.get("properties", {}).get(field_name, {}).get("type") != "knn_vector":
            raise bad_request(f"this stand-in answers [neural] on a knn_vector field only; [{name}] is not one")
        query = self._embed(clause["model_id"], [clause["query_text"]])[0]
        nearest = []
        for doc_id, doc in docs.items():
            scores = [
                _model_score(kind, query, obj[field_name])
                for obj in _nested_objects(doc.get(path), path)
                if obj.get(field_name) is not None
            ]
            if scores:
                nearest.append((max(scores), doc_id))
        kept = {doc_id: score for score, doc_id in _best_first(nearest)[: clause["k"]]}
        return _best_first([(_score_mode(score_mode, [kept[doc_id]]), doc_id) for doc_id in docs if doc_id in kept])

    # --- search pipelines, hybrid queries ----------------------------------------------------
    def _put_search_pipeline(self, pipeline_id: str, body: Any) -> Any:
        """``PUT /_search/pipeline/<id>``: checked as SearchPipelineService does, then stored (replacing one of that id)."""
        if not isinstance(body, dict):
            raise ApiError(400, "parse_exception", "request body is required and must be a JSON object")
        unknown = [key for key in body if key not in SEARCH_PIPELINE_FIELDS]
        if unknown:
            raise ApiError(
                400,
                "parse_exception",
                f"pipeline [{pipeline_id}] doesn't support one or more provided configuration parameters "
                f"[{', '.join(unknown)}]",
            )
        for key in PROCESSOR_LISTS:
            for kind, config in _processors(body, key):
                if key != "phase_results_processors" or kind != NORMALIZATION_PROCESSOR:
                    raise bad_request(f"Invalid processor type {kind}")
                _check_normalization_processor(config)
        self.search_pipelines[pipeline_id] = body
        return {"acknowledged": True}

    def _resolve_search_pipeline(self, params: dict[str, str]) -> dict[str, Any] | None:
        """SearchPipelineService.resolvePipeline: an unknown ``search_pipeline`` fails the search (400, not 404)."""
        pipeline_id = params.get("search_pipeline")
        if pipeline_id is None or pipeline_id == "_none":
            return None
        if pipeline_id not in self.search_pipelines:
            raise bad_request(f"Pipeline {pipeline_id} is not defined")
        return self.search_pipelines[pipeline_id]

    def _hybrid(
        self, target: dict[str, Any], spec: Any, pipeline: dict[str, Any] | None, size: int
    ) -> list[tuple[float, str]]:
        """Each clause's top ``size`` hits (HybridCollectorManager keeps from + size per clause), combined."""
        queries, filter_query = _hybrid_parts(spec)
        processor = _normalization_processor(pipeline)
        if processor is None:
            raise bad_request(HYBRID_NEEDS_PIPELINE)
        docs = target["docs"]
        if filter_query is not None:
            text_fields = {name for name, mapping in target["properties"].items() if mapping.get("type") == "text"}
            docs = {doc_id: doc for doc_id, doc in docs.items() if matches(filter_query, doc, text_fields)}
        ranked = [self._clause_hits(target, docs, clause)[:size] for clause in queries]
        return _combine(ranked, processor)

    # --- search --------------------------------------------------------------------------
    def _search(self, what: str, docs: dict[str, dict[str, Any]], body: Any) -> Any:
        if not docs:
            index = {
                "model": ".plugins-ml-model",
                "model group": ".plugins-ml-model-group",
                "connector": ".plugins-ml-connector",
            }[what]
            raise ApiError(404, "index_not_found_exception", f"no such index [{index}]")
        _require_object(body, {"query", "size", "from", "sort", "_source"}, required={"query"})
        hits = [
            {
                "_index": ".plugins-ml",
                "_id": doc_id,
                "_score": 1.0,
                "_source": {k: v for k, v in doc.items() if not k.startswith("_")},
            }
            for doc_id, doc in docs.items()
            if matches(body["query"], doc)
        ][: body.get("size", 10)]
        return {
            "took": 1,
            "timed_out": False,
            "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": 1.0, "hits": hits},
        }


def _deleted(index: str, doc_id: str) -> dict[str, Any]:
    """The delete response of ML Commons' system indices."""
    return {
        "_index": index,
        "_id": doc_id,
        "_version": 2,
        "result": "deleted",
        "_shards": {"total": 2, "successful": 1, "failed": 0},
        "_seq_no": 3,
        "_primary_term": 1,
    }


def _text_docs(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("text_docs"), list) or not body["text_docs"]:
        raise bad_request(
            "text_docs (a non-empty list of strings) is required", kind="action_request_validation_exception"
        )
    return body["text_docs"]


def _require_object(body: Any, allowed: set[str], *, required: set[str]) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "parsing_exception", "request body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(400, "parsing_exception", f"unknown field [{sorted(unknown)[0]}]")
    _require_keys(body, required)


def _require_keys(body: dict[str, Any], keys: set[str]) -> None:
    missing = sorted(k for k in keys if body.get(k) in (None, ""))
    if missing:
        raise ApiError(400, "action_request_validation_exception", f"Validation Failed: 1: {missing[0]} is missing;")


# Fields of ML Commons' system indices mapped as ``text`` (with a ``.keyword`` sub-field). ``connector_id`` is not in
# the model index mapping, so dynamic mapping makes it text too: ML Commons itself finds a connector's models with a
# ``match`` query on it.
TEXT_FIELDS = {"name", "description", "connector_id"}


def _tokens(value: Any) -> list[str]:
    """What the ``standard`` analyzer indexes for a text value: lower-cased words (hyphens split, underscores kept)."""
    return re.findall(r"\w+", str(value).lower())


def _value(doc: dict[str, Any], name: str) -> Any:
    return doc.get(name.removesuffix(".keyword"))


def _term_matches(doc: dict[str, Any], name: str, value: Any, text_fields: set[str]) -> bool:
    """A ``term`` query: exact on keyword fields, against the analysed tokens on text fields."""
    if name in text_fields:
        return doc.get(name) is not None and value in _tokens(doc[name])
    return _value(doc, name) == value


def matches(query: dict[str, Any], doc: dict[str, Any], text_fields: set[str] = TEXT_FIELDS) -> bool:
    """The query DSL subset the registrar sends: match_all, term, match, exists, bool (filter/must/must_not/should).

    ``text_fields`` are the fields mapped as ``text`` (ML Commons' system indices unless told otherwise).
    """
    kind, spec = _one_query(query)
    if kind == "match_all":
        return True
    if kind == "term":
        ((name, value),) = spec.items()
        value = value["value"] if isinstance(value, dict) else value
        return _term_matches(doc, name, value, text_fields)
    if kind == "match":
        ((name, value),) = spec.items()
        value = value["query"] if isinstance(value, dict) else value
        if name not in text_fields:
            return _value(doc, name) == value
        return doc.get(name) is not None and bool(set(_tokens(value)) & set(_tokens(doc[name])))
    if kind == "exists":
        return _value(doc, spec["field"]) is not None
    if kind == "bool":
        unknown = set(spec) - {"filter", "must", "must_not", "should"}
        if unknown:
            raise ApiError(400, "parsing_exception", f"[bool] query does not support [{sorted(unknown)[0]}]")

        def listed(key: str) -> list[dict[str, Any]]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        return (
            all(matches(q, doc, text_fields) for q in listed("filter") + listed("must"))
            and not any(matches(q, doc, text_fields) for q in listed("must_not"))
            and (not listed("should") or any(matches(q, doc, text_fields) for q in listed("should")))
        )
    raise ApiError(400, "parsing_exception", f"unknown query [{kind}]")


# --- text_chunking, text_embedding over lists, nested mappings, nested and bool queries --------------------------------
# The queries a search answers (``match`` only as a clause of a ``bool`` or ``hybrid``); the keys BoolQueryBuilder and
# NestedQueryBuilder parse.
SCORED_QUERIES = ("neural", "neural_sparse", "nested", "bool")
BOOL_KEYS = ("must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name", "adjust_pure_negative")
NESTED_KEYS = ("path", "query", "score_mode", "inner_hits", "ignore_unmapped", "boost", "_name")


def _java_class(value: Any) -> str:
    """The class OpenSearch's JSON parser gives a value, as its configuration errors name it."""
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if -(2**31) <= value < 2**31 else "java.lang.Long"
    names = {float: "java.lang.Double", str: "java.lang.String", list: "java.util.ArrayList", dict: "java.util.HashMap"}
    return names.get(type(value), type(value).__name__)


def _java_text(value: Any) -> str | None:
    """``value.toString()`` for the values a JSON body holds (None where Java would throw)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else None if value is None else str(value)


def _java_int(text: str | None) -> int | None:
    """Integer.decode, which NumberUtils.createInteger calls: a sign, then decimal, 0x / # hex or 0 octal digits."""
    if text is None:
        return None
    sign, rest = (text[0], text[1:]) if text[:1] in ("+", "-") else ("", text)
    if rest[:2] in ("0x", "0X") or rest[:1] == "#":
        base, digits = 16, rest[2:] if rest[:1] == "0" else rest[1:]
    elif rest[:1] == "0" and len(rest) > 1:
        base, digits = 8, rest[1:]
    else:
        base, digits = 10, rest
    if not re.fullmatch(r"[0-9a-fA-F]+", digits):
        return None
    try:
        value = int(digits, base) * (-1 if sign == "-" else 1)
    except ValueError:
        return None
    return value if -(2**31) <= value < 2**31 else None


def _integer_parameter(params: dict[str, Any], key: str, default: int, *, positive: bool = False) -> int:
    """ChunkerParameterParser.parseIntegerWithDefault (and parsePositiveIntegerWithDefault): ``"5"`` passes too."""
    if key not in params:
        return default
    value = _java_int(_java_text(params[key]))
    if value is None:
        raise bad_request(f"Parameter [{key}] must be of java.lang.Integer type")
    if positive and value <= 0:
        raise bad_request(f"Parameter [{key}] must be positive.")
    return value


def _double_parameter(params: dict[str, Any], key: str, default: float) -> float:
    """ChunkerParameterParser.parseDoubleWithDefault."""
    if key not in params:
        return default
    text = _java_text(params[key])
    try:
        if text is None or "_" in text:
            raise ValueError(text)
        return float(text)
    except ValueError:
        raise bad_request(f"Parameter [{key}] must be of java.lang.Double type") from None


def _string_parameter(params: dict[str, Any], key: str, default: str) -> str:
    """ChunkerParameterParser.parseStringWithDefault: a non-empty string."""
    if key not in params:
        return default
    value = params[key]
    if not isinstance(value, str):
        raise bad_request(f"Parameter [{key}] must be of java.lang.String type")
    if not value:
        raise bad_request(f"Parameter [{key}] should not be empty.")
    return value


def _read_map(config: dict[str, Any], key: str) -> dict[str, Any]:
    """ConfigurationUtils.readMap: a required object, removed from the configuration."""
    value = config.pop(key, None)
    if value is None:
        raise ApiError(400, "parse_exception", f"[{key}] required property is missing")
    if not isinstance(value, dict):
        raise ApiError(400, "parse_exception", f"[{key}] property isn't a map, but of type [{_java_class(value)}]")
    return value


# OpenSearch's ingest-common ``trim`` processor (AbstractStringProcessor): String.trim on one field.
TRIM = "trim"
TRIM_KEYS = {"field", "target_field", "ignore_missing", "tag", "description"}


def _check_trim(config: Any) -> None:
    """A ``trim`` processor as its factory reads it: ``field`` required; ``target_field``, ``ignore_missing``."""
    if not isinstance(config, dict):
        raise ApiError(400, "parse_exception", f"property isn't a map, but of type [{_java_class(config)}]")
    unknown = [key for key in config if key not in TRIM_KEYS]
    if unknown:
        raise ApiError(
            400,
            "parse_exception",
            f"processor [{TRIM}] doesn't support one or more provided configuration parameters [{', '.join(unknown)}]",
        )
    for key in ("field", "target_field"):
        if key in config and not isinstance(config[key], str):
            raise ApiError(
                400, "parse_exception", f"[{key}] property isn't a string, but of type [{_java_class(config[key])}]"
            )
    if "field" not in config:
        raise ApiError(400, "parse_exception", "[field] required property is missing")


def _trim_field(doc: dict[str, Any], config: dict[str, Any]) -> None:
    """``value.trim()`` (Java: every char up to U+0020 off both ends) written to ``target_field`` or in place."""
    name = config["field"]
    value = doc.get(name)
    if value is None:
        if config.get("ignore_missing", False):
            return
        raise bad_request(f"field [{name}] not present as part of path [{name}]")
    if not isinstance(value, str):
        raise bad_request(f"field [{name}] of type [{_java_class(value)}] cannot be cast to [java.lang.String]")
    doc[config.get("target_field", name)] = value.strip("".join(map(chr, range(0x21))))


def _check_text_chunking(config: Any) -> None:
    """A ``text_chunking`` processor as ConfigurationUtils.readProcessor builds it with TextChunkingProcessorFactory.

    ``tag`` and ``description`` are strings; ``field_map`` and ``algorithm`` required objects; ``ignore_missing`` a
    boolean; then the algorithm is parsed (``_chunking_algorithm``) and any other key refused. The algorithms'
    other parameters are ignored, as the chunkers ignore them.
    """
    if not isinstance(config, dict):
        raise ApiError(400, "parse_exception", f"property isn't a map, but of type [{_java_class(config)}]")
    left = dict(config)
    for key in ("tag", "description"):
        value = left.pop(key, None)
        if value is not None and not isinstance(value, str):
            raise ApiError(
                400, "parse_exception", f"[{key}] property isn't a string, but of type [{_java_class(value)}]"
            )
    for key in COMMON_PROCESSOR_KEYS:
        if key in left:
            raise bad_request(f"this stand-in does not run [{key}] on ingest processors")
    field_map = _read_map(left, "field_map")
    algorithm = _read_map(left, "algorithm")
    ignore_missing = left.pop("ignore_missing", None)
    if ignore_missing is not None and not isinstance(ignore_missing, bool):
        raise ApiError(
            400,
            "parse_exception",
            f"[ignore_missing] property isn't a boolean, but of type [{_java_class(ignore_missing)}]",
        )
    _chunking_algorithm(algorithm)
    if left:
        raise ApiError(
            400,
            "parse_exception",
            f"processor [{CHUNKING}] doesn't support one or more provided configuration parameters [{', '.join(left)}]",
        )
    for source, output in field_map.items():
        if not isinstance(output, str):
            raise bad_request(
                f"this stand-in chunks top-level fields into a field named by a string; field_map[{source}] is "
                f"{output!r} (the plugin's nested field maps are not modelled)"
            )


def _chunking_algorithm(algorithm: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
    """TextChunkingProcessor.parseAlgorithmMap, then the chunker's parseParameters: (name, parameters, limit).

    No algorithm means ``fixed_token_length`` with its defaults; ``max_chunk_limit`` (100 by default) must be
    positive or -1, which disables it.
    """
    if len(algorithm) > 1:
        raise bad_request(f"Unable to create {CHUNKING} processor as [algorithm] contains multiple algorithms")
    name, params = next(iter(algorithm.items()), (CHUNKING_ALGORITHMS[0], {}))
    if not isinstance(params, dict):
        raise bad_request(
            f"Unable to create {CHUNKING} processor as parameters for [{name}] algorithm must be an object"
        )
    if name not in CHUNKING_ALGORITHMS:
        raise bad_request(
            f"Chunking algorithm [{name}] is not supported. Supported chunking algorithms are "
            f"[{', '.join(CHUNKING_ALGORITHMS)}]"
        )
    limit = _integer_parameter(params, "max_chunk_limit", DEFAULT_MAX_CHUNK_LIMIT)
    if limit <= 0 and limit != DISABLED_MAX_CHUNK_LIMIT:
        raise bad_request(
            f"Parameter [max_chunk_limit] must be positive or {DISABLED_MAX_CHUNK_LIMIT} to disable this parameter"
        )
    if name == "delimiter":
        _string_parameter(params, "delimiter", DEFAULT_DELIMITER)
    elif name == "fixed_token_length":
        _integer_parameter(params, "token_limit", 384, positive=True)
        overlap = _double_parameter(params, "overlap_rate", 0.0)
        tokenizer = _string_parameter(params, "tokenizer", "standard")
        if overlap < 0.0 or overlap > 0.5:
            raise bad_request("Parameter [overlap_rate] must be between 0.0 and 0.5")
        if tokenizer not in WORD_TOKENIZERS:
            raise bad_request(
                f"Tokenizer [{tokenizer}] is not supported for [fixed_token_length] algorithm. Supported tokenizers "
                f"are [{', '.join(WORD_TOKENIZERS)}]"
            )
    else:
        _integer_parameter(params, "char_limit", 2048, positive=True)
        overlap = _double_parameter(params, "overlap_rate", 0.0)
        if overlap < 0.0 or overlap > 0.5:
            raise bad_request(f"Parameter [overlap_rate] must be between 0.0 and 0.5, but was {overlap}")
    return name, params, limit


def _check_string_list(source: str, value: list[Any], *, allow_blank: bool) -> None:
    """ProcessorDocumentUtils' check of a list field: strings only (blank ones too where ``allow_blank``)."""
    for element in value:
        if element is None:
            raise bad_request(f"list type field [{source}] has null, cannot process it")
        if isinstance(element, list):
            raise bad_request(f"list type field [{source}] is nested list type, cannot process it")
        if isinstance(element, dict):
            raise bad_request(
                f"this stand-in takes strings and lists of strings in field_map fields; [{source}] holds objects"
            )
        if not isinstance(element, str):
            raise bad_request(f"list type field [{source}] has non string value, cannot process it")
        if not allow_blank and not element.strip():
            raise bad_request(f"list type field [{source}] has empty string, cannot process it")


def _check_leaf(source: str, value: Any) -> None:
    """A field_map field holding neither a string nor a list: refused (objects by this stand-in only)."""
    if isinstance(value, dict):
        raise bad_request(
            f"this stand-in takes strings and lists of strings in field_map fields; [{source}] is an object"
        )
    raise bad_request(f"map type field [{source}] is neither string nor nested type, cannot process it")


def _chunk_document(doc: dict[str, Any], config: dict[str, Any]) -> None:
    """A ``text_chunking`` processor run on a document (TextChunkingProcessor.execute), ``delimiter`` only.

    Each field_map field's text (or list of texts) becomes the list of its passages; a missing or blank field an
    empty list, or nothing with ``ignore_missing``. ``max_chunk_limit`` counts over the whole document: each text
    chunked lowers it by its passages, and a text stops being cut once its passages plus the texts still to cut
    reach it, the rest of it kept whole as its last passage.
    """
    name, params, limit = _chunking_algorithm(config["algorithm"])
    if name != "delimiter":
        raise bad_request(
            f"this stand-in chunks with the delimiter algorithm only, not [{name}]: a cluster would cut this "
            "document, this stand-in cannot"
        )
    delimiter = params.get("delimiter", DEFAULT_DELIMITER)
    field_map = config["field_map"]
    for source in field_map:
        value = doc.get(source)
        if isinstance(value, list):
            _check_string_list(source, value, allow_blank=True)
        elif value is not None and not isinstance(value, str):
            _check_leaf(source, value)
    # chunk_string_count: the non-empty texts still to cut, this one included.
    runtime = {"limit": limit, "strings": 0}
    for source in field_map:
        value = doc.get(source)
        texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        runtime["strings"] += sum(1 for text in texts if text)
    for source, output in field_map.items():
        value = doc.get(source)
        if value is None and config.get("ignore_missing", False):
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            doc[output] = []
        else:
            texts = [value] if isinstance(value, str) else value
            doc[output] = [passage for text in texts for passage in _chunk_text(text, delimiter, runtime)]


def _chunk_text(text: str, delimiter: str, runtime: dict[str, int]) -> list[str]:
    """TextChunkingProcessor.chunkString: cut one text, then lower the limit by its passages."""
    if not text:
        return []
    passages = _delimiter_chunks(text, delimiter, runtime["limit"], runtime["strings"])
    runtime["strings"] -= 1
    if runtime["limit"] != DISABLED_MAX_CHUNK_LIMIT:
        runtime["limit"] -= len(passages)
    return passages


def _delimiter_chunks(text: str, delimiter: str, limit: int = DISABLED_MAX_CHUNK_LIMIT, strings: int = 1) -> list[str]:
    """DelimiterChunker.chunk: a passage ends after each delimiter (kept); the text after the last one is a passage.

    Before each cut, if the passages so far plus ``strings`` (the texts still to cut, this one included) reach
    ``limit`` (unless -1), cutting stops and the rest of the text is the last passage.
    """
    passages: list[str] = []
    start, found = 0, text.find(delimiter)
    while found != -1:
        if limit != DISABLED_MAX_CHUNK_LIMIT and len(passages) + strings >= limit:
            break
        end = found + len(delimiter)
        passages.append(text[start:end])
        start, found = end, text.find(delimiter, end)
    if start < len(text):
        passages.append(text[start:])
    return passages


def _check_mappings(properties: Any, *, knn: bool, prefix: str = "") -> None:
    """``knn_vector`` fields, at the top or inside ``nested`` ones, need ``index.knn`` and an integer dimension."""
    if not isinstance(properties, dict):
        raise bad_request(f"[{prefix or 'mappings.'}properties] must be an object", kind="mapper_parsing_exception")
    for name, mapping in properties.items():
        full = f"{prefix}{name}"
        if not isinstance(mapping, dict):
            raise bad_request(f"field [{full}]: its mapping must be an object", kind="mapper_parsing_exception")
        if mapping.get("type") == "knn_vector":
            if not knn:
                raise bad_request(f"field [{full}]: knn_vector needs index.knn: true", kind="mapper_parsing_exception")
            if not isinstance(mapping.get("dimension"), int):
                raise bad_request(f"field [{full}]: dimension is required", kind="mapper_parsing_exception")
        elif mapping.get("type") == "nested":
            _check_mappings(mapping.get("properties", {}), knn=knn, prefix=f"{full}.")


def _check_vectors(properties: dict[str, Any], doc: dict[str, Any]) -> None:
    """Each ``knn_vector`` value, in every nested object too, must have its field's dimension."""
    for name, mapping in properties.items():
        value = doc.get(name)
        if value is None:
            continue
        if mapping.get("type") == "nested":
            for obj in _nested_objects(value, name):
                _check_vectors(mapping.get("properties", {}), obj)
        elif mapping.get("type") == "knn_vector":
            if not isinstance(value, list):
                raise bad_request(
                    f"failed to parse field [{name}] of type [knn_vector]", kind="mapper_parsing_exception"
                )
            if len(value) != mapping["dimension"]:
                raise bad_request(
                    f"Vector dimension mismatch. Expected: {mapping['dimension']}, Given: {len(value)}",
                    kind="mapper_parsing_exception",
                )


def _nested_objects(value: Any, name: str) -> list[dict[str, Any]]:
    """A nested field's objects: none, one object or a list of them."""
    objects = [] if value is None else value if isinstance(value, list) else [value]
    for obj in objects:
        if not isinstance(obj, dict):
            raise bad_request(
                f"object mapping for [{name}] tried to parse field [{name}] as object, but found a concrete value",
                kind="mapper_parsing_exception",
            )
    return objects


def _nested_path(target: dict[str, Any], name: str) -> str | None:
    """The ``nested`` field ``name`` lies under, if any (``passage_embedding`` for ``passage_embedding.knn``)."""
    parts = name.split(".")
    for end in range(1, len(parts)):
        path = ".".join(parts[:end])
        if target["properties"].get(path, {}).get("type") == "nested":
            return path
    return None


def _neural_clause(spec: Any, kind: str) -> tuple[str, dict[str, Any]]:
    """A ``neural`` / ``neural_sparse`` query's field and options (``neural`` needs ``k``)."""
    name, clause = _single_entry(spec, kind)
    _require_object(clause, {"query_text", "model_id", "k"}, required={"query_text", "model_id"})
    if kind == "neural" and "k" not in clause:
        raise bad_request("[neural] query needs k")
    if "k" in clause and (not isinstance(clause["k"], int) or clause["k"] < 1):
        raise bad_request(f"[{kind}] k must be a positive integer, got {clause['k']!r}")
    return name, clause


def _nested_parts(spec: Any) -> tuple[str, str, Any]:
    """NestedQueryBuilder.fromXContent: (path, score_mode, query); ``score_mode`` is ``avg`` unless given."""
    if not isinstance(spec, dict):
        raise ApiError(400, "parsing_exception", "[nested] query malformed, no start_object after query name")
    for key in spec:
        if key not in NESTED_KEYS:
            raise ApiError(400, "parsing_exception", f"[nested] query does not support [{key}]")
        if key not in ("path", "query", "score_mode"):
            raise bad_request(f"this stand-in does not take [{key}] in a [nested] query")
    if spec.get("path") is None:
        raise bad_request("[nested] requires 'path' field")
    if spec.get("query") is None:
        raise bad_request("[nested] requires 'query' field")
    score_mode = spec.get("score_mode", "avg")
    if score_mode not in SCORE_MODES:
        raise bad_request(f"No score mode for child query [{score_mode}] found")
    return spec["path"], score_mode, spec["query"]


def _score_mode(mode: str, scores: list[float]) -> float:
    """A parent's score from its matched nested objects' (Lucene's ScoreMode; ``none`` scores 0)."""
    if mode == "none":
        return 0.0
    combine: dict[str, Callable[[list[float]], float]] = {
        "avg": lambda found: sum(found) / len(found),
        "max": max,
        "min": min,
        "sum": sum,
    }
    return combine[mode](scores)


def _query_shard_error(reason: str) -> ApiError:
    """A query that fails on the shard (QueryShardContext.toQuery): 400 ``search_phase_execution_exception``."""
    error = ApiError(400, "search_phase_execution_exception", "all shards failed")
    cause = {"type": "query_shard_exception", "reason": f"failed to create query: {reason}"}
    error.body["error"].update(root_cause=[cause], phase="query", grouped=True, caused_by=cause)
    return error


# --- search queries, search pipelines, hybrid scoring ------------------------------------------------------------------
def _empty_not_found(reason: str) -> ApiError:
    """A 404 whose body is ``{}``: what GET of a missing search or ingest pipeline answers (Get*PipelineResponse)."""
    error = ApiError(404, "resource_not_found_exception", reason)
    error.body = {}
    return error


def _one_query(query: Any) -> tuple[str, Any]:
    if not isinstance(query, dict) or len(query) != 1:
        raise ApiError(400, "parsing_exception", "a query must be an object with exactly one query type")
    ((kind, spec),) = query.items()
    return kind, spec


def _single_entry(spec: Any, kind: str) -> tuple[str, Any]:
    """``{field: options}``, the body of a one-field query such as ``match`` or ``neural``."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ApiError(400, "parsing_exception", f"[{kind}] query malformed: it takes exactly one field")
    ((name, options),) = spec.items()
    return name, options


def _holds_hybrid(node: Any) -> bool:
    """Whether a ``hybrid`` query sits anywhere inside ``node`` (the body of the top-level query)."""
    if isinstance(node, dict):
        return isinstance(node.get("hybrid"), dict) or any(_holds_hybrid(value) for value in node.values())
    if isinstance(node, list):
        return any(_holds_hybrid(value) for value in node)
    return False


def _best_first(scored: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Highest score first; ties keep index order (Lucene breaks them by doc id)."""
    return sorted(scored, key=lambda item: -item[0])


def _model_score(kind: str, query: Any, value: Any) -> float:
    """``neural``: the k-NN cosine score (1 + cos) / 2; ``neural_sparse``: the dot product of the token weights."""
    if kind == "neural":
        dot = sum(a * b for a, b in zip(query, value, strict=True))
        norm = (sum(a * a for a in query) * sum(b * b for b in value)) ** 0.5
        return (1 + dot / norm) / 2
    return sum(weight * value.get(token, 0.0) for token, weight in query.items())


def _processors(body: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    """(type, config) of each processor in a pipeline's ``key`` list."""
    listed = body.get(key, [])
    if not isinstance(listed, list):
        raise ApiError(400, "parse_exception", f"[{key}] property isn't a list, but of type [{type(listed).__name__}]")
    found: list[tuple[str, Any]] = []
    for processor in listed:
        if not isinstance(processor, dict):
            raise ApiError(400, "parse_exception", f"[{key}] must hold objects, one processor type each")
        found.extend(processor.items())
    return found


def _check_normalization_processor(config: Any) -> None:
    """NormalizationProcessorFactory.create, then the pipeline's check that no parameter was left unread."""
    if not isinstance(config, dict):
        raise ApiError(400, "parse_exception", f"[{NORMALIZATION_PROCESSOR}] configuration must be an object")
    normalization = _clause(config, "normalization")
    technique = normalization.get("technique", "min_max")
    if technique not in NORMALIZATIONS:
        raise ApiError(400, "parse_exception", "provided normalization technique is not supported")
    if normalization.get("parameters"):
        raise bad_request("normalization parameters (lower_bounds, upper_bounds) are not supported by this stand-in")
    if "combination" in config:
        combination = _clause(config, "combination")
        if technique == "z_score" and combination.get("technique", "arithmetic_mean") != "arithmetic_mean":
            raise bad_request("Z Score supports only arithmetic_mean combination technique")
        if combination.get("technique", "arithmetic_mean") not in COMBINATIONS:
            raise ApiError(400, "parse_exception", "provided combination technique is not supported")
        _check_weights(combination.get("parameters"))
    unknown = [key for key in config if key not in NORMALIZATION_FIELDS]
    if unknown:
        name = NORMALIZATION_PROCESSOR if config.get("tag") is None else f"{NORMALIZATION_PROCESSOR}:{config['tag']}"
        raise ApiError(
            400,
            "parse_exception",
            f"processor [{name}] doesn't support one or more provided configuration parameters: [{', '.join(unknown)}]",
        )


def _clause(config: dict[str, Any], key: str) -> dict[str, Any]:
    """The processor's ``normalization`` or ``combination`` object (empty when absent)."""
    clause = config.get(key, {})
    if not isinstance(clause, dict):
        raise ApiError(400, "parse_exception", f"[{key}] property isn't a map, but of type [{type(clause).__name__}]")
    _require_object(clause, {"technique", "parameters"}, required=set())
    return clause


def _check_weights(parameters: Any) -> None:
    """ScoreCombinationUtil: only ``weights``, numbers in [0.0, 1.0] that sum to 1.0."""
    if parameters is None:
        return
    if not isinstance(parameters, dict):
        raise ApiError(400, "parse_exception", "[parameters] property isn't a map")
    if set(parameters) - {"weights"}:
        raise bad_request(
            "provided parameter for combination technique is not supported. supported parameters are [weights]"
        )
    weights = parameters.get("weights")
    if weights is None:
        return
    if not isinstance(weights, list) or not all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in weights
    ):
        raise bad_request("parameter [weights] must be a collection of numbers")
    if any(isinstance(w, int) for w in weights):
        # getWeights casts each to java.lang.Double: a JSON integer such as 1 fails there with a ClassCastException.
        raise bad_request(
            f"weights must be written as decimals (1.0, not 1): class java.lang.Integer cannot be cast to class "
            f"java.lang.Double, submitted weights: {weights}"
        )
    shown = "[" + ", ".join(repr(float(w)) for w in weights) + "]"
    if any(not 0.0 <= w <= 1.0 for w in weights):
        raise bad_request(f"all weights must be in range [0.0 ... 1.0], submitted weights: {shown}")
    if abs(sum(weights) - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise bad_request(f"sum of weights for combination must be equal to 1.0, submitted weights: {shown}")


def _normalization_processor(pipeline: dict[str, Any] | None) -> dict[str, Any] | None:
    for kind, config in _processors(pipeline or {}, "phase_results_processors"):
        if kind == NORMALIZATION_PROCESSOR:
            return config
    return None


def _hybrid_parts(spec: Any) -> tuple[list[Any], Any]:
    """HybridQueryBuilder.fromXContent: ``queries`` (1 to 5 clauses) and an optional ``filter``."""
    if not isinstance(spec, dict):
        raise ApiError(400, "parsing_exception", "[hybrid] query malformed, must start with start_object")
    unknown = [key for key in spec if key not in ("queries", "filter")]
    if unknown:
        raise ApiError(400, "parsing_exception", f"[hybrid] query does not support [{unknown[0]}]")
    queries = spec.get("queries")
    if not isinstance(queries, list) or not queries:
        raise ApiError(400, "parsing_exception", "[hybrid] requires 'queries' field with at least one clause")
    if len(queries) > MAX_HYBRID_SUB_QUERIES:
        raise ApiError(400, "parsing_exception", "Number of sub-queries exceeds maximum supported by [hybrid] query")
    return queries, spec.get("filter")


def _bm25(target: dict[str, Any], docs: dict[str, dict[str, Any]], spec: Any) -> list[tuple[float, str]]:
    """A ``match`` query on a text field, scored by Lucene's BM25 over the index's values of that field.

    Lucene stores document lengths lossily (one byte), so for long texts a real cluster's scores differ a little.
    """
    name, value = _single_entry(spec, "match")
    if isinstance(value, dict):
        unknown = [key for key in value if key != "query"]
        if unknown:
            raise bad_request(f"[match] option [{unknown[0]}] is not supported by this stand-in")
        if "query" not in value:
            raise ApiError(400, "parsing_exception", "No text specified for text query")
        value = value["query"]
    mapping = target["properties"].get(name)
    if mapping is None:
        return []  # an unmapped field matches nothing
    if mapping.get("type") != "text":
        raise bad_request(f"this stand-in scores [match] on text fields only; [{name}] is [{mapping.get('type')}]")
    indexed = {doc_id: _tokens(doc[name]) for doc_id, doc in target["docs"].items() if doc.get(name) is not None}
    indexed = {doc_id: tokens for doc_id, tokens in indexed.items() if tokens}
    terms = _tokens(value)
    if not indexed or not terms:
        return []
    count, average = len(indexed), sum(len(tokens) for tokens in indexed.values()) / len(indexed)
    idf = {term: _idf(count, sum(term in tokens for tokens in indexed.values())) for term in set(terms)}
    scored = []
    for doc_id in docs:
        tokens = indexed.get(doc_id)
        if not tokens or not set(terms) & set(tokens):
            continue
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(tokens) / average)
        # One clause per query token, repeats included, as the match query's BooleanQuery has.
        score = sum(idf[term] * tokens.count(term) / (tokens.count(term) + norm) for term in terms if term in tokens)
        scored.append((score, doc_id))
    return _best_first(scored)


def _idf(count: int, with_term: int) -> float:
    return math.log(1 + (count - with_term + 0.5) / (with_term + 0.5))


def _combine(ranked: list[list[tuple[float, str]]], processor: dict[str, Any]) -> list[tuple[float, str]]:
    """NormalizationProcessorWorkflow: normalise each clause's hits, then combine per document, best first.

    A document a clause did not return scores 0.0 there (ScoreCombiner fills the missing places with 0), which
    arithmetic_mean counts with its weight and the geometric and harmonic means skip.
    """
    combination = processor.get("combination") or {}
    weights = (combination.get("parameters") or {}).get("weights")
    if weights is not None and len(weights) != len(ranked):
        raise bad_request(
            f"number of weights [{len(weights)}] must match number of sub-queries [{len(ranked)}] in hybrid query"
        )
    technique = (processor.get("normalization") or {}).get("technique", "min_max")
    normalised = [_normalise(technique, dict((doc_id, score) for score, doc_id in hits)) for hits in ranked]
    combine = COMBINERS[combination.get("technique", "arithmetic_mean")]
    found = list(dict.fromkeys(doc_id for hits in ranked for _, doc_id in hits))
    return _best_first(
        [
            (combine([n.get(doc_id, 0.0) for n in normalised], weights or [1.0] * len(ranked)), doc_id)
            for doc_id in found
        ]
    )


def _normalise(technique: str, scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    if technique == "min_max":
        low, high = min(scores.values()), max(scores.values())
        if high == low:
            return dict.fromkeys(scores, 1.0)
        # A normalised 0 becomes 0.001, so the clause's worst hit still counts as found.
        return {doc_id: (score - low) / (high - low) or 0.001 for doc_id, score in scores.items()}
    if technique == "l2":
        norm = math.sqrt(sum(score * score for score in scores.values()))
        return {doc_id: score / norm if norm else 0.0 for doc_id, score in scores.items()}
    raise bad_request(f"normalization technique [{technique}] is not supported by this stand-in")


def _arithmetic_mean(scores: list[float], weights: list[float]) -> float:
    total = sum(weight for score, weight in zip(scores, weights, strict=True) if score >= 0)
    return (
        sum(weight * score for score, weight in zip(scores, weights, strict=True) if score >= 0) / total
        if total
        else 0.0
    )


def _geometric_mean(scores: list[float], weights: list[float]) -> float:
    pairs = [(score, weight) for score, weight in zip(scores, weights, strict=True) if score > 0]
    total = sum(weight for _, weight in pairs)
    return math.exp(sum(weight * math.log(score) for score, weight in pairs) / total) if total else 0.0


def _harmonic_mean(scores: list[float], weights: list[float]) -> float:
    pairs = [(score, weight) for score, weight in zip(scores, weights, strict=True) if score > 0]
    harmonics = sum(weight / score for score, weight in pairs)
    return sum(weight for _, weight in pairs) / harmonics if harmonics > 0 else 0.0


COMBINERS: dict[str, Callable[[list[float], list[float]], float]] = {
    "arithmetic_mean": _arithmetic_mean,
    "geometric_mean": _geometric_mean,
    "harmonic_mean": _harmonic_mean,
}
