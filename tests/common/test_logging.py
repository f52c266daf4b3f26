"""Container logs stay JSON: third-party libraries print nothing below WARNING, even one that forces DEBUG."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from osft.common.logging import configure_logging, get_logger
configure_logging(json_output=True)
chatty = logging.getLogger("chatty")
chatty.setLevel(logging.DEBUG)  # as bm25s does with its own logger
chatty.debug("building index")
chatty.warning("disk almost full")
get_logger(stage="train").info("stage_started")
"""


def test_a_library_that_sets_its_logger_to_debug_prints_only_warnings() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    lines = result.stderr.splitlines()
    assert "building index" not in result.stderr
    assert any("disk almost full" in line for line in lines)
    assert json.loads(lines[-1])["event"] == "stage_started"


WRITER = """
import sys
from osft.common.logging import configure_logging, get_logger
configure_logging(json_output=True)
log = get_logger(rank=int(sys.argv[1]))
for step in range(3000):
    log.info("step_done", step=step)
"""


def test_processes_sharing_one_stderr_never_split_each_others_lines() -> None:
    # torchrun's ranks share the container's stderr: an event written in two pieces (text, then newline)
    # can land inside another rank's line and neither parses.
    parent = (
        "import subprocess, sys\n"
        f"children = [subprocess.Popen([sys.executable, '-c', {WRITER!r}, str(r)]) for r in (0, 1)]\n"
        "sys.exit(max(c.wait() for c in children))\n"
    )
    result = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert sorted(e["rank"] for e in events) == [0] * 3000 + [1] * 3000
