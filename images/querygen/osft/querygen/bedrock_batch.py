"""Amazon Bedrock batch inference: many prompt records per job, at half the on-demand price.

For the records not yet done:

1. Split them into jobs within the per-job record and input-size quotas
   (``querygen.bedrock.max_records_per_job`` / ``max_job_file_bytes``). Fewer records than
   ``min_records_per_job`` in total run on demand instead, and the manifest says so.
2. Write each job's JSONL (``{"recordId", "modelInput"}``, the Converse request body) to the
   S3 staging prefix and call ``CreateModelInvocationJob`` (``modelInvocationType=Converse``),
   at most ``max_concurrent_jobs`` in flight. Each job is recorded in ``_work/batch_jobs.json``
   as soon as it exists, so a resumed run polls it instead of paying for it twice.
3. Poll ``GetModelInvocationJob`` with a growing delay until the job ends.
4. Read every ``*.jsonl.out`` (and ``manifest.json.out``) under the job's output prefix and map
   each line back by ``recordId``: output order is not guaranteed.
5. Records with an error, and records missing from the output, are retried once on demand;
   those that fail again are reported as failures.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osft.common.errors import CredentialsError, QuotaError, ServiceError
from osft.common.spec.querygen import BedrockOptions
from osft.common.storage import Location, join
from osft.querygen.bedrock_converse import converse_completion, converse_request
from osft.querygen.on_demand import result_of
from osft.querygen.prompts import PromptRecord
from osft.querygen.record_log import RecordLog

TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
STATE_FILE = "batch_jobs.json"


@dataclass
class BatchJob:
    """One batch job: the records it holds and where its files are."""

    name: str
    record_ids: list[str]
    input_uri: str = ""
    output_uri: str = ""
    job_arn: str | None = None
    status: str = "NotSubmitted"
    message: str | None = None
    collected: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class BatchOutcome:
    """What the batch run did, for the manifest."""

    job_arns: list[str] = field(default_factory=list)
    to_retry: list[PromptRecord] = field(default_factory=list)
    fallback: str | None = None
    leftover: int = 0
    output_manifests: list[dict[str, Any]] = field(default_factory=list)


def plan_jobs(
    records: list[PromptRecord], line_bytes: dict[str, int], options: BedrockOptions
) -> tuple[list[list[PromptRecord]], list[PromptRecord]]:
    """Split records into jobs within the quotas; returns (jobs, records left for on-demand calls).

    Jobs are filled in order up to ``max_records_per_job`` records and ``max_job_file_bytes``
    bytes. A last job below ``min_records_per_job`` shares records with the one before it when
    both can reach the minimum; otherwise its records are left over.
    """
    chunks: list[list[PromptRecord]] = []
    size = 0
    for record in records:
        line = line_bytes[record.record_id]
        if not chunks or len(chunks[-1]) >= options.max_records_per_job or size + line > options.max_job_file_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(record)
        size += line
    leftover: list[PromptRecord] = []
    if chunks and len(chunks[-1]) < options.min_records_per_job:
        last = chunks.pop()
        shared = _share(chunks[-1], last, line_bytes, options) if chunks else None
        if shared is None:
            leftover = last
        else:
            chunks[-1:] = shared
    return chunks, leftover


def _share(
    full: list[PromptRecord], last: list[PromptRecord], line_bytes: dict[str, int], options: BedrockOptions
) -> list[list[PromptRecord]] | None:
    """``full + last`` cut in two jobs of at least the minimum each and within the quotas, or None.

    The cut starts at the middle and moves later while the second part is over the byte quota
    (the first part, a prefix of a job within quotas, always fits).
    """
    merged = full + last
    minimum = options.min_records_per_job
    if len(merged) < 2 * minimum:
        return None
    cut = len(merged) // 2
    size = sum(line_bytes[r.record_id] for r in merged[cut:])
    while size > options.max_job_file_bytes and cut < len(merged) - minimum:
        size -= line_bytes[merged[cut].record_id]
        cut += 1
    if size > options.max_job_file_bytes:
        return None
    return [merged[:cut], merged[cut:]]


def _lines(location: Location, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a file, streamed and split at b"\\n" only.

    ``str.splitlines`` would also split at U+2028 or U+0085, which JSON leaves unescaped inside
    strings and which a document echoed in ``modelInput`` can hold; such a record would look
    missing and be paid for again on demand.
    """
    with location.open_read() as stream:
        rest = b""
        while chunk := stream.read(chunk_bytes):
            *lines, rest = (rest + chunk).split(b"\n")
            yield from lines
        if rest:
            yield rest


class BatchRunner:
    """Runs prompt records through Bedrock batch inference jobs (see the module docstring).

    Args:
        control: a ``bedrock`` client (``bedrock_clients.control_client``).
        model_id: model id, inference-profile id or ARN.
        options: ``querygen.bedrock``; needs ``staging_uri`` and ``service_role_arn``.
        work: the stage's ``_work`` folder (job state and the local copies of job inputs).
        prefix: the S3 prefix under ``staging_uri`` for this run's jobs (run name and fingerprint).
        save: called whenever the job state changes (``StageContext.save_work``).
        log: the structlog logger of the stage.
        sleep: how to wait between polls (tests pass a no-op).
    """

    def __init__(
        self,
        control: Any,
        model_id: str,
        options: BedrockOptions,
        work: Path,
        prefix: str,
        save: Callable[[], None],
        log: Any,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.control = control
        self.model_id = model_id
        self.options = options
        self.work = work
        self.prefix = join(options.staging_uri or "", prefix)
        self.save = save
        self.log = log
        self.sleep = sleep
        self.jobs: list[BatchJob] = self._load_state()

    # --- state ---------------------------------------------------------------------------
    def _load_state(self) -> list[BatchJob]:
        path = self.work / STATE_FILE
        if not path.exists():
            return []
        return [BatchJob(**job) for job in json.loads(path.read_text())]

    def _save_state(self) -> None:
        path = self.work / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([job.__dict__ for job in self.jobs], indent=1))
        tmp.replace(path)
        self.save()

    # --- the run ---------------------------------------------------------------------------
    def run(
        self,
        records: list[PromptRecord],
        log: RecordLog,
        record_for: Callable[[str], PromptRecord | None] | None = None,
    ) -> BatchOutcome:
        """Batch ``records`` not yet in ``log``; ``record_for`` finds the record of a reply from an
        earlier attempt's job that is not in ``records`` (a smaller ``max_docs`` sample), so a
        reply already paid for is logged rather than dropped."""
        outcome = BatchOutcome()
        listed = {r.record_id: r for r in records}

        def by_id(record_id: str) -> PromptRecord | None:
            return listed.get(record_id) or (record_for(record_id) if record_for else None)

        covered = {rid for job in self.jobs for rid in job.record_ids}
        pending = [r for r in records if r.record_id not in log.done and r.record_id not in covered]
        lines = {r.record_id: self._line(r) for r in pending}
        sizes = {rid: len(line.encode("utf-8")) for rid, line in lines.items()}
        if pending:
            if not self.jobs and len(pending) < self.options.min_records_per_job:
                outcome.fallback = (
                    f"{len(pending)} records are fewer than the batch minimum of "
                    f"{self.options.min_records_per_job} (querygen.bedrock.min_records_per_job); ran on demand"
                )
                self.log.warning(
                    "batch_fallback_on_demand", records=len(pending), minimum=self.options.min_records_per_job
                )
                outcome.to_retry = pending
                return outcome
            chunks, leftover = plan_jobs(pending, sizes, self.options)
            outcome.leftover = len(leftover)
            if leftover:
                self.log.info(
                    "batch_leftover_on_demand", records=len(leftover), minimum=self.options.min_records_per_job
                )
            start = len(self.jobs)
            for offset, chunk in enumerate(chunks):
                job = BatchJob(name=f"job-{start + offset:04d}", record_ids=[r.record_id for r in chunk])
                # The token keeps a job's files apart from a removed (failed) job that had its number.
                folder = join(self.prefix, f"{job.name}-{job.token[:8]}")
                job.input_uri = join(folder, "input", "records.jsonl")
                job.output_uri = join(folder, "output") + "/"
                self.jobs.append(job)
                self._write_input(self.jobs[-1], [lines[r.record_id] for r in chunk])
            self._save_state()
        self.log.info("batch_jobs_planned", jobs=len(self.jobs), records=sum(len(j.record_ids) for j in self.jobs))
        self._drive(log, by_id, outcome)
        outcome.job_arns = [job.job_arn for job in self.jobs if job.job_arn]
        # Errors, lines missing from the output and records too few for a job: one more try on demand.
        outcome.to_retry = [r for r in records if r.record_id not in log.done]
        return outcome

    def _line(self, record: PromptRecord) -> str:
        return json.dumps({"recordId": record.record_id, "modelInput": converse_request(record, self.options)}) + "\n"

    def _write_input(self, job: BatchJob, lines: list[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="osft-batch-") as folder:
            local = Path(folder) / "records.jsonl"
            local.write_text("".join(lines), encoding="utf-8")
            Location(job.input_uri).publish(local)

    def _drive(self, log: RecordLog, by_id: Callable[[str], PromptRecord | None], outcome: BatchOutcome) -> None:
        """Submit, poll and collect until every job is collected."""
        delay = self.options.poll_seconds
        while True:
            for job in self.jobs:
                waiting = job.job_arn is None and self._in_flight() < self.options.max_concurrent_jobs
                if waiting and not self._submit(job):
                    break  # refused for now: the next ones would be too
            for job in self.jobs:
                if job.job_arn and not job.collected and job.status not in TERMINAL:
                    self._poll(job)
                if job.status in TERMINAL and not job.collected:
                    self._collect(job, log, by_id, outcome)
            if all(job.collected for job in self.jobs):
                return
            self.sleep(delay)
            delay = min(self.options.max_poll_seconds, delay * 1.5)

    def _in_flight(self) -> int:
        return sum(1 for job in self.jobs if job.job_arn and job.status not in TERMINAL)

    def _submit(self, job: BatchJob) -> bool:
        """Create the job; False when Bedrock asks to wait (throttled, or our running jobs fill the quota)."""
        from botocore.exceptions import ClientError, NoCredentialsError

        try:
            response = self.control.create_model_invocation_job(
                jobName=f"osft-{job.token[:12]}-{job.name}",
                roleArn=self.options.service_role_arn,
                clientRequestToken=job.token,
                modelId=self.model_id,
                modelInvocationType="Converse",
                inputDataConfig={"s3InputDataConfig": {"s3Uri": job.input_uri, "s3InputFormat": "JSONL"}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": job.output_uri}},
                timeoutDurationInHours=self.options.job_timeout_hours,
            )
        except NoCredentialsError:
            raise CredentialsError(
                "Bedrock: no AWS credentials found", hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID"
            ) from None
        except _network_errors() as exc:
            # The job may exist already: asking again with its clientRequestToken cannot create a second one.
            self.log.info("batch_job_deferred", job=job.name, reason=type(exc).__name__)
            return False
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            # Throttling is a passing rate limit; a quota refusal passes only when one of our jobs ends.
            if code == "ThrottlingException" or (code == "ServiceQuotaExceededException" and self._in_flight()):
                self.log.info("batch_job_deferred", job=job.name, reason=code)
                return False
            if code == "ServiceQuotaExceededException":
                raise QuotaError(
                    f"Bedrock refused a batch job and none of ours is running ({code}: {message})",
                    hint="other batch jobs use the account quota; wait, or lower querygen.bedrock.max_concurrent_jobs",
                ) from None
            if code in ("AccessDeniedException", "UnrecognizedClientException"):
                raise CredentialsError(
                    f"Bedrock refused CreateModelInvocationJob ({code}: {message})",
                    hint="grant bedrock:CreateModelInvocationJob and iam:PassRole on querygen.bedrock.service_role_arn",
                ) from None
            raise ServiceError(
                f"Bedrock refused batch job {job.name} ({code}: {message})",
                hint="check querygen.model_id (batch needs a model that supports it), the role and the staging bucket",
            ) from None
        job.job_arn = response["jobArn"]
        job.status = "Submitted"
        self.log.info("batch_job_submitted", job=job.name, arn=job.job_arn, records=len(job.record_ids))
        self._save_state()
        return True

    def _poll(self, job: BatchJob) -> None:
        from botocore.exceptions import ClientError

        try:
            response = self.control.get_model_invocation_job(jobIdentifier=job.job_arn)
        except _network_errors() as exc:  # a job runs for hours: a network blip must not end the run
            self.log.info("batch_poll_deferred", job=job.name, reason=type(exc).__name__)
            return
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ThrottlingException", "ServiceUnavailableException", "InternalServerException"):
                self.log.info("batch_poll_deferred", job=job.name, reason=code)
                return
            raise ServiceError(
                f"Bedrock could not describe batch job {job.job_arn} ({code})",
                hint="check bedrock:GetModelInvocationJob permissions; the stage resumes polling when rerun",
            ) from None
        if response["status"] != job.status:
            self.log.info("batch_job_status", job=job.name, status=response["status"], message=response.get("message"))
            job.status, job.message = response["status"], response.get("message")
            self._save_state()

    def _collect(
        self, job: BatchJob, log: RecordLog, by_id: Callable[[str], PromptRecord | None], outcome: BatchOutcome
    ) -> None:
        """Map the job's output lines back to records by recordId; queue errors and missing ones for retry."""
        seen: set[str] = set()
        summary: dict[str, Any] | None = None
        for file in Location(job.output_uri).list_files():
            if file.uri.endswith("manifest.json.out"):
                summary = _summary(file)
                if summary is not None:
                    outcome.output_manifests.append(summary)
                continue
            if not file.uri.endswith(".jsonl.out"):
                continue
            for line in _lines(file):
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(item, dict):
                    continue
                record = by_id(str(item.get("recordId")))
                if record is None or record.record_id in seen:
                    continue
                seen.add(record.record_id)
                if record.record_id in log.done or "modelOutput" not in item:
                    continue
                log.append(result_of(record, converse_completion(item["modelOutput"]), "batch"))
        retry = [rid for rid in job.record_ids if rid not in log.done]
        if job.status == "Failed" and not seen:
            # A job that failed as a whole (role, bucket, model) would fail again: retrying every
            # record on demand would only multiply the cost. Forget it, so a rerun submits a new job.
            self.jobs.remove(job)
            self._save_state()
            raise ServiceError(
                f"Bedrock batch job {job.job_arn} failed: {job.message or 'no message'}",
                hint="fix the cause (service role access to the staging bucket, model access) and rerun; "
                "finished jobs are not run again",
            )
        if job.status == "Stopped":
            # Someone stopped it (StopModelInvocationJob), most likely to stop spending: running its other
            # records on demand, at twice the batch price, would undo that. Keep the replies it gave and
            # forget the job, so a rerun batches the rest in a new one.
            self.jobs.remove(job)
            self._save_state()
            raise ServiceError(
                f"Bedrock batch job {job.job_arn} was stopped: {len(seen)} of its {len(job.record_ids)} records "
                f"were answered and are kept; {len(retry)} were not run",
                hint="rerun the stage to batch the rest in a new job (its answered records are not paid again)",
            )
        self.log.info(
            "batch_job_collected",
            job=job.name,
            status=job.status,
            records=len(job.record_ids),
            answered=len(seen),
            to_retry=len(retry),
            output_manifest=summary,
        )
        job.collected = True
        self._save_state()


def _network_errors() -> tuple[type[Exception], ...]:
    """Lost connections and timeouts once botocore's own retries are spent: wait for the next round."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return (BotoConnectionError, HTTPClientError)


def _summary(file: Location) -> dict[str, Any] | None:
    """A job's ``manifest.json.out`` (record and token counts), or None when it is not a JSON object."""
    try:
        summary = json.loads(file.read_bytes())
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None
