"""ML Commons over opensearch-py: model groups, connectors, models, tasks, predictions.

Every lookup is by name first, so a re-run finds and reuses what an earlier run created.
Asynchronous work (register, deploy) is followed through its task, ``CREATED`` →
``RUNNING`` → ``COMPLETED`` (or ``FAILED``, reported with the task's error), within
``task_timeout_s``. Every OpenSearch failure becomes an ``OsftError`` that says what was
being done and what to check.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.errors import CredentialsError, OsftError, ServiceError
from osft.common.logging import get_logger
from osft.common.opensearch import error_reason

DONE_STATES = ("COMPLETED",)
FAILED_STATES = ("FAILED", "COMPLETED_WITH_ERROR", "CANCELLED")
UNUSABLE_MODEL_STATES = ("REGISTER_FAILED",)
LOADED_MODEL_STATES = ("DEPLOYED", "PARTIALLY_DEPLOYED", "DEPLOYING")
EXISTING_GROUP = re.compile(r"model group with ID:?\s*([A-Za-z0-9_\-]+)")
DUPLICATE_DEPLOY = "Duplicate deploy model task"
CONNECTOR_IN_USE = "still using this connector"
REFRESH_WAIT_S = 30
GENERIC_HINT = "see the reason above; ML Commons settings (plugins.ml_commons.*) may need changing"
# Refusals caused by a cluster setting, by a fragment of ML Commons' reason: the setting (and spec field) to change.
SETTING_HINTS = (
    (
        "trusted connector endpoint regex",
        "add the connector URL to plugins.ml_commons.trusted_connector_endpoints_regex (PUT _cluster/settings), "
        "or set deploy.opensearch.set_trusted_endpoints: true to let the registrar add it",
    ),
    (
        "no eligible node found",
        "the cluster has no ML node to run a local model on: add a node with node.roles [ml], or set "
        "plugins.ml_commons.only_run_on_ml_node: false (PUT _cluster/settings) to run it on data nodes",
    ),
)


@dataclass(frozen=True)
class Found:
    """A document ML Commons returned from a ``_search``: its id and source."""

    id: str
    source: dict[str, Any]


class MLCommons:
    """ML Commons APIs of one cluster, with the waiting and the error messages the registrar needs.

    ``client`` is an ``opensearchpy.OpenSearch``; ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        client: Any,
        *,
        url: str,
        task_timeout_s: float,
        poll_interval_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.url = url
        self.task_timeout_s = task_timeout_s
        self.poll_interval_s = poll_interval_s
        self.sleep = sleep
        self.log = get_logger(component="ml_commons")

    # --- errors ----------------------------------------------------------------------------
    def call(self, action: str, func: Callable[..., Any], **kwargs: Any) -> Any:
        """Run one opensearch-py call; failures become errors naming ``action``."""
        from opensearchpy.exceptions import (
            AuthenticationException,
            AuthorizationException,
            NotFoundError,
            SSLError,
            TransportError,
        )
        from opensearchpy.exceptions import ConnectionError as OSConnectionError

        try:
            return func(**kwargs)
        except AuthenticationException:
            raise CredentialsError(
                f"OpenSearch at {self.url} refused the credentials (401) while {action}",
                hint="check deploy.opensearch.connection.auth (username and password, or the AWS identity for SigV4)",
            ) from None
        except AuthorizationException as exc:
            raise CredentialsError(
                f"OpenSearch at {self.url} does not allow {action} (403: {error_reason(exc)})",
                hint="map the registrar's user or IAM role to the ml_full_access role (and the connector role to it "
                "for remote models)",
            ) from None
        except NotFoundError as exc:
            raise ServiceError(
                f"OpenSearch at {self.url} found nothing while {action} (404: {error_reason(exc)})",
                hint="is the ML Commons plugin installed? an id from an earlier run may have been deleted",
            ) from None
        except SSLError as exc:
            raise ServiceError(
                f"TLS connection to {self.url} failed while {action} ({exc.error})",
                hint="set deploy.opensearch.connection.ca_certs to the cluster's CA bundle",
            ) from None
        except OSConnectionError as exc:
            raise ServiceError(
                f"cannot reach OpenSearch at {self.url} while {action}: {exc.info or exc.error}",
                hint="check deploy.opensearch.connection.url and the network path to the cluster",
            ) from None
        except TransportError as exc:
            reason = error_reason(exc)
            hint = next((hint for fragment, hint in SETTING_HINTS if fragment in reason.lower()), GENERIC_HINT)
            raise ServiceError(
                f"OpenSearch at {self.url} rejected {action} ({exc.status_code}: {reason})", hint=hint
            ) from None

    # --- cluster settings ------------------------------------------------------------------
    def add_to_setting_list(self, setting: str, value: str) -> bool:
        """Add ``value`` to a list setting (persistent), keeping the current or default entries.

        Returns False when the cluster refuses (Amazon OpenSearch Service manages these settings).
        """
        current = self.call(
            f"reading the cluster setting {setting}",
            self.client.cluster.get_settings,
            params={"flat_settings": "true", "include_defaults": "true"},
        )
        existing: list[str] = []
        for scope in ("persistent", "defaults"):
            found = current.get(scope, {}).get(setting)
            if found is not None:
                existing = found if isinstance(found, list) else [found]
                break
        if value in existing:
            return True
        return self.put_setting(setting, [*existing, value])

    def put_setting(self, setting: str, value: Any) -> bool:
        try:
            self.call(f"setting {setting}", self.client.cluster.put_settings, body={"persistent": {setting: value}})
        except OsftError as exc:
            self.log.warning("cluster_setting_refused", setting=setting, reason=exc.message)
            return False
        self.log.info("cluster_setting_set", setting=setting, value=value)
        return True

    # --- search ----------------------------------------------------------------------------
    def _search(self, action: str, func: Callable[..., Any], query: dict[str, Any]) -> list[Found]:
        try:
            response = self.call(action, func, body={"query": query, "size": 100})
        except ServiceError as exc:
            # An empty cluster has no ML Commons system index yet: nothing to find.
            if "index_not_found_exception" in exc.message:
                return []
            raise
        return [Found(hit["_id"], hit.get("_source", {})) for hit in response.get("hits", {}).get("hits", [])]

    # --- model groups ----------------------------------------------------------------------
    def ensure_model_group(self, name: str, description: str) -> tuple[str, bool]:
        """The id of the model group called ``name``, registering it when missing. Returns (id, created)."""
        found = self._search(
            f"searching model groups named '{name}'",
            self.client.plugins.ml.search_model_group,
            {"term": {"name.keyword": name}},
        )
        for group in found:
            if group.source.get("name") == name:
                return group.id, False
        try:
            response = self.call(
                f"registering model group '{name}'",
                self.client.plugins.ml.register_model_group,
                body={"name": name, "description": description},
            )
        except ServiceError as exc:
            # Another writer (or a group hidden from search by access control) holds the name.
            match = EXISTING_GROUP.search(exc.message)
            if match:
                return match.group(1), False
            raise
        self.log.info("model_group_registered", name=name, model_group_id=response["model_group_id"])
        return response["model_group_id"], True

    # --- connectors ------------------------------------------------------------------------
    def ensure_connector(self, body: dict[str, Any], marker: str) -> tuple[str, bool]:
        """The id of the connector named ``body['name']`` whose predict URL matches and whose description holds
        ``marker`` (a fingerprint of the body: ML Commons hides credentials, so they cannot be compared), created
        when missing. A connector of that name and URL with other settings is left to the models that use it."""
        name = body["name"]
        url = body["actions"][0]["url"]
        stale = []
        for connector in self.find_connectors(name):
            actions = connector.source.get("actions") or [{}]
            if actions[0].get("url") != url:
                continue
            if marker in (connector.source.get("description") or ""):
                return connector.id, False
            stale.append(connector.id)
        response = self.call(f"creating connector '{name}'", self.client.plugins.ml.create_connector, body=body)
        self.log.info("connector_created", name=name, connector_id=response["connector_id"], superseded=stale)
        return response["connector_id"], True

    def find_connectors(self, name: str) -> list[Found]:
        """The connectors named ``name``."""
        found = self._search(
            f"searching connectors named '{name}'",
            self.client.plugins.ml.search_connectors,
            {"term": {"name.keyword": name}},
        )
        return [connector for connector in found if connector.source.get("name") == name]

    # --- models ----------------------------------------------------------------------------
    def find_model(self, name: str, model_group_id: str, **match: Any) -> Found | None:
        """A usable model ``name`` in the group whose source fields equal ``match`` (hash, connector id)."""
        found = self._search(
            f"searching models named '{name}'",
            self.client.plugins.ml.search_models,
            {
                "bool": {
                    "filter": [{"term": {"name.keyword": name}}, {"term": {"model_group_id": model_group_id}}],
                    "must_not": [{"exists": {"field": "chunk_number"}}],
                }
            },
        )
        for model in found:
            source = model.source
            if source.get("name") != name or source.get("model_state") in UNUSABLE_MODEL_STATES:
                continue
            if all(source.get(key) == value for key, value in match.items()):
                return model
        return None

    def register(self, body: dict[str, Any]) -> str:
        """Register a model and wait for its task; returns the model id."""
        response = self.call(
            f"registering model '{body.get('name')}'", self.client.plugins.ml.register_model, body=body
        )
        task_id = response.get("task_id")
        if task_id is None:
            raise ServiceError(
                f"OpenSearch at {self.url} answered the model registration without a task_id: {response}"
            )
        task = self.wait_for_task(task_id, f"registering model '{body.get('name')}'")
        model_id = task.get("model_id") or response.get("model_id")
        if not model_id:
            raise ServiceError(f"registration task {task_id} completed without a model_id: {task}")
        self.log.info("model_registered", name=body.get("name"), model_id=model_id)
        return model_id

    def register_in_chunks(self, meta: dict[str, Any], path: Path, chunk_bytes: int) -> str:
        """Register a model by ``_register_meta`` + ``upload_chunk``; returns the model id."""
        size = path.stat().st_size
        total = max(1, math.ceil(size / chunk_bytes))
        response = self.call(
            f"registering the metadata of model '{meta.get('name')}'",
            self.client.plugins.ml.register_model_meta,
            body={**meta, "total_chunks": total},
        )
        model_id = response["model_id"]
        try:
            with open(path, "rb") as handle:
                for number in range(total):
                    self.call(
                        f"uploading chunk {number + 1}/{total} of model {model_id}",
                        self.client.plugins.ml.upload_chunk,
                        model_id=model_id,
                        chunk_number=str(number),
                        body=handle.read(chunk_bytes),
                    )
        except BaseException:
            # A half-uploaded model stays REGISTERING for good; a rerun would find it by name.
            with contextlib.suppress(Exception):
                self.remove_model(model_id)
            raise
        self.log.info("model_uploaded", name=meta.get("name"), model_id=model_id, chunks=total, bytes=size)
        return model_id

    def settle_registration(self, found: Found) -> Found | None:
        """A model found while REGISTERING, once usable; None (and removed) when it never will be.

        A chunked upload that was cut off (the process killed between chunks) stays REGISTERING for good,
        so it is removed and registered again. A registration by URL finishes on the cluster by itself:
        wait for it, like its task.
        """
        ml = self.client.plugins.ml
        if "total_chunks" in found.source:
            self.log.warning("incomplete_upload_removed", model_id=found.id, name=found.source.get("name"))
            self.remove_model(found.id)
            return None
        deadline = time.monotonic() + self.task_timeout_s
        while True:
            state = self.call(f"reading model {found.id}", ml.get_model, model_id=found.id).get("model_state")
            if state in UNUSABLE_MODEL_STATES:
                self.remove_model(found.id)
                return None
            if state != "REGISTERING":
                return found
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"model {found.id} on {self.url} is still REGISTERING after {self.task_timeout_s:g}s",
                    hint="check GET _plugins/_ml/tasks for its register task, then run the stage again",
                )
            self.sleep(self.poll_interval_s)

    def deploy(self, model_id: str) -> None:
        """Deploy a model and wait until its task completes (a model already deployed is left alone).

        A model already DEPLOYING (a killed run's deploy, or ML Commons' auto-redeploy) is waited for: a second
        deploy task would fail with "Duplicate deploy model task" while the first one goes on.
        """
        state = self._state_once_deployed(model_id)
        if state == "DEPLOYED":
            return
        response = self.call(f"deploying model {model_id}", self.client.plugins.ml.deploy_model, model_id=model_id)
        if response.get("task_id"):
            try:
                self.wait_for_task(response["task_id"], f"deploying model {model_id}")
            except ServiceError as exc:
                if DUPLICATE_DEPLOY not in exc.message or self._state_once_deployed(model_id) != "DEPLOYED":
                    raise
        self.log.info("model_deployed", model_id=model_id)

    def _state_once_deployed(self, model_id: str) -> str | None:
        """The model's state, after waiting (within ``task_timeout_s``) while it is DEPLOYING."""
        deadline = time.monotonic() + self.task_timeout_s
        while True:
            model = self.call(f"reading model {model_id}", self.client.plugins.ml.get_model, model_id=model_id)
            state = model.get("model_state")
            if state != "DEPLOYING":
                return state
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"model {model_id} on {self.url} is still DEPLOYING after {self.task_timeout_s:g}s",
                    hint="check GET _plugins/_ml/tasks for its deploy task and the ML nodes' logs, then run the stage "
                    "again",
                )
            self.log.info("model_deploying_waited_for", model_id=model_id, state=state)
            self.sleep(self.poll_interval_s)

    def wait_for_task(self, task_id: str, action: str) -> dict[str, Any]:
        """Poll ``GET _plugins/_ml/tasks/<id>`` until COMPLETED; FAILED or a timeout raise ServiceError."""
        deadline = time.monotonic() + self.task_timeout_s
        state = "unknown"
        while True:
            task = self.call(f"reading task {task_id} ({action})", self.client.plugins.ml.get_task, task_id=task_id)
            state = task.get("state", "unknown")
            if state in DONE_STATES:
                return task
            if state in FAILED_STATES:
                raise ServiceError(
                    f"ML Commons task {task_id} ({action}) ended {state}: {task.get('error', 'no error given')}",
                    hint="the error comes from the cluster: check the model zip, the ML Commons settings "
                    "(plugins.ml_commons.only_run_on_ml_node, native memory) and the node logs",
                )
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"ML Commons task {task_id} ({action}) is still {state} after {self.task_timeout_s:g}s",
                    hint="raise deploy.opensearch.task_timeout_s, or check the task with GET _plugins/_ml/tasks/"
                    f"{task_id}",
                )
            self.sleep(self.poll_interval_s)

    # --- removal ---------------------------------------------------------------------------
    def remove_model(self, model_id: str) -> bool:
        """Undeploy (waiting for the state to follow) and delete a model; False when it is already gone."""
        ml = self.client.plugins.ml
        model = self.get_or_none(f"reading model {model_id}", ml.get_model, model_id=model_id)
        if model is None:
            return False
        if model.get("model_state") in LOADED_MODEL_STATES:
            self.call(f"undeploying model {model_id}", ml.undeploy_model, model_id=model_id)
            deadline = time.monotonic() + self.task_timeout_s
            while (
                self.call(f"reading model {model_id}", ml.get_model, model_id=model_id).get("model_state")
                in LOADED_MODEL_STATES
            ):
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"model {model_id} is still deployed {self.task_timeout_s:g}s after the undeploy call",
                        hint=f"check POST _plugins/_ml/models/{model_id}/_undeploy and the ML nodes' logs",
                    )
                self.sleep(self.poll_interval_s)
        self.call(f"deleting model {model_id}", ml.delete_model, model_id=model_id)
        self.log.info("model_deleted", model_id=model_id)
        return True

    def models_using_connector(self, connector_id: str) -> list[str]:
        """Ids of the models whose connector is ``connector_id``."""
        # The model index does not map connector_id, so it is dynamically a text field: a term query on the
        # mixed-case id matches nothing. ML Commons finds a connector's models with a match query; the analysed
        # words may match other ids, so the exact id is compared here.
        found = self._search(
            f"searching models that use connector {connector_id}",
            self.client.plugins.ml.search_models,
            {"match": {"connector_id": connector_id}},
        )
        return [model.id for model in found if model.source.get("connector_id") == connector_id]

    def remove_connector(self, connector_id: str) -> bool:
        """Delete a connector (after the models that use it); False when it is already gone.

        ML Commons refuses while a search of the model index finds a model using the connector, and a model
        deleted just before stays visible to searches until the index refreshes (about a second): such a
        refusal is retried for ``REFRESH_WAIT_S``.
        """
        ml = self.client.plugins.ml
        if self.get_or_none(f"reading connector {connector_id}", ml.get_connector, connector_id=connector_id) is None:
            return False
        deadline = time.monotonic() + REFRESH_WAIT_S
        while True:
            try:
                self.call(f"deleting connector {connector_id}", ml.delete_connector, connector_id=connector_id)
                break
            except ServiceError as exc:
                if CONNECTOR_IN_USE not in exc.message or time.monotonic() >= deadline:
                    raise
            self.sleep(self.poll_interval_s)
        self.log.info("connector_deleted", connector_id=connector_id)
        return True

    def get_or_none(self, action: str, func: Callable[..., Any], **kwargs: Any) -> Any:
        """``func(**kwargs)``, or None on 404; other failures as in ``call``."""
        from opensearchpy.exceptions import NotFoundError

        def get() -> Any:
            try:
                return func(**kwargs)
            except NotFoundError:
                return None

        return self.call(action, get)

    def predict(self, model_id: str, function_name: str, texts: list[str]) -> dict[str, Any]:
        """``POST /_plugins/_ml/_predict/<algorithm>/<model_id>`` with ``text_docs``.

        This is the request neural search makes, and the only one that works alike for local and remote
        models: for a remote model, ``models/<id>/_predict`` reads nothing but ``parameters`` and skips the
        connector's pre-process function, while the algorithm path runs it on ``text_docs``.
        """
        return self.call(
            f"calling _predict on model {model_id}",
            self.client.plugins.ml.predict,
            algorithm_name=function_name.lower(),
            model_id=model_id,
            body={"text_docs": texts},
        )
