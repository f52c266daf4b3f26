"""Progress bars on a terminal, silence in containers (where structured logs report progress)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    forced = os.environ.get("OSFT_PROGRESS")
    if forced is not None:
        return forced == "1"
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    yield from tqdm(iterable, desc=desc, total=total, unit=unit, disable=not progress_enabled(), dynamic_ncols=True)
