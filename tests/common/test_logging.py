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
