"""Which process this is when torchrun runs one stage in several (its ``WORLD_SIZE`` and ``RANK``)."""

from __future__ import annotations

import os


def world_size() -> int:
    """How many processes run this stage together; 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_rank() -> int:
    """This process's global rank under torchrun; 0 outside it."""
    return int(os.environ.get("RANK", "0"))


def is_first_process() -> bool:
    """True outside torchrun and on its rank 0: the one process that writes shared files."""
    return process_rank() == 0
