"""``<stage>/failure.json``: the error a stage last stopped with, so ``osft status`` can tell failed from killed.

Every way a stage runs records it: ``osft run``, ``<stage> run`` in ECS or by hand, and the SageMaker
job entry point (they all go through ``run_stage``); ``osft run`` also records a SageMaker job that
failed before its container could. A new attempt clears the last record, so it never outlives the
failure it describes. Ctrl-C and SIGTERM are interruptions, not failures, and are not recorded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

from osft.common.errors import OsftError
from osft.common.logging import get_logger
from osft.common.storage import Location, join

FAILURE_FILE = "failure.json"


@contextlib.contextmanager
def failure_recorded(run_dir: str, stage: str, *, clear: bool = True) -> Iterator[None]:
    """Clear the stage's last failure record (when ``clear``), then record the error if the block raises one."""
    location = Location(join(run_dir, stage, FAILURE_FILE))
    if clear and location.exists():
        location.delete_tree()
    try:
        yield
    except Exception as exc:
        _record(location, stage, exc)
        raise


def _record(location: Location, stage: str, exc: Exception) -> None:
    """Write the record unless this attempt has one: the first error is the cause. Other torchrun ranks then
    fail because rank 0 did; ``osft run`` would overwrite a SageMaker job's own record with its shorter
    FailureReason."""
    error = exc.render() if isinstance(exc, OsftError) else f"{type(exc).__name__}: {exc}"
    record = {"stage": stage, "failed_at": datetime.now(UTC).isoformat(timespec="seconds"), "error": error}
    try:
        if location.exists():
            return
        location.write_text(json.dumps(record, indent=2))
    except OsftError:
        get_logger().debug("failure_not_recorded", exc_info=True)  # the stage's own error is the one to report


def read_failure(run_dir: str, stage: str) -> dict[str, str] | None:
    """The error the stage last failed with, or None (no failure since its last attempt began)."""
    location = Location(join(run_dir, stage, FAILURE_FILE))
    try:
        record = json.loads(location.read_text()) if location.exists() else None
    except (ValueError, OsftError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("error"), str) else None
