"""A Bedrock stand-in at the boto3 level: event hooks answer Converse calls and simulate batch jobs.

moto has no Converse or batch-inference API, so ``FakeConverse`` registers on a real
``bedrock-runtime`` client's ``before-call`` event (the hook botocore.stub.Stubber uses) and
answers from the request body actually sent, which lets several threads call it at once.
``FakeBatchService`` plays the service side of a batch job: on CreateModelInvocationJob it
reads the uploaded JSONL from (moto) S3 and writes ``.jsonl.out`` and ``manifest.json.out``.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

DOC_ID = re.compile(r"DOCID (\w+)")


class SimulatedKill(BaseException):
    """Raised inside a call to stop a run abruptly, as a kill would."""


def doc_id_of(prompt: str) -> str:
    match = DOC_ID.search(prompt)
    assert match, "test documents carry 'DOCID <id>' in their text"
    return match.group(1)


def reply_for(doc_id: str, kinds: int = 2) -> str:
    """A well-formed reply: a factoid and a conceptual query that name the document's topic."""
    queries = [
        {"type": "factoid", "query": f"which measurement was reported for specimen {doc_id}"},
        {"type": "conceptual", "query": f"why specimen {doc_id} matters for the overall research question"},
    ]
    return json.dumps({"queries": queries[:kinds]})


def converse_body(
    text: str, input_tokens: int = 420, output_tokens: int = 60, stop_reason: str = "end_turn"
) -> dict[str, Any]:
    """A Converse response body as Bedrock returns it (also the modelOutput of a Converse batch record)."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 850},
    }


MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ModelErrorException": "The system encountered an unexpected error during processing. Try your request again.",
}


class FakeConverse:
    """Answers Converse calls; can throttle a share of calls, garble some replies, or 'kill' the run.

    Args:
        throttle_rate: share of calls answered with ThrottlingException (seeded, so repeatable).
        malformed: doc id -> reply text to return instead of the well-formed JSON.
        kill_after: raise SimulatedKill on this call number (1-based), after serving the earlier ones.
        lost_connections: the first calls that end in a read timeout (what botocore raises once its
            own retries of a hung connection are spent).
        stop_reasons: doc id -> the Converse ``stopReason`` of its reply (``end_turn`` otherwise).
        refusal: the error code and HTTP status of the calls ``throttle_rate`` picks.
    """

    def __init__(
        self,
        throttle_rate: float = 0.0,
        malformed: dict[str, str] | None = None,
        kill_after: int | None = None,
        lost_connections: int = 0,
        stop_reasons: dict[str, str] | None = None,
        refusal: tuple[str, int] = ("ThrottlingException", 429),
    ) -> None:
        self.throttle_rate = throttle_rate
        self.refusal = refusal
        self.stop_reasons = stop_reasons or {}
        self.lost_connections = lost_connections
        self.malformed = malformed or {}
        self.kill_after = kill_after
        self.rng = random.Random(7)
        self.lock = threading.Lock()
        self.calls = 0
        self.throttled = 0
        self.served: Counter[str] = Counter()
        self.model_ids: set[str] = set()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.bedrock-runtime.Converse", self._answer)
        return client

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = json.loads(params["body"])
        self.model_ids.add(unquote(params["url_path"].split("/")[2]))
        prompt = body["messages"][0]["content"][0]["text"]
        assert body["system"][0]["text"], "a system prompt is sent"
        doc_id = doc_id_of(prompt)
        with self.lock:
            self.calls += 1
            if self.kill_after is not None and self.calls >= self.kill_after:
                raise SimulatedKill(f"killed at call {self.calls}")
            if self.calls <= self.lost_connections:
                raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
            if self.rng.random() < self.throttle_rate:
                self.throttled += 1
                code, status = self.refusal
                error = {"Code": code, "Message": MESSAGES.get(code, "The request failed.")}
                return AWSResponse("https://bedrock-runtime", status, {}, None), {
                    "Error": error,
                    "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
                }
            self.served[doc_id] += 1
        text = self.malformed.get(doc_id, reply_for(doc_id))
        parsed = converse_body(text, stop_reason=self.stop_reasons.get(doc_id, "end_turn"))
        parsed["ResponseMetadata"] = {"HTTPStatusCode": 200, "RetryAttempts": 0}
        return AWSResponse("https://bedrock-runtime", 200, {}, None), parsed


class FakeBatchService:
    """Writes a batch job's output files to S3 the way Bedrock does, with chosen records missing or errored.

    Args:
        s3: a boto3 S3 client (moto).
        missing: record ids left out of the output (as when a job is cut short).
        errored: record ids answered with an ``error`` object instead of ``modelOutput``.
        garbled: record ids whose model output is prose, not JSON.
    """

    def __init__(self, s3: Any, missing: set[str], errored: set[str], garbled: set[str]) -> None:
        self.s3 = s3
        self.missing = missing
        self.errored = errored
        self.garbled = garbled
        self.jobs = 0
        self.inputs: list[list[str]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.bedrock.CreateModelInvocationJob", self._process)
        return client

    def job_arn(self, number: int) -> str:
        return f"arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/job{number:08d}"

    def _process(self, params: dict[str, Any], **_: Any) -> None:
        self.jobs += 1
        bucket, key = params["inputDataConfig"]["s3InputDataConfig"]["s3Uri"][5:].split("/", 1)
        lines = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        records = [json.loads(line) for line in lines]
        self.inputs.append([r["recordId"] for r in records])
        out_lines, errors, tokens_in, tokens_out = [], 0, 0, 0
        for record in reversed(records):  # output order is not input order
            rid = record["recordId"]
            if rid in self.missing:
                continue
            line: dict[str, Any] = {"recordId": rid, "modelInput": record["modelInput"]}
            if rid in self.errored:
                line["error"] = {"errorCode": 400, "errorMessage": "Malformed input request, please reformat."}
                errors += 1
            else:
                doc_id = doc_id_of(record["modelInput"]["messages"][0]["content"][0]["text"])
                text = "I cannot help with that." if rid in self.garbled else reply_for(doc_id)
                line["modelOutput"] = converse_body(text, 400, 50)
                tokens_in, tokens_out = tokens_in + 400, tokens_out + 50
            out_lines.append(json.dumps(line, ensure_ascii=False))  # as Bedrock writes it: non-ASCII unescaped
        out_bucket, out_key = params["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"][5:].split("/", 1)
        job_id = self.job_arn(self.jobs).rsplit("/", 1)[1]
        prefix = f"{out_key.rstrip('/')}/{job_id}"
        self.s3.put_object(Bucket=out_bucket, Key=f"{prefix}/{key.rsplit('/', 1)[1]}.out", Body="\n".join(out_lines))
        summary = {
            "totalRecordCount": len(records),
            "processedRecordCount": len(out_lines),
            "successRecordCount": len(out_lines) - errors,
            "errorRecordCount": errors,
            "inputTokenCount": tokens_in,
            "outputTokenCount": tokens_out,
        }
        self.s3.put_object(Bucket=out_bucket, Key=f"{prefix}/manifest.json.out", Body=json.dumps(summary))
